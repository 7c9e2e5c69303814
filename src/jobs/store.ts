// Batch jobs, written once over the async SQL surface (src/store/sql.ts): in the gateway's own
// SQLite file by default, run by that gateway (runner.ts); in PostgreSQL, shared by every
// gateway given the same database_url, any of which runs, answers and cancels any job
// (src/store/shared/job-worker.ts). The same tables in both (`jobs`, `job_items`, and
// `job_chunks` for the shared runner), the same migration namespaces: store-schema.ts, whose
// names are importable from here too.
//
// A job row holds its spec, counters and owner (the API key that created it); one job_items
// row per input record holds the record and, once done, its result. A submission is written
// while it is parsed: the job row first, `receiving` (invisible to every reader and to the job
// loops), then its records in batches, then one transaction that checks the owner's quotas and
// turns it `queued`; a submission that fails part way is deleted, and one a crash interrupted
// is deleted later (its client never had an answer). A result is written only over a `pending`
// row, in one transaction with the job's counters: after a crash, finished records are never
// run again and records that were in flight are simply still pending, so each record has
// exactly one result, read back in input order by its index.
//
// Shared store (`leases`): a job's records are cut into chunks (index ranges) when it is
// queued. A gateway claims an open chunk whose lease is free or expired (`FOR UPDATE SKIP
// LOCKED` on PostgreSQL: two gateways never wait on, or take, the same one), renews its leases
// by heartbeat while it works, and commits the chunk's results in one transaction; when a lease
// expires (its gateway died) another gateway runs the chunk again, and the pending-only write
// still leaves one result per record. Lease times come from the database's clock, so gateways'
// clocks need not agree. The gateway that commits a job's last chunk finishes the job.
import type { StateStore } from '../store/db.js';
import { SqliteClient, type SqlClient, type SqlRunner } from '../store/sql.js';
import type { InputRecord, OutputRecord } from './formats.js';
import {
  CHUNK_MIGRATIONS,
  JOB_MIGRATIONS,
  JOB_STORE_MIGRATIONS,
  ACTIVE,
  isUniqueViolation,
  nowMs,
  RECEIVING,
  type ClaimedChunk,
  type CommitOutcome,
  type JobRow,
  type NewJobRow,
  type OwnerUsage,
  type ResultRow,
} from './store-schema.js';

export * from './store-schema.js';

const ROWS_PER_INSERT = 200;

export interface JobStoreOptions {
  /**
   * Cut each queued job into chunks that any gateway may claim (the shared store, run by
   * job-worker.ts). Off for the embedded store, whose jobs its own runner runs (runner.ts).
   */
  leases?: boolean;
}

export class JobStore {
  private constructor(
    readonly sql: SqlClient,
    /** Jobs are cut into leased chunks (the shared store). */
    readonly leases: boolean,
  ) {}

  /** Applies the migrations not applied yet (at start, both databases) and opens the store; leased chunks by default. */
  static async open(sql: SqlClient, opts: JobStoreOptions = {}): Promise<JobStore> {
    await sql.migrate('jobs', JOB_STORE_MIGRATIONS);
    await sql.migrate('job_chunks', CHUNK_MIGRATIONS);
    return new JobStore(sql, opts.leases ?? true);
  }

  /**
   * The jobs in the gateway's own SQLite file, over its connection: statements of this store
   * then never wait on another connection of this process. Migrated synchronously, so the job
   * routes have their store before anything is awaited.
   */
  static embedded(state: StateStore): JobStore {
    state.migrateNamespace('jobs', JOB_MIGRATIONS);
    state.migrateNamespace('job_chunks', CHUNK_MIGRATIONS);
    return new JobStore(new SqliteClient(state.db), false);
  }

  /**
   * Starts a submission: the job row, `receiving`, with no records yet. With an Idempotency-Key
   * the owner already used, creates nothing and returns that job (the caller compares hashes).
   */
  async begin(row: NewJobRow): Promise<{ job: JobRow; created: boolean }> {
    if (row.idempotency_key !== null) {
      const existing = await this.getByKey(row.owner, row.idempotency_key);
      if (existing) return { job: existing, created: false };
    }
    try {
      await this.sql.run(
        `INSERT INTO jobs (id, name, kind, model, task, spec, status, total, chunk_size, workers, priority, idempotency_key, request_hash, created_at, updated_at, owner, owner_name)
         VALUES (?, ?, ?, ?, ?, ?, '${RECEIVING}', 0, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
        [
          row.id,
          row.name,
          row.kind,
          row.model,
          row.task,
          row.spec,
          row.chunk_size,
          row.workers,
          row.priority,
          row.idempotency_key,
          row.request_hash,
          row.created_at,
          row.created_at,
          row.owner,
          row.owner_name,
        ],
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
        await q.run(
          `INSERT INTO job_items (job_id, idx, input) VALUES ${Array<string>(n).fill('(?, ?, ?)').join(', ')}`,
          args,
        );
      }
      const grown = await q.run(
        `UPDATE jobs SET total = total + ?, updated_at = ? WHERE id = ? AND status = '${RECEIVING}'`,
        [inputs.length, new Date().toISOString(), id],
      );
      if (grown !== 1) throw new Error(`job ${id} is not being received`);
    });
  }

  /**
   * Makes a fully received submission a queued job (cut into chunks, with leases). `check` runs
   * inside the transaction, after every other activation of the same owner has committed or
   * waits for this one (the owner's quotas, counted with `q`, without this job), and may throw
   * to refuse it.
   */
  async activate(id: string, check: (q: SqlRunner) => Promise<void> | void = () => undefined): Promise<JobRow> {
    await this.sql.tx(async (q) => {
      const [job] = await q.query<{ owner: string; total: number; chunk_size: number }>(
        `SELECT owner, total, chunk_size FROM jobs WHERE id = ? AND status = '${RECEIVING}'`,
        [id],
      );
      if (!job) throw new Error(`job ${id} is not being received`);
      // Two gateways activating jobs of one key take turns, so neither counts without the other's
      // (SQLite's BEGIN IMMEDIATE already serialises every writer).
      if (q.dialect === 'postgres')
        await q.query(`SELECT pg_advisory_xact_lock(hashtext('isomodel.jobs.owner'), hashtext(CAST(? AS TEXT)))`, [
          job.owner,
        ]);
      await check(q);
      const total = Number(job.total);
      const size = Math.max(1, Number(job.chunk_size));
      const bounds: number[] = [];
      if (this.leases) for (let lo = 0; lo < total; lo += size) bounds.push(lo);
      for (let i = 0; i < bounds.length; i += ROWS_PER_INSERT) {
        const part = bounds.slice(i, i + ROWS_PER_INSERT);
        await q.run(
          `INSERT INTO job_chunks (job_id, lo, hi) VALUES ${part.map(() => '(?, ?, ?)').join(', ')}`,
          part.flatMap((lo) => [id, lo, Math.min(lo + size, total)]),
        );
      }
      const now = new Date().toISOString();
      await q.run(
        `UPDATE jobs SET status = 'queued', created_at = ?, updated_at = ? WHERE id = ? AND status = '${RECEIVING}'`,
        [now, now, id],
      );
    });
    return (await this.get(id))!;
  }

  /** A job by id, whatever its state (`receiving` included: callers that answer clients filter). */
  async get(id: string, q: SqlRunner = this.sql): Promise<JobRow | undefined> {
    const [row] = await q.query<JobRow>('SELECT * FROM jobs WHERE id = ?', [id]);
    return row;
  }

  /** The job an owner submitted under an Idempotency-Key. */
  async getByKey(owner: string, key: string): Promise<JobRow | undefined> {
    const [row] = await this.sql.query<JobRow>('SELECT * FROM jobs WHERE owner = ? AND idempotency_key = ?', [
      owner,
      key,
    ]);
    return row;
  }

  /** The owner's unfinished jobs and their records without a result (submissions being received excluded); `q`: inside a transaction. */
  async usage(owner: string, q: SqlRunner = this.sql): Promise<OwnerUsage> {
    const [row] = await q.query<OwnerUsage>(
      `SELECT CAST(COUNT(*) AS INTEGER) AS jobs, CAST(COALESCE(SUM(total - done), 0) AS INTEGER) AS records FROM jobs WHERE owner = ? AND status IN ${ACTIVE}`,
      [owner],
    );
    return { jobs: Number(row?.jobs ?? 0), records: Number(row?.records ?? 0) };
  }

  /** Jobs newest first; only `owner`'s when given. Submissions being received are never listed. */
  async list(
    opts: { owner?: string; status?: string; model?: string; limit: number; offset: number },
    q: SqlRunner = this.sql,
  ): Promise<{ jobs: JobRow[]; total: number }> {
    const where: string[] = [`status != '${RECEIVING}'`];
    const args: unknown[] = [];
    for (const [col, v] of [
      ['owner', opts.owner],
      ['status', opts.status],
      ['model', opts.model],
    ] as const) {
      if (v !== undefined && v !== '') {
        where.push(`${col} = ?`);
        args.push(v);
      }
    }
    const w = `WHERE ${where.join(' AND ')}`;
    const jobs = await q.query<JobRow>(`SELECT * FROM jobs ${w} ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?`, [
      ...args,
      opts.limit,
      opts.offset,
    ]);
    const [n] = await q.query<{ n: number }>(`SELECT CAST(COUNT(*) AS INTEGER) AS n FROM jobs ${w}`, args);
    return { jobs, total: Number(n?.n ?? 0) };
  }

  /**
   * Deletes up to `maxRows` records of a submission that will not become a job; once none are
   * left, the job row too. Returns true when it is all gone.
   */
  async discardSome(id: string, maxRows: number): Promise<boolean> {
    return this.sql.tx(async (q) => {
      const [bound] = await q.query<{ idx: number }>(
        'SELECT idx FROM job_items WHERE job_id = ? ORDER BY idx LIMIT 1 OFFSET ?',
        [id, maxRows],
      );
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
   * Deletes submissions last written to more than `olderThanMs` ago: their gateway died
   * mid-upload, and their client never had an answer (a younger one may still be arriving,
   * here or at another gateway). Returns how many.
   */
  async purgeReceiving(olderThanMs: number): Promise<number> {
    const before = new Date(Date.now() - olderThanMs).toISOString();
    const rows = await this.sql.query<{ id: string }>(
      `SELECT id FROM jobs WHERE status = '${RECEIVING}' AND updated_at < ?`,
      [before],
    );
    for (const r of rows) while (!(await this.discardSome(r.id, 10_000)));
    return rows.length;
  }

  /** Deletes finished jobs that ended before `before` (ISO time), a few at a time; returns how many went. */
  async pruneFinished(before: string, batch = 50): Promise<number> {
    let removed = 0;
    for (;;) {
      const ids = (
        await this.sql.query<{ id: string }>(
          `SELECT id FROM jobs WHERE status IN ('succeeded', 'failed', 'cancelled') AND finished_at < ? ORDER BY finished_at LIMIT ?`,
          [before, batch],
        )
      ).map((r) => r.id);
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
      await q.run(
        `UPDATE job_chunks SET lease_owner = ?, lease_until = ${now} + ?, attempts = attempts + 1 WHERE job_id = ? AND lo = ?`,
        [owner, ttlMs, c.job_id, c.lo],
      );
      // Only the first claim touches the job row: the others never wait on a commit's lock of it.
      if (c.job_status === 'queued') {
        const iso = new Date().toISOString();
        await q.run(
          `UPDATE jobs SET status = 'running', started_at = COALESCE(started_at, ?), updated_at = ? WHERE id = ? AND status = 'queued'`,
          [iso, iso, c.job_id],
        );
      }
      return { jobId: c.job_id, lo: Number(c.lo), hi: Number(c.hi), attempts: Number(c.attempts) + 1 };
    });
    if (!got) return null;
    const rows = await this.sql.query<{ idx: number; input: string }>(
      `SELECT idx, input FROM job_items WHERE job_id = ? AND idx >= ? AND idx < ? AND status = 'pending' ORDER BY idx`,
      [got.jobId, got.lo, got.hi],
    );
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

  /**
   * Gives back `owner`'s lease on one chunk whose run failed, to be claimed again (here or
   * elsewhere) after `delayMs`; the heartbeat, which renews every lease `owner` holds, would
   * otherwise keep it from everyone as long as this gateway has other chunks in flight.
   */
  async giveBack(owner: string, jobId: string, lo: number, delayMs: number): Promise<boolean> {
    const now = nowMs(this.sql);
    const n = await this.sql.run(
      `UPDATE job_chunks SET lease_owner = NULL, lease_until = ${now} + ? WHERE job_id = ? AND lo = ? AND lease_owner = ? AND status = 'open'`,
      [delayMs, jobId, lo, owner],
    );
    return n > 0;
  }

  /** Gives up `owner`'s leases at once (a gateway stopping cleanly), so others need not wait for them to expire. */
  async release(owner: string): Promise<number> {
    return this.sql.run(
      `UPDATE job_chunks SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = ? AND status = 'open'`,
      [owner],
    );
  }

  /**
   * Writes a chunk's results over its pending records, bumps the job's counters and closes the
   * chunk, in one transaction; the commit that closes a job's last chunk finishes the job.
   * Nothing is written once the job has ended (cancelled).
   */
  async commit(jobId: string, lo: number, results: readonly OutputRecord[]): Promise<CommitOutcome> {
    const written = await this.write(jobId, results, lo);
    // After the commit: of two last chunks committed at once, the later one sees both closed.
    const finished = written === null ? null : await this.finishIfDone(jobId);
    return finished ? { written: written!, finished } : { written: written ?? 0 };
  }

  /**
   * Writes results over pending records and bumps the counters, in one transaction (the local
   * runner's commit); returns how many were new. Nothing is written once the job has ended.
   */
  async writeResults(jobId: string, results: readonly OutputRecord[]): Promise<number> {
    return (await this.write(jobId, results)) ?? 0;
  }

  /** Results over pending records, the chunk `lo` closed (when given), the counters bumped; null when the job had ended. */
  private async write(jobId: string, results: readonly OutputRecord[], lo?: number): Promise<number | null> {
    const ended = new Error('job ended');
    try {
      return await this.sql.tx(async (q) => {
        let written = 0;
        let failed = 0;
        // Many results per statement, over pending records only; the rows it changed come back.
        // Each statement also bounds the records' index range: planned without it, SQLite (always)
        // and PostgreSQL (once the job's rows outgrow its statistics) matched every statement
        // against all of the job's records, quadratic in the job's size.
        const sorted = [...results].sort((a, b) => a.metadata.index - b.metadata.index);
        for (let i = 0; i < sorted.length; i += ROWS_PER_INSERT) {
          const part = sorted.slice(i, i + ROWS_PER_INSERT);
          const changed = await q.query<{ status: string }>(
            `WITH v(idx, status, result) AS (VALUES ${part.map(() => '(CAST(? AS INTEGER), ?, ?)').join(', ')})
             UPDATE job_items SET status = v.status, result = v.result FROM v
             WHERE job_items.job_id = ? AND job_items.idx BETWEEN ? AND ? AND job_items.idx = v.idx AND job_items.status = 'pending'
             RETURNING job_items.status`,
            [
              ...part.flatMap((r) => [r.metadata.index, r.status, JSON.stringify(r)]),
              jobId,
              part[0]!.metadata.index,
              part[part.length - 1]!.metadata.index,
            ],
          );
          written += changed.length;
          failed += changed.filter((r) => r.status === 'error').length;
        }
        // The chunk closes, then the counters: taking the job row's lock last keeps it for one round
        // trip, so commits of one job hardly wait on each other. A job that ended meanwhile
        // (cancelled) gets nothing: the results above are rolled back.
        if (lo !== undefined)
          await q.run(
            `UPDATE job_chunks SET status = 'done', lease_owner = NULL, lease_until = NULL WHERE job_id = ? AND lo = ?`,
            [jobId, lo],
          );
        if (
          (await q.run(
            `UPDATE jobs SET done = done + ?, failed = failed + ?, updated_at = ? WHERE id = ? AND status IN ${ACTIVE}`,
            [written, failed, new Date().toISOString(), jobId],
          )) !== 1
        )
          throw ended;
        return written;
      });
    } catch (e) {
      if (e === ended) return null;
      throw e;
    }
  }

  /** Pending records after index `after`, in input order (the local runner reads a job page by page). */
  async pendingAfter(id: string, after: number, limit: number): Promise<{ idx: number; input: InputRecord }[]> {
    const rows = await this.sql.query<{ idx: number; input: string }>(
      `SELECT idx, input FROM job_items WHERE job_id = ? AND idx > ? AND status = 'pending' ORDER BY idx LIMIT ?`,
      [id, after, limit],
    );
    return rows.map((r) => ({ idx: Number(r.idx), input: JSON.parse(r.input) as InputRecord }));
  }

  async countPending(id: string): Promise<number> {
    const [row] = await this.sql.query<{ n: number }>(
      `SELECT CAST(COUNT(*) AS INTEGER) AS n FROM job_items WHERE job_id = ? AND status = 'pending'`,
      [id],
    );
    return Number(row?.n ?? 0);
  }

  /** The local runner has started the job. */
  async markRunning(id: string): Promise<void> {
    const now = new Date().toISOString();
    await this.sql.run(
      `UPDATE jobs SET status = 'running', started_at = COALESCE(started_at, ?), updated_at = ? WHERE id = ? AND status IN ${ACTIVE}`,
      [now, now, id],
    );
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
    const rows = await this.sql.query<ResultRow>(
      'SELECT idx, status, result FROM job_items WHERE job_id = ? AND idx >= ? ORDER BY idx LIMIT ?',
      [id, from, limit],
    );
    return rows.map((r) => ({ ...r, idx: Number(r.idx) }));
  }

  /** Moves an unfinished job to a final status (cancel, fatal error); false when it had already finished. */
  async finish(
    id: string,
    status: 'succeeded' | 'failed' | 'cancelled',
    error: string | null = null,
  ): Promise<boolean> {
    const now = new Date().toISOString();
    return (
      (await this.sql.run(
        `UPDATE jobs SET status = ?, error = ?, finished_at = ?, updated_at = ? WHERE id = ? AND status IN ${ACTIVE}`,
        [status, error, now, now, id],
      )) > 0
    );
  }
}
