// Versions, A/B and canary traffic, promote/rollback, the /api/v1/models deployment API and a
// rolling update under load — all through a real gateway and real worker processes.
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pidAlive, request, sleep, startGateway, waitFor, workerTmpDir, type Harness } from './helpers.js';

/** A tiny Node model whose answers say which package version computed them. */
function writeEchoVersion(dir: string, version: string, delayMs = 0): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'model.yaml'),
    `name: echo
version: ${version}
runtime: node
entry: index.mjs
tasks:
  - name: length
    sequence_types: [DNA]
batching: { max_batch_size: 8, max_delay_ms: 0 }
scaling: { min_replicas: 1, max_replicas: 1, max_queue: 10000 }
resources: { memory_mb: 256, timeout_ms: 5000 }
`,
  );
  writeFileSync(
    join(dir, 'index.mjs'),
    `export async function predict(batch) {
  ${delayMs ? `await new Promise((r) => setTimeout(r, ${delayMs}));` : ''}
  return batch.map((item) => ({ prediction: item.sequence.length, built_by: ${JSON.stringify(version)} }));
}
`,
  );
}

interface Envelope<T = any> {
  success: boolean;
  data: T;
  error?: { code: string; details?: unknown };
}

describe('model versions, traffic and the deployment API', () => {
  let h: Harness;
  let extDir: string;
  const put = (path: string, body: unknown, headers?: Record<string, string>) =>
    request<Envelope>(h.url + path, 'PUT', body, headers);
  const del = (path: string) => request<Envelope>(h.url + path, 'DELETE');
  const predict = (id: string, headers?: Record<string, string>) =>
    h.post<Envelope>(`/models/${id}/predict`, { sequence: 'ACGT' }, headers);

  before(async () => {
    h = await startGateway([]);
    writeEchoVersion(join(h.modelsDir, 'echo-1'), '1.0.0');
    writeEchoVersion(join(h.modelsDir, 'echo-2'), '2.0.0', 2);
    const r = await h.post<Envelope>('/v1/models/reload');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    extDir = workerTmpDir('isomodel-ext-'); // packages deployed from here: workers (nobody, as root) read them
  });
  after(async () => {
    await h.close();
    rmSync(extDir, { recursive: true, force: true });
  });

  it('keeps several versions: the policy loads the newest, others load on request and answer at name@version', async () => {
    await waitFor(() => h.gw.registry.status('echo@2.0.0') === 'ready');
    assert.equal(h.gw.registry.status('echo@1.0.0'), 'unloaded', 'default policy {latest: 1}');
    const notLoaded = await predict('echo@1.0.0');
    assert.equal(notLoaded.status, 503);
    assert.equal(notLoaded.body.error?.code, 'MODEL_NOT_LOADED');

    assert.equal((await h.post('/v1/models/echo@1.0.0/load')).status, 200);
    const v1 = await predict('echo@1.0.0');
    assert.equal(v1.body.data.version, '1.0.0');
    assert.equal(v1.body.data.built_by, '1.0.0');
    const bare = await predict('echo');
    assert.equal(bare.body.data.built_by, '2.0.0', 'a bare name goes to the newest ready version');

    const missing = await predict('echo@9.9.9');
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error?.code, 'MODEL_NOT_FOUND');
    assert.deepEqual((missing.body.error?.details as { versions: string[] }).versions, ['2.0.0', '1.0.0']);

    // Open Inference Protocol: versions in metadata, and addressed inference.
    const meta = await h.get<{ versions: string[] }>('/v2/models/echo');
    assert.deepEqual(meta.body.versions, ['2.0.0', '1.0.0']);
    const oip = await h.post<{ model_version: string }>('/v2/models/echo/versions/1.0.0/infer', {
      inputs: [{ name: 'sequences', datatype: 'BYTES', shape: [1], data: ['ACG'] }],
    });
    assert.equal(oip.status, 200, JSON.stringify(oip.body));
    assert.equal(oip.body.model_version, '1.0.0');
    const index = await h.post<{ name: string; version: string; state: string }[]>('/v2/repository/index', {});
    assert.deepEqual(
      index.body.filter((r) => r.name === 'echo').map((r) => `${r.version}:${r.state}`),
      ['2.0.0:READY', '1.0.0:READY'],
    );
  });

  it('splits traffic by weight exactly, keeps a sticky key on one version, and counts per version', async () => {
    const set = await put('/api/v1/models/echo/traffic', { weights: { '1.0.0': 3, '2.0.0': 1 } });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    const seen: Record<string, number> = {};
    for (let i = 0; i < 40; i++) {
      const r = await predict('echo');
      seen[r.body.data.version] = (seen[r.body.data.version] ?? 0) + 1;
    }
    assert.deepEqual(seen, { '1.0.0': 30, '2.0.0': 10 }, 'smooth weighted round-robin: exact proportions');

    const byKey = new Map<string, string>();
    for (let k = 0; k < 120; k++) {
      const r = await predict('echo', { 'x-sticky-key': `user-${k}` });
      byKey.set(`user-${k}`, r.body.data.version);
    }
    for (let k = 0; k < 120; k += 7) {
      const again = await predict('echo', { 'x-sticky-key': `user-${k}` });
      assert.equal(again.body.data.version, byKey.get(`user-${k}`), 'a sticky key stays on its version');
    }
    const share = [...byKey.values()].filter((v) => v === '1.0.0').length / byKey.size;
    assert.ok(share > 0.6 && share < 0.9, `sticky keys follow the weights (1.0.0 share ${share})`);

    // Per-version request counters in Prometheus make the comparison visible.
    const prom = await h.get<string>('/metrics/prometheus');
    const count = (v: string): number => {
      const re = new RegExp(
        `^isomodel_requests_total\\{[^}]*model="echo"[^}]*version="${v.replace(/\./g, '\\.')}"[^}]*\\} (\\d+)`,
        'gm',
      );
      return [...prom.body.matchAll(re)].reduce((s, m) => s + Number(m[1]), 0);
    };
    assert.ok(count('1.0.0') >= 30 + 80, `1.0.0 counted: ${count('1.0.0')}`);
    assert.ok(count('2.0.0') >= 10, `2.0.0 counted: ${count('2.0.0')}`);

    const status = await h.get<Envelope>('/api/v1/models/echo/status');
    const versions = status.body.data.versions as {
      version: string;
      weight: number;
      metrics: { total_requests?: number } | null;
    }[];
    assert.deepEqual(
      versions.map((v) => [v.version, v.weight]),
      [
        ['2.0.0', 1],
        ['1.0.0', 3],
      ],
    );

    const canary = await put('/api/v1/models/echo/traffic', { canary: { version: '1.0.0', percent: 25 } });
    assert.deepEqual(canary.body.data.weights, { '2.0.0': 75, '1.0.0': 25 });
    // Undeploying a version takes it out of the split.
    assert.equal((await del('/api/v1/models/echo@1.0.0')).status, 200);
    assert.equal(h.gw.registry.status('echo@1.0.0'), 'unloaded');
    assert.deepEqual(h.gw.registry.traffic('echo').weights, { '2.0.0': 75 });
    const bad = await put('/api/v1/models/echo/traffic', { weights: { '7.0.0': 1 } });
    assert.equal(bad.status, 400);
    const cleared = await del('/api/v1/models/echo/traffic');
    assert.equal(cleared.body.data.weights, null);
    assert.equal((await predict('echo')).body.data.version, '2.0.0');
  });

  it('promotes a version and rolls back to the previous default', async () => {
    const p = await h.post<Envelope>('/api/v1/models/echo/promote', { version: '1.0.0' });
    assert.equal(p.status, 200, JSON.stringify(p.body));
    for (let i = 0; i < 5; i++) assert.equal((await predict('echo')).body.data.version, '1.0.0');
    const r = await h.post<Envelope>('/api/v1/models/echo/rollback');
    assert.equal(r.status, 200);
    assert.equal(r.body.data.traffic.default_version, '2.0.0');
    assert.equal((await predict('echo')).body.data.version, '2.0.0');
    const none = await h.post<Envelope>('/api/v1/models/echo/rollback');
    assert.equal(none.status, 400, 'nothing left to roll back to');
  });

  it('deploys a version from a package folder without moving traffic, and serves /inference and /batch_inference', async () => {
    writeEchoVersion(join(extDir, 'echo-3'), '3.0.0');
    // An A/B split in place survives deploying another version beside it.
    assert.equal((await put('/api/v1/models/echo/traffic', { weights: { '2.0.0': 3, '1.0.0': 1 } })).status, 200);
    const d = await h.post<Envelope>('/api/v1/models/deploy', {
      config: {
        model_id: 'echo',
        version: '3.0.0',
        path: join(extDir, 'echo-3'),
        scaling_config: { min_replicas: 1, max_replicas: 2 },
      },
    });
    assert.equal(d.status, 201, JSON.stringify(d.body));
    assert.equal(d.body.data.deployed_version, '3.0.0');
    assert.equal(d.body.data.traffic.default_version, '2.0.0', 'the serving version keeps its traffic');
    assert.deepEqual(d.body.data.traffic.weights, { '2.0.0': 3, '1.0.0': 1 });
    assert.equal((await del('/api/v1/models/echo/traffic')).status, 200);
    assert.equal((await predict('echo')).body.data.version, '2.0.0');

    // Deploying it again with canary_percent sends that share of the traffic to it.
    const canary = await h.post<Envelope>('/api/v1/models/deploy', {
      config: { model_id: 'echo', version: '3.0.0', canary_percent: 20 },
    });
    assert.equal(canary.status, 201, JSON.stringify(canary.body));
    assert.deepEqual(canary.body.data.traffic.weights, { '2.0.0': 80, '3.0.0': 20 });
    const seen = new Set<string>();
    for (let i = 0; i < 10; i++) seen.add((await predict('echo')).body.data.version);
    assert.deepEqual([...seen].sort(), ['2.0.0', '3.0.0']);
    assert.equal((await del('/api/v1/models/echo/traffic')).status, 200);

    const inf = await h.post<Envelope>('/api/v1/models/echo@3.0.0/inference', {
      input_data: { sequence: 'ACGTAC' },
      parameters: {},
      timeout: 10,
      priority: 'high',
    });
    assert.equal(inf.status, 200, JSON.stringify(inf.body));
    assert.equal(inf.body.data.prediction, 6);
    assert.equal(inf.body.data.version, '3.0.0');

    const batch = await h.post<Envelope>('/api/v1/models/echo/batch_inference', {
      requests: [{ input_data: 'AC' }, { input_data: { sequence: 'ACGTA' } }],
      timeout: 10,
    });
    assert.equal(batch.status, 200, JSON.stringify(batch.body));
    assert.deepEqual(
      batch.body.data.results.map((r: { data: { prediction: number } }) => r.data.prediction),
      [2, 5],
    );
    const badItem = await h.post<Envelope>('/api/v1/models/echo/batch_inference', {
      requests: [{ input_data: 'AC' }, { input_data: 'AC!!' }],
    });
    assert.equal(badItem.status, 400);
    assert.equal(badItem.body.error?.code, 'INVALID_SEQUENCE');
    assert.deepEqual(badItem.body.error?.details, { index: 1 });
    const wrongModel = await h.post<Envelope>('/api/v1/models/deploy', {
      config: { model_id: 'other', path: join(extDir, 'echo-3') },
    });
    assert.equal(wrongModel.status, 422);
    // The spec's health routes live under /api/v1/health too.
    for (const p of [
      '/api/v1/health/',
      '/api/v1/health/live',
      '/api/v1/health/ready',
      '/api/v1/health/startup',
      '/api/v1/health/detailed',
    ]) {
      assert.equal((await h.get<Envelope>(p)).status, 200, p);
    }
  });

  it('scales a version to 0..100 replicas and refuses anything else with 422', async () => {
    for (const replicas of [101, -1, 2.5, '3', null]) {
      const r = await h.post<Envelope>('/api/v1/models/echo@3.0.0/scale', { replicas });
      assert.equal(r.status, 422, `replicas ${JSON.stringify(replicas)}`);
      assert.equal(r.body.error?.code, 'VALIDATION_ERROR');
    }
    const two = await h.post<Envelope>('/api/v1/models/echo@3.0.0/scale', { replicas: 2 });
    assert.equal(two.status, 200, JSON.stringify(two.body));
    assert.equal(two.body.data.versions[0].replicas.filter((r: { state: string }) => r.state === 'ready').length, 2);
    const pids = h.gw.registry
      .deployment('echo@3.0.0')!
      .replicaInfo()
      .map((r) => r.pid!);
    const zero = await h.post<Envelope>('/api/v1/models/echo@3.0.0/scale', { replicas: 0 });
    assert.equal(zero.body.data.versions[0].replicas.length, 0);
    await waitFor(() => pids.every((p) => !pidAlive(p)));
    // Scaled to zero, the next request wakes a replica.
    assert.equal((await predict('echo@3.0.0')).body.data.built_by, '3.0.0');
    assert.equal(h.gw.registry.deployment('echo@3.0.0')!.replicaInfo().length, 1);
  });

  it('rolls out a new version with PUT while under load: zero failed requests, then only the new version answers', async () => {
    writeEchoVersion(join(extDir, 'echo-4'), '4.0.0', 2);
    const oldPids = h.gw.registry
      .deployment('echo@2.0.0')!
      .replicaInfo()
      .map((r) => r.pid!);
    let stop = false;
    const results: { status: number; version?: string; code?: string }[] = [];
    const client = async (): Promise<void> => {
      while (!stop) {
        const r = await predict('echo');
        results.push({ status: r.status, version: r.body.data?.version, code: r.body.error?.code });
      }
    };
    const clients = Array.from({ length: 8 }, () => client());
    await sleep(300);
    const up = await put('/api/v1/models/echo', { config: { version: '4.0.0', path: join(extDir, 'echo-4') } });
    assert.equal(up.status, 200, JSON.stringify(up.body));
    const afterUpdate = results.length;
    await sleep(300);
    stop = true;
    await Promise.all(clients);

    const failed = results.filter((r) => r.status !== 200);
    assert.deepEqual(failed.slice(0, 3), [], `${failed.length} of ${results.length} requests failed`);
    assert.ok(
      results.some((r) => r.version === '2.0.0') && results.some((r) => r.version === '4.0.0'),
      'both versions answered during the update',
    );
    assert.ok(
      results.slice(afterUpdate).every((r) => r.version === '4.0.0'),
      'after the update only the new version answers',
    );
    assert.equal(up.body.data.traffic.default_version, '4.0.0');
    assert.ok((up.body.data.previous_versions as string[]).includes('2.0.0'));
    assert.equal(h.gw.registry.status('echo@2.0.0'), 'unloaded');
    await waitFor(() => oldPids.every((p) => !pidAlive(p)));
  });

  it('undeploys one version or the whole model', async () => {
    const notDefault = await del('/api/v1/models/echo@4.0.0');
    assert.equal(notDefault.status, 200, 'the default with no other ready version can go');
    assert.equal(h.gw.registry.status('echo@4.0.0'), 'unloaded');
    const gone = await del('/api/v1/models/echo');
    assert.equal(gone.status, 200);
    // The models dir still holds echo-1 and echo-2: listed, unloaded; the external 3 and 4 are forgotten.
    const list = await h.get<Envelope>('/api/v1/models');
    const echo = (
      list.body.data.models as { model_id: string; versions: { version: string; status: string }[] }[]
    ).find((m) => m.model_id === 'echo')!;
    assert.deepEqual(
      echo.versions.map((v) => `${v.version}:${v.status}`),
      ['2.0.0:unloaded', '1.0.0:unloaded'],
    );
    assert.equal((await del('/api/v1/models/nope')).status, 404);
  });
});
