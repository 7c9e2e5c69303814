// POST /v1/chat/completions: chat tasks get the whole conversation; text and sequence tasks the
// last user message; streams as chat.completion.chunk.
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import { IsoError } from '../../errors.js';
import type { GatewayContext } from '../context.js';
import type { InputType, Manifest, TaskSpec } from '../../manifest/schema.js';
import { unsupportedOn, type ValidInput } from '../../validation/inputs/index.js';
import { codePoints } from '../../validation/inputs/text.js';
import type { WorkItem } from '../../worker/protocol.js';
import { resolveTask } from '../predict-request.js';
import { chatBody, finishReason, generationOptions, parseRequest, withParam } from '../openai-shapes.js';
import {
  answer,
  answerHeads,
  chunkText,
  endStream,
  itemOutput,
  onlyOne,
  resolveModel,
  submit,
  usageOf,
  validated,
} from './common.js';

/** Input types the route can carry. */
const CHAT_INPUTS: readonly InputType[] = ['chat', 'text', 'sequence'];

type ChatMessage = z.infer<typeof chatBody>['messages'][number];

function messageText(m: ChatMessage): string {
  if (typeof m.content === 'string') return m.content;
  if (Array.isArray(m.content))
    return m.content.map((p) => (p.type === 'text' && typeof p.text === 'string' ? p.text : '')).join('');
  return '';
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

export function chatCompletions(gw: GatewayContext, req: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  return answer(gw, req, reply, 'openai.chat', async (outcome, openStream) => {
    const b = parseRequest(chatBody, req.body);
    onlyOne(b.n, 'n');
    const { dep, task } = resolveModel(gw, outcome, req, b.model, chatTaskOf);
    if (!CHAT_INPUTS.includes(task.input_type))
      throw withParam(unsupportedOn('/v1/chat/completions', task, CHAT_INPUTS), 'model');
    const { item, promptTokens } = chatItem(task, b, req.body);
    const items: WorkItem[] = [item];
    const head = answerHeads('chatcmpl', b.model);

    if (!b.stream) {
      const out = itemOutput((await submit(reply, outcome, dep, { task, items }))[0], 0, false);
      const content = typeof out.text === 'string' ? out.text : JSON.stringify(out);
      outcome.ok();
      return {
        ...head('chat.completion'),
        choices: [
          {
            index: 0,
            message: { role: 'assistant', content, refusal: null },
            logprobs: null,
            finish_reason: finishReason(out),
          },
        ],
        usage: usageOf(promptTokens, codePoints(content)),
      };
    }

    const events = openStream();
    const includeUsage = b.stream_options?.include_usage === true;
    const chunk = (delta: Record<string, unknown>, finish: string | null = null) => ({
      ...head('chat.completion.chunk'),
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
    if (includeUsage) events.send(undefined, { ...chunk({}), choices: [], usage: usageOf(promptTokens, characters) });
    return endStream(events, outcome);
  });
}
