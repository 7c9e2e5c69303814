// One loaded model version: its replicas, its bounded queue, adaptive batching, restarts
// with backoff, idle scale-down (to zero if allowed) and wake-up on the next request.
//
// Batching is continuous: an idle replica takes what is queued at once (up to max_batch_size,
// and max_batch_tokens by length bucket: request-queue.ts), and while every replica is busy
// requests accumulate for the next one to free up. A replica waits for a fuller batch only when
// the model declares a preferred_batch_size and more requests are on their way (recent
// concurrency above what the deployment holds now), and never longer than max_delay_ms.
// The replicas themselves (start, restart, pings, retire) are ./replica-pool.ts.
import type { Logger } from 'pino';
import { IsoError } from '../errors.js';
import type { ModelPackage } from '../manifest/load.js';
import type { WorkerFactory } from '../drivers/factory.js';
import type { ItemOutput, WorkItem } from '../worker/protocol.js';
import type { DeploymentObserver } from './observer.js';
import { RequestQueue, paddedTokens, type BatchLimits, type Unit } from './request-queue.js';
import type { CancelSignal } from './cancel.js';
import { ReplicaPool, type DeploymentOptions, type Pending, type Replica } from './replica-pool.js';

export type { DeploymentOptions, DeploymentState, ReplicaInfo, ReplicaState } from './replica-pool.js';

export interface SubmitOptions {
  task: string;
  items: WorkItem[];
  /** Overall deadline for this request, queue time included. */
  timeoutMs?: number;
  priority?: number;
  /** An AbortSignal, or the cheaper CancelToken (scheduler/cancel.ts). */
  signal?: CancelSignal;
  stream?: boolean;
  onChunk?: (index: number, data: unknown) => void;
}

/** Default queue time a request may spend on top of the model's compute timeout. */
const QUEUE_ALLOWANCE_MS = 30_000;
/**
 * How long the concurrency a deployment has seen counts as "recent" for the wait decision: one to
 * two windows of this, or of twice max_delay_ms where that is longer.
 */
const CONCURRENCY_WINDOW_MS = 250;

export class ModelDeployment extends ReplicaPool {
  private readonly queue: RequestQueue<Pending>;
  private batchTimer: NodeJS.Timeout | null = null;
  private housekeeping: NodeJS.Timeout | null = null;
  private drainWaiters: (() => void)[] = [];
  /** The deployment that replaced this one: requests arriving while this one drains go there. */
  private successor: ModelDeployment | null = null;
  private readonly limits: BatchLimits;
  /** Most items held at once (queued + in flight) in the current and the previous window. */
  private peak = { current: 0, previous: 0, since: Date.now() };
  private readonly peakWindowMs: number;

  constructor(
    pkg: ModelPackage,
    createWorker: WorkerFactory,
    logger: Logger,
    observer?: DeploymentObserver,
    options: DeploymentOptions = {},
  ) {
    super(pkg, createWorker, logger, observer, options);
    const b = pkg.manifest.batching;
    this.queue = new RequestQueue<Pending>(this.scaling.max_queue, b.priority_aging_ms);
    this.limits = { maxItems: Math.max(1, b.max_batch_size), maxTokens: b.max_batch_tokens ?? Infinity };
    this.peakWindowMs = Math.max(CONCURRENCY_WINDOW_MS, 2 * b.max_delay_ms);
  }

  /** Starts the initial replicas; resolves when all are ready, rejects if any cannot start. */
  async start(): Promise<void> {
    const initial = Math.max(1, this.scaling.min_replicas);
    const starts = Array.from({ length: initial }, () => this.addReplica());
    const results = await Promise.allSettled(starts);
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) {
      const err = (failed as PromiseRejectedResult).reason as IsoError;
      this.state = 'failed';
      this.lastError = err.message;
      await this.stop(1000);
      throw err;
    }
    // Unloaded while its replicas started (stop() stopped them): it stays stopped.
    if (this.state === 'stopped')
      throw new IsoError('MODEL_NOT_LOADED', `model ${this.name} was unloaded while it was starting`);
    this.state = 'ready';
    this.housekeeping = setInterval(() => this.tick(), 1000);
    this.housekeeping.unref();
  }

  /** Queue a request; resolves with one output per item. */
  submit(opts: SubmitOptions): Promise<ItemOutput[]> {
    // A caller that picked this deployment just before a rolling update or reload switched away
    // from it is served by the replacement instead of failing.
    if (this.successor && this.state !== 'ready') return this.successor.submit(opts);
    if (this.state === 'failed')
      return Promise.reject(new IsoError('MODEL_NOT_LOADED', `model ${this.name} failed to load: ${this.lastError}`));
    if (this.state !== 'ready')
      return Promise.reject(new IsoError('MODEL_NOT_LOADED', `model ${this.name} is ${this.state}`));
    if (opts.items.length === 0) return Promise.resolve([]);
    if (!this.queue.hasRoomFor(opts.items.length)) {
      return Promise.reject(
        new IsoError(
          'QUEUE_FULL',
          `model ${this.name} has ${this.queue.length} sequences queued (limit ${this.queue.capacity}); retry later`,
          { queue_depth: this.queue.length },
          1,
        ),
      );
    }
    // The manifest's timeout_ms bounds one batch's compute (a worker over it is killed); a
    // request's deadline also covers its time in the queue, or waiting for a restart.
    const timeoutMs = opts.timeoutMs ?? this.pkg.manifest.resources.timeout_ms + QUEUE_ALLOWANCE_MS;
    return new Promise<ItemOutput[]>((resolve, reject) => {
      const req: Pending = {
        task: opts.task,
        items: opts.items,
        priority: opts.priority ?? 0,
        enqueuedAt: Date.now(),
        stream: opts.stream ?? false,
        done: false,
        outputs: new Array<ItemOutput | undefined>(opts.items.length),
        remaining: opts.items.length,
        resolve,
        reject,
        onChunk: opts.onChunk,
        cleanup: () => undefined,
      };
      const timer = setTimeout(
        () =>
          this.abandon(
            req,
            new IsoError('PREDICTION_TIMEOUT', `no answer within ${timeoutMs} ms`, { timeout_ms: timeoutMs }),
          ),
        timeoutMs,
      );
      const onAbort = (): void => this.abandon(req, new IsoError('CANCELLED', 'request cancelled by the client'));
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      req.cleanup = () => {
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
      };
      if (opts.signal?.aborted) return onAbort();
      this.queue.push(req);
      this.notePeak(req.enqueuedAt);
      this.ensureCapacity();
      this.pump();
    });
  }

  /** A request that gave up: out of the queue, and its batch cancelled if nobody else needs it. */
  private abandon(req: Pending, err: IsoError): void {
    if (req.done) return;
    this.queue.remove(req);
    this.finishWithError(req, err);
    for (const r of this.replicas) {
      if (r.inflight?.some((u) => u.req === req) && r.inflight.every((u) => u.req.done)) r.worker?.cancel();
    }
  }

  private finishWithError(req: Pending, err: IsoError): void {
    if (req.done) return;
    req.done = true;
    req.cleanup();
    req.reject(err);
    this.checkDrained();
  }

  protected failQueued(err: () => IsoError): void {
    for (const req of this.queue.drainAll()) this.finishWithError(req, err());
  }

  /** Wakes a scaled-to-zero model and adds replicas while the backlog outgrows them. */
  private ensureCapacity(): void {
    const { max_replicas } = this.scaling;
    const live = this.liveReplicas();
    if (live.length >= max_replicas) return;
    const starting = live.filter((r) => r.state === 'starting').length;
    const perReplica = Math.max(1, this.pkg.manifest.batching.max_batch_size);
    const busy = live.every((r) => r.state !== 'ready' || r.inflight !== null);
    const needed = live.length === 0 || (busy && starting === 0 && this.queue.length > perReplica);
    if (!needed) return;
    this.logger.info({ replicas: live.length + 1, queued: this.queue.length }, 'scaling up');
    this.addReplica().catch((e: Error) => {
      this.logger.error({ error: e.message }, 'scale-up replica failed to start');
      if (this.liveReplicas().length === 0) {
        this.failQueued(() => new IsoError('MODEL_NOT_LOADED', `model ${this.name} could not start: ${e.message}`));
      }
    });
  }

  /** Records how many items the deployment holds now: its recent concurrency. */
  private notePeak(now: number): void {
    const held = this.queue.length + this.inflightCount();
    const p = this.peak;
    if (now - p.since >= this.peakWindowMs) {
      p.previous = now - p.since >= 2 * this.peakWindowMs ? 0 : p.current;
      p.current = 0;
      p.since = now;
    }
    if (held > p.current) p.current = held;
  }

  /**
   * How many items the next batch should hold before an idle replica takes it: 1 (at once)
   * unless the model declares a preferred_batch_size; then as many of those as can still
   * arrive: the items the deployment held recently, less what it holds now. A lone client
   * (or the first request after a quiet spell) is never made to wait.
   */
  private fillTarget(now: number): number {
    const { preferred_batch_size: preferred, max_delay_ms } = this.pkg.manifest.batching;
    if (!preferred || preferred <= 1 || max_delay_ms <= 0) return 1;
    this.notePeak(now);
    const held = this.queue.length + this.inflightCount();
    const coming = Math.max(this.peak.current, this.peak.previous) - held;
    return Math.min(preferred, this.queue.length + Math.max(0, coming));
  }

  /** Hands queued work to idle replicas: at once, or after at most max_delay_ms where a fuller batch is due. */
  protected pump(): void {
    while (this.queue.length > 0) {
      const replica = this.replicas.find(
        (r) => r.state === 'ready' && r.inflight === null && r.worker?.state === 'idle',
      );
      if (!replica) return;
      const now = Date.now();
      const target = this.fillTarget(now);
      if (target > 1) {
        const plan = this.queue.plan(this.limits);
        const deadline = this.queue.peek()!.req.enqueuedAt + this.pkg.manifest.batching.max_delay_ms;
        if (!plan.full && plan.positions.length < target && now < deadline) {
          if (!this.batchTimer) {
            this.batchTimer = setTimeout(() => {
              this.batchTimer = null;
              this.pump();
            }, deadline - now);
          }
          return;
        }
      }
      this.dispatch(replica, this.queue.takeBatch(this.limits));
    }
  }

  private dispatch(r: Replica, batch: Unit<Pending>[]): void {
    const w = r.worker!;
    r.inflight = batch;
    const now = Date.now();
    for (const u of batch) {
      if (u.index !== 0) continue;
      this.stats.queueWait.push(now - u.req.enqueuedAt);
      this.observer?.queued((now - u.req.enqueuedAt) / 1000);
    }
    this.stats.recordBatch(batch.length);
    if (Number.isFinite(this.limits.maxTokens)) {
      const { padded, padding } = paddedTokens(batch);
      this.stats.recordTokens(padded, padding);
      this.observer?.tokens(padded, padding);
    }
    const first = batch[0]!.req;
    const onChunk = first.stream ? (i: number, d: unknown) => first.onChunk?.(batch[i]?.index ?? i, d) : undefined;
    w.predict({
      task: first.task,
      items: batch.map((u) => u.req.items[u.index]!),
      stream: first.stream,
      onChunk,
      timeoutMs: this.pkg.manifest.resources.timeout_ms,
    }).then(
      (outputs) => {
        this.observer?.batch(batch.length, (Date.now() - now) / 1000, true);
        if (r.inflight === batch) r.inflight = null;
        r.idleSince = Date.now();
        batch.forEach((u, i) => this.deliver(u, outputs[i]!));
        this.batchSettled(r);
        this.pump();
      },
      (err: IsoError) => {
        this.observer?.batch(batch.length, (Date.now() - now) / 1000, false);
        if (r.inflight === batch) r.inflight = null;
        r.idleSince = Date.now();
        this.failBatch(batch, err);
        this.batchSettled(r);
        this.pump();
      },
    );
  }

  private deliver(u: Unit<Pending>, output: ItemOutput): void {
    const req = u.req;
    if (req.done) return;
    req.outputs[u.index] = output;
    if (--req.remaining === 0) {
      req.done = true;
      req.cleanup();
      req.resolve(req.outputs as ItemOutput[]);
      this.checkDrained();
    }
  }

  protected failBatch(batch: Unit<Pending>[], err: IsoError): void {
    for (const req of new Set(batch.map((u) => u.req))) this.finishWithError(req, err);
  }

  /** Once a second: idle scale-down and liveness pings. */
  private tick(): void {
    const { min_replicas, idle_timeout_s } = this.scaling;
    if (idle_timeout_s > 0 && this.queue.length === 0) {
      const idle = this.replicas.filter(
        (r) => r.state === 'ready' && r.inflight === null && Date.now() - r.idleSince > idle_timeout_s * 1000,
      );
      let surplus = this.liveReplicas().length - min_replicas;
      for (const r of idle) {
        if (surplus-- <= 0) break;
        this.logger.info({ replica: r.id }, 'idle timeout: stopping replica');
        r.state = 'stopping';
        void r.worker?.stop();
      }
    }
    this.pingReplicas();
  }

  /** Requests that reach this deployment once it stops serving go to `next` (rolling update, reload). */
  forwardTo(next: ModelDeployment): void {
    this.successor = next;
  }

  /**
   * Runs exactly `n` replicas from now on (0: none until a request wakes one). New replicas are
   * ready when this resolves; surplus ones stop after the batch they are running, so no request fails.
   */
  async scaleTo(n: number): Promise<void> {
    this.scaling.min_replicas = n;
    this.scaling.max_replicas = Math.max(1, n);
    const live = this.liveReplicas();
    if (live.length < n) {
      await Promise.all(Array.from({ length: n - live.length }, () => this.addReplica()));
      return;
    }
    // Idle replicas first, then the ones busy the longest.
    const surplus = live
      .sort((a, b) => Number(a.inflight !== null) - Number(b.inflight !== null))
      .slice(0, live.length - n);
    await Promise.all(surplus.map((r) => this.retire(r)));
    if (this.queue.length > 0) this.ensureCapacity();
  }

  queueDepth(): number {
    return this.queue.length;
  }

  private idle(): boolean {
    return this.queue.length === 0 && this.replicas.every((r) => r.inflight === null);
  }

  protected checkDrained(): void {
    if (this.drainWaiters.length && this.idle()) {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      waiters.forEach((w) => w());
    }
  }

  /** Stops taking new work, lets queued and in-flight requests finish, then stops. */
  async drain(graceMs = 30_000): Promise<void> {
    if (this.state === 'stopped') return;
    this.state = 'draining';
    if (!this.idle()) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, graceMs);
        this.drainWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    await this.stop();
  }

  /** Stops every replica now; queued requests fail with MODEL_NOT_LOADED. */
  async stop(graceMs = 5000): Promise<void> {
    this.state = 'stopped';
    if (this.housekeeping) clearInterval(this.housekeeping);
    if (this.batchTimer) clearTimeout(this.batchTimer);
    this.failQueued(() => new IsoError('MODEL_NOT_LOADED', `model ${this.name} was unloaded`));
    // Over a copy: a worker that reports its exit inside stop() leaves the list at once.
    await Promise.all(
      [...this.replicas].map(async (r) => {
        if (r.retryTimer) clearTimeout(r.retryTimer);
        r.state = 'stopping';
        await r.worker?.stop(graceMs);
        r.lease?.release();
      }),
    );
    this.replicas.length = 0;
  }
}
