// The job API (docs/jobs.md): durable batch jobs over the native envelope.
//   POST /v1/jobs                    submit (JSON, or a raw FASTA / JSONL / CSV / TSV / text upload)
//   GET  /v1/jobs                    list, newest first
//   GET  /v1/jobs/{id}               status and progress
//   GET  /v1/jobs/{id}/results       JSONL in input order, streamed as results are written (or CSV when done)
//   POST /v1/jobs/{id}/cancel        cancel
// Jobs belong to the API key that submitted them: another key gets 404 as for a job that does
// not exist, an admin key sees and cancels all. Submission is idempotent under an
// Idempotency-Key header, per key: the same key and body give the same job; the same key with
// another body is a 409. Raw uploads are streamed to disk and parsed piece by piece, within the
// limits of the `jobs` config (src/jobs/intake.ts). With database_url the jobs are in the store
// every gateway shares: any gateway answers every route for any job (src/jobs/runner.ts).
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { IsoError } from '../../errors.js';
import type { GatewayContext } from '../context.js';
import { okEnvelope, sendError, toIsoError } from '../envelope.js';
import {
  boolParam,
  callerOf,
  fromJson,
  fromRaw,
  hashOf,
  IDEMPOTENCY_KEY,
  intParam,
  invalid,
  RAW_TYPES,
} from '../job-request.js';
import { csvResults, jsonlResults } from '../job-results.js';
import { jobIntakeFor, SubmissionAborted, type JobIntake, type Submission } from '../../jobs/intake.js';
import { jobRunnerFor, type JobCaller, type JobRunner } from '../../jobs/runner.js';
import { TERMINAL, type JobRow, type JobStatus, JOB_STATUSES } from '../../jobs/store.js';
import { PREDICT } from '../../security/route-scope.js';

/** An error envelope for a status IsoError has no code for (409). */
function sendConflict(
  req: FastifyRequest,
  reply: FastifyReply,
  code: string,
  message: string,
  details: Record<string, unknown>,
): FastifyReply {
  return reply.code(409).send({
    success: false,
    message,
    error: { code, details },
    timestamp: new Date().toISOString(),
    request_id: req.id,
  });
}

/**
 * Runs a submission with a signal aborted when the client goes away before its answer is
 * written. Answered before the whole body was read, the connection is closed rather than the
 * rest read.
 */
async function receiving<T>(reply: FastifyReply, body: Readable, run: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  const onClose = (): void => {
    if (!reply.raw.writableFinished) ac.abort();
  };
  reply.raw.on('close', onClose);
  try {
    return await run(ac.signal);
  } catch (e) {
    if (!body.readableEnded) {
      void reply.header('connection', 'close');
      body.resume();
    }
    throw e;
  } finally {
    reply.raw.off('close', onClose);
  }
}

/** A body whose declared Content-Length is over the upload limit is refused before it is read. */
function checkDeclaredLength(req: FastifyRequest, intake: JobIntake): void {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > intake.limits.maxUploadBytes) throw intake.tooLarge();
}

function accepted(
  req: FastifyRequest,
  reply: FastifyReply,
  runner: JobRunner,
  job: JobRow,
  caller: JobCaller,
): ReturnType<typeof okEnvelope> {
  void reply.code(202).header('location', `/v1/jobs/${job.id}`);
  return okEnvelope(req, runner.view(job, caller), `job accepted: ${job.total} sequences`);
}

/** The answer to a submission under an Idempotency-Key the caller already used (`existing` is the caller's own job). */
async function replay(
  req: FastifyRequest,
  reply: FastifyReply,
  runner: JobRunner,
  existing: JobRow,
  key: string,
  hash: string,
  caller: JobCaller,
): Promise<FastifyReply | ReturnType<typeof okEnvelope>> {
  if (existing.request_hash !== hash) {
    return sendConflict(
      req,
      reply,
      'IDEMPOTENCY_CONFLICT',
      `Idempotency-Key "${key}" was already used for job ${existing.id} with a different request body; use a new key for a new job`,
      {
        idempotency_key: key,
        job_id: existing.id,
      },
    );
  }
  const job = await runner.store.get(existing.id);
  if (!job || job.status === 'receiving') {
    // The first submission under this key is still being stored (or has just failed).
    void reply.header('retry-after', '1');
    return sendConflict(
      req,
      reply,
      'IDEMPOTENCY_CONFLICT',
      `a submission with Idempotency-Key "${key}" is still being received; retry in a moment`,
      { idempotency_key: key },
    );
  }
  void reply.code(200).header('idempotent-replayed', 'true').header('location', `/v1/jobs/${job.id}`);
  return okEnvelope(req, runner.view(job, caller), 'job already submitted with this Idempotency-Key');
}

/** A submission: the request, who sent it under which Idempotency-Key, and its body (not read yet). */
interface Submit {
  req: FastifyRequest;
  reply: FastifyReply;
  runner: JobRunner;
  intake: JobIntake;
  caller: JobCaller;
  key: string | undefined;
  body: Readable;
}

/** A raw upload: checked before its body is read, then streamed to disk, then parsed into the job. */
async function submitRaw({ req, reply, runner, intake, caller, key, body }: Submit): Promise<unknown> {
  return receiving(reply, body, async (signal) => {
    const { spec, settings, format } = fromRaw(req.headers['content-type'], req.query);
    runner.prepare(spec); // an unknown model or task is answered before the upload is read
    checkDeclaredLength(req, intake);
    const hash = hashOf(req);
    const existing = key === undefined ? undefined : await runner.store.getByKey(caller.id, key);
    if (existing) {
      // A retry: the body only needs hashing, to tell a replay from a conflict.
      await intake.hashOnly(body, hash);
      return await replay(req, reply, runner, existing, key!, hash.digest('hex'), caller);
    }
    const slot = await intake.reserve(caller);
    try {
      const upload = await intake.receive(body, hash);
      try {
        const requestHash = hash.digest('hex');
        const sub: Submission = { caller, spec, settings, idempotencyKey: key, requestHash };
        const { job, created } = await intake.ingest(sub, slot, intake.fileRecords(upload, format, 'body'), signal);
        return created
          ? accepted(req, reply, runner, job, caller)
          : await replay(req, reply, runner, job, key!, requestHash, caller);
      } finally {
        await upload.dispose();
      }
    } finally {
      slot.release();
    }
  });
}

/**
 * A JSON submission, streamed to disk like an upload, then read piece by piece: its members
 * first (to check it), then its list entry by entry into the job. Hashed (one more read) only
 * under an Idempotency-Key.
 */
async function submitJson({ req, reply, runner, intake, caller, key, body }: Submit): Promise<unknown> {
  return receiving(reply, body, async (signal) => {
    checkDeclaredLength(req, intake);
    // A key at its quota is refused before its body is read, unless this may be a retry.
    let slot = key !== undefined && (await runner.store.getByKey(caller.id, key)) ? null : await intake.reserve(caller);
    try {
      const upload = await intake.receive(body);
      try {
        const scan = await intake.scanJson(upload);
        const members = Object.fromEntries(scan.members) as Record<string, unknown>;
        if (scan.list) members[scan.list] = [];
        const { spec, settings, source } = fromJson(members);
        let hash: string | undefined;
        if (key !== undefined) {
          hash = await intake.hashJson(upload, scan, hashOf(req));
          // A retry of a submission already stored answers with its job.
          const existing = await runner.store.getByKey(caller.id, key);
          if (existing) return await replay(req, reply, runner, existing, key, hash, caller);
        }
        runner.prepare(spec);
        slot ??= await intake.reserve(caller);
        const batches =
          source.kind === 'list'
            ? intake.jsonListRecords(upload, scan.list!)
            : intake.textRecords(source.text, source.format, 'data');
        const { job, created } = await intake.ingest(
          { caller, spec, settings, idempotencyKey: key, requestHash: hash },
          slot,
          batches,
          signal,
        );
        return created
          ? accepted(req, reply, runner, job, caller)
          : await replay(req, reply, runner, job, key!, hash!, caller);
      } finally {
        await upload.dispose();
      }
    } finally {
      slot?.release();
    }
  });
}

export function registerJobRoutes(app: FastifyInstance, gw: GatewayContext): void {
  const runner = jobRunnerFor(gw);
  const intake = jobIntakeFor(gw);
  // Before Fastify waits for open requests: end result streams and stop the job loops, which
  // stay `running` in the store and resume at the next start.
  app.addHook('preClose', async () => runner.stop());

  void app.register(async (scope) => {
    // Submissions (JSON, and raw FASTA, JSONL, CSV, TSV, text uploads) are not parsed here: the
    // handler streams them to disk within jobs.max_upload_bytes and reads them back piece by
    // piece. Only under this plugin's route.
    scope.removeContentTypeParser(['application/json', 'text/plain']);
    scope.addContentTypeParser(['application/json', ...RAW_TYPES], (_req, payload, done) => done(null, payload));
    scope.setErrorHandler((err, req, reply) => {
      let iso = toIsoError(err);
      if (err instanceof SubmissionAborted) iso = new IsoError('CANCELLED', err.message);
      if (iso.code === 'INTERNAL_ERROR') req.log.error({ err, reqId: req.id }, 'unhandled error');
      return sendError(req, reply, iso);
    });

    scope.post('/v1/jobs', PREDICT, async (req, reply) => {
      const caller = callerOf(req);
      const keyHeader = req.headers['idempotency-key'];
      const key = Array.isArray(keyHeader) ? keyHeader[0] : keyHeader;
      if (key !== undefined && !IDEMPOTENCY_KEY.test(key))
        throw invalid('Idempotency-Key must be 1 to 255 printable ASCII characters');
      const ct = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
      const body = req.body instanceof Readable ? req.body : null;
      if (ct === 'application/json') {
        if (!body) throw invalid('request body must be a JSON object');
        return submitJson({ req, reply, runner, intake, caller, key, body });
      }
      if (!body) throw invalid('the upload is empty: the job has no sequences');
      return submitRaw({ req, reply, runner, intake, caller, key, body });
    });
  });

  app.get('/v1/jobs', PREDICT, async (req) => {
    const caller = callerOf(req);
    const q = (req.query ?? {}) as Record<string, unknown>;
    const status = q.status === undefined || q.status === '' ? undefined : String(q.status);
    if (status !== undefined && !(JOB_STATUSES as readonly string[]).includes(status))
      throw invalid(`status must be one of ${JOB_STATUSES.join(', ')}`);
    const limit = intParam(q.limit, 'limit', 50, 1, 1000);
    const offset = intParam(q.offset, 'offset', 0, 0, Number.MAX_SAFE_INTEGER);
    const model = q.model === undefined || q.model === '' ? undefined : String(q.model);
    const ownerParam = q.owner === undefined || q.owner === '' ? undefined : String(q.owner);
    // A key lists its own jobs; an admin key every job, or one owner's with ?owner=.
    if (!caller.admin && ownerParam !== undefined && ownerParam !== caller.id)
      return okEnvelope(req, { jobs: [], total: 0, limit, offset }, '0 of 0 jobs');
    const owner = caller.admin ? ownerParam : caller.id;
    const { jobs, total } = await runner.store.list({
      owner,
      status: status as JobStatus | undefined,
      model,
      limit,
      offset,
    });
    return okEnvelope(
      req,
      { jobs: jobs.map((j) => runner.view(j, caller)), total, limit, offset },
      `${jobs.length} of ${total} jobs`,
    );
  });

  /** An admin key reaching into another key's job is an admin action: audited. */
  const auditForeign = (
    req: FastifyRequest,
    job: JobRow,
    caller: JobCaller,
    action: string,
    outcome: 'allowed' | 'failed' = 'allowed',
  ): void => {
    if (!caller.admin || job.owner === caller.id) return;
    gw.store.bestEffort(() =>
      gw.auditTrail.record({
        actor: caller.name,
        key_id: caller.id,
        action,
        route: req.routeOptions.url,
        params: { id: job.id },
        target: job.id,
        outcome,
        status: 200,
        client: req.ip,
        request_id: req.id,
        details: `job of ${job.owner_name ?? job.owner}`,
      }),
    );
  };

  app.get('/v1/jobs/:id', PREDICT, async (req) => {
    const caller = callerOf(req);
    const job = await runner.find((req.params as { id: string }).id, caller);
    auditForeign(req, job, caller, 'jobs.read');
    return okEnvelope(req, runner.view(job, caller), `job ${job.status}`);
  });

  app.post('/v1/jobs/:id/cancel', PREDICT, async (req) => {
    const caller = callerOf(req);
    const { job, changed } = await runner.cancel((req.params as { id: string }).id, caller);
    auditForeign(req, job, caller, 'jobs.cancel', changed ? 'allowed' : 'failed');
    return okEnvelope(
      req,
      runner.view(job, caller),
      changed ? 'job cancelled' : `job had already ${job.status === 'cancelled' ? 'been cancelled' : job.status}`,
    );
  });

  app.get('/v1/jobs/:id/results', PREDICT, async (req, reply) => {
    const id = (req.params as { id: string }).id;
    const caller = callerOf(req);
    const job = await runner.find(id, caller);
    auditForeign(req, job, caller, 'jobs.results');
    const q = (req.query ?? {}) as Record<string, unknown>;
    const format = q.format === undefined || q.format === '' ? 'jsonl' : String(q.format);
    if (format !== 'jsonl' && format !== 'csv') throw invalid('format must be jsonl or csv');
    const download = boolParam(q.download, false);
    if (download) void reply.header('content-disposition', `attachment; filename="${job.id}.${format}"`);
    if (format === 'csv') {
      if (!TERMINAL.has(job.status)) {
        return sendConflict(
          req,
          reply,
          'JOB_NOT_FINISHED',
          `job is ${job.status}: CSV results are ready when it is done (JSONL streams while it runs)`,
          { status: job.status, done: job.done, total: job.total },
        );
      }
      return reply.type('text/csv; charset=utf-8').send(Readable.from(csvResults(runner, id)));
    }
    const follow = boolParam(q.follow, true);
    const from = intParam(q.from, 'from', 0, 0, Number.MAX_SAFE_INTEGER);
    void reply.header('x-job-status', job.status).header('x-job-total', String(job.total));
    return reply
      .type('application/x-ndjson; charset=utf-8')
      .send(Readable.from(jsonlResults(runner, id, from, follow)));
  });
}
