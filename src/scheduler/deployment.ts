// One loaded model version: its replicas, its bounded queue, adaptive batching, restarts
// with backoff, idle scale-down (to zero if allowed) and wake-up on the next request.
//
// Batching is continuous: an idle replica takes what is queued at once (up to max_batch_size,
// and max_batch_tokens by length bucket: request-queue.ts), and while every replica is busy
// requests accumulate for the next one to free up. A replica waits for a fuller batch only when
// the model declares a preferred_batch_size and more requests are on their way (recent
// concurrency above what the deployment holds now), and never longer than max_delay_ms.
import type { Logger } from 'pino';
import { IsoError } from '../errors.js';
import type { ModelPackage } from '../manifest/load.js';
import type { Manifest } from '../manifest/schema.js';
import type { WorkerFactory } from '../drivers/factory.js';
import type { ItemOutput, WorkItem } from '../worker/protocol.js';
import type { ExitInfo, WorkerHandle } from '../worker/types.js';
import { ModelStats } from '../telemetry/model-stats.js';
import type { DeploymentObserver } from '../telemetry/prometheus.js';
import { RequestQueue, paddedTokens, type BatchLimits, type QueuedRequest, type Unit } from './request-queue.js';
import type { CancelSignal } from './cancel.js';
import { DeviceAllocator, placedPackage, type DeviceLease } from './placement.js';
import { gpuUtilization } from '../telemetry/gpu.js';

export type DeploymentState = 'loading' | 'ready' | 'failed' | 'draining' | 'stopped';
export type ReplicaState = 'starting' | 'ready' | 'restarting' | 'stopping' | 'failed';

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

interface Pending extends QueuedRequest {
  outputs: (ItemOutput | undefined)[];
  remaining: number;
  resolve: (o: ItemOutput[]) => void;
  reject: (e: IsoError) => void;
  onChunk?: (index: number, data: unknown) => void;
  cleanup: () => void;
}

const MAX_CONSECUTIVE_START_FAILURES = 5;
/** Default queue time a request may spend on top of the model's compute timeout. */
const QUEUE_ALLOWANCE_MS = 30_000;
const BACKOFF_BASE_MS = 200;
const BACKOFF_MAX_MS = 10_000;
const STABLE_AFTER_MS = 30_000;
const PING_INTERVAL_MS = 10_000;
const PING_TIMEOUT_MS = 5_000;
/**
 * How long the concurrency a deployment has seen counts as "recent" for the wait decision: one to
 * two windows of this, or of twice max_delay_ms where that is longer.
 */
const CONCURRENCY_WINDOW_MS = 250;

/** GPUs are the process's: every deployment of it draws from one allocator unless given another. */
const sharedDevices = new DeviceAllocator();

let replicaCounter = 0;

class Replica {
  readonly id = `r${++replicaCounter}`;
  worker: WorkerHandle | null = null;
  state: ReplicaState = 'starting';
  inflight: Unit<Pending>[] | null = null;
  idleSince = Date.now();
  startedAt = 0;
  failures = 0;
  restarts = 0;
  lastExit: ExitInfo | null = null;
  lastError: string | null = null;
  retryTimer: NodeJS.Timeout | null = null;
  /** Set while a retiring replica finishes its batch: called once it has. */
  onBatchSettled: (() => void) | null = null;
  /** Its GPUs (resources.gpus), kept across restarts, released when the replica goes. */
  lease: DeviceLease | null = null;
}

export interface ReplicaInfo {
  id: string;
  state: ReplicaState;
  pid?: number;
  busy: boolean;
  restarts: number;
  rss_bytes?: number;
  cpu_percent?: number;
  open_fds?: number;
  last_exit?: string;
  last_error?: string;
  /** GPUs the replica was given (CUDA_VISIBLE_DEVICES), for models with resources.gpus. */
  devices?: string[];
}

export interface DeploymentOptions {
  /**
   * Overrides the manifest's scaling for this deployment only; the package itself is untouched.
   * Used by `isomodel batch --workers N` offline, which runs a model with exactly N replicas.
   */
  scaling?: Partial<Manifest['scaling']>;
  /** Where replicas get their GPUs (default: one allocator per process). */
  devices?: DeviceAllocator;
}

export class ModelDeployment {
  state: DeploymentState = 'loading';
  lastError: string | null = null;
  readonly stats = new ModelStats();
  readonly loadedAt = Date.now();
  private readonly replicas: Replica[] = [];
  private readonly queue: RequestQueue<Pending>;
  private batchTimer: NodeJS.Timeout | null = null;
  private housekeeping: NodeJS.Timeout | null = null;
  private lastPing = Date.now();
  private drainWaiters: (() => void)[] = [];
  /** The deployment that replaced this one: requests arriving while this one drains go there. */
  private successor: ModelDeployment | null = null;
  private readonly logger: Logger;
  /** The manifest's scaling with DeploymentOptions.scaling applied: read this, not pkg.manifest.scaling. */
  readonly scaling: Manifest['scaling'];
  private readonly limits: BatchLimits;
  private readonly devices: DeviceAllocator;
  /** Most items held at once (queued + in flight) in the current and the previous window. */
  private peak = { current: 0, previous: 0, since: Date.now() };
  private readonly peakWindowMs: number;

  constructor(
    readonly pkg: ModelPackage,
    private readonly createWorker: WorkerFactory,
    logger: Logger,
    private readonly observer?: DeploymentObserver,
    options: DeploymentOptions = {},
  ) {
    this.scaling = { ...pkg.manifest.scaling, ...options.scaling };
    const b = pkg.manifest.batching;
    this.queue = new RequestQueue<Pending>(this.scaling.max_queue, b.priority_aging_ms);
    this.limits = { maxItems: Math.max(1, b.max_batch_size), maxTokens: b.max_batch_tokens ?? Infinity };
    this.devices = options.devices ?? sharedDevices;
    this.peakWindowMs = Math.max(CONCURRENCY_WINDOW_MS, 2 * b.max_delay_ms);
    this.logger = logger.child({ model: pkg.manifest.name, version: pkg.manifest.version });
  }

  get name(): string {
    return this.pkg.manifest.name;
  }
  get version(): string {
    return this.pkg.manifest.version;
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
    this.state = 'ready';
    this.housekeeping = setInterval(() => this.tick(), 1000);
    this.housekeeping.unref();
  }

  /** Adds a replica and waits for it to be ready. */
  private async addReplica(): Promise<void> {
    const r = new Replica();
    this.replicas.push(r);
    try {
      await this.launch(r);
    } catch (e) {
      this.removeReplica(r);
      throw e;
    }
  }

  private async launch(r: Replica): Promise<void> {
    r.state = 'starting';
    const gpus = this.pkg.manifest.resources.gpus;
    if (gpus > 0 && !r.lease) {
      r.lease = await this.devices.acquire(gpus);
      if (r.lease.devices.length < gpus) this.logger.warn({ replica: r.id, gpus, devices: r.lease.devices }, r.lease.devices.length ? 'fewer GPUs than resources.gpus asks for' : 'no GPU found (nvidia-smi): the replica runs without one');
      if (this.state === 'stopped' || r.state !== 'starting') return;
    }
    const w = this.createWorker(placedPackage(this.pkg, r.lease?.devices ?? []), r.id);
    r.worker = w;
    w.onExit((info) => this.onWorkerExit(r, w, info));
    w.onIdle(() => this.pump());
    try {
      await w.start();
    } catch (e) {
      const err = e instanceof IsoError ? e : new IsoError('MODEL_NOT_LOADED', (e as Error).message);
      r.lastError = err.message;
      r.failures++;
      if (w.state !== 'exited') await w.stop(500);
      throw err;
    }
    if (r.state !== 'starting' || this.state === 'stopped') {
      await w.stop(500);
      return;
    }
    await this.warmUp(r, w);
    r.state = 'ready';
    r.startedAt = Date.now();
    r.idleSince = Date.now();
    this.pump();
  }

  /** Runs the manifest's warm-up requests on a fresh worker; a failure fails the start. */
  private async warmUp(r: Replica, w: WorkerHandle): Promise<void> {
    const m = this.pkg.manifest;
    for (const req of m.warmup) {
      const task = req.task ?? m.tasks[0]!.name;
      try {
        const [out] = await w.predict({ task, items: [{ sequence: req.sequence.toUpperCase(), options: req.options }], timeoutMs: m.resources.timeout_ms });
        if (out && 'error' in out) throw new Error(JSON.stringify(out.error));
      } catch (e) {
        const err = new IsoError('MODEL_NOT_LOADED', `warm-up request failed: ${(e as Error).message}`);
        r.lastError = err.message;
        r.failures++;
        if (w.state !== 'exited') await w.stop(500);
        throw err;
      }
    }
  }

  private onWorkerExit(r: Replica, w: WorkerHandle, info: ExitInfo): void {
    if (r.worker !== w) return;
    r.lastExit = info;
    const batch = r.inflight;
    r.inflight = null;
    if (batch) this.failBatch(batch, new IsoError('PREDICTION_FAILED', `model worker ${info.reason}; it will be restarted`, { reason: info.reason }));
    if (info.expected || r.state === 'stopping' || this.state === 'stopped' || this.state === 'draining') {
      this.removeReplica(r);
      return;
    }
    if (r.state === 'starting') return; // launch() reports the failure
    this.stats.workerRestarts++;
    this.observer?.restart(info.reason);
    this.logger.warn({ replica: r.id, reason: info.reason }, 'replica exited; restarting');
    this.scheduleRestart(r);
  }

  private scheduleRestart(r: Replica): void {
    if (Date.now() - r.startedAt > STABLE_AFTER_MS) r.failures = 0;
    if (r.failures >= MAX_CONSECUTIVE_START_FAILURES) {
      r.state = 'failed';
      this.lastError = r.lastError ?? r.lastExit?.reason ?? 'replica failed';
      this.logger.error({ replica: r.id, error: this.lastError }, 'replica keeps failing; giving up');
      if (this.replicas.every((x) => x.state === 'failed')) {
        this.state = 'failed';
        for (const req of this.queue.drainAll()) this.finishWithError(req, new IsoError('MODEL_NOT_LOADED', `model ${this.name} failed: ${this.lastError}`));
      }
      return;
    }
    r.state = 'restarting';
    r.restarts++;
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** r.failures);
    r.retryTimer = setTimeout(() => {
      r.retryTimer = null;
      if (this.state === 'stopped' || this.state === 'draining') return;
      this.launch(r).catch(() => this.scheduleRestart(r));
    }, delay);
    r.retryTimer.unref();
  }

  private removeReplica(r: Replica): void {
    const i = this.replicas.indexOf(r);
    if (i !== -1) this.replicas.splice(i, 1);
    if (r.retryTimer) clearTimeout(r.retryTimer);
    r.lease?.release();
    this.checkDrained();
  }

  /** Queue a request; resolves with one output per item. */
  submit(opts: SubmitOptions): Promise<ItemOutput[]> {
    // A caller that picked this deployment just before a rolling update or reload switched away
    // from it is served by the replacement instead of failing.
    if (this.successor && this.state !== 'ready') return this.successor.submit(opts);
    if (this.state === 'failed') return Promise.reject(new IsoError('MODEL_NOT_LOADED', `model ${this.name} failed to load: ${this.lastError}`));
    if (this.state !== 'ready') return Promise.reject(new IsoError('MODEL_NOT_LOADED', `model ${this.name} is ${this.state}`));
    if (opts.items.length === 0) return Promise.resolve([]);
    if (!this.queue.hasRoomFor(opts.items.length)) {
      return Promise.reject(new IsoError('QUEUE_FULL', `model ${this.name} has ${this.queue.length} sequences queued (limit ${this.queue.capacity}); retry later`, { queue_depth: this.queue.length }, 1));
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
      const timer = setTimeout(() => this.abandon(req, new IsoError('PREDICTION_TIMEOUT', `no answer within ${timeoutMs} ms`, { timeout_ms: timeoutMs })), timeoutMs);
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

  private liveReplicas(): Replica[] {
    return this.replicas.filter((r) => r.state === 'ready' || r.state === 'starting' || r.state === 'restarting');
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
        for (const req of this.queue.drainAll()) this.finishWithError(req, new IsoError('MODEL_NOT_LOADED', `model ${this.name} could not start: ${e.message}`));
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
  private pump(): void {
    while (this.queue.length > 0) {
      const replica = this.replicas.find((r) => r.state === 'ready' && r.inflight === null && r.worker?.state === 'idle');
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
    w.predict({ task: first.task, items: batch.map((u) => u.req.items[u.index]!), stream: first.stream, onChunk, timeoutMs: this.pkg.manifest.resources.timeout_ms }).then(
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

  private failBatch(batch: Unit<Pending>[], err: IsoError): void {
    for (const req of new Set(batch.map((u) => u.req))) this.finishWithError(req, err);
  }

  /** Once a second: idle scale-down and liveness pings. */
  private tick(): void {
    const { min_replicas, idle_timeout_s } = this.scaling;
    if (idle_timeout_s > 0 && this.queue.length === 0) {
      const idle = this.replicas.filter((r) => r.state === 'ready' && r.inflight === null && Date.now() - r.idleSince > idle_timeout_s * 1000);
      let surplus = this.liveReplicas().length - min_replicas;
      for (const r of idle) {
        if (surplus-- <= 0) break;
        this.logger.info({ replica: r.id }, 'idle timeout: stopping replica');
        r.state = 'stopping';
        void r.worker?.stop();
      }
    }
    if (Date.now() - this.lastPing >= PING_INTERVAL_MS) {
      this.lastPing = Date.now();
      for (const r of this.replicas) {
        if (r.state !== 'ready' || !r.worker) continue;
        const w = r.worker;
        w.ping(PING_TIMEOUT_MS).catch(() => {
          if (r.worker === w && w.state !== 'exited') {
            this.logger.warn({ replica: r.id }, 'worker missed its health ping; replacing it');
            w.kill('missed health ping (hung)');
          }
        });
      }
    }
  }

  /** True when every replica that should run is running: what readiness probes report. */
  healthy(): boolean {
    if (this.state !== 'ready') return false;
    return this.replicas.every((r) => r.state === 'ready' || r.state === 'starting' || r.state === 'stopping');
  }

  replicaInfo(): ReplicaInfo[] {
    return this.replicas.map((r) => {
      const s = r.worker?.stats() ?? {};
      return {
        id: r.id,
        state: r.state,
        pid: s.pid,
        busy: r.inflight !== null,
        restarts: r.restarts,
        rss_bytes: s.rssBytes,
        cpu_percent: s.cpuPercent === undefined ? undefined : Math.round(s.cpuPercent * 10) / 10,
        open_fds: s.openFds,
        last_exit: r.lastExit?.reason,
        last_error: r.lastError ?? undefined,
        devices: r.lease ? [...r.lease.devices] : undefined,
      };
    });
  }

  /** Mean utilization (percent) of the GPUs this deployment's replicas were given (nvidia-smi); null without any. */
  gpuUtilization(): number | null {
    const devices = this.replicas.flatMap((r) => r.lease?.devices ?? []);
    return devices.length ? gpuUtilization(devices) : null;
  }

  /**
   * Replaces one ready replica (the monitor's restart policy): its worker is killed with
   * `reason` and the usual restart path brings up a fresh one. False when there is none to replace.
   */
  restartReplica(id: string, reason: string): boolean {
    const r = this.replicas.find((x) => x.id === id);
    if (!r || r.state !== 'ready' || !r.worker || r.worker.state === 'exited') return false;
    this.logger.warn({ replica: id, reason }, 'replacing replica');
    r.worker.kill(reason);
    return true;
  }

  private batchSettled(r: Replica): void {
    const cb = r.onBatchSettled;
    r.onBatchSettled = null;
    cb?.();
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
    const surplus = live.sort((a, b) => Number(a.inflight !== null) - Number(b.inflight !== null)).slice(0, live.length - n);
    await Promise.all(surplus.map((r) => this.retire(r)));
    if (this.queue.length > 0) this.ensureCapacity();
  }

  private retire(r: Replica): Promise<void> {
    r.state = 'stopping';
    if (r.retryTimer) clearTimeout(r.retryTimer);
    const w = r.worker;
    if (!w || w.state === 'exited') {
      this.removeReplica(r);
      return Promise.resolve();
    }
    if (r.inflight === null) return w.stop();
    return new Promise<void>((resolve) => {
      r.onBatchSettled = () => void w.stop().then(resolve, resolve);
    });
  }

  queueDepth(): number {
    return this.queue.length;
  }

  inflightCount(): number {
    return this.replicas.reduce((n, r) => n + (r.inflight?.length ?? 0), 0);
  }

  private idle(): boolean {
    return this.queue.length === 0 && this.replicas.every((r) => r.inflight === null);
  }

  private checkDrained(): void {
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
    for (const req of this.queue.drainAll()) this.finishWithError(req, new IsoError('MODEL_NOT_LOADED', `model ${this.name} was unloaded`));
    await Promise.all(
      this.replicas.map(async (r) => {
        if (r.retryTimer) clearTimeout(r.retryTimer);
        r.state = 'stopping';
        await r.worker?.stop(graceMs);
        r.lease?.release();
      }),
    );
    this.replicas.length = 0;
  }
}
