// POST /v1/embeddings: models with an `embedding` task (or `name:task` naming another), sequence
// or text input, one or many; base64 float32 on request.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { IsoError } from '../../errors.js';
import type { GatewayContext } from '../context.js';
import type { InputType } from '../../manifest/schema.js';
import { unsupportedOn } from '../../validation/inputs/index.js';
import type { WorkItem } from '../../worker/protocol.js';
import { batchTooLarge } from '../batch-limit.js';
import { embeddingsBody, parseRequest, withParam } from '../openai-shapes.js';
import { answer, itemOutput, resolveModel, submit, validated } from './common.js';

/** Input types the route can carry. */
const EMBEDDING_INPUTS: readonly InputType[] = ['sequence', 'text'];

function float32Base64(values: number[]): string {
  const buf = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => buf.writeFloatLE(v, i * 4));
  return buf.toString('base64');
}

export function embeddings(gw: GatewayContext, req: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  return answer(gw, req, reply, 'openai.embeddings', async (outcome) => {
    const b = parseRequest(embeddingsBody, req.body);
    const { dep, task } = resolveModel(gw, outcome, req, b.model, 'embedding');
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
  });
}
