// @isomodel/client: a typed client for the isomodel REST API. No dependencies: it needs only a
// global fetch (Node 18+, Deno, Bun, browsers). Published from clients/typescript/, which compiles
// this folder (index.ts and what it imports); see clients/typescript/README.md.
//   index.ts      IsomodelClient: one method per endpoint
//   types.ts      the API's shapes          errors.ts   IsomodelError and the error codes
//   transport.ts  one HTTP exchange          requests.ts request bodies in the gateway's names
//   media.ts      image and audio inputs and uploads
import { IsomodelError } from './errors.js';
import { mediaBlob } from './media.js';
import { body, jobBody, path } from './requests.js';
import { RawBody, Transport } from './transport.js';
import type {
  AnyPrediction,
  BatchPrediction,
  BatchRequest,
  ClientOptions,
  Health,
  Job,
  JobResult,
  JobStatus,
  JobSubmission,
  MediaPredictOptions,
  MediaUpload,
  ModelInfo,
  ModelList,
  ModelSummary,
  Prediction,
  PredictOptions,
  PredictRequest,
  ReloadSummary,
  TypedBatchPrediction,
  TypedPrediction,
} from './types.js';

export * from './types.js';
export { CLIENT_ERROR_CODES, IsomodelError, SERVER_ERROR_CODES, type ErrorCode } from './errors.js';
export { mediaFile, mediaInput, toBase64 } from './media.js';

export class IsomodelClient {
  readonly baseUrl: string;
  private readonly http: Transport;

  constructor(baseUrl = 'http://127.0.0.1:8000', opts: ClientOptions = {}) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
    this.http = new Transport(this.baseUrl, opts);
  }

  /** Health of the default model, or of `model`. */
  health(model?: string): Promise<Health> {
    return this.http.request('GET', model ? `/models/${path(model)}/health` : '/health');
  }

  /** Every installed package with its status. */
  models(): Promise<ModelList> {
    return this.http.request('GET', '/v1/models');
  }

  modelInfo(name: string): Promise<ModelInfo> {
    return this.http.request('GET', `/models/${path(name)}/info`);
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
    return this.http.request(
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
    return this.http.request(
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
    const b = jobBody(job);
    const headers = opts.idempotencyKey !== undefined ? { 'idempotency-key': opts.idempotencyKey } : undefined;
    return this.http.request('POST', '/v1/jobs', b, opts.signal, headers);
  }

  /** A job's status and progress. */
  job(id: string): Promise<Job> {
    return this.http.request('GET', `/v1/jobs/${path(id)}`);
  }

  /** This key's jobs (every job for an admin key), newest first. */
  jobs(
    filter: { status?: JobStatus; model?: string; limit?: number; offset?: number } = {},
  ): Promise<{ jobs: Job[]; total: number; limit: number; offset: number }> {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(filter)) if (v !== undefined) q.set(k, String(v));
    const qs = q.toString();
    return this.http.request('GET', `/v1/jobs${qs ? `?${qs}` : ''}`);
  }

  cancelJob(id: string): Promise<Job> {
    return this.http.request('POST', `/v1/jobs/${path(id)}/cancel`, {});
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
    const { res, text } = await this.http.send(
      'GET',
      `/v1/jobs/${path(id)}/results${qs ? `?${qs}` : ''}`,
      undefined,
      opts.signal,
    );
    if (!res.ok) this.http.fail(res, text);
    return text
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as JobResult<T>);
  }

  /** Loads a model and waits until it is ready. */
  load(name: string): Promise<ModelSummary & { load_time_ms: number }> {
    return this.http.request('POST', `/v1/models/${path(name)}/load`, {});
  }

  /** Drains a model and stops its workers. */
  unload(name: string): Promise<ModelSummary> {
    return this.http.request('POST', `/v1/models/${path(name)}/unload`, {});
  }

  /** Re-reads the models dir: new, changed (blue/green swap), removed packages. */
  reload(): Promise<ReloadSummary> {
    return this.http.request('POST', '/v1/models/reload', {});
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
      return this.http.request(
        'POST',
        `${route}${qs ? `?${qs}` : ''}`,
        new RawBody(blobs[0]!, blobs[0]!.type),
        opts.signal,
      );
    }
    const form = new FormData();
    for (const [k, v] of fields) form.append(k, v);
    for (const b of blobs) form.append('file', b, b.name);
    return this.http.request('POST', route, new RawBody(form), opts.signal);
  }
}
