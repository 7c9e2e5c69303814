// Per-replica log files through a real gateway: every stderr line of a replica lands in its own
// file (also the lines over the gateway log's rate), files rotate past their size and a model's
// folder stays under its cap; GET /v1/models/{name}/logs (admin) answers tail, one replica, and
// follow (NDJSON, across a rotation); `isomodel logs` prints them; seed 001's container logs map
// onto the container's own replicas.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { digest } from '../src/security/keys.js';
import { ReplicaLogs, tailModel } from '../src/telemetry/replica-logs.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import { startGateway, waitFor, type Harness } from './helpers.js';

const BIN = join(PACKAGE_ROOT, 'bin', 'isomodel.js');
const ADMIN = 'iso_test_admin_secret_replica_logs1';
const PREDICT = 'iso_test_predict_secret_replica_log';
const bearer = (k: string): Record<string, string> => ({ authorization: `Bearer ${k}` });
const KEYS = {
  keys: [
    { name: 'ops', sha256: digest(ADMIN), scopes: ['admin' as const] },
    { name: 'lab', sha256: digest(PREDICT), scopes: ['predict' as const] },
  ],
};
const MAX_FILE = 64 * 1024;
const MAX_MODEL = 512 * 1024;

function cli(
  args: string[],
  env: Record<string, string>,
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH ?? '', ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

describe('replica log files', () => {
  let h: Harness;
  let dir: string;
  before(async () => {
    h = await startGateway(['noisy-node', 'revcomp'], {
      auth: KEYS,
      log_files: { max_file_bytes: MAX_FILE, keep: 2, max_model_bytes: MAX_MODEL },
      worker_log: { lines_per_second: 5, burst: 5 },
    });
    dir = join(h.stateDir, 'logs', 'noisy-node');
  });
  after(async () => h.close());

  const noise = (lines: number) =>
    h.post('/models/noisy-node/predict', { sequence: 'ACGT', options: { lines } }, bearer(PREDICT));
  const logs = (q = '', key = ADMIN) => h.get(`/v1/models/noisy-node/logs${q}`, bearer(key));

  it("every line reaches the replica file, also those over the gateway log's rate; tail and replica filter", async () => {
    assert.equal((await noise(300)).status, 200);
    const r = (await waitFor(
      async () => {
        const x = await logs('?tail=300');
        return x.body.data?.lines.length === 300 ? x : undefined;
      },
      10_000,
      100,
    ))!;
    assert.equal(r.body.data.lines[0].line.startsWith('noise 0 '), true);
    assert.equal(r.body.data.lines[299].line.startsWith('noise 299 '), true);
    const replica = r.body.data.lines[0].replica as string;
    assert.match(replica, /^r\d+$/);
    assert.deepEqual(r.body.data.replicas, [replica]);
    assert.ok(!Number.isNaN(Date.parse(r.body.data.lines[0].time)));
    const five = await logs(`?tail=5&replica=${replica}`);
    assert.deepEqual(
      five.body.data.lines.map((l: any) => l.line.split(' ')[1]),
      ['295', '296', '297', '298', '299'],
    );
    assert.deepEqual((await logs('?replica=r999999')).body.data.lines, []);
  });

  it('admin only; bad queries are 400; unknown model 404', async () => {
    assert.equal((await logs('', PREDICT)).status, 403);
    assert.equal((await logs('?tail=100001')).status, 400);
    assert.equal((await logs('?replica=../../etc')).status, 400);
    assert.equal((await logs('?nope=1')).status, 400);
    assert.equal((await h.get('/v1/models/nope/logs', bearer(ADMIN))).status, 404);
  });

  it('rotates past max_file_bytes and keeps the model under max_model_bytes', async () => {
    // ~90 bytes a line: 20,000 lines = 1.8 MB through 64 KiB files.
    for (let i = 0; i < 4; i++) assert.equal((await noise(5000)).status, 200);
    await waitFor(() => readdirSync(dir).some((f) => f.endsWith('.log.2')), 10_000, 100);
    h.gw.replicaLogs!.flush();
    const files = readdirSync(dir);
    assert.ok(
      files.every((f) => /^r\d+\.log(\.[12])?$/.test(f)),
      files.join(','),
    );
    const total = files.reduce((a, f) => a + statSync(join(dir, f)).size, 0);
    assert.ok(total <= MAX_MODEL, `${total} bytes`);
    for (const f of files)
      assert.ok(statSync(join(dir, f)).size < MAX_FILE + 70 * 1024, `${f}: ${statSync(join(dir, f)).size}`);
    // The tail still reads across the rotated files.
    const t = await logs('?tail=1000');
    assert.equal(t.body.data.lines.length, 1000);
    assert.equal(t.body.data.lines[999].line.split(' ')[1], '4999');
  });

  it('follow streams new lines as NDJSON, across a rotation, until the client leaves', async () => {
    const ac = new AbortController();
    const res = await fetch(`${h.url}/v1/models/noisy-node/logs?follow=true&tail=0`, {
      headers: bearer(ADMIN),
      signal: ac.signal,
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /application\/x-ndjson/);
    const seen: string[] = [];
    const reader = (async () => {
      const dec = new TextDecoder();
      let rest = '';
      try {
        for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
          const parts = (rest + dec.decode(chunk, { stream: true })).split('\n');
          rest = parts.pop() ?? '';
          for (const p of parts) seen.push((JSON.parse(p) as { line: string }).line);
        }
      } catch {
        // aborted
      }
    })();
    assert.equal((await noise(1500)).status, 200); // > one file: at least one rotation
    await waitFor(() => seen.some((l) => l.startsWith('noise 1499 ')), 15_000, 50);
    const numbers = seen.map((l) => Number(l.split(' ')[1]));
    assert.deepEqual(
      numbers,
      Array.from({ length: 1500 }, (_, i) => i),
      `every line once, in order; first: ${JSON.stringify(seen.slice(0, 3))}`,
    );
    ac.abort();
    await reader;
  });

  it('isomodel logs <model> prints the tail', async () => {
    const r = await cli(['logs', 'noisy-node', '--tail', '3', '--url', h.url], { ISOMODEL_API_KEY: ADMIN });
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 3);
    assert.match(lines[2]!, /^\S+ \[r\d+\] noise 1499 x+$/);
    const denied = await cli(['logs', 'noisy-node', '--url', h.url], { ISOMODEL_API_KEY: PREDICT });
    assert.equal(denied.status, 1);
    assert.match(denied.stderr, /admin/);
  });

  it('isomodel logs -f follows until the gateway stops', async () => {
    // Checked on a second gateway, so closing it does not end this suite's.
    const g = await startGateway(['noisy-node'], { auth: KEYS });
    try {
      const child = spawn(process.execPath, [BIN, 'logs', 'noisy-node', '-f', '--tail', '0', '--url', g.url], {
        env: { PATH: process.env.PATH ?? '', ISOMODEL_API_KEY: ADMIN },
      });
      let out = '';
      child.stdout.on('data', (c: Buffer) => (out += c.toString()));
      const exited = new Promise<number | null>((r) => child.on('close', r));
      // The CLI takes a moment to start: lines written before it follows are not its (tail 0).
      await waitFor(
        async () => {
          await g.post('/models/noisy-node/predict', { sequence: 'ACGT', options: { lines: 3 } }, bearer(PREDICT));
          return out.includes('noise 2 ');
        },
        20_000,
        300,
      );
      await g.close();
      assert.equal(await exited, 0);
    } finally {
      await g.close().catch(() => undefined);
    }
  });
});

describe('seed 001 container logs', () => {
  let h: Harness;
  before(async () => {
    h = await startGateway(['noisy-node'], { auth: KEYS });
  });
  after(async () => h.close());

  it("GET /api/containers/{name}/logs holds the container's replicas' lines, not the model's", async () => {
    assert.equal(
      (await h.post('/api/containers/create', { model_id: 'noisy-node', container_name: 'nc' }, bearer(ADMIN))).status,
      201,
    );
    assert.equal((await h.post('/api/containers/start', { container_name: 'nc' }, bearer(ADMIN))).status, 200);
    assert.equal(
      (
        await h.post(
          '/api/models/run',
          { container_name: 'nc', input: { sequence: 'ACGT', options: { lines: 2 } } },
          bearer(PREDICT),
        )
      ).status,
      200,
    );
    assert.equal(
      (await h.post('/models/noisy-node/predict', { sequence: 'ACGT', options: { lines: 7 } }, bearer(PREDICT))).status,
      200,
    );
    const c = (await waitFor(
      async () => {
        const r = await h.get('/api/containers/nc/logs', bearer(ADMIN));
        return r.body.data?.lines.length === 2 ? r : undefined;
      },
      10_000,
      100,
    ))!;
    assert.deepEqual(
      c.body.data.lines.map((l: any) => l.line.split(' ').slice(0, 2).join(' ')),
      ['noise 0', 'noise 1'],
    );
    const all = (await h.get('/v1/models/noisy-node/logs', bearer(ADMIN))).body.data.lines;
    assert.equal(all.length, 9);
    assert.equal((await h.get('/api/containers/nc/logs', bearer(PREDICT))).status, 403);
  });
});

describe('replica log files across gateway runs', () => {
  it("a new run's r1 starts its own file; the earlier run's r1 moves to r1.log.1", () => {
    const dir = mkdtempSync(join(tmpdir(), 'isomodel-rlogs-'));
    try {
      const limits = { max_file_bytes: 1 << 20, keep: 2, max_model_bytes: 4 << 20 };
      const first = new ReplicaLogs(dir, limits);
      first.sink('m', 'r1')('from the first run');
      first.close();
      const second = new ReplicaLogs(dir, limits);
      const write = second.sink('m', 'r1');
      write('from the second run');
      second.flush();
      write('still the second run'); // later lines of the same replica append, no rotation
      second.close();
      const read = (f: string): string[] =>
        readFileSync(join(dir, 'm', f), 'utf8')
          .trim()
          .split('\n')
          .map((l) => l.slice(l.indexOf(' ') + 1));
      assert.deepEqual(read('r1.log'), ['from the second run', 'still the second run']);
      assert.deepEqual(read('r1.log.1'), ['from the first run']);
      assert.deepEqual(
        tailModel(join(dir, 'm'), 10).map((l) => l.line),
        ['from the first run', 'from the second run', 'still the second run'],
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
