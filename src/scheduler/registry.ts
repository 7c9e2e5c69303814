// The set of known model packages and their live deployments: every model may have several
// versions (`name@version`) live at once, with a default version, an A/B or canary split between
// versions, promotion and rollback, rolling updates, and hot reload that swaps a changed package
// only after its new deployment is ready.
// The class is built in layers, one file each: registry-state.ts (the table of versions, what
// resolves where, status), registry-lifecycle.ts (load, unload, register, scale, remove),
// registry-traffic.ts (splits, promote, rollback, rolling update) and this file (discovery, hot
// reload, watching the models dir, close).
import { watch, type FSWatcher } from 'node:fs';
import { dirname } from 'node:path';
import { discoverPackages, type ModelPackage } from '../manifest/load.js';
import type { ModelDeployment } from './deployment.js';
import type { Manifest } from '../manifest/schema.js';
import { gpuProbe } from '../util/gpu.js';
import { TrafficRouter } from './traffic.js';
import { modelId } from './versions.js';
import type { ModelEntry, ReloadSummary } from './registry-state.js';
import { RegistryTraffic } from './registry-traffic.js';

export type {
  ApplyOptions,
  ModelStatus,
  RegistryOptions,
  ReloadSummary,
  VersionInfo,
  VersionOverrides,
} from './registry-state.js';

export class ModelRegistry extends RegistryTraffic {
  private watcher: FSWatcher | null = null;
  private reloadChain: Promise<unknown> = Promise.resolve();
  /** Every load init() started, settled (the start-up summary waits for it). */
  private initialLoads: Promise<unknown> = Promise.resolve();

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
    const summary: ReloadSummary = {
      added: [],
      updated: [],
      removed: [],
      unchanged: [],
      errors: found.errors.map((e) => ({ file: e.file, issues: e.issues })),
    };
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
      const count = new Set([...next.values()].filter((p) => p.manifest.name === name).map((p) => p.manifest.version))
        .size;
      return count > 1 ? modelId(name, version) : name;
    };

    // A folder whose manifest now names another version of the same model was edited in
    // place: that is an update of the version it held (blue/green), not an add plus a remove.
    const moved = new Map<string, { e: ModelEntry; from: string; to: string }>();
    for (const e of this.entries.values()) {
      for (const [v, s] of e.versions) {
        if (next.has(modelId(e.name, v))) continue;
        const successor = [...next.values()].find(
          (p) => p.dir === s.pkg.dir && p.manifest.name === e.name && !e.versions.has(p.manifest.version),
        );
        if (successor)
          moved.set(modelId(e.name, successor.manifest.version), { e, from: v, to: successor.manifest.version });
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
    await Promise.all(
      [...touched].filter((n) => this.entries.has(n)).map((n) => this.applyPolicy(this.entries.get(n)!)),
    );
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
    const oldLoading = old.loading;
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
    const weights =
      t.weights && Object.hasOwn(t.weights, from)
        ? Object.fromEntries(Object.entries(t.weights).map(([v, w]) => [v === from ? to : v, w]))
        : t.weights;
    e.traffic = { defaultVersion: t.defaultVersion === from ? to : t.defaultVersion, weights, history: t.history };
    e.router = weights ? new TrafficRouter(weights) : undefined;
    this.saveTraffic(e);
    this.dropVersion(e, from);
    if (oldDep && next) oldDep.forwardTo(next);
    await oldDep?.drain(30_000);
    // The old version was still starting: its slot is gone, so once up it hands over and stops
    // (else its workers would run on, reachable by no one).
    const late = oldDep ? undefined : await oldLoading?.catch(() => undefined);
    if (late) {
      if (next) late.forwardTo(next);
      await late.drain(30_000);
    }
  }

  private async applyPolicy(e: ModelEntry): Promise<void> {
    const wanted = new Set(this.wantedVersions(e));
    await Promise.all(
      [...wanted].map((v) =>
        this.loadSlot(e, v).then(
          () => undefined,
          () => undefined,
        ),
      ),
    );
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
          if (!this.closed)
            this.reload().catch((e: Error) => this.logger.error({ error: e.message }, 'hot reload failed'));
        }, debounceMs);
      });
      this.watcher.on('error', (e) => this.logger.warn({ error: e.message }, 'models dir watcher stopped'));
    } catch (e) {
      this.logger.warn({ error: (e as Error).message }, 'cannot watch the models dir; use POST /v1/models/reload');
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.watcher?.close();
    // Starts in flight too: a load that finished after close would leave its workers running.
    await Promise.all([...this.allDeployments(), ...this.starting].map((d) => d.stop(2000)));
    for (const e of this.entries.values()) for (const s of e.versions.values()) s.deployment = undefined;
  }
}
