// The machine's limit for the `batching` benchmark: the splice ONNX model called in-process with
// full batches, no HTTP, no gateway, no worker protocol. Same session options as
// src/worker/onnx-host.ts for a one-CPU replica (intraOpNumThreads 1, interOpNumThreads 1,
// graphOptimizationLevel 'all'). Every iteration encodes its batch with src/worker/encoding.ts
// and runs the session, as the worker does for each batch (post-processing to JSON excluded).
// Usage: node dist/bench/onnx-inprocess.js MODEL.onnx SECONDS BATCH SEQUENCE...
// Prints one JSON line: {sequences_per_s, cpu_us_per_sequence, batches, batch_ms, batch}.
import * as ort from 'onnxruntime-node';
import { oneHot } from '../src/worker/encoding.js';

const [model, secondsArg, batchArg, ...sequences] = process.argv.slice(2);
if (!model || !secondsArg || !batchArg || sequences.length === 0) {
  process.stderr.write('usage: onnx-inprocess MODEL.onnx SECONDS BATCH SEQUENCE...\n');
  process.exit(2);
}
const seconds = Number(secondsArg);
const batch = Number(batchArg);
const LENGTH = 60;

const session = await ort.InferenceSession.create(model, {
  intraOpNumThreads: 1,
  interOpNumThreads: 1,
  graphOptimizationLevel: 'all',
});
// Batches rotate through the given sequences, as the load generator does (upper-cased, as the
// gateway's validation hands them to the worker).
const pool = sequences.map((s) => s.toUpperCase());
const batches = pool.map((_, k) => Array.from({ length: batch }, (_, i) => pool[(k + i) % pool.length]!));

async function once(k: number): Promise<void> {
  const input = new ort.Tensor('float32', oneHot(batches[k % batches.length]!, LENGTH), [batch, LENGTH, 4]);
  const out = await session.run({ onehot: input });
  if (out.probabilities?.dims[0] !== batch) throw new Error('unexpected output shape');
}

// Warm-up: first runs allocate arenas and JIT the encoder.
const warmEnd = performance.now() + Math.min(1000, seconds * 200);
for (let k = 0; performance.now() < warmEnd; k++) await once(k);

let n = 0;
const cpu0 = process.cpuUsage();
const t0 = performance.now();
const end = t0 + seconds * 1000;
while (performance.now() < end) await once(n++);
const elapsed = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
const sequencesPerS = (n * batch) / elapsed;
const cpuUsPerSequence = (cpu.user + cpu.system) / (n * batch);
process.stdout.write(
  JSON.stringify({
    sequences_per_s: sequencesPerS,
    cpu_us_per_sequence: cpuUsPerSequence,
    batches: n,
    batch_ms: (elapsed * 1000) / n,
    batch,
  }) + '\n',
);
await session.release();
