// `isomodel report` (a running gateway's performance report, JSON or HTML) and
// `isomodel bench` (the same load driven at one model, or at two side by side with --compare).
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseSequences } from '../validation/fasta.js';
import {
  compareRuns,
  latencyCdf,
  latencyHistogram,
  renderComparisonHtml,
  renderComparisonText,
  type BenchRun,
  type Comparison,
} from '../telemetry/report.js';
import { summarizeLatencies } from '../telemetry/series.js';
import { gatewayUp, type Envelope } from './client.js';
import { mulberry32 } from '../util/prng.js';

/** A gateway with API keys wants one on every call but the probes: ISOMODEL_API_KEY (a key with the predict scope). */
function authHeaders(): Record<string, string> {
  const key = process.env.ISOMODEL_API_KEY;
  return key ? { authorization: `Bearer ${key}` } : {};
}

async function requireGateway(url: string): Promise<void> {
  if (!(await gatewayUp(url)))
    throw new Error(
      `no gateway answers at ${url}: start one with \`isomodel serve\` (or pass --url / set ISOMODEL_URL)`,
    );
}

function failure(env: Envelope, status: number): Error {
  return new Error(`${env.error?.code ?? `HTTP ${status}`}: ${env.message}`);
}

export interface ReportCommandOptions {
  model: string;
  url: string;
  window: string;
  format: 'json' | 'html';
  out?: string;
}

/** Fetches the report; writes it to `out` (returns a line saying so) or returns its text. */
export async function reportCommand(o: ReportCommandOptions): Promise<string> {
  await requireGateway(o.url);
  const u = new URL(`/v1/reports/${encodeURIComponent(o.model)}`, o.url);
  u.searchParams.set('window', o.window);
  u.searchParams.set('format', o.format);
  const res = await fetch(u, { headers: authHeaders(), signal: AbortSignal.timeout(60_000) });
  const text = await res.text();
  let body: string;
  if (o.format === 'html' && res.ok && (res.headers.get('content-type') ?? '').startsWith('text/html')) body = text;
  else {
    const env = JSON.parse(text) as Envelope;
    if (!res.ok || !env.success) throw failure(env, res.status);
    body = JSON.stringify(env.data, null, 2) + '\n';
  }
  if (!o.out) return body;
  const path = resolve(o.out);
  writeFileSync(path, body);
  return `report written to ${path}\n`;
}

// ------------------------------------------------------------------ bench

export interface BenchOptions {
  url: string;
  /** Gateway for the second target (e.g. another instance serving the other version); default: url. */
  urlB?: string;
  /** One target, or two with --compare: "model" or "model@version" (the version is checked). */
  targets: string[];
  requests: number;
  concurrency: number;
  warmup: number;
  sequenceFile?: string;
  length: number;
  task?: string;
  timeoutMs: number;
  /** Path prefix for the .json and .html files (compare); default in the working dir. */
  out?: string;
  json?: boolean;
}

interface ModelInfo {
  name: string;
  version: string;
  status: string;
  tasks: string[];
  task_details: { name: string; sequence_types: string[] }[];
}

interface Target {
  label: string;
  model: string;
  version?: string;
  url: string;
  info: ModelInfo;
  task: string;
}

const ALPHABETS: Record<string, string> = { DNA: 'ACGT', RNA: 'ACGU', protein: 'ACDEFGHIKLMNPQRSTVWY' };

async function resolveTarget(spec: string, url: string, taskWanted: string | undefined): Promise<Target> {
  const at = spec.lastIndexOf('@');
  const model = at > 0 ? spec.slice(0, at) : spec;
  const version = at > 0 ? spec.slice(at + 1) : undefined;
  const res = await fetch(new URL(`/models/${encodeURIComponent(model)}/info`, url), {
    headers: authHeaders(),
    signal: AbortSignal.timeout(10_000),
  });
  const env = (await res.json()) as Envelope<ModelInfo>;
  if (!env.success || !env.data) throw failure(env, res.status);
  const info = env.data;
  if (version && info.version !== version)
    throw new Error(
      `${url} serves ${model} version ${info.version}, not ${version} (to compare versions, run the other one on another gateway and pass --url-b)`,
    );
  if (info.status !== 'ready')
    throw new Error(`model ${model} is ${info.status} at ${url}; load it first (POST /v1/models/${model}/load)`);
  const task = taskWanted ?? info.tasks[0]!;
  if (!info.tasks.includes(task))
    throw new Error(`model ${model} has no task ${task} (it has ${info.tasks.join(', ')})`);
  return { label: spec, model, version, url, info, task };
}

function workloadSequences(o: BenchOptions, targets: Target[]): { sequences: string[]; source: string } {
  if (o.sequenceFile) {
    const seqs = parseSequences(readFileSync(o.sequenceFile, 'utf8')).map((s) => s.sequence);
    if (seqs.length === 0) throw new Error(`no sequences in ${o.sequenceFile}`);
    return { sequences: seqs, source: o.sequenceFile };
  }
  const accepted = targets.map(
    (t) => new Set(t.info.task_details.find((d) => d.name === t.task)?.sequence_types ?? ['DNA']),
  );
  const type = ['DNA', 'RNA', 'protein'].find((ty) => accepted.every((s) => s.has(ty)));
  if (!type) throw new Error('the targets accept no common sequence type: give the workload with --sequence-file');
  const alphabet = ALPHABETS[type]!;
  const rand = mulberry32(42);
  const sequences = Array.from({ length: 64 }, () =>
    Array.from({ length: o.length }, () => alphabet[Math.floor(rand() * alphabet.length)]).join(''),
  );
  return { sequences, source: `generated (${type}, seed 42)` };
}

interface Shot {
  ok: boolean;
  ms: number;
  code?: string;
  sequences: number;
}

async function shoot(t: Target, sequence: string, timeoutMs: number): Promise<Shot> {
  const t0 = performance.now();
  try {
    const res = await fetch(new URL(`/models/${encodeURIComponent(t.model)}/predict`, t.url), {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...authHeaders() },
      body: JSON.stringify({ sequence, task_type: t.task }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const env = (await res.json()) as Envelope;
    const ms = performance.now() - t0;
    if (res.ok && env.success) return { ok: true, ms, sequences: 1 };
    return { ok: false, ms, code: env.error?.code ?? `HTTP_${res.status}`, sequences: 0 };
  } catch (e) {
    const err = e as Error;
    return {
      ok: false,
      ms: performance.now() - t0,
      code: err.name === 'TimeoutError' ? 'CLIENT_TIMEOUT' : 'NETWORK_ERROR',
      sequences: 0,
    };
  }
}

async function runLoad(t: Target, sequences: string[], o: BenchOptions): Promise<BenchRun> {
  for (let i = 0; i < o.warmup; i++) await shoot(t, sequences[i % sequences.length]!, o.timeoutMs);
  // Worker resources while the load runs, from the gateway's monitor (1 call a second).
  const rss: number[] = [];
  const cpu: number[] = [];
  let replicasMax: number | null = null;
  const sampleResources = async (): Promise<void> => {
    try {
      const res = await fetch(new URL(`/v1/monitor/metrics/${encodeURIComponent(t.model)}`, t.url), {
        headers: authHeaders(),
        signal: AbortSignal.timeout(2000),
      });
      const env = (await res.json()) as Envelope<{
        totals: { rss_bytes: number | null; cpu_percent: number | null; replicas: number };
      }>;
      const tot = env.data?.totals;
      if (!tot) return;
      if (tot.rss_bytes !== null) rss.push(tot.rss_bytes);
      if (tot.cpu_percent !== null) cpu.push(tot.cpu_percent);
      replicasMax = Math.max(replicasMax ?? 0, tot.replicas);
    } catch {
      // the monitor is optional for a benchmark
    }
  };
  let sampling = Promise.resolve();
  const sampler = setInterval(() => {
    sampling = sampling.then(sampleResources);
  }, 1000);
  const shots: Shot[] = new Array<Shot>(o.requests);
  let next = 0;
  const t0 = performance.now();
  const worker = async (): Promise<void> => {
    for (;;) {
      const i = next++;
      if (i >= o.requests) return;
      shots[i] = await shoot(t, sequences[i % sequences.length]!, o.timeoutMs);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(o.concurrency, o.requests)) }, worker));
  const wall = (performance.now() - t0) / 1000;
  clearInterval(sampler);
  await sampling;
  await sampleResources();
  const ok = shots.filter((s) => s.ok);
  const errors: Record<string, number> = {};
  for (const s of shots) if (!s.ok) errors[s.code!] = (errors[s.code!] ?? 0) + 1;
  const lat = ok.map((s) => s.ms).sort((a, b) => a - b);
  const r3 = (v: number): number => Math.round(v * 1000) / 1000;
  return {
    target: t.label,
    model: t.model,
    version: t.info.version,
    task: t.task,
    url: t.url,
    requests: shots.length,
    successful: ok.length,
    failed: shots.length - ok.length,
    error_rate: r3((shots.length - ok.length) / Math.max(1, shots.length)),
    errors_by_code: errors,
    wall_s: r3(wall),
    throughput_rps: r3(ok.length / wall),
    sequences_per_s: r3(ok.reduce((n, s) => n + s.sequences, 0) / wall),
    latency_ms: summarizeLatencies(lat),
    histogram: latencyHistogram(lat),
    cdf: latencyCdf(lat),
    resources: {
      samples: rss.length,
      rss_peak_bytes: rss.length ? Math.max(...rss) : null,
      cpu_avg_percent: cpu.length ? Math.round((cpu.reduce((a, b) => a + b, 0) / cpu.length) * 10) / 10 : null,
      cpu_peak_percent: cpu.length ? Math.max(...cpu) : null,
      replicas_max: replicasMax,
    },
  };
}

export interface BenchResult {
  runs: BenchRun[];
  comparison?: Comparison;
  files: string[];
  /** For stdout: the table, or JSON with --json. */
  text: string;
  /** For stderr: where the files went, warnings. */
  notes: string;
}

function stamp(): string {
  return new Date().toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
}

export async function benchCommand(o: BenchOptions): Promise<BenchResult> {
  if (o.targets.length < 1 || o.targets.length > 2) throw new Error('bench takes one model, or two with --compare a b');
  if (!(o.requests >= 1) || !(o.concurrency >= 1) || !(o.warmup >= 0) || !(o.length >= 1))
    throw new Error('--requests, --concurrency and --length must be positive, --warmup zero or more');
  const urls = o.targets.map((_, i) => (i === 1 && o.urlB ? o.urlB : o.url));
  for (const u of new Set(urls)) await requireGateway(u);
  const targets: Target[] = [];
  for (let i = 0; i < o.targets.length; i++) targets.push(await resolveTarget(o.targets[i]!, urls[i]!, o.task));
  const { sequences, source } = workloadSequences(o, targets);
  const runs: BenchRun[] = [];
  // One after the other, never at once: each target gets the machine to itself.
  for (const t of targets) runs.push(await runLoad(t, sequences, o));
  const lengths = sequences.map((s) => s.length);
  const workload = {
    requests: o.requests,
    concurrency: o.concurrency,
    warmup: o.warmup,
    sequences: sequences.length,
    sequence_source: source,
    mean_length: Math.round(lengths.reduce((a, b) => a + b, 0) / lengths.length),
    min_length: Math.min(...lengths),
    max_length: Math.max(...lengths),
  };
  if (runs.length === 1) {
    const data = { kind: 'isomodel.bench', generated_at: new Date().toISOString(), workload, run: runs[0] };
    const files: string[] = [];
    if (o.out) {
      const path = resolve(`${o.out}.json`);
      writeFileSync(path, JSON.stringify(data, null, 2) + '\n');
      files.push(path);
    }
    const r = runs[0]!;
    const text = o.json
      ? JSON.stringify(data, null, 2)
      : `${r.target} (${r.model} ${r.version}, ${r.task}): ${r.successful}/${r.requests} ok in ${r.wall_s} s, ${r.throughput_rps} req/s, latency p50 ${r.latency_ms.p50} ms, p90 ${r.latency_ms.p90} ms, p99 ${r.latency_ms.p99} ms`;
    return { runs, files, text: text + '\n', notes: files.map((f) => `saved ${f}\n`).join('') };
  }
  const comparison = compareRuns(runs[0]!, runs[1]!, workload);
  const prefix = resolve(o.out ?? `isomodel-bench-${targets[0]!.model}-vs-${targets[1]!.model}-${stamp()}`);
  const files = [`${prefix}.json`, `${prefix}.html`];
  writeFileSync(files[0]!, JSON.stringify(comparison, null, 2) + '\n');
  writeFileSync(files[1]!, renderComparisonHtml(comparison));
  const text = (o.json ? JSON.stringify(comparison, null, 2) : renderComparisonText(comparison)) + '\n';
  let notes = files.map((f) => `saved ${f}\n`).join('');
  if (runs.some((r) => r.errors_by_code.RATE_LIMITED))
    notes +=
      'warning: the gateway rate-limited the benchmark; raise rate_limit.max in its config (0 disables it) for a fair comparison\n';
  return { runs, comparison, files, text, notes };
}
