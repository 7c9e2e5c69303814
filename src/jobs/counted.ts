// Jobs and pipelines are work like any request: each model call a job makes is counted where API
// requests are (per-model stats, Prometheus with a `source` label, the request log that reports
// read), as one request whose records are its sequences. Only final outcomes count: a call that
// the job will wait out (QUEUE_FULL, a model still loading) or split to find a failing record
// (a whole-batch failure of several records) is counted when it is retried, not now.
import { performance } from 'node:perf_hooks';
import type { Gateway } from '../gateway.js';
import { IsoError } from '../errors.js';
import type { WorkSource } from '../telemetry/model-stats.js';
import { isRetryable, type ModelExecutor } from './work.js';

export function countedExecutor(
  inner: ModelExecutor,
  gw: Pick<Gateway, 'registry' | 'metrics' | 'store'>,
  source: Exclude<WorkSource, 'api'>,
  jobId: string,
): ModelExecutor {
  const record = (
    model: string,
    version: string | undefined,
    task: string,
    items: number,
    ms: number,
    code?: string,
  ): void => {
    const dep = gw.registry.deployment(version ? `${model}@${version}` : model);
    const ok = code === undefined;
    dep?.stats.record(ok, ms, items, code, source);
    if (dep) gw.metrics.observeRequest(dep.name, dep.version, task, ok, code ?? 'OK', ms / 1000, items, source);
    gw.store.logRequest({
      request_id: `${source}:${jobId}`,
      model,
      version: dep?.version,
      task,
      route: source,
      status: ok ? 'success' : 'error',
      error_code: code,
      sequences: items,
      latency_ms: ms,
      client: source,
    });
  };
  return {
    manifest: (model) => inner.manifest(model),
    async submit(model, req) {
      const t0 = performance.now();
      try {
        const r = await inner.submit(model, req);
        record(model, r.version, req.task, req.items.length, performance.now() - t0);
        return r;
      } catch (e) {
        if (req.signal.aborted || (e as Error).name === 'AbortError') throw e;
        const code = e instanceof IsoError ? e.code : 'INTERNAL_ERROR';
        const final =
          req.items.length === 1 && !(e instanceof IsoError && isRetryable(e)) && code !== 'MODEL_NOT_FOUND';
        if (final) record(model, undefined, req.task, 1, performance.now() - t0, code);
        throw e;
      }
    },
  };
}
