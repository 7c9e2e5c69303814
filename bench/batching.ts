// The batching and baseline benchmarks (issue 4), both on the splice ONNX model:
// - batching: 64 concurrent single-sequence clients through the full stack (one replica), against
//   the model called in-process with full batches of 64 (bench/onnx-inprocess.ts) and against the
//   same gateway with batching off (max_batch_size 1);
// - baseline: the same model behind "the design users write instead", one FastAPI + uvicorn app
//   (bench/fastapi/splice_fastapi.py) and one Flask app (bench/flask/splice_app.py) with the same
//   numpy forward pass, at concurrency 1, 32 and 64.
// See bench/README.md for what is measured and the caveats.
import { readFileSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { join } from 'node:path';
import { BUILTIN_MODELS_DIR, PACKAGE_ROOT } from '../src/paths.js';
import {
  copyModels,
  cpuSeconds,
  freePort,
  loadBodies,
  runJson,
  sequentialLatency,
  setYamlKey,
  startGateway,
  startServer,
  stealMeter,
  type LoadResult,
  type Server,
} from './lib.js';

export type RowFn = (
  bench: string,
  metric: string,
  iso: number,
  base: number | null,
  target: string,
  ok: boolean | null,
  digits?: number,
) => void;

const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
/** Load before each measured run (JIT, onnxruntime arenas, connection set-up); not measured. */
const WARMUP_SECONDS = Math.max(1, Math.min(2, Math.round(SECONDS / 5)));
/** Debian's python3 (python3-onnx, python3-numpy, python3-flask), not a pyenv shim. */
const PYTHON = process.env.BENCH_PYTHON ?? '/usr/bin/python3';
const SPLICE = join(BUILTIN_MODELS_DIR, 'splice');
const FLASK_APP = join(PACKAGE_ROOT, 'bench', 'flask', 'splice_app.py');
const FASTAPI_APP = join(PACKAGE_ROOT, 'bench', 'fastapi', 'splice_fastapi.py');
const CLASSES = ['ei', 'ie', 'n'] as const;
const BATCH = 64;

interface Vectors {
  tolerance: number;
  cases: { sequence: string; probabilities: number[] }[];
}
const vectors = (): Vectors => JSON.parse(readFileSync(join(SPLICE, 'test_vectors.json'), 'utf8')) as Vectors;
/** The request bodies every load run rotates through: the 8 reference sequences of the model. */
const bodies = (v: Vectors): { sequence: string }[] => v.cases.map((c) => ({ sequence: c.sequence }));

const ONE_REPLICA = '{ min_replicas: 1, max_replicas: 1, idle_timeout_s: 0 }';
const UNBATCHED = '{ max_batch_size: 1, max_delay_ms: 0 }';

interface Running {
  server: Server;
  predict: string;
  /** Processes whose CPU time is reported (gateway and its worker, or Flask). */
  pids: number[];
  /** Cumulative [batches, sequences batched] of the model, where the server counts them. */
  batches?: () => Promise<[number, number]>;
  stop(): Promise<void>;
}

/** BENCH_SPLICE_BATCHING: the splice model's batching for the batching-on runs, instead of its manifest's (a YAML flow map). */
const SPLICE_BATCHING = process.env.BENCH_SPLICE_BATCHING || undefined;

/** A gateway serving a temp copy of the splice package: one replica, batching as given (else BENCH_SPLICE_BATCHING, else the manifest's). */
async function spliceGateway(batching = SPLICE_BATCHING): Promise<Running> {
  const edit = (y: string): string => {
    const one = setYamlKey(y, 'scaling', ONE_REPLICA);
    return batching ? setYamlKey(one, 'batching', batching) : one;
  };
  const dir = copyModels([{ from: SPLICE, name: 'splice', edit }]);
  const cleanup = (): void => rmSync(dir, { recursive: true, force: true });
  let server: Server;
  try {
    server = await startGateway(dir);
  } catch (e) {
    cleanup();
    throw e;
  }
  const base = `${server.url}/models/splice`;
  const health = (await (await fetch(`${base}/health`)).json()) as { data: { replicas: { pid?: number }[] } };
  const workers = health.data.replicas.map((r) => r.pid).filter((p): p is number => typeof p === 'number');
  if (workers.length !== 1) {
    await server.stop();
    cleanup();
    throw new Error(`expected exactly one splice replica, found ${workers.length}`);
  }
  return {
    server,
    predict: `${base}/predict`,
    pids: [server.pid, ...workers],
    batches: async () => {
      // Sequences that went through a batch; total_sequences also counts requests cancelled
      // in the queue (the connections autocannon drops at the end of a run).
      const m = (await (await fetch(`${base}/metrics`)).json()) as {
        data: { model_metrics: { batches: number; average_batch_size: number | null } };
      };
      const { batches, average_batch_size } = m.data.model_metrics;
      return [batches, batches * (average_batch_size ?? 0)];
    },
    stop: async () => {
      await server.stop();
      cleanup();
    },
  };
}

/** The FastAPI + uvicorn peer (bench/fastapi/splice_fastapi.py), with async or sync routes. */
async function fastapiPeer(mode: 'async' | 'sync'): Promise<Running> {
  const port = await freePort();
  const server = await startServer(
    PYTHON,
    [FASTAPI_APP, join(SPLICE, 'model.onnx'), String(port), mode],
    `http://127.0.0.1:${port}/health`,
  );
  return { server, predict: `${server.url}/predict`, pids: [server.pid], stop: () => server.stop() };
}

async function flask(): Promise<Running> {
  const port = await freePort();
  const server = await startServer(
    PYTHON,
    [FLASK_APP, 'serve', join(SPLICE, 'model.onnx'), String(port)],
    `http://127.0.0.1:${port}/health`,
  );
  return { server, predict: `${server.url}/predict`, pids: [server.pid], stop: () => server.stop() };
}

/** Largest |p - reference| over the test vectors, each sent as one request; throws on an error answer. */
async function maxDiff(url: string, v: Vectors): Promise<number> {
  let worst = 0;
  for (const c of v.cases) {
    const r = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ sequence: c.sequence }),
    });
    const text = await r.text();
    if (r.status !== 200) throw new Error(`${url} answered ${r.status}: ${text.slice(0, 300)}`);
    const json = JSON.parse(text) as {
      data?: { probabilities: Record<string, number> };
      probabilities?: Record<string, number>;
    };
    const probs = (json.data ?? json).probabilities;
    if (!probs) throw new Error(`${url}: no probabilities in ${text.slice(0, 300)}`);
    CLASSES.forEach((k, i) => (worst = Math.max(worst, Math.abs(probs[k]! - c.probabilities[i]!))));
  }
  return worst;
}

interface Measured extends LoadResult {
  /** CPU time per answered request, in microseconds, of each of the server's processes (pids order). */
  cpuUs: number[];
  /** Mean sequences per batch during the run, where the server reports batches. */
  meanBatch: number | null;
}

/** Warm-up, then a measured autocannon run rotating through the bodies. */
async function measure(s: Running, body: unknown[], connections: number): Promise<Measured> {
  await loadBodies(s.predict, body, connections, WARMUP_SECONDS);
  const cpu0 = s.pids.map((pid) => cpuSeconds(pid));
  const b0 = await s.batches?.();
  const r = await loadBodies(s.predict, body, connections, SECONDS);
  const b1 = await s.batches?.();
  // CPU time rather than CPU share: on a shared machine a process gets what the scheduler gives
  // it, but what it spends per request hardly depends on the load around it.
  const cpuUs = s.pids.map((pid, i) => ((cpuSeconds(pid) - cpu0[i]!) * 1e6) / Math.max(1, r.total));
  const meanBatch = b0 && b1 && b1[0] > b0[0] ? (b1[1] - b0[1]) / (b1[0] - b0[0]) : null;
  return { ...r, cpuUs, meanBatch };
}

const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);

/** The machine's 1-minute load average, as a row: the figures around it are only as good as the machine was quiet. */
function loadRow(row: RowFn, bench: string): void {
  const [avg] = loadavg();
  const cores = availableParallelism();
  if (avg! > cores * 0.5)
    process.stderr.write(
      `${bench}: load average ${avg!.toFixed(1)} on ${cores} cores: throughput figures will be low and noisy\n`,
    );
  row(
    bench,
    `machine load average (1 min) before the run, ${cores} cores`,
    avg!,
    null,
    `quiet: < ${cores * 0.5}`,
    avg! < cores * 0.5,
    1,
  );
}

function errorsRow(row: RowFn, bench: string, what: string, r: LoadResult): void {
  if (r.errors || r.non2xx) row(bench, `errors / non-2xx: ${what}`, r.errors + r.non2xx, null, '0', false, 0);
}

export async function batching(row: RowFn): Promise<void> {
  const v = vectors();
  const body = bodies(v);
  const y = readFileSync(join(SPLICE, 'model.yaml'), 'utf8');
  const shipped = SPLICE_BATCHING ?? /^batching:\s*(.*)$/m.exec(y)?.[1] ?? '(manifest default)';
  loadRow(row, 'batching');
  const stolen = stealMeter();

  // (a) The machine's limit: in-process, full batches, one intra-op thread.
  const limit = await runJson<{ sequences_per_s: number; cpu_us_per_sequence: number }>(process.execPath, [
    join(PACKAGE_ROOT, 'dist', 'bench', 'onnx-inprocess.js'),
    join(SPLICE, 'model.onnx'),
    String(SECONDS),
    String(BATCH),
    ...v.cases.map((c) => c.sequence),
  ]);

  // The full stack, batching as shipped, one replica.
  const on = await spliceGateway();
  let batched: Measured;
  let diff: number;
  let clientBatches: LoadResult;
  try {
    diff = await maxDiff(on.predict, v);
    batched = await measure(on, body, BATCH);
    // The same stack fed whole batches by the client (POST …/predict/batch, 64 sequences each):
    // the worker path (queue, framing, IPC, JSON, onnxruntime) without a request per sequence.
    const batchBody = [{ sequences: Array.from({ length: BATCH }, (_, i) => v.cases[i % v.cases.length]!.sequence) }];
    await loadBodies(`${on.predict}/batch`, batchBody, 2, WARMUP_SECONDS);
    clientBatches = await loadBodies(`${on.predict}/batch`, batchBody, 2, SECONDS);
  } finally {
    await on.stop();
  }

  // (b) The same gateway setup with batching off.
  const off = await spliceGateway(UNBATCHED);
  let unbatched: Measured;
  try {
    unbatched = await measure(off, body, BATCH);
  } finally {
    await off.stop();
  }

  row('batching', 'answers vs test_vectors.json: max |dp|', diff, null, `<= ${v.tolerance}`, diff <= v.tolerance, 7);
  row(
    'batching',
    `throughput, c=${BATCH}, batched vs in-process batch ${BATCH} (seq/s)`,
    batched.rps,
    limit.sequences_per_s,
    '>= 85% of in-process',
    batched.rps >= 0.85 * limit.sequences_per_s,
    0,
  );
  row(
    'batching',
    `throughput, c=${BATCH}, batched vs unbatched (seq/s)`,
    batched.rps,
    unbatched.rps,
    '>= 5x unbatched',
    batched.rps >= 5 * unbatched.rps,
    0,
  );
  row('batching', `p99 latency, c=${BATCH}, batched vs unbatched (ms)`, batched.p99, unbatched.p99, '', null);
  row(
    'batching',
    'mean batch size, batched vs unbatched',
    batched.meanBatch ?? NaN,
    unbatched.meanBatch ?? NaN,
    `manifest: ${shipped}`,
    null,
    1,
  );
  row(
    'batching',
    'gateway CPU per sequence, batched vs unbatched (us)',
    batched.cpuUs[0]!,
    unbatched.cpuUs[0]!,
    '',
    null,
    0,
  );
  row(
    'batching',
    'worker CPU per sequence, batched vs unbatched (us)',
    batched.cpuUs[1]!,
    unbatched.cpuUs[1]!,
    '',
    null,
    0,
  );
  row('batching', `in-process CPU per sequence, batch ${BATCH} (us)`, limit.cpu_us_per_sequence, null, '', null, 0);
  row(
    'batching',
    `client batches of ${BATCH} (/predict/batch, c=2) vs in-process (seq/s)`,
    clientBatches.rps * BATCH,
    limit.sequences_per_s,
    'reference',
    null,
    0,
  );
  row('batching', 'CPU time stolen by the hypervisor during the section (%)', stolen(), null, 'reference', null, 1);
  errorsRow(row, 'batching', 'batched', batched);
  errorsRow(row, 'batching', 'unbatched', unbatched);
  errorsRow(row, 'batching', 'client batches', clientBatches);
}

/** The c=1 figures: three interleaved rounds per server (one sequential client), the median of each. */
interface Sequential {
  p50: number;
  p99: number;
  rps: number;
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const LATENCY_SAMPLES = Math.max(200, Math.round(Number(process.env.BENCH_LATENCY_SAMPLES ?? 3000) / 2));

/** Python peers that cannot run (a package missing) are left out with a row saying so. */
async function pythonHas(modules: string): Promise<boolean> {
  try {
    await runJson<string>(PYTHON, ['-c', `import json, ${modules}; print(json.dumps("ok"))`]);
    return true;
  } catch {
    return false;
  }
}

export async function baseline(row: RowFn): Promise<void> {
  const v = vectors();
  const body = bodies(v);
  loadRow(row, 'baseline');
  const stolen = stealMeter();

  // The baselines' interpreter must compute the same model before their speed means anything.
  let check: { max_abs_diff: number; ok: boolean };
  try {
    check = await runJson<{ max_abs_diff: number; ok: boolean }>(PYTHON, [
      FLASK_APP,
      'check',
      join(SPLICE, 'model.onnx'),
      join(SPLICE, 'test_vectors.json'),
    ]).catch((e: Error & { result?: { max_abs_diff: number; ok: boolean } }) => {
      if (e.result) return e.result;
      throw e;
    });
  } catch (e) {
    process.stderr.write(
      `baseline skipped: ${(e as Error).message}\n(needs ${PYTHON} with numpy and onnx: apt-get install -y python3-onnx python3-numpy)\n`,
    );
    row('baseline', `not run (${PYTHON} lacks onnx/numpy)`, NaN, null, '', false);
    return;
  }
  if (!check.ok) {
    row(
      'baseline',
      'numpy interpreter of the Python peers vs test_vectors.json: max |dp|',
      NaN,
      check.max_abs_diff,
      `<= ${v.tolerance}`,
      false,
      7,
    );
    return;
  }
  const haveFastapi = await pythonHas('fastapi, uvicorn');
  const haveFlask = await pythonHas('flask');
  if (!haveFastapi)
    row(
      'baseline',
      `FastAPI peer: not run (${PYTHON} lacks fastapi/uvicorn: apt-get install -y python3-fastapi python3-uvicorn)`,
      NaN,
      null,
      '',
      false,
    );
  if (!haveFlask)
    row(
      'baseline',
      `Flask peer: not run (${PYTHON} lacks flask: apt-get install -y python3-flask)`,
      NaN,
      null,
      '',
      false,
    );

  // Every server runs for the whole section (an idle one costs no CPU); each is measured alone.
  const servers: Record<string, Running> = {};
  try {
    servers.isomodel = await spliceGateway();
    if (haveFastapi) {
      servers['fastapi-async'] = await fastapiPeer('async');
      servers['fastapi-sync'] = await fastapiPeer('sync');
    }
    if (haveFlask) servers.flask = await flask();
    const names = Object.keys(servers);
    let worst = 0;
    for (const name of names) worst = Math.max(worst, await maxDiff(servers[name]!.predict, v));
    row(
      'baseline',
      `answers vs test_vectors.json, every server: max |dp|`,
      worst,
      check.max_abs_diff,
      `<= ${v.tolerance}`,
      worst <= v.tolerance && check.max_abs_diff <= v.tolerance,
      7,
    );

    // c=1: the same warm-up for every server, then three interleaved rounds of one sequential client.
    for (const name of names) await loadBodies(servers[name]!.predict, body, 8, WARMUP_SECONDS);
    const rounds: Record<string, Sequential[]> = Object.fromEntries(names.map((n) => [n, []]));
    for (let i = 0; i < 3; i++)
      for (const name of names)
        rounds[name]!.push(await sequentialLatency(servers[name]!.predict, body, LATENCY_SAMPLES, true));
    const c1: Record<string, Sequential> = Object.fromEntries(
      names.map((n) => [
        n,
        {
          p50: median(rounds[n]!.map((r) => r.p50)),
          p99: median(rounds[n]!.map((r) => r.p99)),
          rps: median(rounds[n]!.map((r) => r.rps)),
        },
      ]),
    );

    const loaded: Record<number, Record<string, Measured>> = {};
    for (const c of [32, 64]) {
      loaded[c] = {};
      for (const name of names) loaded[c]![name] = await measure(servers[name]!, body, c);
    }

    // The FastAPI peer: the faster of its two ways of writing the route, at each concurrency.
    const peer = <T extends { rps: number }>(figures: Record<string, T>): { name: string; r: T } | null => {
      const candidates = ['fastapi-async', 'fastapi-sync'].filter((n) => figures[n]);
      if (!candidates.length) return null;
      const name = candidates.reduce((a, b) => (figures[b]!.rps > figures[a]!.rps ? b : a));
      return { name, r: figures[name]! };
    };
    const iso1 = c1.isomodel!;
    const p1 = peer(c1);
    if (p1) {
      row(
        'baseline',
        `c=1 p50 latency vs FastAPI + uvicorn (${p1.name.replace('fastapi-', '')} routes) (ms)`,
        iso1.p50,
        p1.r.p50,
        "<= the peer's",
        iso1.p50 <= p1.r.p50,
        3,
      );
      row(
        'baseline',
        `c=1 throughput vs FastAPI + uvicorn (${p1.name.replace('fastapi-', '')} routes) (req/s)`,
        iso1.rps,
        p1.r.rps,
        ">= 2x the peer's",
        iso1.rps >= 2 * p1.r.rps,
        0,
      );
      row('baseline', 'c=1 p99 latency vs FastAPI + uvicorn (ms)', iso1.p99, p1.r.p99, '', null, 3);
    }
    if (c1.flask) row('baseline', 'c=1 p50 latency vs Flask (ms)', iso1.p50, c1.flask.p50, '', null, 3);
    for (const c of [32, 64]) {
      const iso = loaded[c]!.isomodel!;
      const p = peer(loaded[c]!);
      if (p) {
        const target = c === 64 ? ">= 15x the peer's" : '';
        row(
          'baseline',
          `c=${c} throughput vs FastAPI + uvicorn (${p.name.replace('fastapi-', '')} routes) (req/s)`,
          iso.rps,
          p.r.rps,
          target,
          c === 64 ? iso.rps >= 15 * p.r.rps : null,
          0,
        );
        row('baseline', `c=${c} p99 latency vs FastAPI + uvicorn (ms)`, iso.p99, p.r.p99, '', null);
      }
      const fl = loaded[c]!.flask;
      if (fl) {
        row(
          'baseline',
          `c=${c} throughput vs Flask (req/s)`,
          iso.rps,
          fl.rps,
          c === 32 ? '>= 5x Flask' : '',
          c === 32 ? iso.rps >= 5 * fl.rps : null,
          0,
        );
        if (c === 32)
          row('baseline', `c=${c} p99 latency vs Flask (ms)`, iso.p99, fl.p99, 'lower than Flask', iso.p99 < fl.p99);
      }
    }
    const iso32 = loaded[32]!.isomodel!;
    const p32 = peer(loaded[32]!);
    if (p32)
      row(
        'baseline',
        'c=32 CPU per request: gateway + worker vs FastAPI (us)',
        sum(iso32.cpuUs),
        sum(p32.r.cpuUs),
        '',
        null,
        0,
      );
    if (loaded[32]!.flask)
      row(
        'baseline',
        'c=32 CPU per request: gateway + worker vs Flask (us)',
        sum(iso32.cpuUs),
        sum(loaded[32]!.flask.cpuUs),
        '',
        null,
        0,
      );
    const batching =
      SPLICE_BATCHING ?? /^batching:\s*(.*)$/m.exec(readFileSync(join(SPLICE, 'model.yaml'), 'utf8'))?.[1] ?? 'default';
    row(
      'baseline',
      'c=64 mean batch size of isomodel',
      loaded[64]!.isomodel!.meanBatch ?? NaN,
      null,
      `batching: ${batching}`,
      null,
      1,
    );
    row('baseline', 'CPU time stolen by the hypervisor during the section (%)', stolen(), null, 'reference', null, 1);
    for (const c of [32, 64])
      for (const name of names) errorsRow(row, 'baseline', `${name}, c=${c}`, loaded[c]![name]!);
  } finally {
    for (const s of Object.values(servers)) await s.stop();
  }
}
