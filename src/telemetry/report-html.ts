// A model's performance report as a self-contained HTML page with inline SVG charts.
import type { PerfStats } from './perf.js';
import { HISTOGRAM_EDGES_MS, MB, type ModelReport } from './report-data.js';
import { card, mb, ms, num, page, pct, table } from './report-page.js';
import type { SeriesStats } from './series.js';
import { barChart, escapeXml, formatNumber, lineChart, PALETTE } from './svg.js';

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
