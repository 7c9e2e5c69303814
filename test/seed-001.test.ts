// Seed 001's API (../shared/spec/001_*.txt) through a real gateway, in the order its README
// documents: download a model, create a container for it, start it, run it; then list, stop,
// delete the container and the model. A "container" is a named replica set of the model with its
// own limits, on the model's own driver (here: process).
import assert from 'node:assert/strict';
import { cpSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { digest } from '../src/security/keys.js';
import { BUILTIN_MODELS_DIR } from '../src/paths.js';
import { pidAlive, startGateway, waitFor, workerTmpDir, type Harness } from './helpers.js';

const ADMIN = 'iso_test_admin_secret_seed001_0001';
const PREDICT = 'iso_test_predict_secret_seed001_001';
const bearer = (k: string): Record<string, string> => ({ authorization: `Bearer ${k}` });
const KEYS = {
  keys: [
    { name: 'ops', sha256: digest(ADMIN), scopes: ['admin' as const] },
    { name: 'lab', sha256: digest(PREDICT), scopes: ['predict' as const] },
  ],
};

describe('seed 001: download, create, start, run, list, stop, delete', () => {
  let h: Harness;
  let source: string;
  const C = 'rc-seed-container';

  before(async () => {
    source = join(workerTmpDir('isomodel-seed001-'), 'rc-seed');
    cpSync(join(BUILTIN_MODELS_DIR, 'revcomp'), source, { recursive: true });
    writeFileSync(
      join(source, 'model.yaml'),
      readFileSync(join(source, 'model.yaml'), 'utf8').replace(/^name: revcomp$/m, 'name: rc-seed'),
    );
    h = await startGateway(['revcomp'], { auth: KEYS });
  });
  after(async () => h.close());

  const post = (path: string, body: unknown, key = ADMIN) => h.post(path, body, bearer(key));
  const del = async (path: string, key = ADMIN) => {
    const res = await fetch(h.url + path, { method: 'DELETE', headers: bearer(key) });
    return { status: res.status, body: (await res.json()) as any };
  };

  it('1. POST /api/models/download', async () => {
    const r = await post('/api/models/download', { model_id: 'rc-seed', model_type: 'text-generation', source });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.success, true);
    assert.equal(r.body.data.model_id, 'rc-seed');
    const list = await h.get('/api/models', bearer(PREDICT));
    const m = list.body.data.models.find((x: any) => x.model_id === 'rc-seed');
    assert.equal(m.status, 'ready');
    assert.equal(m.downloaded, true);
  });

  it('2. POST /api/containers/create with resources {cpu: 1, memory: "1G"}', async () => {
    const denied = await post(
      '/api/containers/create',
      { model_id: 'rc-seed', container_name: C, resources: { cpu: 1, memory: '1G' } },
      PREDICT,
    );
    assert.equal(denied.status, 403);
    const r = await post('/api/containers/create', {
      model_id: 'rc-seed',
      container_name: C,
      resources: { cpu: 1, memory: '1G' },
    });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.data.status, 'created');
    assert.deepEqual(r.body.data.resources, { cpu: 1, memory: '1024M', memory_mb: 1024, replicas: 1 });
    assert.equal(r.body.data.isolation, 'process');
    for (const [body, status, code] of [
      [{ model_id: 'rc-seed', container_name: C }, 409, 'CONFLICT'],
      [{ model_id: 'nope', container_name: 'x1' }, 404, 'MODEL_NOT_FOUND'],
      [{ model_id: 'rc-seed', container_name: '../x' }, 400, 'INVALID_REQUEST'],
      [{ model_id: 'rc-seed', container_name: 'x2', resources: { memory: 'lots' } }, 400, 'INVALID_REQUEST'],
      [{ model_id: 'rc-seed', container_name: 'x3', resources: { cpu: 0 } }, 400, 'INVALID_REQUEST'],
      [{ model_id: 'rc-seed', container_name: 'x4', resources: { cpu: 1025 } }, 400, 'INVALID_REQUEST'],
      [{ model_id: 'rc-seed', container_name: 'x5', replicas: 17 }, 400, 'INVALID_REQUEST'],
      // The string forms have no bound of their own: the container manager refuses what is past its limits.
      [{ model_id: 'rc-seed', container_name: 'x6', resources: { cpu: '5000' } }, 422, 'VALIDATION_ERROR'],
      [{ model_id: 'rc-seed', container_name: 'x7', resources: { memory: '99999G' } }, 422, 'VALIDATION_ERROR'],
    ] as const) {
      const bad = await post('/api/containers/create', body);
      assert.equal(bad.status, status, JSON.stringify(bad.body));
      assert.equal(bad.body.error.code, code);
    }
    const names = (await h.get('/api/containers', bearer(ADMIN))).body.data.containers.map(
      (c: { container_name: string }) => c.container_name,
    );
    assert.deepEqual(names, [C], 'nothing refused was created');
  });

  it("3. POST /api/containers/start: its own replica, beside the model's", async () => {
    const before = await post('/api/models/run', { container_name: C, input: 'ACGT' }, PREDICT);
    assert.equal(before.status, 503);
    assert.match(before.body.message, /container rc-seed-container is created: start it first/);
    const r = await post('/api/containers/start', { container_name: C });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.data.status, 'running');
    assert.equal(r.body.data.replicas.length, 1);
    const pid = r.body.data.replicas[0].pid as number;
    assert.ok(pid > 0 && pidAlive(pid));
    const own = h.gw.registry
      .deployment('rc-seed')!
      .replicaInfo()
      .map((x) => x.pid);
    assert.ok(!own.includes(pid), 'the container has a worker of its own');
  });

  it('4. POST /api/models/run {container_name, input}', async () => {
    const r = await post('/api/models/run', { container_name: C, input: 'AACGTTTG' }, PREDICT);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.data.output.reverse_complement, 'CAAACGTT');
    assert.equal(r.body.data.task_type, 'reverse_complement');
    const obj = await post(
      '/api/models/run',
      { container_name: C, input: { sequence: 'ACGU', sequence_type: 'RNA' } },
      PREDICT,
    );
    assert.equal(obj.status, 200, JSON.stringify(obj.body));
    assert.equal(obj.body.data.output.reverse_complement, 'ACGU');
    const bad = await post('/api/models/run', { container_name: C, input: 'ACGT!!' }, PREDICT);
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'INVALID_SEQUENCE');
    const none = await post('/api/models/run', { container_name: 'nope', input: 'ACGT' }, PREDICT);
    assert.equal(none.status, 404);
  });

  it('5. GET /api/containers: status and resource use', async () => {
    const c = await waitFor(
      async () => {
        const r = await h.get('/api/containers', bearer(PREDICT));
        const x = r.body.data.containers.find((y: any) => y.container_name === C);
        return x?.resource_use.memory_bytes > 0 ? x : null;
      },
      20_000,
      200,
    );
    assert.equal(c.status, 'running');
    assert.equal(c.model_id, 'rc-seed');
    assert.ok(c.resource_use.memory_bytes > 1024 * 1024, JSON.stringify(c.resource_use));
    assert.ok(c.resource_use.memory_percent_of_limit > 0 && c.resource_use.memory_percent_of_limit < 100);
    assert.equal(c.requests.successful_requests, 2);
    assert.equal(c.requests.failed_requests, 1);
  });

  it('6. stop, delete: the worker goes; the model cannot be deleted while a container holds it', async () => {
    const pid = (await h.get(`/api/containers/${C}`, bearer(PREDICT))).body.data.replicas[0].pid as number;
    const held = await del('/api/models/rc-seed');
    assert.equal(held.status, 409, JSON.stringify(held.body));
    const stop = await post('/api/containers/stop', { container_name: C });
    assert.equal(stop.status, 200);
    assert.equal(stop.body.data.status, 'stopped');
    await waitFor(() => !pidAlive(pid), 10_000);
    const run = await post('/api/models/run', { container_name: C, input: 'ACGT' }, PREDICT);
    assert.equal(run.status, 503);
    const again = await post('/api/containers/start', { container_name: C });
    assert.equal(again.body.data.status, 'running');
    const gone = await post('/api/containers/delete', { container_name: C });
    assert.equal(gone.status, 200);
    assert.deepEqual((await h.get('/api/containers', bearer(PREDICT))).body.data.containers, []);
    const row = h.gw.store.db.prepare('SELECT count(*) AS n FROM containers').get() as { n: number };
    assert.equal(row.n, 0);
  });

  it("7. DELETE /api/models/{id}: a downloaded package goes; an operator's package stays", async () => {
    const dir = join(h.modelsDir, 'rc-seed');
    assert.ok(existsSync(dir));
    const r = await del('/api/models/rc-seed');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.ok(!existsSync(dir));
    assert.ok(
      !(await h.get('/api/models', bearer(PREDICT))).body.data.models.some((m: any) => m.model_id === 'rc-seed'),
    );
    const builtin = await del('/api/models/revcomp');
    assert.equal(builtin.status, 422);
    assert.match(builtin.body.message, /not installed by a download/);
    assert.equal(h.gw.registry.status('revcomp'), 'ready');
    assert.equal((await del('/api/models/revcomp', PREDICT)).status, 403);
  });
});
