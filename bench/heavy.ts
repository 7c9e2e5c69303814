// The `heavy` benchmark: a transformer-size model, where one item costs milliseconds, served with
// batching by length bucket, against the same model called in-process with the same batches, and
// against the gateway with batching off. The model is dnabert2-onnx running a DNABERT-2-shaped
// network with RANDOM weights (6 layers, hidden 384, 6 heads, intermediate 1536), made and
// exported to ONNX by the bench itself with models/dnabert2/tools/ (torch needed; nothing is
// downloaded). The sequences have mixed lengths. See bench/README.md.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BUILTIN_MODELS_DIR, PACKAGE_ROOT } from '../src/paths.js';
import { mulberry32 } from '../src/util/prng.js';
import type { RowFn } from './batching.js';
import {
  copyModels,
  cpuSeconds,
  loadBodies,
  runJson,
  setYamlKey,
  startGateway,
  stealMeter,
  type LoadResult,
  type Server,
} from './lib.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const WARMUP_SECONDS = Math.max(1, Math.min(2, Math.round(SECONDS / 5)));
const PYTHON = process.env.BENCH_PYTHON ?? '/usr/bin/python3';
const TOOLS = join(BUILTIN_MODELS_DIR, 'dnabert2', 'tools');
const NETWORK = [
  '--hidden',
  '384',
  '--heads',
  '6',
  '--layers',
  '6',
  '--intermediate',
  '1536',
  '--seed',
  '16',
  '--format',
  'safetensors',
];
/** The served model's batching, and the in-process reference's. */
const MAX_BATCH = 16;
const MAX_TOKENS = 2048;
const BATCHED = `{ max_batch_size: ${MAX_BATCH}, max_batch_tokens: ${MAX_TOKENS}, max_delay_ms: 0 }`;
const UNBATCHED = '{ max_batch_size: 1, max_delay_ms: 0 }';
const CONNECTIONS = 32;
/** Sequence lengths (bp) the load rotates through: three length buckets (17-32, 33-64, 65-128). */
const LENGTHS = [20, 90, 28, 56, 120, 32, 44, 64, 24, 100, 48, 72];
const TASK = 'promoter_prediction';

/** The random checkpoint exported to ONNX, cached in the temp dir by the tools' contents and arguments. */
async function ensureExport(): Promise<string> {
  const hash = createHash('sha256');
  for (const f of ['make_tiny_checkpoint.py', 'export_onnx.py', '../dnabert2_arch.py', '../dnabert2_tokenizer.py'])
    hash.update(readFileSync(join(TOOLS, f)));
  hash.update(NETWORK.join(' '));
  const dir = join(tmpdir(), `isomodel-bench-dnabert2-6x384-${hash.digest('hex').slice(0, 12)}`);
  const onnx = join(dir, 'onnx');
  if (existsSync(join(onnx, 'isomodel_onnx.json'))) return onnx;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  process.stderr.write(`heavy: making a random 6-layer DNABERT-2 checkpoint and exporting it to ONNX in ${dir}\n`);
  await runJson(PYTHON, [join(TOOLS, 'make_tiny_checkpoint.py'), join(dir, 'checkpoint'), ...NETWORK]);
  await runJson(PYTHON, [join(TOOLS, 'export_onnx.py'), join(dir, 'checkpoint'), onnx]);
  return onnx;
}

function sequences(): string[] {
  const rnd = mulberry32(2024);
  return LENGTHS.map((n) => Array.from({ length: n }, () => 'ACGT'[Math.floor(rnd() * 4)]).join(''));
}

interface Served {
  server: Server;
  predict: string;
  pids: number[];
  metrics(): Promise<{ batches: number; average_batch_size: number | null; padding_ratio: number | null }>;
  stop(): Promise<void>;
}

async function heavyGateway(exportDir: string, batching: string): Promise<Served> {
  const edit = (y: string): string => {
    let out = setYamlKey(y, 'env', `{ DNABERT2_ONNX_PATH: ${JSON.stringify(exportDir)} }`);
    out = setYamlKey(out, 'scaling', '{ min_replicas: 1, max_replicas: 1, idle_timeout_s: 0 }');
    out = setYamlKey(out, 'batching', batching);
    return setYamlKey(out, 'required', 'true');
  };
  const dir = copyModels([{ from: join(BUILTIN_MODELS_DIR, 'dnabert2-onnx'), name: 'heavy', edit }]);
  let server: Server;
  try {
    server = await startGateway(dir);
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const base = `${server.url}/models/heavy`;
  const health = (await (await fetch(`${base}/health`)).json()) as { data: { replicas: { pid?: number }[] } };
  return {
    server,
    predict: `${base}/predict`,
    pids: [server.pid, ...health.data.replicas.map((r) => r.pid).filter((p): p is number => typeof p === 'number')],
    metrics: async () =>
      (
        (await (await fetch(`${base}/metrics`)).json()) as {
          data: { model_metrics: { batches: number; average_batch_size: number | null; padding_ratio: number | null } };
        }
      ).data.model_metrics,
    stop: async () => {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

interface Run extends LoadResult {
  meanBatch: number | null;
  paddingRatio: number | null;
  cpuUs: number[];
}

async function measure(s: Served, bodies: unknown[]): Promise<Run> {
  await loadBodies(s.predict, bodies, CONNECTIONS, WARMUP_SECONDS);
  const m0 = await s.metrics();
  const cpu0 = s.pids.map((p) => cpuSeconds(p));
  const r = await loadBodies(s.predict, bodies, CONNECTIONS, SECONDS);
  const m1 = await s.metrics();
  const cpuUs = s.pids.map((p, i) => ((cpuSeconds(p) - cpu0[i]!) * 1e6) / Math.max(1, r.total));
  const sizes = (m: typeof m0): number => m.batches * (m.average_batch_size ?? 0);
  const meanBatch = m1.batches > m0.batches ? (sizes(m1) - sizes(m0)) / (m1.batches - m0.batches) : null;
  return { ...r, meanBatch, paddingRatio: m1.padding_ratio, cpuUs };
}

/** P(promoter) of each sequence through the gateway, one request each. */
async function servedAnswers(url: string, seqs: string[]): Promise<number[]> {
  const out: number[] = [];
  for (const sequence of seqs) {
    const r = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ sequence, task_type: TASK }),
    });
    const text = await r.text();
    if (r.status !== 200) throw new Error(`${url} answered ${r.status}: ${text.slice(0, 300)}`);
    out.push((JSON.parse(text) as { data: { prediction: number } }).data.prediction);
  }
  return out;
}

interface InProcess {
  items_per_s: number;
  cpu_us_per_item: number;
  mean_batch: number;
  ms_per_item: number;
}

export async function heavy(row: RowFn): Promise<void> {
  let exportDir: string;
  try {
    await runJson<string>(PYTHON, ['-c', 'import json, torch; print(json.dumps(torch.__version__))']);
    exportDir = await ensureExport();
  } catch (e) {
    process.stderr.write(
      `heavy skipped: ${(e as Error).message}\n(needs ${PYTHON} with torch: apt-get install -y python3-torch)\n`,
    );
    row('heavy', `not run (${PYTHON} lacks torch, or the export failed)`, NaN, null, '', false);
    return;
  }
  const seqs = sequences();
  const bodies = seqs.map((sequence) => ({ sequence, task_type: TASK }));
  const script = join(PACKAGE_ROOT, 'dist', 'bench', 'heavy-inprocess.js');
  const inProcess = (mode: 'batched' | 'single'): Promise<InProcess> =>
    runJson<InProcess>(process.execPath, [
      script,
      exportDir,
      mode,
      String(SECONDS),
      String(MAX_BATCH),
      String(MAX_TOKENS),
      String(CONNECTIONS),
      ...seqs,
    ]);
  const stolen = stealMeter();

  const reference = (
    await runJson<{ predictions: number[] }>(process.execPath, [
      script,
      exportDir,
      'answers',
      '0',
      '1',
      '0',
      '1',
      ...seqs,
    ])
  ).predictions;
  const single = await inProcess('single');
  const batchedLimit = await inProcess('batched');

  const on = await heavyGateway(exportDir, BATCHED);
  let batched: Run;
  let diff = 0;
  try {
    const answers = await servedAnswers(on.predict, seqs);
    answers.forEach((p, i) => (diff = Math.max(diff, Math.abs(p - reference[i]!))));
    batched = await measure(on, bodies);
  } finally {
    await on.stop();
  }
  const off = await heavyGateway(exportDir, UNBATCHED);
  let unbatched: Run;
  try {
    unbatched = await measure(off, bodies);
  } finally {
    await off.stop();
  }

  const mean = LENGTHS.reduce((a, b) => a + b, 0) / LENGTHS.length;
  row(
    'heavy',
    `in-process cost of one item, batch 1, ${LENGTHS.length} sequences of ${Math.min(...LENGTHS)}-${Math.max(...LENGTHS)} bp (mean ${Math.round(mean)}) (ms)`,
    single.ms_per_item,
    null,
    '>= 1 ms',
    single.ms_per_item >= 1,
  );
  row('heavy', 'served answers vs in-process, one item each: max |dp|', diff, null, '<= 0.0001', diff <= 1e-4, 7);
  row(
    'heavy',
    `throughput, c=${CONNECTIONS}, served batched vs in-process batched (items/s)`,
    batched.rps,
    batchedLimit.items_per_s,
    '>= 80% of in-process',
    batched.rps >= 0.8 * batchedLimit.items_per_s,
  );
  row(
    'heavy',
    `throughput, c=${CONNECTIONS}, served batched vs served unbatched (items/s)`,
    batched.rps,
    unbatched.rps,
    '>= 4x unbatched',
    batched.rps >= 4 * unbatched.rps,
  );
  row(
    'heavy',
    'in-process batched vs in-process batch 1 (items/s): what batching buys on this CPU',
    batchedLimit.items_per_s,
    single.items_per_s,
    'reference',
    null,
  );
  row(
    'heavy',
    'mean batch size: served batched vs in-process batched',
    batched.meanBatch ?? NaN,
    batchedLimit.mean_batch,
    `manifest: ${BATCHED}`,
    null,
    1,
  );
  row(
    'heavy',
    'padding share of the tokens computed, served batched (%)',
    (batched.paddingRatio ?? NaN) * 100,
    null,
    '',
    null,
    1,
  );
  row('heavy', `p50 latency, c=${CONNECTIONS}, batched vs unbatched (ms)`, batched.p50, unbatched.p50, '', null, 0);
  row('heavy', `p99 latency, c=${CONNECTIONS}, batched vs unbatched (ms)`, batched.p99, unbatched.p99, '', null, 0);
  // CPU time per item hardly depends on what else runs on the machine; throughput does (see the README).
  row(
    'heavy',
    'worker CPU per item: served batched vs in-process batched (ms)',
    batched.cpuUs[1]! / 1000,
    batchedLimit.cpu_us_per_item / 1000,
    '',
    null,
  );
  row(
    'heavy',
    'worker CPU per item: served batched vs served unbatched (ms)',
    batched.cpuUs[1]! / 1000,
    unbatched.cpuUs[1]! / 1000,
    '',
    null,
  );
  row(
    'heavy',
    'in-process CPU per item: batched vs batch 1 (ms)',
    batchedLimit.cpu_us_per_item / 1000,
    single.cpu_us_per_item / 1000,
    'reference',
    null,
  );
  row(
    'heavy',
    'gateway CPU per item: served batched vs served unbatched (ms)',
    batched.cpuUs[0]! / 1000,
    unbatched.cpuUs[0]! / 1000,
    '',
    null,
    3,
  );
  row('heavy', 'CPU time stolen by the hypervisor during the section (%)', stolen(), null, 'reference', null, 1);
  for (const [what, r] of [
    ['batched', batched],
    ['unbatched', unbatched],
  ] as const)
    if (r.errors || r.non2xx) row('heavy', `errors / non-2xx: ${what}`, r.errors + r.non2xx, null, '0', false, 0);
}
