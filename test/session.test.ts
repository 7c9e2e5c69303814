// The gateway's side of a worker conversation (src/worker/session.ts), over a transport that
// records what is sent: pings, batches and their deadlines.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { IsoError } from '../src/errors.js';
import type { GatewayMessage } from '../src/worker/protocol.js';
import { WorkerSession } from '../src/worker/session.js';

function session(): { s: WorkerSession; sent: GatewayMessage[]; killed: string[] } {
  const sent: GatewayMessage[] = [];
  const killed: string[] = [];
  const s = new WorkerSession(
    { send: (m) => void sent.push(m), kill: (r) => void killed.push(r) },
    pino({ level: 'silent' }),
  );
  s.onLine(JSON.stringify({ op: 'ready', protocol: 1, pid: 1 }));
  return { s, sent, killed };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('worker session: health pings', () => {
  it('an idle worker answers a ping; one that does not has missed it', async () => {
    const { s, sent } = session();
    const answered = s.ping(1000);
    const ping = sent.at(-1) as { op: string; id: string };
    assert.equal(ping.op, 'ping');
    s.onLine(JSON.stringify({ op: 'pong', id: ping.id }));
    await answered;
    await assert.rejects(
      s.ping(30),
      (e: unknown) =>
        e instanceof IsoError && e.code === 'PREDICTION_FAILED' && /did not answer a ping within 30 ms/.test(e.message),
    );
  });

  it('a worker with a batch in flight is not pinged: its batch deadline judges it', async () => {
    const { s, sent, killed } = session();
    const batch = s.predict('r1', { task: 't', items: [{ sequence: 'A', options: {} }], timeoutMs: 60 });
    const before = sent.length;
    await s.ping(10);
    assert.equal(sent.length, before, 'no ping sent to a busy worker');
    await sleep(20);
    assert.deepEqual(killed, [], 'busy past a ping timeout is not a hang');
    // The deadline still holds: a batch past it kills the worker.
    await assert.rejects(batch, (e: unknown) => e instanceof IsoError && e.code === 'PREDICTION_TIMEOUT');
    assert.deepEqual(killed, ['timed out after 60 ms']);
  });

  it('a ping that a batch followed before its answer is not missed', async () => {
    const { s, sent } = session();
    const ping = s.ping(30);
    const batch = s.predict('r1', { task: 't', items: [{ sequence: 'A', options: {} }], timeoutMs: 5000 });
    await ping;
    const id = (sent.find((m) => m.op === 'predict') as { id: string }).id;
    s.onLine(JSON.stringify({ op: 'result', id, outputs: [{ ok: true }] }));
    assert.deepEqual(await batch, [{ ok: true }]);
    // Idle again, with no batch since: a silent worker misses its ping.
    await assert.rejects(s.ping(20), /did not answer a ping/);
  });

  it('pings fail at once when the worker exits', async () => {
    const { s } = session();
    const ping = s.ping(5000);
    s.exited('exited with code 1', {});
    await assert.rejects(ping, /model worker exited with code 1/);
  });
});
