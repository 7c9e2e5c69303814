// A replica's stderr (or container log stream), split into lines with everything it controls
// bounded: a token bucket of lines per second with a burst for what reaches the gateway's log,
// a maximum line length, and the same bound on what is held while no newline has come. A model
// printing 100,000 lines, or one endless line, used to grow the gateway's log and its memory
// with them; past the rate its lines are dropped, counted, and reported once per interval.

export interface WorkerLogLimits {
  /** Lines per second a replica may put in the gateway's log, sustained. */
  lines_per_second: number;
  /** Lines it may put there at once on top of that (the bucket's size). */
  burst: number;
  /**
   * A longer line is cut to this many characters (marked). It is also all that is held while a
   * line has no newline yet: past it, the head goes out and the rest of the line is skipped.
   */
  max_line_chars: number;
  /** A replica that dropped lines says how many in one log line, at most this often. */
  report_interval_ms: number;
}

export const DEFAULT_WORKER_LOG_LIMITS: WorkerLogLimits = {
  lines_per_second: 100,
  burst: 200,
  max_line_chars: 4096,
  report_interval_ms: 10_000,
};

/** What a driver hands each replica's reader: the limits, and where drops are counted. */
export interface WorkerLogOptions {
  limits?: Partial<WorkerLogLimits>;
  /** Lines dropped over the rate (called as they are dropped). */
  onDropped?: (lines: number) => void;
  /** Lines cut to max_line_chars. */
  onTruncated?: (lines: number) => void;
  /** Where a replica's every line also goes (its log file, telemetry/replica-logs.ts), by replica id. */
  tee?: (replicaId: string) => ((line: string) => void) | undefined;
}

export interface WorkerLogSinks {
  /**
   * Every line, already cut to max_line_chars; `logged` says whether it is within the rate and
   * goes to the gateway's log. The others still feed the replica's bounded tail of recent lines
   * (error details, crash reasons), which costs nothing that grows.
   */
  line(line: string, logged: boolean): void;
  /** Once per interval with drops: how many lines, over how many seconds. */
  report(dropped: number, seconds: number): void;
}

export const TRUNCATED_MARK = ' …[truncated]';

export class WorkerLogLimiter {
  readonly limits: WorkerLogLimits;
  private tokens: number;
  private refilledAt: number;
  /** The current line's head, never longer than max_line_chars. */
  private pending = '';
  /** The current line went out cut: skip the rest of it, up to its newline. */
  private skipping = false;
  private droppedInWindow = 0;
  private windowStart = 0;
  private reportTimer: NodeJS.Timeout | null = null;
  private closed = false;
  /** Totals over the reader's life (tests, stats). */
  dropped = 0;
  truncated = 0;
  logged = 0;

  constructor(
    private readonly sinks: WorkerLogSinks,
    private readonly opts: WorkerLogOptions = {},
    private readonly now: () => number = () => performance.now(),
  ) {
    this.limits = { ...DEFAULT_WORKER_LOG_LIMITS, ...opts.limits };
    this.tokens = this.limits.burst;
    this.refilledAt = this.now();
  }

  /** Characters held for a line whose newline has not come (at most max_line_chars). */
  get pendingChars(): number {
    return this.pending.length;
  }

  /** A chunk of the stream, as decoded text. */
  push(chunk: string): void {
    if (this.closed) return;
    const max = this.limits.max_line_chars;
    let start = 0;
    while (start < chunk.length) {
      const nl = chunk.indexOf('\n', start);
      const end = nl === -1 ? chunk.length : nl;
      if (this.skipping) {
        // The rest of a line already sent cut: only its newline matters.
        if (nl !== -1) this.skipping = false;
      } else {
        // Only as much as still fits is copied: a megabyte without a newline costs max_line_chars.
        const room = max - this.pending.length;
        this.pending += chunk.slice(start, Math.min(end, start + room));
        if (end - start > room) {
          this.emit(this.pending + TRUNCATED_MARK, true);
          this.pending = '';
          this.skipping = nl === -1;
        } else if (nl !== -1) {
          this.emit(this.pending, false);
          this.pending = '';
        }
      }
      if (nl === -1) break;
      start = nl + 1;
    }
  }

  /** The stream ended: a last line without newline goes out, and any drop count is reported now. */
  end(): void {
    if (this.closed) return;
    if (this.pending !== '') this.emit(this.pending, false);
    this.pending = '';
    this.closed = true;
    this.flushReport();
  }

  private emit(line: string, cut: boolean): void {
    if (line.trim() === '') return;
    if (cut) {
      this.truncated++;
      this.opts.onTruncated?.(1);
    }
    const logged = this.take();
    if (logged) this.logged++;
    else this.drop();
    this.sinks.line(line, logged);
  }

  /** One token from the bucket, refilled for the time since the last line. */
  private take(): boolean {
    const t = this.now();
    const { lines_per_second: rate, burst } = this.limits;
    this.tokens = Math.min(burst, this.tokens + ((t - this.refilledAt) / 1000) * rate);
    this.refilledAt = t;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  private drop(): void {
    this.dropped++;
    this.opts.onDropped?.(1);
    if (this.droppedInWindow++ === 0) {
      this.windowStart = this.now();
      this.reportTimer = setTimeout(() => this.flushReport(), this.limits.report_interval_ms);
      this.reportTimer.unref();
    }
  }

  private flushReport(): void {
    if (this.reportTimer) clearTimeout(this.reportTimer);
    this.reportTimer = null;
    if (this.droppedInWindow === 0) return;
    const n = this.droppedInWindow;
    const seconds = Math.max(0.1, Math.round((this.now() - this.windowStart) / 100) / 10);
    this.droppedInWindow = 0;
    this.sinks.report(n, seconds);
  }
}
