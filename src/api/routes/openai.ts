// OpenAI-compatible endpoints, so OpenAI client libraries can call isomodel models:
//   POST /v1/embeddings        models with an `embedding` task (or `name:task` naming another)
//   POST /v1/chat/completions  the last user message is the sequence; streams as chat.completion.chunk
// Errors use OpenAI's shape {error:{message, type, param, code}} with the HTTP status of the
// isomodel code. GET /v1/models stays the native model list (see docs/openai-and-streaming.md).
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { cancelOnDisconnect } from '../disconnect.js';
import { describeZod } from '../../validation/zod-message.js';
import { IsoError, fromWorkerError } from '../../errors.js';
import type { Gateway } from '../../gateway.js';
import type { TaskSpec } from '../../manifest/schema.js';
import type { ModelDeployment, SubmitOptions } from '../../scheduler/deployment.js';
import { taskRule, validateSequence } from '../../validation/sequence.js';
import { isItemError, type ItemOutput, type WorkItem } from '../../worker/protocol.js';
import { batchTooLarge } from '../batch-limit.js';
import { toIsoError } from '../envelope.js';
import { resolveTask } from '../predict-request.js';
import { EventStream } from '../sse.js';
import { stickyKey } from '../sticky.js';
import { PREDICT } from '../../security/route-scope.js';

// ---------------------------------------------------------------------------------------------
// Errors in OpenAI's shape

/** The request field an error is about, for OpenAI's `param`. */
const errorParams = new WeakMap<IsoError, string>();

function withParam(err: IsoError, param: string): IsoError {
  errorParams.set(err, param);
  return err;
}

function errorType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

export interface OpenAiErrorBody {
  error: { message: string; type: string; param: string | null; code: string };
}

export function openAiError(err: IsoError): OpenAiErrorBody {
  return { error: { message: err.message, type: errorType(err.status), param: errorParams.get(err) ?? null, code: err.code.toLowerCase() } };
}

function sendOpenAiError(reply: FastifyReply, err: IsoError): FastifyReply {
  if (err.retryAfterS !== undefined) void reply.header('retry-after', String(err.retryAfterS));
  return reply.code(err.status).send(openAiError(err));
}

// ---------------------------------------------------------------------------------------------
// Request bodies. Unknown fields are ignored (OpenAI clients send parameters such as
// `temperature` or `user` that mean nothing here); the ones we read are checked.

const embeddingsBody = z.object({
  model: z.string().min(1).max(200),
  input: z.unknown(),
  encoding_format: z.enum(['float', 'base64']).optional(),
  dimensions: z.number().int().positive().optional(),
});

const chatBody = z.object({
  model: z.string().min(1).max(200),
  messages: z
    .array(
      z.object({
        role: z.string(),
        content: z.union([z.string(), z.array(z.object({ type: z.string(), text: z.string().optional() }).passthrough()), z.null()]).optional(),
      }).passthrough(),
    )
    .min(1),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().nullish() }).passthrough().nullish(),
  n: z.number().int().nullish(),
  /** isomodel extension: the model's options, as in the native API. */
  options: z.record(z.string(), z.unknown()).optional(),
});

function parseBody<T extends z.ZodTypeAny>(schema: T, body: unknown): z.infer<T> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new IsoError('INVALID_REQUEST', 'request body must be a JSON object');
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data as z.infer<T>;
  const err = new IsoError('INVALID_REQUEST', describeZod(parsed.error));
  const field = parsed.error.issues[0]?.path[0];
  throw field === undefined ? err : withParam(err, String(field));
}

// ---------------------------------------------------------------------------------------------
// Shared plumbing

/** `name`, `name@version`, or either with `:task` (model names cannot contain a colon). */
function resolveModel(gw: Gateway, model: string, defaultTask?: string, sticky?: string): { dep: ModelDeployment; task: TaskSpec } {
  const colon = model.indexOf(':');
  const name = colon === -1 ? model : model.slice(0, colon);
  const taskName = colon === -1 ? defaultTask : model.slice(colon + 1);
  try {
    const dep = gw.registry.serving(name, sticky);
    return { dep, task: resolveTask(dep.pkg.manifest, taskName) };
  } catch (e) {
    throw e instanceof IsoError ? withParam(e, 'model') : e;
  }
}

/** Queues work, cancelling it (and the worker's stream) if the client disconnects first. */
function submit(reply: FastifyReply, dep: ModelDeployment, opts: Omit<SubmitOptions, 'signal'>): Promise<ItemOutput[]> {
  return cancelOnDisconnect(reply, (signal) => dep.submit({ ...opts, signal }));
}

/** Statistics, Prometheus metrics and the request log, as the native routes keep them. */
class RequestRecord {
  private readonly t0 = performance.now();
  model = '?';
  dep: ModelDeployment | undefined;
  task: string | undefined;
  sequences = 0;

  constructor(
    private readonly gw: Gateway,
    private readonly req: FastifyRequest,
    private readonly route: string,
  ) {}

  ok(): void {
    const dep = this.dep!;
    const latency = performance.now() - this.t0;
    dep.stats.record(true, latency, this.sequences);
    this.gw.metrics.observeRequest(dep.name, dep.version, this.task ?? 'unknown', true, 'OK', latency / 1000, this.sequences);
    this.gw.store.logRequest({ request_id: this.req.id, model: this.model, version: dep.version, task: this.task, route: this.route, status: 'success', sequences: this.sequences, latency_ms: latency, client: this.req.ip });
  }

  failed(e: unknown): IsoError {
    const err = toIsoError(e);
    if (err.code === 'INTERNAL_ERROR' && !(e instanceof IsoError)) this.req.log.error({ err: e, reqId: this.req.id }, 'unhandled error');
    const latency = performance.now() - this.t0;
    const dep = this.dep ?? (this.model === '?' ? undefined : this.gw.registry.deployment(this.model));
    dep?.stats.record(false, latency, this.sequences, err.code);
    if (dep) this.gw.metrics.observeRequest(dep.name, dep.version, this.task ?? 'unknown', false, err.code, latency / 1000, this.sequences);
    if (this.model !== '?' && err.code !== 'MODEL_NOT_FOUND') {
      this.gw.store.logRequest({ request_id: this.req.id, model: this.model, task: this.task, route: this.route, status: 'error', error_code: err.code, sequences: this.sequences, latency_ms: latency, client: this.req.ip });
    }
    return err;
  }
}

function itemOutput(out: ItemOutput | undefined, index: number, many: boolean): ItemOutput {
  if (!out) throw new IsoError('PREDICTION_FAILED', 'the model returned no output');
  if (!isItemError(out)) return out;
  const err = fromWorkerError(out.error.code, out.error.message);
  throw many ? new IsoError(err.code, `input[${index}]: ${err.message}`, { index }) : err;
}

// ---------------------------------------------------------------------------------------------
// POST /v1/embeddings

function float32Base64(values: number[]): string {
  const buf = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => buf.writeFloatLE(v, i * 4));
  return buf.toString('base64');
}

async function embeddings(gw: Gateway, req: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const rec = new RequestRecord(gw, req, 'openai.embeddings');
  try {
    const b = parseBody(embeddingsBody, req.body);
    rec.model = b.model.split(':')[0]!;
    const { dep, task } = resolveModel(gw, b.model, 'embedding', stickyKey(req, (req.body as { user?: unknown }).user));
    rec.dep = dep;
    rec.task = task.name;
    const many = Array.isArray(b.input);
    const inputs: unknown[] = many ? (b.input as unknown[]) : [b.input];
    if (inputs.length === 0) throw withParam(new IsoError('INVALID_REQUEST', 'input must hold at least one sequence'), 'input');
    if (inputs.length > gw.config.max_batch_sequences) throw withParam(batchTooLarge(inputs.length, gw.config.max_batch_sequences, 'inputs per request'), 'input');
    const rule = taskRule(task);
    const options = b.dimensions === undefined ? {} : { embedding_dimension: b.dimensions };
    const items: WorkItem[] = inputs.map((raw, i) => {
      if (typeof raw !== 'string') {
        throw withParam(new IsoError('INVALID_REQUEST', 'input must be a sequence or an array of sequences (token arrays are not supported)'), 'input');
      }
      try {
        return { sequence: validateSequence(raw, rule, undefined, many ? `input[${i}]` : 'input').sequence, options };
      } catch (e) {
        throw e instanceof IsoError ? withParam(many ? new IsoError(e.code, e.message, { index: i, ...(typeof e.details === 'object' ? (e.details as object) : {}) }) : e, 'input') : e;
      }
    });
    rec.sequences = items.length;
    const outputs = await submit(reply, dep, { task: task.name, items });
    const residues = items.reduce((n, item) => n + (item.sequence?.length ?? 0), 0);
    const data = items.map((_, i) => {
      const embedding = itemOutput(outputs[i], i, many).embedding;
      if (!Array.isArray(embedding) || !embedding.every((v) => typeof v === 'number')) {
        throw new IsoError('PREDICTION_FAILED', `model ${dep.name} task ${task.name} returned no embedding vector`);
      }
      // A model that ignores embedding_dimension must not pass off another size as the one asked for.
      if (b.dimensions !== undefined && embedding.length !== b.dimensions) {
        throw withParam(new IsoError('INVALID_REQUEST', `model ${dep.name} does not support dimensions=${b.dimensions} (it returned ${embedding.length})`), 'dimensions');
      }
      return { object: 'embedding', index: i, embedding: b.encoding_format === 'base64' ? float32Base64(embedding as number[]) : embedding };
    });
    rec.ok();
    return { object: 'list', data, model: b.model, usage: { prompt_tokens: residues, total_tokens: residues } };
  } catch (e) {
    throw rec.failed(e);
  }
}

// ---------------------------------------------------------------------------------------------
// POST /v1/chat/completions

type ChatMessage = z.infer<typeof chatBody>['messages'][number];

function messageText(m: ChatMessage): string {
  if (typeof m.content === 'string') return m.content;
  if (Array.isArray(m.content)) return m.content.map((p) => (p.type === 'text' && typeof p.text === 'string' ? p.text : '')).join('');
  return '';
}

/** A chunk's text: its `text` field when it has one, else the chunk as JSON. */
function chunkText(data: unknown): string {
  const text = (data as { text?: unknown } | null)?.text;
  return typeof text === 'string' ? text : JSON.stringify(data);
}

async function chatCompletions(gw: Gateway, req: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const rec = new RequestRecord(gw, req, 'openai.chat');
  let sse: EventStream | null = null;
  try {
    const b = parseBody(chatBody, req.body);
    if (b.n !== undefined && b.n !== null && b.n !== 1) throw withParam(new IsoError('INVALID_REQUEST', 'n must be 1'), 'n');
    rec.model = b.model.split(':')[0]!;
    const { dep, task } = resolveModel(gw, b.model, undefined, stickyKey(req, (req.body as { user?: unknown }).user));
    rec.dep = dep;
    rec.task = task.name;
    const at = b.messages.findLastIndex((m) => m.role === 'user');
    if (at === -1) throw withParam(new IsoError('INVALID_REQUEST', 'messages must include a user message holding the sequence'), 'messages');
    const rule = taskRule(task);
    let sequence: string;
    try {
      sequence = validateSequence(messageText(b.messages[at]!).trim(), rule, undefined, `messages[${at}].content`).sequence;
    } catch (e) {
      throw e instanceof IsoError ? withParam(e, 'messages') : e;
    }
    rec.sequences = 1;
    const items: WorkItem[] = [{ sequence, options: b.options ?? {} }];
    const id = `chatcmpl-${randomUUID()}`;
    const created = Math.floor(Date.now() / 1000);
    const usage = (completion: number) => ({ prompt_tokens: sequence.length, completion_tokens: completion, total_tokens: sequence.length + completion });

    if (!b.stream) {
      const out = itemOutput((await submit(reply, dep, { task: task.name, items }))[0], 0, false);
      const content = typeof out.text === 'string' ? out.text : JSON.stringify(out);
      rec.ok();
      return {
        id,
        object: 'chat.completion',
        created,
        model: b.model,
        system_fingerprint: null,
        choices: [{ index: 0, message: { role: 'assistant', content, refusal: null }, logprobs: null, finish_reason: 'stop' }],
        usage: usage(content.length),
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
      characters += text.length;
    };
    const outputs = await submit(reply, dep, { task: task.name, items, stream: true, onChunk: (_index, data) => emit(chunkText(data)) });
    const out = itemOutput(outputs[0], 0, false);
    // A model without `stream` answers with its final output only: send it as one delta.
    if (chunks === 0) emit(typeof out.text === 'string' ? out.text : JSON.stringify(out));
    events.send(undefined, chunk({}, 'stop'));
    if (includeUsage) events.send(undefined, { ...chunk({}), choices: [], usage: usage(characters) });
    events.write('[DONE]');
    rec.ok();
    return events.end();
  } catch (e) {
    const err = rec.failed(e);
    // Once the stream is open the status is sent: the error goes in-band, as OpenAI does.
    if (sse?.open) {
      sse.send(undefined, openAiError(err));
      return sse.end();
    }
    sse?.discard();
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------

export function registerOpenAiRoutes(app: FastifyInstance, gw: Gateway): void {
  // An encapsulated scope, so that its error handler (OpenAI's error shape) covers these
  // routes only, including body-parser and rate-limit errors.
  void app.register(async (scope) => {
    scope.setErrorHandler((e, req, reply) => {
      const err = toIsoError(e);
      if (err.code === 'INTERNAL_ERROR' && !(e instanceof IsoError)) req.log.error({ err: e, reqId: req.id }, 'unhandled error');
      return sendOpenAiError(reply, err);
    });
    scope.post('/v1/embeddings', PREDICT, (req, reply) => embeddings(gw, req, reply));
    scope.post('/v1/chat/completions', PREDICT, (req, reply) => chatCompletions(gw, req, reply));
  });
}
