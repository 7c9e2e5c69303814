// The set of known model packages and their live deployments: load, unload, and hot reload
// that swaps a changed package only after its new version is ready.
import { watch, type FSWatcher } from 'node:fs';
import type { Logger } from 'pino';
import { IsoError } from '../errors.js';
import { discoverPackages, isValidModelName, type ManifestError, type ModelPackage } from '../manifest/load.js';
import type { WorkerFactory } from '../drivers/factory.js';
import type { StateStore } from '../store/db.js';
import { ModelDeployment } from './deployment.js';
import type { Manifest } from '../manifest/schema.js';
import type { DeploymentObserver } from '../telemetry/prometheus.js';

export type ModelStatus = 'unloaded' | 'loading' | 'ready' | 'failed' | 'draining' | 'stopped';

export interface ReloadSummary {
  added: string[];
  updated: string[];
  removed: string[];
  unchanged: string[];
  errors: { file: string; issues: string[] }[];
}

export class ModelRegistry {
  private packages = new Map<string, ModelPackage>();
  private readonly deployments = new Map<string, ModelDeployment>();
  private readonly loading = new Map<string, Promise<ModelDeployment>>();
  private readonly lastErrors = new Map<string, string>();
  private manifestErrors: ManifestError[] = [];
  private watcher: FSWatcher | null = null;
  private reloadChain: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(
    readonly modelsDir: string,
    private readonly createWorker: WorkerFactory,
    private readonly logger: Logger,
    private readonly store?: StateStore,
    private readonly observerFor?: (model: string, version: string) => DeploymentObserver,
  ) {}

  /** Discovers packages and loads those with autoload; waits for them (failures are recorded). */
  /**
   * Discovers packages and, unless `load` is false, loads those with autoload. Resolves once the
   * loads that `waitFor` selects (default: all) are settled; the others finish in the background,
   * so an optional model whose weights take long to fail cannot delay startup.
   */
  async init(opts: { load?: boolean; waitFor?: (m: Manifest) => boolean } = {}): Promise<void> {
    const found = discoverPackages(this.modelsDir);
    this.manifestErrors = found.errors;
    for (const e of found.errors) this.logger.error({ file: e.file, issues: e.issues }, 'invalid model package');
    for (const p of found.packages) this.packages.set(p.manifest.name, p);
    for (const p of found.packages) this.persist(p.manifest.name);
    if (opts.load === false) return;
    const loads = found.packages
      .filter((p) => p.manifest.autoload)
      .map((p) => ({ m: p.manifest, done: this.load(p.manifest.name).catch(() => undefined) }));
    await Promise.all(loads.filter((l) => opts.waitFor?.(l.m) ?? true).map((l) => l.done));
  }

  names(): string[] {
    return [...this.packages.keys()].sort();
  }

  package(name: string): ModelPackage {
    if (!isValidModelName(name)) throw new IsoError('MODEL_NOT_FOUND', `no model named "${name.slice(0, 80)}"`);
    const p = this.packages.get(name);
    if (!p) throw new IsoError('MODEL_NOT_FOUND', `no model named "${name}"`, { available: this.names() });
    return p;
  }

  deployment(name: string): ModelDeployment | undefined {
    return this.deployments.get(name);
  }

  /** The deployment that serves requests for `name`, or the reason it cannot. */
  serving(name: string): ModelDeployment {
    this.package(name);
    const d = this.deployments.get(name);
    if (d && (d.state === 'ready' || d.state === 'failed')) return d;
    if (this.loading.has(name)) throw new IsoError('MODEL_NOT_LOADED', `model ${name} is loading`, undefined, 2);
    const err = this.lastErrors.get(name);
    throw new IsoError('MODEL_NOT_LOADED', err ? `model ${name} failed to load: ${err}` : `model ${name} is not loaded; POST /v1/models/${name}/load`);
  }

  status(name: string): ModelStatus {
    if (this.loading.has(name) && !this.deployments.has(name)) return 'loading';
    const d = this.deployments.get(name);
    if (d) return d.state === 'loading' ? 'loading' : d.state;
    return this.lastErrors.has(name) ? 'failed' : 'unloaded';
  }

  lastError(name: string): string | undefined {
    return this.deployments.get(name)?.lastError ?? this.lastErrors.get(name);
  }

  invalidPackages(): { file: string; issues: string[] }[] {
    return this.manifestErrors.map((e) => ({ file: e.file, issues: e.issues }));
  }

  /** Loads (or returns the loaded) deployment of a known package. */
  async load(name: string): Promise<ModelDeployment> {
    const pkg = this.package(name);
    const existing = this.deployments.get(name);
    if (existing && existing.state === 'ready') return existing;
    const inFlight = this.loading.get(name);
    if (inFlight) return inFlight;
    const p = this.startDeployment(pkg).then(async (d) => {
      const old = this.deployments.get(name);
      this.deployments.set(name, d);
      if (old && old !== d) await old.stop(1000);
      return d;
    });
    this.loading.set(name, p);
    try {
      return await p;
    } finally {
      this.loading.delete(name);
      this.persist(name);
    }
  }

  private async startDeployment(pkg: ModelPackage): Promise<ModelDeployment> {
    const name = pkg.manifest.name;
    const d = new ModelDeployment(pkg, this.createWorker, this.logger, this.observerFor?.(name, pkg.manifest.version));
    const t0 = Date.now();
    try {
      await d.start();
    } catch (e) {
      const msg = (e as Error).message;
      this.lastErrors.set(name, msg);
      this.logger.error({ model: name, error: msg }, 'model failed to load');
      throw e instanceof IsoError ? e : new IsoError('MODEL_NOT_LOADED', msg);
    }
    this.lastErrors.delete(name);
    this.logger.info({ model: name, version: pkg.manifest.version, ms: Date.now() - t0 }, 'model ready');
    return d;
  }

  async unload(name: string): Promise<void> {
    this.package(name);
    const pending = this.loading.get(name);
    if (pending) await pending.catch(() => undefined);
    const d = this.deployments.get(name);
    this.deployments.delete(name);
    this.lastErrors.delete(name);
    if (d) await d.drain(10_000);
    this.persist(name);
  }

  /**
   * Re-reads the models dir. Changed packages that are loaded get a new deployment; the old
   * one keeps serving until the new one is ready, then drains. Serialised: one at a time.
   */
  reload(): Promise<ReloadSummary> {
    const run = this.reloadChain.then(() => this.doReload());
    this.reloadChain = run.catch(() => undefined);
    return run;
  }

  private async doReload(): Promise<ReloadSummary> {
    const found = discoverPackages(this.modelsDir);
    this.manifestErrors = found.errors;
    const summary: ReloadSummary = { added: [], updated: [], removed: [], unchanged: [], errors: found.errors.map((e) => ({ file: e.file, issues: e.issues })) };
    const next = new Map(found.packages.map((p) => [p.manifest.name, p]));
    // A package whose manifest became invalid keeps its last good version serving.
    const brokenDirs = new Set(found.errors.map((e) => e.file.replace(/\/model\.yaml$/, '')));
    for (const [name, old] of this.packages) if (!next.has(name) && brokenDirs.has(old.dir)) next.set(name, old);

    const work: Promise<void>[] = [];
    for (const [name, pkg] of next) {
      const old = this.packages.get(name);
      if (!old) {
        summary.added.push(name);
        this.packages.set(name, pkg);
        this.persist(name);
        if (pkg.manifest.autoload) work.push(this.load(name).then(() => undefined, () => undefined));
      } else if (old.fingerprint !== pkg.fingerprint) {
        summary.updated.push(name);
        work.push(this.swap(name, pkg));
      } else summary.unchanged.push(name);
    }
    for (const name of [...this.packages.keys()]) {
      if (next.has(name)) continue;
      summary.removed.push(name);
      work.push(this.unload(name).then(() => {
        this.packages.delete(name);
        this.store?.deleteModel(name);
      }));
    }
    await Promise.all(work);
    this.logger.info(summary, 'models reloaded');
    return summary;
  }

  /** Blue/green: start the new version beside the old, switch, then drain the old. */
  private async swap(name: string, pkg: ModelPackage): Promise<void> {
    const old = this.deployments.get(name);
    if (!old || old.state !== 'ready') {
      this.packages.set(name, pkg);
      this.persist(name);
      if (old) await this.load(name).catch(() => undefined);
      return;
    }
    let fresh: ModelDeployment;
    try {
      fresh = await this.startDeployment(pkg);
    } catch {
      this.logger.warn({ model: name }, 'new version failed to start; the old one keeps serving');
      return;
    }
    this.packages.set(name, pkg);
    this.deployments.set(name, fresh);
    this.persist(name);
    await old.drain(30_000);
  }

  /** Debounced hot reload on any change under the models dir. */
  watch(debounceMs = 400): void {
    if (this.watcher) return;
    let timer: NodeJS.Timeout | null = null;
    try {
      this.watcher = watch(this.modelsDir, { recursive: true }, (_event, file) => {
        if (file && /(^|\/)(__pycache__|node_modules|\.venv)(\/|$)/.test(file)) return;
        if (timer) clearTimeout(timer);
        timer = setTimeout(() => {
          if (!this.closed) this.reload().catch((e: Error) => this.logger.error({ error: e.message }, 'hot reload failed'));
        }, debounceMs);
      });
      this.watcher.on('error', (e) => this.logger.warn({ error: e.message }, 'models dir watcher stopped'));
    } catch (e) {
      this.logger.warn({ error: (e as Error).message }, 'cannot watch the models dir; use POST /v1/models/reload');
    }
  }

  private persist(name: string): void {
    const p = this.packages.get(name);
    if (!p || !this.store) return;
    const d = this.deployments.get(name);
    this.store.upsertModel({
      name,
      version: p.manifest.version,
      dir: p.dir,
      runtime: p.manifest.runtime,
      manifest: JSON.stringify(p.manifest),
      fingerprint: p.fingerprint,
      state: this.status(name),
      last_error: this.lastError(name) ?? null,
      loaded_at: d ? new Date(d.loadedAt).toISOString() : null,
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.watcher?.close();
    await Promise.all([...this.deployments.values()].map((d) => d.stop(2000)));
    this.deployments.clear();
  }
}
