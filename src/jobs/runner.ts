// The gateway's jobs, for the job routes and intake: reads for clients go through find(), which
// keeps each key to its own jobs; submissions come in through intake.ts. Where they run:
// - embedded (SQLite, the default): here, a few jobs at a time, each as chunks of records
//   through its model(s), every finished chunk committed to the store (store.ts). At start the
//   gateway calls resumeJobs(): jobs left queued or running by a previous process (a crash,
//   SIGKILL, a restart) carry on with the records that have no result yet;
// - shared (database_url): by every gateway's share of the shared store's chunks
//   (shared-runner.ts), so a job outlives the gateway that accepted it, and any gateway
//   answers its progress, results and cancel.
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { IsoError } from '../errors.js';
import { resolveTask } from '../api/predict-request.js';
import type { InputRecord } from './input.js';
import { parsePipeline, processPipelineChunk, resolveSteps, type PipelineSpec } from './pipeline.js';
import { countedExecutor } from './counted.js';
import type { JobCaller, JobsContext } from './context.js';
import type { SqlRunner } from '../store/sql.js';
import { JobStore, RECEIVING, TERMINAL, type JobRow, type NewJobRow } from './store.js';
import { jobView, type JobView } from './view.js';
import {
  chunked,
  JobFatalError,
  processPredictChunk,
  registryExecutor,
  runChunks,
  type ChunkProcessor,
  type JobItem,
  type ModelExecutor,
  type PredictSpec,
  type WorkContext,
} from './work.js';

export type JobSpec = PredictSpec | PipelineSpec;
// Moved to context.ts and view.ts; importable from here as before.
export type { JobCaller, JobView };

export const MAX_JOB_RECORDS = 1_000_000;
export const MAX_WORKERS = 64;
export const MAX_CHUNK_SIZE = 1000;
/** Jobs that run at once; the others wait, queued, in submission order. */
const MAX_RUNNING_JOBS = 4;
/** How long a job waits for a model that is not serving before it fails. */
const MAX_WAIT_MS = 10 * 60_000;
/** A shared submission not written to for this long is dead (its gateway died mid-upload). */
const STALE_SUBMISSION_MS = 10 * 60_000;

/** A job's settings, as a submission gives them. */
export interface JobSettings {
  name?: string;
  /** Replicas' worth of chunks to keep busy (two chunks in flight per worker). */
  workers?: number;
  chunkSize?: number;
  priority?: number;
}

/** A spec checked against the models: what the job row records, and a check for each record. */
export interface PreparedSpec {
  model: string;
  task: string | null;
  batch: number;
  replicas: number;
  /** Throws when a record cannot run at all (no task to run on a model with several). */
  checkRecord: (r: InputRecord) => void;
}

interface Running {
  owner: string;
  ac: AbortController;
  since: number;
  doneAtStart: number;
  promise: Promise<void>;
}

export interface JobRunnerOptions {
  maxWaitMs?: number;
  /** Wraps the executor of one job run (the gateway counts each job's model calls: counted.ts). */
  forJob?: (executor: ModelExecutor, source: 'job' | 'pipeline', jobId: string) => ModelExecutor;
  /**
   * The store is shared by several gateways, whose job workers run its jobs (shared-runner.ts):
   * this runner runs none itself, calls `wake` when a job is queued here and `drop` when one is
   * cancelled here.
   */
  shared?: { wake: () => void; drop: (jobId: string) => void };
}

export class JobRunner {
  private readonly running = new Map<string, Running>();
  private readonly waiters = new Map<string, Set<() => void>>();
  private stopping = false;
  private scheduling: Promise<void> | null = null;
  private rescheduled = false;
  private readonly maxWaitMs: number;

  constructor(
    readonly store: JobStore,
    private readonly executor: ModelExecutor,
    private readonly logger: Logger,
    private readonly opts: JobRunnerOptions = {},
  ) {
    this.maxWaitMs = opts.maxWaitMs ?? MAX_WAIT_MS;
  }

  get stopped(): boolean {
    return this.stopping;
  }

  /** Checks a spec against the models (MODEL_NOT_FOUND, INVALID_REQUEST); nothing is stored. */
  prepare(spec: JobSpec): PreparedSpec {
    if (this.stopping) throw new IsoError('MODEL_NOT_LOADED', 'the gateway is shutting down', undefined, 5);
    if (spec.kind === 'predict') {
      const m = this.executor.manifest(spec.model);
      let task: string | null = null;
      if (spec.task !== undefined) task = resolveTask(m, spec.task).name;
      else if (m.tasks.length === 1) task = m.tasks[0]!.name;
      // Several tasks and none for the job: a record names its own, or gets the model's default task.
      const checkRecord = (r: InputRecord): void => {
        if (task === null && r.task !== undefined) resolveTask(m, r.task);
      };
      return { model: m.name, task, batch: m.batching.max_batch_size, replicas: m.scaling.max_replicas, checkRecord };
    }
    const def = parsePipeline(spec.pipeline);
    const steps = resolveSteps(def, (name) => this.executor.manifest(name));
    return {
      model: def.name,
      task: null,
      batch: steps[0]!.manifest.batching.max_batch_size,
      replicas: Math.max(...steps.map((s) => s.manifest.scaling.max_replicas)),
      checkRecord: () => undefined,
    };
  }

  /** The job row of a new submission (stored by JobIntake, `receiving` until all its records are in). */
  newRow(
    spec: JobSpec,
    prepared: PreparedSpec,
    settings: JobSettings,
    caller: JobCaller,
    idempotencyKey?: string,
    requestHash?: string,
  ): NewJobRow {
    return {
      id: randomUUID(),
      name: settings.name ?? null,
      kind: spec.kind,
      model: prepared.model,
      task: prepared.task,
      spec: JSON.stringify(spec),
      chunk_size: clamp(settings.chunkSize ?? prepared.batch, 1, MAX_CHUNK_SIZE),
      workers: clamp(settings.workers ?? prepared.replicas, 1, MAX_WORKERS),
      // Below interactive requests (priority 0) by default: a big job does not starve the API.
      priority: settings.priority ?? -1,
      idempotency_key: idempotencyKey ?? null,
      request_hash: requestHash ?? null,
      created_at: new Date().toISOString(),
      owner: caller.id,
      owner_name: caller.name,
    };
  }

  /** A job that has just been queued: logged and scheduled (here, or by the shared job workers). */
  enqueue(job: JobRow): void {
    this.logger.info(
      { job: job.id, kind: job.kind, model: job.model, total: job.total, owner: job.owner },
      'job submitted',
    );
    if (this.opts.shared) this.opts.shared.wake();
    else this.schedule();
  }

  /** Starts queued / interrupted jobs, oldest first, up to the concurrent-job limit (one pass at a time). */
  schedule(): void {
    if (this.stopping || this.opts.shared) return;
    if (this.scheduling) {
      this.rescheduled = true;
      return;
    }
    this.scheduling = (async () => {
      do {
        this.rescheduled = false;
        for (const job of await this.store.active()) {
          if (this.stopping || this.running.size >= MAX_RUNNING_JOBS) break;
          if (!this.running.has(job.id)) this.start(job);
        }
      } while (this.rescheduled && !this.stopping);
    })()
      .catch((e: Error) => this.logger.error({ error: e.message }, 'cannot read the queued jobs'))
      .finally(() => (this.scheduling = null));
  }

  /**
   * At start: deletes submissions a dead process was still receiving (its client never had an
   * answer), then picks up whatever a previous process left unfinished. Returns how many jobs
   * that is (shared: none are run here, the job workers take them).
   */
  async resume(startedAt = Date.now()): Promise<number> {
    // Embedded: every submission older than this process is dead. Shared: another gateway may
    // still be receiving one, so only those nobody has written to for a while.
    const dropped = await this.store.purgeReceiving(
      this.opts.shared ? STALE_SUBMISSION_MS : Math.max(0, Date.now() - startedAt),
    );
    if (dropped)
      this.logger.warn(
        { submissions: dropped },
        'deleted job submissions left half-received by a gateway that stopped',
      );
    if (this.opts.shared) return 0;
    const left = await this.store.active();
    if (left.length)
      this.logger.info(
        { jobs: left.map((j) => ({ id: j.id, done: j.done, total: j.total })) },
        'resuming unfinished jobs',
      );
    this.schedule();
    return left.length;
  }

  private start(job: JobRow): void {
    const ac = new AbortController();
    const entry: Running = {
      owner: job.owner,
      ac,
      since: Date.now(),
      doneAtStart: job.done,
      promise: Promise.resolve(),
    };
    this.running.set(job.id, entry);
    entry.promise = this.run(job, ac.signal)
      .catch((e: Error) => this.logger.error({ job: job.id, error: e.message }, 'job loop failed'))
      .finally(() => {
        this.running.delete(job.id);
        this.changed(job.id);
        this.schedule();
      });
  }

  private async run(job: JobRow, signal: AbortSignal): Promise<void> {
    await this.store.markRunning(job.id);
    // Cancelled between the read that scheduled it and now: nothing to run.
    if (TERMINAL.has((await this.store.get(job.id))?.status ?? 'cancelled')) return;
    this.changed(job.id);
    const spec = JSON.parse(job.spec) as JobSpec;
    const executor =
      this.opts.forJob?.(this.executor, spec.kind === 'predict' ? 'job' : 'pipeline', job.id) ?? this.executor;
    const ctx = (s: AbortSignal): WorkContext => ({
      executor,
      signal: s,
      priority: job.priority,
      maxWaitMs: this.maxWaitMs,
    });
    const process: ChunkProcessor =
      spec.kind === 'predict'
        ? (c, s) => processPredictChunk(spec, c, ctx(s))
        : (c, s) => processPipelineChunk(spec, c, ctx(s));
    try {
      await runChunks({
        chunks: this.pendingChunks(job.id, job.chunk_size),
        concurrency: job.workers * 2,
        process,
        commit: async (_chunk, records) => {
          await this.store.writeResults(job.id, records);
          this.changed(job.id);
        },
        signal,
      });
      const left = await this.store.countPending(job.id);
      await this.store.finish(
        job.id,
        left === 0 ? 'succeeded' : 'failed',
        left === 0 ? null : `${left} records were left without a result`,
      );
      const done = await this.store.get(job.id);
      this.logger.info({ job: job.id, status: done?.status, total: done?.total, failed: done?.failed }, 'job finished');
    } catch (e) {
      // Cancelled (cancel() already recorded it) or shutting down (resumed at the next start).
      if (signal.aborted) return;
      const msg = e instanceof JobFatalError ? `${e.code}: ${e.message}` : (e as Error).message;
      await this.store.finish(job.id, 'failed', msg);
      this.logger.warn({ job: job.id, error: msg }, 'job failed');
    }
  }

  /** The pending records in input order, read page by page while the job runs. */
  private async *pendingChunks(id: string, size: number): AsyncGenerator<JobItem[]> {
    let after = -1;
    for (;;) {
      const page = await this.store.pendingAfter(id, after, size * 16);
      if (page.length === 0) return;
      after = page[page.length - 1]!.idx;
      yield* chunked(
        page.map((r) => ({ index: r.idx, input: r.input })),
        size,
      );
    }
  }

  /** A job that exists for clients (one still being received does not). */
  async get(id: string): Promise<JobRow> {
    const job = await this.store.get(id);
    if (!job || job.status === RECEIVING) throw notFound(id);
    return job;
  }

  /**
   * A job as `caller` may see it: its own, or any with the admin scope. Another key's job is
   * NOT_FOUND, the same answer as a job that does not exist, so ids cannot be probed.
   */
  async find(id: string, caller: JobCaller): Promise<JobRow> {
    const job = await this.get(id);
    if (!caller.admin && job.owner !== caller.id) throw notFound(id);
    return job;
  }

  /**
   * Cancels an unfinished job the caller may see: records without a result stay without one.
   * Shared: this gateway's worker drops the job's chunks at once, every other gateway's at its
   * next heartbeat, and nothing is written after the cancel (a commit checks the job's status).
   */
  async cancel(id: string, caller: JobCaller): Promise<{ job: JobRow; changed: boolean }> {
    await this.find(id, caller);
    const changed = await this.store.finish(
      id,
      'cancelled',
      caller.admin ? `cancelled by ${caller.name}` : 'cancelled by the client',
    );
    this.running.get(id)?.ac.abort();
    this.opts.shared?.drop(id);
    this.changed(id);
    if (changed) this.logger.info({ job: id, by: caller.id }, 'job cancelled');
    return { job: await this.get(id), changed };
  }

  /**
   * Records per second; null until it has a measure. Embedded: since this process started the
   * job. Shared: since the job started, wherever it runs.
   */
  private rate(job: JobRow): number | null {
    if (TERMINAL.has(job.status)) return null;
    const r = this.running.get(job.id);
    const since = r ? r.since : this.opts.shared && job.started_at ? Date.parse(job.started_at) : NaN;
    if (!Number.isFinite(since)) return null;
    const elapsed = (Date.now() - since) / 1000;
    const done = job.done - (r?.doneAtStart ?? 0);
    return elapsed > 0.2 && done > 0 ? done / elapsed : null;
  }

  /**
   * How an owner's running jobs progress: their combined rate (records/s) and the soonest
   * expected end (s), where measured. For Retry-After on a quota answer (`q`: inside the
   * activation's transaction).
   */
  async progressOf(owner: string, q?: SqlRunner): Promise<{ rate: number; soonestEndS: number | null }> {
    let rate = 0;
    let soonest: number | null = null;
    const jobs: (JobRow | undefined)[] = [];
    if (this.opts.shared)
      jobs.push(...(await this.store.list({ owner, status: 'running', limit: 100, offset: 0 }, q)).jobs);
    else for (const [id, r] of this.running) if (r.owner === owner) jobs.push(await this.store.get(id, q));
    for (const job of jobs) {
      const perS = job ? this.rate(job) : null;
      if (!job || perS === null) continue;
      rate += perS;
      const end = (job.total - job.done) / perS;
      soonest = soonest === null ? end : Math.min(soonest, end);
    }
    return { rate, soonestEndS: soonest };
  }

  /** The client's view of a job; its owner only for an admin caller. */
  view(job: JobRow, caller?: JobCaller): JobView {
    return jobView(job, this.rate(job), caller);
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

  /** Wakes whoever waits for the job's progress (this gateway committed some of it, or cancelled it). */
  changed(id: string): void {
    const set = this.waiters.get(id);
    if (set) for (const wake of [...set]) wake();
  }

  /** Stops every job loop (they stay `running` in the store and resume at the next start). */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const r of this.running.values()) r.ac.abort();
    for (const id of [...this.waiters.keys()]) this.changed(id);
    await Promise.all([...this.running.values()].map((r) => r.promise));
  }
}

function notFound(id: string): IsoError {
  return new IsoError('NOT_FOUND', `no job ${id.slice(0, 80)}`);
}

function clamp(n: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, Math.floor(n)));
}

const runners = new WeakMap<JobsContext, JobRunner>();

/**
 * The gateway's job runner (one per gateway, over its registry): over the shared job store with
 * database_url (opened by Gateway.start() before the routes), else over its own SQLite file.
 */
export function jobRunnerFor(gw: JobsContext): JobRunner {
  let r = runners.get(gw);
  if (!r) {
    if (gw.config.database_url && !gw.shared)
      throw new Error('the shared job store is not open yet (Gateway.start() opens it)');
    const store = gw.shared?.jobs ?? JobStore.embedded(gw.store);
    const logger = gw.logger.child({ component: 'jobs' });
    r = new JobRunner(store, registryExecutor(gw.registry), logger, {
      maxWaitMs: MAX_WAIT_MS,
      forJob: (executor, source, id) => countedExecutor(executor, gw, source, id),
      ...(gw.shared && {
        shared: { wake: () => gw.sharedJobs?.poke(), drop: (id: string) => gw.sharedJobs?.drop(id) },
      }),
    });
    runners.set(gw, r);
  }
  return r;
}

/** Called by Gateway.start() once the models are loaded. */
export function resumeJobs(gw: JobsContext): void {
  const runner = jobRunnerFor(gw);
  runner
    .resume(gw.startedAt)
    .catch((e: Error) => gw.logger.error({ component: 'jobs', error: e.message }, 'cannot resume the unfinished jobs'));
}
