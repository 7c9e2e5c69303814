// API keys with scopes, per-key rate limits, the audit log, and the loopback-only rule for
// running without keys.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { loadConfig } from '../src/config/config.js';
import { Gateway } from '../src/gateway.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import { digest, KeyStore } from '../src/security/keys.js';
import { AuditLog } from '../src/security/audit.js';
import { registerAuth } from '../src/security/auth.js';
import { PREDICT as PREDICT_SCOPE, PUBLIC } from '../src/security/route-scope.js';
import { StateStore } from '../src/store/db.js';
import Fastify from 'fastify';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { makeModelsDir, startGateway, type Harness } from './helpers.js';

const run = promisify(execFile);
const ADMIN = 'iso_test_admin_secret_0123456789';
const PREDICT = 'iso_test_predict_secret_0123456789';
const LIMITED = 'iso_test_limited_secret_0123456789';
const bearer = (k: string) => ({ authorization: `Bearer ${k}` });

describe('authentication and authorisation', () => {
  let h: Harness;
  before(async () => {
    h = await startGateway(['revcomp'], {
      auth: {
        keys: [
          { name: 'ops', sha256: digest(ADMIN), scopes: ['admin'] },
          { name: 'lab', sha256: digest(PREDICT), scopes: ['predict'] },
          { name: 'tiny', sha256: digest(LIMITED), scopes: ['predict'], rate_limit: 2 },
        ],
      },
      rate_limit: { max: 1000, window_ms: 60_000 },
    });
  });
  after(async () => h.close());

  it('requires a key for predictions, and accepts Bearer or X-API-Key', async () => {
    const none = await h.post('/predict', { sequence: 'ACGT' });
    assert.equal(none.status, 401);
    assert.equal(none.body.error.code, 'UNAUTHORIZED');
    assert.equal((await h.post('/predict', { sequence: 'ACGT' }, bearer('iso_wrong'))).status, 401);
    const ok = await h.post('/predict', { sequence: 'ACGT' }, bearer(PREDICT));
    assert.equal(ok.status, 200);
    assert.equal(ok.body.data.reverse_complement, 'ACGT');
    assert.equal(
      (await h.post('/predict', { sequence: 'ACGT' }, { 'x-api-key': ADMIN })).status,
      200,
      'admin implies predict',
    );
  });

  it('admin routes need the admin scope', async () => {
    const denied = await h.post('/v1/models/revcomp/unload', {}, bearer(PREDICT));
    assert.equal(denied.status, 403);
    assert.equal(denied.body.error.code, 'FORBIDDEN');
    assert.equal((await h.post('/v1/models/revcomp/unload', {}, bearer(ADMIN))).status, 200);
    assert.equal((await h.post('/v1/models/revcomp/load', {}, bearer(ADMIN))).status, 200);
    assert.equal((await h.post('/v1/models/reload', {}, bearer(PREDICT))).status, 403);
  });

  it('probes stay public', async () => {
    for (const p of ['/health/live', '/health/ready', '/health/startup']) assert.equal((await h.get(p)).status, 200, p);
    assert.equal((await h.get('/metrics/prometheus')).status, 200);
    assert.equal((await h.get('/metrics')).status, 401);
  });

  it('applies a per-key quota without touching other clients', async () => {
    const codes = [];
    for (let i = 0; i < 3; i++) codes.push((await h.post('/predict', { sequence: 'ACGT' }, bearer(LIMITED))).status);
    assert.deepEqual(codes, [200, 200, 429]);
    assert.equal((await h.post('/predict', { sequence: 'ACGT' }, bearer(PREDICT))).status, 200);
  });

  it('keeps an audit log of admin actions and denied requests', async () => {
    const r = await h.get('/v1/audit?limit=100', bearer(ADMIN));
    assert.equal(r.status, 200);
    const entries = r.body.data.entries as any[];
    assert.ok(
      entries.some(
        (e) => e.action === 'models.unload' && e.actor === 'ops' && e.outcome === 'allowed' && e.target === 'revcomp',
      ),
    );
    assert.ok(
      entries.some(
        (e) => e.action === 'models.unload' && e.actor === 'lab' && e.outcome === 'denied' && e.status === 403,
      ),
    );
    assert.ok(entries.some((e) => e.outcome === 'denied' && e.status === 401));
    const denied = await h.get('/v1/audit?outcome=denied', bearer(ADMIN));
    assert.ok(denied.body.data.entries.every((e: any) => e.outcome === 'denied'));
    assert.equal((await h.get('/v1/audit', bearer(PREDICT))).status, 403);
  });

  it('keys created and revoked with the CLI take effect at once on the running gateway', async () => {
    const cli = (...args: string[]) =>
      run(process.execPath, [join(PACKAGE_ROOT, 'bin', 'isomodel.js'), '--state-dir', h.stateDir, 'keys', ...args]);
    const { stdout } = await cli('create', 'robot', '--scopes', 'predict');
    const key = stdout.trim();
    assert.match(key, /^iso_[0-9a-f]{12}_/);
    assert.equal((await h.post('/predict', { sequence: 'ACGT' }, bearer(key))).status, 200);
    const ls = JSON.parse((await cli('ls', '--json')).stdout);
    assert.ok(ls.some((k: any) => k.name === 'robot' && k.status === 'active' && !('sha256' in k)));
    await cli('revoke', 'robot');
    assert.equal((await h.post('/predict', { sequence: 'ACGT' }, bearer(key))).status, 401);
    // Both are admin actions, audited with the user who ran the command.
    const audit = h.gw.audit.query({ limit: 100 }).filter((e) => String(e.actor).startsWith('cli:'));
    // A key database created by the CLI before any gateway ran is the owner's alone.
    const fresh = join(mkdtempSync(join(tmpdir(), 'isomodel-keys-')), 'state');
    await run(process.execPath, [
      join(PACKAGE_ROOT, 'bin', 'isomodel.js'),
      '--state-dir',
      fresh,
      'keys',
      'create',
      'first',
    ]);
    assert.equal(statSync(fresh).mode & 0o777, 0o700);
    assert.equal(statSync(join(fresh, 'isomodel.db')).mode & 0o777, 0o600);
    rmSync(join(fresh, '..'), { recursive: true, force: true });
    assert.deepEqual(
      audit.map((e) => [e.action, e.target, e.outcome]),
      [
        ['keys.revoke', 'robot', 'allowed'],
        ['keys.create', 'robot', 'allowed'],
      ],
    );
  });
});

describe('running without keys', () => {
  it('off loopback, revoking the last key locks the API instead of opening it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'isomodel-lock-'));
    const store = new StateStore(dir);
    const app = Fastify();
    registerAuth(app, {
      keys: new KeyStore(store),
      audit: new AuditLog(store),
      allowAnonymous: false,
      failureLimit: { max: 0, windowMs: 60_000 },
    });
    app.get('/predict-ish', PREDICT_SCOPE, async () => ({ ok: true }));
    app.get('/health/live', PUBLIC, async () => ({ ok: true }));
    const denied = await app.inject({ method: 'GET', url: '/predict-ish' });
    assert.equal(denied.statusCode, 401);
    assert.equal(JSON.parse(denied.body).error.code, 'UNAUTHORIZED');
    assert.equal((await app.inject({ method: 'GET', url: '/health/live' })).statusCode, 200);
    await app.close();
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is refused on a non-loopback address', async () => {
    const modelsDir = makeModelsDir(['revcomp']);
    const config = loadConfig({
      env: {},
      cwd: modelsDir,
      overrides: {
        host: '0.0.0.0',
        port: 0,
        models_dir: modelsDir,
        state_dir: join(modelsDir, '.state'),
        watch: false,
      },
    });
    const gw = new Gateway(config, pino({ level: 'silent' }));
    await assert.rejects(gw.start(), /refusing to listen on 0\.0\.0\.0 without API keys/);
    await gw.close();
  });
});
