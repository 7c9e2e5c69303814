// Each model's routing (promoted default, A/B or canary weights, promotion history) in a
// shared state database: the table of src/scheduler/traffic-store.ts. A split set through one
// gateway is announced (changes.ts) and every other gateway reloads the table and hands the new
// state to `onChange`, which applies it to its registry.
import type { TrafficState } from '../../scheduler/traffic-store.js';
import type { Weights } from '../../scheduler/traffic.js';
import type { SqlClient, SqlRunner } from '../sql.js';
import { notify, openMirror, type ChangeFeed } from './changes.js';

export const TRAFFIC_MIGRATIONS = [
  `CREATE TABLE model_traffic (
     name TEXT PRIMARY KEY, default_version TEXT, weights TEXT, history TEXT NOT NULL, updated_at TEXT NOT NULL
   )`,
];

interface Row {
  name: string;
  default_version: string | null;
  weights: string | null;
  history: string;
  updated_at: string;
}

export class SharedTrafficStore {
  private state = new Map<string, TrafficState>();
  private stamp = '';
  private listener: ((state: Map<string, TrafficState>) => void) | null = null;
  /** Writes of this gateway in flight: a reload meanwhile would hand back the state before them. */
  private writing = 0;

  private constructor(private readonly sql: SqlClient) {}

  static open(sql: SqlClient, feed?: ChangeFeed): Promise<SharedTrafficStore> {
    return openMirror(
      sql,
      { namespace: 'traffic', migrations: TRAFFIC_MIGRATIONS },
      feed,
      'traffic',
      () => new SharedTrafficStore(sql),
    );
  }

  /** Called with every model's routing whenever it changed (through any gateway). */
  onChange(fn: (state: Map<string, TrafficState>) => void): void {
    this.listener = fn;
  }

  async reload(): Promise<void> {
    if (this.writing > 0) return;
    const rows = await this.sql.query<Row>(
      'SELECT name, default_version, weights, history, updated_at FROM model_traffic ORDER BY name',
    );
    const stamp = rows.map((r) => `${r.name}@${r.updated_at}`).join(',');
    this.state = new Map(
      rows.map((r) => [
        r.name,
        {
          defaultVersion: r.default_version ?? undefined,
          weights: r.weights ? (JSON.parse(r.weights) as Weights) : undefined,
          history: JSON.parse(r.history) as string[],
        },
      ]),
    );
    if (stamp !== this.stamp) {
      this.stamp = stamp;
      this.listener?.(this.load());
    }
  }

  /** The routing as last read. */
  load(): Map<string, TrafficState> {
    return new Map(this.state);
  }

  async save(name: string, s: TrafficState): Promise<void> {
    await this.write(async (q) => {
      await q.run(
        `INSERT INTO model_traffic (name, default_version, weights, history, updated_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (name) DO UPDATE SET default_version = excluded.default_version, weights = excluded.weights,
           history = excluded.history, updated_at = excluded.updated_at`,
        [
          name,
          s.defaultVersion ?? null,
          s.weights ? JSON.stringify(s.weights) : null,
          JSON.stringify(s.history.slice(-20)),
          new Date().toISOString(),
        ],
      );
      await notify(q, 'traffic');
    });
  }

  async delete(name: string): Promise<void> {
    await this.write(async (q) => {
      await q.run('DELETE FROM model_traffic WHERE name = ?', [name]);
      await notify(q, 'traffic');
    });
  }

  private async write(fn: (q: SqlRunner) => Promise<void>): Promise<void> {
    this.writing++;
    try {
      await this.sql.tx(fn);
    } finally {
      this.writing--;
    }
    await this.reload();
  }
}
