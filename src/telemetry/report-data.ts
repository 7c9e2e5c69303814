// A performance report's data: one model over a window (requests, latency, resources, series,
// alerts), as GET /v1/reports returns it as JSON. The HTML page is report-html.ts's.
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
import { formatWindow, iso, percentileSorted, seriesStats, type SeriesStats } from './series.js';
import { ensureTelemetrySchema } from './telemetry-schema.js';

export const MB = 1024 * 1024;
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
