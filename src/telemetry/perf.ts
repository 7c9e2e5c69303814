// The performance collector: per model and version, inference latency percentiles, throughput,
// error rate and resource use, computed from the request log and the monitor's samples, and
// persisted as periodic snapshots (perf_snapshots) so history outlives the in-memory windows.
import type { Logger } from 'pino';
import type { ModelRegistry } from '../scheduler/registry.js';
import type { StateStore } from '../store/db.js';
import { iso, summarizeLatencies, type LatencySummary } from './series.js';
import { ensureTelemetrySchema } from './telemetry-schema.js';
import { WORK_SOURCES, type SourceCounts, type WorkSource } from '../scheduler/model-stats.js';

/** A request log row's source: jobs and pipelines log their model calls under those routes (jobs/counted.ts). */
export function sourceOf(route: string): WorkSource {
  return route === 'job' || route === 'pipeline' ? route : 'api';
}

export interface RequestRow {
  at_ms: number;
  model: string;
  version: string | null;
  task: string | null;
  route: string;
  status: 'success' | 'error';
  error_code: string | null;
  sequences: number;
  latency_ms: number;
}

/** Request log rows of [startMs, endMs) (all models when model is null), oldest first. */
export function requestRows(store: StateStore, model: string | null, startMs: number, endMs: number): RequestRow[] {
  store.flush();
  const args: unknown[] = [new Date(startMs).toISOString(), new Date(endMs).toISOString()];
  const sql = `SELECT at, model, version, task, route, status, error_code, sequences, latency_ms FROM request_log WHERE ${model === null ? '' : 'model = ? AND '}at >= ? AND at < ? ORDER BY id`;
  if (model !== null) args.unshift(model);
  const rows = store.db.prepare(sql).all(...args) as (Omit<RequestRow, 'at_ms'> & { at: string })[];
  return rows.map(({ at, ...r }) => ({ ...r, at_ms: Date.parse(at) }));
}

/**
 * Requests that failed before a deployment answered carry no version in the log: they are
 * counted against the version that served that model's neighbouring requests (the one before,
 * else the one after), else `fallback` (what is loaded now).
 */
export function attributeVersions(rows: RequestRow[], fallback: (model: string) => string | null): RequestRow[] {
  const out = rows.map((r) => ({ ...r }));
  const last = new Map<string, string>();
  const unresolved: RequestRow[] = [];
  for (const r of out) {
    if (r.version) {
      last.set(r.model, r.version);
      for (const u of unresolved.splice(0)) if (u.model === r.model) u.version = r.version;
      continue;
    }
    const prev = last.get(r.model);
    if (prev) r.version = prev;
    else unresolved.push(r);
  }
  for (const u of unresolved) if (!u.version) u.version = fallback(u.model) ?? 'unknown';
  for (const r of out) r.version ??= fallback(r.model) ?? 'unknown';
  return out;
}

export interface PerfStats {
  requests: number;
  successful: number;
  failed: number;
  error_rate: number | null;
  sequences: number;
  /** Successful requests' end-to-end latency in the gateway, milliseconds. */
  latency_ms: LatencySummary;
  /** Requests per second over the window. */
  window_rps: number;
  /** Requests per second from the first request's start to the last one's end. */
  active_rps: number | null;
  sequences_per_s: number | null;
  errors_by_code: Record<string, number>;
  /** Requests (for jobs: model calls) and sequences (records) by where the work came from. */
  by_source: Record<WorkSource, SourceCounts>;
}

export function perfStats(rows: RequestRow[], windowMs: number): PerfStats {
  const ok = rows.filter((r) => r.status === 'success');
  const failed = rows.length - ok.length;
  const errors: Record<string, number> = {};
  for (const r of rows)
    if (r.status === 'error') errors[r.error_code ?? 'UNKNOWN'] = (errors[r.error_code ?? 'UNKNOWN'] ?? 0) + 1;
  let active: number | null = null;
  const seqs = ok.reduce((n, r) => n + r.sequences, 0);
  if (rows.length) {
    let begin = Infinity;
    let end = -Infinity;
    for (const r of rows) {
      begin = Math.min(begin, r.at_ms - r.latency_ms);
      end = Math.max(end, r.at_ms);
    }
    active = Math.max(1, end - begin);
  }
  const r3 = (v: number): number => Math.round(v * 1000) / 1000;
  const bySource = Object.fromEntries(
    WORK_SOURCES.map((k) => [k, { requests: 0, successful: 0, failed: 0, sequences: 0 }]),
  ) as Record<WorkSource, SourceCounts>;
  for (const r of rows) {
    const b = bySource[sourceOf(r.route)];
    b.requests++;
    if (r.status === 'success') {
      b.successful++;
      b.sequences += r.sequences;
    } else b.failed++;
  }
  return {
    requests: rows.length,
    successful: ok.length,
    failed,
    error_rate: rows.length ? r3(failed / rows.length) : null,
    sequences: seqs,
    // Response times are the API's: a job's model call waits below interactive requests on purpose.
    latency_ms: summarizeLatencies(ok.filter((r) => sourceOf(r.route) === 'api').map((r) => r.latency_ms)),
    window_rps: r3(rows.length / (windowMs / 1000)),
    active_rps: active === null ? null : r3(rows.length / (active / 1000)),
    sequences_per_s: active === null ? null : r3(seqs / (active / 1000)),
    errors_by_code: errors,
    by_source: bySource,
  };
}

export interface PerfSnapshot {
  at: string;
  period_start: string;
  model: string;
  version: string;
  requests: number;
  successful: number;
  failed: number;
  sequences: number;
  error_rate: number | null;
  throughput_rps: number | null;
  sequences_per_s: number | null;
  latency_mean_ms: number | null;
  latency_p50_ms: number | null;
  latency_p90_ms: number | null;
  latency_p99_ms: number | null;
  latency_max_ms: number | null;
  cpu_avg_percent: number | null;
  cpu_max_percent: number | null;
  rss_avg_bytes: number | null;
  rss_max_bytes: number | null;
  replicas_avg: number | null;
}

export interface PerfDeps {
  store: StateStore;
  registry: ModelRegistry;
  logger: Logger;
  intervalMs: number;
  retentionDays: number;
}

export class PerfCollector {
  private timer: NodeJS.Timeout | null = null;
  private lastAt = Date.now();
  private lastPrune = Date.now();

  constructor(private readonly deps: PerfDeps) {
    ensureTelemetrySchema(deps.store);
  }

  start(): void {
    if (this.timer) return;
    this.lastAt = Date.now();
    this.timer = setInterval(() => {
      try {
        this.snapshot();
      } catch (e) {
        this.deps.logger.error({ err: (e as Error).message }, 'performance snapshot failed');
      }
    }, this.deps.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private currentVersion(model: string): string | null {
    try {
      return this.deps.registry.package(model).manifest.version;
    } catch {
      return null;
    }
  }

  /** Aggregates [last snapshot, now) per model and version into perf_snapshots; returns the rows written. */
  snapshot(now = Date.now()): PerfSnapshot[] {
    const start = this.lastAt;
    if (now <= start) return [];
    this.lastAt = now;
    const { store } = this.deps;
    const rows = attributeVersions(requestRows(store, null, start, now), (m) => this.currentVersion(m));
    const groups = new Map<string, RequestRow[]>();
    for (const r of rows) {
      const key = `${r.model}\u0000${r.version}`;
      let list = groups.get(key);
      if (!list) groups.set(key, (list = []));
      list.push(r);
    }
    const res = store.db
      .prepare(
        `SELECT model, version, AVG(cpu_percent) AS cpu_avg, MAX(cpu_percent) AS cpu_max, AVG(rss_bytes) AS rss_avg, MAX(rss_bytes) AS rss_max, AVG(replicas) AS replicas_avg
         FROM monitor_model_samples WHERE at >= ? AND at < ? GROUP BY model, version`,
      )
      .all(start, now) as {
      model: string;
      version: string;
      cpu_avg: number | null;
      cpu_max: number | null;
      rss_avg: number | null;
      rss_max: number | null;
      replicas_avg: number | null;
    }[];
    const resources = new Map(res.map((r) => [`${r.model}\u0000${r.version}`, r]));
    for (const key of resources.keys()) if (!groups.has(key)) groups.set(key, []);
    const periodS = (now - start) / 1000;
    const out: PerfSnapshot[] = [];
    const insert = store.db.prepare(
      `INSERT INTO perf_snapshots (at, period_start, model, version, requests, successful, failed, sequences, error_rate, throughput_rps, sequences_per_s,
         latency_mean_ms, latency_p50_ms, latency_p90_ms, latency_p99_ms, latency_max_ms, cpu_avg_percent, cpu_max_percent, rss_avg_bytes, rss_max_bytes, replicas_avg)
       VALUES (@at, @period_start, @model, @version, @requests, @successful, @failed, @sequences, @error_rate, @throughput_rps, @sequences_per_s,
         @latency_mean_ms, @latency_p50_ms, @latency_p90_ms, @latency_p99_ms, @latency_max_ms, @cpu_avg_percent, @cpu_max_percent, @rss_avg_bytes, @rss_max_bytes, @replicas_avg)`,
    );
    store.db.transaction(() => {
      for (const [key, list] of groups) {
        const [model, version] = key.split('\u0000') as [string, string];
        const s = perfStats(list, now - start);
        const r = resources.get(key);
        const row = {
          at: now,
          period_start: start,
          model,
          version,
          requests: s.requests,
          successful: s.successful,
          failed: s.failed,
          sequences: s.sequences,
          error_rate: s.error_rate,
          throughput_rps: Math.round((s.requests / periodS) * 1000) / 1000,
          sequences_per_s: Math.round((s.sequences / periodS) * 1000) / 1000,
          latency_mean_ms: s.latency_ms.mean,
          latency_p50_ms: s.latency_ms.p50,
          latency_p90_ms: s.latency_ms.p90,
          latency_p99_ms: s.latency_ms.p99,
          latency_max_ms: s.latency_ms.max,
          cpu_avg_percent: r?.cpu_avg === null || r?.cpu_avg === undefined ? null : Math.round(r.cpu_avg * 10) / 10,
          cpu_max_percent: r?.cpu_max ?? null,
          rss_avg_bytes: r?.rss_avg === null || r?.rss_avg === undefined ? null : Math.round(r.rss_avg),
          rss_max_bytes: r?.rss_max ?? null,
          replicas_avg:
            r?.replicas_avg === null || r?.replicas_avg === undefined ? null : Math.round(r.replicas_avg * 100) / 100,
        };
        insert.run(row);
        out.push({ ...row, at: iso(row.at)!, period_start: iso(row.period_start)! });
      }
    })();
    if (now - this.lastPrune > 3_600_000) {
      this.lastPrune = now;
      store.db.prepare('DELETE FROM perf_snapshots WHERE at < ?').run(now - this.deps.retentionDays * 86_400_000);
    }
    return out;
  }
}

/** Persisted snapshots of a model in [startMs, endMs], oldest first. */
export function perfSnapshots(store: StateStore, model: string, startMs: number, endMs = Date.now()): PerfSnapshot[] {
  const rows = store.db
    .prepare('SELECT * FROM perf_snapshots WHERE model = ? AND at >= ? AND at <= ? ORDER BY at, version')
    .all(model, startMs, endMs) as (Omit<PerfSnapshot, 'at' | 'period_start'> & {
    id: number;
    at: number;
    period_start: number;
  })[];
  return rows.map(({ id: _id, ...r }) => ({ ...r, at: iso(r.at)!, period_start: iso(r.period_start)! }));
}
