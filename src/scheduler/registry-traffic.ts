// Traffic between a model's versions: A/B and canary splits, promotion and rollback, rolling
// updates, and routing another gateway changed through the shared store.
import { IsoError } from '../errors.js';
import { TrafficRouter, type Weights } from './traffic.js';
import type { TrafficState } from './traffic-store.js';
import { RegistryLifecycle } from './registry-lifecycle.js';
import type { ApplyOptions, ModelEntry, VersionOverrides } from './registry-state.js';

export class RegistryTraffic extends RegistryLifecycle {
  /** Set by close(): nothing more is loaded for a routing change that lands afterwards. */

  // ---- traffic: A/B, canary, promote, rollback, rolling update ----

  /**
   * Splits traffic between versions by weight (null: back to the default version only). Versions
   * given a weight are loaded first; the split applies once they are all ready.
   */
  async setTraffic(name: string, weights: Weights | null): Promise<void> {
    const e = this.entry(name);
    if (weights) {
      const unknown = Object.keys(weights).filter((v) => !e.versions.has(v));
      if (unknown.length)
        throw new IsoError('INVALID_REQUEST', `model ${name} has no version ${unknown.join(', ')}`, {
          versions: this.sortedVersions(e),
        });
      if (!Object.values(weights).some((w) => w > 0))
        throw new IsoError('INVALID_REQUEST', 'at least one version needs a weight above 0');
      await Promise.all(
        Object.entries(weights)
          .filter(([, w]) => w > 0)
          .map(([v]) => this.loadSlot(e, v)),
      );
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
    // The default that served before, taken before the load: once `version` is ready it would be
    // the newest ready version, the default by itself, and the one it replaced never recorded.
    const serving = this.defaultVersionOf(e);
    await this.loadSlot(e, version);
    const previous = this.makeDefault(e, version, serving);
    this.logger.info({ model: name, version, previous }, 'version promoted');
  }

  /**
   * `version` becomes the default with all traffic (the split ends); the previous default goes into
   * the history: the one promoted meanwhile if any, else `serving`, the default before `version` loaded.
   */
  private makeDefault(e: ModelEntry, version: string, serving: string, share = true): string {
    const now = this.defaultVersionOf(e);
    const previous = now === e.traffic.defaultVersion ? now : serving;
    e.traffic = {
      defaultVersion: version,
      history: previous !== version ? [...e.traffic.history, previous] : e.traffic.history,
    };
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
    if (target === undefined)
      throw new IsoError('INVALID_REQUEST', `model ${name} has no earlier version to roll back to`);
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
  async rollingUpdate(
    name: string,
    version: string,
    overrides?: VersionOverrides,
    opts: ApplyOptions = {},
  ): Promise<{ previous: string[] }> {
    const e = this.entry(name);
    const { slot } = this.slotOf(e, version);
    slot.pinned = true;
    const serving = this.defaultVersionOf(e);
    // The serving version with new settings is replaced by a fresh deployment of itself.
    const fresh = this.setOverrides(slot, overrides)
      ? await this.restartSlot(e, version)
      : await this.loadSlot(e, version);
    const previous = [...e.versions.entries()].filter(([v, s]) => v !== version && s.deployment).map(([v]) => v);
    this.makeDefault(e, version, serving, opts.share !== false);
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
          (err: Error) =>
            this.logger.warn(
              { model: e.name, version: promoted, error: err.message },
              'cannot load the version promoted through another gateway; the default here stays as it was',
            ),
        );
        continue;
      }
      e.traffic = s;
      e.router = s.weights ? new TrafficRouter(s.weights) : undefined;
      for (const [v, w] of Object.entries(s.weights ?? {})) {
        if (w > 0 && e.versions.has(v))
          this.loadSlot(e, v).catch((err: Error) =>
            this.logger.warn(
              { model: e.name, version: v, error: err.message },
              'cannot load a version the shared traffic split routes to',
            ),
          );
      }
      this.logger.info(
        { model: e.name, weights: s.weights ?? null, default_version: s.defaultVersion ?? null },
        'traffic routing changed through another gateway',
      );
    }
  }
}

function sameTraffic(a: TrafficState, b: TrafficState): boolean {
  const weights = (w: TrafficState['weights']): string =>
    JSON.stringify(Object.entries(w ?? {}).sort(([x], [y]) => x.localeCompare(y)));
  return (
    a.defaultVersion === b.defaultVersion &&
    weights(a.weights) === weights(b.weights) &&
    JSON.stringify(a.history) === JSON.stringify(b.history)
  );
}
