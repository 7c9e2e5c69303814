// Every batch-shaped surface holds a request to the same max_batch_sequences, with the same
// error (400 INVALID_REQUEST, details {max, got, limit}), in its own error shape, before any
// sequence reaches a model: native batch routes, the deployment API's batch_inference, OpenAI
// embeddings, OIP v2 infer (which took 260,000 items), MCP tools and the Agent API.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { startGateway, type Harness } from './helpers.js';

const MAX = 3;
const seqs = (n: number): string[] => Array.from({ length: n }, (_, i) => 'ACGT'.repeat(1 + (i % 3)));
const LIMIT_MESSAGE = new RegExp(
  `at most ${MAX} (sequences per request|requests per batch|inputs per request) \\(got (${MAX + 1}|more than ${MAX}|\\d+); max_batch_sequences\\)`,
);

describe('one max_batch_sequences on every batch-shaped surface', () => {
  let h: Harness;
  let mcp: Client;
  /** Worker batches so far, over both models: an over-limit request must not add any. */
  const workerBatches = (): number =>
    ['revcomp', 'dna-embed'].reduce((n, m) => n + h.gw.registry.deployment(m)!.stats.batches, 0);

  before(async () => {
    h = await startGateway(['revcomp', 'dna-embed'], { max_batch_sequences: MAX, default_model: 'revcomp' });
    mcp = new Client({ name: 'batch-limits', version: '1.0.0' });
    await mcp.connect(new StreamableHTTPClientTransport(new URL(`${h.url}/mcp`)));
  });
  after(async () => {
    await mcp?.close().catch(() => undefined);
    await h?.close();
  });

  function assertNativeLimit(r: { status: number; body: any }, got: number | string = MAX + 1): void {
    assert.equal(r.status, 400, JSON.stringify(r.body).slice(0, 300));
    assert.equal(r.body.success, false);
    assert.equal(r.body.error.code, 'INVALID_REQUEST');
    assert.match(r.body.message, LIMIT_MESSAGE);
    assert.deepEqual(r.body.error.details, { max: MAX, got, limit: 'max_batch_sequences' });
  }

  it('native: /predict/batch and /models/{name}/predict/batch', async () => {
    for (const path of ['/predict/batch', '/models/revcomp/predict/batch']) {
      const ok = await h.post(path, { sequences: seqs(MAX) });
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
      assert.equal(ok.body.data.total_sequences, MAX);
      const before = workerBatches();
      assertNativeLimit(await h.post(path, { sequences: seqs(MAX + 1) }));
      // Counted before the list is parsed: a list whose items are wrong is still refused for its size.
      assertNativeLimit(await h.post(path, { sequences: [...seqs(MAX), 7], task_type: 'reverse_complement' }));
      assertNativeLimit(await h.post(path, { sequences: Array(20_000).fill({}) }), 20_000);
      assert.equal(workerBatches(), before);
    }
  });

  it('deployment API: batch_inference', async () => {
    const requests = (n: number) => seqs(n).map((s) => ({ input_data: s }));
    const ok = await h.post('/api/v1/models/revcomp/batch_inference', { requests: requests(MAX) });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(ok.body.data.total_requests, MAX);
    const before = workerBatches();
    const r = await h.post('/api/v1/models/revcomp/batch_inference', { requests: requests(MAX + 1) });
    assertNativeLimit(r);
    assert.match(r.body.message, /at most 3 requests per batch/);
    assertNativeLimit(
      await h.post('/api/v1/models/revcomp/batch_inference', { requests: Array(50_000).fill(1) }),
      50_000,
    );
    assert.equal(workerBatches(), before);
  });

  it('OpenAI: /v1/embeddings input arrays', async () => {
    const ok = await h.post('/v1/embeddings', { model: 'dna-embed', input: seqs(MAX) });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(ok.body.data.length, MAX);
    const before = workerBatches();
    const r = await h.post('/v1/embeddings', { model: 'dna-embed', input: seqs(MAX + 1) });
    assert.equal(r.status, 400, JSON.stringify(r.body));
    assert.deepEqual(Object.keys(r.body), ['error']);
    assert.equal(r.body.error.code, 'invalid_request');
    assert.equal(r.body.error.type, 'invalid_request_error');
    assert.equal(r.body.error.param, 'input');
    assert.match(r.body.error.message, LIMIT_MESSAGE);
    assert.equal(workerBatches(), before);
  });

  it('OIP v2: the shape, the data and nested data are all held to the limit, in the OIP error shape', async () => {
    const infer = (shape: number[], data: unknown) =>
      h.post('/v2/models/revcomp/infer', { inputs: [{ name: 'sequences', datatype: 'BYTES', shape, data }] });
    const ok = await infer(
      [MAX, 1],
      seqs(MAX).map((s) => [s]),
    );
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.deepEqual(ok.body.outputs[0].shape, [MAX]);
    const before = workerBatches();
    const cases: [number[], unknown, RegExp][] = [
      [[MAX + 1], seqs(MAX + 1), /got 4;/],
      // The shape alone is enough: refused before the data is read.
      [[260_000], seqs(MAX), /got 260000;/],
      [[260_000, 1], 'not even a list', /got 260000;/],
      // A shape within the limit over data that holds more (nested lists are flattened).
      [[MAX], Array.from({ length: 1000 }, () => Array(260).fill('ACGT')), /got more than 3;/],
      [[MAX], [...seqs(MAX), 'ACGT'], /got more than 3;/],
    ];
    for (const [shape, data, got] of cases) {
      const r = await infer(shape, data);
      assert.equal(r.status, 400, `${JSON.stringify(shape)}: ${JSON.stringify(r.body)}`);
      assert.deepEqual(Object.keys(r.body), ['error']);
      assert.match(r.body.error, LIMIT_MESSAGE);
      assert.match(r.body.error, got);
    }
    // Versioned route too.
    const v = await h.post('/v2/models/revcomp/versions/1.0.0/infer', {
      inputs: [{ name: 'sequences', datatype: 'BYTES', shape: [MAX + 1], data: seqs(MAX + 1) }],
    });
    assert.equal(v.status, 400, JSON.stringify(v.body));
    assert.match(v.body.error, LIMIT_MESSAGE);
    assert.equal(workerBatches(), before);
  });

  it('MCP: per-task tools and analyze_sequences, with or without a model', async () => {
    const call = async (name: string, args: Record<string, unknown>) =>
      (await mcp.callTool({ name, arguments: args })) as CallToolResult;
    const ok = await call('revcomp__reverse_complement', { sequences: seqs(MAX) });
    assert.ok(!ok.isError, JSON.stringify(ok.content));
    const before = workerBatches();
    for (const [tool, args] of [
      ['revcomp__reverse_complement', { sequences: seqs(MAX + 1) }],
      ['analyze_sequences', { sequences: seqs(MAX + 1), task_type: 'reverse_complement' }],
      ['analyze_sequences', { sequences: seqs(MAX + 1), task_type: 'reverse_complement', model: 'revcomp' }],
    ] as const) {
      const r = await call(tool, args);
      assert.equal(r.isError, true, `${tool}: ${JSON.stringify(r.content).slice(0, 300)}`);
      const body = r.structuredContent as {
        error: { code: string; status: number; message: string; details: unknown };
      };
      assert.equal(body.error.code, 'INVALID_REQUEST');
      assert.equal(body.error.status, 400);
      assert.match(body.error.message, LIMIT_MESSAGE);
      assert.deepEqual(body.error.details, { max: MAX, got: MAX + 1, limit: 'max_batch_sequences' });
    }
    // tools/list advertises the same bound.
    const { tools } = await mcp.listTools();
    const tool = tools.find((t) => t.name === 'revcomp__reverse_complement')!;
    assert.equal((tool.inputSchema.properties as { sequences: { maxItems: number } }).sequences.maxItems, MAX);
    assert.equal(workerBatches(), before);
  });

  it('Agent API: /agent/analyze', async () => {
    const ok = await h.post('/agent/analyze', { sequences: seqs(MAX), task_type: 'reverse_complement' });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(ok.body.result.predictions.length, MAX);
    const before = workerBatches();
    assertNativeLimit(await h.post('/agent/analyze', { sequences: seqs(MAX + 1), task_type: 'reverse_complement' }));
    assertNativeLimit(
      await h.post('/agent/analyze', {
        sequences: seqs(MAX + 1),
        task_type: 'reverse_complement',
        model_name: 'revcomp',
      }),
    );
    assert.equal(workerBatches(), before);
  });
});
