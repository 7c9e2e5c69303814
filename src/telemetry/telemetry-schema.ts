// SQLite tables of the monitor (namespace "monitor") and the performance collector (namespace
// "perf"). Times are integer milliseconds since the epoch; the API renders them as ISO strings.
import type { StateStore } from '../store/db.js';

export const MONITOR_MIGRATIONS: string[] = [
  `CREATE TABLE monitor_replica_samples (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     at INTEGER NOT NULL,
     model TEXT NOT NULL,
     version TEXT NOT NULL,
     replica TEXT NOT NULL,
     pid INTEGER,
     state TEXT NOT NULL,
     busy INTEGER NOT NULL,
     cpu_percent REAL,
     rss_bytes INTEGER,
     memory_percent REAL,
     open_fds INTEGER,
     restarts INTEGER NOT NULL,
     disk_read_bytes INTEGER,
     disk_write_bytes INTEGER,
     net_rx_bytes INTEGER,
     net_tx_bytes INTEGER
   );
   CREATE INDEX monitor_replica_samples_model_at ON monitor_replica_samples(model, at);
   CREATE INDEX monitor_replica_samples_at ON monitor_replica_samples(at);
   CREATE TABLE monitor_model_samples (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     at INTEGER NOT NULL,
     model TEXT NOT NULL,
     version TEXT NOT NULL,
     status TEXT NOT NULL,
     healthy INTEGER NOT NULL,
     replicas INTEGER NOT NULL,
     replicas_ready INTEGER NOT NULL,
     cpu_percent REAL,
     rss_bytes INTEGER,
     memory_percent REAL,
     open_fds INTEGER,
     queue_depth INTEGER NOT NULL,
     in_flight INTEGER NOT NULL,
     requests_total INTEGER NOT NULL,
     failed_total INTEGER NOT NULL,
     rps REAL,
     error_rate REAL,
     p50_ms REAL,
     p99_ms REAL,
     restarts INTEGER NOT NULL
   );
   CREATE INDEX monitor_model_samples_model_at ON monitor_model_samples(model, at);
   CREATE INDEX monitor_model_samples_at ON monitor_model_samples(at);
   CREATE TABLE monitor_system_samples (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     at INTEGER NOT NULL,
     disk_percent REAL,
     disk_used_bytes INTEGER,
     disk_total_bytes INTEGER,
     load1 REAL,
     memory_used_percent REAL,
     gateway_rss_bytes INTEGER
   );
   CREATE INDEX monitor_system_samples_at ON monitor_system_samples(at);
   CREATE TABLE monitor_events (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     at INTEGER NOT NULL,
     model TEXT,
     version TEXT,
     replica TEXT,
     kind TEXT NOT NULL,
     from_state TEXT,
     to_state TEXT,
     message TEXT
   );
   CREATE INDEX monitor_events_model_at ON monitor_events(model, at);
   CREATE INDEX monitor_events_at ON monitor_events(at);
   CREATE TABLE monitor_alerts (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     key TEXT NOT NULL,
     kind TEXT NOT NULL,
     severity TEXT NOT NULL,
     state TEXT NOT NULL,
     model TEXT,
     version TEXT,
     replica TEXT,
     message TEXT NOT NULL,
     threshold REAL,
     value REAL,
     last_value REAL,
     peak_value REAL,
     fired_at INTEGER NOT NULL,
     resolved_at INTEGER,
     updated_at INTEGER NOT NULL,
     resolution TEXT
   );
   CREATE INDEX monitor_alerts_state_key ON monitor_alerts(state, key);
   CREATE INDEX monitor_alerts_fired_at ON monitor_alerts(fired_at);
   CREATE TABLE monitor_alert_events (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     alert_id INTEGER NOT NULL,
     at INTEGER NOT NULL,
     state TEXT NOT NULL,
     value REAL,
     message TEXT
   );
   CREATE INDEX monitor_alert_events_alert ON monitor_alert_events(alert_id);
   CREATE TABLE monitor_webhook_deliveries (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     alert_id INTEGER,
     event TEXT NOT NULL,
     url TEXT NOT NULL,
     status TEXT NOT NULL,
     attempts INTEGER NOT NULL,
     last_status INTEGER,
     last_error TEXT,
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL
   );
   CREATE TABLE monitor_settings (
     key TEXT PRIMARY KEY,
     value TEXT NOT NULL,
     updated_at INTEGER NOT NULL
   );`,
];

export const PERF_MIGRATIONS: string[] = [
  `CREATE TABLE perf_snapshots (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     at INTEGER NOT NULL,
     period_start INTEGER NOT NULL,
     model TEXT NOT NULL,
     version TEXT NOT NULL,
     requests INTEGER NOT NULL,
     successful INTEGER NOT NULL,
     failed INTEGER NOT NULL,
     sequences INTEGER NOT NULL,
     error_rate REAL,
     throughput_rps REAL,
     sequences_per_s REAL,
     latency_mean_ms REAL,
     latency_p50_ms REAL,
     latency_p90_ms REAL,
     latency_p99_ms REAL,
     latency_max_ms REAL,
     cpu_avg_percent REAL,
     cpu_max_percent REAL,
     rss_avg_bytes REAL,
     rss_max_bytes INTEGER,
     replicas_avg REAL
   );
   CREATE INDEX perf_snapshots_model_at ON perf_snapshots(model, at);`,
];

/** Creates (or upgrades) both namespaces; idempotent and cheap after the first call. */
export function ensureTelemetrySchema(store: StateStore): void {
  store.migrateNamespace('monitor', MONITOR_MIGRATIONS);
  store.migrateNamespace('perf', PERF_MIGRATIONS);
}
