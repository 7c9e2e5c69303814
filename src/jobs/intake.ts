// Job submissions, bounded: a raw upload is streamed to a file in the state dir as it arrives
// (never over jobs.max_upload_bytes), then read back and parsed piece by piece; records are
// written in batches with a turn of the event loop between them, so a 50 MB file neither sits in
// memory as one string nor stalls the gateway's other requests. Each API key may have at most
// jobs.max_queued_jobs_per_key unfinished jobs and jobs.max_queued_records_per_key records
// without a result (submissions being received included). A submission that fails part way
// (bad input, over a limit, the client gone, shutdown) leaves nothing behind. The store is the
// gateway's own or the one several gateways share (database_url): the quotas count the key's
// jobs in it, wherever they were submitted.
import { createHash, type Hash } from 'node:crypto';
import { readdirSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { IsoError } from '../errors.js';
import type { JobsContext } from './context.js';
import {
  InputFormatError,
  parseExchangeObject,
  parseJsonText,
  recordParser,
  sniffFormat,
  type InputFormat,
  type InputRecord,
} from './input.js';
import { RecordBatch } from './input-records.js';
import { canonical, JsonObjectScanner } from './json-body.js';
import {
  jobRunnerFor,
  MAX_JOB_RECORDS,
  type JobCaller,
  type JobRunner,
  type JobSettings,
  type JobSpec,
} from './runner.js';
import type { JobRow } from './store.js';
import type { SqlRunner } from '../store/sql.js';
import {
  hashBody,
  READ_CHUNK,
  readUpload,
  receiveUpload,
  SubmissionAborted,
  yieldToLoop,
  type Upload,
} from './upload.js';

// Moved to upload.ts; importable from here as before.
export { SubmissionAborted, yieldToLoop, type Upload };

export interface JobLimits {
  /** Largest submission body (raw upload or JSON), in bytes. */
  maxUploadBytes: number;
  /** Unfinished jobs (queued, running, being received) per API key. */
  maxQueuedJobs: number;
  /** Records without a result, over a key's unfinished jobs. */
  maxQueuedRecords: number;
}

/** Records per write transaction; the event loop gets a turn between two. */
const RECORD_BATCH = 2000;
/** The start of an upload that decides its format when nothing names it. */
const SNIFF_BYTES = 64 * 1024;
/** Retry-After is at most this (an estimate from the key's running jobs). */
const MAX_RETRY_AFTER_S = 3600;

/** A submission in progress: it counts against its key's quotas until it is a job or gone. */
export interface Slot {
  readonly owner: string;
  /** Records stored so far. */
  records: number;
  release(): void;
}

/** A JSON submission's members, read from its upload; its list (`sequences` / `inputs`) stays on disk. */
export interface JsonScan {
  members: Map<string, unknown>;
  /** The member whose array is read entry by entry from the upload, if any. */
  list: string | null;
}

/** The members of a JSON submission whose arrays are read entry by entry. */
const LIST_MEMBERS: ReadonlySet<string> = new Set(['sequences', 'inputs']);

export interface Submission {
  caller: JobCaller;
  spec: JobSpec;
  settings: JobSettings;
  idempotencyKey?: string;
  /** Hash of the request: the same key with another hash is a conflict. */
  requestHash?: string;
}

function invalid(e: unknown): unknown {
  return e instanceof InputFormatError ? new IsoError('INVALID_REQUEST', e.message) : e;
}

/** Yields records in slices of at most RECORD_BATCH. */
function* slices(records: InputRecord[]): Generator<InputRecord[]> {
  for (let i = 0; i < records.length; i += RECORD_BATCH) yield records.slice(i, i + RECORD_BATCH);
}

export class JobIntake {
  /** Submissions in progress, per owner. */
  private readonly slots = new Map<string, Set<Slot>>();

  constructor(
    private readonly runner: JobRunner,
    /** Where uploads are written while they arrive (`<state_dir>/uploads`). */
    private readonly dir: string,
    readonly limits: JobLimits,
    private readonly logger: Logger,
  ) {
    // Left by a previous process that died mid-upload: nobody will read them.
    try {
      for (const f of readdirSync(dir)) if (f.endsWith('.upload')) rmSync(join(dir, f), { force: true });
    } catch {
      // no uploads dir yet
    }
  }

  tooLarge(what = 'the job submission'): IsoError {
    const max = this.limits.maxUploadBytes;
    return new IsoError(
      'PAYLOAD_TOO_LARGE',
      `${what} is over the gateway's limit of ${max} bytes (jobs.max_upload_bytes); split the input into several jobs`,
      { limit_bytes: max },
    );
  }

  /**
   * What an owner holds now: its queued and running jobs plus its submissions in progress here
   * (`q`: read inside the activation's transaction).
   */
  private async usage(owner: string, except?: Slot, q?: SqlRunner): Promise<{ jobs: number; records: number }> {
    const stored = await this.runner.store.usage(owner, q);
    let jobs = stored.jobs;
    let records = stored.records;
    for (const s of this.slots.get(owner) ?? []) {
      if (s === except) continue;
      jobs++;
      records += s.records;
    }
    return { jobs, records };
  }

  /** Seconds until the owner's running jobs have done `records` more (or the first one ends), when that can be told. */
  private async retryAfter(owner: string, records?: number, q?: SqlRunner): Promise<number | undefined> {
    const p = await this.runner.progressOf(owner, q);
    const s = records === undefined ? p.soonestEndS : p.rate > 0 ? records / p.rate : null;
    return s === null ? undefined : Math.min(MAX_RETRY_AFTER_S, Math.max(1, Math.ceil(s)));
  }

  private async checkJobs(owner: string, except?: Slot, q?: SqlRunner): Promise<void> {
    const u = await this.usage(owner, except, q);
    const max = this.limits.maxQueuedJobs;
    if (u.jobs + 1 > max) {
      throw new IsoError(
        'QUOTA_EXCEEDED',
        `this API key already has ${u.jobs} unfinished jobs, the most it may have (jobs.max_queued_jobs_per_key = ${max}); wait for one to finish or cancel one`,
        { quota: 'max_queued_jobs_per_key', limit: max, unfinished_jobs: u.jobs },
        await this.retryAfter(owner, undefined, q),
      );
    }
  }

  /** Over the quota with `adding` more records for `slot`: 413 when this job alone could never fit, else 429. */
  private async checkRecords(slot: Slot, adding: number, q?: SqlRunner): Promise<void> {
    const max = this.limits.maxQueuedRecords;
    const mine = slot.records + adding;
    if (mine > max) {
      throw new IsoError(
        'PAYLOAD_TOO_LARGE',
        `the job has more than ${max} records, the most one API key may have waiting (jobs.max_queued_records_per_key); split it into smaller jobs`,
        {
          quota: 'max_queued_records_per_key',
          limit: max,
        },
      );
    }
    const others = (await this.usage(slot.owner, slot, q)).records;
    if (others + mine > max) {
      throw new IsoError(
        'QUOTA_EXCEEDED',
        `this API key has ${others} records waiting in its unfinished jobs; ${mine} more would pass its limit of ${max} (jobs.max_queued_records_per_key); retry once its jobs have progressed`,
        { quota: 'max_queued_records_per_key', limit: max, queued_records: others, job_records: mine },
        await this.retryAfter(slot.owner, others + mine - max, q),
      );
    }
  }

  /** Takes one of the caller's unfinished-job places for a submission (429 QUOTA_EXCEEDED when none is left). */
  async reserve(caller: JobCaller): Promise<Slot> {
    await this.checkJobs(caller.id);
    let set = this.slots.get(caller.id);
    if (!set) this.slots.set(caller.id, (set = new Set()));
    const slots = this.slots;
    const slot: Slot = {
      owner: caller.id,
      records: 0,
      release() {
        set.delete(slot);
        if (set.size === 0 && slots.get(caller.id) === set) slots.delete(caller.id);
      },
    };
    set.add(slot);
    return slot;
  }

  /**
   * Writes a request body to `<state_dir>/uploads/<uuid>.upload` as it arrives, hashing it.
   * Over max_upload_bytes it stops writing, deletes the file and throws PAYLOAD_TOO_LARGE; the
   * rest of the body is read and dropped so the client can read the answer.
   */
  receive(body: Readable, hash?: Hash): Promise<Upload> {
    return receiveUpload(body, this.dir, this.limits.maxUploadBytes, () => this.tooLarge(), hash);
  }

  /** Reads a body only to hash it (a retry under an Idempotency-Key already used): nothing is written. */
  hashOnly(body: Readable, hash: Hash): Promise<void> {
    return hashBody(body, this.limits.maxUploadBytes, () => this.tooLarge(), hash);
  }

  /** The records of an upload, read back and parsed piece by piece, in batches. */
  async *fileRecords(upload: Upload, format: InputFormat | undefined, label: string): AsyncGenerator<InputRecord[]> {
    let fmt = format;
    if (fmt === undefined) {
      const fh = await open(upload.path, 'r');
      try {
        const buf = Buffer.alloc(Math.min(SNIFF_BYTES, upload.bytes));
        const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
        fmt = sniffFormat(buf.subarray(0, bytesRead).toString('utf8'), upload.bytes > bytesRead);
      } finally {
        await fh.close();
      }
    }
    const parser = recordParser(fmt, label);
    try {
      for await (const text of readUpload(upload)) yield* slices(parser.push(text));
      yield* slices(parser.end());
    } catch (e) {
      throw invalid(e);
    }
  }

  /** A JSON submission's members (its list left on disk): 400 for text that is not one JSON object. */
  async scanJson(upload: Upload): Promise<JsonScan> {
    const members = new Map<string, unknown>();
    const scanner = new JsonObjectScanner(LIST_MEMBERS, {
      member: (key, text) => members.set(key, parseJsonText(text, key)),
      entry: () => undefined,
    });
    try {
      for await (const text of readUpload(upload)) scanner.push(text);
      scanner.end();
    } catch (e) {
      throw invalid(e);
    }
    const list = [...LIST_MEMBERS].find((k) => scanner.keys().has(k) && !members.has(k)) ?? null;
    return { members, list };
  }

  /**
   * The hash of a JSON submission: `hash` (content type, query) then its canonical text (keys
   * sorted at every level, as before this was streamed), the list hashed entry by entry.
   */
  async hashJson(upload: Upload, scan: JsonScan, hash: Hash): Promise<string> {
    const keys = [...scan.members.keys(), ...(scan.list ? [scan.list] : [])].sort();
    hash.update('{');
    for (const [i, key] of keys.entries()) {
      hash.update(`${i ? ',' : ''}${JSON.stringify(key)}:`);
      if (key !== scan.list) {
        hash.update(canonical(scan.members.get(key)));
        continue;
      }
      hash.update('[');
      const scanner = new JsonObjectScanner(new Set([key]), {
        member: () => undefined,
        entry: (_k, text, index) =>
          hash.update(`${index ? ',' : ''}${canonical(parseJsonText(text, `${key}[${index}]`))}`),
      });
      try {
        for await (const text of readUpload(upload)) scanner.push(text);
        scanner.end();
      } catch (e) {
        throw invalid(e);
      }
      hash.update(']');
    }
    hash.update('}');
    return hash.digest('hex');
  }

  /** The records of a JSON submission's list (`sequences` or `inputs`), read entry by entry from its upload. */
  async *jsonListRecords(upload: Upload, key: string): AsyncGenerator<InputRecord[]> {
    const batch = new RecordBatch();
    let count = 0;
    const scanner = new JsonObjectScanner(new Set([key]), {
      member: () => undefined,
      entry: (_k, text, index) => {
        const where = `${key}[${index}]`;
        const recs = parseExchangeObject(parseJsonText(text, where), `seq${count + 1}`, where).records;
        count += recs.length;
        batch.addAll(recs);
      },
    });
    try {
      for await (const text of readUpload(upload)) {
        scanner.push(text);
        yield* slices(batch.take());
      }
      scanner.end();
      yield* slices(batch.take());
    } catch (e) {
      throw invalid(e);
    }
  }

  /** The records of file text given in a JSON body (`data`), parsed piece by piece. */
  *textRecords(text: string, format: InputFormat | undefined, label: string): Generator<InputRecord[]> {
    const parser = recordParser(format ?? sniffFormat(text.slice(0, SNIFF_BYTES), text.length > SNIFF_BYTES), label);
    try {
      for (let i = 0; i < text.length; i += READ_CHUNK) yield* slices(parser.push(text.slice(i, i + READ_CHUNK)));
      yield* slices(parser.end());
    } catch (e) {
      throw invalid(e);
    }
  }

  /**
   * Stores a submission: the job row (`receiving`), its records batch by batch (each checked
   * against the limits, the event loop free between two), then one transaction that checks the
   * quotas again and queues it. With an Idempotency-Key the owner already used, stores nothing
   * and returns that job (`created: false`). Anything that fails deletes what was written.
   */
  async ingest(
    sub: Submission,
    slot: Slot,
    batches: AsyncIterable<InputRecord[]> | Iterable<InputRecord[]>,
    signal?: AbortSignal,
  ): Promise<{ job: JobRow; created: boolean }> {
    const prepared = this.runner.prepare(sub.spec);
    const row = this.runner.newRow(sub.spec, prepared, sub.settings, sub.caller, sub.idempotencyKey, sub.requestHash);
    const began = await this.runner.store.begin(row);
    if (!began.created) return began;
    try {
      let n = 0;
      for await (const batch of batches) {
        if (this.runner.stopped) throw new IsoError('MODEL_NOT_LOADED', 'the gateway is shutting down', undefined, 5);
        if (signal?.aborted) throw new SubmissionAborted();
        for (const r of batch) prepared.checkRecord(r);
        if (n + batch.length > MAX_JOB_RECORDS)
          throw new IsoError('INVALID_REQUEST', `at most ${MAX_JOB_RECORDS} sequences per job`);
        await this.checkRecords(slot, batch.length);
        await this.runner.store.append(row.id, n, batch);
        n += batch.length;
        slot.records = n;
        await yieldToLoop();
      }
      if (signal?.aborted) throw new SubmissionAborted();
      if (n === 0) throw new IsoError('INVALID_REQUEST', 'the job has no sequences');
      const job = await this.runner.store.activate(row.id, async (q) => {
        await this.checkJobs(slot.owner, slot, q);
        await this.checkRecords(slot, 0, q);
      });
      this.runner.enqueue(job);
      return { job, created: true };
    } catch (e) {
      await this.discard(row.id);
      throw e;
    }
  }

  /** Deletes a submission that will not become a job, a batch at a time. */
  private async discard(id: string): Promise<void> {
    try {
      while (!(await this.runner.store.discardSome(id, 10 * RECORD_BATCH))) await yieldToLoop();
    } catch (e) {
      // Deleted at the next start instead (it stays `receiving`, which nothing reads).
      this.logger.warn({ job: id, error: (e as Error).message }, 'could not delete a failed job submission');
    }
  }
}

/** A hash of a submission, started with what identifies it besides the body. */
export function submissionHash(contentType: string, canonicalQuery: string): Hash {
  const h = createHash('sha256');
  h.update(contentType);
  h.update('\0');
  h.update(canonicalQuery);
  h.update('\0');
  return h;
}

const intakes = new WeakMap<JobsContext, JobIntake>();

/** The gateway's job intake (one per gateway, over its job runner and config). */
export function jobIntakeFor(gw: JobsContext): JobIntake {
  let i = intakes.get(gw);
  if (!i) {
    const c = gw.config.jobs;
    i = new JobIntake(
      jobRunnerFor(gw),
      join(gw.config.state_dir, 'uploads'),
      {
        maxUploadBytes: c.max_upload_bytes,
        maxQueuedJobs: c.max_queued_jobs_per_key,
        maxQueuedRecords: c.max_queued_records_per_key,
      },
      gw.logger.child({ component: 'jobs' }),
    );
    intakes.set(gw, i);
  }
  return i;
}
