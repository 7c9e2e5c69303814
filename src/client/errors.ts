// The error an isomodel answer (or a failed exchange) becomes, and its codes.

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
