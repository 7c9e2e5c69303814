// The request log's writes, off the event loop. Inserting a row costs SQLite ~7-10 µs of CPU
// here, which on the gateway's thread was the largest single share of a no-op prediction. The
// gateway buffers rows, hands each batch to a worker thread (request-log-thread.ts) as one JSON
// string, and a shared counter tells it how many rows are committed: flush() waits on it, so a
// read right after a flush sees every row logged before it.
import { Worker } from 'node:worker_threads';

/** One request as the log records it (store/db.ts logRequest). */
export interface RequestLogEntry {
  request_id: string;
  model: string;
  version?: string;
  task?: string;
  route: string;
  status: 'success' | 'error';
  error_code?: string;
  sequences: number;
  latency_ms: number;
  client?: string;
}

/** Column order of a logged row, as the gateway sends it (at in epoch ms; the thread formats it). */
export const LOG_INSERT_COLUMNS = [
  'request_id',
  'at',
  'model',
  'version',
  'task',
  'route',
  'status',
  'error_code',
  'sequences',
  'latency_ms',
  'client',
] as const;

/** One entry as a row in LOG_INSERT_COLUMNS order. */
export function toLogRow(r: RequestLogEntry, at: number): unknown[] {
  return [
    r.request_id,
    at,
    r.model,
    r.version ?? null,
    r.task ?? null,
    r.route,
    r.status,
    r.error_code ?? null,
    r.sequences,
    r.latency_ms,
    r.client ?? null,
  ];
}

export interface LogBatch {
  count: number;
  /** JSON of the rows (arrays in LOG_INSERT_COLUMNS order): one string clones far cheaper than 500 objects. */
  rows: string;
}

/** How long flush() waits for the thread before giving up (it logs, and the reader sees fewer rows). */
const SYNC_TIMEOUT_MS = 10_000;

export class RequestLogWriter {
  private worker: Worker | null = null;
  /** Rows committed (or given up on) by the thread, as an int32 that wraps like `sent` does. */
  private readonly done = new Int32Array(new SharedArrayBuffer(4));
  private sent = 0;

  /** `onError`: what was not written and why; `code` is SQLite's (or errno's) when there is one. */
  constructor(
    private readonly file: string,
    private readonly onError: (message: string, code?: string) => void,
  ) {}

  /** Hands rows to the thread (started on first use); returns at once. */
  write(rows: unknown[][]): void {
    if (rows.length === 0) return;
    const w = this.worker ?? this.start();
    this.sent = (this.sent + rows.length) | 0;
    w.postMessage({ count: rows.length, rows: JSON.stringify(rows) } satisfies LogBatch);
  }

  /** Blocks until every row handed over is committed; false if the thread did not finish in time. */
  sync(timeoutMs = SYNC_TIMEOUT_MS): boolean {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const done = Atomics.load(this.done, 0);
      if (done === this.sent) return true;
      const left = end - Date.now();
      if (left <= 0) {
        this.onError(`request log: writer thread still has ${(this.sent - done) | 0} rows after ${timeoutMs} ms`);
        return false;
      }
      Atomics.wait(this.done, 0, done, left);
    }
  }

  /** Waits for the rows handed over, then stops the thread. */
  close(): void {
    const w = this.worker;
    if (!w) return;
    this.sync();
    this.worker = null;
    void w.terminate();
  }

  private start(): Worker {
    const w = new Worker(new URL('./request-log-thread.js', import.meta.url), {
      workerData: { file: this.file, done: this.done },
    });
    w.on('message', (m: { error?: string; code?: string }) => m.error && this.onError(m.error, m.code));
    w.on('error', (e) => this.onError(`request log writer thread failed: ${e.message}`, (e as { code?: string }).code));
    w.on('exit', () => {
      if (this.worker !== w) return;
      // Rows it never committed are lost; count them as done so no flush() waits for them.
      Atomics.store(this.done, 0, this.sent);
      this.worker = null;
    });
    // Never what keeps a gateway (or a CLI command) alive.
    w.unref();
    this.worker = w;
    return w;
  }
}
