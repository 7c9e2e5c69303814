// In-memory workers implementing the driver interface (worker/types.ts WorkerHandle), for the
// scheduler's unit tests (deployment-unit, registry-unit): each test decides when a worker starts,
// answers, crashes or misses a ping, with no process behind it.
import { IsoError } from '../src/errors.js';
import type { ModelPackage } from '../src/manifest/load.js';
import type { ItemOutput } from '../src/worker/protocol.js';
import type { ExitInfo, PredictCall, WorkerHandle, WorkerState, WorkerStats } from '../src/worker/types.js';

/**
 * How the next worker start goes: at once, failing (the worker exits), rejecting with a plain
 * Error while the worker stays up (a driver's start timeout), or when the gate opens.
 */
export type StartPlan = 'ok' | 'fail' | 'reject' | Promise<void>;

interface PendingCall {
  call: PredictCall;
  resolve: (o: ItemOutput[]) => void;
  reject: (e: Error) => void;
}

export class FakeWorker implements WorkerHandle {
  private _state: WorkerState = 'starting';
  readonly calls: PendingCall[] = [];
  cancels = 0;
  pings = 0;
  stops = 0;
  readonly killed: string[] = [];
  pingFails = false;
  /** What stats() reports instead of the default figures. */
  statsOf: WorkerStats | null = null;
  private readonly exitCbs: ((i: ExitInfo) => void)[] = [];
  private readonly idleCbs: (() => void)[] = [];

  constructor(
    readonly id: string,
    readonly pkg: ModelPackage,
    readonly pid: number,
    private readonly plan: StartPlan,
    private readonly auto: boolean,
    /** Report a stop's exit inside stop(), before it yields (a driver may). */
    private readonly syncStop = false,
  ) {}

  get state(): WorkerState {
    return this._state;
  }
  async start(): Promise<void> {
    if (this.plan instanceof Promise) await this.plan;
    if (this.plan === 'fail') {
      this.exit({ code: 1, signal: null, reason: 'crashed at start', expected: false });
      throw new IsoError('MODEL_NOT_LOADED', 'boom');
    }
    if (this.plan === 'reject') throw new Error('no ready line within 60 s');
    if (this._state === 'starting') this._state = 'idle';
  }
  predict(call: PredictCall): Promise<ItemOutput[]> {
    this._state = 'busy';
    return new Promise((resolve, reject) => {
      this.calls.push({ call, resolve, reject });
      if (this.auto && !call.task.startsWith('hold')) queueMicrotask(() => this.answer());
    });
  }
  /** Answers the oldest unanswered call: each item's sequence back, or `outputs`. */
  answer(outputs?: ItemOutput[]): void {
    const c = this.calls.find((x) => !(x as { settled?: boolean }).settled);
    if (!c) throw new Error('no call to answer');
    (c as { settled?: boolean }).settled = true;
    this._state = 'idle';
    c.resolve(outputs ?? c.call.items.map((it) => ({ echo: it.sequence, by: this.id })));
    queueMicrotask(() => this.idleCbs.forEach((cb) => cb()));
  }
  failCall(err: IsoError): void {
    const c = this.calls.find((x) => !(x as { settled?: boolean }).settled)!;
    (c as { settled?: boolean }).settled = true;
    this._state = 'idle';
    c.reject(err);
    queueMicrotask(() => this.idleCbs.forEach((cb) => cb()));
  }
  get open(): PendingCall[] {
    return this.calls.filter((x) => !(x as { settled?: boolean }).settled);
  }
  cancel(): void {
    this.cancels++;
  }
  ping(): Promise<void> {
    this.pings++;
    return this.pingFails ? Promise.reject(new IsoError('PREDICTION_TIMEOUT', 'no pong')) : Promise.resolve();
  }
  // As with real drivers, the exit of a kill or a stop is reported a little later, not during the call.
  kill(reason: string): void {
    this.killed.push(reason);
    queueMicrotask(() => this.exit({ code: null, signal: 'SIGKILL', reason, expected: false }));
  }
  crash(reason = 'crashed (exit code 1)'): void {
    this.exit({ code: 1, signal: null, reason, expected: false });
  }
  async stop(): Promise<void> {
    if (this._state === 'exited') return;
    this.stops++;
    if (!this.syncStop) await Promise.resolve();
    this.exit({ code: 0, signal: null, reason: 'stopped', expected: true });
  }
  private exit(info: ExitInfo): void {
    if (this._state === 'exited') return;
    this._state = 'exited';
    for (const c of this.open) {
      (c as { settled?: boolean }).settled = true;
      c.reject(new IsoError('PREDICTION_FAILED', `worker ${info.reason}`));
    }
    this.exitCbs.forEach((cb) => cb(info));
  }
  stats(): WorkerStats {
    if (this.statsOf) return this.statsOf;
    return { pid: this.pid, rssBytes: 1000 + this.pid, cpuPercent: 12.345, openFds: 7 };
  }
  onExit(cb: (info: ExitInfo) => void): void {
    this.exitCbs.push(cb);
  }
  onIdle(cb: () => void): void {
    this.idleCbs.push(cb);
  }
  recentLog(): string[] {
    return [];
  }
}

/** The worker factory: workers in creation order, and how the next starts go. */
export class Fleet {
  readonly workers: FakeWorker[] = [];
  readonly plans: StartPlan[] = [];
  auto = false;
  syncStop = false;
  readonly create = (pkg: ModelPackage, replicaId: string): WorkerHandle => {
    const w = new FakeWorker(
      replicaId,
      pkg,
      100 + this.workers.length,
      this.plans.shift() ?? 'ok',
      this.auto,
      this.syncStop,
    );
    this.workers.push(w);
    return w;
  };
  get last(): FakeWorker {
    return this.workers[this.workers.length - 1]!;
  }
  live(): FakeWorker[] {
    return this.workers.filter((w) => w.state !== 'exited');
  }
}
