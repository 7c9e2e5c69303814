// The registry's table of models and versions, and what it reports about them: which version a
// request for `name` or `name@version` resolves to (traffic split, default version), each
// version's status, and the state it keeps (the models table, traffic routing). Loading and
// unloading are ./registry-lifecycle.ts; traffic changes ./registry-traffic.ts; discovery and hot
// reload ./registry.ts, whose ModelRegistry is what the rest of the gateway uses.
import type { Logger } from 'pino';
import { IsoError } from '../errors.js';
import { isValidModelName, type ManifestError, type ModelPackage } from '../manifest/load.js';
import type { WorkerFactory } from '../drivers/factory.js';
import type { StateStore } from '../store/db.js';
import type { ModelDeployment } from './deployment.js';
import type { Manifest } from '../manifest/schema.js';
import type { DeploymentObserver } from './observer.js';
import { weightsOf, type WeightsInfo } from '../manifest/weights.js';
import type { RequirementsInfo } from '../manifest/requires.js';
import type { TrafficRouter, Weights } from './traffic.js';
import { TrafficStore, type TrafficBackend, type TrafficState } from './traffic-store.js';
import { compareVersions, modelId, parseModelId, splitModelId, type VersionPolicy } from './versions.js';

/** needs_weights: its load failed while the weights its manifest declares are absent (manifest/weights.ts). */
/** needs_packages: host software its manifest `requires` is missing (manifest/requires.ts); no worker was started. */
export type ModelStatus =
  'unloaded' | 'loading' | 'ready' | 'failed' | 'needs_weights' | 'needs_packages' | 'draining' | 'stopped';

// What a reload reports is the published client's type (one definition of the wire shape).
export type { ReloadSummary } from '../client/types.js';

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

export interface VersionSlot {
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

export interface ModelEntry {
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

export class RegistryState {
  protected readonly entries = new Map<string, ModelEntry>();
  protected sortedNames: string[] | undefined;
  protected manifestErrors: ManifestError[] = [];
  protected trafficStore?: TrafficBackend;
  protected savedTraffic: Map<string, TrafficState>;
  private onTrafficError: (message: string) => void = () => undefined;

  constructor(
    readonly modelsDir: string,
    protected readonly createWorker: WorkerFactory,
    protected readonly logger: Logger,
    protected readonly store?: StateStore,
    protected readonly observerFor?: (model: string, version: string) => DeploymentObserver,
    protected readonly options: RegistryOptions = {},
  ) {
    this.trafficStore = store ? new TrafficStore(store) : undefined;
    this.savedTraffic = this.trafficStore?.load() ?? new Map();
  }

  /** Model names, sorted; cached (the root routes ask on every request). Do not mutate. */
  names(): string[] {
    return (this.sortedNames ??= [...this.entries.keys()].sort());
  }

  protected entry(name: string): ModelEntry {
    if (!isValidModelName(name)) throw new IsoError('MODEL_NOT_FOUND', `no model named "${name.slice(0, 80)}"`);
    const e = this.entries.get(name);
    if (!e) throw new IsoError('MODEL_NOT_FOUND', `no model named "${name}"`, { available: this.names() });
    return e;
  }

  /** The version `id` names, or the model's default version. */
  protected resolve(id: string): { e: ModelEntry; version: string; slot: VersionSlot } {
    const { name, version } = parseModelId(id);
    const e = this.entry(name);
    return { e, ...this.slotOf(e, version) };
  }

  /** A version of a model (its default when absent), or MODEL_NOT_FOUND listing the versions. */
  protected slotOf(e: ModelEntry, version?: string): { version: string; slot: VersionSlot } {
    const v = version ?? this.defaultVersionOf(e);
    const slot = e.versions.get(v);
    if (!slot)
      throw new IsoError('MODEL_NOT_FOUND', `model ${e.name} has no version "${v.slice(0, 64)}"`, {
        versions: this.sortedVersions(e),
      });
    return { version: v, slot };
  }

  protected sortedVersions(e: ModelEntry): string[] {
    return (e.sorted ??= [...e.versions.keys()].sort((a, b) => compareVersions(b, a)));
  }

  protected dropVersion(e: ModelEntry, version: string): void {
    e.versions.delete(version);
    e.sorted = undefined;
  }

  /** Promoted version if any; else the newest ready version; else the newest. */
  protected defaultVersionOf(e: ModelEntry): string {
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
    return [...this.entries.values()].flatMap((e) =>
      [...e.versions.values()].flatMap((s) => (s.deployment ? [s.deployment] : [])),
    );
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
    if (w)
      throw new IsoError('MODEL_NOT_LOADED', `model ${label} needs weights: ${slot.lastError}`, {
        status: 'needs_weights',
        weights: { env: w.env, path: w.path, source: w.source, hint: w.hint },
      });
    const p = slot.needsPackages;
    if (p)
      throw new IsoError('MODEL_NOT_LOADED', `model ${label} needs packages: ${p.hint}`, {
        status: 'needs_packages',
        requires: p,
      });
    if (slot.lastError) throw new IsoError('MODEL_NOT_LOADED', `model ${label} failed to load: ${slot.lastError}`);
    throw new IsoError(
      'MODEL_NOT_LOADED',
      `model ${label} is not loaded; POST /v1/models/${encodeURIComponent(label)}/load`,
    );
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
    return {
      default_version: this.defaultVersionOf(e),
      weights: e.traffic.weights ?? null,
      history: [...e.traffic.history],
    };
  }

  invalidPackages(): { file: string; issues: string[] }[] {
    return this.manifestErrors.map((e) => ({ file: e.file, issues: e.issues }));
  }

  protected saveTraffic(e: ModelEntry): void {
    this.storeTraffic(() => this.trafficStore?.save(e.name, e.traffic));
  }

  /** A shared store's write happens in the background: one that fails is reported, routing here stays as set. */
  protected storeTraffic(write: () => void | Promise<void>): void {
    const r = write();
    if (r instanceof Promise)
      r.catch((err: Error) => this.onTrafficError(`traffic routing not saved to the shared store: ${err.message}`));
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

  /** The models table holds each model's default version (what the native API serves). */
  protected persist(name: string): void {
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
}

/**
 * A version's weight in a split. Versions are names a package chooses ("constructor" is a valid
 * one): only the split's own entries count, never what Object.prototype holds under that name.
 */
function weightOf(weights: Weights, version: string): number {
  return Object.hasOwn(weights, version) ? (weights[version] ?? 0) : 0;
}
