// Server-Sent Events on the native predict routes, through a real gateway on loopback.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startGateway, waitFor, type Harness } from './helpers.js';
import { readEvents } from './sse.js';

function post(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
  signal?: AbortSignal,
): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
    signal,
  });
}

function reverseComplement(s: string): string {
  const c: Record<string, string> = { A: 'T', C: 'G', G: 'C', T: 'A' };
  return [...s]
    .reverse()
    .map((b) => c[b]!)
    .join('');
}

const SEQ = Array.from({ length: 250 }, (_, i) => 'ACGT'[(i * 7 + (i >> 3)) % 4]).join('');

describe('native API: Server-Sent Events', () => {
  let h: Harness;
  before(async () => {
    h = await startGateway(['revcomp', 'gc-scanner', 'chaos-py'], { default_model: 'revcomp' });
  });
  after(async () => h.close());

  it('streams revcomp chunks that concatenate to the reverse complement, then the normal envelope', async () => {
    const res = await post(
      `${h.url}/models/revcomp/predict`,
      { sequence: SEQ.toLowerCase(), stream: true, options: { chunk_size: 16 } },
      { 'x-request-id': 'sse-test-1' },
    );
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    assert.equal(res.headers.get('x-request-id'), 'sse-test-1');
    assert.match(res.headers.get('cache-control') ?? '', /no-cache/);
    const events = await readEvents(res);
    const chunks = events.filter((e) => e.event === 'chunk').map((e) => JSON.parse(e.data));
    assert.equal(chunks.length, Math.ceil(SEQ.length / 16));
    for (const c of chunks) assert.equal(c.index, 0);
    assert.equal(chunks.map((c) => c.data.text).join(''), reverseComplement(SEQ));
    // The result is the last event, after every chunk, and nothing follows it.
    assert.equal(events.length, chunks.length + 1);
    const last = events.at(-1)!;
    assert.equal(last.event, 'result');
    const env = JSON.parse(last.data);
    assert.equal(env.success, true);
    assert.equal(env.message, 'prediction done');
    assert.equal(env.request_id, 'sse-test-1');
    assert.match(env.timestamp, /^\d{4}-\d\d-\d\dT/);
    assert.equal(env.data.reverse_complement, reverseComplement(SEQ));
    assert.equal(env.data.sequence_length, SEQ.length);
    assert.equal(env.data.model, 'revcomp');
    assert.equal(env.data.task_type, 'reverse_complement');
    assert.equal(typeof env.data.processing_time, 'number');
  });

  it('the result event carries the same envelope as the JSON route', async () => {
    const body = { sequence: 'ATGCRYNNACGT' };
    const plain = (await (await post(`${h.url}/models/revcomp/predict`, body)).json()) as any;
    const events = await readEvents(await post(`${h.url}/models/revcomp/predict`, { ...body, stream: true }));
    const streamed = JSON.parse(events.at(-1)!.data);
    const strip = (e: any) => ({
      ...e,
      timestamp: undefined,
      request_id: undefined,
      data: { ...e.data, processing_time: undefined },
    });
    assert.deepEqual(strip(streamed), strip(plain));
  });

  it('Accept: text/event-stream streams too (Cog-style), also on the root route', async () => {
    const res = await post(
      `${h.url}/predict`,
      { sequence: SEQ, options: { chunk_size: 100 } },
      { accept: 'text/event-stream' },
    );
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    const events = await readEvents(res);
    assert.deepEqual(
      events.map((e) => e.event),
      ['chunk', 'chunk', 'chunk', 'result'],
    );
    assert.equal(
      events
        .slice(0, 3)
        .map((e) => JSON.parse(e.data).data.text)
        .join(''),
      reverseComplement(SEQ),
    );
    // An explicit "stream": false wins over the Accept header.
    const json = await post(`${h.url}/predict`, { sequence: 'ACGT', stream: false }, { accept: 'text/event-stream' });
    assert.match(json.headers.get('content-type') ?? '', /^application\/json/);
    assert.equal(((await json.json()) as any).data.reverse_complement, 'ACGT');
    // Other Accept headers keep JSON.
    const other = await post(
      `${h.url}/predict`,
      { sequence: 'ACGT' },
      { accept: 'application/json, text/event-stream;q=0' },
    );
    assert.match(other.headers.get('content-type') ?? '', /^application\/json/);
  });

  it('a model without stream answers with a single result event', async () => {
    const res = await post(`${h.url}/models/gc-scanner/predict`, {
      sequence: 'GGCCAATT',
      task_type: 'gc_content',
      stream: true,
    });
    assert.equal(res.status, 200);
    const events = await readEvents(res);
    assert.equal(events.length, 1);
    assert.equal(events[0]!.event, 'result');
    const env = JSON.parse(events[0]!.data);
    assert.equal(env.success, true);
    assert.equal(env.data.gc_content, 0.5);
    assert.equal(env.data.model, 'gc-scanner');
  });

  it('validation errors before the stream starts are JSON with their status codes', async () => {
    const cases: [string, unknown, Record<string, string>, number, string][] = [
      ['/models/revcomp/predict', { sequence: 'ACGTX', stream: true }, {}, 400, 'INVALID_SEQUENCE'],
      ['/models/revcomp/predict', { sequence: 'A'.repeat(5121), stream: true }, {}, 400, 'SEQUENCE_TOO_LONG'],
      ['/models/revcomp/predict', { sequence: 'ACGT', stream: 'yes' }, {}, 400, 'INVALID_REQUEST'],
      [
        '/models/gc-scanner/predict',
        { sequence: 'ACGT', task_type: 'folding' },
        { accept: 'text/event-stream' },
        400,
        'INVALID_REQUEST',
      ],
      ['/models/nope/predict', { sequence: 'ACGT', stream: true }, {}, 404, 'MODEL_NOT_FOUND'],
      // Batches do not stream: the flag is an unknown key there.
      ['/models/revcomp/predict/batch', { sequences: ['ACGT'], stream: true }, {}, 400, 'INVALID_REQUEST'],
    ];
    for (const [path, body, headers, status, code] of cases) {
      const res = await post(h.url + path, body, headers);
      assert.equal(res.status, status, `${path} ${JSON.stringify(body).slice(0, 60)}`);
      assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
      const env = (await res.json()) as any;
      assert.equal(env.success, false);
      assert.equal(env.error.code, code);
    }
  });

  it('an error after the stream has started arrives as an error event with the envelope', async () => {
    // 40 steps 50 ms apart outlast the request's 300 ms deadline.
    const res = await post(`${h.url}/models/chaos-py/predict`, {
      sequence: 'ACGT',
      stream: true,
      timeout_ms: 300,
      options: { steps: 40, delay: 0.05 },
    });
    assert.equal(res.status, 200);
    const events = await readEvents(res);
    const last = events.at(-1)!;
    assert.equal(last.event, 'error');
    const env = JSON.parse(last.data);
    assert.equal(env.success, false);
    assert.equal(env.error.code, 'PREDICTION_TIMEOUT');
    const chunks = events.filter((e) => e.event === 'chunk');
    assert.ok(chunks.length >= 1 && chunks.length < 40, `${chunks.length} chunks before the deadline`);
    assert.deepEqual(JSON.parse(chunks[0]!.data), { index: 0, data: { step: 0 } });
  });

  it('a client that disconnects mid-stream cancels the work: the worker is free long before the stream would end', async () => {
    const dep = h.gw.registry.deployment('chaos-py')!;
    await waitFor(() => dep.replicaInfo().every((r) => !r.busy && r.state === 'ready'));
    const [replica] = dep.replicaInfo();
    assert.equal(dep.replicaInfo().length, 1, 'one replica: a following request has to wait for it');
    const cancelledBefore = dep.stats.errorsByCode.CANCELLED ?? 0;

    // 38 steps 50 ms apart: about 1.9 s of streaming (the model's deadline is 2 s).
    const t0 = Date.now();
    const ac = new AbortController();
    const res = await post(
      `${h.url}/models/chaos-py/predict`,
      { sequence: 'ACGT', stream: true, options: { steps: 38, delay: 0.05 } },
      {},
      ac.signal,
    );
    assert.equal(res.status, 200);
    const seen = await readEvents(res, (events) => events.length >= 2);
    assert.deepEqual(
      seen.slice(0, 2).map((e) => JSON.parse(e.data).data.step),
      [0, 1],
    );
    assert.equal(dep.replicaInfo()[0]!.busy, true, 'the replica is streaming');
    ac.abort();
    const tAbort = Date.now();

    // The worker stops between steps and is idle again almost at once...
    await waitFor(() => !dep.replicaInfo()[0]!.busy, 1000, 5);
    const freedAfter = Date.now() - tAbort;
    // ...so the next request is served by the same worker process well before the stream's end.
    const next = await post(`${h.url}/models/chaos-py/predict`, { sequence: 'ACGTACGT' });
    assert.equal(next.status, 200);
    assert.equal(((await next.json()) as any).data.length, 8);
    const elapsed = Date.now() - t0;
    assert.ok(elapsed < 1200, `stream start to next answer took ${elapsed} ms; the stream alone needs ~1900 ms`);
    assert.ok(freedAfter < 500, `worker freed ${freedAfter} ms after the disconnect`);
    const after = dep.replicaInfo();
    assert.equal(after.length, 1);
    assert.equal(after[0]!.pid, replica!.pid, 'cancelled, not killed: same worker process');
    assert.equal(after[0]!.restarts, replica!.restarts);
    await waitFor(() => (dep.stats.errorsByCode.CANCELLED ?? 0) === cancelledBefore + 1, 1000);
  });
});
