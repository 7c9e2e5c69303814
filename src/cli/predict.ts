// `isomodel predict <model> <sequence|file>`: through a running gateway when one answers,
// otherwise by starting that model's worker locally for the one call.
import { existsSync, readFileSync } from 'node:fs';
import { destination, pino } from 'pino';
import type { Config } from '../config/config.js';
import { createWorkerFactory, driverContext } from '../drivers/factory.js';
import { parsePrediction, resolveTask } from '../api/predict-request.js';
import { discoverPackages } from '../manifest/load.js';
import type { InputType } from '../manifest/schema.js';
import type { ModelDeployment } from '../scheduler/deployment.js';
import { typedRecord, type TypedRecord } from './typed-input.js';
import { ModelRegistry } from '../scheduler/registry.js';
import { parseSequences } from '../validation/fasta.js';
import { callGateway, gatewayUp } from './client.js';
import { IsoError } from '../errors.js';

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

/** One record's answer: its prediction, or its error; either way under its FASTA id. */
export type RecordResult = { id: string; error?: { code: string; message: string } } & Record<string, unknown>;

interface BatchAnswer {
  predictions: ({ sequence?: string; error?: { code: string; message: string } } & Record<string, unknown>)[];
}

/**
 * Every record of the input through the model: a record that fails (a bad sequence, the model's
 * own error) is reported under its id and the others are kept. Through a running gateway when one
 * answers, else by starting the model's worker here.
 */
export async function predictCommand(args: PredictArgs, config: Config): Promise<RecordResult[]> {
  const up = await gatewayUp(args.url);
  const type = up ? await gatewayInputType(args) : localInputType(args, config);
  if (type !== 'sequence') {
    const record = typedRecord(type, args.input);
    return [up ? await predictTypedThroughGateway(args, record) : await predictTypedLocally(args, record, config)];
  }
  const { ids, sequences } = readInput(args.input);
  if (up) return predictThroughGateway(args, ids, sequences, config.max_batch_sequences);
  return predictLocally(args, ids, sequences, config);
}

interface ListedModel {
  name: string;
  default_task: string | null;
  tasks: { name: string; input_type?: InputType }[];
}

/** The input type of the task the call picks (sequence when the model or task is unknown: the call then says why). */
async function gatewayInputType(args: PredictArgs): Promise<InputType> {
  const env = await callGateway<{ models: ListedModel[] }>(args.url, '/v1/models');
  const m = env.data?.models.find((x) => x.name === args.model);
  const task = m?.tasks.find((t) => t.name === (args.task ?? m.default_task));
  return task?.input_type ?? 'sequence';
}

function localInputType(args: PredictArgs, config: Config): InputType {
  const pkg = discoverPackages(config.models_dir).packages.find((p) => p.manifest.name === args.model);
  if (!pkg) return 'sequence';
  return (
    (args.task === undefined
      ? resolveTask(pkg.manifest, undefined)
      : pkg.manifest.tasks.find((t) => t.name === args.task)
    )?.input_type ?? 'sequence'
  );
}

async function predictTypedThroughGateway(args: PredictArgs, record: TypedRecord): Promise<RecordResult> {
  const env = await callGateway<Record<string, unknown>>(
    args.url,
    `/models/${encodeURIComponent(args.model)}/predict`,
    { input: record.input, task_type: args.task, options: args.options },
  );
  if (env.success) return { id: record.id, ...env.data };
  if (
    env.error?.code === 'MODEL_NOT_FOUND' ||
    env.error?.code === 'INVALID_REQUEST' ||
    env.error?.code === 'MODEL_NOT_LOADED'
  )
    throw new Error(`${env.error.code}: ${env.message}`);
  return { id: record.id, error: { code: env.error?.code ?? 'PREDICTION_FAILED', message: env.message } };
}

async function predictTypedLocally(args: PredictArgs, record: TypedRecord, config: Config): Promise<RecordResult> {
  return withLocalModel(args, config, async (dep) => {
    let parsed: ReturnType<typeof parsePrediction>;
    try {
      parsed = parsePrediction(
        dep.pkg.manifest,
        { input: record.input, task_type: args.task, options: args.options },
        'single',
        1,
      );
    } catch (e) {
      if (e instanceof IsoError && e.code === 'INVALID_REQUEST') throw e;
      const err = e instanceof IsoError ? e : new IsoError('INTERNAL_ERROR', (e as Error).message);
      return { id: record.id, error: { code: err.code, message: err.message } };
    }
    const [out] = await dep.submit({ task: parsed.task.name, items: parsed.items });
    return { id: record.id, ...(out as Record<string, unknown>) };
  });
}

/** Starts the model's worker here for one call, and stops it after. */
async function withLocalModel<T>(
  args: PredictArgs,
  config: Config,
  fn: (dep: ModelDeployment) => Promise<T>,
): Promise<T> {
  const logger = pino({ level: 'warn' }, destination(2));
  const factory = createWorkerFactory(driverContext(config, logger));
  const registry = new ModelRegistry(config.models_dir, factory, logger, undefined, undefined, {
    operatorEnv: (n) => config.model_env[n],
  });
  await registry.init({ load: false });
  try {
    return await fn(await registry.load(args.model));
  } finally {
    await registry.close();
  }
}

async function predictThroughGateway(
  args: PredictArgs,
  ids: string[],
  sequences: string[],
  chunkSize: number,
): Promise<RecordResult[]> {
  const path = `/models/${encodeURIComponent(args.model)}/predict`;
  const results: RecordResult[] = [];
  for (let i = 0; i < sequences.length; i += chunkSize) {
    const chunk = sequences.slice(i, i + chunkSize);
    const env = await callGateway<BatchAnswer>(args.url, `${path}/batch`, {
      sequences: chunk,
      task_type: args.task,
      options: args.options,
    });
    if (env.success) {
      env.data!.predictions.forEach((r, j) => results.push({ id: ids[i + j]!, ...r }));
      continue;
    }
    // A request-level problem (no such model or task) is the same for every record: say it once.
    if (
      env.error?.code === 'MODEL_NOT_FOUND' ||
      env.error?.code === 'INVALID_REQUEST' ||
      env.error?.code === 'MODEL_NOT_LOADED'
    )
      throw new Error(`${env.error.code}: ${env.message}`);
    // Else a record of this chunk was refused (a bad sequence fails the whole batch request, or
    // every record failed): each goes alone, so each gets its own answer.
    for (let j = 0; j < chunk.length; j++) {
      const one = await callGateway<Record<string, unknown>>(args.url, path, {
        sequence: chunk[j],
        task_type: args.task,
        options: args.options,
      });
      results.push(
        one.success
          ? { id: ids[i + j]!, sequence: chunk[j], ...one.data }
          : {
              id: ids[i + j]!,
              sequence: chunk[j],
              error: { code: one.error?.code ?? 'PREDICTION_FAILED', message: one.message },
            },
      );
    }
  }
  return results;
}

async function predictLocally(
  args: PredictArgs,
  ids: string[],
  sequences: string[],
  config: Config,
): Promise<RecordResult[]> {
  return withLocalModel(args, config, async (dep) => {
    const manifest = dep.pkg.manifest;
    // Checked one by one: a bad record is answered on its own and the rest go to the model.
    const results: RecordResult[] = new Array(sequences.length);
    const valid: { pos: number; item: ReturnType<typeof parsePrediction>['items'][number] }[] = [];
    let taskName = '';
    sequences.forEach((sequence, pos) => {
      try {
        const parsed = parsePrediction(
          manifest,
          { sequence, task_type: args.task, options: args.options },
          'single',
          1,
        );
        taskName = parsed.task.name;
        valid.push({ pos, item: parsed.items[0]! });
      } catch (e) {
        if (e instanceof IsoError && e.code === 'INVALID_REQUEST') throw e; // no such task, bad options: every record alike
        const err = e instanceof IsoError ? e : new IsoError('INTERNAL_ERROR', (e as Error).message);
        results[pos] = { id: ids[pos]!, sequence, error: { code: err.code, message: err.message } };
      }
    });
    if (valid.length) {
      const outputs = await dep.submit({ task: taskName, items: valid.map((v) => v.item) });
      valid.forEach((v, i) => {
        const o = outputs[i] as Record<string, unknown> & { error?: { code: string; message: string } };
        results[v.pos] = { id: ids[v.pos]!, sequence: v.item.sequence, ...o };
      });
    }
    return results;
  });
}
