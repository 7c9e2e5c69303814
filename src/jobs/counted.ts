// Jobs and pipelines are work like any request: each model call a job makes is counted where API
// requests are (per-model stats, Prometheus with a `source` label, the request log that reports
// read), as one request whose records are its sequences, through the outcome every surface
// records (inference/outcome.ts). Only final outcomes count: a call that the job will wait out
// (QUEUE_FULL, a model still loading) or split to find a failing record (a whole-batch failure of
// several records) is counted when it is retried, not now.
import { IsoError } from '../errors.js';
import type { InferenceContext } from '../inference/context.js';
import { RequestOutcome } from '../inference/outcome.js';
import type { WorkSource } from '../telemetry/model-stats.js';
import { isRetryable, type ModelExecutor } from './work.js';

export function countedExecutor(
  inner: ModelExecutor,
  gw: InferenceContext,
  source: Exclude<WorkSource, 'api'>,
  jobId: string,
): ModelExecutor {
  const caller = { requestId: `${source}:${jobId}`, client: source };
  return {
    manifest: (model) => inner.manifest(model),
    async submit(model, req) {
      const outcome = new RequestOutcome(gw, caller, source, { source });
      outcome.model = model;
      outcome.task = req.task;
      outcome.sequences = req.items.length;
      try {
        const r = await inner.submit(model, req);
        // The version that served it; one the registry no longer holds is in the request log only.
        outcome.dep = gw.registry.deployment(r.version ? `${model}@${r.version}` : model) ?? null;
        outcome.ok();
        return r;
      } catch (e) {
        if (req.signal.aborted || (e as Error).name === 'AbortError') throw e;
        // A final failure (an unknown model, MODEL_NOT_FOUND, is never recorded: outcome.ts).
        if (req.items.length === 1 && !(e instanceof IsoError && isRetryable(e))) outcome.failed(e);
        throw e;
      }
    },
  };
}
