// Errors map to stable codes and statuses; internals never leak to clients.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isoNow, toIsoError } from '../src/api/envelope.js';
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
    assert.equal(toIsoError({ statusCode: 400, code: 'FST_ERR_CTP_INVALID_JSON_BODY', message: 'bad json' }).code, 'INVALID_REQUEST');
    assert.equal(toIsoError(new IsoError('QUEUE_FULL', 'full')).status, 429);
  });

  it('worker codes are kept when known, folded otherwise', () => {
    assert.equal(fromWorkerError('INVALID_SEQUENCE', 'x').status, 400);
    const odd = fromWorkerError('CUDA_OOM', 'x');
    assert.equal(odd.code, 'PREDICTION_FAILED');
    assert.deepEqual(odd.details, { worker_code: 'CUDA_OOM' });
  });

  it('every documented code has its HTTP status', () => {
    assert.deepEqual(
      ['INVALID_REQUEST', 'INVALID_SEQUENCE', 'SEQUENCE_TOO_LONG', 'MODEL_NOT_FOUND', 'RATE_LIMITED', 'MODEL_NOT_LOADED', 'PREDICTION_FAILED', 'INTERNAL_ERROR'].map((c) => ERROR_STATUS[c as keyof typeof ERROR_STATUS]),
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
