// The job API (docs/jobs.md): durable batch jobs over the native envelope.
//   POST /v1/jobs                    submit (JSON, or a raw FASTA / JSONL / CSV / TSV body)
//   GET  /v1/jobs                    list, newest first
//   GET  /v1/jobs/{id}               status and progress
//   GET  /v1/jobs/{id}/results       JSONL in input order, streamed as results are written (or CSV when done)
//   POST /v1/jobs/{id}/cancel        cancel
// Submission is idempotent under an Idempotency-Key header: the same key and body give the
// same job; the same key with another body is a 409.
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { IsoError } from '../../errors.js';
import type { Gateway } from '../../gateway.js';
import { okEnvelope } from '../envelope.js';
import {
  CsvWriter,
  formatFromContentType,
  INPUT_FORMATS,
  InputFormatError,
  parseExchangeObject,
  parseInput,
  sniffFormat,
  type InputFormat,
  type InputRecord,
  type OutputRecord,
} from '../../jobs/formats.js';
import { jobRunnerFor, MAX_CHUNK_SIZE, MAX_WORKERS, type JobRequest, type JobRunner, type JobSpec } from '../../jobs/runner.js';
import { TERMINAL, type JobStatus, JOB_STATUSES } from '../../jobs/store.js';
import { describeZod } from '../../validation/zod-message.js';
import { PREDICT } from '../../security/route-scope.js';

/** Job submissions carry whole files: a larger body limit than single predictions. */
const JOB_BODY_LIMIT = 64 * 1024 * 1024;
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;
const RAW_TYPES = [
  'text/csv',
  'text/tab-separated-values',
  'text/x-fasta',
  'application/x-fasta',
  'chemical/seq-na-fasta',
  'chemical/seq-aa-fasta',
  'application/x-ndjson',
  'application/jsonl',
  'application/jsonlines',
  'application/x-jsonlines',
  'application/octet-stream',
];

const jobBody = z
  .object({
    model: z.string().min(1).max(64).optional(),
    task: z.string().max(64).optional(),
    task_type: z.string().max(64).optional(),
    pipeline: z.record(z.string(), z.unknown()).optional(),
    pipeline_yaml: z.string().max(100_000).optional(),
    sequences: z.array(z.unknown()).optional(),
    inputs: z.array(z.unknown()).optional(),
    data: z.string().optional(),
    format: z.enum(INPUT_FORMATS).optional(),
    options: z.record(z.string(), z.unknown()).default({}),
    organism: z.string().max(64).optional(),
    name: z.string().max(200).optional(),
    workers: z.number().int().min(1).max(MAX_WORKERS).optional(),
    chunk_size: z.number().int().min(1).max(MAX_CHUNK_SIZE).optional(),
    priority: z.number().int().min(-10).max(10).optional(),
  })
  .strict();

const rawQuery = z
  .object({
    model: z.string().min(1).max(64),
    task: z.string().max(64).optional(),
    task_type: z.string().max(64).optional(),
    format: z.enum(INPUT_FORMATS).optional(),
    options: z.string().optional(),
    organism: z.string().max(64).optional(),
    name: z.string().max(200).optional(),
    workers: z.coerce.number().int().min(1).max(MAX_WORKERS).optional(),
    chunk_size: z.coerce.number().int().min(1).max(MAX_CHUNK_SIZE).optional(),
    priority: z.coerce.number().int().min(-10).max(10).optional(),
  })
  .strict();

function invalid(message: string): IsoError {
  return new IsoError('INVALID_REQUEST', message);
}

function parseText(text: string, format: InputFormat | undefined, label: string): InputRecord[] {
  try {
    return parseInput(text, format ?? sniffFormat(text), label);
  } catch (e) {
    if (e instanceof InputFormatError) throw invalid(e.message);
    throw e;
  }
}

function jobOptions(options: Record<string, unknown>, organism: string | undefined): Record<string, unknown> {
  return organism === undefined ? options : { ...options, organism };
}

/** A JSON submission: a model or a pipeline, and sequences, inputs (exchange objects) or data (file text). */
function fromJson(body: unknown): Omit<JobRequest, 'idempotencyKey' | 'requestHash'> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalid('request body must be a JSON object');
  const parsed = jobBody.safeParse(body);
  if (!parsed.success) throw invalid(describeZod(parsed.error));
  const b = parsed.data;
  const sources = (['sequences', 'inputs', 'data'] as const).filter((k) => b[k] !== undefined);
  if (sources.length !== 1) throw invalid('give exactly one of sequences (a list), inputs (exchange objects) or data (file text, with format)');
  const targets = (['model', 'pipeline', 'pipeline_yaml'] as const).filter((k) => b[k] !== undefined);
  if (targets.length !== 1) throw invalid('give exactly one of model, pipeline (an object) or pipeline_yaml (text)');
  let inputs: InputRecord[];
  try {
    if (b.data !== undefined) inputs = parseText(b.data, b.format, 'data');
    else {
      const list = (b.sequences ?? b.inputs)!;
      const field = b.sequences ? 'sequences' : 'inputs';
      inputs = [];
      list.forEach((entry, i) => inputs.push(...parseExchangeObject(entry, `seq${inputs.length + 1}`, `${field}[${i}]`).records));
    }
  } catch (e) {
    if (e instanceof InputFormatError) throw invalid(e.message);
    throw e;
  }
  const options = jobOptions(b.options, b.organism);
  let spec: JobSpec;
  if (b.model !== undefined) spec = { kind: 'predict', model: b.model, task: b.task ?? b.task_type, options };
  else {
    let pipeline = b.pipeline;
    if (b.pipeline_yaml !== undefined) {
      try {
        pipeline = parseYaml(b.pipeline_yaml) as Record<string, unknown>;
      } catch (e) {
        throw invalid(`pipeline_yaml is not valid YAML: ${(e as Error).message.split('\n')[0]}`);
      }
    }
    spec = { kind: 'pipeline', pipeline: pipeline as never, options };
  }
  return { spec, inputs, name: b.name, workers: b.workers, chunkSize: b.chunk_size, priority: b.priority };
}

/** A raw file body: the model and settings in the query string, the format from ?format, the content type, or the text. */
function fromRaw(text: string, contentType: string | undefined, query: unknown): Omit<JobRequest, 'idempotencyKey' | 'requestHash'> {
  const parsed = rawQuery.safeParse(query ?? {});
  if (!parsed.success) throw invalid(`query: ${describeZod(parsed.error)} (a raw upload names the model and task in the query string: ?model=…&task=…)`);
  const q = parsed.data;
  let options: Record<string, unknown> = {};
  if (q.options !== undefined) {
    let o: unknown;
    try {
      o = JSON.parse(q.options);
    } catch {
      throw invalid('query options must be a JSON object');
    }
    if (typeof o !== 'object' || o === null || Array.isArray(o)) throw invalid('query options must be a JSON object');
    options = o as Record<string, unknown>;
  }
  const format = q.format ?? formatFromContentType(contentType);
  const inputs = parseText(text, format, 'body');
  return {
    spec: { kind: 'predict', model: q.model, task: q.task ?? q.task_type, options: jobOptions(options, q.organism) },
    inputs,
    name: q.name,
    workers: q.workers,
    chunkSize: q.chunk_size,
    priority: q.priority,
  };
}

/** JSON with sorted keys: equal bodies hash equally whatever their key order. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (typeof v === 'object' && v !== null) {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v) ?? 'null';
}

function requestHash(req: FastifyRequest): string {
  const h = createHash('sha256');
  const ct = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  h.update(ct === 'application/json' ? 'json' : ct);
  h.update('\0');
  h.update(canonical(req.query ?? {}));
  h.update('\0');
  h.update(typeof req.body === 'string' ? req.body : canonical(req.body));
  return h.digest('hex');
}

/** An error envelope for a status IsoError has no code for (409). */
function sendConflict(req: FastifyRequest, reply: FastifyReply, code: string, message: string, details: Record<string, unknown>): FastifyReply {
  return reply.code(409).send({ success: false, message, error: { code, details }, timestamp: new Date().toISOString(), request_id: req.id });
}

function boolParam(v: unknown, dflt: boolean): boolean {
  if (v === undefined || v === '') return dflt;
  if (v === 'true' || v === '1' || v === 'yes') return true;
  if (v === 'false' || v === '0' || v === 'no') return false;
  throw invalid(`expected true or false, got "${String(v)}"`);
}

function intParam(v: unknown, name: string, dflt: number, min: number, max: number): number {
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw invalid(`${name} must be an integer from ${min} to ${max}`);
  return n;
}

/**
 * Results from index `from` on, in input order. Following a live job, it stops at the first
 * record without a result and waits for it; once the job is over (or with follow off) it
 * skips records that have none (a cancelled or failed job).
 */
async function* jsonlResults(runner: JobRunner, id: string, from: number, follow: boolean): AsyncGenerator<string> {
  let next = from;
  for (;;) {
    if (runner.stopped) throw new Error('the gateway is shutting down; reconnect with ?from=' + next);
    const job = runner.get(id);
    const final = !follow || TERMINAL.has(job.status);
    const rows = runner.store.results(id, next, 1000);
    let out = '';
    let blocked = false;
    for (const r of rows) {
      if (r.status === 'pending') {
        if (!final) {
          blocked = true;
          break;
        }
      } else out += r.result! + '\n';
      next = r.idx + 1;
    }
    if (out) yield out;
    if (rows.length === 0 || next >= job.total) return;
    if (blocked) await runner.waitForChange(id, 1000);
  }
}

function* completedRecords(runner: JobRunner, id: string): Generator<OutputRecord> {
  let next = 0;
  for (;;) {
    const rows = runner.store.results(id, next, 1000);
    if (rows.length === 0) return;
    for (const r of rows) if (r.result) yield JSON.parse(r.result) as OutputRecord;
    next = rows[rows.length - 1]!.idx + 1;
  }
}

function* csvResults(runner: JobRunner, id: string): Generator<string> {
  const w = new CsvWriter(CsvWriter.fieldsOf(completedRecords(runner, id)));
  yield w.header();
  let out = '';
  let n = 0;
  for (const r of completedRecords(runner, id)) {
    out += w.row(r);
    if (++n % 1000 === 0) {
      yield out;
      out = '';
    }
  }
  if (out) yield out;
}

export function registerJobRoutes(app: FastifyInstance, gw: Gateway): void {
  const runner = jobRunnerFor(gw);
  // Before Fastify waits for open requests: end result streams and stop the job loops, which
  // stay `running` in the store and resume at the next start.
  app.addHook('preClose', async () => runner.stop());

  void app.register(async (scope) => {
    // Raw uploads (FASTA, JSONL, CSV, TSV) arrive as text; only under this plugin's routes.
    scope.addContentTypeParser(RAW_TYPES, { parseAs: 'string', bodyLimit: JOB_BODY_LIMIT }, (_req, body, done) => done(null, body));

    scope.post('/v1/jobs', { ...PREDICT, bodyLimit: JOB_BODY_LIMIT }, async (req, reply) => {
      const keyHeader = req.headers['idempotency-key'];
      const key = Array.isArray(keyHeader) ? keyHeader[0] : keyHeader;
      if (key !== undefined && !IDEMPOTENCY_KEY.test(key)) throw invalid('Idempotency-Key must be 1 to 255 printable ASCII characters');
      const hash = requestHash(req);
      if (key !== undefined) {
        // A retry of a submission already stored answers with its job without parsing it again.
        const existing = runner.store.getByKey(key);
        if (existing) return replay(req, reply, runner, existing.id, key, hash);
      }
      const ct = req.headers['content-type'];
      const base = typeof req.body === 'string' ? fromRaw(req.body, ct, req.query) : fromJson(req.body);
      const { job, created } = runner.submit({ ...base, idempotencyKey: key, requestHash: hash });
      if (!created) return replay(req, reply, runner, job.id, key!, hash);
      void reply.code(202).header('location', `/v1/jobs/${job.id}`);
      return okEnvelope(req, runner.view(job), `job accepted: ${job.total} sequences`);
    });
  });

  app.get('/v1/jobs', PREDICT, async (req) => {
    const q = (req.query ?? {}) as Record<string, unknown>;
    const status = q.status === undefined || q.status === '' ? undefined : String(q.status);
    if (status !== undefined && !(JOB_STATUSES as readonly string[]).includes(status)) throw invalid(`status must be one of ${JOB_STATUSES.join(', ')}`);
    const limit = intParam(q.limit, 'limit', 50, 1, 1000);
    const offset = intParam(q.offset, 'offset', 0, 0, Number.MAX_SAFE_INTEGER);
    const model = q.model === undefined || q.model === '' ? undefined : String(q.model);
    const { jobs, total } = runner.store.list({ status: status as JobStatus | undefined, model, limit, offset });
    return okEnvelope(req, { jobs: jobs.map((j) => runner.view(j)), total, limit, offset }, `${jobs.length} of ${total} jobs`);
  });

  app.get('/v1/jobs/:id', PREDICT, async (req) => {
    const job = runner.get((req.params as { id: string }).id);
    return okEnvelope(req, runner.view(job), `job ${job.status}`);
  });

  app.post('/v1/jobs/:id/cancel', PREDICT, async (req) => {
    const { job, changed } = runner.cancel((req.params as { id: string }).id);
    return okEnvelope(req, runner.view(job), changed ? 'job cancelled' : `job had already ${job.status === 'cancelled' ? 'been cancelled' : job.status}`);
  });

  app.get('/v1/jobs/:id/results', PREDICT, async (req, reply) => {
    const id = (req.params as { id: string }).id;
    const job = runner.get(id);
    const q = (req.query ?? {}) as Record<string, unknown>;
    const format = q.format === undefined || q.format === '' ? 'jsonl' : String(q.format);
    if (format !== 'jsonl' && format !== 'csv') throw invalid('format must be jsonl or csv');
    const download = boolParam(q.download, false);
    if (download) void reply.header('content-disposition', `attachment; filename="${job.id}.${format}"`);
    if (format === 'csv') {
      if (!TERMINAL.has(job.status)) {
        return sendConflict(req, reply, 'JOB_NOT_FINISHED', `job is ${job.status}: CSV results are ready when it is done (JSONL streams while it runs)`, { status: job.status, done: job.done, total: job.total });
      }
      return reply.type('text/csv; charset=utf-8').send(Readable.from(csvResults(runner, id)));
    }
    const follow = boolParam(q.follow, true);
    const from = intParam(q.from, 'from', 0, 0, Number.MAX_SAFE_INTEGER);
    void reply.header('x-job-status', job.status).header('x-job-total', String(job.total));
    return reply.type('application/x-ndjson; charset=utf-8').send(Readable.from(jsonlResults(runner, id, from, follow)));
  });
}

function replay(req: FastifyRequest, reply: FastifyReply, runner: JobRunner, id: string, key: string, hash: string): FastifyReply | ReturnType<typeof okEnvelope> {
  const job = runner.get(id);
  if (job.request_hash !== hash) {
    return sendConflict(req, reply, 'IDEMPOTENCY_CONFLICT', `Idempotency-Key "${key}" was already used for job ${job.id} with a different request body; use a new key for a new job`, {
      idempotency_key: key,
      job_id: job.id,
    });
  }
  void reply.code(200).header('idempotent-replayed', 'true').header('location', `/v1/jobs/${job.id}`);
  return okEnvelope(req, runner.view(job), 'job already submitted with this Idempotency-Key');
}
