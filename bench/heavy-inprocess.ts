// The in-process references of the `heavy` benchmark: the dnabert2-onnx pipeline
// (models/dnabert2-onnx/pipeline.mjs: tokenizer, padding, postprocessing) and an onnxruntime
// session with the worker's options (src/worker/onnx-host.ts: one intra-op thread, one inter-op,
// graphOptimizationLevel 'all'), called directly: no HTTP, no gateway, no worker protocol.
//
//   batched: a closed loop of BACKLOG items: batches are chosen by the scheduler's own RequestQueue
//            with the served model's limits (max_batch_size, max_batch_tokens by length bucket), and
//            every item taken is replaced by the next sequence: the batches the gateway forms at
//            saturation, without the gateway.
//   single:  one item per session run, sequences in turn.
//   answers: P(promoter) of each sequence alone, as JSON (the served answers are checked against it).
//
// Usage: node dist/bench/heavy-inprocess.js EXPORT_DIR MODE SECONDS MAX_ITEMS MAX_TOKENS BACKLOG SEQUENCE...
// Prints one JSON line: {items_per_s, cpu_us_per_item, batches, mean_batch, ms_per_item} (answers: {predictions}).
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { BUILTIN_MODELS_DIR } from '../src/paths.js';
import { RequestQueue, type QueuedRequest } from '../src/scheduler/request-queue.js';
import type { ItemOutput, WorkItem } from '../src/worker/protocol.js';

interface Pipeline {
  modelPath(ctx: unknown): string;
  setup(ctx: unknown, io: { inputNames: readonly string[]; outputNames: readonly string[] }): void;
  preprocess(batch: WorkItem[], task: string): Record<string, { type: 'int64'; data: BigInt64Array; dims: number[] }>;
  postprocess(
    outputs: Record<string, { data: unknown; dims: readonly number[] }>,
    batch: WorkItem[],
    task: string,
  ): ItemOutput[];
}

const [exportDir, mode, secondsArg, maxItemsArg, maxTokensArg, backlogArg, ...sequences] = process.argv.slice(2);
if (!exportDir || !mode || !['batched', 'single', 'answers'].includes(mode) || sequences.length === 0) {
  process.stderr.write(
    'usage: heavy-inprocess EXPORT_DIR batched|single|answers SECONDS MAX_ITEMS MAX_TOKENS BACKLOG SEQUENCE...\n',
  );
  process.exit(2);
}
const TASK = 'promoter_prediction';
const modelDir = join(BUILTIN_MODELS_DIR, 'dnabert2-onnx');
const pipeline = (await import(join(modelDir, 'pipeline.mjs'))) as Pipeline;
const ctx = {
  name: 'dnabert2-onnx',
  version: 'bench',
  modelDir,
  dataDir: modelDir,
  replicaId: 'bench',
  env: { DNABERT2_ONNX_PATH: exportDir },
};
const session = await ort.InferenceSession.create(pipeline.modelPath(ctx), {
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  graphOptimizationLevel: 'all',
});
pipeline.setup(ctx, { inputNames: session.inputNames, outputNames: session.outputNames });

/** What the worker does with one batch: preprocess, one session run, postprocess. */
async function run(batch: WorkItem[]): Promise<ItemOutput[]> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const [name, s] of Object.entries(pipeline.preprocess(batch, TASK)))
    feeds[name] = new ort.Tensor(s.type, s.data, s.dims);
  const out = await session.run(feeds);
  const outputs: Record<string, { data: unknown; dims: readonly number[] }> = {};
  for (const [name, t] of Object.entries(out)) outputs[name] = { data: t.data, dims: t.dims };
  return pipeline.postprocess(outputs, batch, TASK);
}

const items = sequences.map((sequence) => ({ sequence: sequence.toUpperCase(), options: {} }));

if (mode === 'answers') {
  const predictions: number[] = [];
  for (const item of items) predictions.push((await run([item]))[0]!.prediction as number);
  process.stdout.write(JSON.stringify({ predictions }) + '\n');
  await session.release();
  process.exit(0);
}

const seconds = Number(secondsArg);
const limits = { maxItems: Number(maxItemsArg), maxTokens: Number(maxTokensArg) > 0 ? Number(maxTokensArg) : Infinity };
const backlog = Number(backlogArg);
const queue = new RequestQueue<QueuedRequest>(1_000_000, 0);
let next = 0;
let clock = 0;
/** The next sequence in turn, as a one-item request (enqueued in order, as clients' requests are). */
const refill = (n: number): void => {
  for (let i = 0; i < n; i++)
    queue.push({
      task: TASK,
      items: [items[next++ % items.length]!],
      priority: 0,
      enqueuedAt: clock++,
      stream: false,
      done: false,
    });
};
refill(backlog);
const nextBatch = (): WorkItem[] => {
  if (mode === 'single') return [items[next++ % items.length]!];
  const units = queue.takeBatch(limits);
  refill(units.length);
  return units.map((u) => u.req.items[u.index]!);
};

// Warm-up: arenas, JIT of the tokenizer.
const warmEnd = performance.now() + Math.min(2000, seconds * 200);
while (performance.now() < warmEnd) await run(nextBatch());

let n = 0;
let batches = 0;
const cpu0 = process.cpuUsage();
const t0 = performance.now();
const end = t0 + seconds * 1000;
while (performance.now() < end) {
  const batch = nextBatch();
  await run(batch);
  n += batch.length;
  batches++;
}
const elapsed = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
process.stdout.write(
  JSON.stringify({
    items_per_s: n / elapsed,
    cpu_us_per_item: (cpu.user + cpu.system) / n,
    batches,
    mean_batch: n / batches,
    ms_per_item: (elapsed * 1000) / n,
  }) + '\n',
);
await session.release();
