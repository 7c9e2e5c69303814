// Deployments made through the deployment API (/api/v1/models: deploy, rolling update, scale,
// undeploy) of one gateway, in force on every other gateway sharing its database_url. The
// gateway that took the request records what it did once it worked (src/store/shared/
// deployments.ts); the others read the change (NOTIFY, else the 500 ms re-read) and do the same
// with their own workers: register the package (their models dir, a path every gateway reads,
// or an image deploy's manifest written into their own state dir), then load, update, scale,
// unload or remove. Changes apply in the order they were made, one model at a time; different
// models do not wait for each other's loads.
import { resolve, sep } from 'node:path';
import type { Logger } from 'pino';
import { IsoError } from '../errors.js';
import { httpPackagesDir, writeHttpPackage } from '../manifest/http-package.js';
import type { Manifest } from '../manifest/schema.js';
import {
  specKey,
  type DeploymentSource,
  type DeploymentSpec,
  type DeploymentWrite,
  type SharedDeploymentStore,
} from '../store/shared/deployments.js';
import type { ModelRegistry, VersionOverrides } from './registry.js';
import { parseModelId } from './versions.js';

/** The gateway that made the change stored its routing already. */
const LOCAL = { share: false } as const;

type Build = (existing: DeploymentSpec | undefined) => Omit<DeploymentWrite, 'name' | 'version'>;

export class DeploymentSync {
  /** The seq of each spec applied here, or written by this gateway (which did it already). */
  private readonly applied = new Map<string, number>();
  /** Per model: the changes being applied, in order. */
  private readonly chains = new Map<string, Promise<void>>();
  private started = false;
  private closed = false;

  constructor(
    private readonly registry: ModelRegistry,
    private readonly store: SharedDeploymentStore,
    private readonly stateDir: string,
    private readonly logger: Logger,
  ) {}

  /** Applies the specs stored (a gateway that starts later does what was deployed before it), then each change as it comes. */
  start(): void {
    if (this.started || this.closed) return;
    this.started = true;
    this.store.onChange(() => this.reconcile(false));
    this.reconcile(true);
  }

  /** Resolves once every change handed over so far has been applied here (or has failed, reported). */
  async settled(): Promise<void> {
    await Promise.all(this.chains.values());
  }

  close(): void {
    this.closed = true;
  }

  private reconcile(initial: boolean): void {
    for (const spec of this.store.all()) {
      const key = specKey(spec.name, spec.version);
      if ((this.applied.get(key) ?? 0) >= spec.seq) continue;
      this.applied.set(key, spec.seq);
      // At start an undeploy or a removal has nothing to undo: the models dir's policy decides, as after a restart.
      if (initial && (spec.action === 'undeploy' || spec.action === 'remove')) continue;
      const next = (this.chains.get(spec.name) ?? Promise.resolve())
        .then(() => this.apply(spec))
        .catch((e: Error) =>
          this.logger.warn(
            { model: spec.name, version: spec.version || undefined, action: spec.action, error: e.message },
            'cannot apply a deployment made through another gateway',
          ),
        );
      this.chains.set(spec.name, next);
      void next.finally(() => {
        if (this.chains.get(spec.name) === next) this.chains.delete(spec.name);
      });
    }
  }

  private async apply(s: DeploymentSpec): Promise<void> {
    if (this.closed) return;
    const id = `${s.name}@${s.version}`;
    this.logger.info(
      { model: s.name, version: s.version || undefined, action: s.action },
      'applying a deployment made through another gateway',
    );
    switch (s.action) {
      case 'remove':
        if (this.registry.names().includes(s.name)) await this.registry.remove(s.name, LOCAL);
        return;
      case 'undeploy':
        if (this.known(s.name, s.version)) await this.registry.unload(id, LOCAL);
        return;
      case 'deploy':
        this.ensurePackage(s);
        if (s.replicas === 0) return this.registry.scale(id, 0);
        await this.registry.load(id, s.overrides ?? undefined);
        break;
      case 'update':
        this.ensurePackage(s);
        await this.registry.rollingUpdate(s.name, s.version, s.overrides ?? undefined, LOCAL);
        break;
    }
    if (s.replicas !== null) await this.registry.scale(id, s.replicas);
  }

  private known(name: string, version: string): boolean {
    try {
      this.registry.package(`${name}@${version}`);
      return true;
    } catch {
      return false;
    }
  }

  /** Registers the version's package here when this gateway does not know it yet. */
  private ensurePackage(s: DeploymentSpec): void {
    if (this.known(s.name, s.version)) return;
    const src = s.source;
    if (!src) throw new Error('no package source was recorded');
    const dir =
      src.kind === 'image'
        ? writeHttpPackage(this.stateDir, src.manifest as Manifest)
        : src.kind === 'models_dir'
          ? resolve(this.registry.modelsDir, src.dir)
          : src.dir;
    const pkg = this.registry.register(dir);
    if (pkg.manifest.name !== s.name || pkg.manifest.version !== s.version)
      throw new Error(
        `the package at ${dir} is ${pkg.manifest.name}@${pkg.manifest.version} here, not ${s.name}@${s.version}`,
      );
  }

  /** Where the package of a version this gateway knows comes from, as another gateway can find it. */
  private sourceOf(name: string, version: string): DeploymentSource {
    const pkg = this.registry.package(`${name}@${version}`);
    if (pkg.dir.startsWith(resolve(httpPackagesDir(this.stateDir)) + sep))
      return { kind: 'image', manifest: pkg.manifest };
    const models = resolve(this.registry.modelsDir) + sep;
    if (pkg.dir.startsWith(models)) return { kind: 'models_dir', dir: pkg.dir.slice(models.length) };
    return { kind: 'path', dir: pkg.dir };
  }

  private versionOf(id: string): { name: string; version: string } {
    const { name, version } = parseModelId(id);
    return { name, version: version ?? this.registry.defaultVersion(name) };
  }

  // ---- what this gateway did through the deployment API, once it worked ----

  /** A version deployed (loaded and pinned) with these overrides. */
  deployed(id: string, overrides?: VersionOverrides): Promise<void> {
    const { name, version } = this.versionOf(id);
    return this.record(`${name}@${version} deployed`, name, version, (old) => ({
      action: 'deploy',
      source: this.sourceOf(name, version),
      overrides: mergeOverrides(old?.overrides, overrides),
      replicas: overrides?.scaling ? null : (old?.replicas ?? null),
    }));
  }

  /** A rolling update of the model to `version`. */
  updated(name: string, version: string, overrides?: VersionOverrides): Promise<void> {
    return this.record(`${name} updated to ${version}`, name, version, (old) => ({
      action: 'update',
      source: this.sourceOf(name, version),
      overrides: mergeOverrides(old?.overrides, overrides),
      replicas: overrides?.scaling ? null : (old?.replicas ?? null),
    }));
  }

  scaled(id: string, replicas: number): Promise<void> {
    const { name, version } = this.versionOf(id);
    return this.record(`${name}@${version} scaled`, name, version, (old) => ({
      action: old?.action === 'update' ? 'update' : 'deploy',
      source: this.sourceOf(name, version),
      overrides: old?.overrides ?? null,
      replicas,
    }));
  }

  /** One version undeployed (`name@version`). */
  undeployed(id: string): Promise<void> {
    const { name, version } = this.versionOf(id);
    return this.record(`${name}@${version} undeployed`, name, version, (old) => ({
      action: 'undeploy',
      source: old?.source ?? null,
      overrides: old?.overrides ?? null,
      replicas: null,
    }));
  }

  /** The whole model undeployed. */
  removed(name: string): Promise<void> {
    return this.record(`${name} undeployed`, name, '', () => ({
      action: 'remove',
      source: null,
      overrides: null,
      replicas: null,
    }));
  }

  private async record(what: string, name: string, version: string, build: Build): Promise<void> {
    try {
      await this.store.put(name, version, build, (spec) => this.applied.set(specKey(name, version), spec.seq));
    } catch (e) {
      this.logger.error(
        { model: name, version: version || undefined, error: (e as Error).message },
        'deployment not recorded in the shared state database',
      );
      throw new IsoError(
        'INTERNAL_ERROR',
        `${what} on this gateway, but the shared state database did not record it, so the other gateways do not know of it; repeat the request once the database answers`,
      );
    }
  }
}

function mergeOverrides(
  old: VersionOverrides | null | undefined,
  given: VersionOverrides | undefined,
): VersionOverrides | null {
  const o = { ...old, ...given };
  return o.resources || o.scaling ? o : null;
}
