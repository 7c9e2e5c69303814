// The worker monitor: every interval it samples each replica (CPU, RSS, open fds, I/O where a
// probe gives it), each model (state, queue, request counters) and the state dir's disk; it
// records samples and state transitions in SQLite, raises and resolves alerts against the
// thresholds (settable at runtime), and replaces replicas that stay over their memory threshold.
// What it reports live is computed in ./monitor-metrics.ts; its history is read by ./monitor-history.ts.
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import type { ModelDeployment } from '../scheduler/deployment.js';
import type { ModelRegistry } from '../scheduler/registry.js';
import type { StateStore } from '../store/db.js';
import { procIoProbe, type WorkerIoProbe } from '../util/proc.js';
import {
  afterWrite,
  AlertManager,
  AlertRulesStore,
  WebhookSender,
  type AlertRulesBackend,
  type SavedRules,
} from './alerts.js';
import { MonitorHistory } from './monitor-history.js';
import {
  MB,
  modelMetrics,
  round1,
  round2,
  systemMetrics,
  type ModelMetrics,
  type ModelMetricsSource,
  type ReplicaMetrics,
  type SystemMetrics,
} from './monitor-metrics.js';
import { iso } from './series.js';
import { ensureTelemetrySchema } from './telemetry-schema.js';
import { WORK_SOURCES } from './model-stats.js';

export type { IoSample, WorkerIoProbe } from '../util/proc.js';
export type { ModelMetrics, ReplicaMetrics, SystemMetrics } from './monitor-metrics.js';

export type MonitorConfig = Config['monitor'];

export interface Thresholds {
  /** Percent of the model's CPU allotment (`resources.cpus` cores); 100 = the whole allotment busy. */
  cpu_percent: number;
  /** Percent of the model's memory limit (`resources.memory_mb`). */
  memory_percent: number;
  /** Percent of the state dir's filesystem in use. */
  disk_percent: number;
}

/** What PUT /v1/monitor/thresholds may change at runtime. */
export interface MonitorSettings extends Thresholds {
  restart_unhealthy: boolean;
  alert_after_samples: number;
  restart_after_samples: number;
}

export interface MonitorDeps {
  registry: ModelRegistry;
  store: StateStore;
  logger: Logger;
  stateDir: string;
  config: MonitorConfig;
  ioProbe?: WorkerIoProbe;
}

interface ReplicaTrack {
  state: string;
  restarts: number;
  memOver: number;
  cpuOver: number;
  /** Restart count when the monitor asked for a replacement; cleared once the new worker is ready. */
  replacing: number | null;
  seen: number;
}

interface ModelTrack {
  status: string;
  deployment: ModelDeployment | undefined;
  requests: number;
  failed: number;
  at: number;
  rps: number | null;
}

const PRUNE_EVERY_MS = 10 * 60_000;

function fmtMb(bytes: number): string {
  return `${(bytes / MB).toFixed(1)} MB`;
}

export class Monitor {
  readonly alerts: AlertManager;
  /** Where the runtime settings (the alert rules) are kept. */
  private rules: AlertRulesBackend;
  private settings: MonitorSettings;
  private settingsSource: 'config' | 'runtime' = 'config';
  private settingsUpdatedAt: number | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly replicaTrack = new Map<string, ReplicaTrack>();
  private readonly modelTrack = new Map<string, ModelTrack>();
  private diskOver = 0;
  private samplesTaken = 0;
  private lastSampleAt: number | null = null;
  private lastSystem: SystemMetrics | null = null;
  private lastPrune = Date.now();
  private readonly ioProbe: WorkerIoProbe;
  private readonly metricsSource: ModelMetricsSource;
  private readonly historyReader: MonitorHistory;
  private stopped = false;

  constructor(private readonly deps: MonitorDeps) {
    ensureTelemetrySchema(deps.store);
    this.ioProbe = deps.ioProbe ?? procIoProbe;
    const c = deps.config;
    const webhook = new WebhookSender(deps.store, deps.logger.child({ component: 'webhook' }), {
      url: () => c.webhook_url,
      retries: c.webhook_retries,
      backoffMs: c.webhook_backoff_ms,
    });
    this.alerts = new AlertManager(deps.store, deps.logger.child({ component: 'alerts' }), webhook);
    this.rules = new AlertRulesStore(deps.store);
    this.historyReader = new MonitorHistory(deps.store.db, this.alerts, c.interval_ms);
    this.metricsSource = {
      registry: deps.registry,
      ioProbe: this.ioProbe,
      rps: (name, d) => {
        const track = this.modelTrack.get(name);
        return track && track.deployment === d ? track.rps : null;
      },
      activeAlerts: (name) => this.alerts.active(name).length,
    };
    this.settings = this.configSettings();
    this.applyRules(this.rules.load());
  }

  /** The saved rules over the configuration's (none saved: the configuration's alone). */
  private applyRules(saved: SavedRules | undefined): void {
    this.settings = this.configSettings();
    this.settingsSource = 'config';
    this.settingsUpdatedAt = null;
    if (!saved) return;
    try {
      this.settings = { ...this.settings, ...(JSON.parse(saved.value) as Partial<MonitorSettings>) };
      this.settingsSource = 'runtime';
      this.settingsUpdatedAt = saved.updated_at;
    } catch {
      // a corrupt row: the config's values stand
    }
  }

  /** Keeps the rules in the store gateways share (database_url): a change through any gateway applies here too. */
  useRulesStore(backend: AlertRulesBackend): void {
    this.rules = backend;
    this.applyRules(backend.load());
    backend.onChange?.((saved) => {
      const before = JSON.stringify(this.settings);
      this.applyRules(saved);
      if (JSON.stringify(this.settings) === before) return;
      this.event(
        {
          kind: 'settings',
          message: `monitor settings changed through another gateway: ${JSON.stringify(this.settings)}`,
        },
        Date.now(),
      );
      if (this.running()) this.safeSample();
    });
  }

  get intervalMs(): number {
    return this.deps.config.interval_ms;
  }

  running(): boolean {
    return this.timer !== null;
  }

  private configSettings(): MonitorSettings {
    const c = this.deps.config;
    return {
      ...c.thresholds,
      restart_unhealthy: c.restart_unhealthy,
      alert_after_samples: c.alert_after_samples,
      restart_after_samples: c.restart_after_samples,
    };
  }

  /** Samples now, then every interval_ms (no-op when monitor.enabled is false). */
  start(): void {
    if (!this.deps.config.enabled || this.timer || this.stopped) return;
    this.safeSample();
    this.timer = setInterval(() => this.safeSample(), this.deps.config.interval_ms);
    this.timer.unref();
  }

  /** Stops sampling; queued webhook deliveries get a short grace period. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.alerts.webhook.close(2000);
  }

  getSettings(): MonitorSettings & {
    source: string;
    updated_at: string | null;
    interval_ms: number;
    defaults: MonitorSettings;
  } {
    return {
      ...this.settings,
      source: this.settingsSource,
      updated_at: iso(this.settingsUpdatedAt),
      interval_ms: this.deps.config.interval_ms,
      defaults: this.configSettings(),
    };
  }

  /**
   * Runtime change, kept in SQLite or the shared store (it survives a restart until reset);
   * re-evaluates at once. Applied here once stored (with SQLite, before this returns).
   */
  updateSettings(patch: Partial<MonitorSettings>): Promise<ReturnType<Monitor['getSettings']>> {
    const next = { ...this.settings, ...patch };
    const now = Date.now();
    return afterWrite(this.rules.save({ value: JSON.stringify(next), updated_at: now }), () => {
      const changed = Object.fromEntries(
        Object.entries(patch).filter(([k, v]) => this.settings[k as keyof MonitorSettings] !== v),
      );
      this.settings = next;
      this.settingsSource = 'runtime';
      this.settingsUpdatedAt = now;
      if (Object.keys(changed).length)
        this.event({ kind: 'settings', message: `monitor settings changed: ${JSON.stringify(changed)}` }, now);
      if (this.running()) this.safeSample();
      return this.getSettings();
    });
  }

  /** Back to the configuration's values. */
  resetSettings(): Promise<ReturnType<Monitor['getSettings']>> {
    return afterWrite(this.rules.reset(), () => {
      this.applyRules(undefined);
      this.event({ kind: 'settings', message: 'monitor settings reset to the configuration' }, Date.now());
      if (this.running()) this.safeSample();
      return this.getSettings();
    });
  }

  private safeSample(): void {
    try {
      this.sample();
    } catch (e) {
      this.deps.logger.error({ err: (e as Error).message }, 'monitor sample failed');
    }
  }

  // ---------------------------------------------------------------- live metrics

  systemMetrics(): SystemMetrics {
    return systemMetrics(this.deps.stateDir);
  }

  /** Current metrics of one model (live: read from the deployment now). */
  modelMetrics(name: string): ModelMetrics {
    return modelMetrics(this.metricsSource, name);
  }

  allModelMetrics(): ModelMetrics[] {
    return this.deps.registry.names().map((n) => this.modelMetrics(n));
  }

  summary(): Record<string, unknown> {
    const models = this.allModelMetrics();
    const replicas = models.flatMap((m) => m.replicas);
    const counts = this.alerts.counts();
    const byStatus: Record<string, number> = {};
    for (const m of models) byStatus[m.status] = (byStatus[m.status] ?? 0) + 1;
    const sumOf = (f: (m: ModelMetrics) => number | null): number => models.reduce((n, m) => n + (f(m) ?? 0), 0);
    const deliveries = this.deps.store.db
      .prepare('SELECT status, COUNT(*) AS n FROM monitor_webhook_deliveries GROUP BY status')
      .all() as { status: string; n: number }[];
    return {
      running: this.running(),
      interval_ms: this.deps.config.interval_ms,
      samples_taken: this.samplesTaken,
      last_sample_at: iso(this.lastSampleAt),
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
      system: this.lastSystem ?? this.systemMetrics(),
      thresholds: {
        cpu_percent: this.settings.cpu_percent,
        memory_percent: this.settings.memory_percent,
        disk_percent: this.settings.disk_percent,
      },
      restart_unhealthy: this.settings.restart_unhealthy,
      webhook: {
        configured: this.alerts.webhook.enabled(),
        queued: this.alerts.webhook.queued(),
        deliveries: Object.fromEntries(deliveries.map((d) => [d.status, d.n])),
      },
    };
  }

  // ---------------------------------------------------------------- sampling

  /** One monitoring pass: sample, persist, evaluate alerts and the restart policy. */
  sample(): void {
    if (this.stopped) return;
    const now = Date.now();
    const { registry, store } = this.deps;
    const st = this.settings;
    const system = this.systemMetrics();
    this.lastSystem = system;
    const replicaRows: unknown[][] = [];
    const modelRows: unknown[][] = [];
    const seenReplicaKeys = new Set<string>();
    const liveModels = new Set<string>();
    const names = registry.names();

    store.db.transaction(() => {
      store.db
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

      for (const name of names) {
        const d = registry.deployment(name);
        const status = registry.status(name);
        const prevTrack = this.modelTrack.get(name);
        if (!prevTrack || prevTrack.status !== status) {
          this.event(
            {
              model: name,
              version: d?.version,
              kind: 'model',
              from: prevTrack?.status ?? null,
              to: status,
              message: status === 'failed' ? (registry.lastError(name) ?? null) : null,
            },
            now,
          );
        }
        // Request counters for throughput: reset when the deployment changed (reload).
        const total = d?.stats.totalRequests ?? 0;
        const failed = d?.stats.failedRequests ?? 0;
        let rps: number | null = null;
        if (prevTrack && d && prevTrack.deployment === d && now > prevTrack.at)
          rps = round2(((total - prevTrack.requests) / (now - prevTrack.at)) * 1000);
        this.modelTrack.set(name, { status, deployment: d, requests: total, failed, at: now, rps });
        if (!d && status === 'unloaded') {
          this.resolveModel(name, 'model unloaded');
          continue;
        }
        liveModels.add(name);
        const mm = this.modelMetrics(name);
        let unexpected: { id: string; text: string }[] = [];
        for (const r of mm.replicas) {
          const key = `${name}/${r.id}`;
          seenReplicaKeys.add(key);
          unexpected = unexpected.concat(this.trackReplica(name, mm, r, key, now, d));
          replicaRows.push([
            now,
            name,
            mm.version,
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
          ]);
        }
        modelRows.push([
          now,
          name,
          mm.version,
          status,
          mm.healthy ? 1 : 0,
          mm.totals.replicas,
          mm.totals.ready,
          mm.totals.cpu_percent,
          mm.totals.rss_bytes,
          mm.totals.memory_percent,
          mm.totals.open_fds,
          mm.queue_depth,
          mm.in_flight,
          total,
          failed,
          rps,
          mm.requests.error_rate,
          mm.requests.p50_ms,
          mm.requests.p99_ms,
          mm.totals.restarts,
        ]);
        this.evaluateHealth(name, mm, d, unexpected);
      }

      // Replicas that went away (scale-down, unload, reload): their conditions end with them.
      for (const [key, t] of this.replicaTrack) {
        if (seenReplicaKeys.has(key)) continue;
        const [model, replica] = key.split('/') as [string, string];
        this.replicaTrack.delete(key);
        this.event({ model, replica, kind: 'replica', from: t.state, to: 'removed', message: null }, now);
        this.alerts.resolve(`memory:${key}`, 'replica removed');
        this.alerts.resolve(`cpu:${key}`, 'replica removed');
      }
      // Models that left the registry, or alerts read back from a previous run about subjects that are gone.
      for (const key of this.alerts.firingKeys()) {
        const [kind, subject] = key.split(':', 2) as [string, string | undefined];
        if (kind === 'disk' || !subject) continue;
        const model = subject.split('/')[0]!;
        if (!names.includes(model)) this.alerts.resolve(key, 'model removed');
        else if (subject.includes('/') && !seenReplicaKeys.has(subject))
          this.alerts.resolve(key, 'replica no longer exists');
        else if (kind === 'health' && !liveModels.has(model)) this.alerts.resolve(key, 'model unloaded');
      }

      const insertReplica = store.db.prepare(
        `INSERT INTO monitor_replica_samples (at, model, version, replica, pid, state, busy, cpu_percent, rss_bytes, memory_percent, open_fds, restarts, disk_read_bytes, disk_write_bytes, net_rx_bytes, net_tx_bytes)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      );
      for (const r of replicaRows) insertReplica.run(...r);
      const insertModel = store.db.prepare(
        `INSERT INTO monitor_model_samples (at, model, version, status, healthy, replicas, replicas_ready, cpu_percent, rss_bytes, memory_percent, open_fds, queue_depth, in_flight, requests_total, failed_total, rps, error_rate, p50_ms, p99_ms, restarts)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      );
      for (const r of modelRows) insertModel.run(...r);

      this.evaluateDisk(system, st);
    })();

    this.samplesTaken++;
    this.lastSampleAt = now;
    if (now - this.lastPrune > PRUNE_EVERY_MS) this.prune(now);
  }

  /** State transitions, restarts, and the cpu/memory conditions of one replica. Returns unexpected restarts. */
  private trackReplica(
    name: string,
    mm: ModelMetrics,
    r: ReplicaMetrics,
    key: string,
    now: number,
    d: ModelDeployment | undefined,
  ): { id: string; text: string }[] {
    const st = this.settings;
    let t = this.replicaTrack.get(key);
    const unexpected: { id: string; text: string }[] = [];
    if (!t) {
      t = { state: r.state, restarts: r.restarts, memOver: 0, cpuOver: 0, replacing: null, seen: 0 };
      this.replicaTrack.set(key, t);
      this.event(
        {
          model: name,
          version: mm.version,
          replica: r.id,
          kind: 'replica',
          from: null,
          to: r.state,
          message: r.pid ? `pid ${r.pid}` : null,
        },
        now,
      );
    } else if (t.state !== r.state) {
      this.event(
        {
          model: name,
          version: mm.version,
          replica: r.id,
          kind: 'replica',
          from: t.state,
          to: r.state,
          message: r.state === 'restarting' || r.state === 'failed' ? (r.last_exit ?? r.last_error) : null,
        },
        now,
      );
    }
    if (r.restarts > t.restarts) {
      const requested = t.replacing !== null;
      this.event(
        {
          model: name,
          version: mm.version,
          replica: r.id,
          kind: 'restart',
          from: null,
          to: r.state,
          message: `${requested ? 'replaced by the monitor' : 'restarted'}: ${r.last_exit ?? 'unknown reason'}`,
        },
        now,
      );
      if (!requested)
        unexpected.push({ id: r.id, text: `replica ${r.id} restarted (${r.last_exit ?? 'unknown reason'})` });
    }
    if (t.replacing !== null && r.state === 'ready' && r.restarts > t.replacing) t.replacing = null;
    t.state = r.state;
    t.restarts = r.restarts;
    t.seen++;

    // Only a ready replica's numbers count: a restarting one still shows its dead worker's last sample.
    if (r.state !== 'ready') return unexpected;
    const base = { model: name, version: mm.version, replica: r.id };

    if (r.memory_percent !== null) {
      t.memOver = r.memory_percent >= st.memory_percent ? t.memOver + 1 : 0;
      const limit = mm.limits.memory_bytes;
      if (t.memOver >= st.alert_after_samples) {
        this.alerts.fire({
          ...base,
          key: `memory:${key}`,
          kind: 'memory',
          severity: r.memory_percent >= 100 ? 'critical' : 'warning',
          message: `${name} replica ${r.id} uses ${fmtMb(r.rss_bytes ?? 0)}, ${r.memory_percent.toFixed(1)}% of its ${fmtMb(limit)} memory limit (threshold ${st.memory_percent}%)`,
          value: r.memory_percent,
          threshold: st.memory_percent,
        });
      } else if (t.memOver === 0) {
        this.alerts.resolve(
          `memory:${key}`,
          `memory back under ${st.memory_percent}% (${r.memory_percent.toFixed(1)}%)`,
          r.memory_percent,
        );
      }
      if (
        st.restart_unhealthy &&
        d &&
        t.replacing === null &&
        t.memOver >= st.restart_after_samples &&
        (!r.busy || t.memOver >= 2 * st.restart_after_samples)
      ) {
        const reason = `memory over monitor threshold (${r.memory_percent.toFixed(1)}% of ${fmtMb(limit)} for ${t.memOver} samples)`;
        if (d.restartReplica(r.id, reason)) {
          t.replacing = r.restarts;
          t.memOver = 0;
          this.event({ ...base, kind: 'restart_requested', from: r.state, to: 'restarting', message: reason }, now);
          this.alerts.note(`memory:${key}`, 'restart_requested', reason, r.memory_percent);
        }
      }
    }
    if (r.cpu_limit_percent !== null) {
      t.cpuOver = r.cpu_limit_percent >= st.cpu_percent ? t.cpuOver + 1 : 0;
      if (t.cpuOver >= st.alert_after_samples) {
        this.alerts.fire({
          ...base,
          key: `cpu:${key}`,
          kind: 'cpu',
          severity: 'warning',
          message: `${name} replica ${r.id} uses ${r.cpu_limit_percent.toFixed(1)}% of its ${mm.limits.cpus} CPU allotment (threshold ${st.cpu_percent}%)`,
          value: r.cpu_limit_percent,
          threshold: st.cpu_percent,
        });
      } else if (t.cpuOver === 0) {
        this.alerts.resolve(
          `cpu:${key}`,
          `cpu back under ${st.cpu_percent}% (${r.cpu_limit_percent.toFixed(1)}%)`,
          r.cpu_limit_percent,
        );
      }
    }
    return unexpected;
  }

  /** Health: a failed model or replica, one restarting, or a restart nobody asked for since the last sample. */
  private evaluateHealth(
    name: string,
    mm: ModelMetrics,
    d: ModelDeployment | undefined,
    unexpected: { id: string; text: string }[],
  ): void {
    if (mm.status === 'loading' || mm.status === 'draining') return;
    const reasons: string[] = [];
    const named = new Set<string>();
    if (mm.status === 'failed') reasons.push(`model ${name} failed: ${mm.last_error ?? 'unknown error'}`);
    for (const r of mm.replicas) {
      const replacing = (this.replicaTrack.get(`${name}/${r.id}`)?.replacing ?? null) !== null;
      if (r.state === 'failed') reasons.push(`replica ${r.id} failed: ${r.last_error ?? r.last_exit ?? 'unknown'}`);
      else if (r.state === 'restarting' && !replacing)
        reasons.push(`replica ${r.id} restarting after: ${r.last_exit ?? 'unknown'}`);
      else continue;
      named.add(r.id);
    }
    for (const u of unexpected) if (!named.has(u.id)) reasons.push(u.text);
    const key = `health:${name}`;
    if (reasons.length > 0) {
      this.alerts.fire({
        key,
        kind: 'health',
        severity: 'critical',
        model: name,
        version: mm.version,
        message: reasons.join('; '),
        value: reasons.length,
      });
    } else if (d && d.healthy()) {
      this.alerts.resolve(key, 'healthy again');
    }
  }

  private evaluateDisk(system: SystemMetrics, st: MonitorSettings): void {
    if (system.disk_percent === null) return;
    this.diskOver = system.disk_percent >= st.disk_percent ? this.diskOver + 1 : 0;
    if (this.diskOver >= st.alert_after_samples) {
      this.alerts.fire({
        key: 'disk:state_dir',
        kind: 'disk',
        severity: system.disk_percent >= 98 ? 'critical' : 'warning',
        message: `filesystem of ${system.disk_path} is ${system.disk_percent.toFixed(1)}% full (threshold ${st.disk_percent}%)`,
        value: system.disk_percent,
        threshold: st.disk_percent,
      });
    } else if (this.diskOver === 0) {
      this.alerts.resolve(
        'disk:state_dir',
        `disk back under ${st.disk_percent}% (${system.disk_percent.toFixed(1)}%)`,
        system.disk_percent,
      );
    }
  }

  private resolveModel(name: string, why: string): void {
    for (const key of this.alerts.firingKeys()) {
      const subject = key.slice(key.indexOf(':') + 1);
      if (subject === name || subject.startsWith(`${name}/`)) this.alerts.resolve(key, why);
    }
    for (const key of [...this.replicaTrack.keys()]) if (key.startsWith(`${name}/`)) this.replicaTrack.delete(key);
  }

  private event(
    e: {
      model?: string;
      version?: string;
      replica?: string;
      kind: string;
      from?: string | null;
      to?: string | null;
      message?: string | null;
    },
    at: number,
  ): void {
    this.deps.store.db
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

  private prune(now: number): void {
    this.lastPrune = now;
    const cutoff = now - this.deps.config.retention_hours * 3_600_000;
    const db = this.deps.store.db;
    db.transaction(() => {
      for (const t of ['monitor_replica_samples', 'monitor_model_samples', 'monitor_system_samples', 'monitor_events'])
        db.prepare(`DELETE FROM ${t} WHERE at < ?`).run(cutoff);
    })();
    this.alerts.prune(now - this.deps.config.perf_retention_days * 86_400_000);
  }

  // ---------------------------------------------------------------- history

  events(q: { model?: string; sinceMs?: number; limit?: number } = {}): Record<string, unknown>[] {
    return this.historyReader.events(q);
  }

  /**
   * Time series of one model over [now - windowMs, now], downsampled to at most maxPoints,
   * with min/avg/max/trend per metric, per-replica statistics and the state history.
   */
  history(name: string, windowMs: number, maxPoints = 120): Record<string, unknown> {
    return this.historyReader.model(name, windowMs, maxPoints);
  }

  systemHistory(windowMs: number, maxPoints = 120): Record<string, unknown> {
    return this.historyReader.system(windowMs, maxPoints);
  }
}
