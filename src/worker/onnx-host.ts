// ONNX worker host: one onnxruntime session per replica, fed whole batches. The package's
// pipeline module turns items into input tensors and output tensors back into results.
// Usage: node dist/src/worker/onnx-host.js model.onnx pipeline.mjs
// A pipeline may name a model file outside the package (modelPath): then entry is not opened.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as ort from 'onnxruntime-node';
import { runWorker } from './node-host.js';
import { ModelError, type ModelContext, type NodeModel } from './node-model.js';
import type { ItemOutput, WorkItem } from './protocol.js';

type TensorData = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | Int8Array | string[];

export interface TensorSpec {
  type: 'float32' | 'float64' | 'int32' | 'int64' | 'uint8' | 'int8' | 'bool' | 'string';
  data: TensorData;
  dims: number[];
}

export interface OnnxPipeline {
  /**
   * Where the .onnx file is when it is not part of the package (weights an operator mounts, named by
   * an env var): absolute, or relative to the model dir. Default: the manifest's entry. Throw
   * ModelError('MODEL_NOT_LOADED', …) naming the path to fill when the file is not there.
   */
  modelPath?(ctx: ModelContext): string | Promise<string>;
  setup?(ctx: ModelContext, io: { inputNames: readonly string[]; outputNames: readonly string[] }): unknown;
  /** Items of one task → named input tensors for a single session.run over the batch; none (every item failed its checks): no run. */
  preprocess(batch: WorkItem[], task: string): Record<string, TensorSpec> | Promise<Record<string, TensorSpec>>;
  /** Named output tensors → one output per item (or {error} per item). */
  postprocess(
    outputs: Record<string, { data: TensorData; dims: readonly number[] }>,
    batch: WorkItem[],
    task: string,
  ): ItemOutput[];
}

/** ISOMODEL_ONNX_PROVIDERS (set by the gateway from resources.execution_providers and the replica's GPUs): comma-separated, in order of preference. */
function providersFromEnv(value: string | undefined): string[] {
  const list = (value ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  return list.length ? list : ['cpu'];
}

/**
 * A session on the first of `providers` that starts: one this onnxruntime build or machine
 * cannot start (no CUDA libraries, no device) is skipped for the next, and the log says so.
 * Only the listed providers are tried: a model that lists only cuda fails without one.
 */
async function createSession(modelFile: string, threads: number, providers: string[]): Promise<ort.InferenceSession> {
  const options = { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' } as const;
  for (let i = 0; ; i++) {
    const rest = providers.slice(i);
    try {
      const session = await ort.InferenceSession.create(modelFile, { ...options, executionProviders: rest });
      if (i > 0 || providers.length > 1) process.stderr.write(`onnxruntime: execution providers ${rest.join(', ')}\n`);
      return session;
    } catch (e) {
      if (rest.length <= 1)
        throw new ModelError(
          'MODEL_NOT_LOADED',
          `onnxruntime could not start a session with execution providers ${providers.join(', ')}: ${(e as Error).message}`,
        );
      process.stderr.write(
        `onnxruntime: execution provider ${rest[0]} unavailable (${(e as Error).message.split('\n')[0]}); trying ${rest.slice(1).join(', ')}\n`,
      );
    }
  }
}

async function loadOnnxModel(entry: string, ctx: ModelContext): Promise<NodeModel> {
  const pipelinePath = process.argv[3];
  if (!pipelinePath) throw new ModelError('MODEL_NOT_LOADED', 'onnx host needs a pipeline module');
  const pipeline = (await import(pathToFileURL(pipelinePath).href)) as OnnxPipeline;
  if (typeof pipeline.preprocess !== 'function' || typeof pipeline.postprocess !== 'function') {
    throw new ModelError('MODEL_NOT_LOADED', 'pipeline module must export preprocess() and postprocess()');
  }
  // One intra-op thread per CPU the manifest grants: replicas, not threads, are how we scale.
  const threads = Math.max(1, Math.round(Number(process.env.ISOMODEL_CPUS ?? '1')));
  const modelFile = pipeline.modelPath ? resolve(ctx.modelDir, await pipeline.modelPath(ctx)) : entry;
  if (!existsSync(modelFile)) throw new ModelError('MODEL_NOT_LOADED', `ONNX model not found: ${modelFile}`);
  const session = await createSession(modelFile, threads, providersFromEnv(process.env.ISOMODEL_ONNX_PROVIDERS));
  await pipeline.setup?.(ctx, { inputNames: session.inputNames, outputNames: session.outputNames });
  return {
    async predict(batch, task) {
      const specs = await pipeline.preprocess(batch, task);
      const feeds: Record<string, ort.Tensor> = {};
      for (const [name, s] of Object.entries(specs)) feeds[name] = new ort.Tensor(s.type, s.data, s.dims);
      const outputs: Record<string, { data: TensorData; dims: readonly number[] }> = {};
      if (Object.keys(feeds).length === 0) return pipeline.postprocess(outputs, batch, task);
      const results = await session.run(feeds);
      for (const [name, t] of Object.entries(results)) outputs[name] = { data: t.data as TensorData, dims: t.dims };
      return pipeline.postprocess(outputs, batch, task);
    },
    async teardown() {
      await session.release();
    },
  };
}

void runWorker(loadOnnxModel);
