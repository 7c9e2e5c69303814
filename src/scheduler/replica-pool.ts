// The replicas of one loaded model version and their lifecycle: each started (with its GPUs and
// warm-up requests), restarted with backoff when its worker exits, given up on after repeated
// failures, pinged for liveness, replaced on request, retired when scaling down. The queue and
// batching that feed the replicas are ./deployment.ts, whose ModelDeployment builds on this.
import type { Logger } from 'pino';
import { IsoError } from '../errors.js';
import type { ModelPackage } from '../manifest/load.js';
import type { Manifest } from '../manifest/schema.js';
import type { WorkerFactory } from '../drivers/factory.js';
import type { ItemOutput } from '../worker/protocol.js';
import type { ExitInfo, WorkerHandle } from '../worker/types.js';
import { ModelStats } from './model-stats.js';
import type { DeploymentObserver } from './observer.js';
import type { QueuedRequest, Unit } from './request-queue.js';
import { DeviceAllocator, placedPackage, type DeviceLease } from './placement.js';
import { gpuUtilization } from '../util/gpu.js';

export type DeploymentState = 'loading' | 'ready' | 'failed' | 'draining' | 'stopped';
export type ReplicaState = 'starting' | 'ready' | 'restarting' | 'stopping' | 'failed';

/** A request as the deployment holds it: queued, then in a replica's batch until every item is answered. */
export interface Pending extends QueuedRequest {
  outputs: (ItemOutput | undefined)[];
  remaining: number;
  resolve: (o: ItemOutput[]) => void;
  reject: (e: IsoError) => void;
  onChunk?: (index: number, data: unknown) => void;
  cleanup: () => void;
}

const MAX_CONSECUTIVE_START_FAILURES = 5;
const BACKOFF_BASE_MS = 200;
const BACKOFF_MAX_MS = 10_000;
const STABLE_AFTER_MS = 30_000;
const PING_INTERVAL_MS = 10_000;
const PING_TIMEOUT_MS = 5_000;

/** GPUs are the process's: every deployment of it draws from one allocator unless given another. */
const sharedDevices = new DeviceAllocator();

let replicaCounter = 0;

export class Replica {
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

export abstract class ReplicaPool {
  state: DeploymentState = 'loading';
  lastError: string | null = null;
  readonly stats = new ModelStats();
  readonly loadedAt = Date.now();
  protected readonly replicas: Replica[] = [];
  private lastPing = Date.now();
  protected readonly logger: Logger;
  /** The manifest's scaling with DeploymentOptions.scaling applied: read this, not pkg.manifest.scaling. */
  readonly scaling: Manifest['scaling'];
  private readonly devices: DeviceAllocator;

  constructor(
    readonly pkg: ModelPackage,
    private readonly createWorker: WorkerFactory,
    logger: Logger,
    protected readonly observer?: DeploymentObserver,
    options: DeploymentOptions = {},
  ) {
    this.scaling = { ...pkg.manifest.scaling, ...options.scaling };
    this.devices = options.devices ?? sharedDevices;
    this.logger = logger.child({ model: pkg.manifest.name, version: pkg.manifest.version });
  }

  get name(): string {
    return this.pkg.manifest.name;
  }
  get version(): string {
    return this.pkg.manifest.version;
  }

  /** Hands queued work to idle replicas (a replica became ready or idle). */
  protected abstract pump(): void;
  /** Fails every request of a batch its replica lost. */
  protected abstract failBatch(batch: Unit<Pending>[], err: IsoError): void;
  /** Fails every queued request, each with an error of its own. */
  protected abstract failQueued(err: () => IsoError): void;
  /** Wakes drain() once nothing is queued or in flight. */
  protected abstract checkDrained(): void;

  /** Adds a replica and waits for it to be ready. */
  protected async addReplica(): Promise<void> {
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
      if (r.lease.devices.length < gpus)
        this.logger.warn(
          { replica: r.id, gpus, devices: r.lease.devices },
          r.lease.devices.length
            ? 'fewer GPUs than resources.gpus asks for'
            : 'no GPU found (nvidia-smi): the replica runs without one',
        );
      // Stopped or retired while it waited for its GPUs: removeReplica() found no lease to release.
      if (this.state === 'stopped' || r.state !== 'starting') {
        r.lease.release();
        r.lease = null;
        return;
      }
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
        const [out] = await w.predict({
          task,
          items: [{ sequence: req.sequence.toUpperCase(), options: req.options }],
          timeoutMs: m.resources.timeout_ms,
        });
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
    if (batch)
      this.failBatch(
        batch,
        new IsoError('PREDICTION_FAILED', `model worker ${info.reason}; it will be restarted`, { reason: info.reason }),
      );
    // A start that failed (the worker crashed, or launch() stopped it after a failed start or
    // warm-up): launch() reports it, and its caller removes the replica or schedules a restart.
    if (r.state === 'starting') return;
    if (info.expected || r.state === 'stopping' || this.state === 'stopped' || this.state === 'draining') {
      this.removeReplica(r);
      return;
    }
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
        this.failQueued(() => new IsoError('MODEL_NOT_LOADED', `model ${this.name} failed: ${this.lastError}`));
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

  protected liveReplicas(): Replica[] {
    return this.replicas.filter((r) => r.state === 'ready' || r.state === 'starting' || r.state === 'restarting');
  }

  /** Liveness: every PING_INTERVAL_MS each ready worker must answer a ping, or it is replaced. */
  protected pingReplicas(): void {
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

  protected batchSettled(r: Replica): void {
    const cb = r.onBatchSettled;
    r.onBatchSettled = null;
    cb?.();
  }

  protected retire(r: Replica): Promise<void> {
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

  inflightCount(): number {
    return this.replicas.reduce((n, r) => n + (r.inflight?.length ?? 0), 0);
  }
}
