// Persists each model's routing (promoted default version, A/B weights, promotion history) so
// that a canary or a rollback target survives a gateway restart.
import type { StateStore } from '../store/db.js';
import type { Weights } from './traffic.js';

export interface TrafficState {
  /** The promoted default version; absent: the newest ready version. */
  defaultVersion?: string;
  /** A/B or canary split between versions; absent: all traffic to the default version. */
  weights?: Weights;
  /** Earlier defaults, most recent last: what rollback returns to. */
  history: string[];
}

interface Row {
  name: string;
  default_version: string | null;
  weights: string | null;
  history: string;
}

/** Where routing is kept: TrafficStore (SQLite) or SharedTrafficStore (PostgreSQL: src/store/shared/traffic.ts). */
export interface TrafficBackend {
  load(): Map<string, TrafficState>;
  save(name: string, s: TrafficState): void | Promise<void>;
  delete(name: string): void | Promise<void>;
}

export class TrafficStore {
  constructor(private readonly store: StateStore) {
    store.migrateNamespace('traffic', [
      `CREATE TABLE model_traffic (
         name TEXT PRIMARY KEY, default_version TEXT, weights TEXT, history TEXT NOT NULL, updated_at TEXT NOT NULL
       )`,
    ]);
  }

  load(): Map<string, TrafficState> {
    const rows = this.store.db
      .prepare('SELECT name, default_version, weights, history FROM model_traffic')
      .all() as Row[];
    return new Map(
      rows.map((r) => [
        r.name,
        {
          defaultVersion: r.default_version ?? undefined,
          weights: r.weights ? (JSON.parse(r.weights) as Weights) : undefined,
          history: JSON.parse(r.history) as string[],
        },
      ]),
    );
  }

  save(name: string, s: TrafficState): void {
    this.store.db
      .prepare(
        `INSERT INTO model_traffic (name, default_version, weights, history, updated_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT(name) DO UPDATE SET default_version=excluded.default_version, weights=excluded.weights,
           history=excluded.history, updated_at=excluded.updated_at`,
      )
      .run(
        name,
        s.defaultVersion ?? null,
        s.weights ? JSON.stringify(s.weights) : null,
        JSON.stringify(s.history.slice(-20)),
        new Date().toISOString(),
      );
  }

  delete(name: string): void {
    this.store.db.prepare('DELETE FROM model_traffic WHERE name = ?').run(name);
  }
}
