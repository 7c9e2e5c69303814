// Prediction bodies that are not JSON: a raw image or audio body (its content type says which),
// or multipart/form-data with one or more file parts and the request's other fields as form
// fields (`task_type`, `sequence_type`, `timeout_ms`, `priority`, `stream`, and `options` as JSON
// text). Both become the same object a JSON body would be, with the bytes as RawMedia, so one
// parser (predict-request.ts) validates every spelling.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import multipart from '@fastify/multipart';
import { IsoError } from '../errors.js';
import { RawMedia } from '../validation/inputs/index.js';

/** Raw bodies taken by the prediction routes. */
export const MEDIA_BODY = /^(image|audio)\/[a-z0-9.+-]+$/i;

const FIELDS = new Set(['task_type', 'sequence_type', 'timeout_ms', 'priority', 'stream', 'options']);

export interface MediaBodyLimits {
  /** Bytes of one raw body or file part. */
  maxBytes: number;
  /** File parts in one multipart request (the batch limit). */
  maxFiles: number;
}

/** Registers the raw media parser and multipart support on the app (prediction routes read them). */
export async function registerMediaBodies(app: FastifyInstance, limits: MediaBodyLimits): Promise<void> {
  app.addContentTypeParser(MEDIA_BODY, { parseAs: 'buffer', bodyLimit: limits.maxBytes }, (req, body, done) => {
    done(null, new RawMedia(body as Buffer, String(req.headers['content-type'] ?? '')));
  });
  await app.register(multipart, {
    limits: {
      fileSize: limits.maxBytes,
      files: limits.maxFiles,
      fields: FIELDS.size,
      fieldSize: 64 * 1024,
      parts: limits.maxFiles + FIELDS.size,
      headerPairs: 100,
    },
    throwFileSizeLimit: true,
  });
}

function queryFields(req: FastifyRequest): Record<string, unknown> {
  const q = (req.query ?? {}) as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(q)) if (FIELDS.has(k)) out[k] = q[k];
  return out;
}

/** A form field's text as the JSON body would carry it. */
function fieldValue(name: string, text: string): unknown {
  if (name === 'options') {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      throw new IsoError('INVALID_REQUEST', 'the options field must be a JSON object');
    }
  }
  if (name === 'timeout_ms' || name === 'priority') return Number(text);
  if (name === 'stream') return text === 'true' || text === '1';
  return text;
}

/**
 * The body of a prediction request as an object, whatever it arrived as; null when it is an
 * ordinary JSON body (left to the caller as it is).
 */
export async function mediaBody(
  req: FastifyRequest,
  kind: 'single' | 'batch',
): Promise<Record<string, unknown> | null> {
  const key = kind === 'single' ? 'input' : 'inputs';
  if (req.body instanceof RawMedia) {
    const fields = queryFields(req);
    for (const [k, v] of Object.entries(fields)) fields[k] = typeof v === 'string' ? fieldValue(k, v) : v;
    return { ...fields, [key]: kind === 'single' ? req.body : [req.body] };
  }
  if (!req.isMultipart()) return null;
  const body: Record<string, unknown> = queryFields(req);
  const files: RawMedia[] = [];
  try {
    for await (const part of req.parts()) {
      if (part.type === 'file') files.push(new RawMedia(await part.toBuffer(), part.mimetype));
      else if (FIELDS.has(part.fieldname)) body[part.fieldname] = fieldValue(part.fieldname, String(part.value));
      else
        throw new IsoError(
          'INVALID_REQUEST',
          `unknown form field "${part.fieldname.slice(0, 64)}"; fields: ${[...FIELDS].join(', ')}, and file parts`,
        );
    }
  } catch (e) {
    if (e instanceof IsoError) throw e;
    const code = (e as { code?: string }).code;
    if (code === 'FST_REQ_FILE_TOO_LARGE')
      throw new IsoError(
        'PAYLOAD_TOO_LARGE',
        `a file part is over ${(e as Error).message.replace(/^.*?(\d+).*$/, '$1')} bytes`,
      );
    if (code === 'FST_FILES_LIMIT' || code === 'FST_PARTS_LIMIT')
      throw new IsoError(
        'INVALID_REQUEST',
        `too many parts: at most ${kind === 'single' ? 1 : 'max_batch_sequences'} files`,
      );
    throw new IsoError('INVALID_REQUEST', `malformed multipart body: ${(e as Error).message}`);
  }
  if (files.length === 0) throw new IsoError('INVALID_REQUEST', 'a multipart prediction needs at least one file part');
  if (kind === 'single' && files.length > 1)
    throw new IsoError(
      'INVALID_REQUEST',
      `a single prediction takes one file (got ${files.length}); use /predict/batch`,
    );
  body[key] = kind === 'single' ? files[0] : files;
  return body;
}
