// The OpenAI surface's shapes: errors as OpenAI writes them ({error:{message, type, param, code}},
// the field at fault as `param`) and the request bodies it reads (unknown fields ignored).
// The routes are in api/routes/openai.ts.
import type { FastifyReply } from 'fastify';
import { z } from 'zod';
import { IsoError } from '../errors.js';
import type { TaskSpec } from '../manifest/schema.js';
import { describeZod } from '../validation/zod-message.js';
import type { ItemOutput } from '../worker/protocol.js';
import type { EventStream } from './sse.js';

/** The request field an error is about, for OpenAI's `param`. */
const errorParams = new WeakMap<IsoError, string>();

export function withParam(err: IsoError, param: string): IsoError {
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
  return {
    error: {
      message: err.message,
      type: errorType(err.status),
      param: errorParams.get(err) ?? null,
      code: err.code.toLowerCase(),
    },
  };
}

/**
 * A streamed answer that failed: once the stream is open the status is sent, so the error goes
 * in-band, as OpenAI does; before that the stream is dropped and the error answers as usual.
 */
export function streamFailed(sse: EventStream | null, err: IsoError): FastifyReply {
  if (sse?.open) {
    sse.send(undefined, openAiError(err));
    return sse.end();
  }
  sse?.discard();
  throw err;
}

export function sendOpenAiError(reply: FastifyReply, err: IsoError): FastifyReply {
  if (err.retryAfterS !== undefined) void reply.header('retry-after', String(err.retryAfterS));
  return reply.code(err.status).send(openAiError(err));
}

// ---------------------------------------------------------------------------------------------
// Request bodies. Unknown fields are ignored (OpenAI clients send parameters such as
// `temperature` or `user` that mean nothing here); the ones we read are checked.

export const embeddingsBody = z.object({
  model: z.string().min(1).max(200),
  input: z.unknown(),
  encoding_format: z.enum(['float', 'base64']).optional(),
  dimensions: z.number().int().positive().optional(),
});

export const chatBody = z.object({
  model: z.string().min(1).max(200),
  messages: z
    .array(
      z
        .object({
          role: z.string(),
          content: z
            .union([
              z.string(),
              z.array(z.object({ type: z.string(), text: z.string().optional() }).passthrough()),
              z.null(),
            ])
            .optional(),
        })
        .passthrough(),
    )
    .min(1),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().nullish() }).passthrough().nullish(),
  n: z.number().int().nullish(),
  /** isomodel extension: the model's options, as in the native API. */
  options: z.record(z.string(), z.unknown()).optional(),
});

export const completionBody = z.object({
  model: z.string().min(1).max(200),
  prompt: z.unknown(),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().nullish() }).passthrough().nullish(),
  n: z.number().int().nullish(),
  best_of: z.number().int().nullish(),
  echo: z.boolean().nullish(),
  suffix: z.string().nullish(),
  options: z.record(z.string(), z.unknown()).optional(),
});

/**
 * OpenAI's sampling parameters, passed to chat and text-generation tasks as options of the same
 * names (a sequence task never sees them: they meant nothing to it before). `max_completion_tokens`
 * is read as max_tokens. Checked only for those tasks.
 */
const generationParams = z.object({
  max_tokens: z.number().int().positive().max(1_000_000).nullish(),
  max_completion_tokens: z.number().int().positive().max(1_000_000).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  stop: z.union([z.string().max(256), z.array(z.string().max(256)).max(4)]).nullish(),
  seed: z.number().int().nullish(),
});

export function generationOptions(body: unknown): Record<string, unknown> {
  const g = parseRequest(generationParams, body);
  const out: Record<string, unknown> = {};
  const maxTokens = g.max_completion_tokens ?? g.max_tokens;
  if (maxTokens != null) out.max_tokens = maxTokens;
  if (g.temperature != null) out.temperature = g.temperature;
  if (g.top_p != null) out.top_p = g.top_p;
  if (g.stop != null) out.stop = typeof g.stop === 'string' ? [g.stop] : g.stop;
  if (g.seed != null) out.seed = g.seed;
  return out;
}

/** Whether a task generates text: `output: {type: text}` in its manifest (its outputs and stream chunks carry `text`). */
export function generatesText(task: TaskSpec): boolean {
  return task.output.type === 'text';
}

/** A model's reason to stop, when it gives one OpenAI knows; else "stop". */
export function finishReason(out: ItemOutput): string {
  const r = (out as { finish_reason?: unknown }).finish_reason;
  return r === 'length' || r === 'stop' ? r : 'stop';
}

export function parseRequest<T extends z.ZodTypeAny>(schema: T, body: unknown): z.infer<T> {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new IsoError('INVALID_REQUEST', 'request body must be a JSON object');
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data as z.infer<T>;
  const err = new IsoError('INVALID_REQUEST', describeZod(parsed.error));
  const field = parsed.error.issues[0]?.path[0];
  throw field === undefined ? err : withParam(err, String(field));
}
