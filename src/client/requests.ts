// The request bodies the client sends: predict options in the gateway's field names, job
// submissions and their records, path segments.
import type { JobRecord, JobSubmission, PredictOptions } from './types.js';

/** A name as one path segment. */
export function path(name: string): string {
  return encodeURIComponent(name);
}

/** The fields of `from` that are set, under the gateway's names (`names`: ours → its), in that order. */
function defined<T extends object>(from: T, names: { [K in keyof T]?: string }): Record<string, unknown> {
  const b: Record<string, unknown> = {};
  for (const [ours, theirs] of Object.entries(names) as [keyof T, string][]) {
    if (from[ours] !== undefined) b[theirs] = from[ours];
  }
  return b;
}

/** A job submission in the gateway's field names (records as recordObject writes them). */
export function jobBody(job: JobSubmission): Record<string, unknown> {
  return defined(
    { ...job, records: job.records?.map(recordObject) },
    {
      model: 'model',
      task: 'task',
      pipeline: 'pipeline',
      records: 'inputs',
      data: 'data',
      format: 'format',
      options: 'options',
      organism: 'organism',
      name: 'name',
      workers: 'workers',
      chunkSize: 'chunk_size',
      priority: 'priority',
    },
  );
}

/**
 * A job record as the gateway's exchange reader takes it back unchanged: a typed input goes
 * inside {input: {input: …}} (so a JSON input with `sequence` or `input` keys is never read as
 * the exchange wrapper); a sequence as a flat record.
 */
export function recordObject(r: JobRecord | string): unknown {
  if (typeof r === 'string') return r;
  const head = defined(r, { id: 'id', task: 'task' });
  const extra = defined(r, { organism: 'organism', parameters: 'parameters' });
  if (r.input !== undefined) return { ...head, input: { input: r.input, ...extra } };
  return { ...head, sequence: r.sequence, ...extra };
}

/** Predict options in the gateway's field names. */
export function body(opts: PredictOptions): Record<string, unknown> {
  return defined(opts, {
    task: 'task_type',
    options: 'options',
    sequenceType: 'sequence_type',
    timeoutMs: 'timeout_ms',
    priority: 'priority',
  });
}
