// Durability, for real: a 10,000-sequence job on `isomodel serve` (a child process with its own
// SQLite state dir), SIGKILLed part way, restarted on the same state dir. The job resumes by
// itself and its output has every sequence exactly once, in input order, each one correct,
// with the deliberately invalid sequences recorded as errors at their positions.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { PACKAGE_ROOT } from '../src/paths.js';
import { freePort, makeModelsDir, pidAlive, request, sleep, waitFor } from './helpers.js';

const TOTAL = 10_000;
const INVALID = new Map<number, string>([
  [17, 'ACGTJJ'],
  [4242, 'GATTACA!'],
  [9999, 'XYZ'],
]);
const COMP: Record<string, string> = { A: 'T', C: 'G', G: 'C', T: 'A' };
const rc = (s: string): string =>
  s
    .split('')
    .reverse()
    .map((c) => COMP[c])
    .join('');

/** Deterministic short DNA sequences (20-40 bp). */
function sequences(): string[] {
  let x = 12345;
  const rnd = (): number => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return x >>> 8;
  };
  return Array.from(
    { length: TOTAL },
    (_, i) => INVALID.get(i) ?? Array.from({ length: 20 + (rnd() % 21) }, () => 'ACGT'[rnd() % 4]).join(''),
  );
}

describe('job durability across SIGKILL', () => {
  const modelsDir = makeModelsDir(['revcomp']);
  const stateDir = mkdtempSync(join(tmpdir(), 'isomodel-jobs-durable-'));
  const children: ChildProcess[] = [];
  let stderr = '';

  async function serve(port: number): Promise<ChildProcess> {
    const child = spawn(
      process.execPath,
      [
        join(PACKAGE_ROOT, 'bin', 'isomodel.js'),
        '--models-dir',
        modelsDir,
        '--state-dir',
        stateDir,
        'serve',
        '--port',
        String(port),
        '--no-watch',
      ],
      {
        cwd: stateDir,
        env: { PATH: process.env.PATH, HOME: process.env.HOME, ISOMODEL_RATE_LIMIT: '0', ISOMODEL_LOG_LEVEL: 'info' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    children.push(child);
    const keep = (d: Buffer): void => {
      stderr = (stderr + d.toString()).slice(-20_000);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`serve exited ${child.exitCode}: ${stderr}`);
        try {
          return (await fetch(`http://127.0.0.1:${port}/health/ready`)).ok;
        } catch {
          return false;
        }
      },
      60_000,
      100,
    );
    return child;
  }

  after(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await sleep(200);
    rmSync(modelsDir, { recursive: true, force: true });
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('resumes after SIGKILL with every record exactly once, in input order', { timeout: 240_000 }, async (t) => {
    const seqs = sequences();
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const first = await serve(port);
    const body = { model: 'revcomp', sequences: seqs, workers: 1, chunk_size: 8, name: 'durable' };
    const key = { 'idempotency-key': 'durability-test-1' };
    const sub = await request<any>(`${url}/v1/jobs`, 'POST', body, key);
    assert.equal(sub.status, 202, JSON.stringify(sub.body).slice(0, 500));
    const id: string = sub.body.data.id;

    // Wait until some but not all records are done, then kill -9 the gateway.
    const workerPids = (
      (await request<any>(`${url}/models/revcomp/health`, 'GET')).body.data.replicas as { pid?: number }[]
    )
      .map((r) => r.pid)
      .filter((p): p is number => !!p);
    let before: any;
    for (;;) {
      before = (await request<any>(`${url}/v1/jobs/${id}`, 'GET')).body.data;
      assert.ok(before.done < TOTAL, 'the job finished before it could be killed: make it slower');
      if (before.done >= 300) break;
      await sleep(10);
    }
    first.kill('SIGKILL');
    await new Promise((r) => first.once('exit', r));
    // Its workers notice their gateway is gone (stdin closes) and exit; clean up if one does not.
    await waitFor(() => workerPids.every((p) => !pidAlive(p)), 10_000).catch(() =>
      workerPids.forEach((p) => pidAlive(p) && process.kill(p, 'SIGKILL')),
    );

    // Restart on the same state dir: the job is still there, with what had been committed.
    await serve(port);
    const resumed = (await request<any>(`${url}/v1/jobs/${id}`, 'GET')).body.data;
    assert.ok(['running', 'succeeded'].includes(resumed.status), resumed.status);
    assert.ok(resumed.done >= before.done, `committed results survive (${resumed.done} >= ${before.done})`);
    assert.ok(resumed.done < TOTAL || resumed.status === 'succeeded');
    t.diagnostic(
      `killed at ${before.done}/${TOTAL} done; after restart ${resumed.done} committed, status ${resumed.status}`,
    );
    // The idempotency key survives too: the same submission is the same job, not a new one.
    const again = await request<any>(`${url}/v1/jobs`, 'POST', body, key);
    assert.equal(again.status, 200);
    assert.equal(again.body.data.id, id);

    // Stream the results while the resumed job finishes: in order, every record once.
    const res = await fetch(`${url}/v1/jobs/${id}/results`);
    assert.equal(res.status, 200);
    const text = await res.text();
    const recs = text
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l));
    assert.equal(recs.length, TOTAL);
    let errors = 0;
    recs.forEach((r, i) => {
      assert.equal(r.metadata.index, i, `record ${i} in place`);
      assert.equal(r.metadata.request_id, `seq${i + 1}`);
      if (INVALID.has(i)) {
        errors++;
        assert.equal(r.status, 'error', `record ${i}`);
        assert.equal(r.error.code, 'INVALID_SEQUENCE');
      } else {
        assert.equal(r.status, 'success', `record ${i}: ${JSON.stringify(r)}`);
        assert.equal(r.output.reverse_complement, rc(seqs[i]!), `record ${i}`);
      }
    });
    assert.equal(errors, INVALID.size);

    const final = (await request<any>(`${url}/v1/jobs/${id}`, 'GET')).body.data;
    assert.equal(final.status, 'succeeded');
    assert.deepEqual([final.total, final.done, final.failed, final.pending], [TOTAL, TOTAL, INVALID.size, 0]);
    assert.match(stderr, /resuming unfinished jobs/);
  });
});
