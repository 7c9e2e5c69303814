// One HTTP exchange with the gateway: JSON or a raw body out, the envelope read back, transport
// failures, timeouts and error envelopes turned into IsomodelError.
import { IsomodelError } from './errors.js';
import type { ClientOptions, Envelope } from './types.js';

/** A body sent as it is (bytes, a form), not as JSON. */
export class RawBody {
  constructor(
    readonly body: Blob | FormData,
    readonly contentType?: string,
  ) {}
}

export class Transport {
  private readonly headers: Record<string, string>;
  private readonly timeoutMs: number;
  private readonly fetchImpl: typeof fetch;

  constructor(
    readonly baseUrl: string,
    opts: ClientOptions,
  ) {
    this.headers = { ...(opts.apiKey ? { authorization: `Bearer ${opts.apiKey}` } : {}), ...(opts.headers ?? {}) };
    this.timeoutMs = opts.timeoutMs ?? 60_000;
    const f = opts.fetch ?? globalThis.fetch;
    if (typeof f !== 'function') throw new Error('no fetch available: pass opts.fetch');
    this.fetchImpl = f.bind(globalThis);
  }

  /** An exchange whose answer is an envelope: its data, or its error thrown. */
  async request<T>(
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
  fail(res: Response, text: string, parsed?: Envelope<unknown>): never {
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
  async send(
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
