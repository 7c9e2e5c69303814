// POST /v1/completions: text-generation tasks (input_type text, output type text): a prompt or a
// list of prompts; streams as text_completion chunks.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { IsoError } from '../../errors.js';
import type { GatewayContext } from '../context.js';
import type { Manifest } from '../../manifest/schema.js';
import { unsupportedOn } from '../../validation/inputs/index.js';
import { codePoints } from '../../validation/inputs/text.js';
import type { ItemOutput, WorkItem } from '../../worker/protocol.js';
import { batchTooLarge } from '../batch-limit.js';
import { resolveTask } from '../predict-request.js';
import {
  completionBody,
  finishReason,
  generatesText,
  generationOptions,
  parseRequest,
  withParam,
} from '../openai-shapes.js';
import {
  answer,
  answerHeads,
  chunkText,
  endStream,
  itemOutput,
  onlyOne,
  resolveModel,
  submit,
  textOf,
  usageOf,
  validated,
} from './common.js';

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

export function completions(gw: GatewayContext, req: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  return answer(gw, req, reply, 'openai.completions', async (outcome, openStream) => {
    const b = parseRequest(completionBody, req.body);
    onlyOne(b.n, 'n');
    onlyOne(b.best_of, 'best_of');
    if (b.echo === true) throw withParam(new IsoError('INVALID_REQUEST', 'echo is not supported'), 'echo');
    if (b.suffix != null && b.suffix !== '')
      throw withParam(new IsoError('INVALID_REQUEST', 'suffix is not supported'), 'suffix');
    const { dep, task } = resolveModel(gw, outcome, req, b.model, completionTaskOf);
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
    const head = answerHeads('cmpl', b.model);
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
      return { ...head('text_completion'), choices, usage: usageOf(promptTokens, characters) };
    }

    const events = openStream();
    const includeUsage = b.stream_options?.include_usage === true;
    const chunk = (index: number, text: string, finish: string | null = null) => ({
      ...head('text_completion'),
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
          if (index >= 0 && index < items.length) emit(index, chunkText(data));
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
      events.send(undefined, { ...head('text_completion'), choices: [], usage: usageOf(promptTokens, characters) });
    return endStream(events, outcome);
  });
}
