// Adaptive batching through a real gateway, its scheduler and real worker processes: an idle
// replica takes work at once, a busy one's queue forms batches, length buckets under a token
// budget, a preferred batch size waited for only while more requests are on their way, and
// priorities that age so that none starves. Assertions are on batch composition and order
// (each answer says which worker call computed it), never on wall-clock thresholds.
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { RequestQueue, lengthBucket, type QueuedRequest } from '../src/scheduler/request-queue.js';
import { request, startGateway, waitFor, workerTmpDir, type Harness, type Res } from './helpers.js';

// Every answer names its worker call and that call's batch. options.delay_ms holds the worker for
// a while, options.gate until that file exists: the test opens the gate once its queue is set up.
const MODEL_CODE = `import { existsSync } from 'node:fs';
let calls = 0;
export async function predict(batch) {
  const call = ++calls;
  const delay = Math.max(0, ...batch.map((i) => Number(i.options.delay_ms ?? 0)));
  if (delay > 0) await new Promise((r) => setTimeout(r, delay));
  const gate = batch.find((i) => i.options.gate)?.options.gate;
  while (gate && !existsSync(gate)) await new Promise((r) => setTimeout(r, 5));
  const tags = batch.map((i) => i.options.tag ?? null);
  const lengths = batch.map((i) => i.sequence.length);
  return batch.map((i) => ({ tag: i.options.tag ?? null, call, batch_size: batch.length, tags, lengths }));
}
`;

function writeModel(dir: string, name: string, batching: string): void {
  mkdirSync(join(dir, name), { recursive: true });
  writeFileSync(
    join(dir, name, 'model.yaml'),
    `name: ${name}
version: 1.0.0
runtime: node
entry: index.mjs
tasks:
  - name: echo
    sequence_types: [DNA]
    max_length: 200
batching: ${batching}
scaling: { min_replicas: 1, max_replicas: 1, max_queue: 1000 }
resources: { memory_mb: 128, timeout_ms: 60000 }
`,
  );
  writeFileSync(join(dir, name, 'index.mjs'), MODEL_CODE);
}

interface Answer {
  tag: number | string | null;
  call: number;
  batch_size: number;
  tags: (number | string | null)[];
  lengths: number[];
}

describe('adaptive batching', () => {
  let h: Harness;
  let dir: string;
  before(async () => {
    dir = workerTmpDir('isomodel-batching-');
    // max_delay_ms of 10 s (the most a manifest may set): a wait for it would show as a queued request.
    writeModel(dir, 'eager', '{ max_batch_size: 8, max_delay_ms: 10000 }');
    writeModel(dir, 'preferring', '{ max_batch_size: 8, preferred_batch_size: 4, max_delay_ms: 10000 }');
    writeModel(dir, 'bucketed', '{ max_batch_size: 8, max_batch_tokens: 64 }');
    writeModel(dir, 'prio-strict', '{ max_batch_size: 1, priority_aging_ms: 0 }');
    writeModel(dir, 'prio-aging', '{ max_batch_size: 1, priority_aging_ms: 20 }');
    h = await startGateway([], { models_dir: dir });
    for (const name of ['eager', 'preferring', 'bucketed', 'prio-strict', 'prio-aging'])
      assert.equal(h.gw.registry.status(name), 'ready', name);
  });
  after(async () => {
    await h.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const predict = (
    model: string,
    sequence: string,
    options: Record<string, unknown> = {},
    priority?: number,
  ): Promise<Res<{ data: Answer }>> =>
    h.post(`/models/${model}/predict`, { sequence, options, ...(priority === undefined ? {} : { priority }) });
  const deployment = (model: string) => h.gw.registry.deployment(model)!;

  let gates = 0;
  /**
   * Starts a request that holds the model's one replica until the returned function is called
   * (which then waits for its answer), once that request is computing.
   */
  async function block(model: string): Promise<() => Promise<Res<{ data: Answer }>>> {
    const gate = join(dir, `gate-${++gates}`);
    const blocker = predict(model, 'ACGT', { tag: 'blocker', gate });
    await waitFor(() => deployment(model).inflightCount() === 1);
    return () => {
      writeFileSync(gate, '');
      return blocker;
    };
  }

  /** Sends requests one after the other, each once the previous one is queued: a known queue order. */
  async function enqueue(
    model: string,
    specs: { sequence?: string; tag: number | string; priority?: number; options?: Record<string, unknown> }[],
  ): Promise<Promise<Res<{ data: Answer }>>[]> {
    const pending: Promise<Res<{ data: Answer }>>[] = [];
    for (const s of specs) {
      const before = deployment(model).queueDepth();
      pending.push(predict(model, s.sequence ?? 'ACGT', { tag: s.tag, ...s.options }, s.priority));
      await waitFor(() => deployment(model).queueDepth() === before + 1, 10_000, 2);
    }
    return pending;
  }

  it('an idle replica takes a lone request at once, whatever max_delay_ms says', async () => {
    // Seen from the scheduler: the request is computing, not queued, as soon as it is there.
    const held = predict('eager', 'ACGT', { tag: 'held', delay_ms: 300 });
    await waitFor(() => deployment('eager').queueDepth() + deployment('eager').inflightCount() > 0, 10_000, 1);
    assert.deepEqual([deployment('eager').queueDepth(), deployment('eager').inflightCount()], [0, 1]);
    assert.deepEqual((await held).body.data.tags, ['held']);
    // So does a model with a preferred batch size, when nothing else is on its way.
    const alone = predict('preferring', 'ACGT', { tag: 'alone', delay_ms: 300 });
    await waitFor(
      () => deployment('preferring').queueDepth() + deployment('preferring').inflightCount() > 0,
      10_000,
      1,
    );
    assert.deepEqual([deployment('preferring').queueDepth(), deployment('preferring').inflightCount()], [0, 1]);
    assert.deepEqual((await alone).body.data.tags, ['alone']);
    for (let i = 0; i < 5; i++) {
      const r = await predict('eager', 'ACGT', { tag: i });
      assert.equal(r.status, 200);
      assert.deepEqual(r.body.data.tags, [i], 'a batch of its own, not held back for company');
    }
    // A model with a preferred batch size does not make a lone client wait for a batch that cannot come.
    for (let i = 0; i < 3; i++) {
      const r = await predict('preferring', 'ACGT', { tag: i });
      assert.equal(r.status, 200);
      assert.deepEqual(r.body.data.tags, [i]);
    }
  });

  it('while the replica is busy, requests accumulate and the next free replica takes up to max_batch_size', async () => {
    const release = await block('eager');
    const queued = await enqueue(
      'eager',
      Array.from({ length: 11 }, (_, i) => ({ tag: i })),
    );
    const first = (await release()).body.data;
    const answers = (await Promise.all(queued)).map((r) => r.body.data);
    assert.deepEqual(first.tags, ['blocker'], 'the blocker ran alone: the replica was idle when it came');
    // In queue order: the first eight as one batch, then the other three as the next.
    assert.deepEqual(answers[0]!.tags, [0, 1, 2, 3, 4, 5, 6, 7]);
    assert.deepEqual(answers[8]!.tags, [8, 9, 10]);
    assert.equal(answers[8]!.call, answers[0]!.call + 1);
    answers.forEach((a, i) => assert.equal(a.tag, i, 'each client got its own answer'));
  });

  it('forms batches by length bucket within max_batch_tokens (items x longest), a longer item alone', async () => {
    const release = await block('bucketed');
    const lengths = [8, 30, 7, 16, 29, 8, 60, 6, 13, 8, 100];
    const queued = await enqueue(
      'bucketed',
      lengths.map((n, i) => ({ tag: i, sequence: 'ACGT'.repeat(30).slice(0, n) })),
    );
    await release();
    const answers = (await Promise.all(queued)).map((r) => r.body.data);
    const batches = [...new Map(answers.map((a) => [a.call, a])).values()].sort((a, b) => a.call - b.call);
    assert.deepEqual(
      batches.map((b) => b.tags),
      [
        [0, 2, 5, 7, 9], // the head's bucket (5-8 residues): 5 x 8 = 40 <= 64; a 13 would make 6 x 13 = 78
        [1, 4], // 29-30: 2 x 30 = 60
        [3, 8], // 13-16: 2 x 16 = 32; the 60 would make 3 x 60
        [6], // 60 alone: 2 x 100 is over the budget
        [10], // 100: over the budget on its own, still served
      ],
    );
    for (const b of batches)
      if (b.lengths.length > 1)
        assert.ok(b.lengths.length * Math.max(...b.lengths) <= 64, `within the budget: ${b.lengths}`);
    // Padding waste and the tokens computed reach Prometheus and the JSON metrics.
    const padded = 4 + 40 + 60 + 32 + 60 + 100; // the blocker (4), then the five batches
    const padding = 3 + 1 + 3;
    const prom = await request<string>(`${h.url}/metrics/prometheus`, 'GET');
    assert.match(
      prom.body,
      new RegExp(`isomodel_batch_tokens_total\\{model="bucketed",version="1.0.0"\\} ${padded}\\n`),
    );
    assert.match(
      prom.body,
      new RegExp(`isomodel_batch_padding_tokens_total\\{model="bucketed",version="1.0.0"\\} ${padding}\\n`),
    );
    assert.doesNotMatch(
      prom.body,
      /isomodel_batch_tokens_total\{model="eager"/,
      'only models batched by length have the series',
    );
    const m = await h.get('/models/bucketed/metrics');
    assert.equal(m.body.data.model_metrics.padding_ratio, Math.round((padding / padded) * 1000) / 1000);
  });

  it('a preferred batch size is waited for only while more requests are on their way', async () => {
    // Four clients in a closed loop: each sends again as soon as it has its answer.
    const release = await block('preferring');
    const queued = await enqueue(
      'preferring',
      [0, 1, 2, 3].map((tag) => ({ tag })),
    );
    await release();
    const round1 = (await Promise.all(queued)).map((r) => r.body.data);
    assert.deepEqual(round1[0]!.tags, [0, 1, 2, 3]);
    // The four answers leave together, so four requests are on their way back: the first to
    // arrive finds the replica idle, and waits (at most max_delay_ms) for the other three.
    const round2 = (
      await Promise.all([0, 1, 2, 3].map((tag) => predict('preferring', 'ACGT', { tag: `again-${tag}` })))
    ).map((r) => r.body.data);
    assert.equal(new Set(round2.map((a) => a.call)).size, 1, `one batch: ${JSON.stringify(round2.map((a) => a.tags))}`);
    assert.equal(round2[0]!.batch_size, 4);

    // Without a preferred size the same closed loop never waits: the first request back goes alone.
    const release2 = await block('eager');
    const queued2 = await enqueue(
      'eager',
      [0, 1, 2, 3].map((tag) => ({ tag })),
    );
    await release2();
    await Promise.all(queued2);
    const eager = (await Promise.all([0, 1, 2, 3].map((tag) => predict('eager', 'ACGT', { tag: `again-${tag}` })))).map(
      (r) => r.body.data,
    );
    const firstCall = Math.min(...eager.map((a) => a.call));
    assert.equal(eager.find((a) => a.call === firstCall)!.batch_size, 1, 'an idle replica took the first one at once');
  });

  it('higher priorities go first, and aging keeps a low priority from starving', async () => {
    // Within moments, order is by priority (FIFO within one).
    const release = await block('prio-strict');
    const ordered = await enqueue('prio-strict', [
      { tag: 'low', priority: -5 },
      { tag: 'mid', priority: 0 },
      { tag: 'high', priority: 5 },
      { tag: 'mid2', priority: 0 },
    ]);
    await release();
    const calls = (await Promise.all(ordered)).map((r) => r.body.data);
    assert.deepEqual(
      [...calls].sort((a, b) => a.call - b.call).map((a) => a.tag),
      ['high', 'mid', 'mid2', 'low'],
    );

    /**
     * A priority -10 request queued behind a blocker while eight clients keep the queue full of
     * priority 10 work (each high request holds the worker 30 ms, so seven wait while one runs):
     * how many high requests were answered before it, or null if it still waited after `limit`.
     */
    async function starve(model: string, limit: number): Promise<number | null> {
      const release = await block(model);
      const [low] = await enqueue(model, [{ tag: 'low', priority: -10 }]);
      let lowDone = false;
      void low!.then(() => (lowDone = true));
      let served = 0;
      const client = async (): Promise<void> => {
        while (!lowDone && served < limit) {
          const r = await predict(model, 'ACGT', { tag: 'high', delay_ms: 30 }, 10);
          assert.equal(r.status, 200);
          served++;
        }
      };
      const clients = Array.from({ length: 8 }, client);
      // The clients' first requests are queued (ahead of the low one) before the worker is freed.
      await waitFor(() => deployment(model).queueDepth() === 9, 10_000, 2);
      await release();
      await Promise.all(clients);
      const servedBeforeLow = lowDone ? served : null;
      await low; // answered once the high traffic stops, in any case
      return servedBeforeLow;
    }
    // Strict priority: the low request waits as long as high ones keep coming.
    assert.equal(await starve('prio-strict', 60), null, 'starved under strict priority');
    // One level per 20 ms: after 20 levels (~0.4 s) it is ahead of fresh high requests.
    const before = await starve('prio-aging', 200);
    assert.notEqual(before, null, 'the low-priority request was served while high-priority traffic went on');
    assert.ok(before! > 0, 'high priority still went first for a while');
  });
});

describe('request queue order', () => {
  const req = (priority: number, enqueuedAt: number, sequences = ['ACGT']): QueuedRequest => ({
    task: 'echo',
    items: sequences.map((sequence) => ({ sequence, options: {} })),
    priority,
    enqueuedAt,
    stream: false,
    done: false,
  });

  it('ages priorities: one level per agingMs of queue time, strict with 0', () => {
    const aging = new RequestQueue<QueuedRequest>(100, 100);
    const low = req(-1, 0);
    aging.push(low);
    aging.push(req(1, 150)); // 2 levels above, 150 ms later: ahead (150 - 200 < 0 + 100)
    aging.push(req(1, 250)); // 250 - 100 > 100: behind the low one
    const order = (q: RequestQueue<QueuedRequest>): number[] => {
      const out: number[] = [];
      while (q.length) out.push(q.takeBatch({ maxItems: 1, maxTokens: Infinity })[0]!.req.enqueuedAt);
      return out;
    };
    assert.deepEqual(order(aging), [150, 0, 250]);
    const strict = new RequestQueue<QueuedRequest>(100, 0);
    for (const r of [req(-1, 0), req(1, 150), req(1, 1e9), req(-1, 5)]) strict.push(r);
    assert.deepEqual(order(strict), [150, 1e9, 0, 5]);
  });

  it('keeps a request over the token budget as a batch of its own, and buckets by powers of two', () => {
    assert.deepEqual([1, 2, 3, 4, 5, 8, 9, 16, 17].map(lengthBucket), [0, 1, 2, 2, 3, 3, 4, 4, 5]);
    const q = new RequestQueue<QueuedRequest>(100, 0);
    q.push(req(0, 0, ['A'.repeat(50), 'A'.repeat(10), 'A'.repeat(9)]));
    const limits = { maxItems: 8, maxTokens: 40 };
    assert.deepEqual(q.plan(limits), { positions: [0], full: true });
    assert.deepEqual(
      q.takeBatch(limits).map((u) => u.tokens),
      [50],
    );
    assert.deepEqual(
      q.takeBatch(limits).map((u) => u.tokens),
      [10, 9],
    );
  });
});
