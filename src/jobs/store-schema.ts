// The job store's schema: the tables and their migrations (SQLite keeps the history, PostgreSQL
// starts at the end state), the rows the store reads and writes, and the SQL both dialects
// share (store.ts).
import type { Migration, SqlRunner } from '../store/sql.js';
import type { InputRecord } from './formats.js';

/** Owner of the jobs stored before jobs had owners: no key matches it, only admin keys see them. */
export const LEGACY_OWNER = 'legacy';

/** The columns every version of the jobs table has; `idempotency` is the key column's type. */
function jobsColumns(idempotency: string): string {
  return `id TEXT PRIMARY KEY,
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
     idempotency_key ${idempotency},
     request_hash TEXT,
     created_at TEXT NOT NULL,
     started_at TEXT,
     finished_at TEXT,
     updated_at TEXT NOT NULL`;
}

/** The jobs table as it is now: owners, and Idempotency-Keys unique per owner. */
function jobsTable(name: string): string {
  return `CREATE TABLE ${name} (
     ${jobsColumns('TEXT')},
     owner TEXT NOT NULL,
     owner_name TEXT
   )`;
}

const JOBS_INDEXES = `CREATE INDEX jobs_status ON jobs(status);
   CREATE INDEX jobs_created ON jobs(created_at);
   CREATE INDEX jobs_owner_status ON jobs(owner, status);
   CREATE UNIQUE INDEX jobs_owner_idempotency ON jobs(owner, idempotency_key);`;

function jobItemsTable(options: string): string {
  return `CREATE TABLE job_items (
     job_id TEXT NOT NULL,
     idx INTEGER NOT NULL,
     input TEXT NOT NULL,
     status TEXT NOT NULL DEFAULT 'pending',
     result TEXT,
     PRIMARY KEY (job_id, idx)
   )${options};`;
}

/** The `jobs` namespace in SQLite, with its history (the first schema had no owners). */
export const JOB_MIGRATIONS = [
  `CREATE TABLE jobs (
     ${jobsColumns('TEXT UNIQUE')}
   );
   CREATE INDEX jobs_status ON jobs(status);
   CREATE INDEX jobs_created ON jobs(created_at);
   ${jobItemsTable(' WITHOUT ROWID')}`,
  // Owners, and Idempotency-Keys unique per owner (two keys may use the same one). SQLite cannot
  // drop a column's UNIQUE, so the table is rebuilt.
  `${jobsTable('jobs_v2')};
   INSERT INTO jobs_v2 (id, name, kind, model, task, spec, status, total, done, failed, chunk_size, workers, priority, error,
                        idempotency_key, request_hash, created_at, started_at, finished_at, updated_at, owner, owner_name)
     SELECT id, name, kind, model, task, spec, status, total, done, failed, chunk_size, workers, priority, error,
            idempotency_key, request_hash, created_at, started_at, finished_at, updated_at, '${LEGACY_OWNER}', NULL FROM jobs;
   DROP TABLE jobs;
   ALTER TABLE jobs_v2 RENAME TO jobs;
   ${JOBS_INDEXES}`,
];

/** The `jobs` namespace for both databases: SQLite keeps its history, PostgreSQL starts at its end state. */
export const JOB_STORE_MIGRATIONS: Migration[] = [
  { sqlite: JOB_MIGRATIONS[0]!, postgres: `${jobsTable('jobs')}; ${JOBS_INDEXES} ${jobItemsTable('')}` },
  { sqlite: JOB_MIGRATIONS[1]!, postgres: 'SELECT 1' },
];

export const CHUNK_MIGRATIONS = [
  `CREATE TABLE job_chunks (
     job_id TEXT NOT NULL,
     lo INTEGER NOT NULL,
     hi INTEGER NOT NULL,
     status TEXT NOT NULL DEFAULT 'open',
     lease_owner TEXT,
     lease_until BIGINT,
     attempts INTEGER NOT NULL DEFAULT 0,
     PRIMARY KEY (job_id, lo)
   );
   CREATE INDEX job_chunks_open ON job_chunks(status, job_id, lo);`,
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

export type NewJobRow = Omit<
  JobRow,
  'total' | 'done' | 'failed' | 'error' | 'started_at' | 'finished_at' | 'updated_at' | 'status'
>;

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

/** A chunk a gateway holds the lease on, with its records' inputs in input order. */
export interface ClaimedChunk {
  jobId: string;
  lo: number;
  hi: number;
  attempts: number;
  items: { idx: number; input: InputRecord }[];
}

export interface CommitOutcome {
  /** Results written (records that were still pending). */
  written: number;
  /** Set when this commit finished the job. */
  finished?: 'succeeded' | 'failed';
}

/** The statuses of an unfinished job, as SQL. */
export const ACTIVE = `('queued', 'running')`;

/** The database's clock in ms since the epoch, so that leases do not depend on gateways' clocks. */
export function nowMs(q: SqlRunner): string {
  return q.dialect === 'postgres'
    ? 'CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)'
    : "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)";
}

/** A write refused by a unique index (PostgreSQL or SQLite). */
export function isUniqueViolation(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}
