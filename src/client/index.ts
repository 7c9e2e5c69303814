// @isomodel/client: a typed client for the isomodel REST API. No dependencies: it needs only a
// global fetch (Node 18+, Deno, Bun, browsers). Published from clients/typescript/, which compiles
// this file; see clients/typescript/README.md.

export type SequenceType = 'DNA' | 'RNA' | 'protein';
export type ModelStatus =
  'unloaded' | 'loading' | 'ready' | 'failed' | 'needs_weights' | 'needs_packages' | 'draining' | 'stopped';
/** What a model task takes (its manifest `input_type`). */
export type InputType = 'sequence' | 'text' | 'json' | 'tensor' | 'image' | 'audio' | 'chat';

/** The REST error codes, from the gateway's src/errors.ts, and the job API's 409s. */
export const SERVER_ERROR_CODES = [
  'INVALID_REQUEST',
  'INVALID_SEQUENCE',
  'SEQUENCE_TOO_LONG',
  'LOW_INFORMATION_SEQUENCE',
  'INVALID_INPUT',
  'INPUT_TOO_LONG',
  'UNAUTHORIZED',
  'FORBIDDEN',
  'REQUEST_TIMEOUT',
  'MODEL_NOT_FOUND',
  'NOT_FOUND',
  'PAYLOAD_TOO_LARGE',
  'UNSUPPORTED_MEDIA_TYPE',
  'VALIDATION_ERROR',
  'HEADERS_TOO_LARGE',
  'RATE_LIMITED',
  'QUEUE_FULL',
  'QUOTA_EXCEEDED',
  'CANCELLED',
  'PREDICTION_FAILED',
  'INTERNAL_ERROR',
  'MODEL_NOT_LOADED',
  'PREDICTION_TIMEOUT',
  'STORAGE_UNAVAILABLE',
  'IDEMPOTENCY_CONFLICT',
  'JOB_NOT_FINISHED',
  'CONFLICT',
  'UNSAFE_ARCHIVE',
  'DOWNLOAD_FAILED',
] as const;

/** Codes the client gives itself, status 0 (NETWORK_ERROR, TIMEOUT, CANCELLED: the caller aborted) or INVALID_RESPONSE (not JSON). */
export const CLIENT_ERROR_CODES = ['NETWORK_ERROR', 'TIMEOUT', 'CANCELLED', 'INVALID_RESPONSE'] as const;

/** The error codes (the server may add more). */
export type ErrorCode = (typeof SERVER_ERROR_CODES)[number] | (typeof CLIENT_ERROR_CODES)[number] | (string & {});

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
  /** What the task takes (modelInfo's task_details; absent from models()): sequence when not given. */
  input_type?: InputType;
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

/** One prediction of a sequence task: the model's own output fields (`T`) plus the gateway's metadata. */
export type Prediction<T extends object = Record<string, unknown>> = T &
  PredictionMeta & {
    sequence_length: number;
    sequence_type: SequenceType;
  };

/** One prediction of a task of another input type: what it took instead of the sequence's length and type. */
export type TypedPrediction<T extends object = Record<string, unknown>> = T &
  PredictionMeta & {
    input_type: Exclude<InputType, 'sequence'>;
    /** Characters (text, chat), KiB (image, audio), elements (tensor) or 1 (JSON). */
    input_size: number;
  };

/** What predict(model, {input | sequence}) answers: sequence tasks the first, every other type the second (isTyped tells). */
export type AnyPrediction<T extends object = Record<string, unknown>> = Prediction<T> | TypedPrediction<T>;

/** Whether an answer is of a non-sequence task (input_type and input_size, not sequence_length). */
export function isTyped<T extends object>(p: AnyPrediction<T>): p is TypedPrediction<T> {
  return typeof (p as { input_type?: unknown }).input_type === 'string';
}

export type BatchItem<T extends object = Record<string, unknown>> =
  (T & { sequence: string; error?: undefined }) | { sequence: string; error: { code: string; message: string } };

/** A batch item of a non-sequence task: named by its position, never echoing the input (an image…). */
export type TypedBatchItem<T extends object = Record<string, unknown>> =
  (T & { index: number; error?: undefined }) | { index: number; error: { code: string; message: string } };

export interface BatchPrediction<T extends object = Record<string, unknown>> extends PredictionMeta {
  predictions: BatchItem<T>[];
  total_sequences: number;
  successful: number;
  failed: number;
}

export interface TypedBatchPrediction<T extends object = Record<string, unknown>> extends PredictionMeta {
  predictions: TypedBatchItem<T>[];
  total_sequences: number;
  successful: number;
  failed: number;
}

/** Image or audio as an input: base64 bytes and, when known, the format (the gateway sniffs and checks both). */
export interface MediaInput {
  data: string;
  format?: string;
}

/** An Open Inference Protocol-style tensor; a nested array works too. */
export interface TensorInput {
  datatype?: string;
  shape?: number[];
  data: unknown[];
}

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool';
  content: string | { type: 'text'; text: string }[];
}

/**
 * An input of any type: text, a JSON value, named tensors, an image or a recording
 * (mediaInput / mediaFile, or base64 text, or a data: URL), chat messages.
 */
export type Input =
  string | MediaInput | Record<string, TensorInput | unknown[]> | { messages: ChatMessage[] } | ChatMessage[] | unknown;

/** Media bytes to upload: a file path (Node, Deno, Bun), bytes, or a Blob/File (browsers). */
export type MediaUpload = string | Uint8Array | ArrayBuffer | Blob;

export interface MediaPredictOptions extends PredictOptions {
  /** png, jpeg, gif, bmp, webp, wav, flac, ogg, mp3: the media type sent (the gateway checks it against the bytes). */
  format?: string;
  /** multipart/form-data (default) or the bytes as the request body. */
  upload?: 'multipart' | 'raw';
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

/** predict(model, request): `input` (any type) or `sequence`, with the options of PredictOptions. */
export interface PredictRequest extends PredictOptions {
  input?: Input;
  sequence?: string;
}

/** predictBatch(model, request): `inputs` (any type) or `sequences`. */
export interface BatchRequest extends PredictOptions {
  inputs?: Input[];
  sequences?: string[];
}

/** One record of a job: an input of any type or a sequence, with its own id, task and options if it likes. */
export interface JobRecord {
  /** The record's request_id in the results (default seq1, seq2…). */
  id?: string;
  input?: Input;
  sequence?: string;
  /** Overrides the job's task for this record. */
  task?: string;
  organism?: string;
  /** Model options for this record (over the job's). */
  parameters?: Record<string, unknown>;
}

export type InputFormat = 'json' | 'jsonl' | 'fasta' | 'csv' | 'tsv' | 'text';

export interface JobSubmission {
  /** A model (and its task), or a pipeline definition. */
  model?: string;
  task?: string;
  pipeline?: Record<string, unknown>;
  /** The records (a string is a sequence, or text for a text task)… */
  records?: (JobRecord | string)[];
  /** …or file text in one of the exchange formats (format sniffed when not given). */
  data?: string;
  format?: InputFormat;
  options?: Record<string, unknown>;
  organism?: string;
  name?: string;
  workers?: number;
  chunkSize?: number;
  priority?: number;
}

export type JobStatus = 'queued' | 'running' | 'succeeded' | 'failed' | 'cancelled';

export interface Job {
  id: string;
  name: string | null;
  kind: 'predict' | 'pipeline';
  model: string | null;
  pipeline: string | null;
  task: string | null;
  status: JobStatus;
  total: number;
  done: number;
  successful: number;
  failed: number;
  pending: number;
  progress: number;
  rate_per_s: number | null;
  eta_s: number | null;
  error: string | null;
  [k: string]: unknown;
}

/** One record's result, in the exchange output shape. */
export interface JobResult<T extends object = Record<string, unknown>> {
  task: string;
  status: 'success' | 'error';
  output?: T;
  error?: { code: string; message: string; [k: string]: unknown };
  metadata: {
    request_id: string;
    processing_time_ms: number;
    service: string;
    version: string | null;
    index: number;
    [k: string]: unknown;
  };
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

  /**
   * One prediction: `predict(model, 'ACGT', opts)` for a sequence, or `predict(model, {input, task,
   * options})` for an input of any type (`{sequence}` works too).
   */
  predict<T extends object = Record<string, unknown>>(
    name: string,
    sequence: string,
    opts?: PredictOptions,
  ): Promise<Prediction<T>>;
  predict<T extends object = Record<string, unknown>>(name: string, request: PredictRequest): Promise<AnyPrediction<T>>;
  predict<T extends object = Record<string, unknown>>(
    name: string,
    what: string | PredictRequest,
    opts: PredictOptions = {},
  ): Promise<AnyPrediction<T>> {
    const req: PredictRequest = typeof what === 'string' ? { ...opts, sequence: what } : what;
    // Both given goes as it is: the gateway's INVALID_REQUEST says to send one.
    return this.request(
      'POST',
      `/models/${path(name)}/predict`,
      { input: req.input, sequence: req.sequence, ...body(req) },
      req.signal,
    );
  }

  /**
   * One image or recording sent as bytes, not base64 JSON: a file path (Node, Deno, Bun), bytes,
   * or a Blob/File. `upload: 'multipart'` (default) sends a form with one `file` part; `'raw'` sends
   * the bytes as the body with their media type (from `format`, the file's extension or the
   * Blob's type; bytes of no known type go as multipart, where the gateway sniffs them).
   */
  predictMedia<T extends object = Record<string, unknown>>(
    name: string,
    media: MediaUpload,
    opts: MediaPredictOptions = {},
  ): Promise<TypedPrediction<T>> {
    return this.sendMedia(`/models/${path(name)}/predict`, [media], opts, opts.upload ?? 'multipart');
  }

  /** Many images or recordings as one multipart request (a `file` part each), results by index. */
  predictMediaBatch<T extends object = Record<string, unknown>>(
    name: string,
    media: MediaUpload[],
    opts: Omit<MediaPredictOptions, 'upload'> = {},
  ): Promise<TypedBatchPrediction<T>> {
    return this.sendMedia(`/models/${path(name)}/predict/batch`, media, opts, 'multipart');
  }

  /**
   * Many inputs, results in input order; one that failed has `error` instead of output.
   * `predictBatch(model, sequences, opts)`, or `predictBatch(model, {inputs | sequences, task, options})`.
   */
  predictBatch<T extends object = Record<string, unknown>>(
    name: string,
    sequences: string[],
    opts?: PredictOptions,
  ): Promise<BatchPrediction<T>>;
  predictBatch<T extends object = Record<string, unknown>>(
    name: string,
    request: BatchRequest,
  ): Promise<BatchPrediction<T> | TypedBatchPrediction<T>>;
  predictBatch<T extends object = Record<string, unknown>>(
    name: string,
    what: string[] | BatchRequest,
    opts: PredictOptions = {},
  ): Promise<BatchPrediction<T> | TypedBatchPrediction<T>> {
    const req: BatchRequest = Array.isArray(what) ? { ...opts, sequences: what } : what;
    return this.request(
      'POST',
      `/models/${path(name)}/predict/batch`,
      { inputs: req.inputs, sequences: req.sequences, ...body(req) },
      req.signal,
    );
  }

  // -- jobs -----------------------------------------------------------------------------------

  /**
   * Submits a durable job (owned by this client's API key). Typed records are sent so the
   * gateway reads each back exactly as given, whatever its input looks like.
   */
  submitJob(job: JobSubmission, opts: { idempotencyKey?: string; signal?: AbortSignal } = {}): Promise<Job> {
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
    const headers = opts.idempotencyKey !== undefined ? { 'idempotency-key': opts.idempotencyKey } : undefined;
    return this.request('POST', '/v1/jobs', b, opts.signal, headers);
  }

  /** A job's status and progress. */
  job(id: string): Promise<Job> {
    return this.request('GET', `/v1/jobs/${path(id)}`);
  }

  /** This key's jobs (every job for an admin key), newest first. */
  jobs(
    filter: { status?: JobStatus; model?: string; limit?: number; offset?: number } = {},
  ): Promise<{ jobs: Job[]; total: number; limit: number; offset: number }> {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(filter)) if (v !== undefined) q.set(k, String(v));
    const qs = q.toString();
    return this.request('GET', `/v1/jobs${qs ? `?${qs}` : ''}`);
  }

  cancelJob(id: string): Promise<Job> {
    return this.request('POST', `/v1/jobs/${path(id)}/cancel`, {});
  }

  /** Polls a job until it is over (succeeded, failed or cancelled). */
  async waitForJob(
    id: string,
    opts: { intervalMs?: number; timeoutMs?: number; signal?: AbortSignal } = {},
  ): Promise<Job> {
    const until = opts.timeoutMs === undefined ? Infinity : Date.now() + opts.timeoutMs;
    for (;;) {
      const job = await this.job(id);
      if (job.status === 'succeeded' || job.status === 'failed' || job.status === 'cancelled') return job;
      if (opts.signal?.aborted) throw new IsomodelError('CANCELLED', 0, 'request aborted');
      if (Date.now() > until)
        throw new IsomodelError('TIMEOUT', 0, `job ${id} is still ${job.status} after ${opts.timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, opts.intervalMs ?? 250));
    }
  }

  /**
   * A job's results in input order, from index `from`. With `follow` (default) the answer ends when
   * the job does (within this client's timeout: wait for a long job with waitForJob first); without
   * it, what is there now.
   */
  async jobResults<T extends object = Record<string, unknown>>(
    id: string,
    opts: { from?: number; follow?: boolean; signal?: AbortSignal } = {},
  ): Promise<JobResult<T>[]> {
    const q = new URLSearchParams();
    if (opts.from !== undefined) q.set('from', String(opts.from));
    if (opts.follow !== undefined) q.set('follow', String(opts.follow));
    const qs = q.toString();
    const { res, text } = await this.send(
      'GET',
      `/v1/jobs/${path(id)}/results${qs ? `?${qs}` : ''}`,
      undefined,
      opts.signal,
    );
    if (!res.ok) this.fail(res, text);
    return text
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as JobResult<T>);
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

  /** Media as multipart (the other fields as form fields) or as a raw body (the fields in the query). */
  private async sendMedia<T>(
    route: string,
    sources: MediaUpload[],
    opts: MediaPredictOptions,
    upload: 'multipart' | 'raw',
  ): Promise<T> {
    const blobs = await Promise.all(sources.map((m) => mediaBlob(m, opts.format)));
    const fields = Object.entries(body(opts)).map(([k, v]): [string, string] => [
      k,
      typeof v === 'object' ? JSON.stringify(v) : String(v),
    ]);
    if (upload === 'raw' && blobs.length === 1 && /^(image|audio)\//.test(blobs[0]!.type)) {
      const qs = new URLSearchParams(fields).toString();
      return this.request('POST', `${route}${qs ? `?${qs}` : ''}`, new RawBody(blobs[0]!, blobs[0]!.type), opts.signal);
    }
    const form = new FormData();
    for (const [k, v] of fields) form.append(k, v);
    for (const b of blobs) form.append('file', b, b.name);
    return this.request('POST', route, new RawBody(form), opts.signal);
  }

  private async request<T>(
    method: string,
    route: string,
    payload?: unknown,
    signal?: AbortSignal,
    extraHeaders?: Record<string, string>,
  ): Promise<T> {
    const { res, text } = await this.send(method, route, payload, signal, extraHeaders);
    let env: Envelope<T>;
    try {
      env = JSON.parse(text) as Envelope<T>;
    } catch {
      throw new IsomodelError(
        res.ok ? 'INVALID_RESPONSE' : 'INTERNAL_ERROR',
        res.status,
        `not a JSON answer (HTTP ${res.status}): ${text.slice(0, 200)}`,
      );
    }
    if (!res.ok || env.success !== true) this.fail(res, text, env);
    return env.data as T;
  }

  /** Throws the error an answer carries. */
  private fail(res: Response, text: string, parsed?: Envelope<unknown>): never {
    let env = parsed;
    if (!env) {
      try {
        env = JSON.parse(text) as Envelope<unknown>;
      } catch {
        throw new IsomodelError(
          'INTERNAL_ERROR',
          res.status,
          `not a JSON answer (HTTP ${res.status}): ${text.slice(0, 200)}`,
        );
      }
    }
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

  /** One HTTP exchange within the client's timeout; transport failures become IsomodelError. */
  private async send(
    method: string,
    route: string,
    payload?: unknown,
    signal?: AbortSignal,
    extraHeaders?: Record<string, string>,
  ): Promise<{ res: Response; text: string }> {
    const headers: Record<string, string> = { accept: 'application/json', ...this.headers, ...extraHeaders };
    const init: RequestInit = { method, headers };
    if (payload instanceof RawBody) {
      // FormData sets its own content type, with the boundary.
      if (payload.contentType !== undefined) headers['content-type'] = payload.contentType;
      init.body = payload.body;
    } else if (payload !== undefined) {
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
      throw new IsomodelError('NETWORK_ERROR', 0, `cannot reach ${this.baseUrl}: ${err.message}`, {
        cause: String((err as { cause?: unknown }).cause ?? ''),
      });
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
    return { res, text };
  }
}

const BASE64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** Standard base64 of some bytes, without Buffer or btoa (the client runs anywhere fetch does). */
export function toBase64(bytes: Uint8Array): string {
  const out: string[] = [];
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out.push(BASE64[n >> 18]! + BASE64[(n >> 12) & 63]! + BASE64[(n >> 6) & 63]! + BASE64[n & 63]!);
  }
  if (i < bytes.length) {
    const n = (bytes[i]! << 16) | ((bytes[i + 1] ?? 0) << 8);
    out.push(BASE64[n >> 18]! + BASE64[(n >> 12) & 63]! + (i + 1 < bytes.length ? BASE64[(n >> 6) & 63]! : '=') + '=');
  }
  return out.join('');
}

const EXTENSION_FORMATS: Record<string, string> = {
  png: 'png',
  jpg: 'jpeg',
  jpeg: 'jpeg',
  gif: 'gif',
  bmp: 'bmp',
  webp: 'webp',
  wav: 'wav',
  flac: 'flac',
  ogg: 'ogg',
  oga: 'ogg',
  mp3: 'mp3',
};

/** Image or audio bytes (a Buffer, Uint8Array or ArrayBuffer) as an input; `format` (png, jpeg, wav…) is checked against the bytes. */
export function mediaInput(bytes: Uint8Array | ArrayBuffer, format?: string): MediaInput {
  const data = toBase64(bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes));
  return format === undefined ? { data } : { data, format };
}

/** An image or audio file as an input (Node, Deno, Bun): its extension names the format unless `format` does. */
export async function mediaFile(file: string, format?: string): Promise<MediaInput> {
  // Imported when called, so the client still loads where there is no file system (browsers).
  const fs = (await import('node:fs/promises' as string)) as { readFile(p: string): Promise<Uint8Array> };
  const ext = /\.([A-Za-z0-9]+)$/.exec(file)?.[1]?.toLowerCase();
  return mediaInput(await fs.readFile(file), format ?? (ext ? EXTENSION_FORMATS[ext] : undefined));
}

/** The format's media type (what a raw body or a form part is sent as). */
const MEDIA_TYPES: Record<string, string> = {
  png: 'image/png',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  bmp: 'image/bmp',
  webp: 'image/webp',
  wav: 'audio/wav',
  flac: 'audio/flac',
  ogg: 'audio/ogg',
  mp3: 'audio/mpeg',
};

/** A body sent as it is (bytes, a form), not as JSON. */
class RawBody {
  constructor(
    readonly body: Blob | FormData,
    readonly contentType?: string,
  ) {}
}

/** Bytes with a name and a media type, for a form part or a raw body. */
interface NamedBlob extends Blob {
  readonly name: string;
}

/** A source of media bytes as a Blob named for its form part; its type from `format`, else the extension, else the Blob's own. */
async function mediaBlob(media: MediaUpload, format: string | undefined): Promise<NamedBlob> {
  let bytes: Blob | Uint8Array;
  let name = 'upload';
  let ext: string | undefined;
  if (typeof media === 'string') {
    const fs = (await import('node:fs/promises' as string)) as { readFile(p: string): Promise<Uint8Array> };
    bytes = await fs.readFile(media);
    name = media.split(/[\\/]/).pop() || name;
    ext = /\.([A-Za-z0-9]+)$/.exec(media)?.[1]?.toLowerCase();
  } else if (media instanceof Uint8Array) bytes = media;
  else if (media instanceof ArrayBuffer) bytes = new Uint8Array(media);
  else {
    bytes = media;
    const n = (media as { name?: unknown }).name;
    if (typeof n === 'string' && n !== '') name = n;
  }
  const known = format ?? (ext ? EXTENSION_FORMATS[ext] : undefined);
  const type =
    (known !== undefined ? MEDIA_TYPES[known.toLowerCase()] : undefined) ?? (bytes instanceof Blob ? bytes.type : '');
  // Copied into a plain ArrayBuffer-backed array: a Buffer may sit in a shared pool.
  const blob = new Blob([bytes instanceof Blob ? bytes : new Uint8Array(bytes)], type ? { type } : {});
  return Object.assign(blob, { name }) as NamedBlob;
}

/**
 * A job record as the gateway's exchange reader takes it back unchanged: a typed input goes
 * inside {input: {input: …}} (so a JSON input with `sequence` or `input` keys is never read as
 * the exchange wrapper); a sequence as a flat record.
 */
function recordObject(r: JobRecord | string): unknown {
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

function body(opts: PredictOptions): Record<string, unknown> {
  const b: Record<string, unknown> = {};
  if (opts.task !== undefined) b.task_type = opts.task;
  if (opts.options !== undefined) b.options = opts.options;
  if (opts.sequenceType !== undefined) b.sequence_type = opts.sequenceType;
  if (opts.timeoutMs !== undefined) b.timeout_ms = opts.timeoutMs;
  if (opts.priority !== undefined) b.priority = opts.priority;
  return b;
}
