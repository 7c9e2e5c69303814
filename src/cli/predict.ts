// `isomodel predict <model> <sequence|file>`: through a running gateway when one answers,
// otherwise by starting that model's worker locally for the one call.
import { existsSync, readFileSync } from 'node:fs';
import { destination, pino } from 'pino';
import type { Config } from '../config/config.js';
import { createWorkerFactory, driverContext } from '../drivers/factory.js';
import { parsePrediction } from '../api/predict-request.js';
import { ModelRegistry } from '../scheduler/registry.js';
import { parseSequences } from '../validation/fasta.js';
import { callGateway, gatewayUp } from './client.js';

export interface PredictArgs {
  model: string;
  input: string;
  task?: string;
  options: Record<string, unknown>;
  url: string;
}

export function readInput(input: string): { ids: string[]; sequences: string[] } {
  if (existsSync(input)) {
    const records = parseSequences(readFileSync(input, 'utf8'));
    return { ids: records.map((r) => r.id), sequences: records.map((r) => r.sequence) };
  }
  return { ids: ['seq1'], sequences: [input] };
}

export async function predictCommand(args: PredictArgs, config: Config): Promise<unknown> {
  const { ids, sequences } = readInput(args.input);
  const body = { sequences, task_type: args.task, options: args.options };
  if (await gatewayUp(args.url)) {
    const results: unknown[] = [];
    for (let i = 0; i < sequences.length; i += config.max_batch_sequences) {
      const chunk = { ...body, sequences: sequences.slice(i, i + config.max_batch_sequences) };
      const env = await callGateway<{ predictions: unknown[] }>(args.url, `/models/${encodeURIComponent(args.model)}/predict/batch`, chunk);
      if (!env.success) throw new Error(`${env.error?.code}: ${env.message}`);
      results.push(...env.data!.predictions);
    }
    return results.map((r, i) => ({ id: ids[i], ...(r as object) }));
  }
  // No gateway: run the model's own worker for this one call.
  const logger = pino({ level: 'warn' }, destination(2));
  const factory = createWorkerFactory(driverContext(config, logger));
  const registry = new ModelRegistry(config.models_dir, factory, logger);
  await registry.init({ load: false });
  try {
    const dep = await registry.load(args.model);
    const parsed = parsePrediction(dep.pkg.manifest, body, 'batch', Number.MAX_SAFE_INTEGER);
    const outputs = await dep.submit({ task: parsed.task.name, items: parsed.items });
    return outputs.map((o, i) => ({ id: ids[i], sequence: parsed.items[i]!.sequence, ...o }));
  } finally {
    await registry.close();
  }
}
