// Seed 001's "containers": a named replica set of one model with its own resource limits, on the
// driver the model's manifest asks for (process, sandbox, docker), beside and apart from the
// model's own deployment. Records live in SQLite (table `containers`); a container that was
// running when the gateway stopped is started again at the next start.
import type { Logger } from 'pino';
import { IsoError } from '../errors.js';
import type { WorkerFactory } from '../drivers/factory.js';
import type { ModelPackage } from '../manifest/load.js';
import type { StateStore } from '../store/db.js';
import type { DeploymentObserver } from './observer.js';
import { ModelDeployment } from './deployment.js';
import type { ModelRegistry } from './registry.js';

export const CONTAINER_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/** Containers one gateway may hold (each is at least one worker process when running). */
export const MAX_CONTAINERS = 256;
/** A container's limits: the API's bounds, held here too (the API's string forms, "5000" CPUs, "99999G", reach past them). */
export const MAX_CONTAINER_CPUS = 1024;
export const MAX_CONTAINER_MEMORY_MB = 16 * 1024 * 1024;
export const MAX_CONTAINER_REPLICAS = 16;

export type ContainerStatus = 'created' | 'starting' | 'running' | 'stopping' | 'stopped' | 'failed';

export interface ContainerSpec {
  name: string;
  model: string;
  cpus: number;
  memoryMb: number;
  replicas: number;
}

interface Row {
  name: string;
  model: string;
  cpus: number;
  memory_mb: number;
  replicas: number;
  running: number;
  /** 1 once the container has been started (it then comes back `stopped`, not `created`). */
  started: number;
  created_at: string;
}

interface Live {
  spec: ContainerSpec;
  createdAt: string;
  status: ContainerStatus;
  lastError: string | null;
  deployment: ModelDeployment | null;
  /** The start in progress: a second start waits for it. */
  starting: Promise<ModelDeployment> | null;
  /** The stop in progress (its workers draining): a second stop waits for it. */
  halting: Promise<void> | null;
  startedAt: number | null;
  /** Replica ids this container has had (its log files), newest last, at most 64. */
  replicaIds: string[];
}

export interface ContainerManagerOptions {
  store: StateStore;
  registry: ModelRegistry;
  createWorker: WorkerFactory;
  logger: Logger;
  observerFor?: (model: string, version: string) => DeploymentObserver;
}

function checkLimits(spec: ContainerSpec): void {
  if (!(spec.cpus > 0 && spec.cpus <= MAX_CONTAINER_CPUS))
    throw new IsoError('VALIDATION_ERROR', `cpus: more than 0 and at most ${MAX_CONTAINER_CPUS}`);
  if (!Number.isInteger(spec.memoryMb) || spec.memoryMb < 1 || spec.memoryMb > MAX_CONTAINER_MEMORY_MB)
    throw new IsoError('VALIDATION_ERROR', `memory_mb: a whole number of MB from 1 to ${MAX_CONTAINER_MEMORY_MB}`);
  if (!Number.isInteger(spec.replicas) || spec.replicas < 1 || spec.replicas > MAX_CONTAINER_REPLICAS)
    throw new IsoError('VALIDATION_ERROR', `replicas: a whole number from 1 to ${MAX_CONTAINER_REPLICAS}`);
}

export class ContainerManager {
  private readonly items = new Map<string, Live>();

  constructor(private readonly opts: ContainerManagerOptions) {
    opts.store.migrateNamespace('containers', [
      `CREATE TABLE containers (
         name TEXT PRIMARY KEY, model TEXT NOT NULL, cpus REAL NOT NULL, memory_mb INTEGER NOT NULL,
         replicas INTEGER NOT NULL, running INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL
       )`,
      // Whether it was ever started: one stopped by hand comes back stopped, not created.
      `ALTER TABLE containers ADD COLUMN started INTEGER NOT NULL DEFAULT 0;
       UPDATE containers SET started = 1 WHERE running = 1`,
    ]);
    for (const r of opts.store.db.prepare('SELECT * FROM containers ORDER BY created_at').all() as Row[]) {
      this.items.set(r.name, {
        spec: { name: r.name, model: r.model, cpus: r.cpus, memoryMb: r.memory_mb, replicas: r.replicas },
        createdAt: r.created_at,
        status: r.running || r.started ? 'stopped' : 'created',
        lastError: null,
        deployment: null,
        starting: null,
        halting: null,
        startedAt: null,
        replicaIds: [],
      });
    }
  }

  /** Starts the containers that were running when the gateway last stopped (in the background). */
  restore(): void {
    const rows = this.opts.store.db.prepare('SELECT name FROM containers WHERE running = 1').all() as {
      name: string;
    }[];
    for (const { name } of rows) {
      this.start(name).catch((e: Error) =>
        this.opts.logger.warn({ container: name, error: e.message }, 'container did not start again'),
      );
    }
  }

  private get(name: string): Live {
    const c = this.items.get(name);
    if (!c) throw new IsoError('NOT_FOUND', `no container ${JSON.stringify(name.slice(0, 80))}`);
    // Replicas that kept failing after the start gave up: the deployment failed, and so did the container.
    if (c.status === 'running' && c.deployment?.state === 'failed') {
      c.status = 'failed';
      c.lastError = c.deployment.lastError;
    }
    return c;
  }

  create(spec: ContainerSpec): Live {
    if (!CONTAINER_NAME.test(spec.name))
      throw new IsoError(
        'INVALID_REQUEST',
        'container_name: 1-64 letters, digits, ".", "_" and "-", starting with a letter or digit',
      );
    checkLimits(spec);
    if (this.items.has(spec.name)) throw new IsoError('CONFLICT', `container ${spec.name} already exists`);
    if (this.items.size >= MAX_CONTAINERS) throw new IsoError('QUOTA_EXCEEDED', `at most ${MAX_CONTAINERS} containers`);
    this.opts.registry.package(spec.model); // MODEL_NOT_FOUND when unknown
    const createdAt = new Date().toISOString();
    this.opts.store.db
      .prepare(
        'INSERT INTO containers (name, model, cpus, memory_mb, replicas, running, created_at) VALUES (?, ?, ?, ?, ?, 0, ?)',
      )
      .run(spec.name, spec.model, spec.cpus, spec.memoryMb, spec.replicas, createdAt);
    const live: Live = {
      spec,
      createdAt,
      status: 'created',
      lastError: null,
      deployment: null,
      starting: null,
      halting: null,
      startedAt: null,
      replicaIds: [],
    };
    this.items.set(spec.name, live);
    return live;
  }

  /** The model's package with the container's limits in place of the manifest's. */
  private packageFor(spec: ContainerSpec): ModelPackage {
    const pkg = this.opts.registry.package(spec.model);
    return {
      ...pkg,
      manifest: {
        ...pkg.manifest,
        resources: { ...pkg.manifest.resources, cpus: spec.cpus, memory_mb: spec.memoryMb },
      },
    };
  }

  async start(name: string): Promise<ModelDeployment> {
    const c = this.get(name);
    if (c.deployment?.state === 'ready') return c.deployment;
    if (c.starting) return c.starting;
    const pkg = this.packageFor(c.spec);
    // A deployment that failed after its start: stopped (its housekeeping timer) before the new one.
    const failed = c.deployment;
    c.deployment = null;
    const { name: model, version } = pkg.manifest;
    const d = new ModelDeployment(
      pkg,
      this.opts.createWorker,
      this.opts.logger.child({ container: name }),
      this.opts.observerFor?.(model, version),
      {
        scaling: { min_replicas: c.spec.replicas, max_replicas: c.spec.replicas, idle_timeout_s: 0 },
      },
    );
    c.status = 'starting';
    c.starting = (failed ? failed.stop(1000).catch(() => undefined) : Promise.resolve())
      .then(() => d.start())
      .then(
        () => {
          c.deployment = d;
          c.status = 'running';
          c.lastError = null;
          c.startedAt = Date.now();
          this.noteReplicas(c);
          this.setRunning(c, true);
          return d;
        },
        async (e: Error) => {
          c.status = 'failed';
          c.lastError = e.message;
          await d.stop(1000).catch(() => undefined);
          throw e instanceof IsoError ? e : new IsoError('MODEL_NOT_LOADED', e.message);
        },
      );
    try {
      return await c.starting;
    } finally {
      c.starting = null;
    }
  }

  async stop(name: string, graceMs = 10_000): Promise<void> {
    await this.halt(this.get(name), graceMs);
  }

  /**
   * A stop while another one drains the workers waits for it, so that both answer once the
   * workers are gone; then it stops what a start made in between, if any. (The first stop's
   * `finally` runs before its waiters resume: one stop at a time holds `halting`.)
   */
  private async halt(c: Live, graceMs: number): Promise<void> {
    while (c.halting) await c.halting;
    c.halting = this.haltNow(c, graceMs);
    try {
      await c.halting;
    } finally {
      c.halting = null;
    }
  }

  private async haltNow(c: Live, graceMs: number): Promise<void> {
    if (c.starting) await c.starting.catch(() => undefined);
    const d = c.deployment;
    c.deployment = null;
    if (d) {
      c.status = 'stopping';
      await d.drain(graceMs);
      // A start while it drained owns the container now.
      if (c.deployment || c.starting) return;
    }
    c.status = 'stopped';
    c.startedAt = null;
    this.setRunning(c, false);
  }

  /** Gone at once (a start while its workers drain finds no container), then stopped. */
  async delete(name: string): Promise<void> {
    const c = this.get(name);
    this.items.delete(name);
    this.opts.store.db.prepare('DELETE FROM containers WHERE name = ?').run(name);
    await this.halt(c, 10_000);
  }

  /** The running deployment of a container; 503 MODEL_NOT_LOADED when it is not running. */
  serving(name: string): ModelDeployment {
    const c = this.get(name);
    if (!c.deployment || c.deployment.state !== 'ready')
      throw new IsoError(
        'MODEL_NOT_LOADED',
        `container ${name} is ${c.status}: start it first (POST /api/containers/start)`,
      );
    return c.deployment;
  }

  names(): string[] {
    return [...this.items.keys()];
  }

  /** Containers of a model (a model with containers cannot be deleted). */
  ofModel(model: string): string[] {
    return [...this.items.values()].filter((c) => c.spec.model === model).map((c) => c.spec.name);
  }

  private noteReplicas(c: Live): void {
    for (const r of c.deployment?.replicaInfo() ?? []) if (!c.replicaIds.includes(r.id)) c.replicaIds.push(r.id);
    if (c.replicaIds.length > 64) c.replicaIds.splice(0, c.replicaIds.length - 64);
  }

  /** Replica ids the container has had since the gateway started (whose log files are its logs). */
  replicaHistory(name: string): string[] {
    const c = this.get(name);
    this.noteReplicas(c);
    return [...c.replicaIds];
  }

  describe(name: string): Record<string, unknown> {
    const c = this.get(name);
    this.noteReplicas(c);
    const replicas = c.deployment?.replicaInfo() ?? [];
    const sum = (f: (r: (typeof replicas)[number]) => number | undefined): number | null =>
      replicas.some((r) => f(r) !== undefined) ? replicas.reduce((a, r) => a + (f(r) ?? 0), 0) : null;
    const pkg = this.opts.registry.names().includes(c.spec.model) ? this.opts.registry.package(c.spec.model) : null;
    return {
      container_name: c.spec.name,
      model_id: c.spec.model,
      version: pkg?.manifest.version ?? null,
      isolation: pkg?.manifest.isolation ?? null,
      status: c.status,
      resources: {
        cpu: c.spec.cpus,
        memory: `${c.spec.memoryMb}M`,
        memory_mb: c.spec.memoryMb,
        replicas: c.spec.replicas,
      },
      resource_use: {
        cpu_percent: sum((r) => r.cpu_percent),
        memory_bytes: sum((r) => r.rss_bytes),
        memory_percent_of_limit: (() => {
          const m = sum((r) => r.rss_bytes);
          return m === null ? null : Math.round((m / (c.spec.memoryMb * c.spec.replicas * 1024 * 1024)) * 1000) / 10;
        })(),
      },
      replicas,
      queue_depth: c.deployment?.queueDepth() ?? 0,
      requests: c.deployment?.stats.summary() ?? null,
      uptime_s: c.startedAt ? Math.round((Date.now() - c.startedAt) / 1000) : null,
      last_error: c.lastError,
      created_at: c.createdAt,
    };
  }

  /** Only while `c` is the container of its name: a deleted one's late start or stop leaves a new one's row alone. */
  private setRunning(c: Live, running: boolean): void {
    if (this.items.get(c.spec.name) !== c) return;
    this.opts.store.db
      .prepare(`UPDATE containers SET running = ?${running ? ', started = 1' : ''} WHERE name = ?`)
      .run(running ? 1 : 0, c.spec.name);
  }

  /** Gateway shutdown: every container's workers stop; their records (running or not) stay. */
  async close(): Promise<void> {
    await Promise.all(
      [...this.items.values()].map(async (c) => {
        if (c.starting) await c.starting.catch(() => undefined);
        await c.deployment?.stop(2000).catch(() => undefined);
        c.deployment = null;
      }),
    );
  }
}
