// The shapes of the isomodel REST API as the client sees them: models, predictions of every input
// type, jobs, and the error codes. Mirrors of the gateway's own types (src/jobs, src/scheduler):
// the client is published alone (clients/typescript), so it cannot import them.

export type SequenceType = 'DNA' | 'RNA' | 'protein';
export type ModelStatus =
  'unloaded' | 'loading' | 'ready' | 'failed' | 'needs_weights' | 'needs_packages' | 'draining' | 'stopped';
/** What a model task takes (its manifest `input_type`). */
export type InputType = 'sequence' | 'text' | 'json' | 'tensor' | 'image' | 'audio' | 'chat';

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
  metadata: ResultMetadata;
}

/** Where a job record's result came from (the gateway's jobs/formats.ts writes it). */
export interface ResultMetadata {
  request_id: string;
  processing_time_ms: number;
  service: string;
  version: string | null;
  /** Position of the record in the job's input (0-based). */
  index: number;
  [k: string]: unknown;
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
