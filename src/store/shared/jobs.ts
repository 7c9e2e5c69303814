// Batch jobs in a state database several gateways share (PostgreSQL), or in the embedded
// SQLite file: the same tables as src/jobs/store.ts (`jobs`, `job_items`, same migration
// namespace), plus `job_chunks`, which lets any gateway run any job.
//
// A job's records are cut into chunks (index ranges) when it is queued. A gateway claims an open
// chunk whose lease is free or expired (`FOR UPDATE SKIP LOCKED` on PostgreSQL: two gateways
// never wait on, or take, the same one), renews its leases by heartbeat while it works, and
// commits the chunk's results in one transaction. A result is written only over a `pending`
// record, so when a lease expires (its gateway died) and another gateway runs the chunk again,
// every record still ends with exactly one result; results are read back by index, in input
// order. Lease times come from the database's clock, so gateways' clocks need not agree. The
// gateway that commits a job's last chunk finishes the job.
import type { InputRecord, OutputRecord } from '../../jobs/formats.js';
import { JOB_MIGRATIONS, RECEIVING, type JobRow, type NewJobRow, type OwnerUsage, type ResultRow } from '../../jobs/store.js';
import type { Migration, SqlClient, SqlRunner } from '../sql.js';

const PG_JOBS = `CREATE TABLE jobs (
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
  CREATE INDEX jobs_status ON jobs(status);
  CREATE INDEX jobs_created ON jobs(created_at);
  CREATE INDEX jobs_owner_status ON jobs(owner, status);
  CREATE UNIQUE INDEX jobs_owner_idempotency ON jobs(owner, idempotency_key);
  CREATE TABLE job_items (
    job_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    input TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    result TEXT,
    PRIMARY KEY (job_id, idx)
  );`;

/** The `jobs` namespace: SQLite keeps its history (src/jobs/store.ts); PostgreSQL starts at its end state. */
export const SHARED_JOB_MIGRATIONS: Migration[] = [
  { sqlite: JOB_MIGRATIONS[0]!, postgres: PG_JOBS },
  { sqlite: JOB_MIGRATIONS[1]!, postgres: 'SELECT 1' },
];

export const CHUNK_MIGRATIONS: Migration[] = [
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

const ACTIVE = `('queued', 'running')`;
const ROWS_PER_INSERT = 200;

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

/** The database's clock in ms since the epoch, so that leases do not depend on gateways' clocks. */
function nowMs(q: SqlRunner): string {
  return q.dialect === 'postgres' ? 'CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)' : "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)";
}

function isUniqueViolation(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

export class SharedJobStore {
  private constructor(readonly sql: SqlClient) {}

  static async open(sql: SqlClient): Promise<SharedJobStore> {
    await sql.migrate('jobs', SHARED_JOB_MIGRATIONS);
    await sql.migrate('job_chunks', CHUNK_MIGRATIONS);
    return new SharedJobStore(sql);
  }

  /** As JobStore.begin: a `receiving` job row, or the job the owner already made under the Idempotency-Key. */
  async begin(row: NewJobRow): Promise<{ job: JobRow; created: boolean }> {
    if (row.idempotency_key !== null) {
      const existing = await this.getByKey(row.owner, row.idempotency_key);
      if (existing) return { job: existing, created: false };
    }
    try {
      await this.sql.run(
        `INSERT INTO jobs (id, name, kind, model, task, spec, status, total, chunk_size, workers, priority, idempotency_key, request_hash, created_at, updated_at, owner, owner_name)
         VALUES (?, ?, ?, ?, ?, ?, '${RECEIVING}', 0, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        [row.id, row.name, row.kind, row.model, row.task, row.spec, row.chunk_size, row.workers, row.priority, row.idempotency_key, row.request_hash, row.created_at, row.created_at, row.owner, row.owner_name],
      );
    } catch (e) {
      // Another gateway took the same Idempotency-Key between the look-up and the insert.
      if (row.idempotency_key !== null && isUniqueViolation(e)) {
        const existing = await this.getByKey(row.owner, row.idempotency_key);
        if (existing) return { job: existing, created: false };
      }
      throw e;
    }
    return { job: (await this.get(row.id))!, created: true };
  }

  /** Adds records `first`, `first + 1`… to a submission being received, in one transaction. */
  async append(id: string, first: number, inputs: readonly InputRecord[]): Promise<void> {
    await this.sql.tx(async (q) => {
      for (let i = 0; i < inputs.length; i += ROWS_PER_INSERT) {
        const n = Math.min(ROWS_PER_INSERT, inputs.length - i);
        const args: unknown[] = [];
        for (let k = i; k < i + n; k++) args.push(id, first + k, JSON.stringify(inputs[k]));
        await q.run(`INSERT INTO job_items (job_id, idx, input) VALUES ${Array<string>(n).fill('(?, ?, ?)').join(', ')}`, args);
      }
      const grown = await q.run(`UPDATE jobs SET total = total + ?, updated_at = ? WHERE id = ? AND status = '${RECEIVING}'`, [inputs.length, new Date().toISOString(), id]);
      if (grown !== 1) throw new Error(`job ${id} is not being received`);
    });
  }

  /** Queues a fully received submission and cuts it into chunks; `check` (quotas) may throw to refuse it. */
  async activate(id: string, check: (q: SqlRunner) => Promise<void> | void = () => undefined): Promise<JobRow> {
    await this.sql.tx(async (q) => {
      await check(q);
      const [job] = await q.query<{ total: number; chunk_size: number }>(`SELECT total, chunk_size FROM jobs WHERE id = ? AND status = '${RECEIVING}'`, [id]);
      if (!job) throw new Error(`job ${id} is not being received`);
      const total = Number(job.total);
      const size = Math.max(1, Number(job.chunk_size));
      const bounds: number[] = [];
      for (let lo = 0; lo < total; lo += size) bounds.push(lo);
      for (let i = 0; i < bounds.length; i += ROWS_PER_INSERT) {
        const part = bounds.slice(i, i + ROWS_PER_INSERT);
        await q.run(`INSERT INTO job_chunks (job_id, lo, hi) VALUES ${part.map(() => '(?, ?, ?)').join(', ')}`, part.flatMap((lo) => [id, lo, Math.min(lo + size, total)]));
      }
      const now = new Date().toISOString();
      await q.run(`UPDATE jobs SET status = 'queued', created_at = ?, updated_at = ? WHERE id = ? AND status = '${RECEIVING}'`, [now, now, id]);
    });
    return (await this.get(id))!;
  }

  async get(id: string): Promise<JobRow | undefined> {
    const [row] = await this.sql.query<JobRow>('SELECT * FROM jobs WHERE id = ?', [id]);
    return row;
  }

  async getByKey(owner: string, key: string): Promise<JobRow | undefined> {
    const [row] = await this.sql.query<JobRow>('SELECT * FROM jobs WHERE owner = ? AND idempotency_key = ?', [owner, key]);
    return row;
  }

  async usage(owner: string): Promise<OwnerUsage> {
    const [row] = await this.sql.query<OwnerUsage>(
      `SELECT CAST(COUNT(*) AS INTEGER) AS jobs, CAST(COALESCE(SUM(total - done), 0) AS INTEGER) AS records FROM jobs WHERE owner = ? AND status IN ${ACTIVE}`,
      [owner],
    );
    return { jobs: Number(row?.jobs ?? 0), records: Number(row?.records ?? 0) };
  }

  /** Jobs newest first; only `owner`'s when given. Submissions being received are never listed. */
  async list(opts: { owner?: string; status?: string; model?: string; limit: number; offset: number }): Promise<{ jobs: JobRow[]; total: number }> {
    const where: string[] = [`status != '${RECEIVING}'`];
    const args: unknown[] = [];
    for (const [col, v] of [['owner', opts.owner], ['status', opts.status], ['model', opts.model]] as const) {
      if (v !== undefined && v !== '') {
        where.push(`${col} = ?`);
        args.push(v);
      }
    }
    const w = `WHERE ${where.join(' AND ')}`;
    const jobs = await this.sql.query<JobRow>(`SELECT * FROM jobs ${w} ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?`, [...args, opts.limit, opts.offset]);
    const [n] = await this.sql.query<{ n: number }>(`SELECT CAST(COUNT(*) AS INTEGER) AS n FROM jobs ${w}`, args);
    return { jobs, total: Number(n?.n ?? 0) };
  }

  /**
   * Deletes up to `maxRows` records of a submission that will not become a job; once none are
   * left, the job row too. Returns true when it is all gone.
   */
  async discardSome(id: string, maxRows: number): Promise<boolean> {
    return this.sql.tx(async (q) => {
      const [bound] = await q.query<{ idx: number }>('SELECT idx FROM job_items WHERE job_id = ? ORDER BY idx LIMIT 1 OFFSET ?', [id, maxRows]);
      if (bound) {
        await q.run('DELETE FROM job_items WHERE job_id = ? AND idx < ?', [id, bound.idx]);
        return false;
      }
      await q.run('DELETE FROM job_items WHERE job_id = ?', [id]);
      await q.run('DELETE FROM job_chunks WHERE job_id = ?', [id]);
      await q.run('DELETE FROM jobs WHERE id = ?', [id]);
      return true;
    });
  }

  /**
   * Deletes submissions left half-received for longer than `olderThanMs` (their gateway died
   * mid-upload; a younger one may still be arriving at another gateway). Returns how many.
   */
  async purgeReceiving(olderThanMs: number): Promise<number> {
    const before = new Date(Date.now() - olderThanMs).toISOString();
    const rows = await this.sql.query<{ id: string }>(`SELECT id FROM jobs WHERE status = '${RECEIVING}' AND updated_at < ?`, [before]);
    for (const r of rows) while (!(await this.discardSome(r.id, 10_000)));
    return rows.length;
  }

  /** Deletes finished jobs that ended before `before` (ISO time), a few at a time; returns how many went. */
  async pruneFinished(before: string, batch = 50): Promise<number> {
    let removed = 0;
    for (;;) {
      const ids = (await this.sql.query<{ id: string }>(`SELECT id FROM jobs WHERE status IN ('succeeded', 'failed', 'cancelled') AND finished_at < ? ORDER BY finished_at LIMIT ?`, [before, batch])).map((r) => r.id);
      for (const id of ids) {
        await this.sql.tx(async (q) => {
          await q.run('DELETE FROM job_items WHERE job_id = ?', [id]);
          await q.run('DELETE FROM job_chunks WHERE job_id = ?', [id]);
          await q.run('DELETE FROM jobs WHERE id = ?', [id]);
        });
      }
      removed += ids.length;
      if (ids.length < batch) return removed;
    }
  }

  /** Unfinished jobs, oldest first. */
  async active(): Promise<JobRow[]> {
    return this.sql.query<JobRow>(`SELECT * FROM jobs WHERE status IN ${ACTIVE} ORDER BY created_at, id`);
  }

  /**
   * Takes the lease on the next open chunk whose lease is free or expired, of the most urgent
   * unfinished job (priority, then age), for `ttlMs`; null when there is none. Marks the job running.
   */
  async claim(owner: string, ttlMs: number, onlyJob?: string): Promise<ClaimedChunk | null> {
    const got = await this.sql.tx(async (q) => {
      const now = nowMs(q);
      const lock = q.dialect === 'postgres' ? 'FOR UPDATE OF c SKIP LOCKED' : '';
      const [c] = await q.query<{ job_id: string; lo: number; hi: number; attempts: number; job_status: string }>(
        `SELECT c.job_id, c.lo, c.hi, c.attempts, j.status AS job_status FROM job_chunks c JOIN jobs j ON j.id = c.job_id
         WHERE c.status = 'open' AND (c.lease_until IS NULL OR c.lease_until < ${now}) AND j.status IN ${ACTIVE}${onlyJob ? ' AND c.job_id = ?' : ''}
         ORDER BY j.priority DESC, j.created_at, j.id, c.lo LIMIT 1 ${lock}`,
        onlyJob ? [onlyJob] : [],
      );
      if (!c) return null;
      await q.run(`UPDATE job_chunks SET lease_owner = ?, lease_until = ${now} + ?, attempts = attempts + 1 WHERE job_id = ? AND lo = ?`, [owner, ttlMs, c.job_id, c.lo]);
      // Only the first claim touches the job row: the others never wait on a commit's lock of it.
      if (c.job_status === 'queued') {
        const iso = new Date().toISOString();
        await q.run(`UPDATE jobs SET status = 'running', started_at = COALESCE(started_at, ?), updated_at = ? WHERE id = ? AND status = 'queued'`, [iso, iso, c.job_id]);
      }
      return { jobId: c.job_id, lo: Number(c.lo), hi: Number(c.hi), attempts: Number(c.attempts) + 1 };
    });
    if (!got) return null;
    const rows = await this.sql.query<{ idx: number; input: string }>(`SELECT idx, input FROM job_items WHERE job_id = ? AND idx >= ? AND idx < ? AND status = 'pending' ORDER BY idx`, [got.jobId, got.lo, got.hi]);
    return { ...got, items: rows.map((r) => ({ idx: Number(r.idx), input: JSON.parse(r.input) as InputRecord })) };
  }

  /**
   * Renews every lease `owner` holds on a chunk of an unfinished job; returns the chunks still
   * held (`jobId:lo`). One missing was taken over after its lease expired, or its job ended.
   */
  async renew(owner: string, ttlMs: number): Promise<Set<string>> {
    const now = nowMs(this.sql);
    const rows = await this.sql.query<{ job_id: string; lo: number }>(
      `UPDATE job_chunks SET lease_until = ${now} + ?
       WHERE lease_owner = ? AND status = 'open' AND job_id IN (SELECT id FROM jobs WHERE status IN ${ACTIVE})
       RETURNING job_id, lo`,
      [ttlMs, owner],
    );
    return new Set(rows.map((r) => `${r.job_id}:${Number(r.lo)}`));
  }

  /** Gives up `owner`'s leases at once (a gateway stopping cleanly), so others need not wait for them to expire. */
  async release(owner: string): Promise<number> {
    return this.sql.run(`UPDATE job_chunks SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = ? AND status = 'open'`, [owner]);
  }

  /**
   * Writes a chunk's results over its pending records, bumps the job's counters and closes the
   * chunk, in one transaction; the commit that closes a job's last chunk finishes the job.
   * Nothing is written once the job has ended (cancelled).
   */
  async commit(jobId: string, lo: number, results: readonly OutputRecord[]): Promise<CommitOutcome> {
    const ended = new Error('job ended');
    try {
      const committed = await this.sql.tx(async (q) => {
        // Every result in one statement, over pending records only; the rows it changed come back.
        let written = 0;
        let failed = 0;
        for (let i = 0; i < results.length; i += ROWS_PER_INSERT) {
          const part = results.slice(i, i + ROWS_PER_INSERT);
          const changed = await q.query<{ status: string }>(
            `WITH v(idx, status, result) AS (VALUES ${part.map(() => '(CAST(? AS INTEGER), ?, ?)').join(', ')})
             UPDATE job_items SET status = v.status, result = v.result FROM v
             WHERE job_items.job_id = ? AND job_items.idx = v.idx AND job_items.status = 'pending'
             RETURNING job_items.status`,
            [...part.flatMap((r) => [r.metadata.index, r.status, JSON.stringify(r)]), jobId],
          );
          written += changed.length;
          failed += changed.filter((r) => r.status === 'error').length;
        }
        // The chunk closes, then the counters: taking the job row's lock last keeps it for one round
        // trip, so commits of one job hardly wait on each other. A job that ended meanwhile
        // (cancelled) gets nothing: the results above are rolled back.
        await q.run(`UPDATE job_chunks SET status = 'done', lease_owner = NULL, lease_until = NULL WHERE job_id = ? AND lo = ?`, [jobId, lo]);
        if ((await q.run(`UPDATE jobs SET done = done + ?, failed = failed + ?, updated_at = ? WHERE id = ? AND status IN ${ACTIVE}`, [written, failed, new Date().toISOString(), jobId])) !== 1) throw ended;
        return written;
      });
      // After the commit: of two last chunks committed at once, the later one sees both closed.
      const finished = await this.finishIfDone(jobId);
      return finished ? { written: committed, finished } : { written: committed };
    } catch (e) {
      if (e === ended) return { written: 0 };
      throw e;
    }
  }

  /**
   * Finishes an unfinished job whose chunks are all closed (succeeded, or failed with the count
   * of records left without a result); returns its new status, or null (chunks open, or already
   * finished by another gateway).
   */
  async finishIfDone(jobId: string): Promise<'succeeded' | 'failed' | null> {
    const iso = new Date().toISOString();
    const pending = `(SELECT COUNT(*) FROM job_items WHERE job_id = ? AND status = 'pending')`;
    const [row] = await this.sql.query<{ status: 'succeeded' | 'failed' }>(
      `UPDATE jobs SET
         status = CASE WHEN ${pending} = 0 THEN 'succeeded' ELSE 'failed' END,
         error = CASE WHEN ${pending} = 0 THEN NULL ELSE CAST(${pending} AS TEXT) || ' records were left without a result' END,
         finished_at = ?, updated_at = ?
       WHERE id = ? AND status IN ${ACTIVE} AND NOT EXISTS (SELECT 1 FROM job_chunks WHERE job_id = ? AND status = 'open')
       RETURNING status`,
      [jobId, jobId, jobId, iso, iso, jobId, jobId],
    );
    return row?.status ?? null;
  }

  /** Finishes every unfinished job whose chunks are all closed (a gateway died between its last commit and the finish). */
  async sweepFinished(): Promise<number> {
    const rows = await this.sql.query<{ id: string }>(
      `SELECT id FROM jobs j WHERE status = 'running' AND NOT EXISTS (SELECT 1 FROM job_chunks c WHERE c.job_id = j.id AND c.status = 'open')`,
    );
    let n = 0;
    for (const r of rows) if (await this.finishIfDone(r.id)) n++;
    return n;
  }

  /** Records from index `from` on, in input order (pending ones included, with a null result). */
  async results(id: string, from: number, limit: number): Promise<ResultRow[]> {
    const rows = await this.sql.query<ResultRow>('SELECT idx, status, result FROM job_items WHERE job_id = ? AND idx >= ? ORDER BY idx LIMIT ?', [id, from, limit]);
    return rows.map((r) => ({ ...r, idx: Number(r.idx) }));
  }

  /** Moves an unfinished job to a final status (cancel, fatal error); false when it had already finished. */
  async finish(id: string, status: 'succeeded' | 'failed' | 'cancelled', error: string | null = null): Promise<boolean> {
    const now = new Date().toISOString();
    return (await this.sql.run(`UPDATE jobs SET status = ?, error = ?, finished_at = ?, updated_at = ? WHERE id = ? AND status IN ${ACTIVE}`, [status, error, now, now, id])) > 0;
  }
}
