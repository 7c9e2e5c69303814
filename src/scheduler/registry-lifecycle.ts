// Loading and unloading model versions: a deployment started for a version (with its per-version
// overrides), told apart when it cannot start because weights or host packages are missing;
// packages registered from a folder; a version scaled; a model removed.
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { IsoError } from '../errors.js';
import { loadPackage, type ManifestError, type ModelPackage } from '../manifest/load.js';
import { ModelDeployment, type DeploymentOptions } from './deployment.js';
import type { Manifest } from '../manifest/schema.js';
import { weightsOf } from '../manifest/weights.js';
import { missingRequirements } from '../manifest/requires.js';
import { TrafficRouter } from './traffic.js';
import { DEFAULT_VERSION_POLICY, modelId, parseModelId, selectVersions } from './versions.js';
import {
  RegistryState,
  type ApplyOptions,
  type ModelEntry,
  type VersionOverrides,
  type VersionSlot,
} from './registry-state.js';

export class RegistryLifecycle extends RegistryState {
  /** Deployments whose replicas are starting (not yet in a slot): close() stops them too. */
  protected readonly starting = new Set<ModelDeployment>();
  /** Set by close(): nothing is loaded or routed after it. */
  protected closed = false;

  /** Loads (or returns the loaded) deployment of a known version; a bare name loads the default. */
  async load(id: string, overrides?: VersionOverrides): Promise<ModelDeployment> {
    const { e, version, slot } = this.resolve(id);
    slot.pinned = true;
    return this.setOverrides(slot, overrides) ? this.restartSlot(e, version) : this.loadSlot(e, version);
  }

  /** Merges deploy-time overrides into a slot; true when they change a deployment already running (it must restart to apply them). */
  protected setOverrides(slot: VersionSlot, overrides: VersionOverrides | undefined): boolean {
    if (!overrides) return false;
    const before = JSON.stringify(slot.overrides ?? {});
    slot.overrides = { ...slot.overrides, ...overrides };
    return slot.deployment !== undefined && !slot.loading && JSON.stringify(slot.overrides) !== before;
  }

  /**
   * A fresh deployment of a running version (new resources or scaling): started beside the old
   * one, then the old one forwards what arrives late and drains, so no request fails.
   */
  protected async restartSlot(e: ModelEntry, version: string): Promise<ModelDeployment> {
    const slot = e.versions.get(version)!;
    const fresh = this.startDeployment(slot);
    slot.loading = fresh;
    let d: ModelDeployment;
    try {
      d = await fresh;
    } finally {
      slot.loading = undefined;
    }
    const old = slot.deployment;
    slot.deployment = d;
    this.persist(e.name);
    if (old && old !== d) {
      old.forwardTo(d);
      await old.drain(30_000);
    }
    return d;
  }

  protected async loadSlot(e: ModelEntry, version: string): Promise<ModelDeployment> {
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

  protected async startDeployment(slot: VersionSlot): Promise<ModelDeployment> {
    const { name, version } = slot.pkg.manifest;
    const pkg = slot.overrides?.resources
      ? {
          ...slot.pkg,
          manifest: {
            ...slot.pkg.manifest,
            resources: { ...slot.pkg.manifest.resources, ...slot.overrides.resources },
          },
        }
      : slot.pkg;
    const options: DeploymentOptions = slot.overrides?.scaling ? { scaling: slot.overrides.scaling } : {};
    // Host software missing: said once with the packages to install; starting a worker would only fail.
    // Docker workers see their image's filesystem, not the host's.
    slot.needsPackages =
      pkg.manifest.isolation === 'docker'
        ? undefined
        : ((await missingRequirements(pkg.manifest, this.options.operatorEnv?.(name))) ?? undefined);
    if (slot.needsPackages) {
      slot.lastError = `missing ${slot.needsPackages.missing.join(', ')}`;
      slot.needsWeights = undefined;
      this.logger.info(
        { model: name, version, missing: slot.needsPackages.missing },
        `model ${name} needs packages: ${slot.needsPackages.hint}`,
      );
      throw new IsoError('MODEL_NOT_LOADED', `model ${name} needs packages: ${slot.needsPackages.hint}`, {
        status: 'needs_packages',
        requires: slot.needsPackages,
      });
    }
    const d = new ModelDeployment(pkg, this.createWorker, this.logger, this.observerFor?.(name, version), options);
    const t0 = Date.now();
    this.starting.add(d);
    try {
      await d.start();
    } catch (e) {
      const msg = (e as Error).message;
      slot.lastError = msg;
      // Weights not there yet: a normal state of a fresh install, said once, with what to do.
      // Only when the model itself refused to start (a worker's fatal), not when its worker
      // could not be started at all (permissions, a missing interpreter): that is a failure.
      const w = weightsOf(pkg.manifest, this.options.operatorEnv?.(name));
      const refusedBySetup =
        e instanceof IsoError && typeof (e.details as { worker_code?: unknown } | undefined)?.worker_code === 'string';
      slot.needsWeights = w && !w.present && refusedBySetup ? w : undefined;
      if (slot.needsWeights)
        this.logger.info(
          { model: name, version, env: w!.env, path: w!.path },
          `model ${name} needs weights: ${w!.hint}`,
        );
      // A start that close() stopped is no failure of the model.
      else if (this.closed) this.logger.info({ model: name, version }, 'model load stopped: the registry is closing');
      else this.logger.error({ model: name, version, error: msg }, 'model failed to load');
      throw e instanceof IsoError ? e : new IsoError('MODEL_NOT_LOADED', msg);
    } finally {
      this.starting.delete(d);
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

  protected async unloadSlot(e: ModelEntry, version: string, graceMs = 10_000): Promise<void> {
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
      throw new IsoError(
        'INVALID_REQUEST',
        `invalid model package at ${dir}: ${(e as Error).message}`,
        issues ? { issues } : undefined,
      );
    }
    const existing = this.entries.get(pkg.manifest.name)?.versions.get(pkg.manifest.version);
    if (existing && existing.pkg.dir !== pkg.dir) {
      throw new IsoError(
        'INVALID_REQUEST',
        `${modelId(pkg.manifest.name, pkg.manifest.version)} is already provided by ${existing.pkg.dir}`,
      );
    }
    this.addVersion(pkg, !pkg.dir.startsWith(resolve(this.modelsDir) + '/'));
    this.persist(pkg.manifest.name);
    return pkg;
  }

  protected addVersion(pkg: ModelPackage, external: boolean): VersionSlot {
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
  protected wantedVersions(e: ModelEntry): string[] {
    const policy = this.options.versionPolicy?.(e.name) ?? DEFAULT_VERSION_POLICY;
    const auto = [...e.versions.entries()].filter(([, s]) => s.pkg.manifest.autoload).map(([v]) => v);
    const wanted = new Set(selectVersions(auto, policy));
    for (const [v, s] of e.versions) if (s.pinned) wanted.add(v);
    for (const [v, w] of Object.entries(e.traffic.weights ?? {})) if (w > 0 && e.versions.has(v)) wanted.add(v);
    const promoted = e.traffic.defaultVersion;
    if (promoted && e.versions.has(promoted) && e.versions.get(promoted)!.pkg.manifest.autoload) wanted.add(promoted);
    return [...wanted];
  }

  /** Sets a version's replica count (0 stops them all; the next request wakes one). */
  async scale(id: string, replicas: number): Promise<void> {
    const { e, version, slot } = this.resolve(id);
    slot.overrides = {
      ...slot.overrides,
      scaling: { ...slot.overrides?.scaling, ...scalingFor(replicas, slot.pkg.manifest) },
    };
    slot.pinned = true;
    const d =
      slot.deployment?.state === 'ready' ? slot.deployment : replicas > 0 ? await this.loadSlot(e, version) : undefined;
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
}

/** `replicas` as fixed scaling: n of each; 0 scales to zero and lets the next request wake one. */
function scalingFor(replicas: number, m: Manifest): Partial<Manifest['scaling']> {
  if (replicas === 0) return { min_replicas: 0, max_replicas: Math.max(1, m.scaling.max_replicas) };
  return { min_replicas: replicas, max_replicas: replicas };
}
