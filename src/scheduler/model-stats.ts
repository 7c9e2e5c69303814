// In-memory request statistics per model: cheap enough for the hot path, summarised by
// the JSON /metrics route. Latencies keep a bounded window for percentiles.
const WINDOW = 2048;

/** Where work comes from: API requests (every interactive surface), batch jobs, pipeline jobs. */
export const WORK_SOURCES = ['api', 'job', 'pipeline'] as const;
export type WorkSource = (typeof WORK_SOURCES)[number];

export interface SourceCounts {
  requests: number;
  successful: number;
  failed: number;
  sequences: number;
}

export class LatencyWindow {
  private readonly values = new Float64Array(WINDOW);
  private count = 0;
  push(ms: number): void {
    this.values[this.count % WINDOW] = ms;
    this.count++;
  }
  percentile(p: number): number | null {
    const n = Math.min(this.count, WINDOW);
    if (n === 0) return null;
    const sorted = Array.from(this.values.subarray(0, n)).sort((a, b) => a - b);
    return sorted[Math.min(n - 1, Math.floor((p / 100) * n))]!;
  }
}

export class ModelStats {
  totalRequests = 0;
  successfulRequests = 0;
  failedRequests = 0;
  totalItems = 0;
  batches = 0;
  batchedItems = 0;
  /** Models batched by length (max_batch_tokens): tokens of their batches padded to the longest item, and the padding among them. */
  batchTokens = 0;
  paddingTokens = 0;
  workerRestarts = 0;
  /** The totals above, split by where the work came from. */
  readonly bySource: Record<WorkSource, SourceCounts> = {
    api: { requests: 0, successful: 0, failed: 0, sequences: 0 },
    job: { requests: 0, successful: 0, failed: 0, sequences: 0 },
    pipeline: { requests: 0, successful: 0, failed: 0, sequences: 0 },
  };
  private latencySumMs = 0;
  readonly latency = new LatencyWindow();
  readonly queueWait = new LatencyWindow();
  readonly errorsByCode: Record<string, number> = {};

  /**
   * One request: an API call, or one model call of a job or pipeline (its records are the
   * sequences). Latency figures stay the API's: a job's chunk, queued below interactive
   * requests on purpose, is not a response time anyone waits for.
   */
  record(ok: boolean, ms: number, items: number, code?: string, source: WorkSource = 'api'): void {
    this.totalRequests++;
    this.totalItems += items;
    const by = this.bySource[source];
    by.requests++;
    by.sequences += items;
    if (ok) {
      this.successfulRequests++;
      by.successful++;
    } else {
      this.failedRequests++;
      by.failed++;
      if (code) this.errorsByCode[code] = (this.errorsByCode[code] ?? 0) + 1;
    }
    if (source !== 'api') return;
    this.latencySumMs += ms;
    this.latency.push(ms);
  }

  recordBatch(size: number): void {
    this.batches++;
    this.batchedItems += size;
  }

  recordTokens(padded: number, padding: number): void {
    this.batchTokens += padded;
    this.paddingTokens += padding;
  }

  summary(): Record<string, unknown> {
    const round = (v: number | null): number | null => (v === null ? null : Math.round(v * 1000) / 1000);
    return {
      total_requests: this.totalRequests,
      successful_requests: this.successfulRequests,
      failed_requests: this.failedRequests,
      total_sequences: this.totalItems,
      average_response_time: this.bySource.api.requests
        ? round(this.latencySumMs / this.bySource.api.requests / 1000)
        : null,
      p50_response_time_ms: round(this.latency.percentile(50)),
      p99_response_time_ms: round(this.latency.percentile(99)),
      p50_queue_time_ms: round(this.queueWait.percentile(50)),
      batches: this.batches,
      average_batch_size: this.batches ? round(this.batchedItems / this.batches) : null,
      padding_ratio: this.batchTokens ? round(this.paddingTokens / this.batchTokens) : null,
      worker_restarts: this.workerRestarts,
      errors_by_code: { ...this.errorsByCode },
      by_source: Object.fromEntries(WORK_SOURCES.map((k) => [k, { ...this.bySource[k] }])),
    };
  }
}
