// The MCP server through the SDK's own Client, over both transports: stdio (`isomodel mcp` as a
// child process) and Streamable HTTP (/mcp on a real gateway).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport, getDefaultEnvironment } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  ToolListChangedNotificationSchema,
  type CallToolResult,
  type Progress,
} from '@modelcontextprotocol/sdk/types.js';
import { manifestSchema } from '../src/manifest/schema.js';
import { chooseModel } from '../src/mcp/choose.js';
import { taskToolName } from '../src/mcp/tools.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import { makeModelsDir, startGateway, waitFor, type Harness } from './helpers.js';

const COMP: Record<string, string> = { A: 'T', C: 'G', G: 'C', T: 'A', R: 'Y', Y: 'R', N: 'N' };
const revcomp = (s: string): string =>
  [...s.toUpperCase()]
    .reverse()
    .map((c) => COMP[c]!)
    .join('');
const gc = (s: string): number => [...s].filter((c) => c === 'G' || c === 'C').length / s.length;

async function call(client: Client, name: string, args: Record<string, unknown>): Promise<CallToolResult> {
  return (await client.callTool({ name, arguments: args })) as CallToolResult;
}

/** Structured content, checked against the JSON in the text content. */
function payload(r: CallToolResult): any {
  const text = r.content[0];
  assert.equal(text?.type, 'text');
  const parsed = JSON.parse((text as { text: string }).text);
  assert.deepEqual(r.structuredContent, parsed);
  return parsed;
}

function expectOk(r: CallToolResult): any {
  assert.ok(!r.isError, `tool error: ${JSON.stringify(r.content)}`);
  return payload(r);
}

function expectError(r: CallToolResult, code: string): any {
  assert.equal(r.isError, true, `expected ${code}, got ${JSON.stringify(r.content).slice(0, 300)}`);
  const body = payload(r);
  assert.equal(body.error.code, code, JSON.stringify(body));
  assert.equal(typeof body.error.message, 'string');
  assert.equal(typeof body.error.status, 'number');
  return body.error;
}

/** The checks both transports must pass, on a server with gc-scanner, revcomp and dna-embed. */
function sharedSuite(getClient: () => Client): void {
  it('lists one tool per model task, with input schemas from the manifests', async () => {
    const { tools } = await getClient().listTools();
    const names = tools.map((t) => t.name).sort();
    assert.deepEqual(names, [
      'analyze_sequences',
      'dna-embed__embedding',
      'gc-scanner__gc_content',
      'gc-scanner__motif_scan',
      'list_models',
      'model_info',
      'revcomp__reverse_complement',
    ]);
    for (const t of tools) assert.match(t.name, /^[A-Za-z0-9_-]{1,64}$/);
    const gcTool = tools.find((t) => t.name === 'gc-scanner__gc_content')!;
    assert.match(gcTool.description!, /GC fraction/);
    const s = gcTool.inputSchema as any;
    assert.equal(s.type, 'object');
    assert.deepEqual(s.required, ['sequences']);
    assert.equal(s.additionalProperties, false);
    assert.equal(s.properties.sequences.type, 'array');
    assert.equal(s.properties.sequences.minItems, 1);
    assert.equal(s.properties.sequences.maxItems, 100);
    assert.equal(s.properties.sequences.items.maxLength, 5120);
    assert.deepEqual(s.properties.sequence_type.enum, ['DNA', 'RNA']);
    assert.deepEqual(s.properties.options.properties.window, {
      type: 'integer',
      minimum: 1,
      description: 'Window size in bases for the per-window GC fraction (example output used window 5).',
    });
    const motif = tools.find((t) => t.name === 'gc-scanner__motif_scan')!.inputSchema as any;
    assert.deepEqual(motif.properties.options.properties.motifs.default, ['TATAAT', 'TTGACA']);
    const embed = tools.find((t) => t.name === 'dna-embed__embedding')!.inputSchema as any;
    assert.equal(embed.properties.options.properties.embedding_dimension.maximum, 1024);
    const analyze = tools.find((t) => t.name === 'analyze_sequences')!.inputSchema as any;
    assert.deepEqual(analyze.properties.task_type.enum, [
      'embedding',
      'gc_content',
      'motif_scan',
      'reverse_complement',
    ]);
    assert.deepEqual(analyze.required, ['sequences', 'task_type']);
  });

  it('runs a task tool with real results (reverse complement, GC content)', async () => {
    const rc = expectOk(
      await call(getClient(), 'revcomp__reverse_complement', { sequences: ['atgcRYN', 'AACCGGT\nTT'] }),
    );
    assert.equal(rc.model, 'revcomp');
    assert.equal(rc.task_type, 'reverse_complement');
    assert.equal(rc.total_sequences, 2);
    assert.equal(rc.predictions[0].reverse_complement, 'NRYGCAT');
    assert.equal(rc.predictions[1].sequence, 'AACCGGTTT');
    assert.equal(rc.predictions[1].reverse_complement, 'AAACCGGTT');
    const seqs = ['ATGCGCTATAAT', 'GGGG', 'ATAT', 'GCGCA'];
    const g = expectOk(await call(getClient(), 'gc-scanner__gc_content', { sequences: seqs, options: { window: 2 } }));
    assert.equal(g.successful, 4);
    g.predictions.forEach((p: any, i: number) => {
      assert.ok(Math.abs(p.gc_content - gc(seqs[i]!)) < 1e-12, `${seqs[i]}: ${p.gc_content}`);
      assert.equal(p.sequence_type, 'DNA');
    });
    assert.deepEqual(g.predictions[1].windows, [1, 1]);
    assert.equal(g.predictions[0].counts.A, 4);
  });

  it('passes options through to the model (motif scan with custom motifs)', async () => {
    const r = expectOk(
      await call(getClient(), 'gc-scanner__motif_scan', {
        sequences: ['GAATTCAAGAATTC'],
        options: { motifs: ['GAATTC'] },
      }),
    );
    const hits = r.predictions[0].matches.filter((m: any) => m.strand === '+').map((m: any) => m.start);
    assert.deepEqual(hits, [0, 8]);
  });

  it('analyze_sequences chooses the model from the task and the detected sequence type', async () => {
    const a = expectOk(
      await call(getClient(), 'analyze_sequences', { sequences: ['ATGCGCTATAAT'], task_type: 'gc_content' }),
    );
    assert.equal(a.chosen.model, 'gc-scanner');
    assert.deepEqual(a.chosen.sequence_types, ['DNA']);
    assert.match(a.chosen.reason, /gc-scanner/);
    assert.ok(Math.abs(a.predictions[0].gc_content - 1 / 3) < 1e-12);
    const rna = expectOk(
      await call(getClient(), 'analyze_sequences', { sequences: ['AUGCCU'], task_type: 'reverse_complement' }),
    );
    assert.equal(rna.chosen.model, 'revcomp');
    assert.deepEqual(rna.chosen.sequence_types, ['RNA']);
    assert.equal(rna.predictions[0].reverse_complement, 'AGGCAU');
    const e = expectOk(
      await call(getClient(), 'analyze_sequences', {
        sequences: ['ACGTACGTAC', 'GGCCTTAA'],
        task_type: 'embedding',
        options: { embedding_dimension: 16 },
      }),
    );
    assert.equal(e.chosen.model, 'dna-embed');
    assert.equal(e.predictions[0].embedding.length, 16);
    // A protein: no loaded model computes GC content of proteins.
    const p = expectError(
      await call(getClient(), 'analyze_sequences', { sequences: ['MKTLLILAVVLLE'], task_type: 'gc_content' }),
      'MODEL_NOT_FOUND',
    );
    assert.deepEqual(p.details.sequence_types, ['protein']);
    assert.equal(p.details.rejected[0].model, 'gc-scanner');
    expectError(
      await call(getClient(), 'analyze_sequences', { sequences: ['ACGT'], task_type: 'folding' }),
      'MODEL_NOT_FOUND',
    );
    expectError(
      await call(getClient(), 'analyze_sequences', { sequences: ['ACGT1'], task_type: 'gc_content' }),
      'INVALID_SEQUENCE',
    );
  });

  it('answers errors as tool errors with the REST error codes', async () => {
    const bad = expectError(
      await call(getClient(), 'gc-scanner__gc_content', { sequences: ['ACGT', 'ACGTJ'] }),
      'INVALID_SEQUENCE',
    );
    assert.equal(bad.status, 400);
    assert.equal(bad.details.index, 1);
    assert.equal(bad.details.position, 5);
    expectError(
      await call(getClient(), 'revcomp__reverse_complement', { sequences: ['A'.repeat(5121)] }),
      'SEQUENCE_TOO_LONG',
    );
    expectError(await call(getClient(), 'revcomp__reverse_complement', { sequences: [] }), 'INVALID_REQUEST');
    expectError(
      await call(getClient(), 'revcomp__reverse_complement', { sequences: ['ACGT'], bogus: 1 }),
      'INVALID_REQUEST',
    );
    const nf = expectError(await call(getClient(), 'model_info', { model: 'nope' }), 'MODEL_NOT_FOUND');
    assert.equal(nf.status, 404);
    expectError(await call(getClient(), 'nope__gc_content', { sequences: ['ACGT'] }), 'MODEL_NOT_FOUND');
    expectError(
      await call(getClient(), 'analyze_sequences', { sequences: ['ACGT'], task_type: 'gc_content', model: 'nope' }),
      'MODEL_NOT_FOUND',
    );
    expectError(await call(getClient(), 'revcomp__nope', { sequences: ['ACGT'] }), 'NOT_FOUND');
  });

  it('describes models (list_models, model_info)', async () => {
    const l = expectOk(await call(getClient(), 'list_models', {}));
    const gcm = l.models.find((m: any) => m.name === 'gc-scanner');
    assert.equal(gcm.status, 'ready');
    assert.deepEqual(
      gcm.tasks.map((t: any) => t.tool),
      ['gc-scanner__gc_content', 'gc-scanner__motif_scan'],
    );
    const info = expectOk(await call(getClient(), 'model_info', { model: 'revcomp' }));
    assert.equal(info.name, 'revcomp');
    assert.deepEqual(info.tasks, ['reverse_complement']);
    assert.deepEqual(info.tools, { reverse_complement: 'revcomp__reverse_complement' });
  });

  it('sends progress notifications for a multi-chunk batch', async () => {
    // gc-scanner batches 32 sequences: 100 sequences are 4 chunks.
    const seqs = Array.from({ length: 100 }, (_, i) => 'ACGT'.repeat(1 + (i % 7)) + 'G'.repeat(i % 5));
    const progress: Progress[] = [];
    const r = (await getClient().callTool(
      { name: 'gc-scanner__gc_content', arguments: { sequences: seqs } },
      undefined,
      { onprogress: (p) => progress.push(p) },
    )) as CallToolResult;
    const out = expectOk(r);
    assert.equal(out.total_sequences, 100);
    out.predictions.forEach((p: any, i: number) => assert.ok(Math.abs(p.gc_content - gc(seqs[i]!)) < 1e-12));
    // One notification per chunk, as chunks finish (cumulative, so strictly increasing). The
    // server leaves a gap before the result, but a client may still drop the final one when it
    // arrives with the result (typescript-sdk#2580): at least the first three must be here.
    assert.ok(progress.length >= 3 && progress.length <= 4, JSON.stringify(progress));
    for (const p of progress) assert.equal(p.total, 100);
    progress.forEach((p, i) => i > 0 && assert.ok(p.progress > progress[i - 1]!.progress, JSON.stringify(progress)));
    if (progress.length === 4) assert.equal(progress[3]!.progress, 100);
    assert.match(progress[0]!.message ?? '', /^\d+ of 100 sequences done$/);
  });
}

describe('MCP over Streamable HTTP (/mcp)', () => {
  let h: Harness;
  let client: Client;
  let transport: StreamableHTTPClientTransport;
  const changes: number[] = [];
  before(async () => {
    h = await startGateway(['gc-scanner', 'revcomp', 'dna-embed']);
    client = new Client({ name: 'isomodel-test', version: '1.0.0' });
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      changes.push(Date.now());
    });
    transport = new StreamableHTTPClientTransport(new URL(`${h.url}/mcp`));
    await client.connect(transport);
  });
  after(async () => {
    await client.close().catch(() => undefined);
    await h.close();
  });

  it('opens a session and advertises tools with list_changed', () => {
    assert.match(transport.sessionId ?? '', /^[0-9a-f-]{36}$/);
    assert.equal(client.getServerCapabilities()?.tools?.listChanged, true);
    assert.equal(client.getServerVersion()?.name, 'isomodel');
    assert.match(client.getInstructions() ?? '', /analyze_sequences/);
  });

  sharedSuite(() => client);

  it('follows the registry live: unload removes the tools (list_changed), calls answer MODEL_NOT_LOADED, load brings them back', async () => {
    const before = changes.length;
    assert.equal((await h.post('/v1/models/revcomp/unload')).status, 200);
    await waitFor(() => changes.length > before, 5000);
    const { tools } = await client.listTools();
    assert.ok(!tools.some((t) => t.name === 'revcomp__reverse_complement'));
    expectError(await call(client, 'revcomp__reverse_complement', { sequences: ['ACGT'] }), 'MODEL_NOT_LOADED');
    const nl = expectError(
      await call(client, 'analyze_sequences', { sequences: ['ACGT'], task_type: 'reverse_complement' }),
      'MODEL_NOT_LOADED',
    );
    assert.deepEqual(nl.details.rejected, [{ model: 'revcomp', reason: 'model is unloaded' }]);
    const l = expectOk(await call(client, 'list_models', {}));
    assert.equal(l.models.find((m: any) => m.name === 'revcomp').status, 'unloaded');
    const mid = changes.length;
    assert.equal((await h.post('/v1/models/revcomp/load')).status, 200);
    await waitFor(() => changes.length > mid, 5000);
    const again = await client.listTools();
    assert.ok(again.tools.some((t) => t.name === 'revcomp__reverse_complement'));
    const rc = expectOk(await call(client, 'revcomp__reverse_complement', { sequences: ['GATTACA'] }));
    assert.equal(rc.predictions[0].reverse_complement, revcomp('GATTACA'));
  });

  it('rejects unknown sessions and requests without a session', async () => {
    const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
    const listReq = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} });
    const unknown = await fetch(`${h.url}/mcp`, {
      method: 'POST',
      headers: { ...headers, 'mcp-session-id': 'no-such-session' },
      body: listReq,
    });
    assert.equal(unknown.status, 404);
    assert.equal(((await unknown.json()) as any).error.code, -32001);
    const none = await fetch(`${h.url}/mcp`, { method: 'POST', headers, body: listReq });
    assert.equal(none.status, 400);
  });

  it('keeps sessions apart and ends one on DELETE', async () => {
    const other = new Client({ name: 'second', version: '1.0.0' });
    const t2 = new StreamableHTTPClientTransport(new URL(`${h.url}/mcp`));
    await other.connect(t2);
    assert.notEqual(t2.sessionId, transport.sessionId);
    const r = expectOk(await call(other, 'revcomp__reverse_complement', { sequences: ['ACGTT'] }));
    assert.equal(r.predictions[0].reverse_complement, 'AACGT');
    const sid = t2.sessionId!;
    await t2.terminateSession();
    await other.close();
    const gone = await fetch(`${h.url}/mcp`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-session-id': sid,
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }),
    });
    assert.equal(gone.status, 404);
    // The first session is unaffected.
    assert.ok((await client.listTools()).tools.length > 3);
  });
});

describe('MCP over Streamable HTTP with API keys', () => {
  const KEY = 'mcp-test-key-0123456789';
  const OTHER = 'mcp-other-key-9876543210';
  const sha = (k: string): string => createHash('sha256').update(k).digest('hex');
  let h: Harness;
  before(async () => {
    h = await startGateway(['revcomp'], {
      auth: {
        keys: [
          { name: 'agent', sha256: sha(KEY), scopes: ['predict'] },
          { name: 'other', sha256: sha(OTHER), scopes: ['predict'] },
        ],
      },
    });
  });
  after(async () => h.close());

  it('needs a key with the predict scope, and a session stays with its key', async () => {
    const anonymous = new Client({ name: 'anon', version: '1.0.0' });
    await assert.rejects(anonymous.connect(new StreamableHTTPClientTransport(new URL(`${h.url}/mcp`))));
    const client = new Client({ name: 'agent', version: '1.0.0' });
    const transport = new StreamableHTTPClientTransport(new URL(`${h.url}/mcp`), {
      requestInit: { headers: { authorization: `Bearer ${KEY}` } },
    });
    await client.connect(transport);
    const r = expectOk(await call(client, 'revcomp__reverse_complement', { sequences: ['AACG'] }));
    assert.equal(r.predictions[0].reverse_complement, 'CGTT');
    // The session belongs to the key that opened it.
    const stolen = await fetch(`${h.url}/mcp`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-session-id': transport.sessionId!,
        authorization: `Bearer ${OTHER}`,
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/list', params: {} }),
    });
    assert.equal(stolen.status, 404);
    await client.close();
  });
});

describe('MCP over stdio (isomodel mcp)', () => {
  let client: Client;
  let transport: StdioClientTransport;
  let modelsDir: string;
  let stateDir: string;
  let stderr = '';
  before(async () => {
    modelsDir = makeModelsDir(['gc-scanner', 'revcomp', 'dna-embed']);
    stateDir = mkdtempSync(join(tmpdir(), 'isomodel-mcp-state-'));
    transport = new StdioClientTransport({
      command: process.execPath,
      args: [
        join(PACKAGE_ROOT, 'bin', 'isomodel.js'),
        '--models-dir',
        modelsDir,
        '--state-dir',
        stateDir,
        'mcp',
        '--no-watch',
      ],
      cwd: stateDir,
      env: { ...getDefaultEnvironment(), ISOMODEL_LOG_LEVEL: 'info' },
      stderr: 'pipe',
    });
    (transport.stderr as Readable).on('data', (d: Buffer) => (stderr += d.toString()));
    client = new Client({ name: 'isomodel-test', version: '1.0.0' });
    await client.connect(transport);
  });
  after(async () => {
    await client.close().catch(() => undefined);
    rmSync(modelsDir, { recursive: true, force: true });
    rmSync(stateDir, { recursive: true, force: true });
  });

  it('starts the models before answering and logs to stderr only', async () => {
    assert.equal(client.getServerVersion()?.name, 'isomodel');
    const l = expectOk(await call(client, 'list_models', {}));
    assert.deepEqual(
      l.models.map((m: any) => `${m.name}:${m.status}`),
      ['dna-embed:ready', 'gc-scanner:ready', 'revcomp:ready'],
    );
    // stderr and stdout are separate pipes: the log line may trail the first answers.
    await waitFor(() => /MCP server ready on stdio/.test(stderr), 5000);
    assert.match(stderr, /"level":30/);
  });

  sharedSuite(() => client);

  it('stops its workers and exits when the client disconnects', async () => {
    const pid = transport.pid!;
    assert.ok(pid > 0);
    await client.close();
    await waitFor(() => {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    }, 15_000);
    assert.match(stderr, /MCP stdio server stopping/);
  });
});

describe('MCP model choice and tool names (units)', () => {
  const manifest = (name: string, types: string[], maxLength = 5120) =>
    manifestSchema.parse({
      name,
      version: '1.0.0',
      runtime: 'node',
      entry: 'index.mjs',
      tasks: [{ name: 'embedding', sequence_types: types, max_length: maxLength }],
    });
  const candidates = [
    { name: 'general', manifest: manifest('general', ['DNA', 'RNA', 'protein']), status: 'ready' },
    { name: 'dna-only', manifest: manifest('dna-only', ['DNA'], 512), status: 'ready' },
    { name: 'dna-rna', manifest: manifest('dna-rna', ['DNA', 'RNA']), status: 'ready' },
    { name: 'prot-off', manifest: manifest('prot-off', ['protein']), status: 'unloaded' },
  ];

  it('prefers the most specific ready model that fits', () => {
    const dna = chooseModel(candidates, { taskType: 'embedding', sequenceTypes: ['DNA'], longest: 100, shortest: 100 });
    assert.ok(dna.ok);
    assert.equal(dna.choice.model, 'dna-only');
    assert.deepEqual(dna.choice.alternatives, ['dna-rna', 'general']);
    // Too long for dna-only: the next most specific.
    const long = chooseModel(candidates, {
      taskType: 'embedding',
      sequenceTypes: ['DNA'],
      longest: 1000,
      shortest: 10,
    });
    assert.ok(long.ok);
    assert.equal(long.choice.model, 'dna-rna');
    assert.match(long.rejected[0]!.reason, /limit is 512/);
    // Mixed RNA and protein: only the generalist; the unloaded protein model is rejected for its status.
    const mixed = chooseModel(candidates, {
      taskType: 'embedding',
      sequenceTypes: ['RNA', 'protein'],
      longest: 10,
      shortest: 10,
    });
    assert.ok(mixed.ok);
    assert.equal(mixed.choice.model, 'general');
    const prot = chooseModel(
      candidates.filter((c) => c.name === 'prot-off'),
      { taskType: 'embedding', sequenceTypes: ['protein'], longest: 10, shortest: 10 },
    );
    assert.deepEqual(prot, { ok: false, rejected: [{ model: 'prot-off', reason: 'model is unloaded' }] });
    assert.deepEqual(
      chooseModel(candidates, { taskType: 'folding', sequenceTypes: ['DNA'], longest: 1, shortest: 1 }),
      { ok: false, rejected: [] },
    );
  });

  it('sanitises tool names to [A-Za-z0-9_-]{1,64}', () => {
    assert.equal(taskToolName('gc-scanner', 'gc_content'), 'gc-scanner__gc_content');
    assert.equal(taskToolName('esm2.t6', 'embedding'), 'esm2_t6__embedding');
    const long = taskToolName('m'.repeat(64), 'property_prediction');
    assert.equal(long.length, 64);
    assert.match(long, /^m+_[0-9a-f]{6}$/);
    assert.notEqual(long, taskToolName('m'.repeat(64), 'property_prediction_2'));
  });
});
