// One bound on how many sequences a request may carry, the same on every surface that takes many
// (native batch, deployment batch_inference, OpenAI embeddings, OIP v2 infer, MCP tools, the
// Agent API): config `max_batch_sequences` (default 100), one error. Larger sets are jobs.
import { IsoError } from '../errors.js';

/**
 * The error for a request over the limit; `count` may be a lower bound ("more than 100"), `what`
 * names the unit the way the surface does.
 */
export function batchTooLarge(count: number | string, max: number, what = 'sequences per request'): IsoError {
  return new IsoError(
    'INVALID_REQUEST',
    `at most ${max} ${what} (got ${count}; max_batch_sequences); send larger sets as a job (POST /v1/jobs)`,
    {
      max,
      got: count,
      limit: 'max_batch_sequences',
    },
  );
}

export function checkBatchSize(count: number, max: number, what?: string): void {
  if (count > max) throw batchTooLarge(count, max, what);
}
