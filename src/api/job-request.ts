// The job API's request grammar (docs/jobs.md): the JSON submission and the raw upload's query
// string, who is asking, what makes two submissions the same, and the query parameters.
import type { FastifyRequest } from 'fastify';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { IsoError } from '../errors.js';
import { formatFromContentType, INPUT_FORMATS, type InputFormat } from '../jobs/formats.js';
import { submissionHash } from '../jobs/intake.js';
import { canonical } from '../jobs/json-body.js';
import { MAX_CHUNK_SIZE, MAX_WORKERS, type JobCaller, type JobSettings, type JobSpec } from '../jobs/runner.js';
import { hasScope } from '../security/keys.js';
import { describeZod } from '../validation/zod-message.js';

export const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;
/** Bodies read as an upload (streamed to disk), not parsed by Fastify. */
export const RAW_TYPES = [
  'text/plain',
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

/** A JSON list field (its entries are read from the upload, not here). */
const list = z.custom<unknown[]>((v) => Array.isArray(v), 'expected an array');

const jobBody = z
  .object({
    model: z.string().min(1).max(64).optional(),
    task: z.string().max(64).optional(),
    task_type: z.string().max(64).optional(),
    pipeline: z.record(z.string(), z.unknown()).optional(),
    pipeline_yaml: z.string().max(100_000).optional(),
    sequences: list.optional(),
    inputs: list.optional(),
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

export function invalid(message: string): IsoError {
  return new IsoError('INVALID_REQUEST', message);
}

function jobOptions(options: Record<string, unknown>, organism: string | undefined): Record<string, unknown> {
  return organism === undefined ? options : { ...options, organism };
}

/** Who is asking. Every job route needs a principal (auth sets one before any handler runs). */
export function callerOf(req: FastifyRequest): JobCaller {
  const p = req.principal;
  if (!p) throw new IsoError('UNAUTHORIZED', 'an API key is required: send Authorization: Bearer <key> or X-API-Key');
  return { id: p.id, name: p.name, admin: hasScope(p.scopes, 'admin') };
}

/** Where a JSON submission's records come from: its list, read from the upload entry by entry, or its file text. */
export type JsonSource = { kind: 'list' } | { kind: 'text'; text: string; format: InputFormat | undefined };

/**
 * A JSON submission: a model or a pipeline, and sequences, inputs (exchange objects) or data
 * (file text). `body` holds its members, its list (if any) as an empty placeholder.
 */
export function fromJson(body: unknown): { spec: JobSpec; settings: JobSettings; source: JsonSource } {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw invalid('request body must be a JSON object');
  const parsed = jobBody.safeParse(body);
  if (!parsed.success) throw invalid(describeZod(parsed.error));
  const b = parsed.data;
  const sources = (['sequences', 'inputs', 'data'] as const).filter((k) => b[k] !== undefined);
  if (sources.length !== 1)
    throw invalid('give exactly one of sequences (a list), inputs (exchange objects) or data (file text, with format)');
  const targets = (['model', 'pipeline', 'pipeline_yaml'] as const).filter((k) => b[k] !== undefined);
  if (targets.length !== 1) throw invalid('give exactly one of model, pipeline (an object) or pipeline_yaml (text)');
  const source: JsonSource = b.data !== undefined ? { kind: 'text', text: b.data, format: b.format } : { kind: 'list' };
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
  return {
    spec,
    settings: { name: b.name, workers: b.workers, chunkSize: b.chunk_size, priority: b.priority },
    source,
  };
}

/** A raw upload's settings: the model and settings in the query string, the format from ?format or the content type (else sniffed). */
export function fromRaw(
  contentType: string | undefined,
  query: unknown,
): { spec: JobSpec; settings: JobSettings; format: InputFormat | undefined } {
  const parsed = rawQuery.safeParse(query ?? {});
  if (!parsed.success)
    throw invalid(
      `query: ${describeZod(parsed.error)} (a raw upload names the model and task in the query string: ?model=…&task=…)`,
    );
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
  return {
    spec: { kind: 'predict', model: q.model, task: q.task ?? q.task_type, options: jobOptions(options, q.organism) },
    settings: { name: q.name, workers: q.workers, chunkSize: q.chunk_size, priority: q.priority },
    format: q.format ?? formatFromContentType(contentType),
  };
}

/** Content type (lowercase, without parameters) and query: with the body, what makes two submissions the same. */
export function hashOf(req: FastifyRequest): ReturnType<typeof submissionHash> {
  const ct = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  return submissionHash(ct === 'application/json' ? 'json' : ct, canonical(req.query ?? {}));
}

export function boolParam(v: unknown, dflt: boolean): boolean {
  if (v === undefined || v === '') return dflt;
  if (v === 'true' || v === '1' || v === 'yes') return true;
  if (v === 'false' || v === '0' || v === 'no') return false;
  throw invalid(`expected true or false, got "${String(v)}"`);
}

export function intParam(v: unknown, name: string, dflt: number, min: number, max: number): number {
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw invalid(`${name} must be an integer from ${min} to ${max}`);
  return n;
}
