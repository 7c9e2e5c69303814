// Several gateways sharing state through PostgreSQL (database_url): real gateways on loopback
// over one real PostgreSQL cluster this file starts in a temp dir (skipped, with the reason,
// where PostgreSQL is not installed). Store-level behaviour of the shared state, jobs included,
// is in shared-store.test.ts.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { pino } from 'pino';
import { loadConfig } from '../src/config/config.js';
import { Gateway } from '../src/gateway.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import { freePort, request, startGateway, waitFor, workerTmpDir, type Harness } from './helpers.js';
import { pgUnavailable, startPgCluster, type PgCluster } from './postgres.js';
import { ServeProcess } from './serve-process.js';
import { writePacedModel } from './paced-model.js';
import { assertTakenOver, killHoldingLease } from './kill-holding-lease.js';
import { JobStore } from '../src/jobs/store.js';
import { PostgresClient } from '../src/store/sql.js';
import type { OutputRecord } from '../src/jobs/formats.js';

const run = promisify(execFile);
const BIN = join(PACKAGE_ROOT, 'bin', 'isomodel.js');

/** A tiny Node model whose answers say which package version computed them. */
function writeEchoVersion(dir: string, version: string): void {
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
scaling: { min_replicas: 1, max_replicas: 1 }
resources: { memory_mb: 256, timeout_ms: 5000 }
`,
  );
  writeFileSync(
    join(dir, 'index.mjs'),
    `export async function predict(batch) { return batch.map((item) => ({ prediction: item.sequence.length, built_by: ${JSON.stringify(version)} })); }\n`,
  );
}

describe('gateways sharing state through PostgreSQL', { skip: pgUnavailable() }, () => {
  let cluster: PgCluster;
  let url: string;
  let a: Harness;
  let b: Harness;

  before(async () => {
    cluster = await startPgCluster();
    url = await cluster.createDatabase('gateways');
    a = await startGateway([], { database_url: url });
    b = await startGateway([], { database_url: url });
    for (const h of [a, b]) {
      writeEchoVersion(join(h.modelsDir, 'echo-1'), '1.0.0');
      writeEchoVersion(join(h.modelsDir, 'echo-2'), '2.0.0');
    }
  });

  after(async () => {
    await a?.close();
    await b?.close();
    await cluster?.destroy();
  });

  it('a key created through A works on B; revoked through B, A refuses it within a second', async () => {
    assert.equal(a.gw.shared?.feed.listening, true, 'A listens for changes');
    const ops = await a.gw.keyring.create('ops', ['predict', 'admin']);
    const ci = await a.gw.keyring.create('ci', ['predict']);
    const auth = (k: string) => ({ authorization: `Bearer ${k}` });
    // Until B has read the keys it has none, so it answers everyone: wait for it to require one.
    await waitFor(async () => (await b.get('/v1/models')).status === 401, 1000, 20);
    assert.equal((await b.get('/v1/models', auth(ci.key))).status, 200, 'the key created on A works on B');
    const listed = await b.get('/v1/keys', auth(ops.key));
    assert.deepEqual(listed.body.data.keys.map((k: { name: string }) => k.name).sort(), ['ci', 'ops']);

    // Revoked through B's configuration by the CLI, as an operator would.
    const env = {
      ...process.env,
      ISOMODEL_DATABASE_URL: url,
      ISOMODEL_STATE_DIR: b.stateDir,
      ISOMODEL_MODELS_DIR: b.modelsDir,
    };
    const out = await run(process.execPath, [BIN, 'keys', 'revoke', 'ci'], { env, cwd: b.stateDir });
    assert.match(out.stdout, /revoked ci/);
    const t0 = Date.now();
    await waitFor(async () => (await a.get('/v1/models', auth(ci.key))).status === 401, 1000, 20);
    assert.ok(Date.now() - t0 <= 1000);
    assert.equal((await a.get('/v1/models', auth(ops.key))).status, 200, 'the other key still works');
    const audit = await a.get('/v1/audit?action=keys.revoke', auth(ops.key));
    assert.equal(audit.body.data.entries[0]?.target, 'ci', 'the revocation is in the one shared audit log');
  });

  it('a canary split set on A applies on B', async () => {
    const ops = await a.gw.keyring.create('canary-ops', ['predict', 'admin']);
    const h = { authorization: `Bearer ${ops.key}` };
    await waitFor(() => b.gw.keyring.verify(ops.key) !== null, 1000, 20);
    for (const g of [a, b]) assert.equal((await g.post('/v1/models/reload', {}, h)).status, 200);
    const set = await request<any>(
      `${a.url}/api/v1/models/echo/traffic`,
      'PUT',
      { canary: { version: '1.0.0', percent: 25 } },
      h,
    );
    assert.equal(set.status, 200, JSON.stringify(set.body));
    const expected = a.gw.registry.traffic('echo').weights;
    assert.deepEqual(expected, { '1.0.0': 25, '2.0.0': 75 });
    await waitFor(() => JSON.stringify(b.gw.registry.traffic('echo').weights) === JSON.stringify(expected), 1000, 20);
    // B routes by it: both versions answer there, once 1.0.0 (loaded for the split) is ready.
    await waitFor(() => b.gw.registry.status('echo@1.0.0') === 'ready', 30_000);
    const seen = new Set<string>();
    for (let i = 0; i < 40; i++)
      seen.add((await b.post('/models/echo/predict', { sequence: 'ACGT' }, h)).body.data.built_by);
    assert.deepEqual([...seen].sort(), ['1.0.0', '2.0.0']);
  });
});

describe('a job in the shared store outlives the gateway running it', { skip: pgUnavailable() }, () => {
  let cluster: PgCluster;
  let a: ServeProcess | null = null;
  let b: Harness | null = null;
  let sql: PostgresClient | null = null;

  before(async () => {
    cluster = await startPgCluster();
  });

  after(async () => {
    a?.child.kill('SIGKILL');
    await b?.close();
    await sql?.close();
    await cluster?.destroy();
  });

  it('10,000 sequences: gateway A (isomodel serve) is SIGKILLed mid-job, gateway B finishes it, every record exactly once and in order', async () => {
    const url = await cluster.createDatabase('takeover');
    const models = workerTmpDir('isomodel-paced-'); // workers (nobody, as root) read the package
    writePacedModel(join(models, 'paced'));
    const stateA = mkdtempSync(join(tmpdir(), 'isomodel-state-a-'));
    a = new ServeProcess({
      env: { ISOMODEL_DATABASE_URL: url, ISOMODEL_MODELS_DIR: models, ISOMODEL_STATE_DIR: stateA },
    });
    await a.start();
    await a.settled();
    sql = new PostgresClient(url);
    const store = await JobStore.open(sql);
    // Queued as the job routes queue a submission: the row, its records, then activation.
    const n = 10_000;
    const { job } = await store.begin({
      id: 'takeover-job',
      name: null,
      kind: 'predict',
      model: 'paced',
      task: 'length',
      spec: JSON.stringify({ kind: 'predict', model: 'paced', task: 'length', options: {} }),
      chunk_size: 8,
      workers: 1,
      priority: 0,
      idempotency_key: null,
      request_hash: null,
      created_at: new Date().toISOString(),
      owner: 'k1',
      owner_name: 'alice',
    });
    for (let i = 0; i < n; i += 1000)
      await store.append(
        job.id,
        i,
        Array.from({ length: 1000 }, (_, k) => ({ id: `s${i + k}`, sequence: 'ACGT'.repeat(1 + ((i + k) % 5)) })),
      );
    await store.activate(job.id);
    await waitFor(async () => ((await store.get(job.id))?.done ?? 0) >= 1000, 120_000, 50);
    const held = await killHoldingLease(a.child, sql, job.id, `%:${a.child.pid}:%`);
    const atKill = (await store.get(job.id))!;
    assert.equal(atKill.status, 'running');
    assert.ok(atKill.done < n, 'killed mid-job');

    b = await startGateway([], { database_url: url, models_dir: models });
    await waitFor(async () => (await store.get(job.id))?.status === 'succeeded', 180_000, 100);
    const pids = new Set<number>();
    let next = 0;
    for (let from = 0; from < n; from += 1000) {
      for (const r of await store.results(job.id, from, 1000)) {
        assert.equal(r.idx, next++, 'in input order');
        assert.equal(r.status, 'success');
        const out = JSON.parse(r.result!) as OutputRecord;
        assert.equal(out.metadata.index, r.idx);
        assert.equal(out.output!.length, 4 * (1 + (r.idx % 5)), 'the result of this very record');
        pids.add(out.output!.pid as number);
      }
    }
    assert.equal(next, n, 'every record has its one result');
    const done = (await store.get(job.id))!;
    assert.equal(done.done, n);
    assert.equal(done.failed, 0);
    assert.ok(pids.size >= 2, 'workers of both gateways answered');
    await assertTakenOver(sql, job.id, held);
    rmSync(stateA, { recursive: true, force: true });
    rmSync(models, { recursive: true, force: true });
  });
});

describe('database_url', () => {
  it('takes only a postgres:// URL, from the config or ISOMODEL_DATABASE_URL', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'isomodel-dburl-'));
    try {
      assert.equal(loadConfig({ cwd, env: {} }).database_url, undefined, 'SQLite stays the default');
      assert.equal(
        loadConfig({ cwd, env: { ISOMODEL_DATABASE_URL: 'postgresql://u@h/db' } }).database_url,
        'postgresql://u@h/db',
      );
      assert.throws(
        () => loadConfig({ cwd, env: {}, overrides: { database_url: 'mysql://u@h/db' } }),
        /postgres:\/\/ or postgresql:\/\//,
      );
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  });

  it('a gateway whose database cannot be reached does not start, and says which one without its password', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'isomodel-dburl-'));
    const port = await freePort();
    const config = loadConfig({
      cwd: stateDir,
      env: {},
      overrides: {
        host: '127.0.0.1',
        port: 0,
        models_dir: stateDir,
        state_dir: stateDir,
        watch: false,
        database_url: `postgres://iso:hunter2@127.0.0.1:${port}/iso`,
      },
    });
    const gw = new Gateway(config, pino({ level: 'silent' }));
    try {
      await assert.rejects(gw.start(), (e: Error) => {
        assert.match(
          e.message,
          new RegExp(`cannot reach the shared state database postgres://iso:\\*\\*\\*@127\\.0\\.0\\.1:${port}/iso`),
        );
        assert.doesNotMatch(e.message, /hunter2/);
        return true;
      });
      assert.equal(gw.server, null, 'nothing listens');
    } finally {
      await gw.close();
      rmSync(stateDir, { recursive: true, force: true });
    }
  });
});
