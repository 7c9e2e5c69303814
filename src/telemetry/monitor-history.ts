// The monitor's history, read back from its SQLite tables: state-change events, one model's time
// series (downsampled, with min/avg/max/trend per metric and per replica) and the system's.
import type Database from 'better-sqlite3';
import type { AlertManager } from './alerts.js';
import { MB } from './monitor-metrics.js';
import { downsample, iso, seriesStats, type SeriesStats } from './series.js';

export class MonitorHistory {
  constructor(
    private readonly db: Database.Database,
    private readonly alerts: AlertManager,
    private readonly intervalMs: number,
  ) {}

  events(q: { model?: string; sinceMs?: number; limit?: number } = {}): Record<string, unknown>[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (q.model) {
      where.push('model = ?');
      args.push(q.model);
    }
    if (q.sinceMs !== undefined) {
      where.push('at >= ?');
      args.push(q.sinceMs);
    }
    const rows = this.db
      .prepare(
        `SELECT * FROM monitor_events ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY id DESC LIMIT ?`,
      )
      .all(...args, Math.min(5000, q.limit ?? 200)) as {
      at: number;
      id: number;
      from_state: string | null;
      to_state: string | null;
    }[];
    return rows.map(({ from_state, to_state, ...r }) => ({ ...r, from: from_state, to: to_state, at: iso(r.at) }));
  }

  /**
   * Time series of one model over [now - windowMs, now], downsampled to at most maxPoints,
   * with min/avg/max/trend per metric, per-replica statistics and the state history.
   */
  model(name: string, windowMs: number, maxPoints = 120): Record<string, unknown> {
    const end = Date.now();
    const start = end - windowMs;
    const db = this.db;
    type Row = {
      at: number;
      status: string;
      replicas: number;
      replicas_ready: number;
      cpu_percent: number | null;
      rss_bytes: number | null;
      memory_percent: number | null;
      open_fds: number | null;
      queue_depth: number;
      in_flight: number;
      rps: number | null;
      error_rate: number | null;
      p50_ms: number | null;
      p99_ms: number | null;
      restarts: number;
    };
    const rows = db
      .prepare(
        'SELECT at, status, replicas, replicas_ready, cpu_percent, rss_bytes, memory_percent, open_fds, queue_depth, in_flight, rps, error_rate, p50_ms, p99_ms, restarts FROM monitor_model_samples WHERE model = ? AND at >= ? ORDER BY at',
      )
      .all(name, start) as Row[];
    const stat = (f: (r: Row) => number | null, floor: number): SeriesStats =>
      seriesStats(
        rows.map((r) => ({ at: r.at, value: f(r) })),
        floor,
      );
    const stats = {
      cpu_percent: stat((r) => r.cpu_percent, 5),
      rss_bytes: stat((r) => r.rss_bytes, MB),
      memory_percent: stat((r) => r.memory_percent, 1),
      open_fds: stat((r) => r.open_fds, 2),
      queue_depth: stat((r) => r.queue_depth, 1),
      rps: stat((r) => r.rps, 0.5),
      p99_ms: stat((r) => r.p99_ms, 1),
    };
    type RRow = {
      at: number;
      replica: string;
      cpu_percent: number | null;
      rss_bytes: number | null;
      memory_percent: number | null;
      open_fds: number | null;
      restarts: number;
      state: string;
    };
    const rrows = db
      .prepare(
        'SELECT at, replica, cpu_percent, rss_bytes, memory_percent, open_fds, restarts, state FROM monitor_replica_samples WHERE model = ? AND at >= ? ORDER BY at',
      )
      .all(name, start) as RRow[];
    const byReplica = new Map<string, RRow[]>();
    for (const r of rrows) {
      let list = byReplica.get(r.replica);
      if (!list) byReplica.set(r.replica, (list = []));
      list.push(r);
    }
    const replicas = [...byReplica.entries()].map(([replica, list]) => ({
      replica,
      samples: list.length,
      first_at: iso(list[0]!.at),
      last_at: iso(list[list.length - 1]!.at),
      last_state: list[list.length - 1]!.state,
      restarts: list[list.length - 1]!.restarts,
      cpu_percent: seriesStats(
        list.map((r) => ({ at: r.at, value: r.cpu_percent })),
        5,
      ),
      rss_bytes: seriesStats(
        list.map((r) => ({ at: r.at, value: r.rss_bytes })),
        MB,
      ),
      memory_percent: seriesStats(
        list.map((r) => ({ at: r.at, value: r.memory_percent })),
        1,
      ),
    }));
    return {
      model: name,
      window: { start: iso(start), end: iso(end), seconds: Math.round(windowMs / 1000) },
      interval_ms: this.intervalMs,
      samples: rows.length,
      stats,
      series: downsample(rows, maxPoints, start, end).map((r) => ({ ...r, at: iso(r.at) })),
      replicas,
      events: this.events({ model: name, sinceMs: start, limit: 500 }),
      alerts: this.alerts.list({ model: name, sinceMs: start, limit: 50, history: false }),
    };
  }

  system(windowMs: number, maxPoints = 120): Record<string, unknown> {
    const end = Date.now();
    const start = end - windowMs;
    const rows = this.db
      .prepare(
        'SELECT at, disk_percent, load1, memory_used_percent, gateway_rss_bytes FROM monitor_system_samples WHERE at >= ? ORDER BY at',
      )
      .all(start) as {
      at: number;
      disk_percent: number | null;
      load1: number;
      memory_used_percent: number;
      gateway_rss_bytes: number;
    }[];
    return {
      samples: rows.length,
      stats: {
        disk_percent: seriesStats(
          rows.map((r) => ({ at: r.at, value: r.disk_percent })),
          1,
        ),
        load1: seriesStats(
          rows.map((r) => ({ at: r.at, value: r.load1 })),
          0.5,
        ),
        memory_used_percent: seriesStats(
          rows.map((r) => ({ at: r.at, value: r.memory_used_percent })),
          1,
        ),
        gateway_rss_bytes: seriesStats(
          rows.map((r) => ({ at: r.at, value: r.gateway_rss_bytes })),
          MB,
        ),
      },
      series: downsample(rows, maxPoints, start, end).map((r) => ({ ...r, at: iso(r.at) })),
    };
  }
}
