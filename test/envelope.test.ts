// Errors map to stable codes and statuses; internals never leak to clients.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { errorEnvelope, isoNow, okEnvelope, sendError, toIsoError } from '../src/api/envelope.js';
import { ERROR_STATUS, IsoError, fromWorkerError } from '../src/errors.js';

describe('error mapping', () => {
  it('an unexpected exception is INTERNAL_ERROR without its message or stack', () => {
    const e = toIsoError(new TypeError('cannot read properties of undefined (secret path /etc/x)'));
    assert.equal(e.code, 'INTERNAL_ERROR');
    assert.equal(e.status, 500);
    assert.equal(e.message, 'internal error');
  });

  it('framework errors keep their meaning', () => {
    assert.equal(toIsoError({ statusCode: 413, message: 'too large' }).code, 'PAYLOAD_TOO_LARGE');
    assert.equal(toIsoError({ statusCode: 415 }).code, 'INVALID_REQUEST');
    assert.equal(
      toIsoError({ statusCode: 400, code: 'FST_ERR_CTP_INVALID_JSON_BODY', message: 'bad json' }).code,
      'INVALID_REQUEST',
    );
    assert.equal(toIsoError(new IsoError('QUEUE_FULL', 'full')).status, 429);
  });

  it('each framework status maps to its code, message and details exactly', () => {
    const same = new IsoError('QUEUE_FULL', 'full');
    assert.equal(toIsoError(same), same, 'an IsoError passes through as it is');
    const big = toIsoError({ statusCode: 413, message: 'Request body is too large' });
    assert.deepEqual(
      [big.code, big.status, big.message, big.details],
      ['PAYLOAD_TOO_LARGE', 413, 'request body is too large', { limit: 'see body_limit_bytes' }],
    );
    const media = toIsoError({ statusCode: 415, message: 'Unsupported Media Type: text/plain' });
    assert.deepEqual(
      [media.code, media.status, media.message, media.details],
      ['INVALID_REQUEST', 400, 'content-type must be application/json', undefined],
    );
    const limited = toIsoError({ statusCode: 429, message: 'slow down' });
    assert.deepEqual([limited.code, limited.status, limited.message], ['RATE_LIMITED', 429, 'slow down']);
    assert.equal(toIsoError({ statusCode: 429 }).message, 'too many requests');
    const json = toIsoError({ statusCode: 400, code: 'FST_ERR_CTP_INVALID_JSON_BODY', message: 'bad json' });
    assert.deepEqual([json.message, json.details], ['bad json', { fastify_code: 'FST_ERR_CTP_INVALID_JSON_BODY' }]);
    const bare = toIsoError({ statusCode: 404 });
    assert.deepEqual([bare.code, bare.message, bare.details], ['INVALID_REQUEST', 'invalid request', undefined]);
    assert.equal(
      toIsoError({ statusCode: 499, message: 'x' }).code,
      'INVALID_REQUEST',
      'the last 4xx is a client error',
    );
    for (const statusCode of [500, 502, 399, 200]) {
      const e = toIsoError({ statusCode, message: 'secret detail' });
      assert.deepEqual([e.code, e.message], ['INTERNAL_ERROR', 'internal error'], `status ${statusCode}`);
    }
    assert.equal(toIsoError(null).code, 'INTERNAL_ERROR');
  });

  it('a full or read-only state dir is STORAGE_UNAVAILABLE (507), not a 500', () => {
    const e = toIsoError(Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' }));
    assert.equal(e.code, 'STORAGE_UNAVAILABLE');
    assert.equal(e.status, 507);
    assert.equal((e.details as { storage_code: string }).storage_code, 'SQLITE_FULL');
    assert.equal(toIsoError(Object.assign(new Error('x'), { code: 'EROFS' })).code, 'STORAGE_UNAVAILABLE');
    assert.equal(toIsoError(Object.assign(new Error('x'), { code: 'ENOENT' })).code, 'INTERNAL_ERROR');
  });

  it('worker codes are kept when known, folded otherwise', () => {
    assert.equal(fromWorkerError('INVALID_SEQUENCE', 'x').status, 400);
    const odd = fromWorkerError('CUDA_OOM', 'x');
    assert.equal(odd.code, 'PREDICTION_FAILED');
    assert.deepEqual(odd.details, { worker_code: 'CUDA_OOM' });
  });

  it('every documented code has its HTTP status', () => {
    assert.deepEqual(
      [
        'INVALID_REQUEST',
        'INVALID_SEQUENCE',
        'SEQUENCE_TOO_LONG',
        'MODEL_NOT_FOUND',
        'RATE_LIMITED',
        'MODEL_NOT_LOADED',
        'PREDICTION_FAILED',
        'INTERNAL_ERROR',
      ].map((c) => ERROR_STATUS[c as keyof typeof ERROR_STATUS]),
      [400, 400, 400, 404, 429, 503, 500, 500],
    );
  });
});

describe('envelope timestamps', () => {
  it('isoNow() is the current millisecond, reused within it and moving on after it', async () => {
    const before = Date.now();
    const a = isoNow();
    assert.match(a, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.ok(Date.parse(a) >= before && Date.parse(a) <= Date.now());
    await new Promise((r) => setTimeout(r, 5));
    const b = isoNow();
    assert.ok(Date.parse(b) > Date.parse(a), `${b} is later than ${a}`);
  });
});

describe('the envelope builders', () => {
  const req = { id: 'req-42' } as unknown as FastifyRequest;
  const iso = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

  it('okEnvelope: success, the message (ok by default), the data as given, a timestamp and the request id', () => {
    const data = { answer: [1, 2, 3] };
    const before = Date.now();
    const e = okEnvelope(req, data, 'prediction done');
    assert.deepEqual(Object.keys(e), ['success', 'message', 'data', 'timestamp', 'request_id']);
    assert.equal(e.success, true);
    assert.equal(e.message, 'prediction done');
    assert.equal(e.data, data, 'the data object itself, not a copy');
    assert.equal(e.request_id, 'req-42');
    assert.match(e.timestamp, iso);
    assert.ok(Date.parse(e.timestamp) >= before - 1 && Date.parse(e.timestamp) <= Date.now());
    assert.equal(okEnvelope(req, null).message, 'ok');
    assert.equal(okEnvelope(req, null).data, null);
  });

  it('errorEnvelope: no data, the error code with its details, or the message when it has none', () => {
    const withDetails = errorEnvelope(req, new IsoError('INVALID_SEQUENCE', 'bad letter', { position: 3 }));
    assert.deepEqual(Object.keys(withDetails), ['success', 'message', 'error', 'timestamp', 'request_id']);
    assert.deepEqual(
      { ...withDetails, timestamp: 'T' },
      {
        success: false,
        message: 'bad letter',
        error: { code: 'INVALID_SEQUENCE', details: { position: 3 } },
        timestamp: 'T',
        request_id: 'req-42',
      },
    );
    assert.match(withDetails.timestamp, iso);
    assert.deepEqual(errorEnvelope(req, new IsoError('MODEL_NOT_FOUND', 'no model x')).error, {
      code: 'MODEL_NOT_FOUND',
      details: 'no model x',
    });
    assert.ok(!('data' in withDetails));
  });

  it("sendError: the error's status, Retry-After only when the error has one, and the envelope as the body", () => {
    const sent: { status?: number; headers: Record<string, string>; body?: unknown } = { headers: {} };
    const reply = {
      header(k: string, v: string) {
        sent.headers[k] = v;
        return this;
      },
      code(c: number) {
        sent.status = c;
        return this;
      },
      send(b: unknown) {
        sent.body = b;
        return this;
      },
    } as unknown as FastifyReply;
    assert.equal(sendError(req, reply, new IsoError('QUEUE_FULL', 'queue is full', undefined, 2)), reply);
    assert.equal(sent.status, 429);
    assert.deepEqual(sent.headers, { 'retry-after': '2' });
    assert.deepEqual(
      { ...(sent.body as object), timestamp: 'T' },
      {
        success: false,
        message: 'queue is full',
        error: { code: 'QUEUE_FULL', details: 'queue is full' },
        timestamp: 'T',
        request_id: 'req-42',
      },
    );
    sent.headers = {};
    sendError(req, reply, new IsoError('MODEL_NOT_LOADED', 'loading', undefined, 0));
    assert.deepEqual(sent.headers, { 'retry-after': '0' }, 'zero seconds is still a Retry-After');
    sent.headers = {};
    sendError(req, reply, new IsoError('INVALID_REQUEST', 'bad'));
    assert.equal(sent.status, 400);
    assert.deepEqual(sent.headers, {});
  });
});
