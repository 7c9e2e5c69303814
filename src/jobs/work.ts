// The engine shared by server jobs and the offline CLI: chunks of records go to a model's
// deployment (one batch request per chunk and task), a bounded number of chunks in flight.
// Overload (QUEUE_FULL) and a model that is still loading are waited out; a chunk that fails as
// a whole (worker crash, timeout) is split until the one failing record is found, so a bad
// record fails only itself and never the job. Every record is validated for its task's input
// type (validation/inputs) when it runs; one that is invalid gets its error as its result.
import { performance } from 'node:perf_hooks';
import { IsoError } from '../errors.js';
import type { Manifest, TaskSpec } from '../manifest/schema.js';
import type { ModelDeployment } from '../scheduler/deployment.js';
import type { ModelRegistry } from '../scheduler/registry.js';
import { taskRule } from '../validation/sequence.js';
import { takesStrings, validateInput, type ValidInput } from '../validation/inputs/index.js';
import type { ItemOutput, WorkItem } from '../worker/protocol.js';
import { errorRecord, successRecord, type ItemErrorBody, type OutputRecord } from './formats.js';
import { setOwn, type InputRecord } from './input.js';
import { resolveTask } from '../api/predict-request.js';

/** One record of a job, with its position in the job's input. */
export interface JobItem {
  index: number;
  input: InputRecord;
}

/** Where model calls go: the gateway's registry, or deployments the CLI started itself. */
export interface ModelExecutor {
  /** The manifest of a known model (throws MODEL_NOT_FOUND). */
  manifest(model: string): Manifest;
  /** One batch request; throws an IsoError when the request fails as a whole. */
  submit(
    model: string,
    req: { task: string; items: WorkItem[]; signal: AbortSignal; priority?: number },
  ): Promise<{ outputs: ItemOutput[]; version: string }>;
}

export function deploymentSubmit(
  dep: ModelDeployment,
  req: { task: string; items: WorkItem[]; signal: AbortSignal; priority?: number },
): Promise<{ outputs: ItemOutput[]; version: string }> {
  return dep
    .submit({ task: req.task, items: req.items, signal: req.signal, priority: req.priority })
    .then((outputs) => ({ outputs, version: dep.version }));
}

/** The gateway's models, as the registry serves them (blue/green swaps included). */
export function registryExecutor(registry: ModelRegistry): ModelExecutor {
  return {
    manifest: (model) => registry.package(model).manifest,
    submit: (model, req) => deploymentSubmit(registry.serving(model), req),
  };
}

/** Thrown when a job cannot go on at all (unknown model, a model that never comes up). */
export class JobFatalError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'JobFatalError';
  }
}

/** Runs a lookup the job cannot go on without: its failure fails the whole job, with the error's code (else `code`). */
export function fatalUnless<T>(lookup: () => T, code: string): T {
  try {
    return lookup();
  } catch (e) {
    throw new JobFatalError(e instanceof IsoError ? e.code : code, (e as Error).message);
  }
}

export interface WorkContext {
  executor: ModelExecutor;
  signal: AbortSignal;
  priority?: number;
  /** How long a model may stay unavailable (loading, failed, overloaded) before the job fails. */
  maxWaitMs: number;
}

/** Errors worth waiting out: the model is busy or not up yet. */
const RETRYABLE = new Set(['QUEUE_FULL', 'RATE_LIMITED', 'MODEL_NOT_LOADED']);

/** Whether a job waits this error out; a model that needs weights or packages will not get them by waiting. */
export function isRetryable(err: IsoError): boolean {
  const status = (err.details as { status?: unknown } | undefined)?.status;
  return RETRYABLE.has(err.code) && status !== 'needs_weights' && status !== 'needs_packages';
}

export function abortError(): Error {
  const e = new Error('aborted');
  e.name = 'AbortError';
  return e;
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError());
    const onAbort = (): void => {
      clearTimeout(t);
      reject(abortError());
    };
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export function itemError(e: unknown): ItemErrorBody {
  if (e instanceof IsoError) {
    const details = typeof e.details === 'object' && e.details !== null ? (e.details as Record<string, unknown>) : {};
    return { ...details, code: e.code, message: e.message };
  }
  return { code: 'INTERNAL_ERROR', message: (e as Error).message ?? String(e) };
}

export interface CallResult {
  outputs: ItemOutput[];
  version: string;
  /** Wall time of the model call that produced each output. */
  ms: number[];
}

/**
 * One batch of items through a model, with waiting and splitting: every item ends up with its
 * output or its own error. Throws only on abort or a JobFatalError.
 */
export async function callModel(ctx: WorkContext, model: string, task: string, items: WorkItem[]): Promise<CallResult> {
  let waitingSince: number | null = null;
  let backoff = 100;
  for (;;) {
    if (ctx.signal.aborted) throw abortError();
    const t0 = performance.now();
    try {
      const r = await ctx.executor.submit(model, { task, items, signal: ctx.signal, priority: ctx.priority });
      const ms = performance.now() - t0;
      return { outputs: r.outputs, version: r.version, ms: items.map(() => ms) };
    } catch (e) {
      if (ctx.signal.aborted) throw abortError();
      const err = e instanceof IsoError ? e : new IsoError('INTERNAL_ERROR', (e as Error).message);
      if (err.code === 'MODEL_NOT_FOUND') throw new JobFatalError(err.code, err.message);
      if (err.code === 'MODEL_NOT_LOADED' && !isRetryable(err)) throw new JobFatalError(err.code, err.message);
      if (RETRYABLE.has(err.code)) {
        waitingSince ??= Date.now();
        if (Date.now() - waitingSince > ctx.maxWaitMs)
          throw new JobFatalError(err.code, `gave up after ${Math.round(ctx.maxWaitMs / 1000)} s: ${err.message}`);
        const wait = err.retryAfterS !== undefined && err.code !== 'QUEUE_FULL' ? err.retryAfterS * 1000 : backoff;
        backoff = Math.min(backoff * 2, 2000);
        await sleep(wait, ctx.signal);
        continue;
      }
      const ms = performance.now() - t0;
      if (items.length === 1)
        return { outputs: [{ error: itemError(err) }], version: ctx.executor.manifest(model).version, ms: [ms] };
      // A whole-batch failure (crash, timeout): find the culprit by halves; the rest still succeed.
      const mid = Math.ceil(items.length / 2);
      const a = await callModel(ctx, model, task, items.slice(0, mid));
      const b = await callModel(ctx, model, task, items.slice(mid));
      return { outputs: [...a.outputs, ...b.outputs], version: a.version, ms: [...a.ms, ...b.ms] };
    }
  }
}

export function isItemError(o: ItemOutput): o is { error: ItemErrorBody } {
  const e = (o as { error?: unknown }).error;
  return typeof e === 'object' && e !== null && typeof (e as { code?: unknown }).code === 'string';
}

/** Model options for one record: job options < organism < parameters. */
export function recordOptions(
  base: Record<string, unknown>,
  input: InputRecord,
  allowed?: (key: string) => boolean,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  // Option names come from requests and files: set as own properties, never as a prototype.
  const put = (k: string, v: unknown): void => {
    if (!allowed || allowed(k)) setOwn(out, k, v);
  };
  for (const [k, v] of Object.entries(base)) put(k, v);
  if (input.organism !== undefined) put('organism', input.organism);
  for (const [k, v] of Object.entries(input.parameters ?? {})) put(k, v);
  return out;
}

export { taskRule };

/**
 * Validates a record's input for `task`: `raw` is its `input` (any type), or its `sequence` when
 * `asSequence` (a string field, taken by tasks whose input a string can be: sequence, text,
 * image, audio). `field` names it in errors. Sequence tasks behave exactly as they always have.
 */
export function validateRecordInput(task: TaskSpec, raw: unknown, field: string, asSequence: boolean): ValidInput {
  if (task.input_type !== 'sequence') {
    if (raw === undefined)
      throw new IsoError(
        'INVALID_REQUEST',
        `the record has no input: task ${task.name} takes ${task.input_type} input (give it "input")`,
      );
    if (asSequence && !takesStrings(task.input_type))
      throw new IsoError(
        'INVALID_REQUEST',
        `task ${task.name} takes ${task.input_type} input: give the record "input", not "sequence"`,
      );
  }
  return validateInput(task, raw, field);
}

/** A record's work item for `task` (its input validated) with its options. */
export function recordItem(task: TaskSpec, r: InputRecord, options: Record<string, unknown>): WorkItem {
  const typed = r.input !== undefined;
  const v = validateRecordInput(task, typed ? r.input : r.sequence, typed ? 'input' : 'sequence', !typed);
  return { ...v.payload, options };
}

/** What a plain (single-model) job runs. */
export interface PredictSpec {
  kind: 'predict';
  model: string;
  /** Default task; a record's own task wins. Optional for one-task models. */
  task?: string;
  options: Record<string, unknown>;
}

/** Runs one chunk of a single-model job: one record per item, in chunk order. */
export async function processPredictChunk(
  spec: PredictSpec,
  chunk: JobItem[],
  ctx: WorkContext,
): Promise<OutputRecord[]> {
  const manifest = fatalUnless(() => ctx.executor.manifest(spec.model), 'MODEL_NOT_FOUND');
  const records = new Array<OutputRecord>(chunk.length);
  const groups = new Map<string, { pos: number[]; items: WorkItem[] }>();
  chunk.forEach((it, pos) => {
    const meta = {
      request_id: it.input.id,
      processing_time_ms: 0,
      service: spec.model,
      version: manifest.version,
      index: it.index,
    };
    let taskName = it.input.task ?? spec.task ?? manifest.tasks[0]!.name;
    try {
      const task = resolveTask(manifest, it.input.task ?? spec.task);
      taskName = task.name;
      const item = recordItem(task, it.input, recordOptions(spec.options, it.input));
      const g = groups.get(task.name) ?? { pos: [], items: [] };
      g.pos.push(pos);
      g.items.push(item);
      groups.set(task.name, g);
    } catch (e) {
      records[pos] = errorRecord(taskName, itemError(e), meta);
    }
  });
  for (const [task, g] of groups) {
    const r = await callModel(ctx, spec.model, task, g.items);
    g.pos.forEach((pos, i) => {
      const out = r.outputs[i] ?? {
        error: { code: 'PREDICTION_FAILED', message: 'the model returned no output for this record' },
      };
      const it = chunk[pos]!;
      const meta = {
        request_id: it.input.id,
        processing_time_ms: round(r.ms[i] ?? 0),
        service: spec.model,
        version: r.version,
        index: it.index,
      };
      records[pos] = isItemError(out) ? errorRecord(task, out.error, meta) : successRecord(task, out, meta);
    });
  }
  return records;
}

export function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

export type ChunkProcessor = (chunk: JobItem[], signal: AbortSignal) => Promise<OutputRecord[]>;

export interface RunChunksOptions {
  /** Chunks in input order; read lazily, so a huge job never sits in memory. */
  chunks: Iterable<JobItem[]> | AsyncIterable<JobItem[]>;
  /** Chunks in flight at once. */
  concurrency: number;
  process: ChunkProcessor;
  /** Called once per finished chunk (in completion order, not input order); a promise it returns holds the chunk's slot until it settles. */
  commit: (chunk: JobItem[], records: OutputRecord[]) => unknown;
  signal: AbortSignal;
}

/** Runs every chunk with at most `concurrency` in flight; the first fatal error stops the rest. */
export async function runChunks(opts: RunChunksOptions): Promise<void> {
  const inner = new AbortController();
  const onAbort = (): void => inner.abort();
  opts.signal.addEventListener('abort', onAbort, { once: true });
  if (opts.signal.aborted) inner.abort();
  const running = new Set<Promise<void>>();
  let failure: unknown = null;
  try {
    for await (const chunk of opts.chunks) {
      if (failure !== null || inner.signal.aborted) break;
      const p: Promise<void> = opts
        .process(chunk, inner.signal)
        .then(async (records) => {
          if (!inner.signal.aborted) await opts.commit(chunk, records);
        })
        .catch((e: unknown) => {
          if (failure === null && (e as Error).name !== 'AbortError') failure = e;
          inner.abort();
        })
        .finally(() => running.delete(p));
      running.add(p);
      if (running.size >= opts.concurrency) await Promise.race(running);
    }
    await Promise.all(running);
  } finally {
    opts.signal.removeEventListener('abort', onAbort);
  }
  if (failure !== null) throw failure;
  if (opts.signal.aborted) throw abortError();
}

/** Groups items into chunks of `size`, lazily. */
export function* chunked(items: Iterable<JobItem>, size: number): Generator<JobItem[]> {
  let chunk: JobItem[] = [];
  for (const it of items) {
    chunk.push(it);
    if (chunk.length >= size) {
      yield chunk;
      chunk = [];
    }
  }
  if (chunk.length) yield chunk;
}
