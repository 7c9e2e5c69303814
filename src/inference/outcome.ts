// The outcome of one inference request, recorded once for every surface: the model's request
// statistics, the Prometheus request metrics and a row of the request log (SQLite). A surface
// fills in what it learns as the request goes (model, deployment, task, item count) and ends
// with ok() or failed(e); nothing is recorded for a model the registry does not know.
import { performance } from 'node:perf_hooks';
import { IsoError } from '../errors.js';
import type { Manifest } from '../manifest/schema.js';
import type { ModelDeployment } from '../scheduler/deployment.js';
import type { WorkSource } from '../telemetry/model-stats.js';
import type { InferenceContext } from './context.js';

/** Who asked: the request log's request id and client (an HTTP request's id and address; MCP: an id and the transport). */
export interface Caller {
  readonly requestId: string;
  readonly client: string;
}

/** An IsoError as it is, anything else as the generic INTERNAL_ERROR (its text is not for clients). */
export function asIsoError(e: unknown): IsoError {
  return e instanceof IsoError ? e : new IsoError('INTERNAL_ERROR', 'internal error');
}

export interface OutcomeOptions {
  /** Also count it as a batch request (gateway_batch_requests_total): native /predict/batch, deployments batch_inference. */
  batch?: boolean;
  /** Where the work came from (model stats and the metrics' `source` label): jobs and pipelines; unset: an API request. */
  source?: WorkSource;
}

export class RequestOutcome {
  private readonly t0 = performance.now();
  private end: number | undefined;
  /** The model the request named (the request log's model); unset: nothing is recorded. */
  model: string | undefined;
  /**
   * The deployment that served it (one version under a traffic split); unset: the model's
   * default; null: none the registry still holds (the request log's row only).
   */
  dep: ModelDeployment | null | undefined;
  /** A task the manifest declares (never client text: it becomes a metric label). */
  task: string | undefined;
  /**
   * Before the task is known (the body failed to parse): the label to use, read from the
   * manifest; only ever a task the manifest declares (or "unknown").
   */
  taskHint: ((m: Manifest) => string | undefined) | undefined;
  /** Items (sequences, inputs) the request carried. */
  sequences = 0;
  private recorded = false;

  constructor(
    private readonly ctx: InferenceContext,
    private readonly caller: Caller,
    readonly route: string,
    private readonly opts: OutcomeOptions = {},
  ) {}

  /** Seconds since the request began (up to stop(), once called). */
  seconds(): number {
    return ((this.end ?? performance.now()) - this.t0) / 1000;
  }

  /** Freezes the latency: the figures recorded are those at the moment of answering, not after the reply is written. */
  stop(): void {
    this.end ??= performance.now();
  }

  ok(): void {
    this.record(undefined);
  }

  /**
   * Records the failure as `err` (by default: an IsoError as it is, anything else as
   * INTERNAL_ERROR) and returns that. A surface rethrows what suits its error handler.
   */
  failed(e: unknown, err: IsoError = asIsoError(e)): IsoError {
    this.record(err);
    return err;
  }

  private record(err: IsoError | undefined): void {
    if (this.recorded) return;
    this.recorded = true;
    const model = this.model;
    if (model === undefined || err?.code === 'MODEL_NOT_FOUND') return;
    const latency = (this.end ?? performance.now()) - this.t0;
    const ok = err === undefined;
    const { registry, metrics, store } = this.ctx;
    const dep = this.dep === undefined ? registry.deployment(model) : (this.dep ?? undefined);
    const task = this.task ?? (dep && this.taskHint ? this.taskHint(dep.pkg.manifest) : undefined);
    if (dep) {
      dep.stats.record(ok, latency, this.sequences, err?.code, this.opts.source);
      metrics.observeRequest(
        dep.name,
        dep.version,
        task ?? 'unknown',
        ok,
        err?.code ?? 'OK',
        latency / 1000,
        this.sequences,
        this.opts.source,
      );
      if (this.opts.batch) metrics.observeBatchRequest(dep.name, dep.version, ok);
    }
    store.logRequest({
      request_id: this.caller.requestId,
      model,
      version: dep?.version,
      task,
      route: this.route,
      status: ok ? 'success' : 'error',
      error_code: err?.code,
      sequences: this.sequences,
      latency_ms: latency,
      client: this.caller.client,
    });
  }
}
