// What the scheduler needs from a running worker, whatever isolates it.
import type { ItemOutput, WorkItem } from './protocol.js';

export interface PredictCall {
  task: string;
  items: WorkItem[];
  stream?: boolean;
  onChunk?: (index: number, data: unknown) => void;
  /** The worker is killed if it has not answered by then (a hung model). */
  timeoutMs: number;
}

export interface ExitInfo {
  code: number | null;
  signal: string | null;
  /** Human-readable cause: "crashed", "memory limit exceeded", "timed out", "stopped", … */
  reason: string;
  /** The gateway asked it to stop. */
  expected: boolean;
}

export interface WorkerStats {
  pid?: number;
  rssBytes?: number;
  cpuPercent?: number;
  openFds?: number;
}

export type WorkerState = 'starting' | 'idle' | 'busy' | 'stopping' | 'exited';

export interface WorkerHandle {
  readonly id: string;
  readonly state: WorkerState;
  readonly pid: number | undefined;
  /** Resolves once the worker's ready line arrived; rejects with an IsoError otherwise. */
  start(): Promise<void>;
  predict(call: PredictCall): Promise<ItemOutput[]>;
  /** Ask the worker to abandon the batch in flight; its late answer is discarded. */
  cancel(): void;
  ping(timeoutMs: number): Promise<void>;
  /** Stops the worker at once (hung, over its limits); the scheduler restarts it. */
  kill(reason: string): void;
  stop(graceMs?: number): Promise<void>;
  stats(): WorkerStats;
  onExit(cb: (info: ExitInfo) => void): void;
  /** Called whenever the worker becomes free for the next batch. */
  onIdle(cb: () => void): void;
  /** Last lines the worker wrote to stderr, for error details. */
  recentLog(): string[];
}
