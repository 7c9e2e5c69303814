// One gateway's share of the jobs in a shared store (shared/jobs.ts): it claims chunks of any
// unfinished job, up to `concurrency` at once, renews their leases by heartbeat, runs them and
// commits their results. A chunk whose lease this gateway lost (it stalled past the lease, or
// the job was cancelled through another gateway) is abandoned: its results would be written
// only over still-pending records anyway. Database errors (PostgreSQL restarting) pause the
// loop and it carries on; a commit is retried until it lands, so finished work is not lost.
import { randomBytes } from 'node:crypto';
import type { JobItem } from '../../jobs/work.js';
import type { OutputRecord } from '../../jobs/formats.js';
import type { ClaimedChunk, CommitOutcome, JobRow, JobStore } from '../../jobs/store.js';

/** Runs one chunk of a job; throws JobFatalError-like errors to fail the job (`fatal`); others give the chunk back, to be run again after a pause. */
export type SharedChunkProcessor = (job: JobRow, chunk: JobItem[], signal: AbortSignal) => Promise<OutputRecord[]>;

export interface SharedJobWorkerOptions {
  store: JobStore;
  process: SharedChunkProcessor;
  /** This gateway's name in leases (default: a random id). */
  owner?: string;
  /** Chunks this gateway runs at once. */
  concurrency?: number;
  /** How long a lease lasts without a heartbeat (ms). */
  leaseMs?: number;
  /** How often to look for work when there was none (ms). */
  idleMs?: number;
  /** How long a chunk whose run threw waits before it may be claimed again (ms; default 1000). */
  retryDelayMs?: number;
  /** A job finished by one of this gateway's commits, or a chunk committed (progress). */
  onCommit?: (jobId: string, outcome: CommitOutcome) => void;
  /** Errors worth a log line (database unreachable, a chunk that threw). */
  onError?: (message: string, jobId?: string) => void;
  /** Errors that fail the whole job rather than the chunk (default: none). */
  isFatal?: (e: unknown) => boolean;
}

interface InFlight {
  ac: AbortController;
  /** When it was claimed: a heartbeat that began before is no judge of it. */
  since: number;
  promise: Promise<void>;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref());

export class SharedJobWorker {
  readonly owner: string;
  private readonly inFlight = new Map<string, InFlight>();
  private readonly concurrency: number;
  private readonly leaseMs: number;
  private readonly idleMs: number;
  private readonly retryDelayMs: number;
  private stopping = false;
  private loop: Promise<void> | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  private wake: (() => void) | null = null;
  private sweptAt = 0;

  constructor(private readonly opts: SharedJobWorkerOptions) {
    this.owner = opts.owner ?? `gw-${randomBytes(6).toString('hex')}`;
    this.concurrency = Math.max(1, opts.concurrency ?? 4);
    this.leaseMs = Math.max(500, opts.leaseMs ?? 10_000);
    this.idleMs = Math.max(10, opts.idleMs ?? 250);
    this.retryDelayMs = Math.max(0, opts.retryDelayMs ?? 1000);
  }

  start(): void {
    if (this.loop) return;
    this.heartbeat = setInterval(() => void this.beat(), Math.max(100, Math.floor(this.leaseMs / 3)));
    this.heartbeat.unref();
    this.loop = this.run();
  }

  /** Looks for work now (a job was just submitted here). */
  poke(): void {
    this.wake?.();
  }

  /** Abandons this gateway's chunks of a job that has ended (cancelled here), without waiting for the next heartbeat. */
  drop(jobId: string): void {
    for (const [key, f] of this.inFlight) if (key.startsWith(`${jobId}:`)) f.ac.abort();
  }

  /** Chunks in flight here, as `jobId:lo`. */
  held(): string[] {
    return [...this.inFlight.keys()];
  }

  private async run(): Promise<void> {
    let backoff = this.idleMs;
    while (!this.stopping) {
      if (this.inFlight.size >= this.concurrency) {
        await Promise.race([...this.inFlight.values()].map((f) => f.promise));
        continue;
      }
      let chunk: ClaimedChunk | null;
      try {
        chunk = await this.opts.store.claim(this.owner, this.leaseMs);
        backoff = this.idleMs;
      } catch (e) {
        this.opts.onError?.(`cannot claim job work: ${(e as Error).message}`);
        await this.idle(backoff);
        backoff = Math.min(backoff * 2, 2000);
        continue;
      }
      if (!chunk) {
        // A gateway that died between a job's last commit and its finish left it running: finish it.
        if (Date.now() - this.sweptAt > 2000) {
          this.sweptAt = Date.now();
          await this.opts.store
            .sweepFinished()
            .catch((e: Error) => this.opts.onError?.(`cannot finish completed jobs: ${e.message}`));
        }
        await this.idle(this.idleMs);
        continue;
      }
      this.startChunk(chunk);
    }
  }

  private idle(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(done, ms);
      t.unref();
      const settle = [...this.inFlight.values()].map((f) => f.promise);
      function done(): void {
        clearTimeout(t);
        resolve();
      }
      this.wake = done;
      // A chunk finishing frees a slot: look again at once when we were full.
      if (settle.length >= this.concurrency) void Promise.race(settle).then(done);
    });
  }

  private startChunk(chunk: ClaimedChunk): void {
    const key = `${chunk.jobId}:${chunk.lo}`;
    const ac = new AbortController();
    const entry: InFlight = { ac, since: Date.now(), promise: Promise.resolve() };
    this.inFlight.set(key, entry);
    entry.promise = this.runChunk(chunk, ac.signal)
      .catch((e: Error) => this.opts.onError?.(`job chunk ${key} failed: ${e.message}`, chunk.jobId))
      .finally(() => this.inFlight.delete(key));
  }

  private async runChunk(chunk: ClaimedChunk, signal: AbortSignal): Promise<void> {
    const job = await this.opts.store.get(chunk.jobId);
    if (!job) return;
    let results: OutputRecord[] = [];
    if (chunk.items.length > 0) {
      try {
        results = await this.opts.process(
          job,
          chunk.items.map((i) => ({ index: i.idx, input: i.input })),
          signal,
        );
      } catch (e) {
        if (signal.aborted) return;
        if (this.opts.isFatal?.(e)) {
          await this.retry(() => this.opts.store.finish(job.id, 'failed', (e as Error).message), signal);
          return;
        }
        // Another attempt (here or elsewhere) after a pause; the lease is given back, since the
        // heartbeat would renew it while other chunks run here.
        await this.opts.store.giveBack(this.owner, chunk.jobId, chunk.lo, this.retryDelayMs).catch(() => undefined);
        throw e;
      }
    }
    if (signal.aborted) return;
    const outcome = await this.retry(() => this.opts.store.commit(chunk.jobId, chunk.lo, results), signal);
    if (outcome) this.opts.onCommit?.(chunk.jobId, outcome);
  }

  /** Retries a database write through an outage (until it lands, or the chunk is abandoned). */
  private async retry<T>(fn: () => Promise<T>, signal: AbortSignal): Promise<T | undefined> {
    let wait = 100;
    for (;;) {
      try {
        return await fn();
      } catch (e) {
        if (signal.aborted || this.stopping) throw e;
        this.opts.onError?.(`job store write failed, retrying: ${(e as Error).message}`);
        await sleep(wait);
        wait = Math.min(wait * 2, 2000);
      }
    }
  }

  /** Renews the leases; chunks whose lease is gone (taken over, job cancelled) stop here. */
  private async beat(): Promise<void> {
    if (this.inFlight.size === 0) return;
    let held: Set<string>;
    const asked = Date.now();
    try {
      held = await this.opts.store.renew(this.owner, this.leaseMs);
    } catch (e) {
      this.opts.onError?.(`cannot renew job leases: ${(e as Error).message}`);
      return;
    }
    for (const [key, f] of this.inFlight) if (f.since < asked && !held.has(key)) f.ac.abort();
  }

  /**
   * Stops claiming work. `release`: in-flight chunks are abandoned and their leases given back
   * for another gateway to take at once; otherwise they finish first.
   */
  async stop(release = true): Promise<void> {
    this.stopping = true;
    this.wake?.();
    if (this.heartbeat) clearInterval(this.heartbeat);
    if (release) for (const f of this.inFlight.values()) f.ac.abort();
    await Promise.all([...this.inFlight.values()].map((f) => f.promise));
    await this.loop;
    if (release) await this.opts.store.release(this.owner).catch(() => undefined);
  }
}
