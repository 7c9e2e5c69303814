// The gateway's side of one worker's protocol conversation (docs/worker-protocol.md), whatever
// carries it (a child's pipes, a container's attach stream): the ready handshake, one predict at
// a time with its deadline, streamed chunks, pings, cancel, and what a malformed line or the
// worker's exit does to whatever is waiting. Drivers own the transport and the process.
import type { Logger } from 'pino';
import { IsoError, fromWorkerError } from '../errors.js';
import { WorkerLogLimiter, type WorkerLogOptions } from './log-limiter.js';
import { parseWorkerLine, type GatewayMessage, type ItemOutput, type WorkerMessage } from './protocol.js';
import type { ExitInfo, PredictCall, WorkerState } from './types.js';

/** Worker log lines kept for error details and recentLog(). */
export const KEPT_LOG_LINES = 30;
let counter = 0;

export interface SessionTransport {
  /** Writes one message to the worker; a no-op once its input is closed. */
  send(msg: GatewayMessage): void;
  /** Stops the worker now (hung, misbehaving); its exit comes back through exited(). */
  kill(reason: string): void;
}

interface InFlight {
  id: string;
  resolve: (o: ItemOutput[]) => void;
  reject: (e: IsoError) => void;
  onChunk?: (index: number, data: unknown) => void;
  timer: NodeJS.Timeout;
}

interface Waiter {
  resolve: () => void;
  reject: (e: IsoError) => void;
}

export class WorkerSession {
  state: WorkerState = 'starting';
  /** The worker's last stderr lines (and the gateway's notes about it), for error details. */
  readonly log: string[] = [];
  private current: InFlight | null = null;
  /** Batches sent so far: a ping that saw one start was waiting on a busy worker. */
  private batchesSent = 0;
  private readonly pings = new Map<string, Waiter>();
  private readonly idleCbs: (() => void)[] = [];
  private readyWaiter: Waiter | null = null;

  constructor(
    private readonly transport: SessionTransport,
    private readonly logger: Logger,
  ) {}

  /** Resolves on the worker's ready line; rejects on `fatal` or an exit before it. */
  waitReady(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.readyWaiter = { resolve, reject };
    });
  }

  pushLog(line: string): void {
    this.log.push(line);
    if (this.log.length > KEPT_LOG_LINES) this.log.shift();
  }

  /** One line of the worker's stdout: a protocol message, or a violation that replaces the worker. */
  onLine(line: string): void {
    const msg = parseWorkerLine(line);
    if (msg) this.handle(msg);
    else this.protocolViolation(line);
  }

  private protocolViolation(line: string): void {
    const shown = line.length > 200 ? `${line.slice(0, 200)}…` : line;
    this.logger.error({ line: shown }, 'malformed worker output: replacing worker');
    this.failCurrent(
      new IsoError('PREDICTION_FAILED', 'model worker wrote malformed protocol output; the worker is being replaced', {
        output: shown,
      }),
    );
    this.transport.kill('protocol violation (malformed output)');
  }

  private handle(msg: WorkerMessage): void {
    switch (msg.op) {
      case 'ready':
        if (this.state === 'starting') {
          this.state = 'idle';
          this.readyWaiter?.resolve();
          this.readyWaiter = null;
        }
        return;
      case 'fatal':
        this.pushLog(`fatal: ${msg.message}`);
        this.readyWaiter?.reject(new IsoError('MODEL_NOT_LOADED', msg.message, { worker_code: msg.code }));
        this.readyWaiter = null;
        return;
      case 'pong':
        this.pings.get(msg.id)?.resolve();
        this.pings.delete(msg.id);
        return;
      case 'chunk':
        if (this.current?.id === msg.id) this.current.onChunk?.(msg.index, msg.data);
        return;
      case 'result':
      case 'end':
        this.settle(msg.id, (c) => c.resolve(msg.outputs));
        return;
      case 'error':
        this.settle(msg.id, (c) => c.reject(fromWorkerError(msg.code, msg.message)));
        return;
    }
  }

  private settle(id: string, fn: (c: InFlight) => void): void {
    const c = this.current;
    if (!c || c.id !== id) {
      this.protocolViolation(`answer for unknown batch ${id}`);
      return;
    }
    clearTimeout(c.timer);
    this.current = null;
    if (this.state === 'busy') this.state = 'idle';
    fn(c);
    if (this.state === 'idle') for (const cb of this.idleCbs) cb();
  }

  private failCurrent(err: IsoError): void {
    const c = this.current;
    if (!c) return;
    clearTimeout(c.timer);
    this.current = null;
    c.reject(err);
  }

  /** One batch; a worker over `timeoutMs` is killed (a hung model) and the batch fails with 504. */
  predict(workerId: string, call: PredictCall): Promise<ItemOutput[]> {
    if (this.state !== 'idle')
      return Promise.reject(new IsoError('INTERNAL_ERROR', `worker ${workerId} is ${this.state}, not idle`));
    const id = `b${++counter}`;
    this.state = 'busy';
    this.batchesSent++;
    return new Promise<ItemOutput[]>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.failCurrent(
          new IsoError(
            'PREDICTION_TIMEOUT',
            `model did not answer within ${call.timeoutMs} ms; the worker was stopped and will be restarted`,
            { timeout_ms: call.timeoutMs },
          ),
        );
        this.transport.kill(`timed out after ${call.timeoutMs} ms`);
      }, call.timeoutMs);
      this.current = { id, resolve, reject, onChunk: call.onChunk, timer };
      this.transport.send({ op: 'predict', id, task: call.task, items: call.items, stream: call.stream ?? false });
    });
  }

  cancel(): void {
    if (this.current) this.transport.send({ op: 'cancel', id: this.current.id });
  }

  /**
   * Liveness of an idle worker. A worker computing a batch is judged by that batch's deadline
   * (predict's timer), not by a ping: a model busy in a long inference (an ONNX run on the
   * worker's only thread, a Python extension holding the GIL) may read nothing until it is
   * done. So a ping resolves at once while a batch is in flight, and one that times out after
   * a batch was sent to the worker does not count as missed.
   */
  ping(timeoutMs: number): Promise<void> {
    if (this.current) return Promise.resolve();
    const id = `p${++counter}`;
    const sentBefore = this.batchesSent;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pings.delete(id);
        if (this.current || this.batchesSent !== sentBefore) resolve();
        else reject(new IsoError('PREDICTION_FAILED', `worker did not answer a ping within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pings.set(id, {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.transport.send({ op: 'ping', id });
    });
  }

  onIdle(cb: () => void): void {
    this.idleCbs.push(cb);
  }

  /**
   * The worker is gone: the batch in flight fails (500, restart follows), a start still waiting
   * fails with `startupError` or one made from the log, and pings fail. Returns whether the
   * exit was asked for (a stop, not a crash).
   */
  exited(reason: string, details: Record<string, unknown>, startupError?: IsoError): boolean {
    const expected = this.state === 'stopping' && reason.startsWith('stopped');
    this.state = 'exited';
    this.failCurrent(new IsoError('PREDICTION_FAILED', `model worker ${reason}; it will be restarted`, details));
    this.readyWaiter?.reject(
      startupError ??
        new IsoError(
          'MODEL_NOT_LOADED',
          `model worker ${reason} during startup: ${this.log.slice(-3).join(' | ') || 'no output'}`,
          details,
        ),
    );
    this.readyWaiter = null;
    for (const p of this.pings.values()) p.reject(new IsoError('PREDICTION_FAILED', `model worker ${reason}`));
    this.pings.clear();
    return expected;
  }
}

/**
 * What every driver whose worker speaks the protocol shares: the session, and the WorkerHandle
 * members that only delegate to it or to the exit listeners. A driver supplies the transport
 * (send, kill), whether its worker is running, and calls exited()'s listeners through emitExit().
 */
export abstract class SessionWorker {
  protected readonly session: WorkerSession;
  private readonly exitCbs: ((i: ExitInfo) => void)[] = [];
  private logReader: WorkerLogLimiter | undefined;

  constructor(
    readonly id: string,
    protected readonly logger: Logger,
  ) {
    this.session = new WorkerSession({ send: (msg) => this.send(msg), kill: (reason) => this.kill(reason) }, logger);
  }

  get state(): WorkerState {
    return this.session.state;
  }

  /** Whether the worker's process or container is there to talk to. */
  protected abstract isRunning(): boolean;
  protected abstract send(msg: GatewayMessage): void;
  abstract kill(reason: string): void;

  predict(call: PredictCall): Promise<ItemOutput[]> {
    if (!this.isRunning()) return Promise.reject(new IsoError('INTERNAL_ERROR', `worker ${this.id} is not running`));
    return this.session.predict(this.id, call);
  }

  cancel(): void {
    this.session.cancel();
  }

  ping(timeoutMs: number): Promise<void> {
    return this.session.ping(timeoutMs);
  }

  protected emitExit(info: ExitInfo): void {
    for (const cb of this.exitCbs) cb(info);
  }

  onExit(cb: (info: ExitInfo) => void): void {
    this.exitCbs.push(cb);
  }

  onIdle(cb: () => void): void {
    this.session.onIdle(cb);
  }

  recentLog(): string[] {
    return [...this.session.log];
  }

  /**
   * A reader for the worker's stderr (or log stream): every line, cut to the limit, joins the
   * kept tail; lines within the replica's rate go to the gateway's log, the others are counted
   * and reported once per interval (log-limiter.ts).
   */
  protected workerLogReader(opts: WorkerLogOptions = {}): WorkerLogLimiter {
    const tee = opts.tee?.(this.id);
    const limiter: WorkerLogLimiter = (this.logReader = new WorkerLogLimiter(
      {
        line: (line, logged) => {
          this.session.pushLog(line);
          tee?.(line);
          if (logged) this.logger.info({ worker_log: line }, 'worker log');
        },
        report: (dropped, seconds) =>
          this.logger.warn(
            { worker_log_dropped: dropped, seconds },
            `worker log: dropped ${dropped} lines in the last ${seconds}s (over ${limiter.limits.lines_per_second} lines/s, burst ${limiter.limits.burst})`,
          ),
      },
      opts,
    ));
    return limiter;
  }

  /** What the stderr reader let through, dropped and cut so far, and holds now (characters). */
  logStats(): { logged: number; dropped: number; truncated: number; pending_chars: number } | undefined {
    const r = this.logReader;
    return r && { logged: r.logged, dropped: r.dropped, truncated: r.truncated, pending_chars: r.pendingChars };
  }
}
