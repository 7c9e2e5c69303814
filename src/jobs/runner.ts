// Runs the gateway's persisted jobs: a few at a time, each as chunks of records through its
// model(s), every finished chunk committed to SQLite (see store.ts). At start the gateway
// calls resumeJobs(): jobs left queued or running by a previous process (a crash, SIGKILL, a
// restart) carry on with the records that have no result yet.
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { IsoError } from '../errors.js';
import type { Gateway } from '../gateway.js';
import { resolveTask } from '../api/predict-request.js';
import type { InputRecord } from './formats.js';
import { parsePipeline, processPipelineChunk, resolveSteps, type PipelineSpec } from './pipeline.js';
import { JobStore, TERMINAL, type JobRow } from './store.js';
import { chunked, JobFatalError, processPredictChunk, registryExecutor, runChunks, type ChunkProcessor, type JobItem, type ModelExecutor, type PredictSpec, type WorkContext } from './work.js';

export type JobSpec = PredictSpec | PipelineSpec;

export const MAX_JOB_RECORDS = 1_000_000;
export const MAX_WORKERS = 64;
export const MAX_CHUNK_SIZE = 1000;
/** Jobs that run at once; the others wait, queued, in submission order. */
const MAX_RUNNING_JOBS = 4;
/** How long a job waits for a model that is not serving before it fails. */
const MAX_WAIT_MS = 10 * 60_000;

export interface JobRequest {
  spec: JobSpec;
  inputs: InputRecord[];
  name?: string;
  /** Replicas' worth of chunks to keep busy (two chunks in flight per worker). */
  workers?: number;
  chunkSize?: number;
  priority?: number;
  idempotencyKey?: string;
  /** Hash of the submitted request: same key + another hash is a conflict. */
  requestHash?: string;
}

export interface JobView {
  id: string;
  name: string | null;
  kind: 'predict' | 'pipeline';
  model: string | null;
  pipeline: string | null;
  task: string | null;
  status: string;
  total: number;
  done: number;
  successful: number;
  failed: number;
  pending: number;
  progress: number;
  rate_per_s: number | null;
  eta_s: number | null;
  workers: number;
  chunk_size: number;
  error: string | null;
  idempotency_key: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  updated_at: string;
  links: { self: string; results: string; cancel: string };
}

interface Running {
  ac: AbortController;
  since: number;
  doneAtStart: number;
  promise: Promise<void>;
}

export class JobRunner {
  private readonly running = new Map<string, Running>();
  private readonly waiters = new Map<string, Set<() => void>>();
  private stopping = false;

  constructor(
    readonly store: JobStore,
    private readonly executor: ModelExecutor,
    private readonly logger: Logger,
    private readonly maxWaitMs = MAX_WAIT_MS,
  ) {}

  get stopped(): boolean {
    return this.stopping;
  }

  /** Validates a job request against the models, stores it and schedules it. */
  submit(req: JobRequest): { job: JobRow; created: boolean } {
    if (this.stopping) throw new IsoError('MODEL_NOT_LOADED', 'the gateway is shutting down', undefined, 5);
    if (req.inputs.length === 0) throw new IsoError('INVALID_REQUEST', 'the job has no sequences');
    if (req.inputs.length > MAX_JOB_RECORDS) throw new IsoError('INVALID_REQUEST', `at most ${MAX_JOB_RECORDS} sequences per job (got ${req.inputs.length})`);
    let model: string;
    let task: string | null = null;
    let batch: number;
    let replicas: number;
    const spec = req.spec;
    if (spec.kind === 'predict') {
      const m = this.executor.manifest(spec.model);
      model = m.name;
      if (spec.task !== undefined) task = resolveTask(m, spec.task).name;
      else if (m.tasks.length === 1) task = m.tasks[0]!.name;
      else if (req.inputs.some((r) => r.task === undefined)) resolveTask(m, undefined); // throws: which task?
      batch = m.batching.max_batch_size;
      replicas = m.scaling.max_replicas;
    } else {
      const def = parsePipeline(spec.pipeline);
      const steps = resolveSteps(def, (name) => this.executor.manifest(name));
      model = def.name;
      batch = steps[0]!.manifest.batching.max_batch_size;
      replicas = Math.max(...steps.map((s) => s.manifest.scaling.max_replicas));
    }
    const row = {
      id: randomUUID(),
      name: req.name ?? null,
      kind: spec.kind,
      model,
      task,
      spec: JSON.stringify(spec),
      total: req.inputs.length,
      chunk_size: clamp(req.chunkSize ?? batch, 1, MAX_CHUNK_SIZE),
      workers: clamp(req.workers ?? replicas, 1, MAX_WORKERS),
      // Below interactive requests (priority 0) by default: a big job does not starve the API.
      priority: req.priority ?? -1,
      idempotency_key: req.idempotencyKey ?? null,
      request_hash: req.requestHash ?? null,
      created_at: new Date().toISOString(),
    };
    const res = this.store.create(row, req.inputs);
    if (res.created) {
      this.logger.info({ job: row.id, kind: row.kind, model, total: row.total }, 'job submitted');
      this.schedule();
    }
    return res;
  }

  /** Starts queued / interrupted jobs, oldest first, up to the concurrent-job limit. */
  schedule(): void {
    if (this.stopping) return;
    for (const job of this.store.active()) {
      if (this.running.size >= MAX_RUNNING_JOBS) return;
      if (!this.running.has(job.id)) this.start(job);
    }
  }

  /** Picks up whatever a previous process left unfinished; returns how many jobs that is. */
  resume(): number {
    const left = this.store.active();
    if (left.length) this.logger.info({ jobs: left.map((j) => ({ id: j.id, done: j.done, total: j.total })) }, 'resuming unfinished jobs');
    this.schedule();
    return left.length;
  }

  private start(job: JobRow): void {
    const ac = new AbortController();
    const entry: Running = { ac, since: Date.now(), doneAtStart: job.done, promise: Promise.resolve() };
    this.running.set(job.id, entry);
    entry.promise = this.run(job, ac.signal)
      .catch((e: Error) => this.logger.error({ job: job.id, error: e.message }, 'job loop failed'))
      .finally(() => {
        this.running.delete(job.id);
        this.notify(job.id);
        this.schedule();
      });
  }

  private async run(job: JobRow, signal: AbortSignal): Promise<void> {
    await Promise.resolve();
    this.store.markRunning(job.id);
    this.notify(job.id);
    const spec = JSON.parse(job.spec) as JobSpec;
    const ctx = (s: AbortSignal): WorkContext => ({ executor: this.executor, signal: s, priority: job.priority, maxWaitMs: this.maxWaitMs });
    const process: ChunkProcessor = spec.kind === 'predict' ? (c, s) => processPredictChunk(spec, c, ctx(s)) : (c, s) => processPipelineChunk(spec, c, ctx(s));
    try {
      await runChunks({
        chunks: this.pendingChunks(job.id, job.chunk_size),
        concurrency: job.workers * 2,
        process,
        commit: (_chunk, records) => {
          this.store.writeResults(job.id, records);
          this.notify(job.id);
        },
        signal,
      });
      const left = this.store.countPending(job.id);
      this.store.finish(job.id, left === 0 ? 'succeeded' : 'failed', left === 0 ? null : `${left} records were left without a result`);
      const done = this.store.get(job.id);
      this.logger.info({ job: job.id, status: done?.status, total: done?.total, failed: done?.failed }, 'job finished');
    } catch (e) {
      // Cancelled (cancel() already recorded it) or shutting down (resumed at the next start).
      if (signal.aborted) return;
      const msg = e instanceof JobFatalError ? `${e.code}: ${e.message}` : (e as Error).message;
      this.store.finish(job.id, 'failed', msg);
      this.logger.warn({ job: job.id, error: msg }, 'job failed');
    }
  }

  /** The pending records in input order, read page by page while the job runs. */
  private *pendingChunks(id: string, size: number): Generator<JobItem[]> {
    let after = -1;
    for (;;) {
      const page = this.store.pendingAfter(id, after, size * 16);
      if (page.length === 0) return;
      after = page[page.length - 1]!.idx;
      yield* chunked(
        page.map((r) => ({ index: r.idx, input: r.input })),
        size,
      );
    }
  }

  get(id: string): JobRow {
    const job = this.store.get(id);
    if (!job) throw new IsoError('NOT_FOUND', `no job ${id.slice(0, 80)}`);
    return job;
  }

  /** Cancels an unfinished job: records without a result stay without one. */
  cancel(id: string): { job: JobRow; changed: boolean } {
    this.get(id);
    const changed = this.store.finish(id, 'cancelled', 'cancelled by the client');
    this.running.get(id)?.ac.abort();
    this.notify(id);
    if (changed) this.logger.info({ job: id }, 'job cancelled');
    return { job: this.get(id), changed };
  }

  view(job: JobRow): JobView {
    const r = this.running.get(job.id);
    let rate: number | null = null;
    let eta: number | null = null;
    if (r && !TERMINAL.has(job.status)) {
      const elapsed = (Date.now() - r.since) / 1000;
      const done = job.done - r.doneAtStart;
      if (elapsed > 0.2 && done > 0) {
        rate = Math.round((done / elapsed) * 10) / 10;
        eta = Math.round(((job.total - job.done) / (done / elapsed)) * 10) / 10;
      }
    }
    const pipeline = job.kind === 'pipeline';
    return {
      id: job.id,
      name: job.name,
      kind: job.kind,
      model: pipeline ? null : job.model,
      pipeline: pipeline ? job.model : null,
      task: job.task,
      status: job.status,
      total: job.total,
      done: job.done,
      successful: job.done - job.failed,
      failed: job.failed,
      pending: job.total - job.done,
      progress: job.total ? Math.round((job.done / job.total) * 10_000) / 10_000 : 1,
      rate_per_s: rate,
      eta_s: eta,
      workers: job.workers,
      chunk_size: job.chunk_size,
      error: job.error,
      idempotency_key: job.idempotency_key,
      created_at: job.created_at,
      started_at: job.started_at,
      finished_at: job.finished_at,
      updated_at: job.updated_at,
      links: { self: `/v1/jobs/${job.id}`, results: `/v1/jobs/${job.id}/results`, cancel: `/v1/jobs/${job.id}/cancel` },
    };
  }

  /** Resolves at the job's next progress or status change, or after timeoutMs. */
  waitForChange(id: string, timeoutMs: number): Promise<void> {
    return new Promise((resolve) => {
      let set = this.waiters.get(id);
      if (!set) this.waiters.set(id, (set = new Set()));
      const wake = (): void => {
        clearTimeout(timer);
        set.delete(wake);
        if (set.size === 0 && this.waiters.get(id) === set) this.waiters.delete(id);
        resolve();
      };
      const timer = setTimeout(wake, timeoutMs);
      set.add(wake);
    });
  }

  private notify(id: string): void {
    const set = this.waiters.get(id);
    if (set) for (const wake of [...set]) wake();
  }

  /** Stops every job loop (they stay `running` in the store and resume at the next start). */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const r of this.running.values()) r.ac.abort();
    for (const id of [...this.waiters.keys()]) this.notify(id);
    await Promise.all([...this.running.values()].map((r) => r.promise));
  }
}

function clamp(n: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, Math.floor(n)));
}

const runners = new WeakMap<Gateway, JobRunner>();

/** The gateway's job runner (one per gateway, over its state store and registry). */
export function jobRunnerFor(gw: Gateway): JobRunner {
  let r = runners.get(gw);
  if (!r) {
    r = new JobRunner(new JobStore(gw.store), registryExecutor(gw.registry), gw.logger.child({ component: 'jobs' }));
    runners.set(gw, r);
  }
  return r;
}

/** Called by Gateway.start() once the models are loaded. */
export function resumeJobs(gw: Gateway): void {
  jobRunnerFor(gw).resume();
}
