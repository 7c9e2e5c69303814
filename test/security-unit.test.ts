// src/security/ without a gateway: route scopes, the failed-auth limiter (with a fake clock), API
// keys and the audit log on a real SQLite state store in a temp dir, and registerAuth on a bare
// Fastify instance driven with app.inject. auth.test.ts and route-auth.test.ts check the same
// through a real gateway; these run in a few seconds, for `npm run mutate -- security-core`.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, it } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { AuditLog } from '../src/security/audit.js';
import { accessOf, badRequestTarget, registerAuth, type AuthOptions } from '../src/security/auth.js';
import { AuthFailureLimiter } from '../src/security/failure-limiter.js';
import { digest, hasScope, KeyStore, SCOPES } from '../src/security/keys.js';
import { isLoopback } from '../src/security/network.js';
import { admin, PREDICT, PUBLIC, requireRouteScopes, ROUTE_SCOPES } from '../src/security/route-scope.js';
import { StateStore } from '../src/store/db.js';

const dirs: string[] = [];
const stores: StateStore[] = [];
function freshStore(): StateStore {
  const dir = mkdtempSync(join(tmpdir(), 'isomodel-security-unit-'));
  dirs.push(dir);
  const s = new StateStore(dir);
  stores.push(s);
  return s;
}
after(() => {
  for (const s of stores) s.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('route scopes', () => {
  it('names the three scopes and builds route options', () => {
    assert.deepEqual([...ROUTE_SCOPES], ['public', 'predict', 'admin']);
    assert.deepEqual(PUBLIC, { config: { scope: 'public' } });
    assert.deepEqual(PREDICT, { config: { scope: 'predict' } });
    assert.deepEqual(admin('models.load'), { config: { scope: 'admin', action: 'models.load' } });
  });

  it('refuses to register a route without a known scope', async () => {
    const app = Fastify();
    requireRouteScopes(app);
    app.get('/a', PUBLIC, async () => 'a');
    app.get('/b', PREDICT, async () => 'b');
    app.post('/c', admin('c.do'), async () => 'c');
    assert.throws(
      () => app.get('/none', async () => 'x'),
      (e: Error) =>
        e.message ===
        'route GET /none declares no scope: add PUBLIC, PREDICT or admin(action) from src/security/route-scope.ts to its options',
    );
    assert.throws(
      () => app.post('/odd', { config: { scope: 'root' as never } }, async () => 'x'),
      /route POST \/odd declares no scope/,
    );
    await app.ready();
    assert.equal((await app.inject({ method: 'GET', url: '/a' })).body, 'a');
    // The automatic HEAD route copies GET's scope, so it registers too.
    assert.equal((await app.inject({ method: 'HEAD', url: '/b' })).statusCode, 200);
    await app.close();
  });
});

describe('network', () => {
  it('knows loopback addresses', () => {
    for (const h of [
      'localhost',
      ' LOCALHOST ',
      '::1',
      '[::1]',
      '127.0.0.1',
      '127.1.2.3',
      '127.255.10.100', // octets of one, two and three digits in every place
      '127.10.255.1',
      '127.1.1.254',
      '::ffff:127.0.0.1',
    ])
      assert.equal(isLoopback(h), true, h);
    for (const h of [
      '0.0.0.0',
      '::',
      '10.0.0.1',
      '128.0.0.1',
      '127.0.0.1.example',
      'x127.0.0.1',
      '127.0.0',
      '::ffff:10.0.0.1',
      'localhost.evil',
      '1127.0.0.1',
      '127.0.0.1234',
      '127.1000.0.1',
      '127.0.1000.1',
      // Brackets come off only around the whole address, never from inside it.
      '127.0.[0.1',
      '127.0.]0.1',
      '2001:db8::ffff:127.0.0.1', // ::ffff:127. only as the start of a v4-mapped address
    ])
      assert.equal(isLoopback(h), false, h);
  });
});

describe('failed-auth limiter', () => {
  it('allows max failures per window, then says how long to wait', () => {
    let now = 1_000_000;
    const l = new AuthFailureLimiter({ max: 2, windowMs: 10_000 }, () => now);
    assert.equal(l.retryAfterS('a'), 0);
    l.fail('a');
    assert.equal(l.retryAfterS('a'), 0);
    l.fail('a');
    assert.equal(l.retryAfterS('a'), 10);
    assert.equal(l.retryAfterS('b'), 0);
    now += 2_500;
    assert.equal(l.retryAfterS('a'), 8); // 7.5 s rounded up
    now += 7_499;
    assert.equal(l.retryAfterS('a'), 1); // 1 ms left: at least 1 s
    now += 1; // the window is over
    assert.equal(l.retryAfterS('a'), 0);
    assert.equal(l.size, 0);
    l.fail('a');
    assert.equal(l.retryAfterS('a'), 0);
    assert.equal(l.size, 1);
  });

  it('counts within the window from its first failure, and restarts after it', () => {
    let now = 0;
    const l = new AuthFailureLimiter({ max: 2, windowMs: 1000 }, () => now);
    now = 5000;
    l.fail('a');
    now = 5999;
    l.fail('a');
    assert.equal(l.retryAfterS('a'), 1);
    now = 6000;
    l.fail('a'); // a new window starts with this failure
    assert.equal(l.retryAfterS('a'), 0);
    now = 6500;
    l.fail('a');
    assert.equal(l.retryAfterS('a'), 1);
  });

  it('is off with max 0', () => {
    const l = new AuthFailureLimiter({ max: 0, windowMs: 1000 });
    for (let i = 0; i < 5; i++) l.fail('a');
    assert.equal(l.retryAfterS('a'), 0);
    assert.equal(l.size, 0);
  });

  it('bounds the clients tracked: expired windows go first, then the oldest', () => {
    let now = 0;
    const l = new AuthFailureLimiter({ max: 1, windowMs: 1000, maxClients: 2 }, () => now);
    l.fail('a');
    now = 100;
    l.fail('b');
    assert.equal(l.size, 2);
    now = 200;
    l.fail('c'); // over the bound: the oldest (a) goes
    assert.equal(l.size, 2);
    assert.equal(l.retryAfterS('a'), 0);
    assert.equal(l.retryAfterS('b'), 1);
    assert.equal(l.retryAfterS('c'), 1);
    // b's window is over at 1100: a new client pushes it out although the bound is not passed.
    now = 1150;
    l.fail('d');
    assert.equal(l.size, 2);
    assert.equal(l.retryAfterS('c'), 1);
    assert.equal(l.retryAfterS('d'), 1);
    // Expired windows go as soon as a new client comes, well under the bound, and a window of
    // exactly windowMs is expired.
    let t = 0;
    const n = new AuthFailureLimiter({ max: 5, windowMs: 1000, maxClients: 10 }, () => t);
    n.fail('a');
    t = 600;
    n.fail('b');
    t = 1500;
    n.fail('c'); // a's window is over: dropped; b's is not
    assert.equal(n.size, 2);
    t = 2500;
    n.fail('d'); // b's is over, and c's has lasted exactly windowMs: both dropped
    assert.equal(n.size, 1);
    // Exactly at the bound nothing live is dropped.
    const m = new AuthFailureLimiter({ max: 1, windowMs: 1000, maxClients: 3 }, () => 0);
    for (const c of ['x', 'y', 'z']) m.fail(c);
    assert.equal(m.size, 3);
    for (const c of ['x', 'y', 'z']) assert.equal(m.retryAfterS(c), 1, c);
  });
});

describe('API keys', () => {
  it('digests with SHA-256, and admin implies predict', () => {
    assert.equal(digest('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    assert.deepEqual([...SCOPES], ['predict', 'admin']);
    assert.equal(hasScope(['predict'], 'predict'), true);
    assert.equal(hasScope(['predict'], 'admin'), false);
    assert.equal(hasScope(['admin'], 'admin'), true);
    assert.equal(hasScope(['admin'], 'predict'), true);
    assert.equal(hasScope([], 'predict'), false);
  });

  it('creates keys shown once, stored as digests, verified and revoked', () => {
    const store = freshStore();
    const keys = new KeyStore(store);
    assert.equal(keys.any(), false);
    const { key, record } = keys.create('lab.one_2-x', ['predict'], 7);
    assert.match(key, /^iso_[0-9a-f]{12}_[A-Za-z0-9_-]{32}$/);
    assert.equal(key.slice(4, 16), record.id);
    assert.match(record.id, /^[0-9a-f]{12}$/);
    assert.deepEqual(
      { ...record, created_at: '' },
      {
        id: record.id,
        name: 'lab.one_2-x',
        scopes: ['predict'],
        rate_limit: 7,
        created_at: '',
        revoked_at: null,
        last_used_at: null,
        source: 'db',
      },
    );
    assert.ok(Math.abs(Date.parse(record.created_at) - Date.now()) < 60_000);
    assert.equal(keys.any(), true);
    // Only the digest is stored.
    const row = store.db.prepare('SELECT * FROM api_keys').get() as Record<string, unknown>;
    assert.equal(row.sha256, digest(key));
    assert.equal(row.scopes, 'predict');
    assert.ok(!JSON.stringify(row).includes(key));

    const v = keys.verify(key);
    assert.deepEqual(v, {
      id: record.id,
      name: 'lab.one_2-x',
      scopes: ['predict'],
      rate_limit: 7,
      created_at: record.created_at,
      revoked_at: null,
      last_used_at: null,
      source: 'db',
    });
    assert.equal(keys.verify(`${key}x`), null);
    assert.equal(keys.verify('not-a-key'), null);

    const second = keys.create('ops', ['predict', 'admin']);
    assert.equal(second.record.rate_limit, null);
    assert.deepEqual(keys.verify(second.key)?.scopes, ['predict', 'admin']);
    assert.notEqual(second.key, key);

    assert.deepEqual(
      keys.list().map((k) => [k.name, k.scopes, k.rate_limit, k.source, k.revoked_at]),
      [
        ['lab.one_2-x', ['predict'], 7, 'db', null],
        ['ops', ['predict', 'admin'], null, 'db', null],
      ],
    );
    // Revoke by name or id, once.
    assert.equal(keys.revoke('lab.one_2-x'), true);
    assert.equal(keys.revoke('lab.one_2-x'), false);
    assert.equal(keys.verify(key), null);
    assert.equal(keys.any(), true);
    assert.equal(keys.revoke(second.record.id), true);
    assert.equal(keys.verify(second.key), null);
    assert.equal(keys.any(), false);
    assert.equal(keys.revoke('nobody'), false);
    assert.ok(keys.list().every((k) => typeof k.revoked_at === 'string'));
  });

  it('refuses bad names, bad scopes and duplicates', () => {
    const keys = new KeyStore(freshStore());
    for (const name of ['', 'a b', 'a/b', 'x'.repeat(65), 'é'])
      assert.throws(
        () => keys.create(name, ['predict']),
        { message: 'key names use letters, digits, ".", "_" and "-" (at most 64)' },
        name,
      );
    assert.equal(keys.create('x'.repeat(64), ['predict']).record.name.length, 64);
    assert.throws(() => keys.create('a', []), { message: 'scopes must be among predict, admin' });
    assert.throws(() => keys.create('a', ['predict', 'root' as never]), {
      message: 'scopes must be among predict, admin',
    });
    keys.create('a', ['admin']);
    assert.throws(() => keys.create('a', ['predict']), { message: 'a key named "a" already exists' });
    // Any other failure to store the key is passed on as it is, not called a duplicate.
    const store = freshStore();
    const k2 = new KeyStore(store);
    store.db.exec("CREATE TRIGGER no_keys BEFORE INSERT ON api_keys BEGIN SELECT RAISE(ABORT, 'disk says no'); END");
    assert.throws(() => k2.create('b', ['predict']), { message: 'disk says no' });
    // Keys and the audit log track their migrations under their own namespaces.
    new AuditLog(store);
    assert.deepEqual(
      store.db
        .prepare(
          "SELECT namespace, version FROM schema_migrations WHERE namespace IN ('auth', 'audit') ORDER BY namespace",
        )
        .all(),
      [
        { namespace: 'audit', version: 2 },
        { namespace: 'auth', version: 1 },
      ],
    );
    // A name on its own line is not a valid name either (the pattern is anchored).
    assert.throws(() => keys.create('ok\nbad', ['predict']), /key names use/);
  });

  it('writes last_used_at at most once a minute per key', () => {
    const store = freshStore();
    const keys = new KeyStore(store);
    const { key, record } = keys.create('k', ['predict']);
    const used = () =>
      (
        store.db.prepare('SELECT last_used_at FROM api_keys WHERE id = ?').get(record.id) as {
          last_used_at: string | null;
        }
      ).last_used_at;
    assert.equal(used(), null);
    keys.verify(key);
    const first = used();
    assert.ok(first && Math.abs(Date.parse(first) - Date.now()) < 60_000, String(first));
    store.db.prepare('UPDATE api_keys SET last_used_at = NULL').run();
    keys.verify(key);
    assert.equal(used(), null);
    const realNow = Date.now;
    try {
      // A fixed clock: written again exactly one minute after the last write.
      const t0 = realNow() + 3_600_000;
      Date.now = () => t0;
      keys.verify(key);
      store.db.prepare('UPDATE api_keys SET last_used_at = NULL').run();
      Date.now = () => t0 + 59_999;
      keys.verify(key);
      assert.equal(used(), null);
      Date.now = () => t0 + 60_000;
      keys.verify(key);
      assert.ok(used() !== null);
      // The returned key never carries its digest.
      assert.equal('sha256' in (keys.verify(key) as object), false);
    } finally {
      Date.now = realNow;
    }
  });

  it('configured keys: by digest, any secret spelling, listed as config', () => {
    const store = freshStore();
    const keys = new KeyStore(store, [
      { name: 'ops', sha256: digest('plain-secret'), scopes: ['admin'], rate_limit: 5 },
      { name: 'short', sha256: 'abcd', scopes: ['predict'] },
    ]);
    assert.equal(keys.any(), true);
    assert.deepEqual(keys.verify('plain-secret'), {
      id: 'config:ops',
      name: 'ops',
      scopes: ['admin'],
      rate_limit: 5,
      created_at: '',
      revoked_at: null,
      last_used_at: null,
      source: 'config',
    });
    assert.equal(keys.verify('other'), null);
    assert.deepEqual(keys.list(), [
      {
        id: 'config:ops',
        name: 'ops',
        scopes: ['admin'],
        rate_limit: 5,
        created_at: '',
        revoked_at: null,
        last_used_at: null,
        source: 'config',
      },
      {
        id: 'config:short',
        name: 'short',
        scopes: ['predict'],
        rate_limit: null,
        created_at: '',
        revoked_at: null,
        last_used_at: null,
        source: 'config',
      },
    ]);
    const db = keys.create('db', ['predict']);
    assert.equal(keys.verify(db.key)?.source, 'db');
    assert.equal(keys.list()[0]!.name, 'db');
    const noLimit = new KeyStore(freshStore(), [{ name: 'n', sha256: digest('s'), scopes: ['predict'] }]);
    assert.equal(noLimit.verify('s')?.rate_limit, null);
  });

  it('a secret without the iso_ prefix is looked up in the database only when keys are configured', () => {
    const store = freshStore();
    const keys = new KeyStore(store);
    keys.create('seed', ['predict']);
    // A row whose secret lacks the prefix (as a hand-edited database could hold).
    store.db
      .prepare(
        "INSERT INTO api_keys (id, name, sha256, scopes, created_at) VALUES ('bare', 'bare', ?, 'predict', '2026-01-01')",
      )
      .run(digest('bare-secret'));
    assert.equal(keys.verify('bare-secret'), null);
    const withConfig = new KeyStore(store, [{ name: 'c', sha256: digest('c-secret'), scopes: ['predict'] }]);
    assert.equal(withConfig.verify('bare-secret')?.name, 'bare');
    // Revoked rows never verify.
    store.db.prepare("UPDATE api_keys SET revoked_at = '2026-01-02' WHERE id = 'bare'").run();
    assert.equal(withConfig.verify('bare-secret'), null);
  });
});

describe('audit log', () => {
  let store: StateStore;
  let audit: AuditLog;
  beforeEach(() => {
    store = freshStore();
    audit = new AuditLog(store);
  });

  it('records an entry with every field, and reads it back newest first', () => {
    audit.record({
      actor: 'ops',
      key_id: 'k1',
      action: 'models.load',
      route: '/v1/models/:name/load',
      params: { name: 'revcomp' },
      target: 'revcomp',
      outcome: 'allowed',
      status: 200,
      client: '127.0.0.1',
      request_id: 'r1',
      details: 'ok',
    });
    audit.record({ actor: 'unknown', action: 'GET (no route)', outcome: 'denied', status: 401 });
    const rows = audit.query();
    assert.equal(rows.length, 2);
    const [newest, oldest] = rows as [Record<string, unknown>, Record<string, unknown>];
    assert.deepEqual(
      { ...newest, id: 0, at: '' },
      {
        id: 0,
        at: '',
        actor: 'unknown',
        key_id: null,
        action: 'GET (no route)',
        route: null,
        params: null,
        target: null,
        outcome: 'denied',
        status: 401,
        client: null,
        request_id: null,
        details: null,
      },
    );
    assert.deepEqual(
      { ...oldest, id: 0, at: '' },
      {
        id: 0,
        at: '',
        actor: 'ops',
        key_id: 'k1',
        action: 'models.load',
        route: '/v1/models/:name/load',
        params: { name: 'revcomp' },
        target: 'revcomp',
        outcome: 'allowed',
        status: 200,
        client: '127.0.0.1',
        request_id: 'r1',
        details: 'ok',
      },
    );
    assert.ok(Math.abs(Date.parse(String(oldest.at)) - Date.now()) < 60_000);
  });

  it('bounds every field so the row stays small and its params parse back', () => {
    const params: Record<string, string> = {};
    for (let i = 0; i < 12; i++) params[`${'k'.repeat(60)}${i}`] = 'v'.repeat(300);
    audit.record({
      actor: 'a'.repeat(150),
      action: 'b'.repeat(250),
      target: 't'.repeat(250),
      params,
      outcome: 'failed',
      status: 500,
      details: 'd'.repeat(1500),
    });
    const [row] = audit.query() as [Record<string, unknown>];
    assert.equal(row.actor, 'a'.repeat(100));
    assert.equal(row.action, 'b'.repeat(200));
    assert.equal(row.target, 't'.repeat(200));
    assert.equal(row.details, 'd'.repeat(1000));
    // Ten params at most; keys cut to 50 (all alike then: one survives), values to 200.
    assert.deepEqual(row.params, { ['k'.repeat(50)]: 'v'.repeat(200) });
    const many: Record<string, string> = {};
    for (let i = 0; i < 12; i++) many[`p${i}`] = String(i);
    audit.record({ actor: 'x', action: 'y', params: many, outcome: 'allowed', status: 200 });
    assert.deepEqual(
      audit.query({ limit: 1 })[0]!.params,
      Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`p${i}`, String(i)])),
    );
    // No params, or an empty object: stored as null.
    audit.record({ actor: 'x', action: 'y', params: {}, outcome: 'allowed', status: 200 });
    assert.equal(audit.query({ limit: 1 })[0]!.params, null);
    assert.equal(
      (store.db.prepare('SELECT params FROM audit_log ORDER BY id DESC LIMIT 1').get() as { params: unknown }).params,
      null,
    );
  });

  it('filters by actor, action, outcome, key and time, and clamps the limit to 1..1000', () => {
    for (let i = 0; i < 5; i++)
      audit.record({
        actor: i % 2 ? 'odd' : 'even',
        key_id: `k${i}`,
        action: i < 3 ? 'a' : 'b',
        outcome: i === 4 ? 'denied' : 'allowed',
        status: 200,
      });
    const ids = (q: Parameters<AuditLog['query']>[0]) => audit.query(q).map((r) => r.key_id);
    assert.deepEqual(ids({}), ['k4', 'k3', 'k2', 'k1', 'k0']);
    assert.deepEqual(ids({ actor: 'odd' }), ['k3', 'k1']);
    assert.deepEqual(ids({ action: 'b' }), ['k4', 'k3']);
    assert.deepEqual(ids({ outcome: 'denied' }), ['k4']);
    assert.deepEqual(ids({ key_id: 'k2' }), ['k2']);
    assert.deepEqual(ids({ actor: 'even', action: 'a' }), ['k2', 'k0']);
    assert.deepEqual(ids({ actor: '' }), ['k4', 'k3', 'k2', 'k1', 'k0']);
    assert.deepEqual(ids({ limit: 2 }), ['k4', 'k3']);
    assert.deepEqual(ids({ limit: 0 }), ['k4']);
    assert.deepEqual(ids({ limit: -5 }), ['k4']);
    store.db.prepare("UPDATE audit_log SET at = '2020-01-01T00:00:00.000Z' WHERE key_id IN ('k0', 'k1')").run();
    assert.deepEqual(ids({ since: '2021-01-01T00:00:00.000Z' }), ['k4', 'k3', 'k2']);
    assert.deepEqual(ids({ since: '2020-01-01T00:00:00.000Z', actor: 'odd' }), ['k3', 'k1']);
    store.db.transaction(() => {
      for (let i = 0; i < 1100; i++) audit.record({ actor: 'bulk', action: 'c', outcome: 'allowed', status: 200 });
    })();
    assert.equal(audit.query({ limit: 5000 }).length, 1000);
    assert.equal(audit.query({ limit: 1000 }).length, 1000);
    assert.equal(audit.query().length, 100);
  });
});

describe('request targets and route access', () => {
  it('accepts origin-form targets only', () => {
    assert.equal(badRequestTarget('/'), null);
    assert.equal(badRequestTarget('/v1/models?x=1'), null);
    assert.equal(badRequestTarget('/a/b//c'), null);
    assert.equal(
      badRequestTarget('http://host/v1/models'),
      'the request target must be a path starting with "/" (absolute-form and authority-form targets are not accepted)',
    );
    assert.equal(
      badRequestTarget(''),
      'the request target must be a path starting with "/" (absolute-form and authority-form targets are not accepted)',
    );
    assert.equal(
      badRequestTarget('*'),
      'the request target must be a path starting with "/" (absolute-form and authority-form targets are not accepted)',
    );
    assert.equal(badRequestTarget('//evil/v1/keys'), 'the request target must not start with "//"');
    assert.equal(badRequestTarget('/v1/models#frag'), 'the request target must not contain a fragment ("#")');
    assert.equal(badRequestTarget('/#'), 'the request target must not contain a fragment ("#")');
  });

  it('works out the scope from the matched route (404: predict; undeclared: admin)', async () => {
    const app = Fastify();
    const seen: unknown[] = [];
    app.addHook('onRequest', (req, _reply, done) => {
      seen.push(accessOf(req));
      done();
    });
    app.get('/pub', PUBLIC, async () => 'ok');
    app.post('/m/:name/load', admin('models.load'), async () => 'ok');
    app.get('/bare', async () => 'ok');
    await app.inject({ method: 'GET', url: '/pub' });
    await app.inject({ method: 'POST', url: '/m/x/load' });
    await app.inject({ method: 'GET', url: '/bare' });
    await app.inject({ method: 'GET', url: '/nowhere' });
    assert.deepEqual(seen, [
      { scope: 'public', route: '/pub', action: undefined },
      { scope: 'admin', route: '/m/:name/load', action: 'models.load' },
      { scope: 'admin', route: '/bare', action: undefined },
      { scope: 'predict', route: '' },
    ]);
    await app.close();
  });
});

describe('registerAuth on a bare Fastify instance', () => {
  const ADMIN_KEY = 'iso_admin_secret_for_unit_tests';
  const PREDICT_KEY = 'iso_predict_secret_for_unit_tests';
  let store: StateStore;
  let audit: AuditLog;
  let app: FastifyInstance;
  let events: string[];
  let auditErrors: string[];
  const logged: string[] = [];

  async function build(
    over: Partial<AuthOptions> = {},
    configured = [
      { name: 'ops', sha256: digest(ADMIN_KEY), scopes: ['admin' as const] },
      { name: 'lab', sha256: digest(PREDICT_KEY), scopes: ['predict' as const], rate_limit: 3 },
    ],
  ): Promise<FastifyInstance> {
    store = freshStore();
    audit = new AuditLog(store);
    events = [];
    auditErrors = [];
    // Longer path parameters than Fastify's default 100 characters, to see the audit row bound them.
    // Errors Fastify logs (a hook that throws after the answer was sent) are kept to be checked.
    const a = Fastify({
      maxParamLength: 500,
      logger: { level: 'error', stream: { write: (line: string) => void logged.push(line) } },
    });
    registerAuth(a, {
      keys: new KeyStore(store, configured),
      audit,
      allowAnonymous: false,
      failureLimit: { max: 3, windowMs: 60_000 },
      metrics: { authFailure: (r) => events.push(`failure:${r}`), authThrottled: () => events.push('throttled') },
      onAuditError: (m) => auditErrors.push(m),
      ...over,
    });
    a.get('/health', PUBLIC, async () => ({ ok: true }));
    a.get('/who', PREDICT, async (req) => ({ principal: req.principal, access: req.access }));
    a.post('/v1/models/:name/load', admin('models.load'), async (req, reply) => {
      const name = (req.params as { name: string }).name;
      return name === 'broken'
        ? reply.code(500).send({ ok: false })
        : name === 'bad'
          ? reply.code(400).send({ ok: false })
          : { ok: true };
    });
    a.delete('/v1/jobs/:id', admin('jobs.delete'), async () => ({ ok: true }));
    a.get('/v1/keys', admin('keys.list'), async () => ({ ok: true }));
    await a.ready();
    return a;
  }
  before(async () => {
    app = await build({ failureLimit: { max: 100, windowMs: 60_000 } });
  });
  after(async () => app.close());

  const get = (url: string, headers: Record<string, string> = {}) =>
    app.inject({ method: 'GET', url, headers, remoteAddress: '10.1.1.1' });

  it('public routes need no key; predict routes need a valid one, as Bearer or X-API-Key', async () => {
    assert.equal((await get('/health')).statusCode, 200);
    const none = await get('/who');
    assert.equal(none.statusCode, 401);
    assert.equal(none.json().error.code, 'UNAUTHORIZED');
    assert.equal(none.json().message, 'an API key is required: send Authorization: Bearer <key> or X-API-Key');
    const bad = await get('/who', { authorization: 'Bearer iso_wrong' });
    assert.equal(bad.statusCode, 401);
    assert.equal(bad.json().message, 'invalid or revoked API key');
    for (const headers of [
      { authorization: `Bearer ${PREDICT_KEY}` },
      { authorization: `bearer   ${PREDICT_KEY}  ` },
      { 'x-api-key': PREDICT_KEY },
    ] as Record<string, string>[]) {
      const ok = await get('/who', headers);
      assert.equal(ok.statusCode, 200, JSON.stringify(headers));
      assert.deepEqual(ok.json(), {
        principal: { id: 'config:lab', name: 'lab', scopes: ['predict'], rateLimit: 3 },
        access: { scope: 'predict', route: '/who' },
      });
    }
    // An Authorization header of another scheme, or an empty X-API-Key, presents no key.
    assert.equal(
      (await get('/who', { authorization: `Basic ${PREDICT_KEY}` })).json().message,
      'an API key is required: send Authorization: Bearer <key> or X-API-Key',
    );
    assert.equal(
      (await get('/who', { 'x-api-key': '' })).json().message,
      'an API key is required: send Authorization: Bearer <key> or X-API-Key',
    );
    // Bearer wins over X-API-Key.
    assert.equal(
      (await get('/who', { authorization: `Bearer ${ADMIN_KEY}`, 'x-api-key': PREDICT_KEY })).json().principal.name,
      'ops',
    );
    assert.equal(
      (await get('/who', { authorization: 'Bearerx', 'x-api-key': PREDICT_KEY })).json().principal.name,
      'lab',
    );
    assert.equal(
      (await get('/who', { authorization: `Token Bearer ${ADMIN_KEY}`, 'x-api-key': PREDICT_KEY })).json().principal
        .name,
      'lab',
    );
    assert.deepEqual(events, ['failure:missing', 'failure:invalid', 'failure:missing', 'failure:missing']);
  });

  it('admin routes need the admin scope; unknown paths need a key before saying 404', async () => {
    const forbidden = await app.inject({
      method: 'POST',
      url: '/v1/models/revcomp/load',
      headers: { authorization: `Bearer ${PREDICT_KEY}` },
    });
    assert.equal(forbidden.statusCode, 403);
    assert.equal(forbidden.json().error.code, 'FORBIDDEN');
    assert.equal(forbidden.json().message, 'API key "lab" lacks the "admin" scope');
    assert.deepEqual(forbidden.json().error.details, { needed: 'admin', scopes: ['predict'] });
    assert.equal(
      (
        await app.inject({
          method: 'POST',
          url: '/v1/models/revcomp/load',
          headers: { authorization: `Bearer ${ADMIN_KEY}` },
        })
      ).statusCode,
      200,
    );
    assert.equal(
      (await app.inject({ method: 'GET', url: '/who', headers: { authorization: `Bearer ${ADMIN_KEY}` } })).statusCode,
      200,
    );
    assert.equal((await app.inject({ method: 'GET', url: '/nowhere' })).statusCode, 401);
    assert.equal(
      (await app.inject({ method: 'GET', url: '/nowhere', headers: { authorization: `Bearer ${PREDICT_KEY}` } }))
        .statusCode,
      404,
    );
  });

  it('refuses request targets that are not origin-form before anything else', async () => {
    const r = await app.inject({ method: 'GET', url: '//who', headers: { authorization: `Bearer ${PREDICT_KEY}` } });
    assert.equal(r.statusCode, 400);
    assert.equal(r.json().error.code, 'INVALID_REQUEST');
    assert.equal(r.json().message, 'the request target must not start with "//"');
    // Nothing failed after the answer either (no route access was worked out for it).
    assert.deepEqual(logged, []);
  });

  it('audits admin actions (allowed, failed, forbidden) and denied requests, never 401/403 twice', async () => {
    const a = await build();
    try {
      const admin = { authorization: `Bearer ${ADMIN_KEY}` };
      await a.inject({ method: 'POST', url: '/v1/models/revcomp/load', headers: admin, remoteAddress: '10.0.0.9' });
      await a.inject({ method: 'POST', url: '/v1/models/broken/load', headers: admin });
      await a.inject({ method: 'DELETE', url: `/v1/jobs/${'j'.repeat(150)}`, headers: admin });
      await a.inject({ method: 'GET', url: '/v1/keys', headers: admin });
      await a.inject({
        method: 'POST',
        url: '/v1/models/revcomp/load',
        headers: { authorization: `Bearer ${PREDICT_KEY}` },
      });
      await a.inject({ method: 'GET', url: '/nowhere' });
      await a.inject({ method: 'GET', url: '/who', headers: { authorization: `Bearer ${PREDICT_KEY}` } });
      await a.inject({ method: 'GET', url: '/health' });
      await a.inject({ method: 'POST', url: '/v1/models/bad/load', headers: admin });
      await a.inject({ method: 'GET', url: '/v1/keys' });
      const rows = audit
        .query()
        .reverse()
        .map(({ id: _i, at: _a, request_id, ...r }) => ({ ...r, request_id: typeof request_id }));
      assert.deepEqual(rows, [
        {
          actor: 'ops',
          key_id: 'config:ops',
          action: 'models.load',
          route: '/v1/models/:name/load',
          params: { name: 'revcomp' },
          target: 'revcomp',
          outcome: 'allowed',
          status: 200,
          client: '10.0.0.9',
          details: null,
          request_id: 'string',
        },
        {
          actor: 'ops',
          key_id: 'config:ops',
          action: 'models.load',
          route: '/v1/models/:name/load',
          params: { name: 'broken' },
          target: 'broken',
          outcome: 'failed',
          status: 500,
          client: '127.0.0.1',
          details: null,
          request_id: 'string',
        },
        {
          actor: 'ops',
          key_id: 'config:ops',
          action: 'jobs.delete',
          route: '/v1/jobs/:id',
          params: { id: 'j'.repeat(150) },
          target: 'j'.repeat(100),
          outcome: 'allowed',
          status: 200,
          client: '127.0.0.1',
          details: null,
          request_id: 'string',
        },
        {
          actor: 'ops',
          key_id: 'config:ops',
          action: 'keys.list',
          route: '/v1/keys',
          params: null,
          target: null,
          outcome: 'allowed',
          status: 200,
          client: '127.0.0.1',
          details: null,
          request_id: 'string',
        },
        {
          actor: 'lab',
          key_id: 'config:lab',
          action: 'models.load',
          route: '/v1/models/:name/load',
          params: { name: 'revcomp' },
          target: 'revcomp',
          outcome: 'denied',
          status: 403,
          client: '127.0.0.1',
          details: 'API key "lab" lacks the "admin" scope',
          request_id: 'string',
        },
        {
          actor: 'unknown',
          key_id: null,
          action: 'GET (no route)',
          route: null,
          params: null,
          target: null,
          outcome: 'denied',
          status: 401,
          client: '127.0.0.1',
          details: 'an API key is required: send Authorization: Bearer <key> or X-API-Key',
          request_id: 'string',
        },
        {
          actor: 'ops',
          key_id: 'config:ops',
          action: 'models.load',
          route: '/v1/models/:name/load',
          params: { name: 'bad' },
          target: 'bad',
          outcome: 'failed',
          status: 400,
          client: '127.0.0.1',
          details: null,
          request_id: 'string',
        },
        {
          actor: 'unknown',
          key_id: null,
          action: 'keys.list',
          route: '/v1/keys',
          params: null,
          target: null,
          outcome: 'denied',
          status: 401,
          client: '127.0.0.1',
          details: 'an API key is required: send Authorization: Bearer <key> or X-API-Key',
          request_id: 'string',
        },
      ]);
      // The request id in the row is the one the envelope answered with.
      const denied = await a.inject({ method: 'GET', url: '/who' });
      assert.equal(audit.query({ limit: 1 })[0]!.request_id, denied.json().request_id);
      // A denied predict route names the method and the route pattern.
      assert.equal(audit.query({ limit: 1 })[0]!.action, 'GET /who');
    } finally {
      await a.close();
    }
  });

  it('an audit row that cannot be written is reported, and the action goes on', async () => {
    const a = await build({
      audit: {
        record: () => {
          throw new Error('disk full');
        },
      } as unknown as AuditLog,
    });
    try {
      const r = await a.inject({
        method: 'POST',
        url: '/v1/models/revcomp/load',
        headers: { authorization: `Bearer ${ADMIN_KEY}` },
      });
      assert.equal(r.statusCode, 200);
      const d = await a.inject({ method: 'GET', url: '/nowhere' });
      assert.equal(d.statusCode, 401);
      assert.deepEqual(auditErrors, [
        'audit row not written (models.load, allowed): disk full',
        'audit row not written (, denied): disk full',
      ]);
    } finally {
      await a.close();
    }
    // Without a reporter the failure is swallowed too.
    const b = await build({
      audit: {
        record: () => {
          throw new Error('x');
        },
      } as unknown as AuditLog,
      onAuditError: undefined,
    });
    try {
      assert.equal((await b.inject({ method: 'GET', url: '/nowhere' })).statusCode, 401);
    } finally {
      await b.close();
    }
  });

  it('throttles an address after max failures, before any key lookup, with Retry-After', async () => {
    const a = await build();
    try {
      const from = (remoteAddress: string, headers: Record<string, string> = {}) =>
        a.inject({ method: 'GET', url: '/who', headers, remoteAddress });
      for (let i = 0; i < 3; i++)
        assert.equal((await from('10.9.9.9', { authorization: 'Bearer iso_guess' })).statusCode, 401);
      const t = await from('10.9.9.9', { authorization: `Bearer ${PREDICT_KEY}` });
      assert.equal(t.statusCode, 429);
      assert.equal(t.json().error.code, 'RATE_LIMITED');
      assert.equal(t.json().message, 'too many failed authentications from this address; retry after 60 s');
      assert.deepEqual(t.json().error.details, { retry_after: 60 });
      assert.equal(t.headers['retry-after'], '60');
      // Other addresses, and public routes, are not affected.
      assert.equal((await from('10.9.9.8', { authorization: `Bearer ${PREDICT_KEY}` })).statusCode, 200);
      assert.equal((await a.inject({ method: 'GET', url: '/health', remoteAddress: '10.9.9.9' })).statusCode, 200);
      assert.deepEqual(events, ['failure:invalid', 'failure:invalid', 'failure:invalid', 'throttled']);
      // Throttled requests are not audited as denied (no lookup was made).
      assert.equal(audit.query({ outcome: 'denied' }).length, 3);
    } finally {
      await a.close();
    }
    // Metrics are optional.
    const b = await build({ metrics: undefined, failureLimit: { max: 1, windowMs: 60_000 } });
    try {
      assert.equal((await b.inject({ method: 'GET', url: '/who' })).statusCode, 401);
      assert.equal((await b.inject({ method: 'GET', url: '/who' })).statusCode, 429);
    } finally {
      await b.close();
    }
  });

  it('without keys on loopback everyone is the anonymous admin; a new key ends it within a second', async () => {
    const a = await build({ allowAnonymous: true }, []);
    try {
      const r = await a.inject({ method: 'GET', url: '/who' });
      assert.equal(r.statusCode, 200);
      assert.deepEqual(r.json().principal, {
        id: 'anonymous',
        name: 'anonymous',
        scopes: ['predict', 'admin'],
        rateLimit: null,
      });
      assert.equal((await a.inject({ method: 'POST', url: '/v1/models/revcomp/load' })).statusCode, 200);
      assert.equal(audit.query({ limit: 1 })[0]!.actor, 'anonymous');
      // Anonymous requests still must be origin-form.
      assert.equal((await a.inject({ method: 'GET', url: '//who' })).statusCode, 400);
      new KeyStore(store).create('first', ['predict']);
      const realNow = Date.now;
      try {
        Date.now = () => realNow() + 1001;
        const locked = await a.inject({ method: 'GET', url: '/who' });
        assert.equal(locked.statusCode, 401);
        assert.equal((await a.inject({ method: 'GET', url: '/health' })).statusCode, 200);
      } finally {
        Date.now = realNow;
      }
    } finally {
      await a.close();
    }
    // Off loopback (allowAnonymous false) no key at all means locked, not open.
    const b = await build({}, []);
    try {
      assert.equal((await b.inject({ method: 'GET', url: '/who' })).statusCode, 401);
      assert.equal((await b.inject({ method: 'GET', url: '/health' })).statusCode, 200);
    } finally {
      await b.close();
    }
  });
});
