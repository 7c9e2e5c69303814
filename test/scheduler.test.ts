// Scheduling through the real stack: dynamic batching, bounded queues, cancellation on
// client disconnect, scale to zero and wake-up, inline isolation.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { pidAlive, sleep, startGateway, waitFor, type Harness } from './helpers.js';

describe('scheduler', () => {
  let h: Harness;
  before(async () => {
    h = await startGateway(['slow-node', 'sleepy-node', 'inline-node'], { inline_models: ['inline-node'] });
  });
  after(async () => h.close());

  it('merges concurrent single requests into worker batches and splits the answers back', async () => {
    // The replica is kept busy first, so the 16 wait in the queue together however slowly a
    // loaded machine sends them (sent bare, they once arrived over more than max_delay_ms apart).
    const dep = h.gw.registry.deployment('slow-node')!;
    const busy = h.post('/models/slow-node/predict', { sequence: 'ACGT', options: { delay_ms: 800 } });
    await waitFor(() => dep.inflightCount() > 0, 5000, 5);
    const seqs = Array.from({ length: 16 }, (_, i) => 'A'.repeat(i + 1));
    const res = await Promise.all(seqs.map((s) => h.post('/models/slow-node/predict', { sequence: s })));
    assert.equal((await busy).status, 200);
    res.forEach((r, i) => {
      assert.equal(r.status, 200);
      assert.equal(r.body.data.length, i + 1, 'each client gets its own answer');
    });
    const sizes = res.map((r) => r.body.data.batch_size as number);
    assert.ok(Math.max(...sizes) > 1, `concurrent requests were batched (sizes ${sizes})`);
    assert.ok(Math.max(...sizes) <= 8, 'never above max_batch_size');
    const m = await h.get('/models/slow-node/metrics');
    assert.ok(m.body.data.model_metrics.average_batch_size > 1);
  });

  it('splits a batch request larger than max_batch_size across worker batches', async () => {
    const r = await h.post('/models/slow-node/predict/batch', {
      sequences: Array.from({ length: 20 }, (_, i) => 'C'.repeat(i + 1)),
    });
    assert.equal(r.status, 200);
    assert.deepEqual(
      r.body.data.predictions.map((p: any) => p.length),
      Array.from({ length: 20 }, (_, i) => i + 1),
    );
    assert.ok(r.body.data.predictions.every((p: any) => p.batch_size <= 8));
  });

  it('judges a worker busy computing by its batch deadline, not by a health ping; an idle hung worker still misses its ping', async () => {
    const dep = h.gw.registry.deployment('slow-node')!;
    type Pingable = { ping(ms: number): Promise<void> };
    const worker = (): Pingable => (dep as unknown as { replicas: { worker: Pingable | null }[] }).replicas[0]!.worker!;
    const pid = dep.replicaInfo()[0]!.pid!;
    // busy_ms blocks the worker's only thread: it reads no ping until the batch is done.
    const pending = h.post('/models/slow-node/predict', { sequence: 'ACGT', options: { busy_ms: 1500 } });
    await waitFor(() => dep.inflightCount() > 0, 5000, 5);
    await worker().ping(200);
    const r = await pending;
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.data.pid, pid, 'the busy worker was kept');
    // A stopped worker with nothing to compute is what pings are for.
    process.kill(pid, 'SIGSTOP');
    try {
      await assert.rejects(worker().ping(200), /did not answer a ping within 200 ms/);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await worker().ping(5000);
  });

  it('answers QUEUE_FULL with Retry-After instead of growing the queue', async () => {
    // One slow batch of 8 in flight, then 20 queued fill the queue: the rest are refused.
    const slow = Array.from({ length: 8 }, () =>
      h.post('/models/slow-node/predict', { sequence: 'ACGT', options: { delay_ms: 600 } }),
    );
    await sleep(100);
    const more = await Promise.all(
      Array.from({ length: 30 }, () =>
        h.post('/models/slow-node/predict', { sequence: 'ACGT', options: { delay_ms: 1 } }),
      ),
    );
    const statuses = more.map((r) => r.status);
    assert.ok(statuses.includes(429), `some refused: ${statuses}`);
    const refused = more.find((r) => r.status === 429)!;
    assert.equal(refused.body.error.code, 'QUEUE_FULL');
    assert.equal(refused.headers.get('retry-after'), '1');
    assert.equal(statuses.filter((s) => s === 200).length + statuses.filter((s) => s === 429).length, 30);
    assert.ok((await Promise.all(slow)).every((r) => r.status === 200));
  });

  it('drops the queued work of a client that disconnects', async () => {
    const blocker = h.post('/models/slow-node/predict', { sequence: 'ACGT', options: { delay_ms: 800 } });
    await sleep(50);
    const ac = new AbortController();
    const gone = fetch(`${h.url}/models/slow-node/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ sequence: 'ACGT', options: { delay_ms: 2000 } }),
      signal: ac.signal,
    }).catch((e: Error) => e);
    await waitFor(() => h.gw.registry.deployment('slow-node')!.queueDepth() === 1);
    ac.abort();
    assert.ok((await gone) instanceof Error);
    await waitFor(() => h.gw.registry.deployment('slow-node')!.queueDepth() === 0, 2000);
    await blocker;
    // Had the abandoned 2 s request run, this one would wait behind it.
    const t0 = Date.now();
    assert.equal((await h.post('/models/slow-node/predict', { sequence: 'ACGT' })).status, 200);
    assert.ok(Date.now() - t0 < 1500);
  });

  it('scales an idle model to zero and wakes it on the next request', async () => {
    const first = await h.post('/models/sleepy-node/predict', { sequence: 'ACGT' });
    const pid = first.body.data.pid as number;
    await waitFor(() => !pidAlive(pid), 10_000, 100);
    assert.equal(h.gw.registry.deployment('sleepy-node')!.replicaInfo().length, 0);
    const again = await h.post('/models/sleepy-node/predict', { sequence: 'ACGT' });
    assert.equal(again.status, 200);
    assert.notEqual(again.body.data.pid, pid);
  });

  it('runs an inline model inside the gateway process', async () => {
    const r = await h.post('/models/inline-node/predict', { sequence: 'mkvlaa' });
    assert.equal(r.status, 200);
    assert.deepEqual([r.body.data.model, r.body.data.letters, r.body.data.pid], ['inline-node', 5, process.pid]);
  });
});
