// What the monitor writes to SQLite (the tables of telemetry-schema.ts): one row per sample of
// the system, each model and each replica, the state transitions (events), and their pruning.
// Reading them back is monitor-history.ts's.
import type Database from 'better-sqlite3';
import type { ModelMetrics, ReplicaMetrics, SystemMetrics } from './monitor-metrics.js';

/** A state transition or a note of the monitor (monitor_events). */
export interface MonitorEvent {
  model?: string;
  version?: string;
  replica?: string;
  kind: string;
  from?: string | null;
  to?: string | null;
  message?: string | null;
}

/** The request counters a model sample records beside its live metrics. */
export interface ModelCounters {
  status: string;
  total: number;
  failed: number;
  rps: number | null;
}

const SAMPLE_TABLES = ['monitor_replica_samples', 'monitor_model_samples', 'monitor_system_samples', 'monitor_events'];

export class MonitorLog {
  constructor(private readonly db: Database.Database) {}

  event(e: MonitorEvent, at: number): void {
    this.db
      .prepare(
        'INSERT INTO monitor_events (at, model, version, replica, kind, from_state, to_state, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      )
      .run(
        at,
        e.model ?? null,
        e.version ?? null,
        e.replica ?? null,
        e.kind,
        e.from ?? null,
        e.to ?? null,
        e.message ?? null,
      );
  }

  system(now: number, system: SystemMetrics): void {
    this.db
      .prepare(
        'INSERT INTO monitor_system_samples (at, disk_percent, disk_used_bytes, disk_total_bytes, load1, memory_used_percent, gateway_rss_bytes) VALUES (?, ?, ?, ?, ?, ?, ?)',
      )
      .run(
        now,
        system.disk_percent,
        system.disk_used_bytes,
        system.disk_total_bytes,
        system.load1,
        system.memory_used_percent,
        system.gateway_rss_bytes,
      );
  }

  /** One pass's replica and model samples, in one statement each. */
  samples(now: number, models: { name: string; mm: ModelMetrics; counters: ModelCounters }[]): void {
    const insertReplica = this.db.prepare(
      `INSERT INTO monitor_replica_samples (at, model, version, replica, pid, state, busy, cpu_percent, rss_bytes, memory_percent, open_fds, restarts, disk_read_bytes, disk_write_bytes, net_rx_bytes, net_tx_bytes)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    for (const { name, mm } of models)
      for (const r of mm.replicas) insertReplica.run(...replicaRow(now, name, mm.version, r));
    const insertModel = this.db.prepare(
      `INSERT INTO monitor_model_samples (at, model, version, status, healthy, replicas, replicas_ready, cpu_percent, rss_bytes, memory_percent, open_fds, queue_depth, in_flight, requests_total, failed_total, rps, error_rate, p50_ms, p99_ms, restarts)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    for (const { name, mm, counters } of models) insertModel.run(...modelRow(now, name, mm, counters));
  }

  /** Deletes samples and events older than cutoff (epoch ms). */
  prune(cutoff: number): void {
    this.db.transaction(() => {
      for (const t of SAMPLE_TABLES) this.db.prepare(`DELETE FROM ${t} WHERE at < ?`).run(cutoff);
    })();
  }

  /** Webhook deliveries by status, for the summary. */
  deliveries(): Record<string, number> {
    const rows = this.db
      .prepare('SELECT status, COUNT(*) AS n FROM monitor_webhook_deliveries GROUP BY status')
      .all() as { status: string; n: number }[];
    return Object.fromEntries(rows.map((d) => [d.status, d.n]));
  }
}

function replicaRow(now: number, name: string, version: string, r: ReplicaMetrics): unknown[] {
  return [
    now,
    name,
    version,
    r.id,
    r.pid,
    r.state,
    r.busy ? 1 : 0,
    r.cpu_percent,
    r.rss_bytes,
    r.memory_percent,
    r.open_fds,
    r.restarts,
    r.io.disk_read_bytes,
    r.io.disk_write_bytes,
    r.io.net_rx_bytes,
    r.io.net_tx_bytes,
  ];
}

function modelRow(now: number, name: string, mm: ModelMetrics, c: ModelCounters): unknown[] {
  return [
    now,
    name,
    mm.version,
    c.status,
    mm.healthy ? 1 : 0,
    mm.totals.replicas,
    mm.totals.ready,
    mm.totals.cpu_percent,
    mm.totals.rss_bytes,
    mm.totals.memory_percent,
    mm.totals.open_fds,
    mm.queue_depth,
    mm.in_flight,
    c.total,
    c.failed,
    c.rps,
    mm.requests.error_rate,
    mm.requests.p50_ms,
    mm.requests.p99_ms,
    mm.totals.restarts,
  ];
}
