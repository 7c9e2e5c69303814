// Jobs in SQLite (the gateway's state database, `jobs` migration namespace).
//
// A job row holds its spec, counters and owner (the API key that created it); one job_items
// row per input record holds the record and, once done, its result. A submission is written
// while it is parsed: the job row first, `receiving` (invisible to every reader and to the job
// loop), then its records in batches, then one transaction that checks the owner's quotas and
// turns it `queued`; a submission that fails part way is deleted, and one a crash interrupted
// is deleted at the next start (its client never had an answer). A result is written only
// over a `pending` row, in one transaction with the job's counters: after a crash, finished
// records are never run again and records that were in flight are simply still pending, so
// each record has exactly one result, read back in input order by its index.
import type Database from 'better-sqlite3';
import type { StateStore } from '../store/db.js';
import type { InputRecord, OutputRecord } from './formats.js';

/** Owner of the jobs stored before jobs had owners: no key matches it, only admin keys see them. */
export const LEGACY_OWNER = 'legacy';

export const JOB_MIGRATIONS = [
  `CREATE TABLE jobs (
     id TEXT PRIMARY KEY,
     name TEXT,
     kind TEXT NOT NULL,
     model TEXT NOT NULL,
     task TEXT,
     spec TEXT NOT NULL,
     status TEXT NOT NULL,
     total INTEGER NOT NULL,
     done INTEGER NOT NULL DEFAULT 0,
     failed INTEGER NOT NULL DEFAULT 0,
     chunk_size INTEGER NOT NULL,
     workers INTEGER NOT NULL,
     priority INTEGER NOT NULL DEFAULT 0,
     error TEXT,
     idempotency_key TEXT UNIQUE,
     request_hash TEXT,
     created_at TEXT NOT NULL,
     started_at TEXT,
     finished_at TEXT,
     updated_at TEXT NOT NULL
   );
   CREATE INDEX jobs_status ON jobs(status);
   CREATE INDEX jobs_created ON jobs(created_at);
   CREATE TABLE job_items (
     job_id TEXT NOT NULL,
     idx INTEGER NOT NULL,
     input TEXT NOT NULL,
     status TEXT NOT NULL DEFAULT 'pending',
     result TEXT,
     PRIMARY KEY (job_id, idx)
   ) WITHOUT ROWID;`,
  // Owners, and Idempotency-Keys unique per owner (two keys may use the same one). SQLite cannot
  // drop a column's UNIQUE, so the table is rebuilt.
  `CREATE TABLE jobs_v2 (
     id TEXT PRIMARY KEY,
     name TEXT,
     kind TEXT NOT NULL,
     model TEXT NOT NULL,
     task TEXT,
     spec TEXT NOT NULL,
     status TEXT NOT NULL,
     total INTEGER NOT NULL,
     done INTEGER NOT NULL DEFAULT 0,
     failed INTEGER NOT NULL DEFAULT 0,
     chunk_size INTEGER NOT NULL,
     workers INTEGER NOT NULL,
     priority INTEGER NOT NULL DEFAULT 0,
     error TEXT,
     idempotency_key TEXT,
     request_hash TEXT,
     created_at TEXT NOT NULL,
     started_at TEXT,
     finished_at TEXT,
     updated_at TEXT NOT NULL,
     owner TEXT NOT NULL,
     owner_name TEXT
   );
   INSERT INTO jobs_v2 (id, name, kind, model, task, spec, status, total, done, failed, chunk_size, workers, priority, error,
                        idempotency_key, request_hash, created_at, started_at, finished_at, updated_at, owner, owner_name)
     SELECT id, name, kind, model, task, spec, status, total, done, failed, chunk_size, workers, priority, error,
            idempotency_key, request_hash, created_at, started_at, finished_at, updated_at, '${LEGACY_OWNER}', NULL FROM jobs;
   DROP TABLE jobs;
   ALTER TABLE jobs_v2 RENAME TO jobs;
   CREATE INDEX jobs_status ON jobs(status);
   CREATE INDEX jobs_created ON jobs(created_at);
   CREATE INDEX jobs_owner_status ON jobs(owner, status);
   CREATE UNIQUE INDEX jobs_owner_idempotency ON jobs(owner, idempotency_key);`,
];

export const JOB_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];
export const TERMINAL: ReadonlySet<string> = new Set(['succeeded', 'failed', 'cancelled']);
/** A submission whose records are still being written: seen by nobody, run by nothing. */
export const RECEIVING = 'receiving';

export interface JobRow {
  id: string;
  name: string | null;
  kind: 'predict' | 'pipeline';
  /** The model (predict) or pipeline name. */
  model: string;
  task: string | null;
  spec: string;
  status: JobStatus | typeof RECEIVING;
  total: number;
  done: number;
  failed: number;
  chunk_size: number;
  workers: number;
  priority: number;
  error: string | null;
  idempotency_key: string | null;
  request_hash: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  updated_at: string;
  /** The id of the principal (API key) that submitted it. */
  owner: string;
  /** That key's name when it submitted it. */
  owner_name: string | null;
}

export type NewJobRow = Omit<JobRow, 'total' | 'done' | 'failed' | 'error' | 'started_at' | 'finished_at' | 'updated_at' | 'status'>;

export interface ResultRow {
  idx: number;
  status: 'pending' | 'success' | 'error';
  result: string | null;
}

/** What one owner has queued: unfinished jobs, and their records without a result. */
export interface OwnerUsage {
  jobs: number;
  records: number;
}

const ROWS_PER_INSERT = 100;

function prepare(db: Database.Database) {
  return {
    insertJob: db.prepare(
      `INSERT INTO jobs (id, name, kind, model, task, spec, status, total, chunk_size, workers, priority, idempotency_key, request_hash, created_at, updated_at, owner, owner_name)
       VALUES (@id, @name, @kind, @model, @task, @spec, '${RECEIVING}', 0, @chunk_size, @workers, @priority, @idempotency_key, @request_hash, @created_at, @created_at, @owner, @owner_name)`,
    ),
    insertItem: db.prepare('INSERT INTO job_items (job_id, idx, input) VALUES (?, ?, ?)'),
    // Many rows per statement: a third less time per record than one statement each.
    insertItems: db.prepare(`INSERT INTO job_items (job_id, idx, input) VALUES ${Array<string>(ROWS_PER_INSERT).fill('(?, ?, ?)').join(', ')}`),
    grow: db.prepare(`UPDATE jobs SET total = total + ?, updated_at = ? WHERE id = ? AND status = '${RECEIVING}'`),
    activate: db.prepare(`UPDATE jobs SET status = 'queued', created_at = ?, updated_at = ? WHERE id = ? AND status = '${RECEIVING}'`),
    receiving: db.prepare(`SELECT id FROM jobs WHERE status = '${RECEIVING}'`),
    itemBound: db.prepare('SELECT idx FROM job_items WHERE job_id = ? ORDER BY idx LIMIT 1 OFFSET ?'),
    deleteItemsBelow: db.prepare('DELETE FROM job_items WHERE job_id = ? AND idx < ?'),
    deleteItems: db.prepare('DELETE FROM job_items WHERE job_id = ?'),
    deleteJob: db.prepare('DELETE FROM jobs WHERE id = ?'),
    get: db.prepare('SELECT * FROM jobs WHERE id = ?'),
    byKey: db.prepare('SELECT * FROM jobs WHERE owner = ? AND idempotency_key = ?'),
    usage: db.prepare(`SELECT COUNT(*) AS jobs, COALESCE(SUM(total - done), 0) AS records FROM jobs WHERE owner = ? AND status IN ('queued', 'running')`),
    active: db.prepare(`SELECT * FROM jobs WHERE status IN ('queued', 'running') ORDER BY created_at, id`),
    pendingAfter: db.prepare(`SELECT idx, input FROM job_items WHERE job_id = ? AND idx > ? AND status = 'pending' ORDER BY idx LIMIT ?`),
    writeResult: db.prepare(`UPDATE job_items SET status = ?, result = ? WHERE job_id = ? AND idx = ? AND status = 'pending'`),
    bump: db.prepare('UPDATE jobs SET done = done + ?, failed = failed + ?, updated_at = ? WHERE id = ?'),
    results: db.prepare('SELECT idx, status, result FROM job_items WHERE job_id = ? AND idx >= ? ORDER BY idx LIMIT ?'),
    start: db.prepare(`UPDATE jobs SET status = 'running', started_at = COALESCE(started_at, ?), updated_at = ? WHERE id = ? AND status IN ('queued', 'running')`),
    finish: db.prepare(`UPDATE jobs SET status = ?, error = ?, finished_at = ?, updated_at = ? WHERE id = ? AND status IN ('queued', 'running')`),
    countPending: db.prepare(`SELECT COUNT(*) AS n FROM job_items WHERE job_id = ? AND status = 'pending'`),
    finishedBefore: db.prepare(`SELECT id FROM jobs WHERE status IN ('succeeded', 'failed', 'cancelled') AND finished_at < ? ORDER BY finished_at LIMIT ?`),
  };
}

export class JobStore {
  private readonly db: Database.Database;
  private readonly stmts: ReturnType<typeof prepare>;

  constructor(store: StateStore) {
    store.migrateNamespace('jobs', JOB_MIGRATIONS);
    this.db = store.db;
    this.stmts = prepare(this.db);
  }

  /**
   * Starts a submission: the job row, `receiving`, with no records yet. With an Idempotency-Key
   * the owner already used, creates nothing and returns that job (the caller compares hashes).
   */
  begin(row: NewJobRow): { job: JobRow; created: boolean } {
    return this.db.transaction(() => {
      if (row.idempotency_key !== null) {
        const existing = this.getByKey(row.owner, row.idempotency_key);
        if (existing) return { job: existing, created: false };
      }
      this.stmts.insertJob.run(row);
      return { job: this.get(row.id)!, created: true };
    })();
  }

  /** Adds records `first`, `first + 1`… to a submission being received, in one transaction. */
  append(id: string, first: number, inputs: readonly InputRecord[]): void {
    this.db.transaction(() => {
      let i = 0;
      for (; i + ROWS_PER_INSERT <= inputs.length; i += ROWS_PER_INSERT) {
        const args: unknown[] = [];
        for (let k = i; k < i + ROWS_PER_INSERT; k++) args.push(id, first + k, JSON.stringify(inputs[k]));
        this.stmts.insertItems.run(args);
      }
      for (; i < inputs.length; i++) this.stmts.insertItem.run(id, first + i, JSON.stringify(inputs[i]));
      if (this.stmts.grow.run(inputs.length, new Date().toISOString(), id).changes !== 1) throw new Error(`job ${id} is not being received`);
    })();
  }

  /**
   * Makes a fully received submission a queued job. `check` runs inside the transaction (the
   * owner's quotas, counted without this job) and may throw to refuse it.
   */
  activate(id: string, check: () => void): JobRow {
    return this.db.transaction(() => {
      check();
      const now = new Date().toISOString();
      if (this.stmts.activate.run(now, now, id).changes !== 1) throw new Error(`job ${id} is not being received`);
      return this.get(id)!;
    })();
  }

  /**
   * Deletes up to `maxRows` records of a submission that will not become a job; once none are
   * left, the job row too. Returns true when it is all gone.
   */
  discardSome(id: string, maxRows: number): boolean {
    return this.db.transaction(() => {
      const bound = this.stmts.itemBound.get(id, maxRows) as { idx: number } | undefined;
      if (bound) {
        this.stmts.deleteItemsBelow.run(id, bound.idx);
        return false;
      }
      this.stmts.deleteItems.run(id);
      this.stmts.deleteJob.run(id);
      return true;
    })();
  }

  /** Deletes the submissions a previous process was still receiving; returns how many. */
  purgeReceiving(): number {
    const ids = (this.stmts.receiving.all() as { id: string }[]).map((r) => r.id);
    for (const id of ids) while (!this.discardSome(id, 10_000));
    return ids.length;
  }

  /** A job by id, whatever its state (`receiving` included: callers that answer clients filter). */
  get(id: string): JobRow | undefined {
    return this.stmts.get.get(id) as JobRow | undefined;
  }

  /** The job an owner submitted under an Idempotency-Key. */
  getByKey(owner: string, key: string): JobRow | undefined {
    return this.stmts.byKey.get(owner, key) as JobRow | undefined;
  }

  /** The owner's unfinished jobs and their records without a result (submissions being received excluded). */
  usage(owner: string): OwnerUsage {
    return this.stmts.usage.get(owner) as OwnerUsage;
  }

  /** Jobs newest first; only `owner`'s when given. Submissions being received are never listed. */
  list(opts: { owner?: string; status?: string; model?: string; limit: number; offset: number }): { jobs: JobRow[]; total: number } {
    const where: string[] = [`status != '${RECEIVING}'`];
    const args: unknown[] = [];
    if (opts.owner !== undefined) {
      where.push('owner = ?');
      args.push(opts.owner);
    }
    if (opts.status) {
      where.push('status = ?');
      args.push(opts.status);
    }
    if (opts.model) {
      where.push('model = ?');
      args.push(opts.model);
    }
    const w = `WHERE ${where.join(' AND ')}`;
    const jobs = this.db.prepare(`SELECT * FROM jobs ${w} ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?`).all(...args, opts.limit, opts.offset) as JobRow[];
    const total = (this.db.prepare(`SELECT COUNT(*) AS n FROM jobs ${w}`).get(...args) as { n: number }).n;
    return { jobs, total };
  }
  /** Jobs a previous process left unfinished. */
  active(): JobRow[] {
    return this.stmts.active.all() as JobRow[];
  }

  /** Pending records after index `after`, in input order. */
  pendingAfter(id: string, after: number, limit: number): { idx: number; input: InputRecord }[] {
    return (this.stmts.pendingAfter.all(id, after, limit) as { idx: number; input: string }[]).map((r) => ({ idx: r.idx, input: JSON.parse(r.input) as InputRecord }));
  }

  countPending(id: string): number {
    return (this.stmts.countPending.get(id) as { n: number }).n;
  }

  /** Writes results over pending records and bumps the counters, atomically; returns how many were new. */
  writeResults(id: string, results: OutputRecord[]): number {
    return this.db.transaction(() => {
      let done = 0;
      let failed = 0;
      for (const r of results) {
        const changed = this.stmts.writeResult.run(r.status, JSON.stringify(r), id, r.metadata.index).changes;
        if (changed) {
          done++;
          if (r.status === 'error') failed++;
        }
      }
      if (done) this.stmts.bump.run(done, failed, new Date().toISOString(), id);
      return done;
    })();
  }

  /** Records from index `from` on, in input order (pending ones included, with a null result). */
  results(id: string, from: number, limit: number): ResultRow[] {
    return this.stmts.results.all(id, from, limit) as ResultRow[];
  }

  markRunning(id: string): void {
    const now = new Date().toISOString();
    this.stmts.start.run(now, now, id);
  }

  /**
   * Deletes finished jobs (and their records and results) that ended before `before` (ISO
   * time), a few at a time so the write lock is never held long; returns how many went.
   */
  pruneFinished(before: string, batch = 50): number {
    let removed = 0;
    for (;;) {
      const ids = (this.stmts.finishedBefore.all(before, batch) as { id: string }[]).map((r) => r.id);
      if (ids.length === 0) return removed;
      this.db.transaction(() => {
        for (const id of ids) {
          this.stmts.deleteItems.run(id);
          this.stmts.deleteJob.run(id);
        }
      })();
      removed += ids.length;
      if (ids.length < batch) return removed;
    }
  }

  /** Moves an unfinished job to a final status; false when it had already finished. */
  finish(id: string, status: 'succeeded' | 'failed' | 'cancelled', error: string | null = null): boolean {
    const now = new Date().toISOString();
    return this.stmts.finish.run(status, error, now, now, id).changes > 0;
  }
}
