// @isomodel/client: a typed client for the isomodel REST API. No dependencies: it needs only a
// global fetch (Node 18+, Deno, Bun, browsers). Published from clients/typescript/, which compiles
// this file; see clients/typescript/README.md.

export type SequenceType = 'DNA' | 'RNA' | 'protein';
export type ModelStatus = 'unloaded' | 'loading' | 'ready' | 'failed' | 'needs_weights' | 'draining' | 'stopped';

/** The REST error codes (the server may add more; codes from the client itself, status 0: NETWORK_ERROR, TIMEOUT, CANCELLED (the caller aborted); INVALID_RESPONSE: not JSON). */
export type ErrorCode =
  | 'INVALID_REQUEST'
  | 'INVALID_SEQUENCE'
  | 'SEQUENCE_TOO_LONG'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'MODEL_NOT_FOUND'
  | 'NOT_FOUND'
  | 'PAYLOAD_TOO_LARGE'
  | 'HEADERS_TOO_LARGE'
  | 'REQUEST_TIMEOUT'
  | 'RATE_LIMITED'
  | 'QUEUE_FULL'
  | 'CANCELLED'
  | 'PREDICTION_FAILED'
  | 'INTERNAL_ERROR'
  | 'MODEL_NOT_LOADED'
  | 'PREDICTION_TIMEOUT'
  | 'NETWORK_ERROR'
  | 'TIMEOUT'
  | 'INVALID_RESPONSE'
  | (string & {});

/** An error envelope (or a transport failure) as an exception. */
export class IsomodelError extends Error {
  constructor(
    readonly code: ErrorCode,
    /** HTTP status; 0 when no response arrived. */
    readonly status: number,
    message: string,
    readonly details?: unknown,
    readonly requestId?: string,
    /** Seconds to wait before retrying (Retry-After on 429/503). */
    readonly retryAfterS?: number,
  ) {
    super(message);
    this.name = 'IsomodelError';
  }
}

export interface Envelope<T> {
  success: boolean;
  message: string;
  data?: T;
  error?: { code: string; details: unknown };
  timestamp: string;
  request_id: string;
}

export interface TaskInfo {
  name: string;
  description: string;
  sequence_types: SequenceType[];
  max_length: number;
  min_length?: number;
  input?: { type: string; description: string; example?: unknown; [k: string]: unknown };
  output?: { type: string; description: string; example?: unknown; range?: [number, number]; [k: string]: unknown };
  options?: Record<string, unknown>;
}

export interface ModelSummary {
  name: string;
  version: string;
  description: string;
  runtime: string;
  isolation: string;
  status: ModelStatus;
  default: boolean;
  tasks: TaskInfo[];
  sequence_types: SequenceType[];
  replicas: number;
  last_error: string | null;
  [k: string]: unknown;
}

export interface ModelList {
  models: ModelSummary[];
  invalid_packages: { file: string; issues: string[] }[];
}

export interface ModelInfo {
  name: string;
  version: string;
  description: string;
  tasks: string[];
  task_details: TaskInfo[];
  sequence_types: SequenceType[];
  max_sequence_length: number;
  runtime: string;
  status: ModelStatus;
  [k: string]: unknown;
}

export interface Health {
  status: 'healthy' | 'starting' | 'unhealthy';
  model: string | null;
  version?: string;
  uptime: number;
  memory_usage?: string;
  state?: ModelStatus;
  [k: string]: unknown;
}

interface PredictionMeta {
  model: string;
  version: string;
  task_type: string;
  processing_time: number;
}

/** One prediction: the model's own output fields (`T`) plus the gateway's metadata. */
export type Prediction<T extends object = Record<string, unknown>> = T &
  PredictionMeta & {
    sequence_length: number;
    sequence_type: SequenceType;
  };

export type BatchItem<T extends object = Record<string, unknown>> = (T & { sequence: string; error?: undefined }) | { sequence: string; error: { code: string; message: string } };

export interface BatchPrediction<T extends object = Record<string, unknown>> extends PredictionMeta {
  predictions: BatchItem<T>[];
  total_sequences: number;
  successful: number;
  failed: number;
}

export interface PredictOptions {
  /** task_type; needed when the model has several tasks. */
  task?: string;
  options?: Record<string, unknown>;
  sequenceType?: SequenceType;
  /** Server-side deadline for this prediction. */
  timeoutMs?: number;
  /** -10..10, higher first. */
  priority?: number;
  signal?: AbortSignal;
}

export interface ReloadSummary {
  added: string[];
  updated: string[];
  removed: string[];
  unchanged: string[];
  errors: { file: string; issues: string[] }[];
}

export interface ClientOptions {
  /** API key of a gateway with auth on: sent as `Authorization: Bearer <key>`. */
  apiKey?: string;
  /** Headers sent with every request. */
  headers?: Record<string, string>;
  /** Client-side timeout per request in ms (default 60 000; 0 = none). */
  timeoutMs?: number;
  /** A fetch implementation (default: the global one). */
  fetch?: typeof fetch;
}

function path(name: string): string {
  return encodeURIComponent(name);
}

export class IsomodelClient {
  readonly baseUrl: string;
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number;
  private readonly fetchImpl: typeof fetch;

  constructor(baseUrl = 'http://127.0.0.1:8000', opts: ClientOptions = {}) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
    this.headers = { ...(opts.apiKey ? { authorization: `Bearer ${opts.apiKey}` } : {}), ...(opts.headers ?? {}) };
    this.timeoutMs = opts.timeoutMs ?? 60_000;
    const f = opts.fetch ?? globalThis.fetch;
    if (typeof f !== 'function') throw new Error('no fetch available: pass opts.fetch');
    this.fetchImpl = f.bind(globalThis);
  }

  /** Health of the default model, or of `model`. */
  health(model?: string): Promise<Health> {
    return this.request('GET', model ? `/models/${path(model)}/health` : '/health');
  }

  /** Every installed package with its status. */
  models(): Promise<ModelList> {
    return this.request('GET', '/v1/models');
  }

  modelInfo(name: string): Promise<ModelInfo> {
    return this.request('GET', `/models/${path(name)}/info`);
  }

  predict<T extends object = Record<string, unknown>>(name: string, sequence: string, opts: PredictOptions = {}): Promise<Prediction<T>> {
    return this.request('POST', `/models/${path(name)}/predict`, { sequence, ...body(opts) }, opts.signal);
  }

  /** Results come back in input order; a sequence that failed has `error` instead of output. */
  predictBatch<T extends object = Record<string, unknown>>(name: string, sequences: string[], opts: PredictOptions = {}): Promise<BatchPrediction<T>> {
    return this.request('POST', `/models/${path(name)}/predict/batch`, { sequences, ...body(opts) }, opts.signal);
  }

  /** Loads a model and waits until it is ready. */
  load(name: string): Promise<ModelSummary & { load_time_ms: number }> {
    return this.request('POST', `/v1/models/${path(name)}/load`, {});
  }

  /** Drains a model and stops its workers. */
  unload(name: string): Promise<ModelSummary> {
    return this.request('POST', `/v1/models/${path(name)}/unload`, {});
  }

  /** Re-reads the models dir: new, changed (blue/green swap), removed packages. */
  reload(): Promise<ReloadSummary> {
    return this.request('POST', '/v1/models/reload', {});
  }

  private async request<T>(method: string, route: string, payload?: unknown, signal?: AbortSignal): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json', ...this.headers };
    const init: RequestInit = { method, headers };
    if (payload !== undefined) {
      headers['content-type'] = 'application/json';
      init.body = JSON.stringify(payload);
    }
    // One controller for the caller's signal and our timeout (AbortSignal.any is not everywhere yet).
    const ac = new AbortController();
    let timedOut = false;
    const onAbort = (): void => ac.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted) ac.abort();
    const timer =
      this.timeoutMs > 0
        ? setTimeout(() => {
            timedOut = true;
            ac.abort();
          }, this.timeoutMs)
        : undefined;
    init.signal = ac.signal;
    let res: Response;
    let text: string;
    try {
      res = await this.fetchImpl(this.baseUrl + route, init);
      text = await res.text();
    } catch (e) {
      const err = e as Error;
      if (timedOut) throw new IsomodelError('TIMEOUT', 0, `no answer from ${this.baseUrl} within ${this.timeoutMs} ms`);
      if (ac.signal.aborted) throw new IsomodelError('CANCELLED', 0, 'request aborted');
      throw new IsomodelError('NETWORK_ERROR', 0, `cannot reach ${this.baseUrl}: ${err.message}`, { cause: String((err as { cause?: unknown }).cause ?? '') });
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
    let env: Envelope<T>;
    try {
      env = JSON.parse(text) as Envelope<T>;
    } catch {
      throw new IsomodelError(res.ok ? 'INVALID_RESPONSE' : 'INTERNAL_ERROR', res.status, `not a JSON answer (HTTP ${res.status}): ${text.slice(0, 200)}`);
    }
    if (!res.ok || env.success !== true) {
      const retry = Number(res.headers.get('retry-after'));
      throw new IsomodelError(
        env.error?.code ?? 'INTERNAL_ERROR',
        res.status,
        env.message ?? `HTTP ${res.status}`,
        env.error?.details,
        env.request_id ?? res.headers.get('x-request-id') ?? undefined,
        Number.isFinite(retry) && retry > 0 ? retry : undefined,
      );
    }
    return env.data as T;
  }
}

function body(opts: PredictOptions): Record<string, unknown> {
  const b: Record<string, unknown> = {};
  if (opts.task !== undefined) b.task_type = opts.task;
  if (opts.options !== undefined) b.options = opts.options;
  if (opts.sequenceType !== undefined) b.sequence_type = opts.sequenceType;
  if (opts.timeoutMs !== undefined) b.timeout_ms = opts.timeoutMs;
  if (opts.priority !== undefined) b.priority = opts.priority;
  return b;
}
