// The worker monitor: every interval it samples each replica (CPU, RSS, open fds, I/O where a
// probe gives it), each model (state, queue, request counters) and the state dir's disk; it
// records samples and state transitions in SQLite, raises and resolves alerts against the
// thresholds (settable at runtime), and replaces replicas that stay over their memory threshold.
// What it reports live is computed in ./monitor-metrics.ts, its summary in ./monitor-summary.ts;
// thresholds and the restart policy are ./monitor-conditions.ts's; what it writes to SQLite is
// ./monitor-log.ts's and its history is read by ./monitor-history.ts.
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
import { MonitorConditions, type MonitorSettings, type UnexpectedRestart } from './monitor-conditions.js';
import { MonitorHistory } from './monitor-history.js';
import { MonitorLog, type ModelCounters, type MonitorEvent } from './monitor-log.js';
import {
  modelMetrics,
  round2,
  systemMetrics,
  type ModelMetrics,
  type ModelMetricsSource,
  type SystemMetrics,
} from './monitor-metrics.js';
import { monitorSummary } from './monitor-summary.js';
import { iso } from './series.js';
import { ensureTelemetrySchema } from './telemetry-schema.js';

export type { IoSample, WorkerIoProbe } from '../util/proc.js';
export type { ModelMetrics, ReplicaMetrics, SystemMetrics } from './monitor-metrics.js';
export type { MonitorSettings, Thresholds } from './monitor-conditions.js';

export type MonitorConfig = Config['monitor'];

export interface MonitorDeps {
  registry: ModelRegistry;
  store: StateStore;
  logger: Logger;
  stateDir: string;
  config: MonitorConfig;
  ioProbe?: WorkerIoProbe;
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

export class Monitor {
  readonly alerts: AlertManager;
  /** Where the runtime settings (the alert rules) are kept. */
  private rules: AlertRulesBackend;
  private settings: MonitorSettings;
  private settingsSource: 'config' | 'runtime' = 'config';
  private settingsUpdatedAt: number | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly modelTrack = new Map<string, ModelTrack>();
  private samplesTaken = 0;
  private lastSampleAt: number | null = null;
  private lastSystem: SystemMetrics | null = null;
  private lastPrune = Date.now();
  private readonly ioProbe: WorkerIoProbe;
  private readonly metricsSource: ModelMetricsSource;
  private readonly historyReader: MonitorHistory;
  private readonly log: MonitorLog;
  private readonly conditions: MonitorConditions;
  private readonly event: (e: MonitorEvent, at: number) => void;
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
    const log = new MonitorLog(deps.store.db);
    this.log = log;
    this.event = (e, at) => log.event(e, at);
    this.conditions = new MonitorConditions(this.alerts, this.event, () => this.settings);
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
    return monitorSummary({
      models: this.allModelMetrics(),
      alerts: this.alerts,
      deliveries: this.log.deliveries(),
      running: this.running(),
      intervalMs: this.deps.config.interval_ms,
      samplesTaken: this.samplesTaken,
      lastSampleAt: this.lastSampleAt,
      system: this.lastSystem ?? this.systemMetrics(),
      settings: this.settings,
    });
  }

  // ---------------------------------------------------------------- sampling

  /** One monitoring pass: sample, persist, evaluate alerts and the restart policy. */
  sample(): void {
    if (this.stopped) return;
    const now = Date.now();
    const { registry, store } = this.deps;
    const system = this.systemMetrics();
    this.lastSystem = system;
    const sampled: { name: string; mm: ModelMetrics; counters: ModelCounters }[] = [];
    const seenReplicaKeys = new Set<string>();
    const liveModels = new Set<string>();
    const names = registry.names();

    store.db.transaction(() => {
      this.log.system(now, system);

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
          this.conditions.resolveModel(name, 'model unloaded');
          continue;
        }
        liveModels.add(name);
        const mm = this.modelMetrics(name);
        let unexpected: UnexpectedRestart[] = [];
        for (const r of mm.replicas) {
          const key = `${name}/${r.id}`;
          seenReplicaKeys.add(key);
          unexpected = unexpected.concat(this.conditions.replica(name, mm, r, key, now, d));
        }
        sampled.push({ name, mm, counters: { status, total, failed, rps } });
        this.conditions.health(name, mm, d, unexpected);
      }

      this.conditions.dropGone(seenReplicaKeys, now);
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

      this.log.samples(now, sampled);

      this.conditions.disk(system);
    })();

    this.samplesTaken++;
    this.lastSampleAt = now;
    if (now - this.lastPrune > PRUNE_EVERY_MS) this.prune(now);
  }

  private prune(now: number): void {
    this.lastPrune = now;
    this.log.prune(now - this.deps.config.retention_hours * 3_600_000);
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
