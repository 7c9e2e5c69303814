// Splitting one model's traffic between its versions: weighted A/B or a canary percentage.
// With a sticky key the same key always lands on the same version (while the weights hold);
// without one, smooth weighted round-robin gives exact proportions with no randomness.
import { createHash } from 'node:crypto';

export type Weights = Record<string, number>;

export class TrafficRouter {
  private readonly entries: { version: string; weight: number; current: number }[];

  constructor(weights: Weights) {
    // Sorted so that a sticky key's bucket maps to the same version whatever the input order.
    this.entries = Object.entries(weights)
      .filter(([, w]) => w > 0)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([version, weight]) => ({ version, weight, current: 0 }));
  }

  /** The version for one request, among `eligible` (those ready to serve); undefined if none. */
  pick(eligible: (version: string) => boolean, stickyKey?: string): string | undefined {
    const live = this.entries.filter((e) => eligible(e.version));
    if (live.length === 0) return undefined;
    const total = live.reduce((s, e) => s + e.weight, 0);
    if (stickyKey !== undefined) {
      // Hash → a point in [0, total): a stable bucket per key.
      const point = (createHash('sha256').update(stickyKey).digest().readUInt32BE(0) / 2 ** 32) * total;
      let acc = 0;
      for (const e of live) {
        acc += e.weight;
        if (point < acc) return e.version;
      }
      return live[live.length - 1]!.version;
    }
    // Smooth weighted round-robin (as nginx): every entry gains its weight, the leader pays the total.
    let best = live[0]!;
    for (const e of live) {
      e.current += e.weight;
      if (e.current > best.current) best = e;
    }
    best.current -= total;
    return best.version;
  }
}

/** Canary: `percent` of traffic to `canary`, the rest to `stable`. */
export function canaryWeights(stable: string, canary: string, percent: number): Weights {
  return { [stable]: 100 - percent, [canary]: percent };
}
