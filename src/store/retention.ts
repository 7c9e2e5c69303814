// Retention for the append-only logs in SQLite (the audit log, the request log): rows older than
// a maximum age go, and past a maximum row count the oldest go, so neither grows without bound.
// Deletes run in small chunks so a large backlog never holds the write lock for long.
import type Database from 'better-sqlite3';

export interface RetentionPolicy {
  /** Rows older than this go; 0 keeps rows of any age. */
  maxAgeMs: number;
  /** At most this many rows stay (the newest); 0: no row limit. */
  maxRows: number;
}

/** A table with an INTEGER PRIMARY KEY `id` growing with time and an ISO-8601 `at` column. */
export interface RetainedTable {
  table: 'audit_log' | 'request_log';
  policy: RetentionPolicy;
}

const CHUNK = 5000;

/** Applies one table's policy now; returns the number of rows removed. */
export function pruneTable(db: Database.Database, t: RetainedTable, now = Date.now()): number {
  let removed = 0;
  if (t.policy.maxAgeMs > 0) {
    const cutoff = new Date(now - t.policy.maxAgeMs).toISOString();
    const del = db.prepare(`DELETE FROM ${t.table} WHERE id IN (SELECT id FROM ${t.table} WHERE at < ? ORDER BY id LIMIT ${CHUNK})`);
    for (;;) {
      const n = del.run(cutoff).changes;
      removed += n;
      if (n < CHUNK) break;
    }
  }
  if (t.policy.maxRows > 0) {
    // The id of the newest row that must go: everything at or below it goes.
    const edge = db.prepare(`SELECT id FROM ${t.table} ORDER BY id DESC LIMIT 1 OFFSET ?`).get(t.policy.maxRows) as { id: number } | undefined;
    if (edge) {
      const del = db.prepare(`DELETE FROM ${t.table} WHERE id IN (SELECT id FROM ${t.table} WHERE id <= ? ORDER BY id LIMIT ${CHUNK})`);
      for (;;) {
        const n = del.run(edge.id).changes;
        removed += n;
        if (n < CHUNK) break;
      }
    }
  }
  return removed;
}

/** Something else to prune on the same schedule (finished jobs): returns the rows removed, or a promise of them (reported only when it fails). */
export interface Pruner {
  name: string;
  prune(now: number): number | Promise<number>;
}

/** Prunes the retained tables at start and then every `intervalMs`; errors are reported, never thrown. */
export class RetentionJob {
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly db: Database.Database,
    private readonly tables: RetainedTable[],
    private readonly intervalMs: number,
    private readonly onError: (message: string) => void,
    private readonly pruners: Pruner[] = [],
  ) {}

  start(): void {
    this.runOnce();
    this.timer = setInterval(() => this.runOnce(), this.intervalMs);
    this.timer.unref();
  }

  /** Prunes every table now; returns the rows removed per table. */
  runOnce(now = Date.now()): Record<string, number> {
    const removed: Record<string, number> = {};
    for (const t of this.tables) {
      try {
        removed[t.table] = pruneTable(this.db, t, now);
      } catch (e) {
        this.onError(`retention of ${t.table} failed: ${(e as Error).message}`);
      }
    }
    for (const p of this.pruners) {
      try {
        const n = p.prune(now);
        if (typeof n === 'number') removed[p.name] = n;
        else n.catch((e: Error) => this.onError(`retention of ${p.name} failed: ${e.message}`));
      } catch (e) {
        this.onError(`retention of ${p.name} failed: ${(e as Error).message}`);
      }
    }
    return removed;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
