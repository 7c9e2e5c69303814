// The set of known model packages and their live deployments: every model may have several
// versions (`name@version`) live at once, with a default version, an A/B or canary split between
// versions, promotion and rollback, rolling updates, and hot reload that swaps a changed package
// only after its new deployment is ready.
import { existsSync, watch, type FSWatcher } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { Logger } from 'pino';
import { IsoError } from '../errors.js';
import { discoverPackages, isValidModelName, loadPackage, type ManifestError, type ModelPackage } from '../manifest/load.js';
import type { WorkerFactory } from '../drivers/factory.js';
import type { StateStore } from '../store/db.js';
import { ModelDeployment, type DeploymentOptions } from './deployment.js';
import type { Manifest } from '../manifest/schema.js';
import type { DeploymentObserver } from '../telemetry/prometheus.js';
import { weightsOf, type WeightsInfo } from '../manifest/weights.js';
import { missingRequirements, type RequirementsInfo } from '../manifest/requires.js';
import { gpuProbe } from '../telemetry/gpu.js';
import { TrafficRouter, type Weights } from './traffic.js';
import { TrafficStore, type TrafficBackend, type TrafficState } from './traffic-store.js';
import { DEFAULT_VERSION_POLICY, compareVersions, modelId, parseModelId, selectVersions, splitModelId, type VersionPolicy } from './versions.js';

/** needs_weights: its load failed while the weights its manifest declares are absent (manifest/weights.ts). */
/** needs_packages: host software its manifest `requires` is missing (manifest/requires.ts); no worker was started. */
export type ModelStatus = 'unloaded' | 'loading' | 'ready' | 'failed' | 'needs_weights' | 'needs_packages' | 'draining' | 'stopped';

export interface ReloadSummary {
  added: string[];
  updated: string[];
  removed: string[];
  unchanged: string[];
  errors: { file: string; issues: string[] }[];
}

/**
 * How a change another gateway made is applied here (deployment-sync.ts): `share: false` leaves
 * the shared routing store alone, since that gateway stored the routing already; writing it again
 * from here could overwrite a newer change made there meanwhile.
 */
export interface ApplyOptions {
  share?: boolean;
}

/** Per-version settings given at deploy time, over the manifest's. */
export interface VersionOverrides {
  scaling?: Partial<Manifest['scaling']>;
  resources?: Partial<Manifest['resources']>;
}

interface VersionSlot {
  pkg: ModelPackage;
  deployment?: ModelDeployment;
  loading?: Promise<ModelDeployment>;
  lastError?: string;
  /** Set when the last load failed while the declared weights were absent: not a failure to alert on. */
  needsWeights?: WeightsInfo;
  /** Set when host software the manifest requires is missing: no worker was started. */
  needsPackages?: RequirementsInfo;
  /** Loaded on request (API, traffic): kept loaded whatever the version policy says. */
  pinned: boolean;
  /** Registered by a deploy call from a folder outside the models dir: a reload keeps it. */
  external: boolean;
  overrides?: VersionOverrides;
}

interface ModelEntry {
  readonly name: string;
  readonly versions: Map<string, VersionSlot>;
  traffic: TrafficState;
  router?: TrafficRouter;
  /** Versions newest first; dropped whenever the set changes (read on every request). */
  sorted?: string[];
}

export interface VersionInfo {
  version: string;
  status: ModelStatus;
  default: boolean;
  weight: number | null;
  pinned: boolean;
  dir: string;
  last_error: string | null;
}

export interface RegistryOptions {
  /** Which discovered versions of a model load by themselves (default: the newest). */
  versionPolicy?: (name: string) => VersionPolicy;
  /** The operator's environment for a model (config model_env): where its weights are. */
  operatorEnv?: (name: string) => Record<string, string> | undefined;
}

export class ModelRegistry {
  private readonly entries = new Map<string, ModelEntry>();
  private sortedNames: string[] | undefined;
  private manifestErrors: ManifestError[] = [];
  private watcher: FSWatcher | null = null;
  private reloadChain: Promise<unknown> = Promise.resolve();
  /** Every load init() started, settled (the start-up summary waits for it). */
  private initialLoads: Promise<unknown> = Promise.resolve();
  private closed = false;
  private trafficStore?: TrafficBackend;
  private savedTraffic: Map<string, TrafficState>;
  private onTrafficError: (message: string) => void = () => undefined;

  constructor(
    readonly modelsDir: string,
    private readonly createWorker: WorkerFactory,
    private readonly logger: Logger,
    private readonly store?: StateStore,
    private readonly observerFor?: (model: string, version: string) => DeploymentObserver,
    private readonly options: RegistryOptions = {},
  ) {
    this.trafficStore = store ? new TrafficStore(store) : undefined;
    this.savedTraffic = this.trafficStore?.load() ?? new Map();
  }

  /**
   * Discovers packages and, unless `load` is false, loads the versions their policy selects (of
   * packages with autoload). Resolves once the loads that `waitFor` selects (default: all) are
   * settled; the others finish in the background, so an optional model whose weights take long
   * to fail cannot delay startup.
   */
  async init(opts: { load?: boolean; waitFor?: (m: Manifest) => boolean } = {}): Promise<void> {
    // The first nvidia-smi sample, so /health and replica placement know the GPUs from the start.
    void gpuProbe.snapshot();
    const found = discoverPackages(this.modelsDir);
    this.manifestErrors = found.errors;
    for (const e of found.errors) this.logger.error({ file: e.file, issues: e.issues }, 'invalid model package');
    for (const p of found.packages) this.addVersion(p, false);
    for (const e of this.entries.values()) this.persist(e.name);
    if (opts.load === false) return;
    const loads: { m: Manifest; done: Promise<unknown> }[] = [];
    for (const e of this.entries.values()) {
      for (const v of this.wantedVersions(e)) {
        const slot = e.versions.get(v)!;
        loads.push({ m: slot.pkg.manifest, done: this.loadSlot(e, v).catch(() => undefined) });
      }
    }
    this.initialLoads = Promise.all(loads.map((l) => l.done));
    await Promise.all(loads.filter((l) => opts.waitFor?.(l.m) ?? true).map((l) => l.done));
  }

  /** Resolves once every load init() started has succeeded or failed (optional models included). */
  initialLoadsSettled(): Promise<void> {
    return this.initialLoads.then(() => undefined);
  }

  /** Model names, sorted; cached (the root routes ask on every request). Do not mutate. */
  names(): string[] {
    return (this.sortedNames ??= [...this.entries.keys()].sort());
  }

  private entry(name: string): ModelEntry {
    if (!isValidModelName(name)) throw new IsoError('MODEL_NOT_FOUND', `no model named "${name.slice(0, 80)}"`);
    const e = this.entries.get(name);
    if (!e) throw new IsoError('MODEL_NOT_FOUND', `no model named "${name}"`, { available: this.names() });
    return e;
  }

  /** The version `id` names, or the model's default version. */
  private resolve(id: string): { e: ModelEntry; version: string; slot: VersionSlot } {
    const { name, version } = parseModelId(id);
    const e = this.entry(name);
    return { e, ...this.slotOf(e, version) };
  }

  /** A version of a model (its default when absent), or MODEL_NOT_FOUND listing the versions. */
  private slotOf(e: ModelEntry, version?: string): { version: string; slot: VersionSlot } {
    const v = version ?? this.defaultVersionOf(e);
    const slot = e.versions.get(v);
    if (!slot) throw new IsoError('MODEL_NOT_FOUND', `model ${e.name} has no version "${v.slice(0, 64)}"`, { versions: this.sortedVersions(e) });
    return { version: v, slot };
  }

  private sortedVersions(e: ModelEntry): string[] {
    return (e.sorted ??= [...e.versions.keys()].sort((a, b) => compareVersions(b, a)));
  }

  private dropVersion(e: ModelEntry, version: string): void {
    e.versions.delete(version);
    e.sorted = undefined;
  }

  /** Promoted version if any; else the newest ready version; else the newest. */
  private defaultVersionOf(e: ModelEntry): string {
    const promoted = e.traffic.defaultVersion;
    if (promoted && e.versions.has(promoted)) return promoted;
    const sorted = this.sortedVersions(e);
    return sorted.find((v) => e.versions.get(v)!.deployment?.state === 'ready') ?? sorted[0]!;
  }

  defaultVersion(name: string): string {
    return this.defaultVersionOf(this.entry(name));
  }

  /** The package of `name` (its default version) or of `name@version`. */
  package(id: string): ModelPackage {
    return this.resolve(id).slot.pkg;
  }

  /** The live deployment of `id` (default version for a bare name); undefined for unknown ids too. */
  deployment(id: string): ModelDeployment | undefined {
    const { name, version } = splitModelId(id);
    const e = this.entries.get(name);
    if (!e) return undefined;
    return e.versions.get(version ?? this.defaultVersionOf(e))?.deployment;
  }

  /** Every live deployment, all versions (monitoring). */
  allDeployments(): ModelDeployment[] {
    return [...this.entries.values()].flatMap((e) => [...e.versions.values()].flatMap((s) => (s.deployment ? [s.deployment] : [])));
  }

  /**
   * The deployment that serves a request for `id`, or the reason it cannot. A bare name follows
   * the model's traffic split (sticky by `stickyKey` when given), else its default version.
   */
  serving(id: string, stickyKey?: string): ModelDeployment {
    const { name, version } = parseModelId(id);
    const e = this.entry(name);
    if (version === undefined && e.router) {
      const picked = e.router.pick((v) => e.versions.get(v)?.deployment?.state === 'ready', stickyKey);
      if (picked) return e.versions.get(picked)!.deployment!;
    }
    const { version: v, slot } = this.slotOf(e, version);
    const d = slot.deployment;
    if (d && (d.state === 'ready' || d.state === 'failed')) return d;
    const label = version ? modelId(name, v) : name;
    if (slot.loading) throw new IsoError('MODEL_NOT_LOADED', `model ${label} is loading`, undefined, 2);
    const w = slot.needsWeights;
    if (w) throw new IsoError('MODEL_NOT_LOADED', `model ${label} needs weights: ${slot.lastError}`, { status: 'needs_weights', weights: { env: w.env, path: w.path, source: w.source, hint: w.hint } });
    const p = slot.needsPackages;
    if (p) throw new IsoError('MODEL_NOT_LOADED', `model ${label} needs packages: ${p.hint}`, { status: 'needs_packages', requires: p });
    if (slot.lastError) throw new IsoError('MODEL_NOT_LOADED', `model ${label} failed to load: ${slot.lastError}`);
    throw new IsoError('MODEL_NOT_LOADED', `model ${label} is not loaded; POST /v1/models/${encodeURIComponent(label)}/load`);
  }

  private slotStatus(slot: VersionSlot): ModelStatus {
    if (slot.loading && !slot.deployment) return 'loading';
    const d = slot.deployment;
    if (d) return d.state === 'loading' ? 'loading' : d.state;
    if (slot.needsWeights) return 'needs_weights';
    if (slot.needsPackages) return 'needs_packages';
    return slot.lastError ? 'failed' : 'unloaded';
  }

  status(id: string): ModelStatus {
    return this.slotStatus(this.resolve(id).slot);
  }

  lastError(id: string): string | undefined {
    const { slot } = this.resolve(id);
    return slot.deployment?.lastError ?? slot.lastError;
  }

  /**
   * The weights a model declares and where it looks for them now (null when it declares none):
   * read afresh, so a folder mounted since the last load shows as present.
   */
  weights(id: string): WeightsInfo | null {
    const { slot } = this.resolve(id);
    return weightsOf(slot.pkg.manifest, this.options.operatorEnv?.(slot.pkg.manifest.name));
  }

  /** What host software the model's last load found missing (null when nothing was). */
  requirements(id: string): RequirementsInfo | null {
    return this.resolve(id).slot.needsPackages ?? null;
  }

  versions(name: string): VersionInfo[] {
    const e = this.entry(name);
    const def = this.defaultVersionOf(e);
    return this.sortedVersions(e).map((v) => {
      const s = e.versions.get(v)!;
      return {
        version: v,
        status: this.slotStatus(s),
        default: v === def,
        weight: e.traffic.weights ? weightOf(e.traffic.weights, v) : null,
        pinned: s.pinned,
        dir: s.pkg.dir,
        last_error: s.deployment?.lastError ?? s.lastError ?? null,
      };
    });
  }

  traffic(name: string): { default_version: string; weights: Weights | null; history: string[] } {
    const e = this.entry(name);
    return { default_version: this.defaultVersionOf(e), weights: e.traffic.weights ?? null, history: [...e.traffic.history] };
  }

  invalidPackages(): { file: string; issues: string[] }[] {
    return this.manifestErrors.map((e) => ({ file: e.file, issues: e.issues }));
  }

  /** Loads (or returns the loaded) deployment of a known version; a bare name loads the default. */
  async load(id: string, overrides?: VersionOverrides): Promise<ModelDeployment> {
    const { e, version, slot } = this.resolve(id);
    slot.pinned = true;
    if (overrides) slot.overrides = { ...slot.overrides, ...overrides };
    return this.loadSlot(e, version);
  }

  private async loadSlot(e: ModelEntry, version: string): Promise<ModelDeployment> {
    const slot = e.versions.get(version)!;
    const existing = slot.deployment;
    if (existing && existing.state === 'ready') return existing;
    if (slot.loading) return slot.loading;
    const p = this.startDeployment(slot).then(async (d) => {
      const old = slot.deployment;
      slot.deployment = d;
      if (old && old !== d) await old.stop(1000);
      return d;
    });
    slot.loading = p;
    try {
      return await p;
    } finally {
      slot.loading = undefined;
      this.persist(e.name);
    }
  }

  private async startDeployment(slot: VersionSlot): Promise<ModelDeployment> {
    const { name, version } = slot.pkg.manifest;
    const pkg = slot.overrides?.resources ? { ...slot.pkg, manifest: { ...slot.pkg.manifest, resources: { ...slot.pkg.manifest.resources, ...slot.overrides.resources } } } : slot.pkg;
    const options: DeploymentOptions = slot.overrides?.scaling ? { scaling: slot.overrides.scaling } : {};
    // Host software missing: said once with the packages to install; starting a worker would only fail.
    // Docker workers see their image's filesystem, not the host's.
    slot.needsPackages = pkg.manifest.isolation === 'docker' ? undefined : ((await missingRequirements(pkg.manifest, this.options.operatorEnv?.(name))) ?? undefined);
    if (slot.needsPackages) {
      slot.lastError = `missing ${slot.needsPackages.missing.join(', ')}`;
      slot.needsWeights = undefined;
      this.logger.info({ model: name, version, missing: slot.needsPackages.missing }, `model ${name} needs packages: ${slot.needsPackages.hint}`);
      throw new IsoError('MODEL_NOT_LOADED', `model ${name} needs packages: ${slot.needsPackages.hint}`, { status: 'needs_packages', requires: slot.needsPackages });
    }
    const d = new ModelDeployment(pkg, this.createWorker, this.logger, this.observerFor?.(name, version), options);
    const t0 = Date.now();
    try {
      await d.start();
    } catch (e) {
      const msg = (e as Error).message;
      slot.lastError = msg;
      // Weights not there yet: a normal state of a fresh install, said once, with what to do.
      // Only when the model itself refused to start (a worker's fatal), not when its worker
      // could not be started at all (permissions, a missing interpreter): that is a failure.
      const w = weightsOf(pkg.manifest, this.options.operatorEnv?.(name));
      const refusedBySetup = e instanceof IsoError && typeof (e.details as { worker_code?: unknown } | undefined)?.worker_code === 'string';
      slot.needsWeights = w && !w.present && refusedBySetup ? w : undefined;
      if (slot.needsWeights) this.logger.info({ model: name, version, env: w!.env, path: w!.path }, `model ${name} needs weights: ${w!.hint}`);
      else this.logger.error({ model: name, version, error: msg }, 'model failed to load');
      throw e instanceof IsoError ? e : new IsoError('MODEL_NOT_LOADED', msg);
    }
    slot.lastError = undefined;
    slot.needsWeights = undefined;
    this.logger.info({ model: name, version, ms: Date.now() - t0 }, 'model ready');
    return d;
  }

  /** Unloads one version (`name@version`) or every version of a model (`name`). */
  async unload(id: string, opts: ApplyOptions = {}): Promise<void> {
    const { name, version } = parseModelId(id);
    const e = this.entry(name);
    const targets = version === undefined ? [...e.versions.keys()] : [this.resolve(id).version];
    // An unloaded version leaves the traffic split too (else a reload would bring it back).
    const weights = e.traffic.weights;
    if (version !== undefined && weights && Object.hasOwn(weights, version)) {
      const { [version]: _dropped, ...rest } = weights;
      const left = Object.values(rest).some((w) => w > 0) ? rest : undefined;
      e.traffic = { ...e.traffic, weights: left };
      e.router = left ? new TrafficRouter(left) : undefined;
      if (opts.share !== false) this.saveTraffic(e);
    }
    await Promise.all(targets.map((v) => this.unloadSlot(e, v)));
    this.persist(name);
  }

  private async unloadSlot(e: ModelEntry, version: string, graceMs = 10_000): Promise<void> {
    const slot = e.versions.get(version);
    if (!slot) return;
    if (slot.loading) await slot.loading.catch(() => undefined);
    const d = slot.deployment;
    slot.deployment = undefined;
    slot.lastError = undefined;
    slot.needsWeights = undefined;
    slot.needsPackages = undefined;
    slot.pinned = false;
    if (d) await d.drain(graceMs);
  }

  /** Registers a package folder (a new version, possibly outside the models dir). */
  register(dir: string): ModelPackage {
    const abs = resolve(this.modelsDir, dir);
    if (!existsSync(abs)) throw new IsoError('INVALID_REQUEST', `no package folder at ${dir}`);
    let pkg: ModelPackage;
    try {
      pkg = loadPackage(abs);
    } catch (e) {
      const issues = (e as ManifestError).issues;
      throw new IsoError('INVALID_REQUEST', `invalid model package at ${dir}: ${(e as Error).message}`, issues ? { issues } : undefined);
    }
    const existing = this.entries.get(pkg.manifest.name)?.versions.get(pkg.manifest.version);
    if (existing && existing.pkg.dir !== pkg.dir) {
      throw new IsoError('INVALID_REQUEST', `${modelId(pkg.manifest.name, pkg.manifest.version)} is already provided by ${existing.pkg.dir}`);
    }
    this.addVersion(pkg, !pkg.dir.startsWith(resolve(this.modelsDir) + '/'));
    this.persist(pkg.manifest.name);
    return pkg;
  }

  private addVersion(pkg: ModelPackage, external: boolean): VersionSlot {
    const { name, version } = pkg.manifest;
    let e = this.entries.get(name);
    if (!e) {
      const saved = this.savedTraffic.get(name);
      e = { name, versions: new Map(), traffic: saved ?? { history: [] } };
      if (saved?.weights) e.router = new TrafficRouter(saved.weights);
      this.entries.set(name, e);
      this.sortedNames = undefined;
    }
    const slot = e.versions.get(version);
    if (slot) {
      slot.pkg = pkg;
      return slot;
    }
    const fresh: VersionSlot = { pkg, pinned: false, external };
    e.versions.set(version, fresh);
    e.sorted = undefined;
    return fresh;
  }

  /** Versions that should run: the policy's pick (autoload packages), pinned ones, those with traffic. */
  private wantedVersions(e: ModelEntry): string[] {
    const policy = this.options.versionPolicy?.(e.name) ?? DEFAULT_VERSION_POLICY;
    const auto = [...e.versions.entries()].filter(([, s]) => s.pkg.manifest.autoload).map(([v]) => v);
    const wanted = new Set(selectVersions(auto, policy));
    for (const [v, s] of e.versions) if (s.pinned) wanted.add(v);
    for (const [v, w] of Object.entries(e.traffic.weights ?? {})) if (w > 0 && e.versions.has(v)) wanted.add(v);
    const promoted = e.traffic.defaultVersion;
    if (promoted && e.versions.has(promoted) && e.versions.get(promoted)!.pkg.manifest.autoload) wanted.add(promoted);
    return [...wanted];
  }

  // ---- traffic: A/B, canary, promote, rollback, rolling update ----

  /**
   * Splits traffic between versions by weight (null: back to the default version only). Versions
   * given a weight are loaded first; the split applies once they are all ready.
   */
  async setTraffic(name: string, weights: Weights | null): Promise<void> {
    const e = this.entry(name);
    if (weights) {
      const unknown = Object.keys(weights).filter((v) => !e.versions.has(v));
      if (unknown.length) throw new IsoError('INVALID_REQUEST', `model ${name} has no version ${unknown.join(', ')}`, { versions: this.sortedVersions(e) });
      if (!Object.values(weights).some((w) => w > 0)) throw new IsoError('INVALID_REQUEST', 'at least one version needs a weight above 0');
      await Promise.all(Object.entries(weights).filter(([, w]) => w > 0).map(([v]) => this.loadSlot(e, v)));
    }
    e.traffic = { ...e.traffic, weights: weights ?? undefined };
    e.router = weights ? new TrafficRouter(weights) : undefined;
    this.saveTraffic(e);
    this.logger.info({ model: name, weights }, 'traffic split set');
  }

  /**
   * Makes the current default version explicit (weights and history untouched), so that a newer
   * version loading beside it takes no traffic by the newest-ready rule.
   */
  pinDefault(name: string): string {
    const e = this.entry(name);
    const current = this.defaultVersionOf(e);
    if (e.traffic.defaultVersion !== current) {
      e.traffic = { ...e.traffic, defaultVersion: current };
      this.saveTraffic(e);
    }
    return current;
  }

  /** Makes `version` the default with all traffic; the previous default is remembered for rollback. */
  async promote(name: string, version: string): Promise<void> {
    const e = this.entry(name);
    this.slotOf(e, version);
    await this.loadSlot(e, version);
    const previous = this.makeDefault(e, version);
    this.logger.info({ model: name, version, previous }, 'version promoted');
  }

  /** `version` becomes the default with all traffic (the split ends); the previous default goes into the history. */
  private makeDefault(e: ModelEntry, version: string, share = true): string {
    const previous = this.defaultVersionOf(e);
    e.traffic = { defaultVersion: version, history: previous !== version ? [...e.traffic.history, previous] : e.traffic.history };
    e.router = undefined;
    if (share) this.saveTraffic(e);
    return previous;
  }

  /** Back to the previous default version (loaded again if it was drained). */
  async rollback(name: string): Promise<string> {
    const e = this.entry(name);
    const history = [...e.traffic.history];
    let target: string | undefined;
    while ((target = history.pop()) !== undefined && !e.versions.has(target));
    if (target === undefined) throw new IsoError('INVALID_REQUEST', `model ${name} has no earlier version to roll back to`);
    const current = this.defaultVersionOf(e);
    await this.loadSlot(e, target);
    e.traffic = { defaultVersion: target, history };
    e.router = undefined;
    this.saveTraffic(e);
    this.logger.info({ model: name, from: current, to: target }, 'rolled back');
    return target;
  }

  /**
   * Rolling update to `version`: start its replicas and wait until they are ready, move all
   * traffic to it, then drain the versions that served before (their queued and in-flight work
   * finishes; late arrivals are forwarded to the new version), so no request fails.
   */
  async rollingUpdate(name: string, version: string, overrides?: VersionOverrides, opts: ApplyOptions = {}): Promise<{ previous: string[] }> {
    const e = this.entry(name);
    const { slot } = this.slotOf(e, version);
    if (overrides) slot.overrides = { ...slot.overrides, ...overrides };
    slot.pinned = true;
    const fresh = await this.loadSlot(e, version);
    const previous = [...e.versions.entries()].filter(([v, s]) => v !== version && s.deployment).map(([v]) => v);
    this.makeDefault(e, version, opts.share !== false);
    await Promise.all(
      previous.map(async (v) => {
        const s = e.versions.get(v)!;
        const old = s.deployment!;
        old.forwardTo(fresh);
        s.deployment = undefined;
        s.pinned = false;
        await old.drain(30_000);
      }),
    );
    this.persist(name);
    this.logger.info({ model: name, version, previous }, 'rolling update done');
    return { previous };
  }

  /** Sets a version's replica count (0 stops them all; the next request wakes one). */
  async scale(id: string, replicas: number): Promise<void> {
    const { e, version, slot } = this.resolve(id);
    slot.overrides = { ...slot.overrides, scaling: { ...slot.overrides?.scaling, ...scalingFor(replicas, slot.pkg.manifest) } };
    slot.pinned = true;
    const d = slot.deployment?.state === 'ready' ? slot.deployment : replicas > 0 ? await this.loadSlot(e, version) : undefined;
    await d?.scaleTo(replicas);
  }

  /**
   * Undeploys a model: every version unloaded, its routing state dropped, versions deployed from
   * outside the models dir forgotten. Files are never deleted: a package folder still in the
   * models dir stays listed (unloaded).
   */
  async remove(name: string, opts: ApplyOptions = {}): Promise<void> {
    const e = this.entry(name);
    await Promise.all([...e.versions.keys()].map((v) => this.unloadSlot(e, v)));
    for (const [v, s] of e.versions) if (s.external) this.dropVersion(e, v);
    e.traffic = { history: [] };
    e.router = undefined;
    if (opts.share !== false) this.storeTraffic(() => this.trafficStore?.delete(name));
    if (e.versions.size === 0) {
      this.entries.delete(name);
      this.sortedNames = undefined;
      this.store?.deleteModel(name);
    } else this.persist(name);
  }

  private saveTraffic(e: ModelEntry): void {
    this.storeTraffic(() => this.trafficStore?.save(e.name, e.traffic));
  }

  /** A shared store's write happens in the background: one that fails is reported, routing here stays as set. */
  private storeTraffic(write: () => void | Promise<void>): void {
    const r = write();
    if (r instanceof Promise) r.catch((err: Error) => this.onTrafficError(`traffic routing not saved to the shared store: ${err.message}`));
  }

  /**
   * Keeps routing in a store shared with other gateways (database_url) instead of the state
   * dir's: called before init(), so the models come up with the shared splits.
   */
  useTrafficStore(store: TrafficBackend, onError: (message: string) => void): void {
    this.trafficStore = store;
    this.savedTraffic = store.load();
    this.onTrafficError = onError;
  }

  /**
   * Routing another gateway changed (shared store): each model's split, default and history as
   * stored; versions given weight are loaded here too, as setTraffic does.
   */
  applyTraffic(state: Map<string, TrafficState>): void {
    this.savedTraffic = state;
    for (const e of this.entries.values()) {
      const s = state.get(e.name) ?? { history: [] };
      if (sameTraffic(s, e.traffic)) continue;
      // A version promoted there (promote, rolling update) is loaded here before it becomes the
      // default, so requests here never meet it still loading; until then the old default serves.
      const promoted = s.defaultVersion;
      if (promoted && e.versions.has(promoted) && e.versions.get(promoted)!.deployment?.state !== 'ready') {
        this.loadSlot(e, promoted).then(
          () => {
            if (!this.closed) this.applyTraffic(this.savedTraffic);
          },
          (err: Error) => this.logger.warn({ model: e.name, version: promoted, error: err.message }, 'cannot load the version promoted through another gateway; the default here stays as it was'),
        );
        continue;
      }
      e.traffic = s;
      e.router = s.weights ? new TrafficRouter(s.weights) : undefined;
      for (const [v, w] of Object.entries(s.weights ?? {})) {
        if (w > 0 && e.versions.has(v)) this.loadSlot(e, v).catch((err: Error) => this.logger.warn({ model: e.name, version: v, error: err.message }, 'cannot load a version the shared traffic split routes to'));
      }
      this.logger.info({ model: e.name, weights: s.weights ?? null, default_version: s.defaultVersion ?? null }, 'traffic routing changed through another gateway');
    }
  }

  // ---- hot reload ----

  /**
   * Re-reads the models dir. Changed versions that are loaded get a new deployment; the old
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
    const next = new Map(found.packages.map((p) => [modelId(p.manifest.name, p.manifest.version), p]));
    // A package whose manifest became invalid keeps its last good version serving; packages
    // deployed from outside the models dir are not the models dir's to remove.
    // (Each error names a file in its package folder: model.yaml, or a directory model's config.yaml / main.py.)
    const brokenDirs = new Set(found.errors.map((e) => dirname(e.file)));
    for (const e of this.entries.values()) {
      for (const [v, s] of e.versions) {
        const id = modelId(e.name, v);
        if (!next.has(id) && (brokenDirs.has(s.pkg.dir) || s.external)) next.set(id, s.pkg);
      }
    }
    const label = (name: string, version: string): string => {
      const count = new Set([...next.values()].filter((p) => p.manifest.name === name).map((p) => p.manifest.version)).size;
      return count > 1 ? modelId(name, version) : name;
    };

    // A folder whose manifest now names another version of the same model was edited in
    // place: that is an update of the version it held (blue/green), not an add plus a remove.
    const moved = new Map<string, { e: ModelEntry; from: string; to: string }>();
    for (const e of this.entries.values()) {
      for (const [v, s] of e.versions) {
        if (next.has(modelId(e.name, v))) continue;
        const successor = [...next.values()].find((p) => p.dir === s.pkg.dir && p.manifest.name === e.name && !e.versions.has(p.manifest.version));
        if (successor) moved.set(modelId(e.name, successor.manifest.version), { e, from: v, to: successor.manifest.version });
      }
    }

    const work: Promise<void>[] = [];
    const touched = new Set<string>();
    for (const [id, pkg] of next) {
      const { name, version } = pkg.manifest;
      const old = this.entries.get(name)?.versions.get(version);
      const move = moved.get(id);
      if (move) {
        summary.updated.push(label(name, version));
        this.addVersion(pkg, false);
        work.push(this.moveVersion(move.e, move.from, move.to));
      } else if (!old) {
        summary.added.push(label(name, version));
        this.addVersion(pkg, false).external = false;
        touched.add(name);
      } else if (old.pkg.fingerprint !== pkg.fingerprint) {
        summary.updated.push(label(name, version));
        work.push(this.swap(this.entries.get(name)!, version, pkg));
      } else summary.unchanged.push(label(name, version));
    }
    const movedFrom = new Set([...moved.values()].map((m) => modelId(m.e.name, m.from)));
    for (const e of [...this.entries.values()]) {
      for (const v of [...e.versions.keys()]) {
        const id = modelId(e.name, v);
        if (next.has(id) || movedFrom.has(id)) continue;
        summary.removed.push(e.versions.size > 1 || next.has(e.name) ? id : e.name);
        touched.add(e.name);
        work.push(
          this.unloadSlot(e, v).then(() => {
            this.dropVersion(e, v);
            if (e.versions.size === 0 && this.entries.get(e.name) === e) {
              this.entries.delete(e.name);
              this.sortedNames = undefined;
              this.store?.deleteModel(e.name);
            }
          }),
        );
      }
    }
    await Promise.all(work);
    // New versions load as the policy says; versions it no longer wants (an older one, once the
    // newer is ready) drain: the Triton-style upgrade of a model by dropping in a new folder.
    await Promise.all([...touched].filter((n) => this.entries.has(n)).map((n) => this.applyPolicy(this.entries.get(n)!)));
    for (const e of this.entries.values()) this.persist(e.name);
    this.logger.info(summary, 'models reloaded');
    return summary;
  }

  /**
   * An in-place version change of one folder: the new version inherits the old one's place
   * (loaded state, default, traffic weight). If it fails to start, the old keeps serving.
   */
  private async moveVersion(e: ModelEntry, from: string, to: string): Promise<void> {
    const old = e.versions.get(from)!;
    const fresh = e.versions.get(to)!;
    fresh.pinned = old.pinned;
    fresh.overrides = old.overrides;
    const oldDep = old.deployment;
    let next: ModelDeployment | undefined;
    if (oldDep || old.loading) {
      try {
        next = await this.loadSlot(e, to);
      } catch {
        this.logger.warn({ model: e.name, from, to }, 'new version failed to start; the old one keeps serving');
        return;
      }
    }
    const t = e.traffic;
    const weights = t.weights && Object.hasOwn(t.weights, from) ? Object.fromEntries(Object.entries(t.weights).map(([v, w]) => [v === from ? to : v, w])) : t.weights;
    e.traffic = { defaultVersion: t.defaultVersion === from ? to : t.defaultVersion, weights, history: t.history };
    e.router = weights ? new TrafficRouter(weights) : undefined;
    this.saveTraffic(e);
    this.dropVersion(e, from);
    if (oldDep && next) oldDep.forwardTo(next);
    await oldDep?.drain(30_000);
  }

  private async applyPolicy(e: ModelEntry): Promise<void> {
    const wanted = new Set(this.wantedVersions(e));
    await Promise.all([...wanted].map((v) => this.loadSlot(e, v).then(() => undefined, () => undefined)));
    const unwanted = [...e.versions.entries()].filter(([v, s]) => !wanted.has(v) && s.deployment);
    // Only drain once something else serves: never leave the model with no ready version.
    if (unwanted.length && [...wanted].some((v) => e.versions.get(v)?.deployment?.state === 'ready')) {
      await Promise.all(unwanted.map(([v]) => this.unloadSlot(e, v, 30_000)));
    }
  }

  /** Blue/green for one version: start the new package beside the old, switch, then drain the old. */
  private async swap(e: ModelEntry, version: string, pkg: ModelPackage): Promise<void> {
    const slot = e.versions.get(version)!;
    const old = slot.deployment;
    if (!old || old.state !== 'ready') {
      slot.pkg = pkg;
      if (old) await this.loadSlot(e, version).catch(() => undefined);
      return;
    }
    let fresh: ModelDeployment;
    try {
      fresh = await this.startDeployment({ ...slot, pkg });
    } catch {
      this.logger.warn({ model: e.name, version }, 'new package failed to start; the old one keeps serving');
      return;
    }
    slot.pkg = pkg;
    slot.deployment = fresh;
    slot.lastError = undefined;
    old.forwardTo(fresh);
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

  /** The models table holds each model's default version (what the native API serves). */
  private persist(name: string): void {
    const e = this.entries.get(name);
    if (!e || !this.store) return;
    const v = this.defaultVersionOf(e);
    const slot = e.versions.get(v)!;
    const p = slot.pkg;
    const d = slot.deployment;
    this.store.upsertModel({
      name,
      version: p.manifest.version,
      dir: p.dir,
      runtime: p.manifest.runtime,
      manifest: JSON.stringify(p.manifest),
      fingerprint: p.fingerprint,
      state: this.slotStatus(slot),
      last_error: d?.lastError ?? slot.lastError ?? null,
      loaded_at: d ? new Date(d.loadedAt).toISOString() : null,
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.watcher?.close();
    await Promise.all(this.allDeployments().map((d) => d.stop(2000)));
    for (const e of this.entries.values()) for (const s of e.versions.values()) s.deployment = undefined;
  }
}

/**
 * A version's weight in a split. Versions are names a package chooses ("constructor" is a valid
 * one): only the split's own entries count, never what Object.prototype holds under that name.
 */
function weightOf(weights: Weights, version: string): number {
  return Object.hasOwn(weights, version) ? (weights[version] ?? 0) : 0;
}

/** `replicas` as fixed scaling: n of each; 0 scales to zero and lets the next request wake one. */
function scalingFor(replicas: number, m: Manifest): Partial<Manifest['scaling']> {
  if (replicas === 0) return { min_replicas: 0, max_replicas: Math.max(1, m.scaling.max_replicas) };
  return { min_replicas: replicas, max_replicas: replicas };
}

function sameTraffic(a: TrafficState, b: TrafficState): boolean {
  const weights = (w: TrafficState['weights']): string => JSON.stringify(Object.entries(w ?? {}).sort(([x], [y]) => x.localeCompare(y)));
  return a.defaultVersion === b.defaultVersion && weights(a.weights) === weights(b.weights) && JSON.stringify(a.history) === JSON.stringify(b.history);
}
