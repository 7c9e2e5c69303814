// The job runner (src/jobs/runner.ts) without a gateway: a real JobStore in a real SQLite state
// store (temp dir) and an in-memory model executor (the ModelExecutor interface that the gateway's
// registry implements), so each test controls when and how a model answers. jobs-api.test.ts,
// jobs-durability.test.ts and jobs-work.test.ts check the same through a real gateway and real
// workers; these run in a few seconds, for `npm run mutate -- jobs-runner`.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe } from 'node:test';
import { failFastIt } from './fail-fast.js';
import pino from 'pino';
import { IsoError } from '../src/errors.js';
import type { InputRecord } from '../src/jobs/input.js';
import {
  jobRunnerFor,
  JobRunner,
  MAX_CHUNK_SIZE,
  MAX_WORKERS,
  resumeJobs,
  type JobCaller,
  type JobRunnerOptions,
  type JobSettings,
  type JobSpec,
} from '../src/jobs/runner.js';
import { JobStore, type JobRow } from '../src/jobs/store.js';
import type { ModelExecutor } from '../src/jobs/work.js';
import { parseManifest } from '../src/manifest/load.js';
import type { Manifest } from '../src/manifest/schema.js';
import { StateStore } from '../src/store/db.js';
import type { SqlClient, SqlRunner } from '../src/store/sql.js';
import type { Gateway } from '../src/gateway.js';
import type { ItemOutput, WorkItem } from '../src/worker/protocol.js';

const it = failFastIt(8000);

const dirs: string[] = [];
const stores: StateStore[] = [];
after(() => {
  for (const s of stores) s.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
function stateStore(): StateStore {
  const dir = mkdtempSync(join(tmpdir(), 'isomodel-runner-unit-'));
  dirs.push(dir);
  const s = new StateStore(dir);
  stores.push(s);
  return s;
}

function manifest(name: string, tasks: string[], batch = 4, replicas = 2): Manifest {
  const yaml = [
    `name: ${name}`,
    'version: 2.1.0',
    'runtime: node',
    'entry: index.mjs',
    'tasks:',
    ...tasks.map((t) => `  - { name: ${t}, sequence_types: [DNA], max_length: 100 }`),
    `batching: { max_batch_size: ${batch}, max_delay_ms: 0 }`,
    `scaling: { min_replicas: 1, max_replicas: ${replicas} }`,
  ].join('\n');
  return parseManifest(yaml, `${name}/model.yaml`);
}

interface Call {
  model: string;
  task: string;
  items: WorkItem[];
  signal: AbortSignal;
  priority?: number;
}

/**
 * A model executor in memory: `answer` decides each call (default: the sequence's length per
 * item, at once); every call is recorded.
 */
class FakeExecutor implements ModelExecutor {
  readonly calls: Call[] = [];
  readonly models = new Map<string, Manifest>();
  answer: (c: Call) => Promise<ItemOutput[]> = async (c) =>
    c.items.map((it) => ({ length: String(it.sequence).length, task: c.task }));
  inflight = 0;
  maxInflight = 0;

  constructor(...ms: Manifest[]) {
    for (const m of ms) this.models.set(m.name, m);
  }
  manifest(model: string): Manifest {
    const m = this.models.get(model);
    if (!m) throw new IsoError('MODEL_NOT_FOUND', `no model ${model}`);
    return m;
  }
  async submit(
    model: string,
    req: { task: string; items: WorkItem[]; signal: AbortSignal; priority?: number },
  ): Promise<{ outputs: ItemOutput[]; version: string }> {
    const c: Call = { model, ...req };
    this.calls.push(c);
    this.inflight++;
    this.maxInflight = Math.max(this.maxInflight, this.inflight);
    // Like a deployment: a cancelled request is answered CANCELLED at once.
    let stop = (): void => undefined;
    const cancelled = new Promise<never>((_, reject) => {
      stop = (): void => reject(new IsoError('CANCELLED', 'request cancelled by the client'));
      if (req.signal.aborted) stop();
      else req.signal.addEventListener('abort', stop, { once: true });
    });
    try {
      return { outputs: await Promise.race([this.answer(c), cancelled]), version: this.manifest(model).version };
    } finally {
      req.signal.removeEventListener('abort', stop);
      this.inflight--;
    }
  }
  /** Sequences the model was called with, in call order. */
  sequences(): string[] {
    return this.calls.flatMap((c) => c.items.map((i) => String(i.sequence)));
  }
}

/** A promise the test resolves: models that answer when told to. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}

function capturingLogger(): { logger: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = pino(
    { level: 'info' },
    { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) },
  );
  return { logger, lines };
}

const alice: JobCaller = { id: 'key-alice', name: 'alice', admin: false };
const bob: JobCaller = { id: 'key-bob', name: 'bob', admin: false };
const root: JobCaller = { id: 'key-root', name: 'root', admin: true };

const recs = (seqs: string[]): InputRecord[] => seqs.map((s, i) => ({ id: `r${i}`, sequence: s }));

function setup(
  opts: { ex?: FakeExecutor; maxWaitMs?: number; forJob?: JobRunnerOptions['forJob']; store?: StateStore } = {},
) {
  const ex = opts.ex ?? new FakeExecutor(manifest('len', ['measure']), manifest('multi', ['a', 'b']));
  const { logger, lines } = capturingLogger();
  const state = opts.store ?? stateStore();
  const runner = new JobRunner(JobStore.embedded(state), ex, logger, {
    maxWaitMs: opts.maxWaitMs ?? 60_000,
    ...(opts.forJob && { forJob: opts.forJob }),
  });
  return { ex, runner, lines, state };
}

/** Submits a job the way intake.ts does: begin, append, activate, enqueue. */
async function submit(
  runner: JobRunner,
  spec: JobSpec,
  inputs: InputRecord[],
  settings: JobSettings = {},
  caller: JobCaller = alice,
  key?: string,
): Promise<JobRow> {
  const prepared = runner.prepare(spec);
  const row = runner.newRow(spec, prepared, settings, caller, key);
  assert.equal((await runner.store.begin(row)).created, true);
  await runner.store.append(row.id, 0, inputs);
  const job = await runner.store.activate(row.id);
  runner.enqueue(job);
  return job;
}

/** A job row as the store has it now. */
async function stored(runner: JobRunner, id: string): Promise<JobRow> {
  const j = await runner.store.get(id);
  assert.ok(j, `no job ${id}`);
  return j;
}

const predict = (model = 'len', task?: string, options: Record<string, unknown> = {}): JobSpec => ({
  kind: 'predict',
  model,
  task,
  options,
});

async function until(runner: JobRunner, id: string, ok: (j: JobRow) => boolean, ms = 4000): Promise<JobRow> {
  const end = Date.now() + ms;
  for (;;) {
    const j = await stored(runner, id);
    if (ok(j)) return j;
    if (Date.now() > end) throw new Error(`job ${id} still ${j.status} (${j.done}/${j.total}) after ${ms} ms`);
    await runner.waitForChange(id, 50);
  }
}
const finished = (runner: JobRunner, id: string): Promise<JobRow> =>
  until(runner, id, (j) => ['succeeded', 'failed', 'cancelled'].includes(j.status));

async function results(runner: JobRunner, id: string): Promise<Record<string, unknown>[]> {
  return (await runner.store.results(id, 0, 1_000_000)).map((r) =>
    r.result === null ? { idx: r.idx, pending: true } : (JSON.parse(r.result) as Record<string, unknown>),
  );
}

describe('job runner: checking a spec and the job row', () => {
  it('a predict spec: the model, its only task, its batch size and replicas', () => {
    const { runner } = setup();
    const p = runner.prepare(predict());
    assert.deepEqual(
      { ...p, checkRecord: undefined },
      { model: 'len', task: 'measure', batch: 4, replicas: 2, checkRecord: undefined },
    );
    // An unknown task or model is refused before anything is stored.
    assert.throws(
      () => runner.prepare(predict('len', 'nope')),
      (e: IsoError) => e.code === 'INVALID_REQUEST' && /nope/.test(e.message),
    );
    assert.throws(
      () => runner.prepare(predict('ghost')),
      (e: IsoError) => e.code === 'MODEL_NOT_FOUND',
    );
    assert.equal(runner.prepare(predict('multi', 'b')).task, 'b');
  });

  it('a model with several tasks and none named: records name their own, checked against the model', () => {
    const { runner } = setup();
    const p = runner.prepare(predict('multi'));
    assert.equal(p.task, null);
    p.checkRecord({ id: 'x', sequence: 'A' });
    p.checkRecord({ id: 'x', sequence: 'A', task: 'b' });
    assert.throws(() => p.checkRecord({ id: 'x', sequence: 'A', task: 'zzz' }), IsoError);
    // With the job's task set, a record's task is checked when it runs, not here.
    runner.prepare(predict('multi', 'a')).checkRecord({ id: 'x', sequence: 'A', task: 'zzz' });
    // A one-task model: the record's own task is not checked up front either.
    runner.prepare(predict('len')).checkRecord({ id: 'x', sequence: 'A', task: 'zzz' });
  });

  it("a pipeline spec: its name, the first step's batch size and the most replicas of any step", () => {
    const ex = new FakeExecutor(
      manifest('first', ['f'], 3, 1),
      manifest('second', ['s'], 9, 5),
      manifest('third', ['t'], 2, 2),
    );
    const { runner } = setup({ ex });
    const spec: JobSpec = {
      kind: 'pipeline',
      pipeline: { name: 'pl', steps: [{ model: 'first' }, { model: 'second' }, { model: 'third' }] },
      options: {},
    };
    const p = runner.prepare(spec);
    assert.deepEqual(
      { ...p, checkRecord: undefined },
      { model: 'pl', task: null, batch: 3, replicas: 5, checkRecord: undefined },
    );
    assert.equal(p.checkRecord({ id: 'x', task: 'anything' }), undefined);
    assert.throws(
      () => runner.prepare({ kind: 'pipeline', pipeline: { steps: [{ model: 'ghost' }] }, options: {} }),
      (e: IsoError) => e.code === 'MODEL_NOT_FOUND',
    );
    assert.throws(() => runner.prepare({ kind: 'pipeline', pipeline: { steps: [] }, options: {} }), /invalid pipeline/);
  });

  it('the row: defaults from the model, settings clamped, below interactive priority', () => {
    const { runner } = setup();
    const spec = predict();
    const p = runner.prepare(spec);
    const before = Date.now();
    const row = runner.newRow(spec, p, {}, alice);
    assert.match(row.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    assert.notEqual(runner.newRow(spec, p, {}, alice).id, row.id);
    assert.ok(Date.parse(row.created_at) >= before - 1 && Date.parse(row.created_at) <= Date.now());
    assert.deepEqual(
      { ...row, id: undefined, created_at: undefined },
      {
        id: undefined,
        created_at: undefined,
        name: null,
        kind: 'predict',
        model: 'len',
        task: 'measure',
        spec: JSON.stringify(spec),
        chunk_size: 4,
        workers: 2,
        priority: -1,
        idempotency_key: null,
        request_hash: null,
        owner: 'key-alice',
        owner_name: 'alice',
      },
    );
    const set = runner.newRow(spec, p, { name: 'n', workers: 3.9, chunkSize: 7.5, priority: 4 }, bob, 'idem', 'hash');
    assert.deepEqual(
      [set.name, set.workers, set.chunk_size, set.priority, set.idempotency_key, set.request_hash, set.owner],
      ['n', 3, 7, 4, 'idem', 'hash', 'key-bob'],
    );
    assert.equal(runner.newRow(spec, p, { priority: 0 }, bob).priority, 0);
    const low = runner.newRow(spec, p, { workers: 0, chunkSize: -5 }, bob);
    assert.deepEqual([low.workers, low.chunk_size], [1, 1]);
    const high = runner.newRow(spec, p, { workers: 1e9, chunkSize: 1e9 }, bob);
    assert.deepEqual([high.workers, high.chunk_size], [MAX_WORKERS, MAX_CHUNK_SIZE]);
    assert.deepEqual([MAX_WORKERS, MAX_CHUNK_SIZE], [64, 1000]);
    // The model's own sizes are clamped too.
    const big = runner.newRow(spec, { ...p, batch: 5000, replicas: 500 }, {}, bob);
    assert.deepEqual([big.workers, big.chunk_size], [64, 1000]);
  });
});

describe('job runner: running jobs', () => {
  it('every record gets exactly one result, in input order, in chunks of chunk_size', async () => {
    const { runner, ex, lines } = setup();
    const seqs = Array.from({ length: 70 }, (_, i) => 'A'.repeat(1 + (i % 9)));
    // Answers come back out of order: later chunks first.
    ex.answer = async (c) => {
      await new Promise((r) => setTimeout(r, c.items.length === 3 ? 5 : 1));
      return c.items.map((it) => ({ length: String(it.sequence).length }));
    };
    const job = await submit(runner, predict(), recs(seqs), { chunkSize: 3, workers: 2 });
    const done = await finished(runner, job.id);
    assert.equal(done.status, 'succeeded');
    assert.equal(done.error, null);
    assert.deepEqual([done.total, done.done, done.failed], [70, 70, 0]);
    assert.ok(done.started_at !== null && done.finished_at !== null);
    const out = await results(runner, job.id);
    assert.deepEqual(
      out.map((r) => [
        (r.metadata as { index: number }).index,
        (r.metadata as { request_id: string }).request_id,
        (r.output as { length: number }).length,
        r.status,
        r.task,
      ]),
      seqs.map((s, i) => [i, `r${i}`, s.length, 'success', 'measure']),
    );
    // Each record went to the model once (the input reads 16 chunks' worth a page: 48 records, then 22).
    assert.deepEqual([...ex.sequences()].sort(), [...seqs].sort());
    assert.deepEqual(
      ex.calls.map((c) => c.items.length),
      [...Array<number>(23).fill(3), 1],
    );
    assert.ok(ex.calls.every((c) => c.model === 'len' && c.task === 'measure' && c.priority === -1));
    // At most workers × 2 chunks in flight.
    assert.ok(ex.maxInflight <= 4 && ex.maxInflight >= 2, String(ex.maxInflight));
    const fin = lines.find((l) => l.msg === 'job finished');
    assert.deepEqual([fin?.job, fin?.status, fin?.total, fin?.failed], [job.id, 'succeeded', 70, 0]);
    const sub = lines.find((l) => l.msg === 'job submitted');
    assert.deepEqual(
      [sub?.job, sub?.kind, sub?.model, sub?.total, sub?.owner],
      [job.id, 'predict', 'len', 70, 'key-alice'],
    );
  });

  it('keeps workers × 2 chunks in flight, and the job priority on every call', async () => {
    const { runner, ex } = setup();
    const g = gate();
    ex.answer = async (c) => {
      await g.promise;
      return c.items.map(() => ({ ok: true }));
    };
    const job = await submit(runner, predict(), recs(Array<string>(20).fill('AC')), {
      chunkSize: 1,
      workers: 3,
      priority: 7,
    });
    await until(runner, job.id, () => ex.inflight === 6);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(ex.inflight, 6);
    assert.equal((await stored(runner, job.id)).status, 'running');
    g.open();
    const done = await finished(runner, job.id);
    assert.equal(done.status, 'succeeded');
    assert.equal(ex.maxInflight, 6);
    assert.ok(ex.calls.every((c) => c.priority === 7));
  });

  it('a record the model fails fails alone; the job still succeeds with its failures counted', async () => {
    const { runner, ex } = setup();
    ex.answer = async (c) => {
      if (c.items.some((i) => i.sequence === 'GGGG')) throw new IsoError('PREDICTION_FAILED', 'worker crashed');
      return c.items.map((it) => ({ length: String(it.sequence).length }));
    };
    const job = await submit(runner, predict(), recs(['A', 'GGGG', 'CC', 'TTT', 'not dna!']), { chunkSize: 5 });
    const done = await finished(runner, job.id);
    assert.equal(done.status, 'succeeded');
    assert.deepEqual([done.total, done.done, done.failed], [5, 5, 2]);
    const out = await results(runner, job.id);
    assert.deepEqual(
      out.map((r) => r.status),
      ['success', 'error', 'success', 'success', 'error'],
    );
    assert.equal((out[1]!.error as { code: string }).code, 'PREDICTION_FAILED');
    assert.equal((out[4]!.error as { code: string }).code, 'INVALID_SEQUENCE');
  });

  it('a model that does not exist fails the job with its code; the reason is logged', async () => {
    const { runner, ex, lines } = setup();
    ex.answer = async () => {
      throw new IsoError('MODEL_NOT_FOUND', 'model len was deleted');
    };
    const job = await submit(runner, predict(), recs(['A', 'C']));
    const done = await finished(runner, job.id);
    assert.equal(done.status, 'failed');
    assert.equal(done.error, 'MODEL_NOT_FOUND: model len was deleted');
    assert.equal(done.done, 0);
    const warn = lines.find((l) => l.msg === 'job failed');
    assert.deepEqual([warn?.job, warn?.error], [job.id, 'MODEL_NOT_FOUND: model len was deleted']);
    // A job whose model vanished between submission and run: the same.
    const j2 = await submit(runner, predict(), recs(['A']));
    ex.models.delete('len');
    const d2 = await finished(runner, j2.id);
    assert.deepEqual([d2.status, d2.error], ['failed', 'MODEL_NOT_FOUND: no model len']);
  });

  it('an error that is not a JobFatalError fails the job with its message', async () => {
    const { runner } = setup();
    // A broken store write (a bug, a full disk) while the job runs.
    runner.store.writeResults = () => Promise.reject(new Error('disk I/O error'));
    const job = await submit(runner, predict(), recs(['A']));
    const done = await finished(runner, job.id);
    assert.deepEqual([done.status, done.error], ['failed', 'disk I/O error']);
  });

  it('records left without a result fail the job, saying how many', async () => {
    const { runner } = setup();
    // A store that loses the second write (results written under the wrong index, say).
    const store = runner.store;
    const write = store.writeResults.bind(store);
    let n = 0;
    store.writeResults = (id, rs) => (n++ === 1 ? Promise.resolve(0) : write(id, rs));
    const job = await submit(runner, predict(), recs(['A', 'C', 'G']), { chunkSize: 1 });
    const done = await finished(runner, job.id);
    assert.deepEqual([done.status, done.error, done.done], ['failed', '1 records were left without a result', 2]);
  });

  it('waits out an overloaded model, then gives up after maxWaitMs', async () => {
    const { runner, ex } = setup();
    let busy = 2;
    ex.answer = async (c) => {
      if (busy-- > 0) throw new IsoError('QUEUE_FULL', 'busy', undefined, 1);
      return c.items.map(() => ({ ok: 1 }));
    };
    const job = await submit(runner, predict(), recs(['A']));
    assert.equal((await finished(runner, job.id)).status, 'succeeded');
    assert.equal(ex.calls.length, 3);

    const { runner: r2, ex: ex2 } = setup({ maxWaitMs: 150 });
    ex2.answer = async () => {
      throw new IsoError('MODEL_NOT_LOADED', 'still loading');
    };
    const j2 = await submit(r2, predict(), recs(['A']));
    const d2 = await finished(r2, j2.id);
    assert.equal(d2.status, 'failed');
    assert.equal(d2.error, 'MODEL_NOT_LOADED: gave up after 0 s: still loading');
  });

  it('runs at most four jobs at once, the others in submission order', async () => {
    const { runner, ex } = setup();
    const gates = new Map<string, ReturnType<typeof gate>>();
    ex.answer = async (c) => {
      const id = String(c.items[0]!.sequence);
      const g = gates.get(id) ?? gate();
      gates.set(id, g);
      await g.promise;
      return c.items.map(() => ({ ok: id }));
    };
    const seqs = ['A', 'C', 'G', 'T', 'AA', 'CC'];
    const jobs: JobRow[] = [];
    for (const s of seqs) {
      jobs.push(await submit(runner, predict(), recs([s])));
      // Distinct creation times: the store orders by them.
      await new Promise((r) => setTimeout(r, 3));
    }
    await until(runner, jobs[3]!.id, () => ex.calls.length === 4);
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(ex.calls.length, 4);
    assert.deepEqual(
      (await Promise.all(jobs.map((j) => stored(runner, j.id)))).map((j) => j.status),
      ['running', 'running', 'running', 'running', 'queued', 'queued'],
    );
    assert.deepEqual(ex.sequences(), ['A', 'C', 'G', 'T']);
    // The second finishes: the fifth starts (not the sixth).
    gates.get('C')!.open();
    await until(runner, jobs[4]!.id, (j) => j.status === 'running');
    await until(runner, jobs[4]!.id, () => ex.calls.length === 5);
    assert.equal((await stored(runner, jobs[5]!.id)).status, 'queued');
    assert.deepEqual(ex.sequences(), ['A', 'C', 'G', 'T', 'AA']);
    for (const s of ['A', 'G', 'T', 'AA']) gates.get(s)!.open();
    await until(runner, jobs[5]!.id, () => ex.calls.length === 6);
    gates.get('CC')!.open();
    for (const j of jobs) assert.equal((await finished(runner, j.id)).status, 'succeeded');
  });

  it('wraps each job run\'s executor with forJob: "job" for predict, "pipeline" for pipelines', async () => {
    const seen: [string, string][] = [];
    const ex = new FakeExecutor(manifest('len', ['measure']));
    let wrapped = 0;
    const { runner } = setup({
      ex,
      forJob: (inner, source, id) => {
        seen.push([source, id]);
        return { manifest: (m) => inner.manifest(m), submit: (m, r) => (wrapped++, inner.submit(m, r)) };
      },
    });
    const j1 = await submit(runner, predict(), recs(['A', 'C']), { chunkSize: 1 });
    await finished(runner, j1.id);
    const j2 = await submit(
      runner,
      { kind: 'pipeline', pipeline: { name: 'p', steps: [{ model: 'len' }] }, options: {} },
      recs(['G']),
    );
    const d2 = await finished(runner, j2.id);
    assert.equal(d2.status, 'succeeded');
    assert.deepEqual(seen, [
      ['job', j1.id],
      ['pipeline', j2.id],
    ]);
    assert.equal(wrapped, 3);
    assert.equal((await results(runner, j2.id))[0]!.task, 'pipeline:p');
  });
});

describe('job runner: owners, cancel, stop and resume', () => {
  it('a job is seen by its owner and admin keys only; other keys and unknown ids get NOT_FOUND', async () => {
    const { runner } = setup();
    const job = await submit(runner, predict(), recs(['A']));
    await finished(runner, job.id);
    assert.equal((await runner.find(job.id, alice)).id, job.id);
    assert.equal((await runner.find(job.id, root)).id, job.id);
    for (const [id, who] of [
      [job.id, bob],
      ['nope', alice],
    ] as const) {
      await assert.rejects(
        () => runner.find(id, who),
        (e: IsoError) => e.code === 'NOT_FOUND' && e.message === `no job ${id}`,
      );
    }
    await assert.rejects(
      () => runner.get('x'.repeat(200)),
      (e: IsoError) => e.message === `no job ${'x'.repeat(80)}`,
    );
    // A submission still being received does not exist for clients.
    const row = runner.newRow(predict(), runner.prepare(predict()), {}, alice);
    await runner.store.begin(row);
    assert.equal((await stored(runner, row.id)).status, 'receiving');
    await assert.rejects(
      () => runner.get(row.id),
      (e: IsoError) => e.code === 'NOT_FOUND',
    );
    await assert.rejects(
      () => runner.find(row.id, root),
      (e: IsoError) => e.code === 'NOT_FOUND',
    );
  });

  it('cancel stops the model calls; finished records keep their result, the others stay pending', async () => {
    const { runner, ex, lines } = setup();
    const g = gate();
    const signals: AbortSignal[] = [];
    ex.answer = async (c) => {
      if (c.items[0]!.sequence !== 'A') {
        signals.push(c.signal);
        await g.promise;
      }
      return c.items.map(() => ({ ok: 1 }));
    };
    const job = await submit(runner, predict(), recs(['A', 'C', 'G', 'T']), { chunkSize: 1, workers: 1 });
    await until(runner, job.id, (j) => j.done === 1 && signals.length === 2);
    // Another key cannot cancel it.
    await assert.rejects(
      () => runner.cancel(job.id, bob),
      (e: IsoError) => e.code === 'NOT_FOUND',
    );
    const r = await runner.cancel(job.id, alice);
    assert.equal(r.changed, true);
    assert.deepEqual([r.job.status, r.job.error], ['cancelled', 'cancelled by the client']);
    assert.ok(signals.every((s) => s.aborted));
    g.open();
    await new Promise((res) => setTimeout(res, 30));
    const after = await stored(runner, job.id);
    assert.deepEqual([after.status, after.done, after.error], ['cancelled', 1, 'cancelled by the client']);
    assert.deepEqual(
      (await results(runner, job.id)).map((x) => x.status ?? 'pending'),
      ['success', 'pending', 'pending', 'pending'],
    );
    assert.deepEqual(ex.sequences(), ['A', 'C', 'G']);
    const log = lines.find((l) => l.msg === 'job cancelled');
    assert.deepEqual([log?.job, log?.by], [job.id, 'key-alice']);
    // Cancelling again changes nothing and logs nothing.
    const again = await runner.cancel(job.id, root);
    assert.deepEqual([again.changed, again.job.error], [false, 'cancelled by the client']);
    assert.equal(lines.filter((l) => l.msg === 'job cancelled').length, 1);
    // Nothing was logged as a failure.
    assert.equal(lines.filter((l) => l.msg === 'job failed' || l.msg === 'job loop failed').length, 0);
  });

  it('an admin cancels any job, named in the error; a queued job is cancelled before it runs', async () => {
    const { runner, ex } = setup();
    const g = gate();
    ex.answer = async (c) => {
      await g.promise;
      return c.items.map(() => ({ ok: 1 }));
    };
    const jobs: JobRow[] = [];
    for (let i = 0; i < 5; i++) jobs.push(await submit(runner, predict(), recs(['A'])));
    const queued = jobs[4]!;
    assert.equal((await stored(runner, queued.id)).status, 'queued');
    const r = await runner.cancel(queued.id, root);
    assert.deepEqual([r.changed, r.job.status, r.job.error], [true, 'cancelled', 'cancelled by root']);
    g.open();
    for (const j of jobs.slice(0, 4)) assert.equal((await finished(runner, j.id)).status, 'succeeded');
    assert.equal(ex.calls.length, 4);
  });

  it('stop() leaves running jobs running in the store; a new runner resumes only the records without a result', async () => {
    const state = stateStore();
    const first = setup({ store: state });
    const g = gate();
    first.ex.answer = async (c) => {
      if (String(c.items[0]!.sequence).length > 1) await g.promise;
      return c.items.map((it) => ({ len: String(it.sequence).length }));
    };
    const job = await submit(first.runner, predict(), recs(['A', 'C', 'GG', 'TT', 'AC']), { chunkSize: 1, workers: 1 });
    await until(first.runner, job.id, (j) => j.done === 2 && first.ex.calls.length === 4);
    const waiting = first.runner.waitForChange(job.id, 60_000);
    const idle = first.runner.waitForChange('no-such-job', 60_000);
    await first.runner.stop();
    // stop() ended the job loops before it returned, and woke the waiters, those of jobs that do not run too.
    assert.equal((first.runner as unknown as { running: Map<string, unknown> }).running.size, 0);
    await waiting;
    await idle;
    assert.equal(first.runner.stopped, true);
    g.open();
    assert.deepEqual(
      [(await stored(first.runner, job.id)).status, (await stored(first.runner, job.id)).done],
      ['running', 2],
    );
    assert.throws(
      () => first.runner.prepare(predict()),
      (e: IsoError) => e.code === 'MODEL_NOT_LOADED' && e.retryAfterS === 5 && /shutting down/.test(e.message),
    );
    // A stopped runner starts nothing new.
    const row = first.runner.newRow(
      predict(),
      { model: 'len', task: 'measure', batch: 1, replicas: 1, checkRecord: () => undefined },
      {},
      alice,
    );
    await first.runner.store.begin(row);
    await first.runner.store.append(row.id, 0, recs(['CCC']));
    first.runner.enqueue(await first.runner.store.activate(row.id));
    first.runner.schedule();
    await new Promise((r) => setTimeout(r, 20));
    assert.equal((await stored(first.runner, row.id)).status, 'queued');
    assert.deepEqual(first.ex.sequences(), ['A', 'C', 'GG', 'TT']);

    const second = setup({ store: state });
    second.ex.answer = async (c) => c.items.map((it) => ({ len: String(it.sequence).length }));
    assert.equal(await second.runner.resume(), 2);
    const resumed = second.lines.find((l) => l.msg === 'resuming unfinished jobs');
    assert.deepEqual(resumed?.jobs, [
      { id: job.id, done: 2, total: 5 },
      { id: row.id, done: 0, total: 1 },
    ]);
    const d = await finished(second.runner, job.id);
    assert.deepEqual([d.status, d.done, d.total], ['succeeded', 5, 5]);
    assert.equal((await finished(second.runner, row.id)).status, 'succeeded');
    // The new process ran only what had no result; the old one's late answers were not written twice.
    assert.deepEqual([...second.ex.sequences()].sort(), ['AC', 'CCC', 'GG', 'TT']);
    assert.deepEqual(
      (await results(second.runner, job.id)).map((r) => (r.output as { len: number }).len),
      [1, 1, 2, 2, 2],
    );
    // Nothing to resume: nothing logged.
    const third = setup({ store: state });
    assert.equal(await third.runner.resume(), 0);
    assert.deepEqual(third.lines, []);
  });

  it('waitForChange wakes at progress and at the end, or after its timeout; waiters do not pile up', async () => {
    const { runner, ex } = setup();
    const g = gate();
    ex.answer = async (c) => {
      await g.promise;
      return c.items.map(() => ({ ok: 1 }));
    };
    const t0 = Date.now();
    await runner.waitForChange('none', 30);
    assert.ok(Date.now() - t0 >= 25);
    const waiters = (runner as unknown as { waiters: Map<string, Set<unknown>> }).waiters;
    assert.equal(waiters.size, 0);
    const job = await submit(runner, predict(), recs(['A']));
    await until(runner, job.id, (j) => j.status === 'running');
    let woke = false;
    const w = runner.waitForChange(job.id, 60_000).then(() => (woke = true));
    const w2 = runner.waitForChange(job.id, 60_000);
    assert.equal(waiters.get(job.id)?.size, 2);
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(woke, false);
    g.open();
    await Promise.all([w, w2]);
    await finished(runner, job.id);
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(waiters.size, 0);
    // One waiter's timeout leaves the others to be woken by the next change.
    const short = runner.waitForChange(job.id, 5);
    const long = runner.waitForChange(job.id, 60_000);
    await short;
    assert.equal(waiters.get(job.id)?.size, 1);
    runner.changed(job.id);
    await long;
    assert.equal(waiters.size, 0);
  });
});

describe('job runner: the client view and progress', () => {
  it('a finished job: counts, progress, links; no rate; the owner for admin callers only', async () => {
    const { runner, ex } = setup();
    ex.answer = async (c) =>
      c.items.map((it) => (it.sequence === 'C' ? { error: { code: 'BAD', message: 'no' } } : { ok: 1 }));
    const job = await submit(
      runner,
      predict(),
      recs(['A', 'C', 'G']),
      { name: 'mine', chunkSize: 2, workers: 1 },
      alice,
      'idem-1',
    );
    const done = await finished(runner, job.id);
    const v = runner.view(done, alice);
    assert.deepEqual(v, {
      id: job.id,
      name: 'mine',
      kind: 'predict',
      model: 'len',
      pipeline: null,
      task: 'measure',
      status: 'succeeded',
      total: 3,
      done: 3,
      successful: 2,
      failed: 1,
      pending: 0,
      progress: 1,
      rate_per_s: null,
      eta_s: null,
      workers: 1,
      chunk_size: 2,
      error: null,
      idempotency_key: 'idem-1',
      created_at: done.created_at,
      started_at: done.started_at,
      finished_at: done.finished_at,
      updated_at: done.updated_at,
      links: { self: `/v1/jobs/${job.id}`, results: `/v1/jobs/${job.id}/results`, cancel: `/v1/jobs/${job.id}/cancel` },
    });
    assert.equal('owner' in v, false);
    assert.equal('owner' in runner.view(done), false);
    assert.deepEqual(runner.view(done, root).owner, { id: 'key-alice', name: 'alice' });
    // Progress in four decimals; a job with no records is complete.
    assert.equal(runner.view({ ...done, total: 3, done: 1 }).progress, 0.3333);
    assert.equal(runner.view({ ...done, total: 3, done: 2 }).progress, 0.6667);
    assert.equal(runner.view({ ...done, total: 0, done: 0 }).progress, 1);
    assert.equal(runner.view({ ...done, total: 10, done: 4, failed: 1 }).pending, 6);
    assert.equal(runner.view({ ...done, total: 10, done: 4, failed: 1 }).successful, 3);
  });

  it('a pipeline job names its pipeline, not a model', async () => {
    const { runner } = setup();
    const job = await submit(
      runner,
      { kind: 'pipeline', pipeline: { name: 'pp', steps: [{ model: 'len' }] }, options: {} },
      recs(['A']),
    );
    const v = runner.view(await finished(runner, job.id));
    assert.deepEqual([v.kind, v.model, v.pipeline, v.task], ['pipeline', null, 'pp', null]);
  });

  it("a running job: its rate and ETA once measured; progressOf sums an owner's running jobs", async () => {
    const { runner, ex } = setup();
    const g = gate();
    ex.answer = async (c) => {
      if (c.items[0]!.sequence === 'T') await g.promise;
      return c.items.map(() => ({ ok: 1 }));
    };
    const job = await submit(runner, predict(), recs(['A', 'C', 'G', 'T', 'T', 'T', 'T', 'T']), {
      chunkSize: 1,
      workers: 1,
    });
    const other = await submit(runner, predict(), recs(['T']), {}, bob);
    await until(runner, job.id, (j) => j.done === 3);
    const since = (runner as unknown as { running: Map<string, { since: number }> }).running.get(job.id)!.since;
    // Too early to measure: no rate yet (under 0.2 s; checked only when the machine was quick enough).
    if (Date.now() - since < 150) {
      const early = runner.view(await stored(runner, job.id));
      assert.deepEqual([early.status, early.rate_per_s, early.eta_s], ['running', null, null]);
      assert.deepEqual(await runner.progressOf('key-alice'), { rate: 0, soonestEndS: null });
    }
    await new Promise((r) => setTimeout(r, 260));
    const row = await stored(runner, job.id);
    const t1 = Date.now();
    const v = runner.view(row);
    const p = await runner.progressOf('key-alice');
    const t2 = Date.now();
    // 3 records since the job started here, 5 left; the rate is read between t1 and t2.
    const lo = 3 / ((t2 - since) / 1000);
    const hi = 3 / ((t1 - since) / 1000);
    const r1 = (x: number): number => Math.round(x * 10) / 10;
    assert.ok(
      v.rate_per_s !== null && v.rate_per_s >= r1(lo) && v.rate_per_s <= r1(hi),
      `${v.rate_per_s} in ${lo}..${hi}`,
    );
    assert.ok(v.eta_s !== null && v.eta_s >= r1(5 / hi) && v.eta_s <= r1(5 / lo), `${v.eta_s}`);
    assert.ok(p.rate >= lo && p.rate <= hi, JSON.stringify(p));
    assert.ok(p.soonestEndS !== null && Math.abs(p.soonestEndS - 5 / p.rate) < 1e-9, JSON.stringify(p));
    // Bob's job has done nothing: no measure for him; nobody else has jobs.
    assert.deepEqual(await runner.progressOf('key-bob'), { rate: 0, soonestEndS: null });
    assert.deepEqual(await runner.progressOf('key-carol'), { rate: 0, soonestEndS: null });
    // A terminal row is never measured, even while its loop is still winding down.
    assert.equal(runner.view({ ...row, status: 'cancelled' }).rate_per_s, null);
    g.open();
    await finished(runner, job.id);
    await finished(runner, other.id);
    assert.equal(runner.view(await stored(runner, job.id)).rate_per_s, null);
  });

  it('progressOf: several running jobs of one owner add their rates and report the soonest end', async () => {
    const { runner, ex } = setup();
    const g = gate();
    ex.answer = async (c) => {
      if (c.items[0]!.sequence === 'T') await g.promise;
      return c.items.map(() => ({ ok: 1 }));
    };
    // Job a: 2 done, 10 left; job b: 4 done, 1 left.
    const a = await submit(runner, predict(), recs([...'AC', ...'TTTTTTTTTT']), { chunkSize: 1, workers: 1 });
    const b = await submit(runner, predict(), recs([...'ACGA', 'T']), { chunkSize: 1, workers: 1 });
    await until(runner, a.id, (j) => j.done === 2);
    await until(runner, b.id, (j) => j.done === 4);
    await new Promise((r) => setTimeout(r, 260));
    const running = (runner as unknown as { running: Map<string, { since: number }> }).running;
    const [sa, sb] = [running.get(a.id)!.since, running.get(b.id)!.since];
    const t1 = Date.now();
    const p = await runner.progressOf('key-alice');
    const t2 = Date.now();
    const rate = (n: number, since: number, at: number): number => n / ((at - since) / 1000);
    assert.ok(p.rate >= rate(2, sa, t2) + rate(4, sb, t2) && p.rate <= rate(2, sa, t1) + rate(4, sb, t1), `${p.rate}`);
    // b ends first: 1 record at b's rate, against 10 at a's.
    assert.ok(
      p.soonestEndS !== null && p.soonestEndS >= 1 / rate(4, sb, t1) && p.soonestEndS <= 1 / rate(4, sb, t2),
      `${p.soonestEndS}`,
    );
    g.open();
    await finished(runner, a.id);
    await finished(runner, b.id);
  });
});

describe('job runner for a gateway', () => {
  it('one runner per gateway; submissions left half-received are deleted; resumeJobs picks up the rest', async () => {
    const state = stateStore();
    // A previous process: one job left queued, one submission it was still receiving.
    const prev = setup({ store: state });
    const g = gate();
    prev.ex.answer = async () => {
      await g.promise;
      return [];
    };
    for (let i = 0; i < 4; i++) await submit(prev.runner, predict(), recs(['A']));
    const queued = await submit(prev.runner, predict(), recs(['AC', 'GT']));
    const half = prev.runner.newRow(predict(), prev.runner.prepare(predict()), {}, alice);
    await prev.runner.store.begin(half);
    await prev.runner.store.append(half.id, 0, recs(['A']));
    await prev.runner.stop();
    g.open();
    await new Promise((r) => setTimeout(r, 5));

    const ex = new FakeExecutor(manifest('len', ['measure']));
    // The model is still loading for its first 0.25 s: each job waits it out (0.1 s, then 0.2 s
    // of backoff), well within the gateway's wait for a model (10 minutes).
    let loadedAt = Infinity;
    ex.answer = async (c) => {
      if (loadedAt === Infinity) loadedAt = Date.now() + 250;
      if (Date.now() < loadedAt) throw new IsoError('MODEL_NOT_LOADED', 'still loading');
      return c.items.map((it) => ({ length: String(it.sequence).length }));
    };
    const { logger, lines } = capturingLogger();
    const counted: unknown[][] = [];
    const gw = {
      config: {},
      startedAt: Date.now(),
      store: state,
      logger,
      registry: {
        package: (m: string) => ({ manifest: ex.manifest(m) }),
        serving: (m: string) => ({
          version: ex.manifest(m).version,
          submit: (req: { task: string; items: WorkItem[]; signal: AbortSignal }) =>
            ex.submit(m, req).then((r) => r.outputs),
        }),
        deployment: (id: string) => ({
          name: id.split('@')[0],
          version: '2.1.0',
          stats: { record: (...a: unknown[]) => counted.push(a) },
        }),
      },
      metrics: { observeRequest: () => undefined },
    } as unknown as Gateway;
    const runner = jobRunnerFor(gw);
    assert.equal(jobRunnerFor(gw), runner);
    assert.notEqual(jobRunnerFor({ ...gw, store: stateStore() } as unknown as Gateway), runner);
    // A submission this process is receiving (begun after it started) is not the previous one's.
    await new Promise((r) => setTimeout(r, 5));
    const young = runner.newRow(predict(), runner.prepare(predict()), {}, alice);
    await runner.store.begin(young);
    await runner.store.append(young.id, 0, recs(['A']));
    resumeJobs(gw);
    const d = await finished(runner, queued.id);
    assert.equal(d.status, 'succeeded');
    assert.equal(await runner.store.get(half.id), undefined);
    assert.equal((await stored(runner, young.id)).status, 'receiving');
    const warn = lines.find((l) => l.msg === 'deleted job submissions left half-received by a gateway that stopped');
    assert.deepEqual([warn?.submissions, warn?.component], [1, 'jobs']);
    assert.deepEqual(
      (await results(runner, queued.id)).map((r) => (r.output as { length: number }).length),
      [2, 2],
    );
    // Its model calls were counted as job traffic (counted.ts).
    assert.ok(counted.some((a) => a[4] === 'job'));
    await runner.stop();
  });
});

describe('job runner over a shared store (database_url)', () => {
  /** A runner in shared mode: the store's job workers (shared-runner.ts) run the jobs, not it. */
  function sharedSetup(state = stateStore()) {
    const ex = new FakeExecutor(manifest('len', ['measure']));
    const { logger, lines } = capturingLogger();
    const woken: number[] = [];
    const dropped: string[] = [];
    const runner = new JobRunner(JobStore.embedded(state), ex, logger, {
      maxWaitMs: 60_000,
      shared: { wake: () => woken.push(1), drop: (id) => dropped.push(id) },
    });
    return { ex, runner, lines, state, woken, dropped };
  }
  /** Sets columns of a job row directly (another gateway's progress, an old submission). */
  function setRow(state: StateStore, id: string, cols: Record<string, unknown>): void {
    const names = Object.keys(cols);
    state.db
      .prepare(`UPDATE jobs SET ${names.map((n) => `${n} = ?`).join(', ')} WHERE id = ?`)
      .run(...names.map((n) => cols[n]), id);
  }

  it('a queued job wakes the job workers and is not run here; schedule() and resume() run nothing', async () => {
    const { runner, ex, lines, woken } = sharedSetup();
    const job = await submit(runner, predict(), recs(['A', 'C']));
    assert.deepEqual(woken, [1]);
    runner.schedule();
    assert.equal(await runner.resume(), 0);
    await new Promise((r) => setTimeout(r, 30));
    assert.deepEqual([(await stored(runner, job.id)).status, ex.calls.length], ['queued', 0]);
    assert.equal(lines.filter((l) => l.msg === 'resuming unfinished jobs').length, 0);
    assert.ok(lines.some((l) => l.msg === 'job submitted' && l.job === job.id));
  });

  it('resume() deletes only submissions nobody has written to for ten minutes (another gateway may still be receiving one)', async () => {
    const { runner, state, lines } = sharedSetup();
    const ids: string[] = [];
    for (const minutes of [11, 9, 0]) {
      const row = runner.newRow(predict(), runner.prepare(predict()), {}, alice);
      await runner.store.begin(row);
      await runner.store.append(row.id, 0, recs(['A']));
      setRow(state, row.id, { updated_at: new Date(Date.now() - minutes * 60_000).toISOString() });
      ids.push(row.id);
    }
    assert.equal(await runner.resume(Date.now() - 3_600_000), 0);
    assert.deepEqual(await Promise.all(ids.map(async (id) => (await runner.store.get(id))?.status ?? 'deleted')), [
      'deleted',
      'receiving',
      'receiving',
    ]);
    const warn = lines.find((l) => l.msg === 'deleted job submissions left half-received by a gateway that stopped');
    assert.equal(warn?.submissions, 1);
  });

  it("cancel drops the job's chunks on this gateway and records the cancel", async () => {
    const { runner, dropped } = sharedSetup();
    const job = await submit(runner, predict(), recs(['A']));
    const woke = runner.waitForChange(job.id, 60_000);
    const r = await runner.cancel(job.id, alice);
    await woke;
    assert.deepEqual([r.changed, r.job.status, dropped], [true, 'cancelled', [job.id]]);
  });

  it("rate and ETA since the job started, wherever it runs; progressOf sums the owner's running jobs in the store", async () => {
    const { runner, state } = sharedSetup();
    const a = await submit(runner, predict(), recs(Array<string>(25).fill('A')));
    const b = await submit(runner, predict(), recs(Array<string>(12).fill('A')));
    const queued = await submit(runner, predict(), recs(Array<string>(9).fill('A')));
    const bobs = await submit(runner, predict(), recs(Array<string>(9).fill('A')), {}, bob);
    const ago = (s: number): string => new Date(Date.now() - s * 1000).toISOString();
    // a: 5 done in 10 s, 20 left; b: 8 done in 4 s, 4 left; the queued job has a start time but does not run.
    setRow(state, a.id, { status: 'running', started_at: ago(10), done: 5 });
    setRow(state, b.id, { status: 'running', started_at: ago(4), done: 8 });
    setRow(state, queued.id, { started_at: ago(10), done: 3 });
    setRow(state, bobs.id, { status: 'running', started_at: ago(10), done: 1 });
    const [sa, sb] = [
      Date.parse((await stored(runner, a.id)).started_at!),
      Date.parse((await stored(runner, b.id)).started_at!),
    ];
    const t1 = Date.now();
    const v = runner.view(await stored(runner, a.id));
    const p = await runner.progressOf('key-alice');
    const t2 = Date.now();
    // Rates read between t1 and t2: about 0.5/s for a, 2/s for b.
    const rate = (n: number, since: number, at: number): number => n / ((at - since) / 1000);
    const between = (x: number | null, lo: number, hi: number): boolean =>
      x !== null && x >= lo - 1e-9 && x <= hi + 1e-9;
    const r1 = (x: number): number => Math.round(x * 10) / 10;
    assert.ok(between(v.rate_per_s, r1(rate(5, sa, t2)), r1(rate(5, sa, t1))), String(v.rate_per_s));
    assert.ok(between(v.eta_s, r1(20 / rate(5, sa, t1)), r1(20 / rate(5, sa, t2))), String(v.eta_s));
    assert.ok(between(p.rate, rate(5, sa, t2) + rate(8, sb, t2), rate(5, sa, t1) + rate(8, sb, t1)), JSON.stringify(p));
    // b ends first: 4 left at b's rate (about 2 s), against 20 at a's (about 40 s).
    assert.ok(between(p.soonestEndS, 4 / rate(8, sb, t1), 4 / rate(8, sb, t2)), JSON.stringify(p));
    assert.deepEqual(await runner.progressOf('key-carol'), { rate: 0, soonestEndS: null });
    // Not started anywhere yet: no measure.
    setRow(state, a.id, { started_at: null });
    assert.equal(runner.view(await stored(runner, a.id)).rate_per_s, null);
  });
});

describe('job runner: what a runner that does not run a job says of it', () => {
  it('an embedded runner measures only the jobs it runs, whatever the row says', async () => {
    const { runner, state } = setup();
    const ex = new FakeExecutor(manifest('len', ['measure']));
    const other = new JobRunner(JobStore.embedded(state), ex, pino({ level: 'silent' }));
    const row = runner.newRow(predict(), runner.prepare(predict()), {}, alice);
    await runner.store.begin(row);
    await runner.store.append(row.id, 0, recs(['A', 'C', 'G', 'T']));
    await runner.store.activate(row.id);
    state.db
      .prepare('UPDATE jobs SET status = ?, started_at = ?, done = ? WHERE id = ?')
      .run('running', new Date(Date.now() - 10_000).toISOString(), 2, row.id);
    const j = await stored(other, row.id);
    assert.deepEqual([other.view(j).rate_per_s, other.view(j).eta_s], [null, null]);
    assert.deepEqual(await other.progressOf('key-alice'), { rate: 0, soonestEndS: null });
  });

  it('a job cancelled (or deleted) between the read that scheduled it and its start is not run', async () => {
    const { runner, ex, lines } = setup();
    const markRunning = runner.store.markRunning.bind(runner.store);
    runner.store.markRunning = async (id) => {
      // What another request did meanwhile: the first job cancelled, the second deleted.
      if (id === ids[0]) await runner.store.finish(id, 'cancelled', 'cancelled by the client');
      else await runner.store.sql.run('DELETE FROM jobs WHERE id = ?', [id]);
      return markRunning(id);
    };
    const ids: string[] = [];
    const row = (): ReturnType<JobRunner['newRow']> => runner.newRow(predict(), runner.prepare(predict()), {}, alice);
    for (const r of [row(), row()]) {
      await runner.store.begin(r);
      await runner.store.append(r.id, 0, recs(['A']));
      await runner.store.activate(r.id);
      ids.push(r.id);
    }
    const waits = ids.map((id) => runner.waitForChange(id, 60_000));
    runner.schedule();
    await Promise.all(waits);
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(ex.calls.length, 0);
    assert.deepEqual(
      [(await stored(runner, ids[0]!)).status, (await stored(runner, ids[0]!)).error],
      ['cancelled', 'cancelled by the client'],
    );
    assert.equal(
      lines.filter((l) => ['job finished', 'job failed', 'job loop failed'].includes(String(l.msg))).length,
      0,
    );
  });
});

describe('job runner: scheduling, wake-ups and failures around the job loop', () => {
  /** A job stored and queued, not yet handed to the runner. */
  async function queue(runner: JobRunner, inputs: InputRecord[], settings: JobSettings = {}): Promise<JobRow> {
    const r = runner.newRow(predict(), runner.prepare(predict()), settings, alice);
    await runner.store.begin(r);
    await runner.store.append(r.id, 0, inputs);
    return runner.store.activate(r.id);
  }

  it("a job queued while a scheduling pass reads the store is started by that pass, not at the next job's end", async () => {
    const { runner, ex } = setup();
    const g = gate();
    ex.answer = async (c) => {
      await g.promise;
      return c.items.map(() => ({ ok: 1 }));
    };
    const j1 = await queue(runner, recs(['A']));
    // The first pass's read of the queued jobs answers only when told to.
    const read = gate();
    const active = runner.store.active.bind(runner.store);
    let reads = 0;
    runner.store.active = async () => {
      const rows = await active();
      if (reads++ === 0) await read.promise;
      return rows;
    };
    runner.enqueue(j1);
    const j2 = await queue(runner, recs(['C']));
    runner.enqueue(j2);
    read.open();
    await until(runner, j2.id, () => ex.calls.length === 2);
    assert.deepEqual(
      [(await stored(runner, j1.id)).status, (await stored(runner, j2.id)).status, ex.sequences()],
      ['running', 'running', ['A', 'C']],
    );
    g.open();
    await finished(runner, j1.id);
    await finished(runner, j2.id);
  });

  it('a pass that cannot read the store is logged, and the next one runs the jobs', async () => {
    const { runner, lines } = setup();
    const active = runner.store.active.bind(runner.store);
    let fail = true;
    runner.store.active = () => (fail ? Promise.reject(new Error('database is locked')) : active());
    const job = await submit(runner, predict(), recs(['A']));
    await new Promise((r) => setTimeout(r, 30));
    const err = lines.find((l) => l.msg === 'cannot read the queued jobs');
    assert.equal(err?.error, 'database is locked');
    assert.equal((await stored(runner, job.id)).status, 'queued');
    fail = false;
    runner.schedule();
    assert.equal((await finished(runner, job.id)).status, 'succeeded');
  });

  it('a job loop that throws outside its chunks is logged and the job is picked up again', async () => {
    const { runner, lines } = setup();
    const markRunning = runner.store.markRunning.bind(runner.store);
    let fail = 1;
    runner.store.markRunning = (id) => (fail-- > 0 ? Promise.reject(new Error('disk full')) : markRunning(id));
    const job = await submit(runner, predict(), recs(['A', 'C']));
    assert.equal((await finished(runner, job.id)).status, 'succeeded');
    const err = lines.find((l) => l.msg === 'job loop failed');
    assert.deepEqual([err?.job, err?.error], [job.id, 'disk full']);
  });

  it('waiters wake when the job starts and at each committed chunk', async () => {
    const { runner, ex } = setup();
    const gates = [gate(), gate()];
    ex.answer = async (c) => {
      await gates[c.items[0]!.sequence === 'A' ? 0 : 1]!.promise;
      return c.items.map(() => ({ ok: 1 }));
    };
    const job = await queue(runner, recs(['A', 'C']), { chunkSize: 1, workers: 1 });
    // Nothing but the start can wake this one: both model calls are held.
    const start = runner.waitForChange(job.id, 60_000);
    runner.enqueue(job);
    await start;
    assert.equal((await stored(runner, job.id)).status, 'running');
    await until(runner, job.id, () => ex.calls.length === 2);
    const chunk = runner.waitForChange(job.id, 60_000);
    gates[0]!.open();
    await chunk;
    assert.deepEqual([(await stored(runner, job.id)).done, (await stored(runner, job.id)).status], [1, 'running']);
    gates[1]!.open();
    assert.equal((await finished(runner, job.id)).status, 'succeeded');
  });

  it("a resumed job's rate counts only the records done since this runner started it", async () => {
    const state = stateStore();
    const first = setup({ store: state });
    const held = gate();
    first.ex.answer = async (c) => {
      if (!['A', 'C'].includes(String(c.items[0]!.sequence))) await held.promise;
      return c.items.map(() => ({ ok: 1 }));
    };
    const job = await submit(first.runner, predict(), recs(['A', 'C', 'T', 'G', 'T', 'T']), {
      chunkSize: 1,
      workers: 1,
    });
    await until(first.runner, job.id, (j) => j.done === 2 && first.ex.calls.length === 4);
    await first.runner.stop();
    // The second runner holds T: of its first three records (T, G, T), it finishes G only.
    const second = setup({ store: state });
    const g = gate();
    second.ex.answer = async (c) => {
      if (c.items[0]!.sequence === 'T') await g.promise;
      return c.items.map(() => ({ ok: 1 }));
    };
    assert.equal(await second.runner.resume(), 1);
    await until(second.runner, job.id, (j) => j.done === 3 && second.ex.calls.length === 3);
    await new Promise((r) => setTimeout(r, 260));
    const since = (second.runner as unknown as { running: Map<string, { since: number }> }).running.get(job.id)!.since;
    const t1 = Date.now();
    const p = await second.runner.progressOf('key-alice');
    const t2 = Date.now();
    // One record since it started (not the three done in all), three left.
    const [lo, hi] = [1 / ((t2 - since) / 1000), 1 / ((t1 - since) / 1000)];
    assert.ok(p.rate >= lo && p.rate <= hi, `${p.rate} in ${lo}..${hi}`);
    assert.ok(p.soonestEndS !== null && Math.abs(p.soonestEndS - 3 / p.rate) < 1e-9, JSON.stringify(p));
    g.open();
    held.open();
    assert.equal((await finished(second.runner, job.id)).status, 'succeeded');
  });
});

describe('job runner for a gateway with database_url', () => {
  function fakeGateway(
    state: StateStore,
    extra: Record<string, unknown>,
  ): { gw: Gateway; lines: Record<string, unknown>[] } {
    const ex = new FakeExecutor(manifest('len', ['measure']));
    const { logger, lines } = capturingLogger();
    const gw = {
      config: {},
      startedAt: Date.now(),
      store: state,
      logger,
      registry: { package: (m: string) => ({ manifest: ex.manifest(m) }), deployment: () => undefined },
      metrics: { observeRequest: () => undefined },
      shared: null,
      sharedJobs: null,
      ...extra,
    } as unknown as Gateway;
    return { gw, lines };
  }

  it('the shared job store once open (not before); its job workers are woken and told of cancels', async () => {
    const state = stateStore();
    const { gw } = fakeGateway(state, { config: { database_url: 'postgres://u@127.0.0.1/isomodel' } });
    assert.throws(() => jobRunnerFor(gw), /the shared job store is not open yet/);
    const jobs = JobStore.embedded(stateStore());
    const g = gw as unknown as {
      shared: { jobs: JobStore };
      sharedJobs: { poke: () => void; drop: (id: string) => void } | null;
    };
    g.shared = { jobs };
    const runner = jobRunnerFor(gw);
    assert.equal(runner.store, jobs);
    // Before the job workers start: nothing to wake, and no error.
    const early = await submit(runner, predict(), recs(['A']));
    const calls: string[] = [];
    g.sharedJobs = { poke: () => calls.push('poke'), drop: (id) => calls.push(`drop ${id}`) };
    const job = await submit(runner, predict(), recs(['A']));
    await runner.cancel(job.id, alice);
    assert.deepEqual(calls, ['poke', `drop ${job.id}`]);
    g.sharedJobs = null;
    await runner.cancel(early.id, alice);
    assert.equal((await stored(runner, early.id)).status, 'cancelled');
    // Resuming leaves the jobs to the workers.
    assert.equal(await runner.resume(), 0);
  });

  it('resumeJobs logs a failed resume instead of throwing', async () => {
    const { gw, lines } = fakeGateway(stateStore(), {});
    const runner = jobRunnerFor(gw);
    runner.store.purgeReceiving = () => Promise.reject(new Error('database is locked'));
    resumeJobs(gw);
    await new Promise((r) => setTimeout(r, 30));
    const err = lines.find((l) => l.msg === 'cannot resume the unfinished jobs');
    assert.deepEqual([err?.component, err?.error], ['jobs', 'database is locked']);
  });
});

describe('job store on SQLite: the per-record statements use the whole primary key', () => {
  // A result write planned as a scan of the job's records per statement made a 100,000-record
  // job take 43 s instead of 3 (quadratic in its size); timing it here would be noisy, the
  // plan is not.
  it('writing results, reading pending records and results: no statement scans all of a job', async () => {
    const state = stateStore();
    const store = JobStore.embedded(state);
    const seen: [string, readonly unknown[]][] = [];
    const record = <R extends { query: SqlRunner['query']; run: SqlRunner['run'] }>(r: R): SqlRunner => ({
      dialect: 'sqlite',
      query: (s, p) => (seen.push([s, p ?? []]), r.query(s, p)),
      run: (s, p) => (seen.push([s, p ?? []]), r.run(s, p)),
    });
    const sql = store.sql as { -readonly [K in keyof SqlClient]: SqlClient[K] };
    const tx = sql.tx.bind(sql);
    const query = sql.query.bind(sql);
    const run = sql.run.bind(sql);
    sql.tx = (fn) => tx((q) => fn(record(q)));
    sql.query = (s, p) => record({ query, run }).query(s, p);
    sql.run = (s, p) => record({ query, run }).run(s, p);

    const { job } = await store.begin({
      id: 'plans',
      name: null,
      kind: 'predict',
      model: 'm',
      task: 't',
      spec: '{}',
      chunk_size: 100,
      workers: 1,
      priority: 0,
      idempotency_key: null,
      request_hash: null,
      created_at: new Date().toISOString(),
      owner: alice.id,
      owner_name: alice.name,
    });
    await store.append(
      job.id,
      0,
      Array.from({ length: 3000 }, (_, i) => ({ id: `s${i}`, sequence: 'ACGT' })),
    );
    await store.activate(job.id);
    seen.length = 0;
    const out = (i: number, status: 'success' | 'error' = 'success') => ({
      task: 't',
      status,
      output: { i },
      metadata: { request_id: `s${i}`, processing_time_ms: 1, service: 'm', version: null, index: i },
    });
    // As many as a chunk holds: the plan of a statement over a few rows may differ.
    const first = Array.from({ length: 500 }, (_, i) => out(i, i === 6 ? 'error' : 'success'));
    assert.equal(await store.writeResults(job.id, first), 500);
    assert.equal(await store.writeResults(job.id, [out(6), out(500)]), 1, 'a record already written is left as it is');
    await store.pendingAfter(job.id, 100, 50);
    await store.results(job.id, 0, 10);
    const row = (await store.get(job.id))!;
    assert.deepEqual([row.done, row.failed], [501, 1]);

    const touching = seen.filter(([s]) => /job_items/.test(s));
    assert.ok(touching.length >= 4, `${touching.length} statements on job_items`);
    for (const [s, p] of touching) {
      const plan = (state.db.prepare(`EXPLAIN QUERY PLAN ${s}`).all(...p) as { detail: string }[]).map((r) => r.detail);
      const items = plan.filter((d) => /\bjob_items\b/.test(d));
      assert.ok(items.length > 0, `${s}: ${plan.join(' | ')}`);
      for (const d of items)
        assert.match(d, /USING (PRIMARY KEY|INDEX \S+) \(job_id=\? AND idx[=>]\?/, `${s.trim().slice(0, 80)}: ${d}`);
    }
  });
});
