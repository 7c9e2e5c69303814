// ONNX worker host: one onnxruntime session per replica, fed whole batches. The package's
// pipeline module turns items into input tensors and output tensors back into results.
// Usage: node dist/src/worker/onnx-host.js model.onnx pipeline.mjs
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
  setup?(ctx: ModelContext, io: { inputNames: readonly string[]; outputNames: readonly string[] }): unknown;
  /** Items of one task → named input tensors for a single session.run over the batch. */
  preprocess(batch: WorkItem[], task: string): Record<string, TensorSpec> | Promise<Record<string, TensorSpec>>;
  /** Named output tensors → one output per item (or {error} per item). */
  postprocess(outputs: Record<string, { data: TensorData; dims: readonly number[] }>, batch: WorkItem[], task: string): ItemOutput[];
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
  const session = await ort.InferenceSession.create(entry, { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
  await pipeline.setup?.(ctx, { inputNames: session.inputNames, outputNames: session.outputNames });
  return {
    async predict(batch, task) {
      const specs = await pipeline.preprocess(batch, task);
      const feeds: Record<string, ort.Tensor> = {};
      for (const [name, s] of Object.entries(specs)) feeds[name] = new ort.Tensor(s.type, s.data, s.dims);
      const results = await session.run(feeds);
      const outputs: Record<string, { data: TensorData; dims: readonly number[] }> = {};
      for (const [name, t] of Object.entries(results)) outputs[name] = { data: t.data as TensorData, dims: t.dims };
      return pipeline.postprocess(outputs, batch, task);
    },
    async teardown() {
      await session.release();
    },
  };
}

void runWorker(loadOnnxModel);
