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
import { freePort, request, startGateway, waitFor, type Harness } from './helpers.js';
import { pgUnavailable, startPgCluster, type PgCluster } from './postgres.js';

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
  writeFileSync(join(dir, 'index.mjs'), `export async function predict(batch) { return batch.map((item) => ({ prediction: item.sequence.length, built_by: ${JSON.stringify(version)} })); }\n`);
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
    await waitFor(async () => (await b.get('/v1/models', auth(ci.key))).status === 200, 1000, 20);
    assert.equal((await b.get('/v1/models')).status, 401, 'B requires a key now that one exists');
    const listed = await b.get('/v1/keys', auth(ops.key));
    assert.deepEqual(listed.body.data.keys.map((k: { name: string }) => k.name).sort(), ['ci', 'ops']);

    // Revoked through B's configuration by the CLI, as an operator would.
    const env = { ...process.env, ISOMODEL_DATABASE_URL: url, ISOMODEL_STATE_DIR: b.stateDir, ISOMODEL_MODELS_DIR: b.modelsDir };
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
    const set = await request<any>(`${a.url}/api/v1/models/echo/traffic`, 'PUT', { canary: { version: '1.0.0', percent: 25 } }, h);
    assert.equal(set.status, 200, JSON.stringify(set.body));
    const expected = a.gw.registry.traffic('echo').weights;
    assert.deepEqual(expected, { '1.0.0': 25, '2.0.0': 75 });
    await waitFor(() => JSON.stringify(b.gw.registry.traffic('echo').weights) === JSON.stringify(expected), 1000, 20);
    // B routes by it: both versions answer there, once 1.0.0 (loaded for the split) is ready.
    await waitFor(() => b.gw.registry.status('echo@1.0.0') === 'ready', 30_000);
    const seen = new Set<string>();
    for (let i = 0; i < 40; i++) seen.add((await b.post('/models/echo/predict', { sequence: 'ACGT' }, h)).body.data.built_by);
    assert.deepEqual([...seen].sort(), ['1.0.0', '2.0.0']);
  });
});

describe('database_url', () => {
  it('takes only a postgres:// URL, from the config or ISOMODEL_DATABASE_URL', () => {
    const cwd = mkdtempSync(join(tmpdir(), 'isomodel-dburl-'));
    try {
      assert.equal(loadConfig({ cwd, env: {} }).database_url, undefined, 'SQLite stays the default');
      assert.equal(loadConfig({ cwd, env: { ISOMODEL_DATABASE_URL: 'postgresql://u@h/db' } }).database_url, 'postgresql://u@h/db');
      assert.throws(() => loadConfig({ cwd, env: {}, overrides: { database_url: 'mysql://u@h/db' } }), /postgres:\/\/ or postgresql:\/\//);
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  });

  it('a gateway whose database cannot be reached does not start, and says which one without its password', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'isomodel-dburl-'));
    const port = await freePort();
    const config = loadConfig({ cwd: stateDir, env: {}, overrides: { host: '127.0.0.1', port: 0, models_dir: stateDir, state_dir: stateDir, watch: false, database_url: `postgres://iso:hunter2@127.0.0.1:${port}/iso` } });
    const gw = new Gateway(config, pino({ level: 'silent' }));
    try {
      await assert.rejects(gw.start(), (e: Error) => {
        assert.match(e.message, new RegExp(`cannot reach the shared state database postgres://iso:\\*\\*\\*@127\\.0\\.0\\.1:${port}/iso`));
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
