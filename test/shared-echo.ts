// The "model" of the shared job tests: each record's result is its sequence reversed, stamped
// with the gateway that ran it, after a short delay per chunk.
import type { OutputRecord } from '../src/jobs/formats.js';
import type { SharedChunkProcessor } from '../src/store/shared/job-worker.js';

export function echoProcessor(
  owner: string,
  delayMs: number,
  onChunk?: (jobId: string, lo: number) => void,
): SharedChunkProcessor {
  return async (job, chunk, signal) => {
    onChunk?.(job.id, chunk[0]!.index);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(resolve, delayMs);
      signal.addEventListener('abort', () => {
        clearTimeout(t);
        reject(Object.assign(new Error('aborted'), { name: 'AbortError' }));
      });
    });
    return chunk.map((it): OutputRecord => ({
      task: 'echo',
      status: 'success',
      output: { reversed: String(it.input.sequence).split('').reverse().join(''), by: owner },
      metadata: {
        request_id: it.input.id,
        processing_time_ms: delayMs,
        service: 'echo',
        version: null,
        index: it.index,
      },
    }));
  };
}
