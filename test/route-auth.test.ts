// Authorization after routing (issue 14, items 1-3): every route declares its scope, the
// decision follows the matched route whatever the URL's spelling, every admin action is audited
// with who/what/where/outcome, failed authentication is throttled per address before any key
// lookup, and the audit and request logs are pruned.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Fastify from 'fastify';
import { listRoutes, type RouteEntry } from '../src/api/server.js';
import { digest } from '../src/security/keys.js';
import { AuthFailureLimiter } from '../src/security/failure-limiter.js';
import { requireRouteScopes } from '../src/security/route-scope.js';
import { pruneTable } from '../src/store/retention.js';
import { StateStore } from '../src/store/db.js';
import { AuditLog } from '../src/security/audit.js';
import { startGateway, waitFor, type Harness } from './helpers.js';
import { concretePath, rawRequest } from './raw-http.js';

const ADMIN = 'iso_test_admin_secret_route_auth_01';
const PREDICT = 'iso_test_predict_secret_route_auth_1';
const bearer = (k: string): Record<string, string> => ({ authorization: `Bearer ${k}` });
const KEYS = {
  keys: [
    { name: 'ops', sha256: digest(ADMIN), scopes: ['admin' as const] },
    { name: 'lab', sha256: digest(PREDICT), scopes: ['predict' as const] },
  ],
};

describe('route scopes', () => {
  let h: Harness;
  let routes: RouteEntry[];
  before(async () => {
    // Failed-auth throttling off: this suite sends hundreds of keyless requests on purpose.
    h = await startGateway(['revcomp'], { auth: { ...KEYS, failure_limit: { max: 0 } } });
    routes = [...listRoutes(h.gw.server!)];
  });
  after(async () => h.close());

  it('every registered route declares a scope, and a route without one cannot be registered', async () => {
    assert.ok(routes.length > 60, `only ${routes.length} routes listed`);
    const missing = routes.filter((r) => !r.scope || !['public', 'predict', 'admin'].includes(r.scope));
    assert.deepEqual(missing, [], 'routes without a declared scope');
    for (const r of routes.filter((x) => x.scope === 'admin'))
      assert.ok(r.action, `admin route ${r.url} names no audit action`);
    const app = Fastify();
    requireRouteScopes(app);
    assert.throws(() => app.get('/no-scope', async () => ({ ok: true })), /declares no scope/);
    assert.throws(
      () => app.post('/bad-scope', { config: { scope: 'everyone' as never } }, async () => ({ ok: true })),
      /declares no scope/,
    );
    await app.close();
    const ok = Fastify();
    requireRouteScopes(ok);
    ok.get('/with-scope', { config: { scope: 'predict' } }, async () => ({ ok: true }));
    await ok.ready();
    await ok.close();
  });

  it('admin routes are exactly the ones that change the gateway or read its secrets', () => {
    const admin = routes
      .filter((r) => r.scope === 'admin')
      .flatMap((r) => r.methods.map((m) => `${m} ${r.url}`))
      .sort();
    // Reads of state a predict key may see stay predict; HEAD mirrors its GET.
    assert.deepEqual(admin, [
      'DELETE /api/models/:id',
      'DELETE /api/v1/models/:id',
      'DELETE /api/v1/models/:id/traffic',
      'DELETE /v1/monitor/thresholds',
      'GET /api/containers/:name/logs',
      'GET /v1/audit',
      'GET /v1/keys',
      'GET /v1/models/:name/logs',
      'GET /v1/monitor/webhooks',
      'HEAD /api/containers/:name/logs',
      'HEAD /v1/audit',
      'HEAD /v1/keys',
      'HEAD /v1/models/:name/logs',
      'HEAD /v1/monitor/webhooks',
      'POST /agent/model/:name/load',
      'POST /agent/model/:name/unload',
      'POST /api/containers/create',
      'POST /api/containers/delete',
      'POST /api/containers/start',
      'POST /api/containers/stop',
      'POST /api/models/download',
      'POST /api/v1/models/:id/promote',
      'POST /api/v1/models/:id/rollback',
      'POST /api/v1/models/:id/scale',
      'POST /api/v1/models/deploy',
      'POST /v1/models/:name/load',
      'POST /v1/models/:name/unload',
      'POST /v1/models/reload',
      'POST /v2/repository/models/:name/load',
      'POST /v2/repository/models/:name/unload',
      'PUT /api/v1/models/:id',
      'PUT /api/v1/models/:id/traffic',
      'PUT /v1/monitor/thresholds',
    ]);
  });

  it('each route answers a predict key, an admin key and no key as its scope says', async () => {
    const values = { name: 'revcomp', id: 'revcomp', model: 'revcomp', version: '1.0.0' };
    for (const r of routes) {
      for (const method of r.methods) {
        if (method === 'HEAD' || r.url === '/mcp') continue;
        const path = concretePath(r.url, values);
        const body = method === 'GET' || method === 'DELETE' ? undefined : '{}';
        const none = await rawRequest(h.url, method, path, {}, body);
        if (r.scope === 'public') assert.notEqual(none.status, 401, `${method} ${path} is public`);
        else assert.equal(none.status, 401, `${method} ${path} without a key`);
        if (r.scope === 'admin') {
          const p = await rawRequest(h.url, method, path, bearer(PREDICT), body);
          assert.equal(p.status, 403, `${method} ${path} with a predict key`);
          assert.equal(JSON.parse(p.text).error.code, 'FORBIDDEN');
        }
      }
    }
    // An admin key passes authorization everywhere (the action itself may still fail on its own terms).
    for (const [m, p] of [
      ['GET', '/v1/audit'],
      ['GET', '/v1/keys'],
      ['GET', '/v1/monitor/webhooks'],
    ] as const) {
      assert.equal((await rawRequest(h.url, m, p, bearer(ADMIN))).status, 200, `${m} ${p}`);
    }
  });
});

describe('URL spellings of admin routes (the attacks of issue 14)', () => {
  let h: Harness;
  before(async () => {
    h = await startGateway(['revcomp'], { auth: KEYS });
  });
  after(async () => h.close());

  it('a predict key is refused whatever the spelling, and nothing changes', async () => {
    const attacks: [string, string, string?][] = [
      ['POST', '/v1/models/%72eload'],
      ['POST', '/%761/models/reload'],
      ['POST', '/v1/models/revcomp/%75nload'],
      ['POST', '/v1/models/%72evcomp/unload'],
      ['GET', '/v1/%61udit'],
      ['GET', '/v1/%6beys'],
      ['DELETE', '/api/v1/%6dodels/revcomp'],
      ['POST', '/api/v1/models/%64eploy', JSON.stringify({ config: { model_id: 'evil', path: '/tmp' } })],
      ['POST', '/v2/repository/models/revcomp/%75nload'],
      ['POST', '/agent/model/revcomp/%75nload'],
      ['PUT', '/v1/monitor/%74hresholds', JSON.stringify({ cpu_percent: 1 })],
      ['HEAD', '/v1/audit'],
      ['HEAD', '/v1/%6beys'],
    ];
    for (const [method, target, body] of attacks) {
      const r = await rawRequest(
        h.url,
        method,
        target,
        bearer(PREDICT),
        body ?? (method === 'GET' || method === 'HEAD' || method === 'DELETE' ? undefined : '{}'),
      );
      assert.equal(r.status, 403, `${method} ${target}: ${r.status} ${r.text.slice(0, 200)}`);
    }
    // Fragments and absolute-form targets are refused before anything runs, with any key.
    for (const [method, target] of [
      ['POST', '/v1/models/reload#x'],
      ['POST', '/v1/models/revcomp/unload#'],
      ['POST', 'http://127.0.0.1/v1/models/reload'],
      ['POST', 'http://localhost:1/v1/models/revcomp/unload'],
      ['GET', 'http://127.0.0.1/v1/keys'],
    ] as const) {
      for (const key of [PREDICT, ADMIN]) {
        const r = await rawRequest(h.url, method, target, bearer(key), method === 'POST' ? '{}' : undefined);
        assert.equal(r.status, 400, `${method} ${target}`);
        assert.equal(JSON.parse(r.text).error.code, 'INVALID_REQUEST');
      }
    }
    assert.equal(h.gw.registry.status('revcomp'), 'ready', 'revcomp was unloaded');
    assert.equal(h.gw.registry.names().includes('evil'), false);
    // Every refusal of an admin route was audited against the route it matched.
    const audit = h.gw.audit.query({ outcome: 'denied', limit: 1000 }).filter((e) => e.actor === 'lab');
    assert.equal(audit.length, attacks.length);
    assert.ok(
      audit.every(
        (e) => typeof e.route === 'string' && (e.route as string).includes('/') && !(e.route as string).includes('%'),
      ),
      'audited under the route pattern, not the raw URL',
    );
    assert.ok(audit.some((e) => e.action === 'models.reload' && e.route === '/v1/models/reload'));
    assert.ok(audit.some((e) => e.action === 'models.delete' && (e.params as Record<string, string>).id === 'revcomp'));
  });

  it('the admin key can do them, and every admin action is audited with key, route, params, client and outcome', async () => {
    const ok = await rawRequest(h.url, 'POST', '/v1/models/revcomp/%75nload', bearer(ADMIN), '{}');
    assert.equal(ok.status, 200);
    const failed = await rawRequest(h.url, 'POST', '/v1/models/no-such-model/load', bearer(ADMIN), '{}');
    assert.equal(failed.status, 404);
    const back = await rawRequest(h.url, 'POST', '/v1/models/revcomp/load', bearer(ADMIN), '{}');
    assert.equal(back.status, 200);
    const rows = h.gw.audit.query({ actor: 'ops', limit: 100 });
    const unload = rows.find((e) => e.action === 'models.unload' && e.outcome === 'allowed');
    assert.ok(unload, 'the unload through a spelled URL is audited');
    assert.equal(unload.key_id, 'config:ops');
    assert.equal(unload.route, '/v1/models/:name/unload');
    assert.deepEqual(unload.params, { name: 'revcomp' });
    assert.equal(unload.client, '127.0.0.1');
    assert.equal(unload.status, 200);
    const miss = rows.find((e) => e.action === 'models.load' && e.outcome === 'failed');
    assert.ok(miss, 'a failed admin action is audited');
    assert.equal(miss.status, 404);
    assert.deepEqual(miss.params, { name: 'no-such-model' });
    // Reading the audit log is itself an admin action.
    await rawRequest(h.url, 'GET', '/v1/audit', bearer(ADMIN));
    assert.ok(h.gw.audit.query({ action: 'audit.read' }).length >= 1);
  });
});

describe('failed authentication is throttled per address', () => {
  let h: Harness;
  before(async () => {
    h = await startGateway(['revcomp'], { auth: { ...KEYS, failure_limit: { max: 5, window_ms: 1500 } } });
  });
  after(async () => h.close());

  it('answers 429 with Retry-After past the limit, before any key lookup, and counts it', async () => {
    let verified = 0;
    const verify = h.gw.keys.verify.bind(h.gw.keys);
    h.gw.keys.verify = (s: string) => {
      verified++;
      return verify(s);
    };
    const codes: number[] = [];
    for (let i = 0; i < 12; i++)
      codes.push((await rawRequest(h.url, 'POST', '/predict', bearer(`iso_bogus_${i}`), '{"sequence":"ACGT"}')).status);
    assert.deepEqual(codes, [...Array(5).fill(401), ...Array(7).fill(429)]);
    assert.equal(verified, 5, 'throttled requests never reach the key store');
    const limited = await rawRequest(h.url, 'GET', '/v1/models', {});
    assert.equal(limited.status, 429);
    assert.equal(JSON.parse(limited.text).error.code, 'RATE_LIMITED');
    assert.ok(Number(limited.headers['retry-after']) >= 1);
    // Even a good key waits: the address is throttled, not the key.
    assert.equal((await rawRequest(h.url, 'GET', '/v1/models', bearer(PREDICT))).status, 429);
    // Probes are public and never throttled.
    assert.equal((await rawRequest(h.url, 'GET', '/health/live')).status, 200);
    // Only the 5 failures were audited, not the throttled attempts.
    assert.equal(h.gw.audit.query({ outcome: 'denied', limit: 1000 }).filter((e) => e.status === 401).length, 5);
    const metrics = (await rawRequest(h.url, 'GET', '/metrics/prometheus')).text;
    assert.match(metrics, /^isomodel_auth_failures_total\{reason="invalid"\} 5$/m);
    assert.match(metrics, /^isomodel_auth_throttled_total 9$/m);
    // The window passes: the good key works again.
    await waitFor(
      async () => (await rawRequest(h.url, 'GET', '/v1/models', bearer(PREDICT))).status === 200,
      5000,
      100,
    );
    h.gw.keys.verify = verify;
  });

  it('the limiter keeps a bounded table of addresses', () => {
    let now = 0;
    const lim = new AuthFailureLimiter({ max: 2, windowMs: 1000, maxClients: 100 }, () => now);
    for (let i = 0; i < 1000; i++) lim.fail(`10.0.${i >> 8}.${i & 255}`);
    assert.ok(lim.size <= 100, `${lim.size} addresses tracked`);
    lim.fail('a');
    lim.fail('a');
    assert.equal(lim.retryAfterS('a'), 1);
    now = 999;
    assert.equal(lim.retryAfterS('a'), 1);
    now = 1000;
    assert.equal(lim.retryAfterS('a'), 0, 'a new window');
    assert.equal(new AuthFailureLimiter({ max: 0, windowMs: 1000 }).retryAfterS('x'), 0);
  });
});

describe('retention of the audit and request logs', () => {
  it('prunes by age and by row count, oldest first', () => {
    const dir = mkdtempSync(join(tmpdir(), 'isomodel-retention-'));
    const store = new StateStore(dir);
    try {
      const audit = new AuditLog(store);
      const day = 86_400_000;
      const now = Date.parse('2026-06-01T00:00:00Z');
      const ins = store.db.prepare(
        "INSERT INTO audit_log (at, actor, action, outcome, status) VALUES (?, 'a', ?, 'allowed', 200)",
      );
      for (let i = 0; i < 12_000; i++) ins.run(new Date(now - (12_000 - i) * 60_000).toISOString(), `old-${i}`); // one a minute, up to now
      for (let i = 0; i < 5; i++) ins.run(new Date(now - 100 * day).toISOString(), `ancient-${i}`); // out of order: newest ids, oldest times
      const byAge = pruneTable(store.db, { table: 'audit_log', policy: { maxAgeMs: 5 * day, maxRows: 0 } }, now);
      assert.equal(byAge, 5 + (12_000 - 5 * 24 * 60) + 0, 'everything older than 5 days');
      const left = (store.db.prepare('SELECT COUNT(*) AS n FROM audit_log').get() as { n: number }).n;
      assert.equal(left, 5 * 24 * 60);
      const byRows = pruneTable(store.db, { table: 'audit_log', policy: { maxAgeMs: 0, maxRows: 1000 } }, now);
      assert.equal(byRows, left - 1000);
      const rows = store.db.prepare('SELECT action FROM audit_log ORDER BY id').all() as { action: string }[];
      assert.equal(rows.length, 1000);
      assert.equal(rows.at(-1)!.action, 'old-11999', 'the newest rows stay');
      assert.equal(audit.query({ limit: 1 })[0]!.action, 'old-11999');
      for (let i = 0; i < 30; i++)
        store.logRequest({
          request_id: `r${i}`,
          model: 'm',
          route: 'predict',
          status: 'success',
          sequences: 1,
          latency_ms: 1,
        });
      store.flush();
      assert.equal(pruneTable(store.db, { table: 'request_log', policy: { maxAgeMs: day, maxRows: 10 } }), 20);
      assert.equal(store.recentRequests(100).length, 10);
    } finally {
      store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a gateway prunes at start with the configured policy', async () => {
    const h = await startGateway(['revcomp'], { retention: { audit_max_rows: 3, request_log_max_rows: 2 } });
    try {
      for (let i = 0; i < 6; i++) h.gw.audit.record({ actor: 'x', action: `a${i}`, outcome: 'allowed', status: 200 });
      for (let i = 0; i < 5; i++) assert.equal((await h.post('/predict', { sequence: 'ACGT' })).status, 200);
      h.gw.store.flush();
      const removed = h.gw.retention.runOnce();
      assert.equal(removed.audit_log, 3);
      assert.equal(removed.request_log, 3);
      assert.deepEqual(
        h.gw.audit.query().map((e) => e.action),
        ['a5', 'a4', 'a3'],
      );
    } finally {
      await h.close();
    }
  });
});
