// The client libraries against a real gateway: the TypeScript IsomodelClient (src/client, published
// as @isomodel/client from clients/typescript) and the standard-library Python client.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { IsomodelClient, IsomodelError } from '../src/client/index.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import { startGateway, type Harness } from './helpers.js';

const run = promisify(execFile);
const PY_CLIENT_DIR = join(PACKAGE_ROOT, 'clients', 'python');
const PYTHON = process.env.ISOMODEL_PYTHON ?? 'python3';

async function rejectsWith(p: Promise<unknown>, code: string, status: number): Promise<IsomodelError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof IsomodelError, `not an IsomodelError: ${String(e)}`);
    assert.equal(e.code, code, `${e.code}: ${e.message}`);
    assert.equal(e.status, status);
    return e;
  }
  assert.fail(`expected ${code}`);
}

describe('clients', () => {
  let h: Harness;
  before(async () => {
    h = await startGateway(['gc-scanner', 'revcomp'], { default_model: 'revcomp' });
  });
  after(async () => h.close());

  describe('TypeScript IsomodelClient', () => {
    let c: IsomodelClient;
    before(() => {
      c = new IsomodelClient(h.url + '/');
    });

    it('reads health, models and model info', async () => {
      const health = await c.health();
      assert.equal(health.status, 'healthy');
      assert.equal(health.model, 'revcomp');
      assert.equal((await c.health('gc-scanner')).model, 'gc-scanner');
      const { models } = await c.models();
      assert.deepEqual(models.map((m) => `${m.name}:${m.status}`), ['gc-scanner:ready', 'revcomp:ready']);
      const info = await c.modelInfo('gc-scanner');
      assert.deepEqual(info.tasks, ['gc_content', 'motif_scan']);
      assert.equal(info.max_sequence_length, 5120);
    });

    it('predicts one sequence with typed output', async () => {
      const r = await c.predict<{ reverse_complement: string }>('revcomp', 'atgcRYN');
      assert.equal(r.reverse_complement, 'NRYGCAT');
      assert.equal(r.model, 'revcomp');
      assert.equal(r.sequence_length, 7);
      const g = await c.predict<{ gc_content: number; windows: number[] }>('gc-scanner', 'ATGCGCTATAAT', { task: 'gc_content', options: { window: 6 } });
      assert.ok(Math.abs(g.gc_content - 1 / 3) < 1e-12);
      assert.deepEqual(g.windows, [4 / 6, 0]);
      assert.equal(g.task_type, 'gc_content');
    });

    it('predicts a batch in input order', async () => {
      const b = await c.predictBatch<{ gc_content: number }>('gc-scanner', ['GGGG', 'ATAT', 'GCAT'], { task: 'gc_content' });
      assert.equal(b.total_sequences, 3);
      assert.equal(b.failed, 0);
      assert.deepEqual(
        b.predictions.map((p) => (p.error ? null : p.gc_content)),
        [1, 0, 0.5],
      );
    });

    it('maps error envelopes to IsomodelError(code, status, message, details)', async () => {
      const bad = await rejectsWith(c.predict('gc-scanner', 'ACGTJ', { task: 'gc_content' }), 'INVALID_SEQUENCE', 400);
      assert.deepEqual((bad.details as { position: number }).position, 5);
      assert.match(bad.message, /position 5/);
      assert.equal(typeof bad.requestId, 'string');
      await rejectsWith(c.modelInfo('nope'), 'MODEL_NOT_FOUND', 404);
      await rejectsWith(c.predict('nope', 'ACGT'), 'MODEL_NOT_FOUND', 404);
      await rejectsWith(c.predict('gc-scanner', 'ACGT', { task: 'folding' }), 'INVALID_REQUEST', 400);
      await rejectsWith(c.predict('revcomp', 'A'.repeat(5121)), 'SEQUENCE_TOO_LONG', 400);
      await rejectsWith(c.predictBatch('revcomp', []), 'INVALID_REQUEST', 400);
      const down = new IsomodelClient('http://127.0.0.1:9', { timeoutMs: 5000 });
      await rejectsWith(down.health(), 'NETWORK_ERROR', 0);
    });

    it('unloads, loads and reloads', async () => {
      const u = await c.unload('revcomp');
      assert.equal(u.status, 'unloaded');
      await rejectsWith(c.predict('revcomp', 'ACGT'), 'MODEL_NOT_LOADED', 503);
      const l = await c.load('revcomp');
      assert.equal(l.status, 'ready');
      assert.equal(typeof l.load_time_ms, 'number');
      const r = await c.reload();
      assert.deepEqual(r.unchanged.sort(), ['gc-scanner', 'revcomp']);
      assert.equal((await c.predict<{ reverse_complement: string }>('revcomp', 'GATTACA')).reverse_complement, 'TGTAATC');
    });
  });

  describe('Python isomodel_client', () => {
    it('predicts, batches, manages and raises IsomodelError', async () => {
      const script = `
import json, sys
sys.path.insert(0, ${JSON.stringify(PY_CLIENT_DIR)})
from isomodel_client import IsomodelClient, IsomodelError
c = IsomodelClient(sys.argv[1])
out = {}
out["health"] = c.health()["status"]
out["models"] = [m["name"] for m in c.models()["models"]]
out["info_tasks"] = c.model_info("gc-scanner")["tasks"]
out["rc"] = c.predict("revcomp", "atgcRYN")["reverse_complement"]
out["gc"] = c.predict("gc-scanner", "ATGCGCTATAAT", task="gc_content", options={"window": 6})
out["batch"] = [p["gc_content"] for p in c.predict_batch("gc-scanner", ["GGGG", "ATAT", "GCAT"], task="gc_content")["predictions"]]
errors = {}
for label, fn in [
    ("bad", lambda: c.predict("gc-scanner", "ACGTJ", task="gc_content")),
    ("missing", lambda: c.model_info("nope")),
    ("no_task", lambda: c.predict("gc-scanner", "ACGT", task="folding")),
    ("down", lambda: IsomodelClient("http://127.0.0.1:9", timeout=5).health()),
]:
    try:
        fn()
        errors[label] = None
    except IsomodelError as e:
        errors[label] = {"code": e.code, "status": e.status, "message": e.message, "details": e.details, "request_id": e.request_id}
out["errors"] = errors
out["unload"] = c.unload("revcomp")["status"]
try:
    c.predict("revcomp", "ACGT")
except IsomodelError as e:
    out["unloaded_code"] = e.code
out["load"] = c.load("revcomp")["status"]
out["reload_unchanged"] = sorted(c.reload()["unchanged"])
print(json.dumps(out))
`;
      const { stdout } = await run(PYTHON, ['-c', script, h.url], { timeout: 60_000 });
      const out = JSON.parse(stdout);
      assert.equal(out.health, 'healthy');
      assert.deepEqual(out.models, ['gc-scanner', 'revcomp']);
      assert.deepEqual(out.info_tasks, ['gc_content', 'motif_scan']);
      assert.equal(out.rc, 'NRYGCAT');
      assert.ok(Math.abs(out.gc.gc_content - 1 / 3) < 1e-12);
      assert.deepEqual(out.gc.windows, [4 / 6, 0]);
      assert.equal(out.gc.model, 'gc-scanner');
      assert.deepEqual(out.batch, [1, 0, 0.5]);
      assert.equal(out.errors.bad.code, 'INVALID_SEQUENCE');
      assert.equal(out.errors.bad.status, 400);
      assert.equal(out.errors.bad.details.position, 5);
      assert.equal(typeof out.errors.bad.request_id, 'string');
      assert.deepEqual([out.errors.missing.code, out.errors.missing.status], ['MODEL_NOT_FOUND', 404]);
      assert.deepEqual([out.errors.no_task.code, out.errors.no_task.status], ['INVALID_REQUEST', 400]);
      assert.deepEqual([out.errors.down.code, out.errors.down.status], ['NETWORK_ERROR', 0]);
      assert.equal(out.unload, 'unloaded');
      assert.equal(out.unloaded_code, 'MODEL_NOT_LOADED');
      assert.equal(out.load, 'ready');
      assert.deepEqual(out.reload_unchanged, ['gc-scanner', 'revcomp']);
    });

    it('has a command line (predict, errors on stderr with exit status 1)', async () => {
      const cli = join(PY_CLIENT_DIR, 'isomodel_client.py');
      const { stdout } = await run(PYTHON, [cli, '--url', h.url, 'predict', 'gc-scanner', 'GGCC', 'ATAT', '--task', 'gc_content']);
      const batch = JSON.parse(stdout);
      assert.deepEqual(batch.predictions.map((p: any) => p.gc_content), [1, 0]);
      const one = JSON.parse((await run(PYTHON, [cli, '--url', h.url, 'predict', 'revcomp', 'AACG'])).stdout);
      assert.equal(one.reverse_complement, 'CGTT');
      await assert.rejects(run(PYTHON, [cli, '--url', h.url, 'info', 'nope']), (e: any) => {
        assert.equal(e.code, 1);
        assert.equal(JSON.parse(e.stderr).error.code, 'MODEL_NOT_FOUND');
        return true;
      });
    });
  });
});

describe('clients against a gateway with API keys', () => {
  const KEY = 'test-predict-key-0123456789';
  let h: Harness;
  before(async () => {
    h = await startGateway(['revcomp'], { auth: { keys: [{ name: 'tester', sha256: createHash('sha256').update(KEY).digest('hex'), scopes: ['predict'] }] } });
  });
  after(async () => h.close());

  it('TypeScript: apiKey is sent as a bearer token; no key is UNAUTHORIZED, an admin call FORBIDDEN', async () => {
    await rejectsWith(new IsomodelClient(h.url).predict('revcomp', 'ACGT'), 'UNAUTHORIZED', 401);
    const c = new IsomodelClient(h.url, { apiKey: KEY });
    assert.equal((await c.predict<{ reverse_complement: string }>('revcomp', 'AACG')).reverse_complement, 'CGTT');
    await rejectsWith(c.unload('revcomp'), 'FORBIDDEN', 403);
  });

  it('Python: api_key is sent as a bearer token', async () => {
    const script = `
import json, sys
sys.path.insert(0, ${JSON.stringify(PY_CLIENT_DIR)})
from isomodel_client import IsomodelClient, IsomodelError
out = {}
try:
    IsomodelClient(sys.argv[1]).predict("revcomp", "ACGT")
except IsomodelError as e:
    out["anonymous"] = [e.code, e.status]
out["rc"] = IsomodelClient(sys.argv[1], api_key=sys.argv[2]).predict("revcomp", "AACG")["reverse_complement"]
print(json.dumps(out))
`;
    const out = JSON.parse((await run(PYTHON, ['-c', script, h.url, KEY])).stdout);
    assert.deepEqual(out.anonymous, ['UNAUTHORIZED', 401]);
    assert.equal(out.rc, 'CGTT');
  });
});
