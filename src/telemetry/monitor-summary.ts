// The monitor's summary (GET /v1/monitor): models, replicas, alerts, totals across models, the
// system's last sample, thresholds and the webhook's state, from what the monitor hands in.
import { WORK_SOURCES } from '../scheduler/model-stats.js';
import type { AlertManager } from './alerts.js';
import type { MonitorSettings } from './monitor-conditions.js';
import { round1, type ModelMetrics, type SystemMetrics } from './monitor-metrics.js';
import { iso } from './series.js';

export interface SummaryInput {
  models: ModelMetrics[];
  alerts: AlertManager;
  /** Webhook deliveries by status. */
  deliveries: Record<string, number>;
  running: boolean;
  intervalMs: number;
  samplesTaken: number;
  lastSampleAt: number | null;
  system: SystemMetrics;
  settings: MonitorSettings;
}

export function monitorSummary(s: SummaryInput): Record<string, unknown> {
  const models = s.models;
  const replicas = models.flatMap((m) => m.replicas);
  const counts = s.alerts.counts();
  const byStatus: Record<string, number> = {};
  for (const m of models) byStatus[m.status] = (byStatus[m.status] ?? 0) + 1;
  const sumOf = (f: (m: ModelMetrics) => number | null): number => models.reduce((n, m) => n + (f(m) ?? 0), 0);
  return {
    running: s.running,
    interval_ms: s.intervalMs,
    samples_taken: s.samplesTaken,
    last_sample_at: iso(s.lastSampleAt),
    models_watched: models.filter((m) => m.status !== 'unloaded').length,
    models: { total: models.length, ...byStatus },
    replicas: {
      total: replicas.length,
      ready: replicas.filter((r) => r.state === 'ready').length,
      busy: replicas.filter((r) => r.busy).length,
      restarting: replicas.filter((r) => r.state === 'restarting').length,
      failed: replicas.filter((r) => r.state === 'failed').length,
    },
    total_containers: replicas.length,
    active_alerts: counts.firing,
    total_alerts: counts.total,
    alerts_by_kind: counts.by_kind,
    totals: {
      cpu_percent: round1(sumOf((m) => m.totals.cpu_percent)),
      rss_bytes: sumOf((m) => m.totals.rss_bytes),
      open_fds: sumOf((m) => m.totals.open_fds),
      restarts: sumOf((m) => m.totals.restarts),
      requests: sumOf((m) => m.requests.total),
      failed_requests: sumOf((m) => m.requests.failed),
      // Jobs and pipelines are work too: their model calls and records, apart from the API's.
      requests_by_source: Object.fromEntries(
        WORK_SOURCES.map((k) => [
          k,
          {
            requests: sumOf((m) => m.requests.by_source?.[k].requests ?? 0),
            sequences: sumOf((m) => m.requests.by_source?.[k].sequences ?? 0),
          },
        ]),
      ),
      queue_depth: sumOf((m) => m.queue_depth),
      in_flight: sumOf((m) => m.in_flight),
    },
    system: s.system,
    thresholds: {
      cpu_percent: s.settings.cpu_percent,
      memory_percent: s.settings.memory_percent,
      disk_percent: s.settings.disk_percent,
    },
    restart_unhealthy: s.settings.restart_unhealthy,
    webhook: {
      configured: s.alerts.webhook.enabled(),
      queued: s.alerts.webhook.queued(),
      deliveries: s.deliveries,
    },
  };
}
