// The request bodies the client sends: predict options in the gateway's field names, job
// submissions and their records, path segments.
import type { JobRecord, JobSubmission, PredictOptions } from './types.js';

/** A name as one path segment. */
export function path(name: string): string {
  return encodeURIComponent(name);
}

/** A job submission in the gateway's field names (records as recordObject writes them). */
export function jobBody(job: JobSubmission): Record<string, unknown> {
  const b: Record<string, unknown> = {};
  if (job.model !== undefined) b.model = job.model;
  if (job.task !== undefined) b.task = job.task;
  if (job.pipeline !== undefined) b.pipeline = job.pipeline;
  if (job.records !== undefined) b.inputs = job.records.map(recordObject);
  if (job.data !== undefined) b.data = job.data;
  if (job.format !== undefined) b.format = job.format;
  if (job.options !== undefined) b.options = job.options;
  if (job.organism !== undefined) b.organism = job.organism;
  if (job.name !== undefined) b.name = job.name;
  if (job.workers !== undefined) b.workers = job.workers;
  if (job.chunkSize !== undefined) b.chunk_size = job.chunkSize;
  if (job.priority !== undefined) b.priority = job.priority;
  return b;
}

/**
 * A job record as the gateway's exchange reader takes it back unchanged: a typed input goes
 * inside {input: {input: …}} (so a JSON input with `sequence` or `input` keys is never read as
 * the exchange wrapper); a sequence as a flat record.
 */
export function recordObject(r: JobRecord | string): unknown {
  if (typeof r === 'string') return r;
  const head: Record<string, unknown> = {};
  if (r.id !== undefined) head.id = r.id;
  if (r.task !== undefined) head.task = r.task;
  const extra: Record<string, unknown> = {};
  if (r.organism !== undefined) extra.organism = r.organism;
  if (r.parameters !== undefined) extra.parameters = r.parameters;
  if (r.input !== undefined) return { ...head, input: { input: r.input, ...extra } };
  return { ...head, sequence: r.sequence, ...extra };
}

export function body(opts: PredictOptions): Record<string, unknown> {
  const b: Record<string, unknown> = {};
  if (opts.task !== undefined) b.task_type = opts.task;
  if (opts.options !== undefined) b.options = opts.options;
  if (opts.sequenceType !== undefined) b.sequence_type = opts.sequenceType;
  if (opts.timeoutMs !== undefined) b.timeout_ms = opts.timeoutMs;
  if (opts.priority !== undefined) b.priority = opts.priority;
  return b;
}
