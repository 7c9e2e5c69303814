// One model deployment (src/scheduler/deployment.ts) without a gateway: its replicas are
// in-memory workers implementing the driver interface (worker/types.ts WorkerHandle), so each test
// decides when a worker starts, answers, crashes or misses a ping. Real processes would make the
// restart, idle and ping paths take seconds to minutes each (backoff, idle timeouts, 10 s pings)
// and their timing noisy; here the timed paths run under node:test's mock timers. batching.test.ts,
// scaling.test.ts, deployments.test.ts and failures.test.ts check the same through a real gateway
// and real workers; this file runs in a few seconds, for `npm run mutate -- scheduler-deployment`.
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { afterEach, describe, mock } from 'node:test';
import { failFastIt } from './fail-fast.js';
import { IsoError } from '../src/errors.js';
import { parseManifest, type ModelPackage } from '../src/manifest/load.js';
import { ModelDeployment, type DeploymentOptions, type SubmitOptions } from '../src/scheduler/deployment.js';
import { DeviceAllocator } from '../src/scheduler/placement.js';
import type { DeploymentObserver } from '../src/telemetry/prometheus.js';
import type { ItemOutput, WorkItem } from '../src/worker/protocol.js';
import { loggerInto, flush } from './scheduler-fixture.js';
import { Fleet, type FakeWorker } from './fake-worker.js';

const it = failFastIt(8000);

class Observer implements DeploymentObserver {
  readonly queuedS: number[] = [];
  readonly batches: [number, boolean][] = [];
  readonly tokenCounts: [number, number][] = [];
  readonly restarts: string[] = [];
  queued(s: number): void {
    this.queuedS.push(s);
  }
  batch(size: number, secs: number, ok: boolean): void {
    assert.ok(secs >= 0 && secs < 60);
    this.batches.push([size, ok]);
  }
  tokens(padded: number, padding: number): void {
    this.tokenCounts.push([padded, padding]);
  }
  restart(reason: string): void {
    this.restarts.push(reason);
  }
}

interface Opts {
  batching?: string;
  scaling?: string;
  resources?: string;
  extra?: string[];
  options?: DeploymentOptions;
  auto?: boolean;
  /** Only the task echo. */
  oneTask?: boolean;
  /** Built without a DeploymentObserver (offline batch runs have none). */
  noObserver?: boolean;
}

function pkg(o: Opts = {}): ModelPackage {
  const yaml = [
    'name: fake',
    'version: 3.0.0',
    'runtime: node',
    'entry: index.mjs',
    'tasks:',
    '  - { name: echo, sequence_types: [DNA], max_length: 100 }',
    ...(o.oneTask ? [] : ['  - { name: hold, sequence_types: [DNA], max_length: 100 }']),
    `batching: ${o.batching ?? '{ max_batch_size: 4 }'}`,
    `scaling: ${o.scaling ?? '{ min_replicas: 1, max_replicas: 1, max_queue: 100 }'}`,
    `resources: ${o.resources ?? '{ timeout_ms: 5000 }'}`,
    ...(o.extra ?? []),
  ].join('\n');
  return { manifest: parseManifest(yaml, 'fake/model.yaml'), dir: '/models/fake', fingerprint: 'f' };
}

function make(o: Opts = {}) {
  const fleet = new Fleet();
  fleet.auto = o.auto ?? false;
  const lines: Record<string, unknown>[] = [];
  const logger = loggerInto(lines);
  const observer = new Observer();
  const dep = new ModelDeployment(pkg(o), fleet.create, logger, o.noObserver ? undefined : observer, o.options);
  deployments.push(dep);
  return { dep, fleet, observer, lines };
}

const deployments: ModelDeployment[] = [];
afterEach(async () => {
  for (const d of deployments.splice(0)) await d.stop(10);
  await flush();
  mock.timers.reset();
});

const items = (...seqs: string[]): WorkItem[] => seqs.map((s) => ({ sequence: s, options: {} }));
const req = (seqs: string[], over: Partial<SubmitOptions> = {}): SubmitOptions => ({
  task: 'echo',
  items: items(...seqs),
  ...over,
});
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
function code(c: string, message?: RegExp) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof IsoError, String(e));
    assert.equal(e.code, c, e.message);
    if (message) assert.match(e.message, message);
    return true;
  };
}
/** Records how a promise settles, without awaiting it. */
function track<T>(p: Promise<T>): { value?: T; error?: IsoError; settled: boolean } {
  const t: { value?: T; error?: IsoError; settled: boolean } = { settled: false };
  p.then(
    (v) => Object.assign(t, { value: v, settled: true }),
    (e: IsoError) => Object.assign(t, { error: e, settled: true }),
  );
  return t;
}
const echoes = (out: ItemOutput[] | undefined): unknown[] => (out ?? []).map((o) => (o as { echo: string }).echo);

describe('deployment: start, serve, stop', () => {
  it('starts min_replicas workers, serves a request in one batch, reports its replicas', async () => {
    const { dep, fleet, observer } = make({ scaling: '{ min_replicas: 2, max_replicas: 3 }', auto: true });
    assert.equal(dep.state, 'loading');
    assert.deepEqual([dep.name, dep.version], ['fake', '3.0.0']);
    await assert.rejects(dep.submit(req(['A'])), code('MODEL_NOT_LOADED', /^model fake is loading$/));
    await dep.start();
    assert.equal(dep.state, 'ready');
    assert.equal(dep.healthy(), true);
    assert.equal(fleet.workers.length, 2);
    // Each worker gets its replica's id and the package (no devices: the same env).
    assert.deepEqual(
      fleet.workers.map((w) => w.pkg.manifest.name),
      ['fake', 'fake'],
    );
    const out = await dep.submit(req(['AC', 'GT', 'TT']));
    assert.deepEqual(echoes(out), ['AC', 'GT', 'TT']);
    const call = fleet.workers[0]!.calls[0]!.call;
    assert.deepEqual([call.task, call.timeoutMs, call.stream, call.items.length], ['echo', 5000, false, 3]);
    assert.equal(call.onChunk, undefined);
    assert.deepEqual(observer.batches, [[3, true]]);
    assert.equal(observer.queuedS.length, 1);
    assert.ok(observer.queuedS[0]! >= 0 && observer.queuedS[0]! < 1);
    assert.deepEqual(await dep.submit(req([])), []);
    assert.equal(fleet.workers[0]!.calls.length + fleet.workers[1]!.calls.length, 1);
    const info = dep.replicaInfo();
    assert.deepEqual(
      info.map((r) => ({ ...r, id: undefined })),
      [
        {
          id: undefined,
          state: 'ready',
          pid: 100,
          busy: false,
          restarts: 0,
          rss_bytes: 1100,
          cpu_percent: 12.3,
          open_fds: 7,
          last_exit: undefined,
          last_error: undefined,
          devices: undefined,
        },
        {
          id: undefined,
          state: 'ready',
          pid: 101,
          busy: false,
          restarts: 0,
          rss_bytes: 1101,
          cpu_percent: 12.3,
          open_fds: 7,
          last_exit: undefined,
          last_error: undefined,
          devices: undefined,
        },
      ],
    );
    assert.notEqual(info[0]!.id, info[1]!.id);
    assert.deepEqual(
      fleet.workers.map((w) => w.id),
      info.map((r) => r.id),
    );
    assert.equal(dep.gpuUtilization(), null);
    assert.equal(dep.stats.summary().batches, 1);
    assert.equal(dep.stats.summary().average_batch_size, 3);
    assert.equal(dep.stats.summary().padding_ratio, null);
    await dep.stop();
    assert.equal(dep.state, 'stopped');
    assert.deepEqual(dep.replicaInfo(), []);
    assert.equal(fleet.live().length, 0);
    assert.equal(dep.healthy(), false);
  });

  it('a replica that cannot start fails the deployment; the others are stopped', async () => {
    const { dep, fleet } = make({ scaling: '{ min_replicas: 3, max_replicas: 3 }' });
    const g = Promise.resolve();
    fleet.plans.push('ok', 'fail', g);
    await assert.rejects(dep.start(), code('MODEL_NOT_LOADED', /^boom$/));
    assert.equal(dep.state, 'stopped');
    assert.equal(dep.lastError, 'boom');
    assert.equal(fleet.live().length, 0);
    assert.equal(fleet.workers[0]!.stops, 1);
    // A failed deployment says why.
    const d2 = make();
    d2.fleet.plans.push('fail');
    await assert.rejects(d2.dep.start());
    d2.dep.state = 'failed';
    await assert.rejects(d2.dep.submit(req(['A'])), code('MODEL_NOT_LOADED', /^model fake failed to load: boom$/));
  });

  it('stop() while the replicas start: start() rejects and the deployment stays stopped, with no replica', async () => {
    const { dep, fleet } = make({ scaling: '{ min_replicas: 2, max_replicas: 2 }' });
    let open!: () => void;
    const gate = new Promise<void>((r) => (open = r));
    fleet.plans.push(gate, gate);
    const starting = track(dep.start());
    await flush();
    assert.equal(fleet.workers.length, 2);
    await dep.stop(10);
    open();
    await flush();
    assert.ok(starting.settled);
    assert.equal(starting.error?.code, 'MODEL_NOT_LOADED');
    assert.equal(starting.error?.message, 'model fake was unloaded while it was starting');
    assert.equal(dep.state, 'stopped');
    assert.equal(fleet.live().length, 0);
    assert.deepEqual(dep.replicaInfo(), []);
    await assert.rejects(dep.submit(req(['A'])), code('MODEL_NOT_LOADED', /^model fake is stopped$/));
  });

  it('min_replicas 0 still starts one replica', async () => {
    const { dep, fleet } = make({ scaling: '{ min_replicas: 0, max_replicas: 2 }' });
    await dep.start();
    assert.equal(fleet.workers.length, 1);
  });

  it('runs the warm-up requests on each new worker before it takes traffic; a failed warm-up fails the start', async () => {
    const { dep, fleet } = make({
      oneTask: true,
      extra: ['warmup:', '  - { sequence: acgt, options: { k: 1 } }', '  - { task: echo, sequence: gg }'],
    });
    const started = dep.start();
    await flush();
    const w = fleet.workers[0]!;
    assert.equal(dep.state, 'loading');
    assert.deepEqual(w.calls[0]!.call, {
      task: 'echo',
      items: [{ sequence: 'ACGT', options: { k: 1 } }],
      timeoutMs: 5000,
    });
    w.answer();
    await flush();
    assert.deepEqual(w.calls[1]!.call, { task: 'echo', items: [{ sequence: 'GG', options: {} }], timeoutMs: 5000 });
    w.answer();
    await started;
    assert.equal(dep.state, 'ready');

    const bad = make({ oneTask: true, extra: ['warmup:', '  - { sequence: acgt }'] });
    const s2 = bad.dep.start();
    await flush();
    bad.fleet.workers[0]!.answer([{ error: { code: 'X', message: 'no weights' } }]);
    await assert.rejects(
      s2,
      code('MODEL_NOT_LOADED', /^warm-up request failed: \{"code":"X","message":"no weights"\}$/),
    );
    assert.equal(bad.fleet.workers[0]!.stops, 1);
    assert.equal(bad.dep.lastError, 'warm-up request failed: {"code":"X","message":"no weights"}');

    const thrown = make({ oneTask: true, extra: ['warmup:', '  - { sequence: acgt }'] });
    const s3 = thrown.dep.start();
    await flush();
    thrown.fleet.workers[0]!.failCall(new IsoError('PREDICTION_FAILED', 'segfault'));
    await assert.rejects(s3, /warm-up request failed: segfault/);
  });

  it('stop() fails queued requests and stops every worker; drain() lets in-flight work finish first', async () => {
    const { dep, fleet } = make({ batching: '{ max_batch_size: 1 }' });
    await dep.start();
    const a = track(dep.submit(req(['A'])));
    const b = track(dep.submit(req(['C'])));
    await flush();
    const drained = track(dep.drain());
    await flush();
    assert.equal(dep.state, 'draining');
    await assert.rejects(dep.submit(req(['G'])), code('MODEL_NOT_LOADED', /^model fake is draining$/));
    assert.equal(drained.settled, false);
    fleet.workers[0]!.answer();
    await flush();
    assert.equal(drained.settled, false);
    fleet.workers[0]!.answer();
    await flush();
    assert.deepEqual([echoes(a.value), echoes(b.value)], [['A'], ['C']]);
    assert.equal(drained.settled, true);
    assert.equal(dep.state, 'stopped');
    assert.equal(fleet.workers[0]!.stops, 1);
    // Draining a stopped deployment is a no-op.
    await dep.drain();

    const s = make({ batching: '{ max_batch_size: 1 }' });
    await s.dep.start();
    const inflight = track(s.dep.submit(req(['A'])));
    const queued = track(s.dep.submit(req(['C'])));
    await flush();
    await s.dep.stop();
    await flush();
    assert.ok(queued.error);
    code('MODEL_NOT_LOADED', /^model fake was unloaded$/)(queued.error);
    // The in-flight request fails with its worker (an expected stop: no restart).
    code('PREDICTION_FAILED', /^model worker stopped; it will be restarted$/)(inflight.error);
    assert.equal(s.fleet.workers.length, 1);
  });

  it('stop() stops every replica even when a worker reports its exit inside stop()', async () => {
    const { dep, fleet } = make({ scaling: '{ min_replicas: 3, max_replicas: 3, max_queue: 10 }' });
    fleet.syncStop = true;
    await dep.start();
    assert.equal(fleet.workers.length, 3);
    await dep.stop();
    // Iterating the live list skipped the replica after each one that left it.
    assert.deepEqual(
      fleet.workers.map((w) => w.stops),
      [1, 1, 1],
    );
    assert.deepEqual(fleet.live(), []);
  });

  it('drain() gives up waiting after its grace period', async () => {
    const { dep, fleet } = make();
    await dep.start();
    const a = track(dep.submit(req(['A'])));
    await flush();
    await dep.drain(30);
    assert.equal(dep.state, 'stopped');
    assert.equal(fleet.workers[0]!.stops, 1);
    await flush();
    code('PREDICTION_FAILED')(a.error);
    // An idle deployment drains at once.
    const idle = make();
    await idle.dep.start();
    const t0 = Date.now();
    await idle.dep.drain(5000);
    assert.ok(Date.now() - t0 < 4000);
  });

  it('requests reaching a replaced deployment go to its successor once it stops serving', async () => {
    const old = make({ auto: true });
    const next = make({ auto: true });
    await old.dep.start();
    await next.dep.start();
    old.dep.forwardTo(next.dep);
    // Still ready: it serves them itself.
    assert.deepEqual(echoes(await old.dep.submit(req(['A']))), ['A']);
    assert.equal(old.fleet.workers[0]!.calls.length, 1);
    await old.dep.drain();
    assert.deepEqual(echoes(await old.dep.submit(req(['C']))), ['C']);
    assert.equal(next.fleet.workers[0]!.calls.length, 1);
  });
});

describe('deployment: batching and the bounded queue', () => {
  it('continuous batching: while the replica is busy requests queue, then go as one batch up to max_batch_size', async () => {
    const { dep, fleet, observer } = make({ batching: '{ max_batch_size: 4 }' });
    await dep.start();
    const w = fleet.workers[0]!;
    const a = track(dep.submit(req(['A1'])));
    await flush();
    assert.equal(w.calls.length, 1);
    assert.equal(dep.inflightCount(), 1);
    assert.equal(dep.replicaInfo()[0]!.busy, true);
    const b = track(dep.submit(req(['B1', 'B2', 'B3'])));
    const c = track(dep.submit(req(['C1', 'C2'])));
    await flush();
    assert.equal(dep.queueDepth(), 5);
    assert.equal(w.calls.length, 1);
    w.answer();
    await flush();
    assert.deepEqual(
      w.calls[1]!.call.items.map((i) => i.sequence),
      ['B1', 'B2', 'B3', 'C1'],
    );
    assert.equal(dep.queueDepth(), 1);
    assert.equal(dep.inflightCount(), 4);
    w.answer();
    await flush();
    assert.deepEqual(echoes(b.value), ['B1', 'B2', 'B3']);
    assert.equal(c.settled, false);
    assert.deepEqual(
      w.calls[2]!.call.items.map((i) => i.sequence),
      ['C2'],
    );
    w.answer();
    await flush();
    assert.deepEqual([echoes(a.value), echoes(c.value)], [['A1'], ['C1', 'C2']]);
    assert.deepEqual(observer.batches, [
      [1, true],
      [4, true],
      [1, true],
    ]);
    // One queue-time sample per request, not per item.
    assert.equal(observer.queuedS.length, 3);
    assert.equal(dep.stats.summary().batches, 3);
    assert.equal(dep.queueDepth(), 0);
    assert.equal(dep.inflightCount(), 0);
  });

  it('a full queue refuses with QUEUE_FULL and Retry-After 1; nothing already queued is lost', async () => {
    const { dep, fleet } = make({
      batching: '{ max_batch_size: 1 }',
      scaling: '{ min_replicas: 1, max_replicas: 1, max_queue: 3 }',
    });
    await dep.start();
    const first = track(dep.submit(req(['A'])));
    await flush();
    const queued = track(dep.submit(req(['C', 'G', 'T'])));
    await assert.rejects(dep.submit(req(['A'])), (e: IsoError) => {
      code('QUEUE_FULL', /^model fake has 3 sequences queued \(limit 3\); retry later$/)(e);
      assert.equal(e.retryAfterS, 1);
      assert.deepEqual(e.details, { queue_depth: 3 });
      return true;
    });
    for (let i = 0; i < 4; i++) {
      fleet.workers[0]!.answer();
      await flush();
    }
    assert.deepEqual([echoes(first.value), echoes(queued.value)], [['A'], ['C', 'G', 'T']]);
  });

  it('a batch that fails fails every request in it; a worker that returns an error item fails only that item', async () => {
    const { dep, fleet, observer } = make();
    await dep.start();
    const w = fleet.workers[0]!;
    const hold = track(dep.submit(req(['H'])));
    await flush();
    const a = track(dep.submit(req(['A'])));
    const b = track(dep.submit(req(['C', 'G'])));
    w.answer();
    await flush();
    w.failCall(new IsoError('PREDICTION_TIMEOUT', 'too slow'));
    await flush();
    assert.ok(hold.value);
    code('PREDICTION_TIMEOUT', /^too slow$/)(a.error);
    assert.equal(b.error, a.error);
    assert.deepEqual(observer.batches, [
      [1, true],
      [3, false],
    ]);
    // The replica serves the next batch.
    const c = track(dep.submit(req(['T', 'A'])));
    await flush();
    w.answer([{ error: { code: 'BAD', message: 'no' } }, { ok: 1 }]);
    await flush();
    assert.deepEqual(c.value, [{ error: { code: 'BAD', message: 'no' } }, { ok: 1 }]);
  });

  it('a deadline covers queue time: PREDICTION_TIMEOUT, and a request that timed out while queued is never sent', async () => {
    const { dep, fleet } = make({ batching: '{ max_batch_size: 1 }' });
    await dep.start();
    const w = fleet.workers[0]!;
    const a = track(dep.submit(req(['A'])));
    await flush();
    await assert.rejects(dep.submit(req(['C'], { timeoutMs: 20 })), (e: IsoError) => {
      code('PREDICTION_TIMEOUT', /^no answer within 20 ms$/)(e);
      assert.deepEqual(e.details, { timeout_ms: 20 });
      return true;
    });
    assert.equal(dep.queueDepth(), 0);
    w.answer();
    await flush();
    assert.ok(a.value);
    assert.equal(w.calls.length, 1);
  });

  it("the default deadline is the model's timeout_ms plus 30 s of queue time", async () => {
    mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 1_000_000 });
    const { dep } = make();
    await dep.start();
    const a = track(dep.submit(req(['A'])));
    await flush();
    mock.timers.tick(34_999);
    await flush();
    assert.equal(a.settled, false);
    mock.timers.tick(1);
    await flush();
    code('PREDICTION_TIMEOUT', /^no answer within 35000 ms$/)(a.error);
  });

  it('cancel: a queued request leaves the queue; a batch nobody else waits for is cancelled on the worker', async () => {
    const { dep, fleet } = make({ batching: '{ max_batch_size: 4 }' });
    await dep.start();
    const w = fleet.workers[0]!;
    const ac1 = new AbortController();
    const a = track(dep.submit(req(['A'], { signal: ac1.signal })));
    await flush();
    const ac2 = new AbortController();
    const b = track(dep.submit(req(['C'], { signal: ac2.signal })));
    const c = track(dep.submit(req(['G'])));
    await flush();
    assert.equal(dep.queueDepth(), 2);
    ac2.abort();
    await flush();
    code('CANCELLED', /^request cancelled by the client$/)(b.error);
    assert.equal(dep.queueDepth(), 1);
    assert.equal(w.cancels, 0);
    ac1.abort();
    await flush();
    code('CANCELLED')(a.error);
    assert.equal(w.cancels, 1);
    // The cancelled batch's late answer is dropped; the queued request goes next.
    w.answer();
    await flush();
    assert.deepEqual(
      w.calls[1]!.call.items.map((i) => i.sequence),
      ['G'],
    );
    w.answer();
    await flush();
    assert.deepEqual(echoes(c.value), ['G']);
    // A request cancelled before it is queued never is.
    await assert.rejects(dep.submit(req(['T'], { signal: AbortSignal.abort() })), code('CANCELLED'));
    assert.equal(dep.queueDepth(), 0);
    assert.equal(w.calls.length, 2);
  });

  it('cancelling one request of a shared batch leaves the batch running for the others', async () => {
    const { dep, fleet } = make({ batching: '{ max_batch_size: 4 }' });
    await dep.start();
    const w = fleet.workers[0]!;
    const hold = track(dep.submit(req(['H'])));
    await flush();
    const ac = new AbortController();
    const a = track(dep.submit(req(['A'], { signal: ac.signal })));
    const b = track(dep.submit(req(['C'])));
    w.answer();
    await flush();
    assert.equal(w.calls[1]!.call.items.length, 2);
    ac.abort();
    await flush();
    code('CANCELLED')(a.error);
    assert.equal(w.cancels, 0);
    w.answer();
    await flush();
    assert.ok(hold.value);
    assert.deepEqual(echoes(b.value), ['C']);
    // A timer or listener left behind would fire later: the settled request stays settled.
    assert.equal(b.error, undefined);
  });

  it('streams: each chunk reaches its request with the index of its item', async () => {
    const { dep, fleet } = make({ batching: '{ max_batch_size: 4 }' });
    await dep.start();
    const w = fleet.workers[0]!;
    const hold = track(dep.submit(req(['H'])));
    await flush();
    const chunks: [number, unknown][] = [];
    const s = track(dep.submit(req(['A', 'C'], { stream: true, onChunk: (i, d) => chunks.push([i, d]) })));
    w.answer();
    await flush();
    const call = w.calls[1]!.call;
    assert.equal(call.stream, true);
    call.onChunk!(1, 'second');
    call.onChunk!(0, 'first');
    call.onChunk!(7, 'past the end');
    assert.deepEqual(chunks, [
      [1, 'second'],
      [0, 'first'],
      [7, 'past the end'],
    ]);
    w.answer();
    await flush();
    assert.ok(hold.value && s.value);
  });

  it('a batch of a model batched by tokens records its padded tokens', async () => {
    const { dep, fleet, observer } = make({ batching: '{ max_batch_size: 4, max_batch_tokens: 1000 }', auto: true });
    await dep.start();
    await dep.submit(req(['AAAA', 'CC']));
    assert.equal(fleet.workers[0]!.calls.length, 1);
    assert.deepEqual(observer.tokenCounts, [[8, 2]]);
    assert.equal(dep.stats.summary().padding_ratio, 0.25);
  });

  it('preferred_batch_size: after a burst an idle replica waits (up to max_delay_ms) for a fuller batch; a lone request never waits', async () => {
    const { dep, fleet } = make({ batching: '{ max_batch_size: 8, preferred_batch_size: 4, max_delay_ms: 60 }' });
    await dep.start();
    const w = fleet.workers[0]!;
    // A lone request goes at once.
    const lone = track(dep.submit(req(['L'])));
    await flush();
    assert.equal(w.calls.length, 1);
    // A burst of five while it runs.
    const burst = [1, 2, 3, 4, 5].map((i) => track(dep.submit(req([`B${i}`]))));
    w.answer();
    await flush();
    assert.equal(w.calls[1]!.call.items.length, 5);
    w.answer();
    await flush();
    assert.ok(lone.value && burst.every((b) => b.value));
    // Right after the burst, one request waits for more (the recent concurrency says more come).
    const t0 = Date.now();
    const one = track(dep.submit(req(['W1'])));
    await flush();
    assert.equal(w.calls.length, 2, 'the request waits for a fuller batch');
    // Three more arrive: four queued, the preferred size, so they go at once.
    const more = [2, 3, 4].map((i) => track(dep.submit(req([`W${i}`]))));
    await flush();
    assert.equal(w.calls.length, 3);
    assert.ok(Date.now() - t0 < 60);
    assert.deepEqual(
      w.calls[2]!.call.items.map((i) => i.sequence),
      ['W1', 'W2', 'W3', 'W4'],
    );
    w.answer();
    await flush();
    assert.ok(one.value && more.every((m) => m.value));
    // Two alone: they wait no longer than max_delay_ms.
    const two = track(dep.submit(req(['X1', 'X2'])));
    await flush();
    assert.equal(w.calls.length, 3);
    await sleep(90);
    await flush();
    assert.equal(w.calls.length, 4);
    assert.deepEqual(
      w.calls[3]!.call.items.map((i) => i.sequence),
      ['X1', 'X2'],
    );
    w.answer();
    await flush();
    assert.ok(two.value);
  });
});

describe('deployment: restarts and health', () => {
  it('a worker that dies mid-batch fails that batch, and its replica restarts after a backoff', async () => {
    // Mock time: with real sleeps a loaded machine could pass the 200 ms backoff before the first look.
    mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 1_000_000 });
    const { dep, fleet, observer, lines } = make();
    await dep.start();
    const w = fleet.workers[0]!;
    const a = track(dep.submit(req(['A'])));
    await flush();
    w.crash('memory limit exceeded');
    await flush();
    code('PREDICTION_FAILED', /^model worker memory limit exceeded; it will be restarted$/)(a.error);
    assert.deepEqual(a.error!.details, { reason: 'memory limit exceeded' });
    assert.deepEqual(observer.restarts, ['memory limit exceeded']);
    assert.equal(dep.stats.workerRestarts, 1);
    assert.equal(dep.replicaInfo()[0]!.state, 'restarting');
    assert.equal(dep.replicaInfo()[0]!.restarts, 1);
    assert.equal(dep.replicaInfo()[0]!.last_exit, 'memory limit exceeded');
    assert.equal(dep.healthy(), false);
    assert.ok(lines.some((l) => l.msg === 'replica exited; restarting' && l.reason === 'memory limit exceeded'));
    // Requests wait for the restart rather than failing.
    const b = track(dep.submit(req(['C'])));
    mock.timers.tick(199);
    await flush();
    assert.equal(fleet.workers.length, 1);
    mock.timers.tick(1);
    await flush();
    assert.equal(fleet.workers.length, 2);
    assert.equal(dep.replicaInfo()[0]!.state, 'ready');
    assert.equal(dep.healthy(), true);
    fleet.workers[1]!.answer();
    await flush();
    assert.deepEqual(echoes(b.value), ['C']);
    // The replica keeps its id across restarts.
    assert.equal(fleet.workers[1]!.id, w.id);
  });

  it('backoff doubles per failed start; after five it gives up and fails what is queued', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 1_000_000 });
    const { dep, fleet, lines } = make();
    await dep.start();
    fleet.plans.push('fail', 'fail', 'fail', 'fail', 'fail');
    fleet.workers[0]!.crash();
    const queued = track(dep.submit(req(['A'])));
    const delays = [200, 400, 800, 1600, 3200];
    for (const [i, d] of delays.entries()) {
      mock.timers.tick(d - 1);
      await flush();
      assert.equal(fleet.workers.length, 1 + i, `no new start before ${d} ms`);
      mock.timers.tick(1);
      await flush();
      assert.equal(fleet.workers.length, 2 + i, `a new start after ${d} ms`);
      assert.equal(dep.replicaInfo()[0]!.last_error, 'boom');
    }
    assert.equal(dep.replicaInfo()[0]!.state, 'failed');
    assert.equal(dep.replicaInfo()[0]!.restarts, 5);
    assert.equal(dep.state, 'failed');
    assert.equal(dep.lastError, 'boom');
    code('MODEL_NOT_LOADED', /^model fake failed: boom$/)(queued.error);
    assert.ok(lines.some((l) => l.msg === 'replica keeps failing; giving up' && l.error === 'boom'));
    mock.timers.tick(60_000);
    await flush();
    assert.equal(fleet.workers.length, 6);
    await assert.rejects(dep.submit(req(['C'])), code('MODEL_NOT_LOADED', /^model fake failed to load: boom$/));
  });

  it('a replica stable for 30 s starts its backoff over; one that is not keeps it', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 1_000_000 });
    const { dep, fleet } = make();
    await dep.start();
    fleet.plans.push('fail', 'fail');
    fleet.workers[0]!.crash();
    for (const d of [200, 400, 800]) {
      mock.timers.tick(d);
      await flush();
    }
    assert.equal(fleet.workers.length, 4);
    assert.equal(dep.replicaInfo()[0]!.state, 'ready');
    // Up only 10 s: the next restart waits 2^2 × 200 ms.
    mock.timers.tick(10_000);
    fleet.last.crash();
    mock.timers.tick(799);
    await flush();
    assert.equal(fleet.workers.length, 4);
    mock.timers.tick(1);
    await flush();
    assert.equal(fleet.workers.length, 5);
    // Up 31 s: back to 200 ms.
    mock.timers.tick(31_000);
    await flush();
    fleet.last.crash();
    mock.timers.tick(200);
    await flush();
    assert.equal(fleet.workers.length, 6);
    // Every restart counts, failed starts included.
    assert.equal(dep.replicaInfo()[0]!.restarts, 5);
  });

  it('pings every ready worker each 10 s; a worker that misses one is killed and replaced', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 1_000_000 });
    const { dep, fleet, lines } = make({ scaling: '{ min_replicas: 2, max_replicas: 2 }' });
    await dep.start();
    const [w1, w2] = fleet.workers;
    mock.timers.tick(9_000);
    await flush();
    assert.deepEqual([w1!.pings, w2!.pings], [0, 0]);
    w2!.pingFails = true;
    mock.timers.tick(1_000);
    await flush();
    assert.deepEqual([w1!.pings, w2!.pings], [1, 1]);
    assert.deepEqual(w1!.killed, []);
    assert.deepEqual(w2!.killed, ['missed health ping (hung)']);
    assert.ok(lines.some((l) => l.msg === 'worker missed its health ping; replacing it'));
    mock.timers.tick(1_000);
    await flush();
    assert.deepEqual([w1!.pings, w2!.pings], [1, 1]);
    mock.timers.tick(200);
    await flush();
    assert.equal(fleet.workers.length, 3);
    mock.timers.tick(10_000);
    await flush();
    assert.deepEqual([w1!.pings, fleet.workers[2]!.pings], [2, 1]);
  });

  it('restartReplica replaces a ready replica through the restart path; nothing else', async () => {
    const { dep, fleet } = make();
    await dep.start();
    const id = dep.replicaInfo()[0]!.id;
    assert.equal(dep.restartReplica('nope', 'x'), false);
    assert.equal(dep.restartReplica(id, 'memory over 90%'), true);
    assert.deepEqual(fleet.workers[0]!.killed, ['memory over 90%']);
    await flush();
    assert.equal(dep.replicaInfo()[0]!.state, 'restarting');
    assert.equal(dep.restartReplica(id, 'again'), false);
    await sleep(260);
    await flush();
    assert.equal(dep.replicaInfo()[0]!.state, 'ready');
    assert.equal(dep.restartReplica(id, 'again'), true);
  });
});

describe('deployment: scaling', () => {
  it('adds a replica while every replica is busy and the queue outgrows a batch; one at a time', async () => {
    const { dep, fleet, lines } = make({
      batching: '{ max_batch_size: 2 }',
      scaling: '{ min_replicas: 1, max_replicas: 3 }',
    });
    await dep.start();
    const reqs = [track(dep.submit(req(['A'])))];
    await flush();
    // Two queued: not more than one batch yet.
    reqs.push(track(dep.submit(req(['C']))), track(dep.submit(req(['G']))));
    await flush();
    assert.equal(fleet.workers.length, 1);
    // A third: a new replica (it starts at once and takes two).
    let release!: () => void;
    fleet.plans.push(new Promise<void>((r) => (release = r)));
    reqs.push(track(dep.submit(req(['T']))));
    await flush();
    assert.equal(fleet.workers.length, 2);
    assert.ok(lines.some((l) => l.msg === 'scaling up' && l.replicas === 2 && l.queued === 3));
    // While it starts, more requests do not add another.
    reqs.push(track(dep.submit(req(['AA']))), track(dep.submit(req(['CC']))));
    await flush();
    assert.equal(fleet.workers.length, 2);
    release();
    await flush();
    assert.equal(fleet.workers[1]!.calls.length, 1);
    assert.equal(fleet.workers[1]!.calls[0]!.call.items.length, 2);
    // Both busy, three queued: one more request adds a third replica.
    reqs.push(track(dep.submit(req(['GG']))));
    await flush();
    assert.equal(fleet.workers.length, 3);
    for (let i = 0; i < 6; i++) {
      for (const w of fleet.live()) if (w.open.length) w.answer();
      await flush();
    }
    assert.ok(
      reqs.every((r) => r.value),
      JSON.stringify(reqs.map((r) => r.error?.message)),
    );
    assert.equal(fleet.workers.length, 3);
    assert.equal(dep.replicaInfo().length, 3);
    // At max_replicas: no more.
    for (let i = 0; i < 12; i++) void dep.submit(req(['A'])).catch(() => undefined);
    await flush();
    assert.equal(fleet.workers.length, 3);
  });

  it('a scale-up replica that fails to start leaves the others serving', async () => {
    const { dep, fleet, lines } = make({
      batching: '{ max_batch_size: 1 }',
      scaling: '{ min_replicas: 1, max_replicas: 2 }',
    });
    await dep.start();
    fleet.plans.push('fail');
    const reqs = ['A', 'C', 'G'].map((s) => track(dep.submit(req([s]))));
    await flush();
    assert.equal(fleet.workers.length, 2);
    assert.ok(lines.some((l) => l.msg === 'scale-up replica failed to start' && l.error === 'boom'));
    assert.equal(dep.replicaInfo().length, 1);
    for (let i = 0; i < 3; i++) {
      fleet.workers[0]!.answer();
      await flush();
    }
    assert.ok(reqs.every((r) => r.value));
  });

  it('idle replicas above min_replicas stop after idle_timeout_s; at min 0 the model sleeps and the next request wakes it', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 1_000_000 });
    const { dep, fleet, lines } = make({
      scaling: '{ min_replicas: 0, max_replicas: 2, idle_timeout_s: 2 }',
      auto: true,
    });
    await dep.start();
    const w = fleet.workers[0]!;
    mock.timers.tick(2_000);
    await flush();
    assert.equal(w.stops, 0);
    mock.timers.tick(1_000);
    await flush();
    assert.equal(w.stops, 1);
    assert.deepEqual(dep.replicaInfo(), []);
    assert.equal(dep.healthy(), true);
    assert.ok(lines.some((l) => l.msg === 'idle timeout: stopping replica'));
    // Woken by a request.
    const a = track(dep.submit(req(['A'])));
    await flush();
    assert.equal(fleet.workers.length, 2);
    assert.deepEqual(echoes(a.value), ['A']);
    // A wake-up that fails fails what waits for it.
    mock.timers.tick(3_000);
    await flush();
    assert.deepEqual(dep.replicaInfo(), []);
    fleet.plans.push('fail');
    await assert.rejects(dep.submit(req(['C'])), code('MODEL_NOT_LOADED', /^model fake could not start: boom$/));
  });

  it('idle scale-down keeps min_replicas, and never stops a replica while requests are queued', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 1_000_000 });
    const { dep, fleet } = make({ scaling: '{ min_replicas: 1, max_replicas: 3, idle_timeout_s: 1 }' });
    await dep.start();
    await dep.scaleTo(3);
    // scaleTo sets min_replicas: back to one that may idle down.
    dep.scaling.min_replicas = 1;
    mock.timers.tick(3_000);
    await flush();
    assert.equal(fleet.live().length, 1);
    // No idle timeout at all: nothing stops.
    const never = make({ scaling: '{ min_replicas: 0, max_replicas: 1, idle_timeout_s: 0 }' });
    await never.dep.start();
    mock.timers.tick(60_000);
    await flush();
    assert.equal(never.fleet.live().length, 1);
    // A busy replica, or any queued request, keeps replicas up.
    const busy = make({ scaling: '{ min_replicas: 0, max_replicas: 1, idle_timeout_s: 1 }' });
    await busy.dep.start();
    const a = track(busy.dep.submit(req(['A'])));
    const b = track(busy.dep.submit(req(['C'])));
    mock.timers.tick(5_000);
    await flush();
    assert.equal(busy.fleet.live().length, 1);
    busy.fleet.workers[0]!.answer();
    await flush();
    busy.fleet.workers[0]!.answer();
    await flush();
    assert.ok(a.value && b.value);
  });

  it('scaleTo: up waits for the new replicas; down stops idle ones first and busy ones after their batch', async () => {
    const { dep, fleet } = make({ scaling: '{ min_replicas: 1, max_replicas: 1 }' });
    await dep.start();
    await dep.scaleTo(3);
    assert.deepEqual([dep.scaling.min_replicas, dep.scaling.max_replicas], [3, 3]);
    assert.equal(dep.replicaInfo().filter((r) => r.state === 'ready').length, 3);
    // One busy replica; scale to one: the two idle ones go, the busy one stays.
    const a = track(dep.submit(req(['A'])));
    await flush();
    const busy = fleet.workers.find((w) => w.calls.length === 1)!;
    await dep.scaleTo(1);
    assert.deepEqual(
      fleet.live().map((w) => w.id),
      [busy.id],
    );
    busy.answer();
    await flush();
    assert.ok(a.value);
    // To zero: the busy replica finishes its batch first; no request fails.
    const b = track(dep.submit(req(['C'])));
    await flush();
    const down = track(dep.scaleTo(0));
    await flush();
    assert.equal(down.settled, false);
    assert.equal(busy.stops, 0);
    busy.answer();
    await flush();
    assert.deepEqual(echoes(b.value), ['C']);
    assert.equal(down.settled, true);
    assert.equal(busy.stops, 1);
    assert.deepEqual([dep.scaling.min_replicas, dep.scaling.max_replicas], [0, 1]);
    assert.deepEqual(dep.replicaInfo(), []);
    // The next request wakes one.
    fleet.auto = true;
    const c = await dep.submit(req(['G']));
    assert.deepEqual(echoes(c), ['G']);
  });

  it('scaleTo down with work queued brings capacity back for it', async () => {
    const { dep, fleet } = make({ batching: '{ max_batch_size: 1 }', scaling: '{ min_replicas: 2, max_replicas: 2 }' });
    await dep.start();
    const reqs = ['A', 'C', 'G', 'T'].map((s) => track(dep.submit(req([s]))));
    await flush();
    const down = track(dep.scaleTo(0));
    await flush();
    for (const w of fleet.workers) w.answer();
    await flush(20);
    assert.equal(down.settled, true);
    // Two requests were still queued: a replica was woken for them.
    const fresh = fleet.workers.slice(2);
    assert.equal(fresh.length, 1);
    fresh[0]!.answer();
    await flush();
    fresh[0]!.answer();
    await flush();
    assert.ok(
      reqs.every((r) => r.value),
      JSON.stringify(reqs.map((r) => r.error?.message)),
    );
  });
});

describe('deployment: GPUs', () => {
  it('each replica leases its own GPUs, kept across restarts and released when it goes', async () => {
    const devices = new DeviceAllocator(async () => ['0', '1']);
    const { dep, fleet, lines } = make({
      resources: '{ timeout_ms: 5000, gpus: 1 }',
      scaling: '{ min_replicas: 2, max_replicas: 2 }',
      options: { devices },
    });
    await dep.start();
    assert.deepEqual(
      dep
        .replicaInfo()
        .map((r) => r.devices)
        .sort(),
      [['0'], ['1']],
    );
    assert.deepEqual(fleet.workers.map((w) => w.pkg.manifest.env.CUDA_VISIBLE_DEVICES).sort(), ['0', '1']);
    assert.deepEqual(devices.usage(), { 0: 1, 1: 1 });
    assert.equal(lines.filter((l) => l.msg === 'fewer GPUs than resources.gpus asks for').length, 0);
    const before = fleet.workers[0]!.pkg.manifest.env.CUDA_VISIBLE_DEVICES;
    fleet.workers[0]!.crash();
    await sleep(260);
    await flush();
    assert.equal(fleet.workers[2]!.pkg.manifest.env.CUDA_VISIBLE_DEVICES, before);
    assert.deepEqual(devices.usage(), { 0: 1, 1: 1 });
    await dep.stop();
    assert.deepEqual(devices.usage(), {});

    // Fewer GPUs than asked for, or none: a warning, and the replica runs anyway.
    const few = make({
      resources: '{ timeout_ms: 5000, gpus: 2 }',
      options: { devices: new DeviceAllocator(async () => ['0']) },
    });
    await few.dep.start();
    assert.ok(few.lines.some((l) => l.msg === 'fewer GPUs than resources.gpus asks for'));
    assert.deepEqual(few.dep.replicaInfo()[0]!.devices, ['0']);
    const none = make({
      resources: '{ timeout_ms: 5000, gpus: 1 }',
      options: { devices: new DeviceAllocator(async () => []) },
    });
    await none.dep.start();
    assert.ok(none.lines.some((l) => l.msg === 'no GPU found (nvidia-smi): the replica runs without one'));
    assert.deepEqual(none.dep.replicaInfo()[0]!.devices, []);
    // A model without GPUs never asks the allocator.
    let asked = 0;
    const cpu = make({ options: { devices: new DeviceAllocator(async () => (asked++, ['0'])) } });
    await cpu.dep.start();
    assert.equal(asked, 0);
    assert.equal(cpu.dep.replicaInfo()[0]!.devices, undefined);
  });

  it('a scale-down releases the leases of the replicas it stops', async () => {
    const devices = new DeviceAllocator(async () => ['0', '1', '2']);
    const { dep } = make({
      resources: '{ timeout_ms: 5000, gpus: 1 }',
      scaling: '{ min_replicas: 3, max_replicas: 3 }',
      options: { devices },
    });
    await dep.start();
    assert.equal(Object.keys(devices.usage()).length, 3);
    await dep.scaleTo(1);
    await flush();
    assert.equal(Object.keys(devices.usage()).length, 1);
  });

  it('a deployment stopped while a replica waits for its GPUs starts no worker', async () => {
    let release!: (d: string[]) => void;
    const devices = new DeviceAllocator(() => new Promise<string[]>((r) => (release = r)));
    const { dep, fleet } = make({ resources: '{ timeout_ms: 5000, gpus: 1 }', options: { devices } });
    const started = dep.start().catch(() => undefined);
    await flush();
    // No worker yet: the replica is listed as starting, with no process figures.
    assert.deepEqual(
      dep.replicaInfo().map((r) => [r.state, r.pid]),
      [['starting', undefined]],
    );
    await dep.stop();
    release(['0']);
    await started;
    await flush();
    assert.equal(fleet.workers.length, 0);
    // The GPU it was given is released, not held by a replica that no longer exists.
    assert.deepEqual(devices.usage(), {});
  });
  it('a replica retired by a scale-down while it waits for its GPUs starts no worker and gives its GPU back', async () => {
    let release!: (d: string[]) => void;
    const devices = new DeviceAllocator(() => new Promise<string[]>((r) => (release = r)));
    const { dep, fleet } = make({ resources: '{ timeout_ms: 5000, gpus: 1 }', options: { devices } });
    const started = dep.start().catch(() => undefined);
    await flush();
    assert.deepEqual(
      dep.replicaInfo().map((r) => r.state),
      ['starting'],
    );
    await dep.scaleTo(0);
    assert.deepEqual(dep.replicaInfo(), [], 'the waiting replica is gone at once');
    release(['0']);
    await started;
    await flush();
    assert.equal(fleet.workers.length, 0, 'no worker for a replica that was retired');
    assert.deepEqual(devices.usage(), {});
    assert.deepEqual(dep.replicaInfo(), []);
  });
});

describe('deployment: corners found by mutation testing', () => {
  it('a start that fails after its replica was retired removes only that replica, not another', async () => {
    const { dep, fleet } = make({ scaling: '{ min_replicas: 1, max_replicas: 2 }' });
    let fail!: (e: Error) => void;
    const gate = new Promise<void>((_, reject) => (fail = reject));
    gate.catch(() => undefined);
    fleet.plans.push('ok', gate);
    await dep.start();
    const [a] = fleet.workers as [FakeWorker];
    const held = track(dep.submit(req(['H'])));
    await flush();
    assert.equal(a.open.length, 1, 'A is busy');
    const up = track(dep.scaleTo(2));
    await flush();
    assert.equal(fleet.workers.length, 2, 'B is starting');
    // The idle replica goes first: B, still starting; its worker exits and it leaves the pool.
    await dep.scaleTo(1);
    await flush();
    fail(new IsoError('MODEL_NOT_LOADED', 'no ready line'));
    await flush();
    assert.equal(up.error?.code, 'MODEL_NOT_LOADED');
    // A is still there, and still serving its request.
    assert.deepEqual(
      dep.replicaInfo().map((r) => r.pid),
      [a.pid],
    );
    a.answer();
    await flush();
    assert.deepEqual(echoes(held.value), ['H']);
    const next = track(dep.submit(req(['C'])));
    await flush();
    a.answer();
    await flush();
    assert.deepEqual(echoes(next.value), ['C'], 'A still takes work');
  });

  it('drain with two replicas: waits for the busy one; a replica that dies meanwhile is not restarted', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 1_000_000 });
    const { dep, fleet, observer } = make({ scaling: '{ min_replicas: 2, max_replicas: 2 }' });
    await dep.start();
    const [w1, w2] = fleet.workers as [FakeWorker, FakeWorker];
    const h = track(dep.submit(req(['H'])));
    await flush();
    const drained = track(dep.drain());
    await flush();
    // One replica idle, nothing queued, but H still in flight.
    assert.equal(drained.settled, false);
    assert.deepEqual([w1.stops, w2.stops], [0, 0]);
    w2.crash();
    await flush();
    assert.deepEqual(observer.restarts, []);
    assert.deepEqual(
      dep.replicaInfo().map((r) => r.state),
      ['ready'],
    );
    mock.timers.tick(1_000);
    await flush();
    assert.equal(fleet.workers.length, 2);
    w1.answer();
    await flush();
    assert.deepEqual(echoes(h.value), ['H']);
    assert.equal(drained.settled, true);
    assert.equal(dep.state, 'stopped');

    // A replica that died before the drain: its pending restart does not run while draining.
    const d2 = make({ scaling: '{ min_replicas: 2, max_replicas: 2 }' });
    await d2.dep.start();
    const [v1, v2] = d2.fleet.workers as [FakeWorker, FakeWorker];
    const h2 = track(d2.dep.submit(req(['H'])));
    await flush();
    v2.crash();
    await flush();
    assert.equal(d2.dep.replicaInfo()[1]!.state, 'restarting');
    const drained2 = track(d2.dep.drain());
    await flush();
    mock.timers.tick(1_000);
    await flush();
    assert.equal(d2.fleet.workers.length, 2);
    v1.answer();
    await flush();
    assert.ok(h2.value && drained2.settled);
  });

  it('scale to zero: the busy replica shows as stopping, stays healthy, and is not restarted if it dies', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 1_000_000 });
    const { dep, fleet, observer } = make();
    await dep.start();
    const w = fleet.workers[0]!;
    const a = track(dep.submit(req(['A'])));
    await flush();
    const down = track(dep.scaleTo(0));
    await flush();
    assert.equal(dep.replicaInfo()[0]!.state, 'stopping');
    assert.equal(dep.healthy(), true);
    w.crash('segfault');
    await flush();
    code('PREDICTION_FAILED', /^model worker segfault; it will be restarted$/)(a.error);
    assert.equal(down.settled, true);
    assert.deepEqual(observer.restarts, []);
    assert.deepEqual(dep.replicaInfo(), []);
    mock.timers.tick(5_000);
    await flush();
    assert.equal(fleet.workers.length, 1);

    // A replica waiting for its restart is simply dropped by a scale-down.
    const r = make();
    await r.dep.start();
    r.fleet.workers[0]!.crash();
    await flush();
    assert.equal(r.dep.replicaInfo()[0]!.state, 'restarting');
    await r.dep.scaleTo(0);
    assert.deepEqual(r.dep.replicaInfo(), []);
    mock.timers.tick(5_000);
    await flush();
    assert.equal(r.fleet.workers.length, 1);
  });

  it('a replica still starting: healthy, not pinged, not replaceable', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 1_000_000 });
    const { dep, fleet } = make({ batching: '{ max_batch_size: 1 }', scaling: '{ min_replicas: 1, max_replicas: 2 }' });
    await dep.start();
    const w1 = fleet.workers[0]!;
    let open!: () => void;
    fleet.plans.push(new Promise<void>((r) => (open = r)));
    const reqs = ['A', 'C', 'G'].map((s) => track(dep.submit(req([s]))));
    await flush();
    assert.equal(fleet.workers.length, 2);
    const w2 = fleet.workers[1]!;
    const [, starting] = dep.replicaInfo();
    assert.equal(starting!.state, 'starting');
    assert.equal(dep.healthy(), true);
    assert.equal(dep.restartReplica(starting!.id, 'memory'), false);
    mock.timers.tick(10_000);
    await flush();
    assert.deepEqual([w1.pings, w2.pings, w2.killed.length], [1, 0, 0]);
    open();
    await flush();
    for (let i = 0; i < 3; i++) {
      for (const w of fleet.live()) if (w.open.length) w.answer();
      await flush();
    }
    assert.ok(reqs.every((r) => r.value));
  });

  it('a ping that fails after its worker already exited kills nothing', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 1_000_000 });
    const { dep, fleet } = make();
    await dep.start();
    const w = fleet.workers[0]!;
    w.pingFails = true;
    mock.timers.tick(10_000);
    // The ping's failure is handled after this crash.
    w.crash();
    await flush();
    assert.equal(w.pings, 1);
    assert.deepEqual(w.killed, []);
    assert.equal(dep.replicaInfo()[0]!.state, 'restarting');
  });

  it('a start that rejects with a plain error while the worker stays up: MODEL_NOT_LOADED, that worker and the others stopped', async () => {
    const { dep, fleet } = make({ scaling: '{ min_replicas: 2, max_replicas: 2 }' });
    fleet.plans.push('ok', 'reject');
    await assert.rejects(dep.start(), code('MODEL_NOT_LOADED', /^no ready line within 60 s$/));
    assert.deepEqual(
      fleet.workers.map((w) => w.stops),
      [1, 1],
    );
    assert.deepEqual(fleet.live(), []);
    assert.equal(dep.lastError, 'no ready line within 60 s');
  });

  it('a restart whose warm-up fails keeps the replica: it backs off, doubling, and comes back', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 1_000_000 });
    const { dep, fleet } = make({ oneTask: true, extra: ['warmup:', '  - { sequence: acgt }'] });
    const started = dep.start();
    await flush();
    fleet.workers[0]!.answer();
    await started;
    const id = dep.replicaInfo()[0]!.id;
    fleet.workers[0]!.crash();
    mock.timers.tick(200);
    await flush();
    assert.equal(fleet.workers.length, 2);
    fleet.workers[1]!.answer([{ error: { code: 'OOM', message: 'no memory' } }]);
    await flush();
    assert.equal(fleet.workers[1]!.stops, 1);
    assert.deepEqual(
      dep.replicaInfo().map((r) => [r.id, r.state, r.last_error]),
      [[id, 'restarting', 'warm-up request failed: {"code":"OOM","message":"no memory"}']],
    );
    mock.timers.tick(399);
    await flush();
    assert.equal(fleet.workers.length, 2);
    mock.timers.tick(1);
    await flush();
    assert.equal(fleet.workers.length, 3);
    fleet.workers[2]!.answer();
    await flush();
    assert.deepEqual(
      dep.replicaInfo().map((r) => [r.id, r.state]),
      [[id, 'ready']],
    );
    // It serves.
    const a = track(dep.submit(req(['A'])));
    await flush();
    fleet.workers[2]!.answer();
    await flush();
    assert.deepEqual(echoes(a.value), ['A']);
  });

  it('up exactly 30 s is not yet stable: the backoff is kept', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 1_000_000 });
    const { dep, fleet } = make();
    await dep.start();
    fleet.plans.push('fail', 'fail');
    fleet.workers[0]!.crash();
    for (const d of [200, 400, 800]) {
      mock.timers.tick(d);
      await flush();
    }
    assert.equal(fleet.workers.length, 4);
    mock.timers.tick(30_000);
    fleet.last.crash();
    mock.timers.tick(799);
    await flush();
    assert.equal(fleet.workers.length, 4);
    mock.timers.tick(1);
    await flush();
    assert.equal(fleet.workers.length, 5);
  });

  it('one replica giving up leaves the deployment ready on the others', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 1_000_000 });
    const { dep, fleet } = make({ scaling: '{ min_replicas: 2, max_replicas: 2 }' });
    await dep.start();
    const w2 = fleet.workers[1]!;
    fleet.plans.push('fail', 'fail', 'fail', 'fail', 'fail');
    fleet.workers[0]!.crash();
    for (const d of [200, 400, 800, 1600, 3200]) {
      mock.timers.tick(d);
      await flush();
    }
    assert.equal(fleet.workers.length, 7);
    assert.deepEqual(
      dep.replicaInfo().map((r) => r.state),
      ['failed', 'ready'],
    );
    assert.equal(dep.state, 'ready');
    assert.equal(dep.healthy(), false);
    const a = track(dep.submit(req(['A'])));
    await flush();
    w2.answer();
    await flush();
    assert.deepEqual(echoes(a.value), ['A']);
  });

  it('replicaInfo: figures a worker does not report stay absent; a CPU model sees no GPU', async () => {
    const { dep, fleet } = make();
    await dep.start();
    fleet.workers[0]!.statsOf = {};
    const [info] = dep.replicaInfo();
    assert.deepEqual(
      [info!.pid, info!.rss_bytes, info!.cpu_percent, info!.open_fds],
      [undefined, undefined, undefined, undefined],
    );
    assert.equal(fleet.workers[0]!.pkg.manifest.env.CUDA_VISIBLE_DEVICES, '');
  });

  it('stop() reports its replicas as stopping until their workers are gone', async () => {
    const { dep, fleet } = make({ scaling: '{ min_replicas: 2, max_replicas: 2 }' });
    await dep.start();
    const stopped = dep.stop();
    assert.deepEqual(
      dep.replicaInfo().map((r) => r.state),
      ['stopping', 'stopping'],
    );
    await stopped;
    assert.deepEqual(dep.replicaInfo(), []);
    assert.deepEqual(fleet.live(), []);
  });

  it('without an observer it serves batches, token counts, streams without onChunk, failed batches and restarts', async () => {
    const { dep, fleet } = make({ batching: '{ max_batch_size: 4, max_batch_tokens: 1000 }', noObserver: true });
    await dep.start();
    const w = fleet.workers[0]!;
    const a = track(dep.submit(req(['AC'], { stream: true })));
    await flush();
    const call = w.calls[0]!.call;
    assert.equal(call.stream, true);
    // A streaming request without a chunk callback: chunks are dropped, not thrown.
    assert.doesNotThrow(() => call.onChunk!(0, 'chunk'));
    w.answer();
    await flush();
    assert.deepEqual(echoes(a.value), ['AC']);
    assert.equal(dep.stats.summary().padding_ratio, 0);
    // Served at once: no time in the queue to speak of.
    const wait = dep.stats.summary().p50_queue_time_ms as number;
    assert.ok(wait >= 0 && wait < 1000, String(wait));
    const b = track(dep.submit(req(['G'])));
    await flush();
    w.failCall(new IsoError('PREDICTION_FAILED', 'bad batch'));
    await flush();
    code('PREDICTION_FAILED', /^bad batch$/)(b.error);
    w.crash();
    await flush();
    assert.equal(dep.stats.workerRestarts, 1);
    assert.equal(dep.replicaInfo()[0]!.state, 'restarting');
  });

  it('a queued request of higher priority goes first', async () => {
    const { dep, fleet } = make({ batching: '{ max_batch_size: 1 }' });
    await dep.start();
    const w = fleet.workers[0]!;
    const hold = track(dep.submit(req(['H'])));
    await flush();
    const low = track(dep.submit(req(['A'])));
    const high = track(dep.submit(req(['C'], { priority: 5 })));
    for (let i = 0; i < 3; i++) {
      w.answer();
      await flush();
    }
    assert.deepEqual(
      w.calls.map((c) => c.call.items[0]!.sequence),
      ['H', 'C', 'A'],
    );
    assert.ok(hold.value && low.value && high.value);
  });

  it('a finished request leaves no listener on its signal (one signal may serve many requests)', async () => {
    const { dep } = make({ auto: true });
    await dep.start();
    const ac = new AbortController();
    for (let i = 0; i < 3; i++) await dep.submit(req(['A'], { signal: ac.signal }));
    assert.equal(getEventListeners(ac.signal, 'abort').length, 0);
  });

  it('cancel across two replicas: only the worker whose whole batch was given up is told, once', async () => {
    const { dep, fleet } = make({ scaling: '{ min_replicas: 2, max_replicas: 2 }' });
    await dep.start();
    const [w1, w2] = fleet.workers as [FakeWorker, FakeWorker];
    const h = track(dep.submit(req(['H'])));
    await flush();
    const acA = new AbortController();
    const a = track(dep.submit(req(['A'], { signal: acA.signal })));
    await flush();
    assert.deepEqual([w1.calls.length, w2.calls.length], [1, 1]);
    w1.answer();
    await flush();
    assert.ok(h.value);
    // The first replica is idle, the second runs A alone.
    acA.abort();
    await flush();
    code('CANCELLED')(a.error);
    assert.deepEqual([w1.cancels, w2.cancels], [0, 1]);
    // A batch of two on the first replica (the second still runs the cancelled batch).
    const h2 = track(dep.submit(req(['H2'])));
    await flush();
    const acB = new AbortController();
    const acC = new AbortController();
    const b = track(dep.submit(req(['B'], { signal: acB.signal })));
    const c = track(dep.submit(req(['C'], { signal: acC.signal })));
    w1.answer();
    await flush();
    assert.ok(h2.value);
    assert.deepEqual(
      w1.calls[2]!.call.items.map((i) => i.sequence),
      ['B', 'C'],
    );
    acB.abort();
    await flush();
    assert.deepEqual([w1.cancels, w2.cancels], [0, 1]);
    acC.abort();
    await flush();
    assert.deepEqual([w1.cancels, w2.cancels], [1, 1]);
    code('CANCELLED')(b.error);
    code('CANCELLED')(c.error);
    // Late answers are dropped; both replicas serve again.
    w1.answer();
    w2.answer();
    await flush();
    const d = [track(dep.submit(req(['T']))), track(dep.submit(req(['G'])))];
    await flush();
    w1.answer();
    w2.answer();
    await flush();
    assert.deepEqual(
      d.map((r) => echoes(r.value)),
      [['T'], ['G']],
    );
  });

  it('scale-up: an idle ready replica is capacity, a restarting one is not', async () => {
    const { dep, fleet } = make({ batching: '{ max_batch_size: 2 }', scaling: '{ min_replicas: 2, max_replicas: 3 }' });
    await dep.start();
    const [w1, w2] = fleet.workers as [FakeWorker, FakeWorker];
    const h = track(dep.submit(req(['H'])));
    await flush();
    // One replica busy, one idle: a request of five items goes to the idle one, two at a time.
    const big = track(dep.submit(req(['A', 'C', 'G', 'T', 'AA'])));
    await flush();
    assert.equal(fleet.workers.length, 2);
    assert.equal(w2.calls[0]!.call.items.length, 2);
    w1.answer();
    await flush();
    for (let i = 0; i < 3; i++) {
      for (const w of fleet.live()) if (w.open.length) w.answer();
      await flush();
    }
    assert.ok(h.value);
    assert.deepEqual(echoes(big.value), ['A', 'C', 'G', 'T', 'AA']);

    // The only replica restarting and more than a batch queued: a new replica serves it.
    const one = make({ batching: '{ max_batch_size: 2 }', scaling: '{ min_replicas: 1, max_replicas: 2 }' });
    await one.dep.start();
    one.fleet.workers[0]!.crash();
    await flush();
    assert.equal(one.dep.replicaInfo()[0]!.state, 'restarting');
    const backlog = track(one.dep.submit(req(['C', 'G', 'T'])));
    await flush();
    assert.equal(one.fleet.workers.length, 2);
    const fresh = one.fleet.workers[1]!;
    fresh.answer();
    await flush();
    fresh.answer();
    await flush();
    assert.deepEqual(echoes(backlog.value), ['C', 'G', 'T']);
  });

  it('preferred_batch_size: recent concurrency counts for one window (250 ms), is forgotten after two, and the wait ends at max_delay_ms exactly', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 1_000_000 });
    const { dep, fleet } = make({ batching: '{ max_batch_size: 8, preferred_batch_size: 4, max_delay_ms: 60 }' });
    await dep.start();
    const w = fleet.workers[0]!;
    const burst = async (): Promise<void> => {
      const n = w.calls.length;
      const all = ['H', 'B1', 'B2', 'B3', 'B4', 'B5'].map((s) => track(dep.submit(req([s]))));
      await flush();
      assert.equal(w.calls.length, n + 1);
      w.answer();
      await flush();
      assert.equal(w.calls[n + 1]!.call.items.length, 5);
      w.answer();
      await flush();
      assert.ok(all.every((r) => r.value));
    };
    /** Submits one request; true when it went to the worker at once. */
    const lone = async (): Promise<{ atOnce: boolean; r: ReturnType<typeof track<ItemOutput[]>> }> => {
      const n = w.calls.length;
      const r = track(dep.submit(req(['X'])));
      await flush();
      return { atOnce: w.calls.length === n + 1, r };
    };
    await burst();
    // One window later the burst still counts: a lone request waits, exactly max_delay_ms.
    mock.timers.tick(250);
    const x1 = await lone();
    assert.equal(x1.atOnce, false);
    mock.timers.tick(59);
    await flush();
    assert.equal(x1.r.settled, false);
    assert.equal(w.open.length, 0);
    mock.timers.tick(1);
    await flush();
    assert.equal(w.open.length, 1, 'sent at its deadline');
    w.answer();
    await flush();
    assert.ok(x1.r.value);
    // The next window saw only that one request: the next goes at once.
    mock.timers.tick(190);
    const x2 = await lone();
    assert.equal(x2.atOnce, true, '250 ms after the window of the lone request');
    w.answer();
    await flush();
    // A burst, then exactly two windows of quiet: forgotten.
    await burst();
    mock.timers.tick(500);
    const x3 = await lone();
    assert.equal(x3.atOnce, true, 'two windows after the burst');
    w.answer();
    await flush();
    assert.ok(x2.r.value && x3.r.value);
  });

  it('preferred_batch_size: with max_delay_ms over 125 the window is twice max_delay_ms', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 1_000_000 });
    const { dep, fleet } = make({ batching: '{ max_batch_size: 8, preferred_batch_size: 4, max_delay_ms: 500 }' });
    await dep.start();
    const w = fleet.workers[0]!;
    const all = ['H', 'B1', 'B2', 'B3', 'B4', 'B5'].map((s) => track(dep.submit(req([s]))));
    await flush();
    w.answer();
    await flush();
    w.answer();
    await flush();
    assert.ok(all.every((r) => r.value));
    // 600 ms later: still within the 1000 ms window, so a lone request waits for company.
    mock.timers.tick(600);
    const x = track(dep.submit(req(['X'])));
    await flush();
    assert.equal(w.calls.length, 2);
    mock.timers.tick(500);
    await flush();
    assert.equal(w.calls.length, 3);
    w.answer();
    await flush();
    assert.ok(x.value);
  });

  it('preferred_batch_size: what is in flight counts as concurrency, and as held when a second replica decides', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 1_000_000 });
    const batching = '{ max_batch_size: 8, preferred_batch_size: 4, max_delay_ms: 60 }';
    const { dep, fleet } = make({ batching });
    await dep.start();
    const w = fleet.workers[0]!;
    const h = track(dep.submit(req(['H1', 'H2', 'H3'])));
    await flush();
    assert.equal(w.calls.length, 1);
    // Four held at once (three in flight, one queued): the next batch waits for four.
    const a = track(dep.submit(req(['A'])));
    w.answer();
    await flush();
    const bc = ['B', 'C'].map((s) => track(dep.submit(req([s]))));
    await flush();
    assert.equal(w.calls.length, 1, 'three queued: one more is due');
    mock.timers.tick(60);
    await flush();
    assert.deepEqual(
      w.calls[1]!.call.items.map((i) => i.sequence),
      ['A', 'B', 'C'],
    );
    w.answer();
    await flush();
    assert.ok(h.value && a.value && bc.every((r) => r.value));

    // Two replicas: three items in flight on one, one request arrives; the other takes it at once
    // (what the first holds is not still to come).
    const two = make({ batching, scaling: '{ min_replicas: 2, max_replicas: 2 }' });
    await two.dep.start();
    const [v1, v2] = two.fleet.workers as [FakeWorker, FakeWorker];
    const h2 = track(two.dep.submit(req(['H1', 'H2', 'H3'])));
    await flush();
    const one = track(two.dep.submit(req(['A'])));
    await flush();
    assert.deepEqual([v1.calls.length, v2.calls.length], [1, 1]);
    v1.answer();
    v2.answer();
    await flush();
    assert.ok(h2.value && one.value);
  });

  it('idle scale-down: never a busy replica, never while a request waits for a fuller batch, never a restarting one', async () => {
    mock.timers.enable({ apis: ['setTimeout', 'setInterval', 'Date'], now: 1_000_000 });
    // A replica busy for long with nothing queued is not idle.
    const busy = make({ scaling: '{ min_replicas: 0, max_replicas: 1, idle_timeout_s: 1 }' });
    await busy.dep.start();
    const a = track(busy.dep.submit(req(['A'])));
    mock.timers.tick(5_000);
    await flush();
    assert.equal(busy.fleet.workers[0]!.stops, 0);
    busy.fleet.workers[0]!.answer();
    await flush();
    assert.deepEqual(echoes(a.value), ['A']);

    // A request waiting for a fuller batch keeps its replica.
    const waiting = make({
      batching: '{ max_batch_size: 8, preferred_batch_size: 4, max_delay_ms: 3000 }',
      scaling: '{ min_replicas: 0, max_replicas: 1, idle_timeout_s: 1 }',
    });
    await waiting.dep.start();
    const w = waiting.fleet.workers[0]!;
    const all = ['H', 'B1', 'B2', 'B3', 'B4', 'B5'].map((s) => track(waiting.dep.submit(req([s]))));
    await flush();
    w.answer();
    await flush();
    w.answer();
    await flush();
    assert.ok(all.every((r) => r.value));
    const idleAt = Date.now();
    mock.timers.tick(1_000);
    const x = track(waiting.dep.submit(req(['X'])));
    await flush();
    assert.equal(w.calls.length, 2, 'X waits for company');
    mock.timers.tick(1_000);
    await flush();
    assert.ok(Date.now() - idleAt > 1_000);
    assert.equal(w.stops, 0);
    mock.timers.tick(2_000);
    await flush();
    assert.equal(w.calls.length, 3);
    w.answer();
    await flush();
    assert.deepEqual(echoes(x.value), ['X']);

    // Two idle replicas, one of them restarting: the ready one is the surplus; the other comes back.
    const { dep, fleet } = make({ scaling: '{ min_replicas: 1, max_replicas: 2, idle_timeout_s: 1 }' });
    await dep.start();
    await dep.scaleTo(2);
    dep.scaling.min_replicas = 1;
    const [w1, w2] = fleet.workers as [FakeWorker, FakeWorker];
    const ids = dep.replicaInfo().map((r) => r.id);
    // The first crashes at once and fails three restarts: restarting for 3 s (200 + 400 + 800 + 1600 ms).
    fleet.plans.push('fail', 'fail', 'fail');
    w1.crash();
    let seen: string | undefined;
    for (let i = 0; i < 30 && !seen; i++) {
      mock.timers.tick(100);
      // Read before the stop's exit is reported: the replica shows as stopping meanwhile.
      const st = dep.replicaInfo().find((r) => r.id === ids[1])?.state;
      if (st !== 'ready') seen = st;
      await flush();
    }
    assert.equal(seen, 'stopping');
    assert.deepEqual([w1.stops, w2.stops], [0, 1]);
    mock.timers.tick(3_000);
    await flush();
    assert.equal(fleet.workers.length, 6);
    assert.deepEqual(
      dep.replicaInfo().map((r) => [r.id, r.state]),
      [[ids[0], 'ready']],
    );
  });
});
