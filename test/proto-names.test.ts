// Names that clients and packages choose (model, version, task, tool, output and option names)
// are looked up in Maps or checked as own properties, never read through Object.prototype:
// "__proto__", "constructor" and "hasOwnProperty" are answered like any unknown name (404/400 in
// each surface's shape), and a package may use the valid ones ("constructor" is a valid task and
// version name) without its values mixing with the prototype's.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { request, startGateway, type Harness } from './helpers.js';

const NAMES = ['__proto__', 'constructor', 'hasOwnProperty', 'toString'];

/**
 * Model "protoy" in two versions, 1.0.0 and "constructor", with one task named "constructor".
 * A 4-letter sequence's output has fields named "constructor" and "__proto__" (own, as
 * JSON.parse makes them); any other's has neither.
 */
function writeProtoModel(modelsDir: string, folder: string, version: string): void {
  const dir = join(modelsDir, folder);
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'model.yaml'),
    `name: protoy\nversion: "${version}"\nruntime: node\nentry: index.mjs\ntasks:\n  - name: constructor\n    sequence_types: [DNA]\n    options:\n      constructor: {type: number}\n      hasOwnProperty: {type: string}\n`,
  );
  writeFileSync(
    join(dir, 'index.mjs'),
    `export function predict(batch) {\n  return batch.map((item) => item.sequence.length === 4 ? JSON.parse('{"length": 4, "constructor": 1, "__proto__": 5}') : { length: item.sequence.length });\n}\n`,
  );
}

describe('prototype names as model, version, task, tool and output names', () => {
  let h: Harness;
  let mcp: Client;

  before(async () => {
    h = await startGateway(['revcomp', 'dna-embed']);
    writeProtoModel(h.modelsDir, 'protoy-1', '1.0.0');
    writeProtoModel(h.modelsDir, 'protoy-c', 'constructor');
    const r = await h.post('/v1/models/reload');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    for (const v of ['1.0.0', 'constructor']) {
      const l = await h.post(`/v1/models/${encodeURIComponent(`protoy@${v}`)}/load`);
      assert.equal(l.status, 200, JSON.stringify(l.body));
    }
    mcp = new Client({ name: 'proto-names', version: '1.0.0' });
    await mcp.connect(new StreamableHTTPClientTransport(new URL(`${h.url}/mcp`)));
  });
  after(async () => {
    await mcp?.close().catch(() => undefined);
    await h?.close();
  });

  it('native and deployment routes: unknown model, version and task names are 404/400, never 500', async () => {
    for (const n of NAMES) {
      const e = encodeURIComponent(n);
      for (const r of [
        await h.get(`/models/${e}/info`),
        await h.post(`/models/${e}/predict`, { sequence: 'ACGT' }),
        await h.get(`/api/v1/models/${e}`),
      ]) {
        assert.equal(r.status, 404, `${n}: ${JSON.stringify(r.body)}`);
        assert.equal(r.body.error.code, 'MODEL_NOT_FOUND');
      }
      const version = await h.post(`/models/${encodeURIComponent(`revcomp@${n}`)}/predict`, { sequence: 'ACGT' });
      assert.equal(version.status, 404, `${n}: ${JSON.stringify(version.body)}`);
      const task = await h.post('/models/revcomp/predict', { sequence: 'ACGT', task_type: n });
      assert.equal(task.status, 400, `${n}: ${JSON.stringify(task.body)}`);
      assert.match(task.body.message, /has no task/);
      const type = await h.post('/models/revcomp/predict', { sequence: 'ACGT', sequence_type: n });
      assert.equal(type.status, 400, `${n}: ${JSON.stringify(type.body)}`);
      const weights = await request<any>(`${h.url}/api/v1/models/revcomp/traffic`, 'PUT', { weights: { [n]: 1 } });
      assert.equal(weights.status, 400, `${n}: ${JSON.stringify(weights.body)}`);
    }
  });

  it('a version and a task named "constructor" serve, and a traffic split weighs only its own entries', async () => {
    const p = await h.post(`/models/${encodeURIComponent('protoy@constructor')}/predict`, {
      sequence: 'ACGT',
      task_type: 'constructor',
      options: { constructor: 2 },
    });
    assert.equal(p.status, 200, JSON.stringify(p.body));
    assert.equal(p.body.data.version, 'constructor');
    const split = await request<any>(`${h.url}/api/v1/models/protoy/traffic`, 'PUT', { weights: { '1.0.0': 1 } });
    assert.equal(split.status, 200, JSON.stringify(split.body));
    const status = await h.get('/api/v1/models/protoy');
    const weights = Object.fromEntries(
      status.body.data.versions.map((v: { version: string; weight: unknown }) => [v.version, v.weight]),
    );
    // Object.prototype.constructor used to stand in for the missing entry (and vanish from the JSON).
    assert.deepEqual(weights, { '1.0.0': 1, constructor: 0 });
    const both = await request<any>(`${h.url}/api/v1/models/protoy/traffic`, 'PUT', {
      weights: { '1.0.0': 1, constructor: 3 },
    });
    assert.equal(both.status, 200, JSON.stringify(both.body));
    assert.deepEqual(both.body.data.weights, { '1.0.0': 1, constructor: 3 });
    // Unloading a version that has no entry leaves the split as it is.
    const cleared = await request<any>(`${h.url}/api/v1/models/protoy/traffic`, 'DELETE');
    assert.equal(cleared.status, 200, JSON.stringify(cleared.body));
  });

  it('OIP: a field missing from an item is null, not what Object.prototype holds under its name', async () => {
    const r = await h.post('/v2/models/protoy/versions/constructor/infer', {
      inputs: [{ name: 'sequences', datatype: 'BYTES', shape: [2], data: ['ACGT', 'AC'] }],
      parameters: { task_type: 'constructor' },
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const byName = Object.fromEntries(r.body.outputs.map((o: { name: string; data: unknown[] }) => [o.name, o.data]));
    assert.deepEqual(byName.length, [4, 2]);
    assert.deepEqual(byName.constructor, ['1', 'null']);
    assert.deepEqual(byName.__proto__, ['5', 'null']);
    for (const n of NAMES) {
      const e = encodeURIComponent(n);
      const unknown = await h.post(`/v2/models/${e}/infer`, {
        inputs: [{ name: 'sequences', datatype: 'BYTES', shape: [1], data: ['ACGT'] }],
      });
      assert.equal(unknown.status, 404, `${n}: ${JSON.stringify(unknown.body)}`);
      assert.deepEqual(Object.keys(unknown.body), ['error']);
      const out = await h.post('/v2/models/revcomp/infer', {
        inputs: [{ name: 'sequences', datatype: 'BYTES', shape: [1], data: ['ACGT'] }],
        outputs: [{ name: n }],
      });
      assert.equal(out.status, 400, `${n}: ${JSON.stringify(out.body)}`);
      assert.match(out.body.error, /unknown output/);
    }
  });

  it('OpenAI and Agent API: unknown model and task names', async () => {
    for (const n of NAMES) {
      for (const model of [n, `dna-embed:${n}`]) {
        const r = await h.post('/v1/embeddings', { model, input: 'ACGT' });
        assert.ok(r.status === 404 || r.status === 400, `${model}: ${r.status} ${JSON.stringify(r.body)}`);
        assert.equal(r.body.error.param, 'model');
      }
      const best = await h.post('/agent/models/best', { task_type: n });
      if (n === 'constructor') {
        assert.equal(best.status, 200, JSON.stringify(best.body));
        assert.equal(best.body.best_model, 'protoy');
        assert.equal(best.body.candidates[0].agent_priority, 0);
      } else {
        assert.equal(best.status, 400, `${n}: ${JSON.stringify(best.body)}`);
        assert.match(best.body.message, /unknown task_type/);
      }
      const named = await h.post('/agent/analyze', {
        sequences: ['ACGT'],
        task_type: 'reverse_complement',
        model_name: n,
      });
      assert.equal(named.status, 404, `${n}: ${JSON.stringify(named.body)}`);
      assert.equal(named.body.error.code, 'MODEL_NOT_FOUND');
    }
  });

  it('a package with a "__proto__" key is listed invalid, naming where, not loaded without it', async () => {
    const dir = join(h.modelsDir, 'proto-key');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'index.mjs'), 'export function predict(b) { return b.map(() => ({})); }\n');
    writeFileSync(
      join(dir, 'model.yaml'),
      'name: proto-key\nversion: 1.0.0\nruntime: node\nentry: index.mjs\ntasks:\n  - name: t\n    sequence_types: [DNA]\n    options:\n      __proto__: {type: string}\n',
    );
    const r = await h.post('/v1/models/reload');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const err = r.body.data.errors.find((e: { file: string }) => e.file === join(dir, 'model.yaml'));
    assert.deepEqual(err?.issues, ['tasks.0.options.__proto__: "__proto__" cannot be a key']);
    assert.equal((await h.get('/models/proto-key/info')).status, 404);
  });

  it('MCP: tool and model names', async () => {
    const call = async (name: string, args: Record<string, unknown>) =>
      (await mcp.callTool({ name, arguments: args })) as CallToolResult;
    for (const n of NAMES) {
      const tool = await call(n, { sequences: ['ACGT'] });
      assert.equal(tool.isError, true, `${n}: ${JSON.stringify(tool.content)}`);
      assert.match((tool.structuredContent as { error: { code: string } }).error.code, /^(NOT_FOUND|MODEL_NOT_FOUND)$/);
      const model = await call('analyze_sequences', { sequences: ['ACGT'], task_type: 'reverse_complement', model: n });
      assert.equal(model.isError, true);
      assert.equal((model.structuredContent as { error: { code: string } }).error.code, 'MODEL_NOT_FOUND');
      const info = await call('model_info', { model: n });
      assert.equal(info.isError, true);
      assert.equal((info.structuredContent as { error: { code: string } }).error.code, 'MODEL_NOT_FOUND');
    }
    // The task named "constructor" is a tool, and its options named "constructor" and "hasOwnProperty" are schema properties.
    const { tools } = await mcp.listTools();
    const t = tools.find((x) => x.name === 'protoy__constructor');
    assert.ok(t, tools.map((x) => x.name).join(', '));
    const options = (t.inputSchema.properties as { options: { properties: Record<string, unknown> } }).options
      .properties;
    assert.deepEqual(Object.keys(options).sort(), ['constructor', 'hasOwnProperty']);
    assert.equal(Object.getPrototypeOf(options), Object.prototype);
    const ran = await call('protoy__constructor', { sequences: ['ACGTA'] });
    assert.ok(!ran.isError, JSON.stringify(ran.content));
  });
});
