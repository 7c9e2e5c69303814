// The worker monitor: every interval it samples each replica (CPU, RSS, open fds, I/O where a
// probe gives it), each model (state, queue, request counters) and the state dir's disk; it
// records samples and state transitions in SQLite, raises and resolves alerts against the
// thresholds (settable at runtime), and replaces replicas that stay over their memory threshold.
import { readFileSync, statfsSync } from 'node:fs';
import os from 'node:os';
import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import type { ModelDeployment, ReplicaInfo } from '../scheduler/deployment.js';
import type { ModelRegistry } from '../scheduler/registry.js';
import type { StateStore } from '../store/db.js';
import { afterWrite, AlertManager, AlertRulesStore, WebhookSender, type AlertRulesBackend, type SavedRules } from './alerts.js';
import { downsample, iso, seriesStats, type SeriesStats } from './series.js';
import { ensureTelemetrySchema } from './telemetry-schema.js';
import { WORK_SOURCES, type SourceCounts, type WorkSource } from './model-stats.js';
import type { WeightsInfo } from '../manifest/weights.js';
import type { RequirementsInfo } from '../manifest/requires.js';

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

export interface IoSample {
  disk_read_bytes: number | null;
  disk_write_bytes: number | null;
  net_rx_bytes: number | null;
  net_tx_bytes: number | null;
}

/**
 * Per-worker I/O counters (cumulative bytes). The hook where container drivers will plug
 * their own numbers (e.g. from the container engine's stats); a probe returns null or leaves
 * fields out for what it cannot measure, never a made-up value.
 */
export type WorkerIoProbe = (target: { model: string; version: string; replica: ReplicaInfo }) => Partial<IoSample> | null;

/**
 * Default probe for process workers: disk bytes from /proc/<pid>/io (the worker process
 * itself). Process workers share the host's network namespace, so there is no per-worker
 * network counter: those stay null.
 */
export const procIoProbe: WorkerIoProbe = ({ replica }) => {
  if (!replica.pid || replica.pid === process.pid) return null;
  try {
    const text = readFileSync(`/proc/${replica.pid}/io`, 'utf8');
    const field = (name: string): number | null => {
      const m = new RegExp(`^${name}:\\s*(\\d+)`, 'm').exec(text);
      return m ? Number(m[1]) : null;
    };
    return { disk_read_bytes: field('read_bytes'), disk_write_bytes: field('write_bytes') };
  } catch {
    return null;
  }
};

export interface MonitorDeps {
  registry: ModelRegistry;
  store: StateStore;
  logger: Logger;
  stateDir: string;
  config: MonitorConfig;
  ioProbe?: WorkerIoProbe;
}

export interface ReplicaMetrics {
  id: string;
  state: string;
  pid: number | null;
  busy: boolean;
  restarts: number;
  /** Percent of one core. */
  cpu_percent: number | null;
  /** Percent of the model's CPU allotment: what the cpu threshold compares. */
  cpu_limit_percent: number | null;
  rss_bytes: number | null;
  /** Percent of the model's memory limit: what the memory threshold compares. */
  memory_percent: number | null;
  open_fds: number | null;
  io: IoSample;
  last_exit: string | null;
  last_error: string | null;
}

export interface ModelMetrics {
  model: string;
  version: string;
  description: string;
  runtime: string;
  isolation: string;
  status: string;
  healthy: boolean;
  tasks: { name: string; sequence_types: string[]; description?: string }[];
  limits: { memory_bytes: number; cpus: number };
  replicas: ReplicaMetrics[];
  totals: { replicas: number; ready: number; busy: number; cpu_percent: number | null; rss_bytes: number | null; memory_percent: number | null; open_fds: number | null; restarts: number };
  queue_depth: number;
  in_flight: number;
  requests: { total: number; successful: number; failed: number; error_rate: number | null; sequences: number; rps: number | null; p50_ms: number | null; p99_ms: number | null; queue_p50_ms: number | null; by_source: Record<WorkSource, SourceCounts> | null };
  active_alerts: number;
  last_error: string | null;
  /** Weights the model declares (manifest weights): where they are looked for and what to do; null when none. */
  weights: WeightsInfo | null;
  /** Host software its manifest requires that the last load found missing; null when nothing was. */
  requires: RequirementsInfo | null;
}

export interface SystemMetrics {
  at: string;
  disk_path: string;
  disk_percent: number | null;
  disk_used_bytes: number | null;
  disk_total_bytes: number | null;
  load1: number;
  memory_used_percent: number;
  gateway_rss_bytes: number;
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

const round1 = (v: number): number => Math.round(v * 10) / 10;
const round2 = (v: number): number => Math.round(v * 100) / 100;
const MB = 1024 * 1024;
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
  private stopped = false;

  constructor(private readonly deps: MonitorDeps) {
    ensureTelemetrySchema(deps.store);
    this.ioProbe = deps.ioProbe ?? procIoProbe;
    const c = deps.config;
    const webhook = new WebhookSender(deps.store, deps.logger.child({ component: 'webhook' }), { url: () => c.webhook_url, retries: c.webhook_retries, backoffMs: c.webhook_backoff_ms });
    this.alerts = new AlertManager(deps.store, deps.logger.child({ component: 'alerts' }), webhook);
    this.rules = new AlertRulesStore(deps.store);
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
      this.event({ kind: 'settings', message: `monitor settings changed through another gateway: ${JSON.stringify(this.settings)}` }, Date.now());
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
    return { ...c.thresholds, restart_unhealthy: c.restart_unhealthy, alert_after_samples: c.alert_after_samples, restart_after_samples: c.restart_after_samples };
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

  getSettings(): MonitorSettings & { source: string; updated_at: string | null; interval_ms: number; defaults: MonitorSettings } {
    return { ...this.settings, source: this.settingsSource, updated_at: iso(this.settingsUpdatedAt), interval_ms: this.deps.config.interval_ms, defaults: this.configSettings() };
  }

  /**
   * Runtime change, kept in SQLite or the shared store (it survives a restart until reset);
   * re-evaluates at once. Applied here once stored (with SQLite, before this returns).
   */
  updateSettings(patch: Partial<MonitorSettings>): Promise<ReturnType<Monitor['getSettings']>> {
    const next = { ...this.settings, ...patch };
    const now = Date.now();
    return afterWrite(this.rules.save({ value: JSON.stringify(next), updated_at: now }), () => {
      const changed = Object.fromEntries(Object.entries(patch).filter(([k, v]) => this.settings[k as keyof MonitorSettings] !== v));
      this.settings = next;
      this.settingsSource = 'runtime';
      this.settingsUpdatedAt = now;
      if (Object.keys(changed).length) this.event({ kind: 'settings', message: `monitor settings changed: ${JSON.stringify(changed)}` }, now);
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
    let disk: { percent: number; used: number; total: number } | null = null;
    try {
      const s = statfsSync(this.deps.stateDir);
      const used = (s.blocks - s.bfree) * s.bsize;
      const avail = s.bavail * s.bsize;
      // As df computes Use%: of what non-root users can fill.
      disk = { percent: used + avail > 0 ? (used / (used + avail)) * 100 : 0, used, total: s.blocks * s.bsize };
    } catch {
      disk = null;
    }
    const total = os.totalmem();
    return {
      at: new Date().toISOString(),
      disk_path: this.deps.stateDir,
      disk_percent: disk ? round2(disk.percent) : null,
      disk_used_bytes: disk?.used ?? null,
      disk_total_bytes: disk?.total ?? null,
      load1: round2(os.loadavg()[0]!),
      memory_used_percent: round2(((total - os.freemem()) / total) * 100),
      gateway_rss_bytes: process.memoryUsage().rss,
    };
  }

  /** Current metrics of one model (live: read from the deployment now). */
  modelMetrics(name: string): ModelMetrics {
    const { registry } = this.deps;
    const m = registry.package(name).manifest;
    const d = registry.deployment(name);
    const limitBytes = m.resources.memory_mb * MB;
    const cpus = m.resources.cpus;
    const replicas: ReplicaMetrics[] = (d?.replicaInfo() ?? []).map((r) => {
      const io = this.ioProbe({ model: name, version: m.version, replica: r }) ?? {};
      return {
        id: r.id,
        state: r.state,
        pid: r.pid ?? null,
        busy: r.busy,
        restarts: r.restarts,
        cpu_percent: r.cpu_percent ?? null,
        cpu_limit_percent: r.cpu_percent === undefined ? null : round1(r.cpu_percent / cpus),
        rss_bytes: r.rss_bytes ?? null,
        memory_percent: r.rss_bytes === undefined ? null : round2((r.rss_bytes / limitBytes) * 100),
        open_fds: r.open_fds ?? null,
        io: { disk_read_bytes: io.disk_read_bytes ?? null, disk_write_bytes: io.disk_write_bytes ?? null, net_rx_bytes: io.net_rx_bytes ?? null, net_tx_bytes: io.net_tx_bytes ?? null },
        last_exit: r.last_exit ?? null,
        last_error: r.last_error ?? null,
      };
    });
    const sum = (f: (r: ReplicaMetrics) => number | null): number | null => {
      const vals = replicas.map(f).filter((v): v is number => v !== null);
      return vals.length ? vals.reduce((a, b) => a + b, 0) : null;
    };
    const mems = replicas.map((r) => r.memory_percent).filter((v): v is number => v !== null);
    const s = d?.stats;
    const track = this.modelTrack.get(name);
    const p = (v: number | null | undefined): number | null => (v === null || v === undefined ? null : Math.round(v * 1000) / 1000);
    return {
      model: name,
      version: m.version,
      description: m.description,
      runtime: m.runtime,
      isolation: m.isolation,
      status: registry.status(name),
      healthy: d?.healthy() ?? false,
      tasks: m.tasks.map((t) => ({ name: t.name, sequence_types: t.sequence_types, description: t.description })),
      limits: { memory_bytes: limitBytes, cpus },
      replicas,
      totals: {
        replicas: replicas.length,
        ready: replicas.filter((r) => r.state === 'ready').length,
        busy: replicas.filter((r) => r.busy).length,
        cpu_percent: ((v) => (v === null ? null : round1(v)))(sum((r) => r.cpu_percent)),
        rss_bytes: sum((r) => r.rss_bytes),
        memory_percent: mems.length ? Math.max(...mems) : null,
        open_fds: sum((r) => r.open_fds),
        restarts: replicas.reduce((n, r) => n + r.restarts, 0),
      },
      queue_depth: d?.queueDepth() ?? 0,
      in_flight: d?.inflightCount() ?? 0,
      requests: {
        total: s?.totalRequests ?? 0,
        successful: s?.successfulRequests ?? 0,
        failed: s?.failedRequests ?? 0,
        error_rate: s && s.totalRequests ? round2(s.failedRequests / s.totalRequests) : null,
        sequences: s?.totalItems ?? 0,
        rps: track && track.deployment === d ? track.rps : null,
        p50_ms: p(s?.latency.percentile(50)),
        p99_ms: p(s?.latency.percentile(99)),
        queue_p50_ms: p(s?.queueWait.percentile(50)),
        by_source: s ? (structuredClone(s.bySource) as Record<WorkSource, SourceCounts>) : null,
      },
      active_alerts: this.alerts.active(name).length,
      last_error: registry.lastError(name) ?? null,
      weights: registry.weights(name),
      requires: registry.requirements(name),
    };
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
    const deliveries = this.deps.store.db.prepare('SELECT status, COUNT(*) AS n FROM monitor_webhook_deliveries GROUP BY status').all() as { status: string; n: number }[];
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
        requests_by_source: Object.fromEntries(WORK_SOURCES.map((k) => [k, { requests: sumOf((m) => m.requests.by_source?.[k].requests ?? 0), sequences: sumOf((m) => m.requests.by_source?.[k].sequences ?? 0) }])),
        queue_depth: sumOf((m) => m.queue_depth),
        in_flight: sumOf((m) => m.in_flight),
      },
      system: this.lastSystem ?? this.systemMetrics(),
      thresholds: { cpu_percent: this.settings.cpu_percent, memory_percent: this.settings.memory_percent, disk_percent: this.settings.disk_percent },
      restart_unhealthy: this.settings.restart_unhealthy,
      webhook: { configured: this.alerts.webhook.enabled(), queued: this.alerts.webhook.queued(), deliveries: Object.fromEntries(deliveries.map((d) => [d.status, d.n])) },
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
        .prepare('INSERT INTO monitor_system_samples (at, disk_percent, disk_used_bytes, disk_total_bytes, load1, memory_used_percent, gateway_rss_bytes) VALUES (?, ?, ?, ?, ?, ?, ?)')
        .run(now, system.disk_percent, system.disk_used_bytes, system.disk_total_bytes, system.load1, system.memory_used_percent, system.gateway_rss_bytes);

      for (const name of names) {
        const d = registry.deployment(name);
        const status = registry.status(name);
        const prevTrack = this.modelTrack.get(name);
        if (!prevTrack || prevTrack.status !== status) {
          this.event({ model: name, version: d?.version, kind: 'model', from: prevTrack?.status ?? null, to: status, message: status === 'failed' ? (registry.lastError(name) ?? null) : null }, now);
        }
        // Request counters for throughput: reset when the deployment changed (reload).
        const total = d?.stats.totalRequests ?? 0;
        const failed = d?.stats.failedRequests ?? 0;
        let rps: number | null = null;
        if (prevTrack && d && prevTrack.deployment === d && now > prevTrack.at) rps = round2(((total - prevTrack.requests) / (now - prevTrack.at)) * 1000);
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
          replicaRows.push([now, name, mm.version, r.id, r.pid, r.state, r.busy ? 1 : 0, r.cpu_percent, r.rss_bytes, r.memory_percent, r.open_fds, r.restarts, r.io.disk_read_bytes, r.io.disk_write_bytes, r.io.net_rx_bytes, r.io.net_tx_bytes]);
        }
        modelRows.push([now, name, mm.version, status, mm.healthy ? 1 : 0, mm.totals.replicas, mm.totals.ready, mm.totals.cpu_percent, mm.totals.rss_bytes, mm.totals.memory_percent, mm.totals.open_fds, mm.queue_depth, mm.in_flight, total, failed, rps, mm.requests.error_rate, mm.requests.p50_ms, mm.requests.p99_ms, mm.totals.restarts]);
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
        else if (subject.includes('/') && !seenReplicaKeys.has(subject)) this.alerts.resolve(key, 'replica no longer exists');
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
  private trackReplica(name: string, mm: ModelMetrics, r: ReplicaMetrics, key: string, now: number, d: ModelDeployment | undefined): { id: string; text: string }[] {
    const st = this.settings;
    let t = this.replicaTrack.get(key);
    const unexpected: { id: string; text: string }[] = [];
    if (!t) {
      t = { state: r.state, restarts: r.restarts, memOver: 0, cpuOver: 0, replacing: null, seen: 0 };
      this.replicaTrack.set(key, t);
      this.event({ model: name, version: mm.version, replica: r.id, kind: 'replica', from: null, to: r.state, message: r.pid ? `pid ${r.pid}` : null }, now);
    } else if (t.state !== r.state) {
      this.event({ model: name, version: mm.version, replica: r.id, kind: 'replica', from: t.state, to: r.state, message: r.state === 'restarting' || r.state === 'failed' ? (r.last_exit ?? r.last_error) : null }, now);
    }
    if (r.restarts > t.restarts) {
      const requested = t.replacing !== null;
      this.event({ model: name, version: mm.version, replica: r.id, kind: 'restart', from: null, to: r.state, message: `${requested ? 'replaced by the monitor' : 'restarted'}: ${r.last_exit ?? 'unknown reason'}` }, now);
      if (!requested) unexpected.push({ id: r.id, text: `replica ${r.id} restarted (${r.last_exit ?? 'unknown reason'})` });
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
        this.alerts.resolve(`memory:${key}`, `memory back under ${st.memory_percent}% (${r.memory_percent.toFixed(1)}%)`, r.memory_percent);
      }
      if (st.restart_unhealthy && d && t.replacing === null && t.memOver >= st.restart_after_samples && (!r.busy || t.memOver >= 2 * st.restart_after_samples)) {
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
        this.alerts.resolve(`cpu:${key}`, `cpu back under ${st.cpu_percent}% (${r.cpu_limit_percent.toFixed(1)}%)`, r.cpu_limit_percent);
      }
    }
    return unexpected;
  }

  /** Health: a failed model or replica, one restarting, or a restart nobody asked for since the last sample. */
  private evaluateHealth(name: string, mm: ModelMetrics, d: ModelDeployment | undefined, unexpected: { id: string; text: string }[]): void {
    if (mm.status === 'loading' || mm.status === 'draining') return;
    const reasons: string[] = [];
    const named = new Set<string>();
    if (mm.status === 'failed') reasons.push(`model ${name} failed: ${mm.last_error ?? 'unknown error'}`);
    for (const r of mm.replicas) {
      const replacing = (this.replicaTrack.get(`${name}/${r.id}`)?.replacing ?? null) !== null;
      if (r.state === 'failed') reasons.push(`replica ${r.id} failed: ${r.last_error ?? r.last_exit ?? 'unknown'}`);
      else if (r.state === 'restarting' && !replacing) reasons.push(`replica ${r.id} restarting after: ${r.last_exit ?? 'unknown'}`);
      else continue;
      named.add(r.id);
    }
    for (const u of unexpected) if (!named.has(u.id)) reasons.push(u.text);
    const key = `health:${name}`;
    if (reasons.length > 0) {
      this.alerts.fire({ key, kind: 'health', severity: 'critical', model: name, version: mm.version, message: reasons.join('; '), value: reasons.length });
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
      this.alerts.resolve('disk:state_dir', `disk back under ${st.disk_percent}% (${system.disk_percent.toFixed(1)}%)`, system.disk_percent);
    }
  }

  private resolveModel(name: string, why: string): void {
    for (const key of this.alerts.firingKeys()) {
      const subject = key.slice(key.indexOf(':') + 1);
      if (subject === name || subject.startsWith(`${name}/`)) this.alerts.resolve(key, why);
    }
    for (const key of [...this.replicaTrack.keys()]) if (key.startsWith(`${name}/`)) this.replicaTrack.delete(key);
  }

  private event(e: { model?: string; version?: string; replica?: string; kind: string; from?: string | null; to?: string | null; message?: string | null }, at: number): void {
    this.deps.store.db
      .prepare('INSERT INTO monitor_events (at, model, version, replica, kind, from_state, to_state, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
      .run(at, e.model ?? null, e.version ?? null, e.replica ?? null, e.kind, e.from ?? null, e.to ?? null, e.message ?? null);
  }

  private prune(now: number): void {
    this.lastPrune = now;
    const cutoff = now - this.deps.config.retention_hours * 3_600_000;
    const db = this.deps.store.db;
    db.transaction(() => {
      for (const t of ['monitor_replica_samples', 'monitor_model_samples', 'monitor_system_samples', 'monitor_events']) db.prepare(`DELETE FROM ${t} WHERE at < ?`).run(cutoff);
    })();
    this.alerts.prune(now - this.deps.config.perf_retention_days * 86_400_000);
  }

  // ---------------------------------------------------------------- history

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
    const rows = this.deps.store.db
      .prepare(`SELECT * FROM monitor_events ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY id DESC LIMIT ?`)
      .all(...args, Math.min(5000, q.limit ?? 200)) as { at: number; id: number; from_state: string | null; to_state: string | null }[];
    return rows.map(({ from_state, to_state, ...r }) => ({ ...r, from: from_state, to: to_state, at: iso(r.at) }));
  }

  /**
   * Time series of one model over [now - windowMs, now], downsampled to at most maxPoints,
   * with min/avg/max/trend per metric, per-replica statistics and the state history.
   */
  history(name: string, windowMs: number, maxPoints = 120): Record<string, unknown> {
    const end = Date.now();
    const start = end - windowMs;
    const db = this.deps.store.db;
    type Row = { at: number; status: string; replicas: number; replicas_ready: number; cpu_percent: number | null; rss_bytes: number | null; memory_percent: number | null; open_fds: number | null; queue_depth: number; in_flight: number; rps: number | null; error_rate: number | null; p50_ms: number | null; p99_ms: number | null; restarts: number };
    const rows = db
      .prepare('SELECT at, status, replicas, replicas_ready, cpu_percent, rss_bytes, memory_percent, open_fds, queue_depth, in_flight, rps, error_rate, p50_ms, p99_ms, restarts FROM monitor_model_samples WHERE model = ? AND at >= ? ORDER BY at')
      .all(name, start) as Row[];
    const stat = (f: (r: Row) => number | null, floor: number): SeriesStats => seriesStats(rows.map((r) => ({ at: r.at, value: f(r) })), floor);
    const stats = {
      cpu_percent: stat((r) => r.cpu_percent, 5),
      rss_bytes: stat((r) => r.rss_bytes, MB),
      memory_percent: stat((r) => r.memory_percent, 1),
      open_fds: stat((r) => r.open_fds, 2),
      queue_depth: stat((r) => r.queue_depth, 1),
      rps: stat((r) => r.rps, 0.5),
      p99_ms: stat((r) => r.p99_ms, 1),
    };
    type RRow = { at: number; replica: string; cpu_percent: number | null; rss_bytes: number | null; memory_percent: number | null; open_fds: number | null; restarts: number; state: string };
    const rrows = db.prepare('SELECT at, replica, cpu_percent, rss_bytes, memory_percent, open_fds, restarts, state FROM monitor_replica_samples WHERE model = ? AND at >= ? ORDER BY at').all(name, start) as RRow[];
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
      cpu_percent: seriesStats(list.map((r) => ({ at: r.at, value: r.cpu_percent })), 5),
      rss_bytes: seriesStats(list.map((r) => ({ at: r.at, value: r.rss_bytes })), MB),
      memory_percent: seriesStats(list.map((r) => ({ at: r.at, value: r.memory_percent })), 1),
    }));
    return {
      model: name,
      window: { start: iso(start), end: iso(end), seconds: Math.round(windowMs / 1000) },
      interval_ms: this.deps.config.interval_ms,
      samples: rows.length,
      stats,
      series: downsample(rows, maxPoints, start, end).map((r) => ({ ...r, at: iso(r.at) })),
      replicas,
      events: this.events({ model: name, sinceMs: start, limit: 500 }),
      alerts: this.alerts.list({ model: name, sinceMs: start, limit: 50, history: false }),
    };
  }

  systemHistory(windowMs: number, maxPoints = 120): Record<string, unknown> {
    const end = Date.now();
    const start = end - windowMs;
    const rows = this.deps.store.db.prepare('SELECT at, disk_percent, load1, memory_used_percent, gateway_rss_bytes FROM monitor_system_samples WHERE at >= ? ORDER BY at').all(start) as {
      at: number;
      disk_percent: number | null;
      load1: number;
      memory_used_percent: number;
      gateway_rss_bytes: number;
    }[];
    return {
      samples: rows.length,
      stats: {
        disk_percent: seriesStats(rows.map((r) => ({ at: r.at, value: r.disk_percent })), 1),
        load1: seriesStats(rows.map((r) => ({ at: r.at, value: r.load1 })), 0.5),
        memory_used_percent: seriesStats(rows.map((r) => ({ at: r.at, value: r.memory_used_percent })), 1),
        gateway_rss_bytes: seriesStats(rows.map((r) => ({ at: r.at, value: r.gateway_rss_bytes })), MB),
      },
      series: downsample(rows, maxPoints, start, end).map((r) => ({ ...r, at: iso(r.at) })),
    };
  }
}
