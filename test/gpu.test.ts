// GPUs without a GPU: a fake `nvidia-smi` on PATH stands in for the driver. What /health and
// Prometheus report comes from it (never a constant), each replica of a model with
// resources.gpus is given its own device (CUDA_VISIBLE_DEVICES), a model without GPUs sees none,
// and ONNX models ask onnxruntime for the execution providers of their manifest. This machine has
// no GPU and its onnxruntime has no CUDA libraries: a cuda provider is skipped for cpu.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import { BUILTIN_MODELS_DIR } from '../src/paths.js';
import { GpuProbe, gpuUtilization, parseNvidiaSmi } from '../src/telemetry/gpu.js';
import { DeviceAllocator } from '../src/scheduler/placement.js';
import { request, startGateway, waitFor, workerTmpDir, type Harness } from './helpers.js';

const UUID0 = 'GPU-0b1c2d3e-aaaa-bbbb-cccc-000000000000';
const UUID1 = 'GPU-0b1c2d3e-aaaa-bbbb-cccc-111111111111';
const CSV = `0, ${UUID0}, NVIDIA H100 80GB HBM3, 37, 1024, 81559\n1, ${UUID1}, NVIDIA H100 80GB HBM3, 81, 40960, 81559\n`;

/** A folder holding an executable `nvidia-smi` that checks its arguments and prints `out`. */
function fakeNvidiaSmi(out: string, exitCode = 0): string {
  const dir = mkdtempSync(join(tmpdir(), 'isomodel-fake-smi-'));
  const file = join(dir, 'nvidia-smi');
  writeFileSync(
    file,
    `#!/bin/sh
case "$*" in
  *--query-gpu=index,uuid,name,utilization.gpu,memory.used,memory.total*--format=csv,noheader,nounits*) ;;
  *) echo "unexpected arguments: $*" >&2; exit 2 ;;
esac
cat <<'EOF'
${out}EOF
exit ${exitCode}
`,
  );
  chmodSync(file, 0o755);
  return dir;
}

describe('nvidia-smi parsing', () => {
  it('reads devices, with [N/A] fields as null', () => {
    assert.deepEqual(
      parseNvidiaSmi(`0, GPU-a, Tesla T4, [N/A], 0, 15360\n\n1, GPU-b, Tesla T4, 12, [Not Supported], 15360\n`),
      [
        {
          index: 0,
          uuid: 'GPU-a',
          name: 'Tesla T4',
          utilization_percent: null,
          memory_used_mb: 0,
          memory_total_mb: 15360,
        },
        {
          index: 1,
          uuid: 'GPU-b',
          name: 'Tesla T4',
          utilization_percent: 12,
          memory_used_mb: null,
          memory_total_mb: 15360,
        },
      ],
    );
    assert.deepEqual(parseNvidiaSmi(''), []);
    assert.throws(() => parseNvidiaSmi('No devices were found'), /unexpected nvidia-smi line/);
  });

  it('samples the nvidia-smi on PATH; none, a failing one, or garbage mean no GPU', async () => {
    const ok = fakeNvidiaSmi(CSV);
    const failing = fakeNvidiaSmi(
      'NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver.\n',
      9,
    );
    const empty = mkdtempSync(join(tmpdir(), 'isomodel-no-smi-'));
    try {
      const s = await new GpuProbe({ env: { PATH: `${ok}:/usr/bin:/bin` } }).snapshot();
      assert.equal(s.available, true);
      assert.deepEqual(
        s.gpus.map((g) => [g.index, g.uuid, g.utilization_percent, g.memory_used_mb]),
        [
          [0, UUID0, 37, 1024],
          [1, UUID1, 81, 40960],
        ],
      );
      assert.equal(gpuUtilization([UUID0, '1'], s), 59, 'devices by uuid or index');
      assert.equal(gpuUtilization([], s), null);
      const down = await new GpuProbe({ env: { PATH: `${failing}:/usr/bin:/bin` } }).snapshot();
      assert.deepEqual([down.available, down.gpus], [false, []]);
      assert.match(down.error!, /nvidia-smi failed|unexpected nvidia-smi line/);
      const none = await new GpuProbe({ env: { PATH: empty } }).snapshot();
      assert.deepEqual([none.available, none.error], [false, 'nvidia-smi not found']);
    } finally {
      for (const d of [ok, failing, empty]) rmSync(d, { recursive: true, force: true });
    }
  });

  it('hands devices out least used first, and takes them back', async () => {
    const alloc = new DeviceAllocator(() => Promise.resolve(['a', 'b', 'c']));
    const one = await alloc.acquire(2);
    const two = await alloc.acquire(2);
    assert.deepEqual(
      [one.devices, two.devices],
      [
        ['a', 'b'],
        ['c', 'a'],
      ],
    );
    one.release();
    one.release(); // twice is once
    assert.deepEqual(alloc.usage(), { a: 1, c: 1 });
    assert.deepEqual((await alloc.acquire(1)).devices, ['b']);
    assert.deepEqual(
      (await new DeviceAllocator(() => Promise.resolve([])).acquire(1)).devices,
      [],
      'no GPU: none given',
    );
  });
});

describe('a gateway on a machine with two (fake) GPUs', () => {
  let h: Harness;
  let smi: string;
  let dir: string;
  const savedPath = process.env.PATH;
  before(async () => {
    smi = fakeNvidiaSmi(CSV);
    process.env.PATH = `${smi}:${savedPath}`;
    dir = workerTmpDir('isomodel-gpu-models-');
    const nodeModel = (name: string, gpus: number): void => {
      mkdirSync(join(dir, name));
      writeFileSync(
        join(dir, name, 'model.yaml'),
        `name: ${name}\nversion: 1.0.0\nruntime: node\nentry: index.mjs\ntasks: [{ name: echo, sequence_types: [DNA] }]\nresources: { memory_mb: 128, gpus: ${gpus} }\nscaling: { min_replicas: 2, max_replicas: 2 }\n`,
      );
      writeFileSync(
        join(dir, name, 'index.mjs'),
        `export async function predict(batch) {\n  await new Promise((r) => setTimeout(r, Number(batch[0].options.delay_ms ?? 0)));\n  return batch.map(() => ({ pid: process.pid, cuda_visible_devices: process.env.CUDA_VISIBLE_DEVICES ?? null }));\n}\n`,
      );
    };
    nodeModel('gpu-node', 1);
    nodeModel('cpu-node', 0);
    // The splice ONNX model, asking for cuda then cpu, and for cuda alone.
    const onnxModel = (name: string, providers: string[]): void => {
      cpSync(join(BUILTIN_MODELS_DIR, 'splice'), join(dir, name), { recursive: true });
      const m = parse(readFileSync(join(dir, name, 'model.yaml'), 'utf8')) as Record<string, any>;
      Object.assign(m, { name, required: false, warmup: [], scaling: { min_replicas: 1, max_replicas: 1 } });
      m.resources = { ...m.resources, execution_providers: providers };
      writeFileSync(join(dir, name, 'model.yaml'), stringify(m));
    };
    onnxModel('onnx-cuda-cpu', ['cuda', 'cpu']);
    onnxModel('onnx-cuda-only', ['cuda']);
    h = await startGateway([], { models_dir: dir });
  });
  after(async () => {
    process.env.PATH = savedPath;
    await h?.close();
    rmSync(smi, { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  });

  it('reports the GPUs nvidia-smi lists, in /health, the model metrics and Prometheus', async () => {
    const health = await h.get('/models/gpu-node/health');
    assert.equal(health.body.data.gpu_available, true);
    const detailed = await h.get('/health/detailed');
    assert.equal(detailed.body.data.system.gpu_available, true);
    // gpu-node's two replicas hold both GPUs: 37% and 81% busy.
    const m = await h.get('/models/gpu-node/metrics');
    assert.equal(m.body.data.model_metrics.gpu_utilization, 59);
    assert.equal((await h.get('/models/cpu-node/metrics')).body.data.model_metrics.gpu_utilization, null);
    const prom = await request<string>(`${h.url}/metrics/prometheus`, 'GET');
    assert.match(
      prom.body,
      new RegExp(`isomodel_gpu_utilization_ratio\\{gpu="1",uuid="${UUID1}",name="NVIDIA H100 80GB HBM3"\\} 0.81\\n`),
    );
    assert.match(
      prom.body,
      new RegExp(
        `isomodel_gpu_memory_used_bytes\\{gpu="0",uuid="${UUID0}",name="NVIDIA H100 80GB HBM3"\\} ${1024 * 1024 * 1024}\\n`,
      ),
    );
    const lint = await new Promise<{ code: number; out: string }>((resolve, reject) => {
      const p = execFile('promtool', ['check', 'metrics'], (err, stdout, stderr) => {
        if (err && (err as NodeJS.ErrnoException).code === 'ENOENT')
          return reject(new Error('promtool not found: apt-get install prometheus'));
        resolve({ code: err ? 1 : 0, out: stdout + stderr });
      });
      p.stdin!.end(prom.body);
    });
    assert.equal(lint.code, 0, lint.out);
  });

  it('gives each replica its own GPU, and a model without GPUs none', async () => {
    const replicas = h.gw.registry.deployment('gpu-node')!.replicaInfo();
    assert.deepEqual(
      replicas.map((r) => r.devices!.length),
      [1, 1],
    );
    assert.deepEqual(new Set(replicas.flatMap((r) => r.devices)), new Set([UUID0, UUID1]));
    // Two requests at once, one per replica: each worker sees the device its replica was given.
    const answers = await Promise.all(
      [0, 1].map(() => h.post('/models/gpu-node/predict', { sequence: 'ACGT', options: { delay_ms: 300 } })),
    );
    const seen = new Map(answers.map((r) => [r.body.data.pid as number, r.body.data.cuda_visible_devices as string]));
    assert.equal(seen.size, 2, 'both replicas answered');
    for (const r of replicas) assert.equal(seen.get(r.pid!), r.devices![0]);
    const cpu = await h.post('/models/cpu-node/predict', { sequence: 'ACGT' });
    assert.equal(cpu.body.data.cuda_visible_devices, '', 'no GPU for a model that asked for none');
    assert.equal(h.gw.registry.deployment('cpu-node')!.replicaInfo()[0]!.devices, undefined);
  });

  it('starts an ONNX session on the first execution provider that works, and fails a model whose only provider cannot start', async () => {
    const r = await h.post('/models/onnx-cuda-cpu/predict', {
      sequence: 'CCAGCTGCATCACAGGAGGCCAGCGAGCAGGTCTGTTCCAAGGGCCTTCGAGCCAGTCTG',
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.ok(['ei', 'ie', 'n'].includes(r.body.data.prediction), JSON.stringify(r.body.data));
    await waitFor(() => h.gw.registry.status('onnx-cuda-only') === 'failed', 30_000);
    const failed = await h.post('/models/onnx-cuda-only/predict', { sequence: 'A'.repeat(60) });
    assert.equal(failed.body.error.code, 'MODEL_NOT_LOADED');
    assert.match(failed.body.message, /execution providers cuda/);
  });
});
