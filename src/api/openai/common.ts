// What the three OpenAI endpoints share: the model named in the body (with `:task`), submitting
// with cancel on disconnect, the outcome recorded once, item errors, input validation naming the
// body field, and the head of every answer (id, created, model, usage).
import { randomUUID } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { cancelOnDisconnect } from '../disconnect.js';
import { IsoError, fromWorkerError } from '../../errors.js';
import type { GatewayContext } from '../context.js';
import type { Manifest, TaskSpec } from '../../manifest/schema.js';
import type { ModelDeployment } from '../../scheduler/deployment.js';
import { callerOf } from '../caller.js';
import { RequestOutcome } from '../../inference/outcome.js';
import { run, serving, type RunOptions, type Work } from '../../inference/run.js';
import { validateInput, type ValidInput } from '../../validation/inputs/index.js';
import { isItemError, type ItemOutput } from '../../worker/protocol.js';
import { toIsoError } from '../envelope.js';
import { resolveTask } from '../predict-request.js';
import { stickyKey } from '../sticky.js';
import { streamFailed, withParam } from '../openai-shapes.js';
import { EventStream } from '../sse.js';

/**
 * The body's `model`: `name`, `name@version`, or either with `:task` (model names cannot contain a
 * colon). Without a task, `defaultTask` picks one: a task name, or a function of the manifest
 * (undefined: the model's default task). The body's `user` is the sticky key when no header gives one.
 */
export function resolveModel(
  gw: GatewayContext,
  outcome: RequestOutcome,
  req: FastifyRequest,
  model: string,
  defaultTask?: string | ((m: Manifest) => string | undefined),
): { dep: ModelDeployment; task: TaskSpec } {
  const colon = model.indexOf(':');
  const name = colon === -1 ? model : model.slice(0, colon);
  outcome.model = name;
  try {
    const dep = serving(gw, outcome, name, stickyKey(req, (req.body as { user?: unknown }).user));
    const taskName =
      colon !== -1
        ? model.slice(colon + 1)
        : typeof defaultTask === 'function'
          ? defaultTask(dep.pkg.manifest)
          : defaultTask;
    const task = resolveTask(dep.pkg.manifest, taskName);
    outcome.task = task.name;
    return { dep, task };
  } catch (e) {
    throw e instanceof IsoError ? withParam(e, 'model') : e;
  }
}

/** Queues work, cancelling it (and the worker's stream) if the client disconnects first. */
export function submit(
  reply: FastifyReply,
  outcome: RequestOutcome,
  dep: ModelDeployment,
  work: Work,
  opts: Omit<RunOptions, 'signal'> = {},
): Promise<ItemOutput[]> {
  return cancelOnDisconnect(reply, (signal) => run(outcome, dep, work, { ...opts, signal }));
}

/** The outcome of an OpenAI request; its model is the body's (before `:task`), once the body parses. */
function outcomeOf(gw: GatewayContext, req: FastifyRequest, route: string): RequestOutcome {
  return new RequestOutcome(gw, callerOf(req), route);
}

/** Records the failure as the error handler will answer it (toIsoError), logging what is not ours. */
function failed(outcome: RequestOutcome, req: FastifyRequest, e: unknown): IsoError {
  const err = toIsoError(e);
  if (err.code === 'INTERNAL_ERROR' && !(e instanceof IsoError))
    req.log.error({ err: e, reqId: req.id }, 'unhandled error');
  return outcome.failed(e, err);
}

export function itemOutput(out: ItemOutput | undefined, index: number, many: boolean): ItemOutput {
  if (!out) throw new IsoError('PREDICTION_FAILED', 'the model returned no output');
  if (!isItemError(out)) return out;
  const err = fromWorkerError(out.error.code, out.error.message);
  throw many ? new IsoError(err.code, `input[${index}]: ${err.message}`, { index }) : err;
}

/**
 * validateInput for one field of an OpenAI body, its error naming the body field (`param`) and,
 * in a list, the index.
 */
export function validated(task: TaskSpec, raw: unknown, field: string, param: string, index?: number): ValidInput {
  try {
    return validateInput(task, raw, field);
  } catch (e) {
    if (!(e instanceof IsoError)) throw e;
    throw withParam(
      index === undefined
        ? e
        : new IsoError(e.code, e.message, { index, ...(typeof e.details === 'object' ? (e.details as object) : {}) }),
      param,
    );
  }
}

/** `n` (and `best_of`) other than 1 are refused: one choice per prompt. */
export function onlyOne(value: number | null | undefined, param: string): void {
  if (value !== undefined && value !== null && value !== 1)
    throw withParam(new IsoError('INVALID_REQUEST', `${param} must be 1`), param);
}

/** What every answer and chunk of a completion starts with. */
export interface AnswerHead {
  id: string;
  object: string;
  created: number;
  model: string;
  system_fingerprint: null;
}

/** The heads of one request's answer or chunks: one id (`prefix-uuid`) and creation time for all of them. */
export function answerHeads(prefix: string, model: string): (object: string) => AnswerHead {
  const id = `${prefix}-${randomUUID()}`;
  const created = Math.floor(Date.now() / 1000);
  return (object) => ({ id, object, created, model, system_fingerprint: null });
}

/** OpenAI's usage, counting prompt and completion in code points. */
export function usageOf(promptTokens: number, completionTokens: number) {
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
  };
}

/** The text an output or a stream chunk carries (`text`), or none. */
export function textOf(data: unknown): string | undefined {
  const text = (data as { text?: unknown } | null)?.text;
  return typeof text === 'string' ? text : undefined;
}

/** A chunk's text: its `text` field when it has one, else the chunk as JSON. */
export function chunkText(data: unknown): string {
  return textOf(data) ?? JSON.stringify(data);
}

/**
 * One OpenAI request: its outcome recorded once, a failure answered in OpenAI's shape (in-band
 * once `openStream()` has opened the event stream, else by the scope's error handler).
 */
export async function answer(
  gw: GatewayContext,
  req: FastifyRequest,
  reply: FastifyReply,
  route: string,
  handle: (outcome: RequestOutcome, openStream: () => EventStream) => Promise<unknown>,
): Promise<unknown> {
  const outcome = outcomeOf(gw, req, route);
  let sse: EventStream | null = null;
  try {
    return await handle(outcome, () => (sse = new EventStream(req, reply)));
  } catch (e) {
    return streamFailed(sse, failed(outcome, req, e));
  }
}

/** The end of a stream that went well: OpenAI's `[DONE]`, the outcome recorded. */
export function endStream(events: EventStream, outcome: RequestOutcome): FastifyReply {
  events.write('[DONE]');
  outcome.ok();
  return events.end();
}
