// Retention for the append-only logs in SQLite (the audit log, the request log), and for the
// audit log every gateway shares in PostgreSQL (database_url): rows older than a maximum age go,
// and past a maximum row count the oldest go, so neither grows without bound. Deletes run in
// small chunks so a large backlog never holds the write lock for long.
import type Database from 'better-sqlite3';
import type { SqlClient, SqlRunner } from './sql.js';

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
    const del = db.prepare(
      `DELETE FROM ${t.table} WHERE id IN (SELECT id FROM ${t.table} WHERE at < ? ORDER BY id LIMIT ${CHUNK})`,
    );
    for (;;) {
      const n = del.run(cutoff).changes;
      removed += n;
      if (n < CHUNK) break;
    }
  }
  if (t.policy.maxRows > 0) {
    // The id of the newest row that must go: everything at or below it goes.
    const edge = db.prepare(`SELECT id FROM ${t.table} ORDER BY id DESC LIMIT 1 OFFSET ?`).get(t.policy.maxRows) as
      { id: number } | undefined;
    if (edge) {
      const del = db.prepare(
        `DELETE FROM ${t.table} WHERE id IN (SELECT id FROM ${t.table} WHERE id <= ? ORDER BY id LIMIT ${CHUNK})`,
      );
      for (;;) {
        const n = del.run(edge.id).changes;
        removed += n;
        if (n < CHUNK) break;
      }
    }
  }
  return removed;
}

/**
 * The same policy over a shared database, where every gateway runs it: each chunk is deleted
 * under a PostgreSQL advisory lock taken without waiting, so while one gateway prunes the
 * others skip their turn instead of deleting the same rows.
 */
export async function pruneSharedTable(sql: SqlClient, t: RetainedTable, now = Date.now()): Promise<number> {
  let removed = 0;
  const chunk = (where: string, arg: string | number): Promise<number | null> =>
    sql.tx(async (q) => {
      if (!(await holdsPruneLock(q, t.table))) return null;
      return q.run(
        `DELETE FROM ${t.table} WHERE id IN (SELECT id FROM ${t.table} WHERE ${where} ORDER BY id LIMIT ${CHUNK})`,
        [arg],
      );
    });
  const drain = async (where: string, arg: string | number): Promise<boolean> => {
    for (;;) {
      const n = await chunk(where, arg);
      if (n === null) return false;
      removed += n;
      if (n < CHUNK) return true;
    }
  };
  if (t.policy.maxAgeMs > 0 && !(await drain('at < ?', new Date(now - t.policy.maxAgeMs).toISOString())))
    return removed;
  if (t.policy.maxRows > 0) {
    const [edge] = await sql.query<{ id: number }>(`SELECT id FROM ${t.table} ORDER BY id DESC LIMIT 1 OFFSET ?`, [
      t.policy.maxRows,
    ]);
    if (edge) await drain('id <= ?', Number(edge.id));
  }
  return removed;
}

/** PostgreSQL: whether this transaction got the table's prune lock (another gateway holds it: no); SQLite: always. */
async function holdsPruneLock(q: SqlRunner, table: string): Promise<boolean> {
  if (q.dialect !== 'postgres') return true;
  const [row] = await q.query<{ locked: boolean }>('SELECT pg_try_advisory_xact_lock(hashtext(?)) AS locked', [
    `isomodel.retention.${table}`,
  ]);
  return row?.locked === true;
}

/** Something else to prune on the same schedule (finished jobs): returns the rows removed, or a promise of them (reported only when it fails). */
export interface Pruner {
  name: string;
  prune(now: number): number | Promise<number>;
}

/** A prune over the network (the shared audit log): run in the background of the schedule. */
export interface AsyncPruner {
  name: string;
  prune(now: number): Promise<number>;
}

/** Prunes the retained tables at start and then every `intervalMs`; errors are reported, never thrown. */
export class RetentionJob {
  private timer: NodeJS.Timeout | null = null;
  private readonly asyncPruners: AsyncPruner[] = [];
  private background: Promise<Record<string, number>> | null = null;

  constructor(
    private readonly db: Database.Database,
    private readonly tables: RetainedTable[],
    private readonly intervalMs: number,
    private readonly onError: (message: string) => void,
    private readonly pruners: Pruner[] = [],
  ) {}

  /** Adds a prune over the network (database_url's audit log) to the schedule. */
  addAsync(p: AsyncPruner): void {
    this.asyncPruners.push(p);
  }

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
    void this.runAsync(now);
    return removed;
  }

  /** Runs the prunes over the network now, or returns the run still in progress (never two at once); errors are reported. */
  runAsync(now = Date.now()): Promise<Record<string, number>> {
    this.background ??= (async () => {
      const removed: Record<string, number> = {};
      for (const p of this.asyncPruners) {
        try {
          removed[p.name] = await p.prune(now);
        } catch (e) {
          this.onError(`retention of ${p.name} failed: ${(e as Error).message}`);
        }
      }
      return removed;
    })().finally(() => (this.background = null));
    return this.background;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
