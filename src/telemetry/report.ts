// Performance reports: one model over a window (JSON, and a self-contained HTML page with
// inline SVG charts), and the side-by-side comparison `isomodel bench --compare` produces.
import { IsoError } from '../errors.js';
import type { ModelRegistry } from '../scheduler/registry.js';
import type { StateStore } from '../store/db.js';
import {
  attributeVersions,
  perfSnapshots,
  perfStats,
  requestRows,
  sourceOf,
  type PerfSnapshot,
  type PerfStats,
  type RequestRow,
} from './perf.js';
import { formatWindow, iso, percentileSorted, seriesStats, type LatencySummary, type SeriesStats } from './series.js';
import { barChart, escapeXml, formatNumber, lineChart, PALETTE } from './svg.js';
import { ensureTelemetrySchema } from './telemetry-schema.js';

const MB = 1024 * 1024;
/** Upper bounds (ms) of the latency histogram's buckets; the last bucket is open. */
export const HISTOGRAM_EDGES_MS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 30_000];

export interface HistogramBucket {
  /** Upper bound in ms; null for the open last bucket. */
  le_ms: number | null;
  count: number;
}

export function latencyHistogram(values: number[]): HistogramBucket[] {
  const counts = new Array<number>(HISTOGRAM_EDGES_MS.length + 1).fill(0);
  for (const v of values) {
    const i = HISTOGRAM_EDGES_MS.findIndex((e) => v <= e);
    counts[i === -1 ? HISTOGRAM_EDGES_MS.length : i]!++;
  }
  return counts.map((count, i) => ({ le_ms: HISTOGRAM_EDGES_MS[i] ?? null, count }));
}

export interface SeriesPoint {
  at: string;
  requests: number;
  errors: number;
  rps: number;
  p50_ms: number | null;
  p99_ms: number | null;
  cpu_percent: number | null;
  rss_bytes: number | null;
}

export interface ModelReport {
  kind: 'isomodel.report';
  model: string;
  generated_at: string;
  window: { label: string; seconds: number; start: string; end: string };
  current: { status: string; version: string; replicas: number; healthy: boolean } | null;
  totals: PerfStats;
  versions: (PerfStats & { version: string; tasks: (PerfStats & { task: string })[] })[];
  histogram: HistogramBucket[];
  resources: {
    samples: number;
    cpu_percent: SeriesStats;
    rss_bytes: SeriesStats;
    memory_percent: SeriesStats;
    open_fds: SeriesStats;
    replicas_max: number | null;
    restarts: number;
  };
  series: { bucket_s: number; start: string | null; points: SeriesPoint[] };
  snapshots: PerfSnapshot[];
  alerts: {
    id: number;
    kind: string;
    severity: string;
    state: string;
    message: string;
    fired_at: string;
    resolved_at: string | null;
    peak_value: number | null;
  }[];
}

export interface ReportDeps {
  store: StateStore;
  registry: ModelRegistry;
}

function knownModel(registry: ModelRegistry, model: string): boolean {
  try {
    registry.package(model);
    return true;
  } catch {
    return false;
  }
}

/** Builds the report of one model over [now - windowMs, now]. */
export function buildReport(deps: ReportDeps, model: string, windowMs: number, now = Date.now()): ModelReport {
  const { store, registry } = deps;
  ensureTelemetrySchema(store);
  const start = now - windowMs;
  const known = knownModel(registry, model);
  const manifest = known ? registry.package(model).manifest : null;
  const current = manifest?.version ?? null;
  // Requests rejected before their task was known (bad sequence…) belong to a single-task model's task.
  const soleTask = manifest?.tasks.length === 1 ? manifest.tasks[0]!.name : 'unknown';
  const rows = attributeVersions(requestRows(store, model, start, now + 1), () => current);
  if (!known && rows.length === 0)
    throw new IsoError(
      'MODEL_NOT_FOUND',
      `no model named "${model.slice(0, 80)}" and no requests for it in the window`,
    );

  type Sample = {
    at: number;
    version: string;
    cpu_percent: number | null;
    rss_bytes: number | null;
    memory_percent: number | null;
    open_fds: number | null;
    replicas: number;
  };
  const samples = store.db
    .prepare(
      'SELECT at, version, cpu_percent, rss_bytes, memory_percent, open_fds, replicas FROM monitor_model_samples WHERE model = ? AND at >= ? AND at <= ? ORDER BY at',
    )
    .all(model, start, now) as Sample[];
  const restarts = (
    store.db
      .prepare(`SELECT COUNT(*) AS n FROM monitor_events WHERE model = ? AND kind = 'restart' AND at >= ? AND at <= ?`)
      .get(model, start, now) as { n: number }
  ).n;

  const byVersion = new Map<string, RequestRow[]>();
  for (const r of rows) {
    let list = byVersion.get(r.version!);
    if (!list) byVersion.set(r.version!, (list = []));
    list.push(r);
  }
  const versions = [...byVersion.entries()].map(([version, list]) => {
    const byTask = new Map<string, RequestRow[]>();
    for (const r of list) {
      const t = r.task ?? soleTask;
      let l = byTask.get(t);
      if (!l) byTask.set(t, (l = []));
      l.push(r);
    }
    return {
      version,
      ...perfStats(list, windowMs),
      tasks: [...byTask.entries()].map(([task, l]) => ({ task, ...perfStats(l, windowMs) })),
    };
  });

  // Time series over the part of the window that has data.
  let first = now;
  for (const r of rows) first = Math.min(first, r.at_ms - r.latency_ms);
  if (samples.length) first = Math.min(first, samples[0]!.at);
  const seriesStart = Math.max(start, first);
  const span = Math.max(1000, now - seriesStart);
  const bucketMs = Math.max(1000, Math.ceil(span / 60 / 1000) * 1000);
  const nBuckets = Math.max(1, Math.ceil(span / bucketMs));
  const buckets = Array.from({ length: nBuckets }, () => ({
    lat: [] as number[],
    requests: 0,
    errors: 0,
    cpu: [] as number[],
    rss: null as number | null,
  }));
  const slot = (at: number): number => Math.min(nBuckets - 1, Math.max(0, Math.floor((at - seriesStart) / bucketMs)));
  for (const r of rows) {
    const b = buckets[slot(r.at_ms)]!;
    b.requests++;
    if (r.status !== 'success') b.errors++;
    else if (sourceOf(r.route) === 'api') b.lat.push(r.latency_ms);
  }
  for (const s of samples) {
    const b = buckets[slot(s.at)]!;
    if (s.cpu_percent !== null) b.cpu.push(s.cpu_percent);
    if (s.rss_bytes !== null) b.rss = Math.max(b.rss ?? 0, s.rss_bytes);
  }
  const r3 = (v: number | null): number | null => (v === null ? null : Math.round(v * 1000) / 1000);
  const points: SeriesPoint[] = (rows.length || samples.length ? buckets : []).map((b, i) => {
    const sorted = b.lat.sort((x, y) => x - y);
    return {
      at: iso(seriesStart + i * bucketMs)!,
      requests: b.requests,
      errors: b.errors,
      rps: r3(b.requests / (bucketMs / 1000))!,
      p50_ms: r3(percentileSorted(sorted, 50)),
      p99_ms: r3(percentileSorted(sorted, 99)),
      cpu_percent: b.cpu.length ? Math.round((b.cpu.reduce((x, y) => x + y, 0) / b.cpu.length) * 10) / 10 : null,
      rss_bytes: b.rss,
    };
  });

  const alerts = store.db
    .prepare(
      'SELECT id, kind, severity, state, message, fired_at, resolved_at, peak_value FROM monitor_alerts WHERE model = ? AND (fired_at >= ? OR resolved_at IS NULL OR resolved_at >= ?) AND fired_at <= ? ORDER BY id DESC LIMIT 100',
    )
    .all(model, start, start, now) as {
    id: number;
    kind: string;
    severity: string;
    state: string;
    message: string;
    fired_at: number;
    resolved_at: number | null;
    peak_value: number | null;
  }[];
  const d = known ? registry.deployment(model) : undefined;
  const stat = (f: (s: Sample) => number | null, floor: number): SeriesStats =>
    seriesStats(
      samples.map((s) => ({ at: s.at, value: f(s) })),
      floor,
    );
  return {
    kind: 'isomodel.report',
    model,
    generated_at: iso(now)!,
    window: { label: formatWindow(windowMs), seconds: Math.round(windowMs / 1000), start: iso(start)!, end: iso(now)! },
    current: known
      ? {
          status: registry.status(model),
          version: current!,
          replicas: d?.replicaInfo().length ?? 0,
          healthy: d?.healthy() ?? false,
        }
      : null,
    totals: perfStats(rows, windowMs),
    versions,
    histogram: latencyHistogram(
      rows.filter((r) => r.status === 'success' && sourceOf(r.route) === 'api').map((r) => r.latency_ms),
    ),
    resources: {
      samples: samples.length,
      cpu_percent: stat((s) => s.cpu_percent, 5),
      rss_bytes: stat((s) => s.rss_bytes, MB),
      memory_percent: stat((s) => s.memory_percent, 1),
      open_fds: stat((s) => s.open_fds, 2),
      replicas_max: samples.length ? Math.max(...samples.map((s) => s.replicas)) : null,
      restarts,
    },
    series: { bucket_s: bucketMs / 1000, start: points.length ? iso(seriesStart) : null, points },
    snapshots: perfSnapshots(store, model, start, now),
    alerts: alerts.map((a) => ({ ...a, fired_at: iso(a.fired_at)!, resolved_at: iso(a.resolved_at) })),
  };
}

// ------------------------------------------------------------------ HTML

const CSS = `
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;background:#f3f4f6;color:#111827}
main{max-width:1120px;margin:0 auto;padding:24px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:16px;margin:28px 0 10px}
.meta{color:#6b7280;font-size:13px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:10px;margin-top:16px}
.card{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:10px 12px}
.card b{display:block;font-size:20px;margin-top:2px}.card span{color:#6b7280;font-size:12px}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:12px}
.charts svg{width:100%;height:auto;border:1px solid #e5e7eb;border-radius:8px;background:#fff}
table{border-collapse:collapse;width:100%;background:#fff;font-size:13px;border:1px solid #e5e7eb}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #e5e7eb;white-space:nowrap}
th{background:#f9fafb;font-weight:600}td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.firing{color:#b91c1c;font-weight:600}.resolved{color:#047857}.better{color:#047857;font-weight:600}.worse{color:#b91c1c}
footer{color:#9ca3af;font-size:12px;margin-top:32px}
`;

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>${escapeXml(title)}</title><style>${CSS}</style></head>
<body><main>${body}<footer>generated by isomodel · self-contained: no scripts, no external resources</footer></main></body></html>
`;
}

const ms = (v: number | null | undefined): string => (v === null || v === undefined ? '–' : `${formatNumber(v)} ms`);
const pct = (v: number | null | undefined): string =>
  v === null || v === undefined ? '–' : `${(v * 100).toFixed(v < 0.01 && v > 0 ? 2 : 1)}%`;
const num = (v: number | null | undefined, unit = ''): string =>
  v === null || v === undefined ? '–' : `${formatNumber(v)}${unit}`;
const mb = (v: number | null | undefined): string =>
  v === null || v === undefined ? '–' : `${(v / MB).toFixed(1)} MB`;

function card(label: string, value: string): string {
  return `<div class="card"><span>${escapeXml(label)}</span><b>${escapeXml(value)}</b></div>`;
}

function table(headers: string[], rows: string[][], numeric: boolean[] = []): string {
  const th = headers.map((h, i) => `<th${numeric[i] ? ' class="num"' : ''}>${escapeXml(h)}</th>`).join('');
  const body = rows.length
    ? rows
        .map((r) => `<tr>${r.map((c, i) => `<td${numeric[i] ? ' class="num"' : ''}>${c}</td>`).join('')}</tr>`)
        .join('')
    : `<tr><td colspan="${headers.length}">none</td></tr>`;
  return `<table><thead><tr>${th}</tr></thead><tbody>${body}</tbody></table>`;
}

function statsRow(label: string, s: PerfStats): string[] {
  const l = s.latency_ms;
  return [
    escapeXml(label),
    String(s.requests),
    String(s.failed),
    pct(s.error_rate),
    ms(l.mean),
    ms(l.p50),
    ms(l.p90),
    ms(l.p99),
    ms(l.max),
    num(s.active_rps, '/s'),
  ];
}

export function renderReportHtml(r: ModelReport): string {
  const t = r.totals;
  const pts = r.series.points.map((p) => ({ ...p, x: Date.parse(p.at) }));
  const res = r.resources;
  const cards = [
    card('requests', String(t.requests)),
    card('error rate', pct(t.error_rate)),
    card('p50 latency', ms(t.latency_ms.p50)),
    card('p90 latency', ms(t.latency_ms.p90)),
    card('p99 latency', ms(t.latency_ms.p99)),
    card('throughput (active)', num(t.active_rps, ' req/s')),
    card('avg CPU', num(res.cpu_percent.avg, '%')),
    card('peak memory', mb(res.rss_bytes.max)),
  ].join('');
  const charts = [
    lineChart({
      id: 'chart-latency',
      title: 'Latency over time',
      xType: 'time',
      yLabel: 'ms',
      xLabel: 'UTC',
      series: [
        { name: 'p50', points: pts.map((p) => ({ x: p.x, y: p.p50_ms })) },
        { name: 'p99', points: pts.map((p) => ({ x: p.x, y: p.p99_ms })), color: PALETTE[1] },
      ],
    }),
    lineChart({
      id: 'chart-throughput',
      title: 'Throughput and errors',
      xType: 'time',
      yLabel: 'requests/s',
      xLabel: 'UTC',
      series: [
        { name: 'requests/s', points: pts.map((p) => ({ x: p.x, y: p.rps })) },
        { name: 'errors/s', color: PALETTE[1], points: pts.map((p) => ({ x: p.x, y: p.errors / r.series.bucket_s })) },
      ],
    }),
    barChart({
      id: 'chart-histogram',
      title: 'Latency distribution (successful requests)',
      categories: r.histogram.map((b, i) =>
        b.le_ms === null ? `>${formatNumber(HISTOGRAM_EDGES_MS[i - 1]!)}` : `≤${formatNumber(b.le_ms)}`,
      ),
      series: [{ name: 'requests', values: r.histogram.map((b) => b.count) }],
      yLabel: 'requests',
    }),
    lineChart({
      id: 'chart-cpu',
      title: 'Worker CPU (all replicas)',
      xType: 'time',
      xLabel: 'UTC',
      yLabel: '% of one core',
      series: [{ name: 'CPU %', color: PALETTE[3], points: pts.map((p) => ({ x: p.x, y: p.cpu_percent })) }],
    }),
    lineChart({
      id: 'chart-memory',
      title: 'Worker resident memory (all replicas, peak per bucket)',
      xType: 'time',
      xLabel: 'UTC',
      yLabel: 'MB',
      series: [
        {
          name: 'RSS MB',
          color: PALETTE[2],
          points: pts.map((p) => ({
            x: p.x,
            y: p.rss_bytes === null ? null : Math.round((p.rss_bytes / MB) * 10) / 10,
          })),
        },
      ],
    }),
  ].join('');
  const head = ['', 'requests', 'errors', 'error rate', 'mean', 'p50', 'p90', 'p99', 'max', 'throughput'];
  const numeric = [false, true, true, true, true, true, true, true, true, true];
  const vrows = r.versions.flatMap((v) => [
    statsRow(`v${v.version} (all tasks)`, v),
    ...v.tasks.map((tk) => statsRow(`v${v.version} · ${tk.task}`, tk)),
  ]);
  const sourceRows = Object.entries(t.by_source).map(([k, v]) => [
    escapeXml(k),
    String(v.requests),
    String(v.failed),
    String(v.sequences),
  ]);
  const errRows = Object.entries(t.errors_by_code).map(([code, n]) => [escapeXml(code), String(n)]);
  const trendRow = (label: string, s: SeriesStats, f: (v: number | null) => string): string[] => [
    escapeXml(label),
    f(s.min),
    f(s.avg),
    f(s.max),
    f(s.last),
    escapeXml(s.trend),
  ];
  const resRows = [
    trendRow('CPU % (sum of replicas)', res.cpu_percent, (v) => num(v, '%')),
    trendRow('resident memory', res.rss_bytes, mb),
    trendRow('memory % of limit (max replica)', res.memory_percent, (v) => num(v, '%')),
    trendRow('open fds', res.open_fds, (v) => num(v)),
  ];
  const snapRows = r.snapshots
    .slice(-30)
    .map((s) => [
      escapeXml(s.at.slice(0, 19).replace('T', ' ')),
      escapeXml(s.version),
      String(s.requests),
      pct(s.error_rate),
      num(s.throughput_rps, '/s'),
      ms(s.latency_p50_ms),
      ms(s.latency_p99_ms),
      num(s.cpu_avg_percent, '%'),
      mb(s.rss_max_bytes),
    ]);
  const alertRows = r.alerts.map((a) => [
    `<span class="${a.state}">${escapeXml(a.state)}</span>`,
    escapeXml(a.kind),
    escapeXml(a.message),
    escapeXml(a.fired_at.slice(0, 19).replace('T', ' ')),
    escapeXml(a.resolved_at?.slice(0, 19).replace('T', ' ') ?? '–'),
  ]);
  const current = r.current
    ? `status <b>${escapeXml(r.current.status)}</b> · version ${escapeXml(r.current.version)} · ${r.current.replicas} replica(s)`
    : 'not installed now';
  const body = `
<h1>Performance report: ${escapeXml(r.model)}</h1>
<div class="meta">window ${escapeXml(r.window.label)} (${escapeXml(r.window.start)} → ${escapeXml(r.window.end)}) · ${current} · ${res.samples} monitor samples · ${res.restarts} restart(s)</div>
<div class="cards">${cards}</div>
<h2>Charts</h2><div class="charts">${charts}</div>
<h2>By version and task</h2>${table(head, vrows, numeric)}
<h2>By source</h2><div class="meta">api: requests to the API; job, pipeline: the model calls of batch jobs and pipelines (their records are the sequences). Latency figures are the API's.</div>${table(['source', 'requests', 'errors', 'sequences'], sourceRows, [false, true, true, true])}
<h2>Resource use</h2>${table(['metric', 'min', 'avg', 'max', 'last', 'trend'], resRows, [false, true, true, true, true, false])}
<h2>Errors by code</h2>${table(['code', 'count'], errRows, [false, true])}
<h2>Persisted snapshots</h2>${table(['at (UTC)', 'version', 'requests', 'error rate', 'throughput', 'p50', 'p99', 'avg CPU', 'peak RSS'], snapRows, [false, false, true, true, true, true, true, true, true])}
<h2>Alerts</h2>${table(['state', 'kind', 'message', 'fired (UTC)', 'resolved (UTC)'], alertRows)}
`;
  return page(`isomodel report: ${r.model}`, body);
}

// ------------------------------------------------------------------ comparison

export interface BenchRun {
  target: string;
  model: string;
  version: string | null;
  task: string;
  url: string;
  requests: number;
  successful: number;
  failed: number;
  error_rate: number;
  errors_by_code: Record<string, number>;
  wall_s: number;
  throughput_rps: number;
  sequences_per_s: number;
  latency_ms: LatencySummary;
  histogram: HistogramBucket[];
  /** Up to 101 points of the latency CDF: [percentile, ms]. */
  cdf: [number, number][];
  resources: {
    samples: number;
    rss_peak_bytes: number | null;
    cpu_avg_percent: number | null;
    cpu_peak_percent: number | null;
    replicas_max: number | null;
  };
}

export interface Comparison {
  kind: 'isomodel.bench-compare';
  generated_at: string;
  workload: {
    requests: number;
    concurrency: number;
    warmup: number;
    sequences: number;
    sequence_source: string;
    mean_length: number;
    min_length: number;
    max_length: number;
  };
  runs: [BenchRun, BenchRun];
  /** b relative to a (b / a): below 1 means b is faster (latency) or slower (throughput). */
  ratios: {
    mean: number | null;
    p50: number | null;
    p90: number | null;
    p99: number | null;
    throughput: number | null;
  };
  winner: {
    latency_p50: string | null;
    latency_p99: string | null;
    throughput: string | null;
    error_rate: string | null;
  };
}

export function latencyCdf(sortedMs: number[]): [number, number][] {
  if (sortedMs.length === 0) return [];
  const out: [number, number][] = [];
  for (let p = 0; p <= 100; p++)
    out.push([p, Math.round((percentileSorted(sortedMs, Math.max(p, 0.0001)) ?? 0) * 1000) / 1000]);
  return out;
}

export function compareRuns(a: BenchRun, b: BenchRun, workload: Comparison['workload']): Comparison {
  const ratio = (x: number | null, y: number | null): number | null =>
    x === null || y === null || x === 0 ? null : Math.round((y / x) * 1000) / 1000;
  const lower = (x: number | null, y: number | null): string | null =>
    x === null || y === null || x === y ? null : x < y ? a.target : b.target;
  return {
    kind: 'isomodel.bench-compare',
    generated_at: new Date().toISOString(),
    workload,
    runs: [a, b],
    ratios: {
      mean: ratio(a.latency_ms.mean, b.latency_ms.mean),
      p50: ratio(a.latency_ms.p50, b.latency_ms.p50),
      p90: ratio(a.latency_ms.p90, b.latency_ms.p90),
      p99: ratio(a.latency_ms.p99, b.latency_ms.p99),
      throughput: ratio(a.throughput_rps, b.throughput_rps),
    },
    winner: {
      latency_p50: lower(a.latency_ms.p50, b.latency_ms.p50),
      latency_p99: lower(a.latency_ms.p99, b.latency_ms.p99),
      throughput: lower(-a.throughput_rps, -b.throughput_rps),
      error_rate: lower(a.error_rate, b.error_rate),
    },
  };
}

function comparisonRows(
  c: Comparison,
): { label: string; a: string; b: string; ratio: string; better: 'a' | 'b' | null }[] {
  const [a, b] = c.runs;
  const rows: { label: string; a: string; b: string; ratio: string; better: 'a' | 'b' | null }[] = [];
  const add = (
    label: string,
    x: number | null,
    y: number | null,
    f: (v: number | null) => string,
    lowerIsBetter: boolean | null,
  ): void => {
    const r = x !== null && y !== null && x !== 0 ? `${(y / x).toFixed(2)}×` : '';
    let better: 'a' | 'b' | null = null;
    if (lowerIsBetter !== null && x !== null && y !== null && x !== y) better = x < y === lowerIsBetter ? 'a' : 'b';
    rows.push({ label, a: f(x), b: f(y), ratio: r, better });
  };
  rows.push({ label: 'model', a: a.model, b: b.model, ratio: '', better: null });
  rows.push({ label: 'version', a: a.version ?? '?', b: b.version ?? '?', ratio: '', better: null });
  rows.push({ label: 'task', a: a.task, b: b.task, ratio: '', better: null });
  add('requests', a.requests, b.requests, (v) => num(v), null);
  add('errors', a.failed, b.failed, (v) => num(v), true);
  add('error rate', a.error_rate, b.error_rate, pct, true);
  add('throughput', a.throughput_rps, b.throughput_rps, (v) => num(v, ' req/s'), false);
  add('sequences/s', a.sequences_per_s, b.sequences_per_s, (v) => num(v), false);
  add('latency min', a.latency_ms.min, b.latency_ms.min, ms, true);
  add('latency mean', a.latency_ms.mean, b.latency_ms.mean, ms, true);
  add('latency p50', a.latency_ms.p50, b.latency_ms.p50, ms, true);
  add('latency p90', a.latency_ms.p90, b.latency_ms.p90, ms, true);
  add('latency p99', a.latency_ms.p99, b.latency_ms.p99, ms, true);
  add('latency max', a.latency_ms.max, b.latency_ms.max, ms, true);
  add('wall time', a.wall_s, b.wall_s, (v) => num(v, ' s'), true);
  add('peak worker RSS', a.resources.rss_peak_bytes, b.resources.rss_peak_bytes, mb, true);
  add('avg worker CPU', a.resources.cpu_avg_percent, b.resources.cpu_avg_percent, (v) => num(v, '%'), null);
  return rows;
}

/** The side-by-side table printed by `isomodel bench --compare`. */
export function renderComparisonText(c: Comparison): string {
  const [a, b] = c.runs;
  const rows = comparisonRows(c);
  const head = { label: 'metric', a: a.target, b: b.target, ratio: 'b/a' };
  const w = {
    label: Math.max(head.label.length, ...rows.map((r) => r.label.length)),
    a: Math.max(head.a.length, ...rows.map((r) => r.a.length + 2)),
    b: Math.max(head.b.length, ...rows.map((r) => r.b.length + 2)),
  };
  const mark = (s: string, on: boolean): string => (on ? `${s} *` : s);
  const line = (l: string, x: string, y: string, r: string): string =>
    `${l.padEnd(w.label)}  ${x.padStart(w.a)}  ${y.padStart(w.b)}  ${r}`.trimEnd();
  const out = [
    `workload: ${c.workload.requests} requests, concurrency ${c.workload.concurrency}, ${c.workload.sequences} sequence(s) from ${c.workload.sequence_source} (length ${c.workload.min_length}–${c.workload.max_length})`,
    '',
    line(head.label.toUpperCase(), head.a, head.b, head.ratio),
    ...rows.map((r) => line(r.label, mark(r.a, r.better === 'a'), mark(r.b, r.better === 'b'), r.ratio)),
    '',
    '* better of the two',
  ];
  return out.join('\n');
}

export function renderComparisonHtml(c: Comparison): string {
  const [a, b] = c.runs;
  const rows = comparisonRows(c).map((r) => [
    escapeXml(r.label),
    `<span class="${r.better === 'a' ? 'better' : ''}">${escapeXml(r.a)}</span>`,
    `<span class="${r.better === 'b' ? 'better' : ''}">${escapeXml(r.b)}</span>`,
    escapeXml(r.ratio),
  ]);
  const names = [a.target, b.target];
  const charts = [
    barChart({
      id: 'chart-percentiles',
      title: 'Latency percentiles',
      categories: ['mean', 'p50', 'p90', 'p99'],
      yLabel: 'ms',
      series: [a, b].map((r, i) => ({
        name: names[i]!,
        values: [r.latency_ms.mean, r.latency_ms.p50, r.latency_ms.p90, r.latency_ms.p99],
      })),
    }),
    barChart({
      id: 'chart-throughput',
      title: 'Throughput',
      categories: ['requests/s', 'sequences/s'],
      yLabel: 'per second',
      series: [a, b].map((r, i) => ({ name: names[i]!, values: [r.throughput_rps, r.sequences_per_s] })),
    }),
    lineChart({
      id: 'chart-cdf',
      title: 'Latency CDF',
      xType: 'log',
      xLabel: 'latency (ms, log scale)',
      yLabel: 'percentile',
      yMin: 0,
      yMax: 100,
      series: [a, b].map((r, i) => ({ name: names[i]!, points: r.cdf.map(([p, v]) => ({ x: v, y: p })) })),
    }),
    barChart({
      id: 'chart-histogram',
      title: 'Latency distribution',
      yLabel: 'requests',
      categories: a.histogram.map((h, i) =>
        h.le_ms === null ? `>${formatNumber(HISTOGRAM_EDGES_MS[i - 1]!)}` : `≤${formatNumber(h.le_ms)}`,
      ),
      series: [a, b].map((r, i) => ({ name: names[i]!, values: r.histogram.map((h) => h.count) })),
    }),
  ].join('');
  const errs = (r: BenchRun): string =>
    Object.entries(r.errors_by_code)
      .map(([k, v]) => `${escapeXml(k)}: ${v}`)
      .join(', ') || 'none';
  const w = c.workload;
  const body = `
<h1>Benchmark: ${escapeXml(a.target)} vs ${escapeXml(b.target)}</h1>
<div class="meta">${w.requests} requests each, concurrency ${w.concurrency}, ${w.warmup} warm-up request(s) · ${w.sequences} sequence(s) from ${escapeXml(w.sequence_source)}, length ${w.min_length}–${w.max_length} (mean ${w.mean_length}) · ${escapeXml(c.generated_at)}</div>
<h2>Side by side</h2>${table(['metric', a.target, b.target, `${b.target} / ${a.target}`], rows, [false, true, true, true])}
<h2>Charts</h2><div class="charts">${charts}</div>
<h2>Errors</h2>${table(
    ['target', 'errors by code'],
    [
      [escapeXml(a.target), errs(a)],
      [escapeXml(b.target), errs(b)],
    ],
  )}
`;
  return page(`isomodel bench: ${a.target} vs ${b.target}`, body);
}
