// A model that crashes, leaks, loops or babbles must never take the gateway down, and the
// next request must succeed on a fresh worker.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pidAlive, startGateway, waitFor, type Harness } from './helpers.js';

const chaos = (options: Record<string, unknown>) => ({ sequence: 'ACGT', options });

describe('worker failures (Python chaos model)', () => {
  let h: Harness;
  const logs: Record<string, unknown>[] = [];
  before(async () => {
    process.env.ISOMODEL_SECRET_TEST = 'do-not-leak';
    h = await startGateway(['chaos-py'], {}, { logs });
  });
  after(async () => {
    delete process.env.ISOMODEL_SECRET_TEST;
    await h.close();
  });

  const workerPid = async (): Promise<number> => {
    const d = await h.get('/health/detailed');
    return d.body.data.models[0].replicas[0]?.pid;
  };
  const okAfter = async (): Promise<void> => {
    const r = await h.post('/predict', chaos({ action: 'ok' }));
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.data.length, 4);
  };

  it('a worker killed with SIGKILL mid-request fails that request, then recovers', async () => {
    const pid = await workerPid();
    const t0 = Date.now();
    const pending = h.post('/predict', chaos({ action: 'sleep', seconds: 20 }));
    await waitFor(async () => (await h.get('/health/detailed')).body.data.models[0].replicas[0]?.busy, 10_000, 5);
    process.kill(pid, 'SIGKILL');
    const r = await pending;
    assert.equal(r.status, 500);
    assert.equal(r.body.error.code, 'PREDICTION_FAILED');
    assert.match(r.body.message, /SIGKILL/);
    assert.ok(Date.now() - t0 < 10_000, 'the failure is reported at once, not after the sleep');
    await okAfter();
    assert.notEqual(await workerPid(), pid);
  });

  it('readiness goes red while a worker is dead and green once it is back', async () => {
    const pid = await workerPid();
    process.kill(pid, 'SIGKILL');
    const seen = new Set<number>();
    await waitFor(
      async () => {
        const s = (await h.get('/health/ready')).status;
        seen.add(s);
        return seen.has(503) && s === 200;
      },
      30_000,
      5,
    );
    assert.ok(seen.has(503));
  });

  it('a model past its memory limit is stopped and reported', async () => {
    const r = await h.post('/predict', chaos({ action: 'hog', mb: 1024 }));
    assert.equal(r.status, 500);
    assert.equal(r.body.error.code, 'PREDICTION_FAILED');
    assert.match(r.body.message, /memory limit exceeded \(128 MB\)/);
    assert.match(r.body.error.details.reason, /memory limit/);
    await okAfter();
    const d = await h.get('/health/detailed');
    assert.match(d.body.data.models[0].replicas[0].last_exit, /memory limit exceeded/);
  });

  it('a model that loops forever hits its timeout and is replaced', async () => {
    const pid = await workerPid();
    const t0 = Date.now();
    const r = await h.post('/predict', chaos({ action: 'loop' }));
    assert.equal(r.status, 504);
    assert.equal(r.body.error.code, 'PREDICTION_TIMEOUT');
    assert.ok(Date.now() - t0 >= 2900, 'waits for the 3000 ms manifest timeout');
    await waitFor(() => !pidAlive(pid));
    await okAfter();
  });

  it('a per-request timeout shorter than the manifest one is honoured', async () => {
    const r = await h.post('/predict', { ...chaos({ action: 'sleep', seconds: 1 }), timeout_ms: 200 });
    assert.equal(r.status, 504);
    assert.equal(r.body.error.code, 'PREDICTION_TIMEOUT');
    await okAfter();
  });

  it('malformed worker output is an error, not a crash', async () => {
    const r = await h.post('/predict', chaos({ action: 'garbage' }));
    assert.equal(r.status, 500);
    assert.equal(r.body.error.code, 'PREDICTION_FAILED');
    assert.match(r.body.message, /malformed/);
    assert.equal(r.body.error.details.output, 'this is not json');
    await okAfter();
  });

  it('a worker that exits by itself fails the request and restarts', async () => {
    const r = await h.post('/predict', chaos({ action: 'crash' }));
    assert.equal(r.body.error.code, 'PREDICTION_FAILED');
    assert.match(r.body.message, /exit code 3/);
    await okAfter();
  });

  it('an exception in predict fails the batch but keeps the worker', async () => {
    const pid = await workerPid();
    const r = await h.post('/predict', chaos({ action: 'raise' }));
    assert.equal(r.status, 500);
    assert.equal(r.body.error.code, 'PREDICTION_FAILED');
    assert.match(r.body.message, /asked to raise/);
    await okAfter();
    assert.equal(await workerPid(), pid);
  });

  it('stray prints go to the log, not the protocol', async () => {
    const pid = await workerPid();
    // Only what this request logs: earlier tests here break the protocol on purpose.
    const from = logs.length;
    const r = await h.post('/predict', chaos({ action: 'print' }));
    assert.equal(r.status, 200, JSON.stringify(r.body));
    // The answer is the model's own, not a protocol error, and the worker was not replaced for it.
    assert.deepEqual(r.body.data.length, 4);
    assert.equal(await workerPid(), pid);
    // The print itself reached the gateway's log as a line of this worker's stderr.
    const line = (await waitFor(() => logs.slice(from).find((l) => l.worker_log === 'noise on stdout'), 5000))!;
    assert.equal(line.msg, 'worker log');
    assert.equal(line.model, 'chaos-py');
    const violations = logs.slice(from).filter((l) => /malformed/.test(String(l.msg)));
    assert.deepEqual(violations, [], 'no protocol violation was logged');
  });

  it('workers get a scrubbed environment, their own working dir and their cgroup', async () => {
    const r = await h.post('/predict', chaos({ action: 'env' }));
    assert.equal(r.status, 200);
    const { env, cwd, cgroup } = r.body.data;
    assert.ok(!env.includes('ISOMODEL_SECRET_TEST'), 'gateway secrets stay in the gateway');
    assert.ok(env.includes('ISOMODEL_MODEL_DIR'));
    // The scratch dir is in the work dir, outside the state dir (0700, the gateway's only).
    assert.ok(cwd.startsWith(join(h.gw.config.work_dir!, 'run') + '/'), `${cwd} is under the work dir`);
    assert.ok(!cwd.startsWith(h.stateDir + '/'), `${cwd} is not in the state dir`);
    assert.equal(typeof cgroup, 'string');
  });

  it('each worker runs in its own cgroup, named after the state dir and the gateway', async (t) => {
    // Where the gateway cannot create cgroups (no writable cgroup fs, no delegation) workers stay in
    // the gateway's: say so in the test report rather than pass without checking anything.
    if (h.gw.cgroups.version === 'none') {
      t.skip(
        'cgroups are not writable on this machine (CgroupManager.detect() found none): worker cgroups are not checked',
      );
      return;
    }
    const r = await h.post('/predict', chaos({ action: 'env' }));
    assert.equal(r.status, 200);
    // Named after the state dir and the gateway, so a later gateway can remove it if this one dies.
    assert.match(r.body.data.cgroup, /isomodel\/[0-9a-f]{12}-\d+\.\d+-chaos-py-r\d+-\d+\n/);
  });

  it('the gateway stays up through all of it', async () => {
    assert.equal((await h.get('/health/live')).status, 200);
    const m = await h.get('/models/chaos-py/metrics');
    assert.ok(m.body.data.model_metrics.worker_restarts >= 5);
  });
});
