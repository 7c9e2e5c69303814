// The native REST API through a real server on loopback: every route and error code.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { connect } from 'node:net';
import { startGateway, request, type Harness } from './helpers.js';

function assertEnvelope(body: any, success: boolean): void {
  assert.equal(body.success, success, JSON.stringify(body));
  assert.equal(typeof body.message, 'string');
  assert.match(body.timestamp, /^\d{4}-\d\d-\d\dT/);
  assert.equal(typeof body.request_id, 'string');
  if (success) assert.ok('data' in body);
  else {
    assert.equal(typeof body.error.code, 'string');
    assert.ok('details' in body.error);
  }
}

describe('native REST API', () => {
  let h: Harness;
  before(async () => {
    h = await startGateway(['gc-scanner', 'revcomp', 'broken-py'], { default_model: 'revcomp' });
  });
  after(async () => h.close());

  it('answers health at the root for the default model', async () => {
    const r = await h.get('/health');
    assert.equal(r.status, 200);
    assertEnvelope(r.body, true);
    assert.equal(r.body.data.status, 'healthy');
    assert.equal(r.body.data.model, 'revcomp');
    assert.equal(r.body.data.version, '1.0.0');
    assert.equal(typeof r.body.data.uptime, 'number');
    assert.match(r.body.data.memory_usage, /MB|GB/);
  });

  it('describes the default model and any model by name', async () => {
    const root = await h.get('/model/info');
    assert.equal(root.status, 200);
    assert.deepEqual(root.body.data.tasks, ['reverse_complement']);
    assert.equal(root.body.data.max_sequence_length, 5120);
    const gc = await h.get('/models/gc-scanner/model/info');
    assert.deepEqual(gc.body.data.tasks, ['gc_content', 'motif_scan']);
    assert.deepEqual(gc.body.data.sequence_types, ['DNA', 'RNA']);
  });

  it('predicts through the root route with real output', async () => {
    const r = await h.post('/predict', { sequence: 'atgcRYN', options: { return_confidence: true } });
    assert.equal(r.status, 200);
    assertEnvelope(r.body, true);
    assert.equal(r.body.data.reverse_complement, 'NRYGCAT');
    assert.equal(r.body.data.sequence_length, 7);
    assert.equal(r.body.data.model, 'revcomp');
    assert.equal(typeof r.body.data.processing_time, 'number');
  });

  it('serves a Python and a Node model side by side, concurrently', async () => {
    const seqs = Array.from({ length: 40 }, (_, i) => 'ACGT'.repeat(i + 1) + 'GG');
    const calls = seqs.flatMap((s) => [
      h.post('/models/gc-scanner/predict', { sequence: s, task_type: 'gc_content' }),
      h.post('/models/revcomp/predict', { sequence: s }),
    ]);
    const res = await Promise.all(calls);
    res.forEach((r, i) => {
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const s = seqs[Math.floor(i / 2)]!;
      if (i % 2 === 0) {
        const gc = s.split('').filter((c) => c === 'G' || c === 'C').length / s.length;
        assert.ok(Math.abs(r.body.data.gc_content - gc) < 1e-12);
      } else {
        assert.equal(
          r.body.data.reverse_complement,
          s
            .split('')
            .reverse()
            .map((c) => ({ A: 'T', C: 'G', G: 'C', T: 'A' })[c])
            .join(''),
        );
      }
    });
  });

  it('runs batch predictions in order, with per-sequence results', async () => {
    const r = await h.post('/models/gc-scanner/predict/batch', {
      sequences: ['GGGG', 'ATAT', 'GCAT'],
      task_type: 'gc_content',
    });
    assert.equal(r.status, 200);
    assert.equal(r.body.data.total_sequences, 3);
    assert.deepEqual(
      r.body.data.predictions.map((p: any) => p.gc_content),
      [1, 0, 0.5],
    );
    assert.deepEqual(
      r.body.data.predictions.map((p: any) => p.sequence),
      ['GGGG', 'ATAT', 'GCAT'],
    );
  });

  it('rejects more than 100 sequences in a batch', async () => {
    const r = await h.post('/predict/batch', { sequences: Array(101).fill('ACGT') });
    assert.equal(r.status, 400);
    assertEnvelope(r.body, false);
    assert.equal(r.body.error.code, 'INVALID_REQUEST');
  });

  it('INVALID_SEQUENCE names the character and position', async () => {
    const r = await h.post('/predict', { sequence: 'ACGTXACGT' });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'INVALID_SEQUENCE');
    assert.equal(r.body.error.details.position, 5);
    assert.equal(r.body.error.details.character, 'X');
    const batch = await h.post('/predict/batch', { sequences: ['ACGT', 'AC!GT'] });
    assert.equal(batch.body.error.code, 'INVALID_SEQUENCE');
    assert.equal(batch.body.error.details.index, 1);
  });

  it('SEQUENCE_TOO_LONG above the task limit (5120 by default)', async () => {
    const r = await h.post('/predict', { sequence: 'A'.repeat(5121) });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'SEQUENCE_TOO_LONG');
    assert.equal(r.body.error.details.max_length, 5120);
    const ok = await h.post('/predict', { sequence: 'A'.repeat(5120) });
    assert.equal(ok.status, 200);
  });

  it('INVALID_REQUEST for malformed bodies, wrong types and unknown tasks', async () => {
    const cases: [unknown, RegExp][] = [
      ['{not json', /./],
      [{}, /sequence is required/],
      [{ sequence: 42 }, /must be a string/],
      [{ sequence: 'ACGT', task_type: 'nope' }, /no task "nope"/],
      [{ sequence: 'ACGT', options: 'x' }, /options/],
      [{ sequence: 'ACGT', extra: 1 }, /extra|Unrecognized/],
      [[1, 2], /JSON object/],
    ];
    for (const [body, message] of cases) {
      const r = await request<any>(`${h.url}/predict`, 'POST', body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assertEnvelope(r.body, false);
      assert.equal(r.body.error.code, 'INVALID_REQUEST');
      assert.match(r.body.message, message);
    }
    // A model of several tasks answers with its default task (its first, or default_task).
    const multi = await h.post('/models/gc-scanner/predict', { sequence: 'ACGT' });
    assert.equal(multi.status, 200);
    assert.equal(multi.body.data.task_type, 'gc_content');
  });

  it('PAYLOAD_TOO_LARGE beyond the body limit', async () => {
    // Prediction routes take predict_body_limit_bytes (16 MiB: images travel in them)…
    const r = await h.post('/predict', { sequence: 'A'.repeat(17 * 1024 * 1024) });
    assert.equal(r.status, 413);
    assert.equal(r.body.error.code, 'PAYLOAD_TOO_LARGE');
    // …every other route body_limit_bytes (2 MiB).
    const other = await h.post('/v1/models/reload', { pad: 'A'.repeat(3 * 1024 * 1024) });
    assert.equal(other.status, 413);
    assert.equal(other.body.error.code, 'PAYLOAD_TOO_LARGE');
  });

  it('MODEL_NOT_FOUND for unknown and hostile names', async () => {
    for (const name of ['nope', '..%2F..%2Fetc', 'A'.repeat(150)]) {
      const r = await h.post(`/models/${name}/predict`, { sequence: 'ACGT' });
      assert.equal(r.status, 404, name);
      assert.equal(r.body.error.code, 'MODEL_NOT_FOUND');
    }
    const unknownRoute = await h.get('/no/such/route');
    assert.equal(unknownRoute.status, 404);
    assertEnvelope(unknownRoute.body, false);
  });

  it('MODEL_NOT_LOADED for a model whose setup fails, with its reason', async () => {
    const before = await h.post('/models/broken-py/predict', { sequence: 'ACGT' });
    assert.equal(before.status, 503);
    assert.equal(before.body.error.code, 'MODEL_NOT_LOADED');
    const load = await h.post('/v1/models/broken-py/load');
    assert.equal(load.status, 503);
    assert.match(load.body.message, /weights not found/);
    const after = await h.post('/models/broken-py/predict', { sequence: 'ACGT' });
    assert.equal(after.body.error.code, 'MODEL_NOT_LOADED');
    assert.match(after.body.message, /weights not found/);
  });

  it('lists, unloads and loads models', async () => {
    const list = await h.get('/v1/models');
    assert.deepEqual(
      list.body.data.models.map((m: any) => m.name),
      ['broken-py', 'gc-scanner', 'revcomp'],
    );
    assert.equal(list.body.data.models.find((m: any) => m.name === 'revcomp').status, 'ready');
    const un = await h.post('/v1/models/revcomp/unload');
    assert.equal(un.status, 200);
    assert.equal(un.body.data.status, 'unloaded');
    const r = await h.post('/predict', { sequence: 'ACGT' });
    assert.equal(r.status, 503);
    assert.equal(r.body.error.code, 'MODEL_NOT_LOADED');
    const load = await h.post('/v1/models/revcomp/load');
    assert.equal(load.status, 200);
    assert.equal(load.body.data.status, 'ready');
    assert.equal((await h.post('/predict', { sequence: 'ACGT' })).status, 200);
    assert.equal((await h.post('/v1/models/nope/load')).status, 404);
  });

  it('reports JSON metrics for all models and per model', async () => {
    const all = await h.get('/metrics');
    assert.equal(all.status, 200);
    assert.ok(all.body.data.models['gc-scanner'].total_requests >= 40);
    assert.ok(all.body.data.system_metrics.cpu_count >= 1);
    const one = await h.get('/models/revcomp/metrics');
    assert.ok(one.body.data.model_metrics.successful_requests >= 1);
    assert.equal(typeof one.body.data.model_metrics.average_response_time, 'number');
  });

  it('health probes: live, startup, ready, detailed', async () => {
    assert.equal((await h.get('/health/live')).status, 200);
    assert.equal((await h.get('/health/startup')).status, 200);
    const ready = await h.get('/health/ready');
    assert.equal(ready.status, 200, JSON.stringify(ready.body));
    const d = await h.get('/health/detailed');
    const gc = d.body.data.models.find((m: any) => m.name === 'gc-scanner');
    assert.equal(gc.status, 'ready');
    assert.ok(gc.replicas[0].pid > 0);
    assert.equal(d.body.data.models.find((m: any) => m.name === 'broken-py').status, 'failed');
  });

  it('keeps a client request id and logs requests to SQLite', async () => {
    const r = await h.post('/predict', { sequence: 'ACGT' }, { 'x-request-id': 'client-id-123' });
    assert.equal(r.body.request_id, 'client-id-123');
    assert.equal(r.headers.get('x-request-id'), 'client-id-123');
    h.gw.store.flush();
    const db = new Database(join(h.stateDir, 'isomodel.db'), { readonly: true });
    const row = db.prepare('SELECT * FROM request_log WHERE request_id = ?').get('client-id-123') as any;
    const models = db.prepare('SELECT name, state FROM models ORDER BY name').all();
    db.close();
    assert.equal(row.model, 'revcomp');
    assert.equal(row.status, 'success');
    assert.deepEqual(
      models.map((m: any) => m.name),
      ['broken-py', 'gc-scanner', 'revcomp'],
    );
  });
});

describe('rate limiting', () => {
  let h: Harness;
  before(async () => {
    h = await startGateway(['revcomp'], { rate_limit: { max: 5, window_ms: 60_000 } });
  });
  after(async () => h.close());

  it('answers RATE_LIMITED with Retry-After past the per-client limit, never throttling probes', async () => {
    const codes: number[] = [];
    for (let i = 0; i < 7; i++) codes.push((await h.post('/predict', { sequence: 'ACGT' })).status);
    assert.deepEqual(codes, [200, 200, 200, 200, 200, 429, 429]);
    const r = await h.post('/predict', { sequence: 'ACGT' });
    assert.equal(r.body.error.code, 'RATE_LIMITED');
    assert.ok(Number(r.headers.get('retry-after')) > 0);
    assert.equal((await h.get('/health/live')).status, 200);
  });
});

describe('rate limiting with the defaults', () => {
  // Every other test gateway raises the limit (helpers.ts); this one keeps what a fresh install
  // gets, which the README promises: 100 requests per minute per client.
  let h: Harness;
  before(async () => {
    h = await startGateway(['revcomp'], { rate_limit: undefined });
  });
  after(async () => h.close());

  it('the default configuration limits each client to 100 requests a minute', async () => {
    assert.deepEqual(h.gw.config.rate_limit, { max: 100, window_ms: 60_000 });
    const codes: number[] = [];
    // Cheap routes count like predictions: the limit is per client, not per route.
    for (let i = 0; i < 99; i++) codes.push((await h.get('/v1/models')).status);
    codes.push((await h.post('/predict', { sequence: 'ACGT' })).status);
    assert.deepEqual(codes, Array(100).fill(200), 'the first 100 requests of the minute are served');
    const r = await h.post('/predict', { sequence: 'ACGT' });
    assert.equal(r.status, 429);
    assertEnvelope(r.body, false);
    assert.equal(r.body.error.code, 'RATE_LIMITED');
    assert.equal(r.body.error.details.limit, 100);
    const retry = Number(r.headers.get('retry-after'));
    assert.ok(retry > 0 && retry <= 60, `retry-after ${retry} s is within the 60 s window`);
    assert.equal((await h.get('/v1/models')).status, 429, 'and every route after it');
    assert.equal((await h.get('/health/live')).status, 200, 'probes are never limited');
    assert.equal((await h.get('/health/ready')).status, 200);
  });
});

describe('gateway shutdown', () => {
  it('does not wait on a client that connected and never sent a byte', async () => {
    // Node counts such a socket as busy, not idle, and no request timeout runs on it: close() waited until the client left.
    const h = await startGateway(['revcomp']);
    let closed = false;
    const silent = connect(Number(new URL(h.url).port), '127.0.0.1');
    try {
      await new Promise<void>((r, j) => silent.once('connect', () => r()).once('error', j));
      silent.on('close', () => (closed = true)).on('error', () => undefined);
      // A keep-alive client with a finished request is ended too (Fastify's idle close).
      assert.equal((await h.post('/models/revcomp/predict', { sequence: 'ACGT' })).status, 200);
    } finally {
      const timer = new Promise<'stuck'>((r) => setTimeout(() => r('stuck'), 30_000).unref());
      const outcome = await Promise.race([h.close().then(() => 'closed' as const), timer]);
      silent.destroy(); // else a failing run would hang here: without a request the socket has no timeout
      assert.equal(outcome, 'closed', 'close waited on the silent socket');
    }
    await new Promise((r) => setTimeout(r, 50));
    assert.ok(closed, 'the silent socket was closed by the gateway');
  });
});
