// The common inference path, below every surface (native REST, Agent API, Open Inference v2,
// OpenAI, the deployment API, MCP):
//   serving(): model id (+ sticky key) -> the deployment that answers (version, traffic split)
//   the surface validates its input against that deployment's manifest (validation/inputs)
//   run():     submit with deadline, priority, cancellation, streaming and progress
//   outcome:   stats, metrics and the request log, once (outcome.ts)
// A surface only translates its protocol to a Work and the outputs back to its answer.
import { fromWorkerError } from '../errors.js';
import type { TaskSpec } from '../manifest/schema.js';
import { CancelToken, type CancelSignal } from '../scheduler/cancel.js';
import type { ModelDeployment } from '../scheduler/deployment.js';
import { isItemError, type ItemOutput, type WorkItem } from '../worker/protocol.js';
import type { InferenceContext } from './context.js';
import type { RequestOutcome } from './outcome.js';

/** What a surface asks a deployment to do, once its input is validated. */
export interface Work {
  task: TaskSpec;
  items: WorkItem[];
  /** Overall deadline, queue time included (default: the manifest's timeout plus an allowance). */
  timeoutMs?: number;
  /** -10 … 10, higher first. */
  priority?: number;
}

export interface RunOptions {
  /** Cancels what is still queued (and the worker's batch when nobody else waits on it). */
  signal?: CancelSignal;
  /** Streaming: each chunk a worker sends for item `index`. */
  onChunk?: (index: number, data: unknown) => void;
  /**
   * Progress: the items go in chunks of `chunkSize`, submitted together (the deployment batches
   * them and spreads them over replicas as usual); `report` is awaited as each chunk completes.
   */
  progress?: { chunkSize: number; report: (done: number, total: number) => Promise<void> };
}

/**
 * The deployment that serves `id` (`name` or `name@version`; a traffic split picks the version,
 * pinned by `sticky`). MODEL_NOT_FOUND / MODEL_NOT_LOADED otherwise. Recorded on the outcome.
 */
export function serving(ctx: InferenceContext, outcome: RequestOutcome, id: string, sticky?: string): ModelDeployment {
  const dep = ctx.registry.serving(id, sticky);
  outcome.dep = dep;
  return dep;
}

/**
 * Submits validated work to the deployment and notes it on the outcome (task, item count); one
 * output (or item error) per item, in order.
 */
export function run(
  outcome: RequestOutcome,
  dep: ModelDeployment,
  work: Work,
  opts: RunOptions = {},
): Promise<ItemOutput[]> {
  outcome.dep ??= dep;
  outcome.task = work.task.name;
  outcome.sequences = work.items.length;
  return submit(dep, work, opts);
}

/** run() without the outcome: for a surface that submits several works under one request (deployments' batch_inference). */
export async function submit(dep: ModelDeployment, work: Work, opts: RunOptions = {}): Promise<ItemOutput[]> {
  const { signal, onChunk, progress } = opts;
  const base = {
    task: work.task.name,
    timeoutMs: work.timeoutMs,
    priority: work.priority,
    signal,
    ...(onChunk && { stream: true, onChunk }),
  };
  if (!progress) return dep.submit({ ...base, items: work.items });
  // One chunk failing cancels the others.
  const token = new CancelToken();
  const onAbort = (): void => token.abort();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const size = Math.max(1, progress.chunkSize);
    const total = work.items.length;
    let done = 0;
    const parts: Promise<ItemOutput[]>[] = [];
    for (let i = 0; i < total; i += size) {
      parts.push(
        dep.submit({ ...base, signal: token, items: work.items.slice(i, i + size) }).then(async (out) => {
          done += out.length;
          await progress.report(done, total);
          return out;
        }),
      );
    }
    try {
      return (await Promise.all(parts)).flat();
    } catch (e) {
      token.abort();
      throw e;
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

/** An item's output, or its error as the request's error (a worker's code mapped to ours). */
export function outputOf(out: ItemOutput): ItemOutput {
  if (isItemError(out)) throw fromWorkerError(out.error.code, out.error.message);
  return out;
}

/** The output without `confidence` unless the request keeps it (option return_confidence, default true). */
export function withoutConfidence(o: ItemOutput, keep: boolean): ItemOutput {
  if (keep || !('confidence' in o)) return o;
  const { confidence: _drop, ...rest } = o;
  return rest;
}

export interface ItemResults {
  /** Per item: what names it, then its output or its error. */
  predictions: Record<string, unknown>[];
  failed: number;
}

/**
 * The per-item answer of a batch: `which(i)` names item i (a sequence echoed, or an index),
 * `about(i)` adds to a success only; an item's failure is `{...which, error}`.
 */
export function itemResults(
  outputs: ItemOutput[],
  which: (i: number) => Record<string, unknown>,
  keepConfidence: boolean,
  about?: (i: number) => Record<string, unknown>,
): ItemResults {
  let failed = 0;
  const predictions = outputs.map((out, i) => {
    if (isItemError(out)) {
      failed++;
      return { ...which(i), error: out.error };
    }
    return { ...which(i), ...about?.(i), ...withoutConfidence(out, keepConfidence) };
  });
  return { predictions, failed };
}

/** The `errors` detail of a batch whose every item failed: each item's error with its index. */
export function everyItemFailed(predictions: Record<string, unknown>[]): { index: number }[] {
  return predictions.map((p, index) => ({ index, ...(p as { error: unknown }) }));
}
