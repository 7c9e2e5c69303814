// The side-by-side comparison of two benchmark runs that `isomodel bench --compare` produces:
// as data, as text for the terminal and as a self-contained HTML page.
import { HISTOGRAM_EDGES_MS, type HistogramBucket } from './report-data.js';
import { mb, ms, num, page, pct, table } from './report-page.js';
import { percentileSorted, type LatencySummary } from './series.js';
import { barChart, escapeXml, formatNumber, lineChart } from './svg.js';

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
