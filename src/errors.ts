// The stable error codes of every isomodel surface, and the HTTP status each maps to.
export const ERROR_STATUS = {
  INVALID_REQUEST: 400,
  INVALID_SEQUENCE: 400,
  SEQUENCE_TOO_LONG: 400,
  /** Valid letters, but more of them ambiguous (N, R, …, protein X) than the task accepts: nothing to predict from. */
  LOW_INFORMATION_SEQUENCE: 400,
  /** A non-sequence input of the wrong shape: broken base64, JSON failing its schema, a bad tensor, a malformed chat. */
  INVALID_INPUT: 400,
  /** Text or chat longer than the task's max_length (characters). */
  INPUT_TOO_LONG: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  REQUEST_TIMEOUT: 408,
  MODEL_NOT_FOUND: 404,
  NOT_FOUND: 404,
  /** The thing to create exists already, or is being made by another request (a download in progress). */
  CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  /** Image or audio bytes the task does not take, or that are not the file they claim to be (truncated, wrong header). */
  UNSUPPORTED_MEDIA_TYPE: 415,
  /** Well-formed but outside what the operation allows (e.g. replicas outside 0..100). */
  VALIDATION_ERROR: 422,
  /** An archive or a hub listing that would write outside its folder (absolute path, `..`, a link out), or over the size limit. */
  UNSAFE_ARCHIVE: 422,
  /** Request line and headers over Node's max header size (answered before routing). */
  HEADERS_TOO_LARGE: 431,
  RATE_LIMITED: 429,
  QUEUE_FULL: 429,
  /** A per-key quota (queued jobs, queued job records) is used up; Retry-After when it can be told. */
  QUOTA_EXCEEDED: 429,
  CANCELLED: 499,
  PREDICTION_FAILED: 500,
  INTERNAL_ERROR: 500,
  MODEL_NOT_LOADED: 503,
  /** A download (package or weights) failed: the source answered an error, or the bytes did not match their size or digest. */
  DOWNLOAD_FAILED: 502,
  PREDICTION_TIMEOUT: 504,
  /** The state dir cannot be written or read (disk full, read-only, I/O error): src/store/storage-fault.ts. */
  STORAGE_UNAVAILABLE: 507,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export function isErrorCode(code: string): code is ErrorCode {
  return Object.prototype.hasOwnProperty.call(ERROR_STATUS, code);
}

export class IsoError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
    /** Seconds a client should wait before retrying (429/503). */
    readonly retryAfterS?: number,
  ) {
    // These are expected outcomes (bad input, full queue), thrown on hot paths: a stack trace
    // would cost more than the rest of the request and is never shown to anyone.
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(message);
    Error.stackTraceLimit = limit;
    this.name = 'IsoError';
    this.status = ERROR_STATUS[code];
  }
}

/** A worker-reported code, kept when it is one of ours, else folded into PREDICTION_FAILED. */
export function fromWorkerError(code: string, message: string): IsoError {
  if (isErrorCode(code)) return new IsoError(code, message);
  return new IsoError('PREDICTION_FAILED', message, { worker_code: code });
}
