// OpenAI-compatible endpoints, so OpenAI client libraries can call isomodel models:
//   POST /v1/embeddings        models with an `embedding` task (or `name:task` naming another),
//                              sequence or text input
//   POST /v1/chat/completions  chat tasks get the whole conversation; text and sequence tasks the
//                              last user message; streams as chat.completion.chunk
//   POST /v1/completions       text-generation tasks (input_type text, output type text): a prompt
//                              or a list of prompts; streams as text_completion chunks
// Errors use OpenAI's shape {error:{message, type, param, code}} with the HTTP status of the
// isomodel code. GET /v1/models stays the native model list (see docs/openai-and-streaming.md).
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { cancelOnDisconnect } from '../disconnect.js';
import { IsoError, fromWorkerError } from '../../errors.js';
import type { GatewayContext } from '../context.js';
import type { InputType, Manifest, TaskSpec } from '../../manifest/schema.js';
import type { ModelDeployment } from '../../scheduler/deployment.js';
import { callerOf } from '../caller.js';
import { RequestOutcome } from '../../inference/outcome.js';
import { run, serving, type RunOptions, type Work } from '../../inference/run.js';
import { unsupportedOn, validateInput, type ValidInput } from '../../validation/inputs/index.js';
import { codePoints } from '../../validation/inputs/text.js';
import { isItemError, type ItemOutput, type WorkItem } from '../../worker/protocol.js';
import { batchTooLarge } from '../batch-limit.js';
import { toIsoError } from '../envelope.js';
import { resolveTask } from '../predict-request.js';
import { EventStream } from '../sse.js';
import { stickyKey } from '../sticky.js';
import { PREDICT } from '../../security/route-scope.js';
import {
  chatBody,
  completionBody,
  embeddingsBody,
  finishReason,
  generatesText,
  generationOptions,
  parseRequest,
  sendOpenAiError,
  streamFailed,
  withParam,
} from '../openai-shapes.js';

// ---------------------------------------------------------------------------------------------
// Shared plumbing

/**
 * `name`, `name@version`, or either with `:task` (model names cannot contain a colon). Without a
 * task, `defaultTask` picks one: a task name, or a function of the manifest (undefined: the
 * model's default task).
 */
function resolveModel(
  gw: GatewayContext,
  outcome: RequestOutcome,
  model: string,
  defaultTask?: string | ((m: Manifest) => string | undefined),
  sticky?: string,
): { dep: ModelDeployment; task: TaskSpec } {
  const colon = model.indexOf(':');
  const name = colon === -1 ? model : model.slice(0, colon);
  outcome.model = name;
  try {
    const dep = serving(gw, outcome, name, sticky);
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
function submit(
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

function itemOutput(out: ItemOutput | undefined, index: number, many: boolean): ItemOutput {
  if (!out) throw new IsoError('PREDICTION_FAILED', 'the model returned no output');
  if (!isItemError(out)) return out;
  const err = fromWorkerError(out.error.code, out.error.message);
  throw many ? new IsoError(err.code, `input[${index}]: ${err.message}`, { index }) : err;
}

// ---------------------------------------------------------------------------------------------
// POST /v1/embeddings

/** Input types each route can carry. */
const EMBEDDING_INPUTS: readonly InputType[] = ['sequence', 'text'];
const CHAT_INPUTS: readonly InputType[] = ['chat', 'text', 'sequence'];

/**
 * validateInput for one field of an OpenAI body, its error naming the body field (`param`) and,
 * in a list, the index.
 */
function validated(task: TaskSpec, raw: unknown, field: string, param: string, index?: number): ValidInput {
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

function float32Base64(values: number[]): string {
  const buf = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => buf.writeFloatLE(v, i * 4));
  return buf.toString('base64');
}

async function embeddings(gw: GatewayContext, req: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const outcome = outcomeOf(gw, req, 'openai.embeddings');
  try {
    const b = parseRequest(embeddingsBody, req.body);
    const { dep, task } = resolveModel(
      gw,
      outcome,
      b.model,
      'embedding',
      stickyKey(req, (req.body as { user?: unknown }).user),
    );
    if (!EMBEDDING_INPUTS.includes(task.input_type))
      throw withParam(unsupportedOn('/v1/embeddings', task, EMBEDDING_INPUTS), 'model');
    const many = Array.isArray(b.input);
    const inputs: unknown[] = many ? (b.input as unknown[]) : [b.input];
    const what = task.input_type === 'text' ? 'text' : 'sequence';
    if (inputs.length === 0)
      throw withParam(new IsoError('INVALID_REQUEST', `input must hold at least one ${what}`), 'input');
    if (inputs.length > gw.config.max_batch_sequences)
      throw withParam(batchTooLarge(inputs.length, gw.config.max_batch_sequences, 'inputs per request'), 'input');
    const options = b.dimensions === undefined ? {} : { embedding_dimension: b.dimensions };
    let tokens = 0;
    const items: WorkItem[] = inputs.map((raw, i) => {
      if (typeof raw !== 'string') {
        throw withParam(
          new IsoError(
            'INVALID_REQUEST',
            `input must be a ${what} or an array of ${what === 'text' ? 'texts' : 'sequences'} (token arrays are not supported)`,
          ),
          'input',
        );
      }
      const v = validated(task, raw, many ? `input[${i}]` : 'input', 'input', many ? i : undefined);
      tokens += v.size;
      return { ...v.payload, options };
    });
    const outputs = await submit(reply, outcome, dep, { task, items });
    const data = items.map((_, i) => {
      const embedding = itemOutput(outputs[i], i, many).embedding;
      if (!Array.isArray(embedding) || !embedding.every((v) => typeof v === 'number')) {
        throw new IsoError('PREDICTION_FAILED', `model ${dep.name} task ${task.name} returned no embedding vector`);
      }
      // A model that ignores embedding_dimension must not pass off another size as the one asked for.
      if (b.dimensions !== undefined && embedding.length !== b.dimensions) {
        throw withParam(
          new IsoError(
            'INVALID_REQUEST',
            `model ${dep.name} does not support dimensions=${b.dimensions} (it returned ${embedding.length})`,
          ),
          'dimensions',
        );
      }
      return {
        object: 'embedding',
        index: i,
        embedding: b.encoding_format === 'base64' ? float32Base64(embedding as number[]) : embedding,
      };
    });
    outcome.ok();
    return { object: 'list', data, model: b.model, usage: { prompt_tokens: tokens, total_tokens: tokens } };
  } catch (e) {
    throw failed(outcome, req, e);
  }
}

// ---------------------------------------------------------------------------------------------
// POST /v1/chat/completions

type ChatMessage = z.infer<typeof chatBody>['messages'][number];

function messageText(m: ChatMessage): string {
  if (typeof m.content === 'string') return m.content;
  if (Array.isArray(m.content))
    return m.content.map((p) => (p.type === 'text' && typeof p.text === 'string' ? p.text : '')).join('');
  return '';
}

/** A chunk's text: its `text` field when it has one, else the chunk as JSON. */
function chunkText(data: unknown): string {
  const text = (data as { text?: unknown } | null)?.text;
  return typeof text === 'string' ? text : JSON.stringify(data);
}

/** Without `:task`: the default task when it takes chat, else the model's first chat task, else the default task. */
function chatTaskOf(m: Manifest): string | undefined {
  const def = resolveTask(m, undefined);
  if (def.input_type === 'chat') return def.name;
  return m.tasks.find((t) => t.input_type === 'chat')?.name;
}

/** The work item of a chat request: the conversation (chat tasks) or the last user message's text. */
function chatItem(
  task: TaskSpec,
  b: z.infer<typeof chatBody>,
  body: unknown,
): { item: WorkItem; promptTokens: number } {
  if (task.input_type === 'chat') {
    let v: ValidInput;
    try {
      v = validated(task, b.messages, 'messages', 'messages');
    } catch (e) {
      // validateChat names a message `messages.messages[i]` (its input may be {messages}): here it is the body's messages[i].
      throw e instanceof IsoError
        ? withParam(new IsoError(e.code, e.message.replace('messages.messages[', 'messages['), e.details), 'messages')
        : e;
    }
    return {
      item: { ...v.payload, options: { ...generationOptions(body), ...(b.options ?? {}) } },
      promptTokens: v.size,
    };
  }
  const at = b.messages.findLastIndex((m) => m.role === 'user');
  if (at === -1)
    throw withParam(
      new IsoError(
        'INVALID_REQUEST',
        `messages must include a user message holding the ${task.input_type === 'text' ? 'text' : 'sequence'}`,
      ),
      'messages',
    );
  const field = `messages[${at}].content`;
  if (task.input_type === 'text') {
    const v = validated(task, messageText(b.messages[at]!), field, 'messages');
    return {
      item: { ...v.payload, options: { ...generationOptions(body), ...(b.options ?? {}) } },
      promptTokens: v.size,
    };
  }
  // Sequence tasks, as always: the trimmed text of the last user message; OpenAI's sampling
  // parameters are not theirs.
  const v = validated(task, messageText(b.messages[at]!).trim(), field, 'messages');
  return { item: { ...v.payload, options: b.options ?? {} }, promptTokens: v.size };
}

async function chatCompletions(gw: GatewayContext, req: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const outcome = outcomeOf(gw, req, 'openai.chat');
  let sse: EventStream | null = null;
  try {
    const b = parseRequest(chatBody, req.body);
    if (b.n !== undefined && b.n !== null && b.n !== 1)
      throw withParam(new IsoError('INVALID_REQUEST', 'n must be 1'), 'n');
    const { dep, task } = resolveModel(
      gw,
      outcome,
      b.model,
      chatTaskOf,
      stickyKey(req, (req.body as { user?: unknown }).user),
    );
    if (!CHAT_INPUTS.includes(task.input_type))
      throw withParam(unsupportedOn('/v1/chat/completions', task, CHAT_INPUTS), 'model');
    const { item, promptTokens } = chatItem(task, b, req.body);
    const items: WorkItem[] = [item];
    const id = `chatcmpl-${randomUUID()}`;
    const created = Math.floor(Date.now() / 1000);
    const usage = (completion: number) => ({
      prompt_tokens: promptTokens,
      completion_tokens: completion,
      total_tokens: promptTokens + completion,
    });

    if (!b.stream) {
      const out = itemOutput((await submit(reply, outcome, dep, { task, items }))[0], 0, false);
      const content = typeof out.text === 'string' ? out.text : JSON.stringify(out);
      outcome.ok();
      return {
        id,
        object: 'chat.completion',
        created,
        model: b.model,
        system_fingerprint: null,
        choices: [
          {
            index: 0,
            message: { role: 'assistant', content, refusal: null },
            logprobs: null,
            finish_reason: finishReason(out),
          },
        ],
        usage: usage(codePoints(content)),
      };
    }

    const events = new EventStream(req, reply);
    sse = events;
    const includeUsage = b.stream_options?.include_usage === true;
    const chunk = (delta: Record<string, unknown>, finish: string | null = null) => ({
      id,
      object: 'chat.completion.chunk',
      created,
      model: b.model,
      system_fingerprint: null,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
      ...(includeUsage && { usage: null }),
    });
    let chunks = 0;
    let characters = 0;
    const emit = (text: string): void => {
      if (!events.open) events.send(undefined, chunk({ role: 'assistant', content: '' }));
      events.send(undefined, chunk({ content: text }));
      chunks++;
      characters += codePoints(text);
    };
    const outputs = await submit(
      reply,
      outcome,
      dep,
      { task, items },
      { onChunk: (_index, data) => emit(chunkText(data)) },
    );
    const out = itemOutput(outputs[0], 0, false);
    // A model without `stream` answers with its final output only: send it as one delta.
    if (chunks === 0) emit(typeof out.text === 'string' ? out.text : JSON.stringify(out));
    events.send(undefined, chunk({}, finishReason(out)));
    if (includeUsage) events.send(undefined, { ...chunk({}), choices: [], usage: usage(characters) });
    events.write('[DONE]');
    outcome.ok();
    return events.end();
  } catch (e) {
    return streamFailed(sse, failed(outcome, req, e));
  }
}

// ---------------------------------------------------------------------------------------------
// POST /v1/completions

/** Without `:task`: the default task when it generates text, else the model's first task that does. */
function completionTaskOf(m: Manifest): string | undefined {
  const def = resolveTask(m, undefined);
  if (def.input_type === 'text' && generatesText(def)) return def.name;
  const t = m.tasks.find((x) => x.input_type === 'text' && generatesText(x));
  if (!t) {
    throw new IsoError(
      'INVALID_REQUEST',
      `model ${m.name} has no text-generation task (input_type text with output type text); its tasks: ${m.tasks.map((x) => `${x.name} (${x.input_type})`).join(', ')}`,
      {
        tasks: m.tasks.map((x) => x.name),
      },
    );
  }
  return t.name;
}

/** The text an output or a stream chunk carries (`text`), or none. */
function textOf(data: unknown): string | undefined {
  const text = (data as { text?: unknown } | null)?.text;
  return typeof text === 'string' ? text : undefined;
}

async function completions(gw: GatewayContext, req: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const outcome = outcomeOf(gw, req, 'openai.completions');
  let sse: EventStream | null = null;
  try {
    const b = parseRequest(completionBody, req.body);
    if (b.n != null && b.n !== 1) throw withParam(new IsoError('INVALID_REQUEST', 'n must be 1'), 'n');
    if (b.best_of != null && b.best_of !== 1)
      throw withParam(new IsoError('INVALID_REQUEST', 'best_of must be 1'), 'best_of');
    if (b.echo === true) throw withParam(new IsoError('INVALID_REQUEST', 'echo is not supported'), 'echo');
    if (b.suffix != null && b.suffix !== '')
      throw withParam(new IsoError('INVALID_REQUEST', 'suffix is not supported'), 'suffix');
    const { dep, task } = resolveModel(
      gw,
      outcome,
      b.model,
      completionTaskOf,
      stickyKey(req, (req.body as { user?: unknown }).user),
    );
    if (task.input_type !== 'text') throw withParam(unsupportedOn('/v1/completions', task, ['text']), 'model');
    if (!generatesText(task)) {
      throw withParam(
        new IsoError(
          'INVALID_REQUEST',
          `task ${task.name} of model ${dep.name} does not generate text (its manifest would say output: {type: text})`,
        ),
        'model',
      );
    }
    const many = Array.isArray(b.prompt);
    const prompts: unknown[] = many ? (b.prompt as unknown[]) : [b.prompt];
    if (b.prompt === undefined)
      throw withParam(new IsoError('INVALID_REQUEST', 'prompt is required: a string or an array of strings'), 'prompt');
    if (prompts.length === 0)
      throw withParam(new IsoError('INVALID_REQUEST', 'prompt must hold at least one string'), 'prompt');
    if (prompts.length > gw.config.max_batch_sequences)
      throw withParam(batchTooLarge(prompts.length, gw.config.max_batch_sequences, 'prompts per request'), 'prompt');
    const options = { ...generationOptions(req.body), ...(b.options ?? {}) };
    let promptTokens = 0;
    const items: WorkItem[] = prompts.map((raw, i) => {
      if (typeof raw !== 'string')
        throw withParam(
          new IsoError(
            'INVALID_REQUEST',
            'prompt must be a string or an array of strings (token arrays are not supported)',
          ),
          'prompt',
        );
      const v = validated(task, raw, many ? `prompt[${i}]` : 'prompt', 'prompt', many ? i : undefined);
      promptTokens += v.size;
      return { ...v.payload, options };
    });
    const id = `cmpl-${randomUUID()}`;
    const created = Math.floor(Date.now() / 1000);
    const usage = (completion: number) => ({
      prompt_tokens: promptTokens,
      completion_tokens: completion,
      total_tokens: promptTokens + completion,
    });
    const textOfOutput = (out: ItemOutput): string => {
      const text = textOf(out);
      if (text === undefined)
        throw new IsoError('PREDICTION_FAILED', `model ${dep.name} task ${task.name} returned no text`);
      return text;
    };

    if (!b.stream) {
      const outputs = await submit(reply, outcome, dep, { task, items });
      let characters = 0;
      const choices = items.map((_, i) => {
        const out = itemOutput(outputs[i], i, many);
        const text = textOfOutput(out);
        characters += codePoints(text);
        return { text, index: i, logprobs: null, finish_reason: finishReason(out) };
      });
      outcome.ok();
      return {
        id,
        object: 'text_completion',
        created,
        model: b.model,
        system_fingerprint: null,
        choices,
        usage: usage(characters),
      };
    }

    const events = new EventStream(req, reply);
    sse = events;
    const includeUsage = b.stream_options?.include_usage === true;
    const chunk = (index: number, text: string, finish: string | null = null) => ({
      id,
      object: 'text_completion',
      created,
      model: b.model,
      system_fingerprint: null,
      choices: [{ text, index, logprobs: null, finish_reason: finish }],
      ...(includeUsage && { usage: null }),
    });
    const streamed = new Array<boolean>(items.length).fill(false);
    let characters = 0;
    const emit = (index: number, text: string): void => {
      events.send(undefined, chunk(index, text));
      streamed[index] = true;
      characters += codePoints(text);
    };
    const outputs = await submit(
      reply,
      outcome,
      dep,
      { task, items },
      {
        onChunk: (index, data) => {
          if (index >= 0 && index < items.length) emit(index, textOf(data) ?? JSON.stringify(data));
        },
      },
    );
    for (let i = 0; i < items.length; i++) {
      const out = itemOutput(outputs[i], i, many);
      // A model without `stream` answers with its final output only: send it as one chunk.
      if (!streamed[i]) emit(i, textOfOutput(out));
      events.send(undefined, chunk(i, '', finishReason(out)));
    }
    if (includeUsage)
      events.send(undefined, {
        id,
        object: 'text_completion',
        created,
        model: b.model,
        system_fingerprint: null,
        choices: [],
        usage: usage(characters),
      });
    events.write('[DONE]');
    outcome.ok();
    return events.end();
  } catch (e) {
    return streamFailed(sse, failed(outcome, req, e));
  }
}

// ---------------------------------------------------------------------------------------------

export function registerOpenAiRoutes(app: FastifyInstance, gw: GatewayContext): void {
  // An encapsulated scope, so that its error handler (OpenAI's error shape) covers these
  // routes only, including body-parser and rate-limit errors.
  void app.register(async (scope) => {
    scope.setErrorHandler((e, req, reply) => {
      const err = toIsoError(e);
      if (err.code === 'INTERNAL_ERROR' && !(e instanceof IsoError))
        req.log.error({ err: e, reqId: req.id }, 'unhandled error');
      return sendOpenAiError(reply, err);
    });
    scope.post('/v1/embeddings', PREDICT, (req, reply) => embeddings(gw, req, reply));
    scope.post('/v1/chat/completions', PREDICT, (req, reply) => chatCompletions(gw, req, reply));
    scope.post('/v1/completions', PREDICT, (req, reply) => completions(gw, req, reply));
  });
}
