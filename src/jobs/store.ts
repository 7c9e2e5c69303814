// Jobs in SQLite (the gateway's state database, `jobs` migration namespace).
//
// A job row holds its spec and counters; one job_items row per input record holds the record
// (written with the job, in the same transaction, before the job is acknowledged) and, once
// done, its result. A result is written only over a `pending` row, in one transaction with the
// job's counters: after a crash, finished records are never run again and records that were in
// flight are simply still pending, so each record has exactly one result, read back in input
// order by its index.
import type Database from 'better-sqlite3';
import type { StateStore } from '../store/db.js';
import type { InputRecord, OutputRecord } from './formats.js';

const MIGRATIONS = [
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
];

export const JOB_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'cancelled'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];
export const TERMINAL: ReadonlySet<string> = new Set(['succeeded', 'failed', 'cancelled']);

export interface JobRow {
  id: string;
  name: string | null;
  kind: 'predict' | 'pipeline';
  /** The model (predict) or pipeline name. */
  model: string;
  task: string | null;
  spec: string;
  status: JobStatus;
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
}

export type NewJobRow = Omit<JobRow, 'done' | 'failed' | 'error' | 'started_at' | 'finished_at' | 'updated_at' | 'status'>;

export interface ResultRow {
  idx: number;
  status: 'pending' | 'success' | 'error';
  result: string | null;
}

function prepare(db: Database.Database) {
  return {
    insertJob: db.prepare(
      `INSERT INTO jobs (id, name, kind, model, task, spec, status, total, chunk_size, workers, priority, idempotency_key, request_hash, created_at, updated_at)
       VALUES (@id, @name, @kind, @model, @task, @spec, 'queued', @total, @chunk_size, @workers, @priority, @idempotency_key, @request_hash, @created_at, @created_at)`,
    ),
    insertItem: db.prepare('INSERT INTO job_items (job_id, idx, input) VALUES (?, ?, ?)'),
    get: db.prepare('SELECT * FROM jobs WHERE id = ?'),
    byKey: db.prepare('SELECT * FROM jobs WHERE idempotency_key = ?'),
    active: db.prepare(`SELECT * FROM jobs WHERE status IN ('queued', 'running') ORDER BY created_at, id`),
    pendingAfter: db.prepare(`SELECT idx, input FROM job_items WHERE job_id = ? AND idx > ? AND status = 'pending' ORDER BY idx LIMIT ?`),
    writeResult: db.prepare(`UPDATE job_items SET status = ?, result = ? WHERE job_id = ? AND idx = ? AND status = 'pending'`),
    bump: db.prepare('UPDATE jobs SET done = done + ?, failed = failed + ?, updated_at = ? WHERE id = ?'),
    results: db.prepare('SELECT idx, status, result FROM job_items WHERE job_id = ? AND idx >= ? ORDER BY idx LIMIT ?'),
    start: db.prepare(`UPDATE jobs SET status = 'running', started_at = COALESCE(started_at, ?), updated_at = ? WHERE id = ? AND status IN ('queued', 'running')`),
    finish: db.prepare(`UPDATE jobs SET status = ?, error = ?, finished_at = ?, updated_at = ? WHERE id = ? AND status IN ('queued', 'running')`),
    countPending: db.prepare(`SELECT COUNT(*) AS n FROM job_items WHERE job_id = ? AND status = 'pending'`),
  };
}

export class JobStore {
  private readonly db: Database.Database;
  private readonly stmts: ReturnType<typeof prepare>;

  constructor(store: StateStore) {
    store.migrateNamespace('jobs', MIGRATIONS);
    this.db = store.db;
    this.stmts = prepare(this.db);
  }

  /**
   * Creates a job with all its records in one transaction. With an idempotency key already in
   * use, creates nothing and returns the existing job (the caller compares request hashes).
   */
  create(row: NewJobRow, inputs: InputRecord[]): { job: JobRow; created: boolean } {
    return this.db.transaction(() => {
      if (row.idempotency_key !== null) {
        const existing = this.stmts.byKey.get(row.idempotency_key) as JobRow | undefined;
        if (existing) return { job: existing, created: false };
      }
      this.stmts.insertJob.run(row);
      inputs.forEach((input, i) => this.stmts.insertItem.run(row.id, i, JSON.stringify(input)));
      return { job: this.get(row.id)!, created: true };
    })();
  }

  get(id: string): JobRow | undefined {
    return this.stmts.get.get(id) as JobRow | undefined;
  }

  getByKey(key: string): JobRow | undefined {
    return this.stmts.byKey.get(key) as JobRow | undefined;
  }

  list(opts: { status?: string; model?: string; limit: number; offset: number }): { jobs: JobRow[]; total: number } {
    const where: string[] = [];
    const args: unknown[] = [];
    if (opts.status) {
      where.push('status = ?');
      args.push(opts.status);
    }
    if (opts.model) {
      where.push('model = ?');
      args.push(opts.model);
    }
    const w = where.length ? `WHERE ${where.join(' AND ')}` : '';
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

  /** Moves an unfinished job to a final status; false when it had already finished. */
  finish(id: string, status: 'succeeded' | 'failed' | 'cancelled', error: string | null = null): boolean {
    const now = new Date().toISOString();
    return this.stmts.finish.run(status, error, now, now, id).changes > 0;
  }
}
