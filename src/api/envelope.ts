// The response envelope every native route uses:
// {success, message, data | error:{code,details}, timestamp, request_id}.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { IsoError } from '../errors.js';
import { storageUnavailable } from '../store/storage-fault.js';

export interface OkEnvelope<T> {
  success: true;
  message: string;
  data: T;
  timestamp: string;
  request_id: string;
}

export interface ErrorEnvelope {
  success: false;
  message: string;
  error: { code: string; details: unknown };
  timestamp: string;
  request_id: string;
}

let lastMs = 0;
let lastIso = '';
/** The current time as ISO 8601, formatted at most once per millisecond: answers under load share it. */
export function isoNow(): string {
  const ms = Date.now();
  if (ms !== lastMs) {
    lastMs = ms;
    lastIso = new Date(ms).toISOString();
  }
  return lastIso;
}

export function okEnvelope<T>(req: FastifyRequest, data: T, message = 'ok'): OkEnvelope<T> {
  return { success: true, message, data, timestamp: isoNow(), request_id: req.id };
}

export function errorEnvelope(req: FastifyRequest, err: IsoError): ErrorEnvelope {
  return {
    success: false,
    message: err.message,
    error: { code: err.code, details: err.details ?? err.message },
    timestamp: isoNow(),
    request_id: req.id,
  };
}

export function sendError(req: FastifyRequest, reply: FastifyReply, err: IsoError): FastifyReply {
  if (err.retryAfterS !== undefined) void reply.header('retry-after', String(err.retryAfterS));
  return reply.code(err.status).send(errorEnvelope(req, err));
}

/** Maps anything thrown inside a route to an IsoError, never leaking a stack to clients. */
export function toIsoError(e: unknown): IsoError {
  if (e instanceof IsoError) return e;
  // The state dir's disk full, read-only or failing: 507 naming it (and health degrades), not a 500.
  const storage = storageUnavailable(e);
  if (storage) return storage;
  // `throw null` or `throw undefined` (a library's, not ours) is internal too, not a crash in the error handler.
  const err = (e ?? {}) as { statusCode?: number; code?: string; message?: string; validation?: unknown };
  const status = err.statusCode ?? 500;
  if (status === 413)
    return new IsoError('PAYLOAD_TOO_LARGE', 'request body is too large', { limit: 'see body_limit_bytes' });
  if (status === 415) return new IsoError('INVALID_REQUEST', 'content-type must be application/json');
  if (status === 429) return new IsoError('RATE_LIMITED', err.message ?? 'too many requests');
  if (status >= 400 && status < 500)
    return new IsoError(
      'INVALID_REQUEST',
      err.message ?? 'invalid request',
      err.code ? { fastify_code: err.code } : undefined,
    );
  return new IsoError('INTERNAL_ERROR', 'internal error');
}
