// Composes one isomodel gateway: configuration, state store, isolation drivers, model
// registry and the HTTP server. The CLI's `serve` and the tests both start it this way.
import type { FastifyInstance } from 'fastify';
import { pino, type Logger } from 'pino';
import type { Config } from './config/config.js';
import { CgroupManager } from './drivers/cgroups.js';
import {
  createWorkerFactory,
  driverContext,
  reapLeftovers,
  tidyWorkDirOnClose,
  type DriverContext,
} from './drivers/factory.js';
import { secureStateDir } from './drivers/workspace.js';
import { dockerIoProbe } from './drivers/docker.js';
import { ModelRegistry } from './scheduler/registry.js';
import { DEFAULT_VERSION_POLICY } from './scheduler/versions.js';
import { StateStore } from './store/db.js';
import { SharedState } from './store/shared/state.js';
import type { SharedJobWorker } from './store/shared/job-worker.js';
import { sharedJobWorker } from './jobs/shared-runner.js';
import { DeploymentSync } from './scheduler/deployment-sync.js';
import { buildServer } from './api/server.js';
import type { GatewayContext } from './api/context.js';
import { GatewayMetrics } from './telemetry/prometheus.js';
import { AuditLog, type AuditSink } from './security/audit.js';
import { KeyStore, type KeyBackend } from './security/keys.js';
import { isLoopback } from './security/network.js';
import { Monitor } from './telemetry/monitor.js';
import { PerfCollector } from './telemetry/perf.js';
import { jobRunnerFor, resumeJobs } from './jobs/runner.js';
import { pruneSharedTable, RetentionJob } from './store/retention.js';
import { ContainerManager } from './scheduler/containers.js';
import { ReplicaLogs } from './telemetry/replica-logs.js';

/** The gateway's parts, as the surfaces see them (api/context.ts). */
export class Gateway implements GatewayContext {
  readonly logger: Logger;
  readonly store: StateStore;
  readonly registry: ModelRegistry;
  /** Seed 001's named replica sets of a model with their own limits (api/routes/seed-001.ts). */
  readonly containers: ContainerManager;
  /** Per-replica log files (config log_files); null when turned off. */
  readonly replicaLogs: ReplicaLogs | null;
  readonly cgroups: CgroupManager;
  readonly metrics: GatewayMetrics;
  /** The embedded key table (SQLite). With database_url, requests are checked against `keyring` instead. */
  readonly keys: KeyStore;
  /** The embedded audit log (SQLite). With database_url, admin actions go to `auditTrail` instead. */
  readonly audit: AuditLog;
  /** Keys, audit, traffic splits and jobs shared with other gateways (database_url); null: all in SQLite. */
  shared: SharedState | null = null;
  /** With database_url: this gateway's share of the jobs in the shared store (jobs/shared-runner.ts). */
  sharedJobs: SharedJobWorker | null = null;
  /** With database_url: deployments made through the deployment API, recorded for and applied from the other gateways. */
  deploymentSync: DeploymentSync | null = null;
  readonly monitor: Monitor;
  readonly perf: PerfCollector;
  /** Prunes the audit log and the request log (config `retention`). */
  readonly retention: RetentionJob;
  readonly startedAt = Date.now();
  /** Set once the initial model loads have been attempted (startup probe). */
  started = false;
  server: FastifyInstance | null = null;
  private readonly drivers: DriverContext;

  constructor(
    readonly config: Config,
    logger?: Logger,
  ) {
    this.logger = logger ?? pino({ level: config.log_level });
    // 0700 before the database is created in it, its files 0600 once they exist (workers never
    // need it: what they reach is in the work dir, drivers/workspace.ts).
    secureStateDir(config.state_dir);
    this.store = new StateStore(config.state_dir, undefined, (message) => this.logger.error(message));
    for (const note of secureStateDir(config.state_dir)) this.logger.warn(note);
    this.keys = new KeyStore(this.store, config.auth.keys);
    this.audit = new AuditLog(this.store);
    const days = (d: number): number => d * 86_400_000;
    const r = config.retention;
    this.retention = new RetentionJob(
      this.store.db,
      [
        { table: 'audit_log', policy: { maxAgeMs: days(r.audit_days), maxRows: r.audit_max_rows } },
        { table: 'request_log', policy: { maxAgeMs: days(r.request_log_days), maxRows: r.request_log_max_rows } },
      ],
      r.interval_ms,
      (message) => this.logger.error(message),
      r.jobs_days > 0
        ? [
            {
              name: 'jobs',
              prune: (now) => jobRunnerFor(this).store.pruneFinished(new Date(now - days(r.jobs_days)).toISOString()),
            },
          ]
        : [],
    );
    this.cgroups = config.cgroups ? CgroupManager.detect() : CgroupManager.disabled();
    const lf = config.log_files;
    this.replicaLogs = lf.enabled
      ? new ReplicaLogs(lf.dir ?? `${config.state_dir}/logs`, lf, (message) => this.logger.warn(message))
      : null;
    this.drivers = {
      ...driverContext(config, this.logger, this.cgroups),
      // Each replica's stderr: rate and size limits, drops counted per model (worker/log-limiter.ts),
      // and every line into the replica's log file (telemetry/replica-logs.ts).
      workerLog: (model) => ({
        limits: config.worker_log,
        ...this.metrics.workerLog(model),
        tee: (replica) => this.replicaLogs?.sink(model, replica),
      }),
    };
    const factory = createWorkerFactory(this.drivers);
    this.metrics = new GatewayMetrics(() => this.registry, { aiModelNames: config.prometheus_ai_model_names });
    this.registry = new ModelRegistry(
      config.models_dir,
      factory,
      this.logger,
      this.store,
      (m, v) => this.metrics.observerFor(m, v),
      {
        versionPolicy: (name) => config.version_policy[name] ?? config.version_policy['*'] ?? DEFAULT_VERSION_POLICY,
        operatorEnv: (name) => config.model_env[name],
      },
    );
    this.containers = new ContainerManager({
      store: this.store,
      registry: this.registry,
      createWorker: factory,
      logger: this.logger,
      observerFor: (m, v) => this.metrics.observerFor(m, v),
    });
    this.monitor = new Monitor({
      registry: this.registry,
      store: this.store,
      logger: this.logger.child({ component: 'monitor' }),
      stateDir: config.state_dir,
      config: config.monitor,
      ioProbe: dockerIoProbe,
    });
    this.perf = new PerfCollector({
      store: this.store,
      registry: this.registry,
      logger: this.logger,
      intervalMs: config.monitor.perf_interval_ms,
      retentionDays: config.monitor.perf_retention_days,
    });
  }

  /** What requests' API keys are checked against: the shared store with database_url, else the embedded one. */
  get keyring(): KeyBackend {
    return this.shared?.keys ?? this.keys;
  }

  /** Where admin actions are recorded: the shared audit log with database_url, else the embedded one. */
  get auditTrail(): AuditSink {
    return this.shared?.audit ?? this.audit;
  }

  /** Connects to the shared state database (database_url); keys and splits then come from there. */
  private async openShared(): Promise<void> {
    const url = this.config.database_url;
    if (!url || this.shared) return;
    const log = this.logger.child({ component: 'shared-state' });
    this.shared = await SharedState.open(url, this.config.auth.keys, (message) => log.warn(message));
    this.registry.useTrafficStore(this.shared.traffic, (m) => log.error(m));
    this.shared.traffic.onChange((state) => this.registry.applyTraffic(state));
    this.monitor.useRulesStore(this.shared.alertRules);
    this.deploymentSync = new DeploymentSync(this.registry, this.shared.deployments, this.config.state_dir, log);
    const r = this.config.retention;
    const audit = {
      table: 'audit_log' as const,
      policy: { maxAgeMs: r.audit_days * 86_400_000, maxRows: r.audit_max_rows },
    };
    const sql = this.shared.sql;
    this.retention.addAsync({ name: 'shared audit_log', prune: (now) => pruneSharedTable(sql, audit, now) });
    log.info(
      { database: this.shared.feed.listening ? 'listening for changes' : 'polling for changes' },
      'state shared through PostgreSQL',
    );
  }

  /** The model the root routes (/predict, /model/info, /health) answer for. */
  defaultModel(): string | undefined {
    const names = this.registry.names();
    if (this.config.default_model && names.includes(this.config.default_model)) return this.config.default_model;
    return names[0];
  }

  /** The configured default_model when no package has that name (reported at start and in /health/detailed). */
  missingDefaultModel(): string | undefined {
    const d = this.config.default_model;
    return d && !this.registry.names().includes(d) ? d : undefined;
  }

  requiredModels(): string[] {
    if (this.config.required_models) return this.config.required_models;
    return this.registry.names().filter((n) => {
      const m = this.registry.package(n).manifest;
      return m.autoload && m.required;
    });
  }

  /** Listens first (so liveness answers during model loading), then loads models. */
  async start(): Promise<{ url: string }> {
    this.logger.info({ cgroups: this.cgroups.version, models_dir: this.config.models_dir }, 'starting isomodel');
    await this.openShared();
    // No keys means no auth: acceptable only where nothing but this machine can connect.
    const authOn = this.keyring.any();
    if (!authOn && !isLoopback(this.config.host)) {
      throw new Error(
        `refusing to listen on ${this.config.host} without API keys: create one with \`isomodel keys create <name> --scopes predict,admin\` (or configure auth.keys), or bind to 127.0.0.1`,
      );
    }
    this.logger.info(
      { auth: authOn ? 'on' : 'off', tls: Boolean(this.config.tls) },
      authOn ? 'API keys required' : 'auth is OFF: loopback only, no API keys configured',
    );
    this.server = await buildServer(this);
    const url = await this.server.listen({ host: this.config.host, port: this.config.port });
    await reapLeftovers(this.drivers);
    await this.registry.init({ waitFor: (m) => m.required });
    const missingDefault = this.missingDefaultModel();
    if (missingDefault)
      this.logger.warn(
        { default_model: missingDefault, serving: this.defaultModel() ?? null },
        `default_model "${missingDefault}" is not among the models in ${this.config.models_dir}: the root routes (/predict, /health, /model/info) answer for ${this.defaultModel() ?? 'no model'} instead`,
      );
    this.containers.restore();
    this.deploymentSync?.start();
    // Batch jobs left queued or running by a previous process (crash, SIGKILL) carry on (src/jobs/runner.ts).
    resumeJobs(this);
    if (this.shared) {
      this.sharedJobs = sharedJobWorker(this, this.shared.jobs);
      this.sharedJobs.start();
    }
    if (this.config.watch) this.registry.watch();
    this.started = true;
    this.monitor.start();
    this.perf.start();
    this.retention.start();
    return { url };
  }

  /** Loads the models (and watches the models dir) without an HTTP server: `isomodel mcp` on stdio. */
  async startModels(): Promise<void> {
    this.logger.info({ cgroups: this.cgroups.version, models_dir: this.config.models_dir }, 'loading models');
    await this.openShared();
    await reapLeftovers(this.drivers);
    await this.registry.init();
    this.deploymentSync?.start();
    if (this.config.watch) this.registry.watch();
    this.started = true;
  }

  address(): { host: string; port: number } {
    const a = this.server?.server.address();
    if (!a || typeof a === 'string') throw new Error('server is not listening');
    return { host: a.address, port: a.port };
  }

  async close(): Promise<void> {
    await this.server?.close();
    this.deploymentSync?.close();
    // Leases handed back: another gateway takes the chunks in flight here at once.
    await this.sharedJobs?.stop();
    this.sharedJobs = null;
    await this.monitor.stop();
    this.perf.stop();
    this.retention.stop();
    await this.containers.close();
    await this.registry.close();
    tidyWorkDirOnClose(this.drivers);
    this.replicaLogs?.close();
    await this.shared?.close();
    this.shared = null;
    this.store.close();
  }
}
