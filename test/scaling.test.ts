// Warm-up before traffic, scale-up under backlog, and isolation of one model's overload
// from another model's traffic.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startGateway, type Harness } from './helpers.js';

describe('scaling', () => {
  let h: Harness;
  before(async () => {
    h = await startGateway(['warm-node', 'slow-node']);
  });
  after(async () => h.close());

  it('a replica answers its warm-up requests before it takes traffic', async () => {
    const r = await h.post('/models/warm-node/predict', { sequence: 'ACGT' });
    assert.equal(r.status, 200);
    assert.equal(r.body.data.calls, 3, 'two warm-up calls came first');
  });

  it('adds a replica while the backlog outgrows the running ones', async () => {
    const res = await Promise.all(
      Array.from({ length: 8 }, () =>
        h.post('/models/warm-node/predict', { sequence: 'ACGT', options: { delay_ms: 250 } }),
      ),
    );
    assert.ok(res.every((r) => r.status === 200));
    const pids = new Set(res.map((r) => r.body.data.pid));
    assert.equal(pids.size, 2, 'max_replicas 2 were used');
    assert.equal(h.gw.registry.deployment('warm-node')!.replicaInfo().length, 2);
  });

  it('an overloaded model does not slow down another model', async () => {
    // Flood slow-node (queue of 20, batches of 8 taking 300 ms) well past its capacity.
    // Order, not wall time, is asserted: the other model answers before slow-node's first batch ends.
    const finished: string[] = [];
    const flood = Array.from({ length: 60 }, () =>
      h.post('/models/slow-node/predict', { sequence: 'ACGT', options: { delay_ms: 300 } }).then((r) => {
        if (r.status === 200) finished.push('slow');
        return r;
      }),
    );
    await new Promise((r) => setTimeout(r, 50));
    const other = await h.post('/models/warm-node/predict', { sequence: 'ACGT' });
    finished.push('other');
    const statuses = (await Promise.all(flood)).map((r) => r.status);
    assert.equal(other.status, 200);
    assert.equal(finished[0], 'other', 'warm-node was not queued behind the flood');
    assert.ok(statuses.includes(429), 'the flooded model pushed back');
    assert.ok(statuses.every((s) => s === 200 || s === 429));
  });

  it('rejects a warm-up that names an unknown task', async () => {
    const { parseManifest } = await import('../src/manifest/load.js');
    assert.throws(
      () =>
        parseManifest(
          'name: x\nversion: 1.0.0\nruntime: node\nentry: i.mjs\ntasks: [{name: a, sequence_types: [DNA]}]\nwarmup: [{task: b, sequence: AC}]\n',
          'm',
        ),
      /warmup\.0\.task: no task "b"/,
    );
  });
});
