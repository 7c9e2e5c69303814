// The fuzz suite's path spellings (issue 14): every registered route's path, written in many
// spellings (percent-encoded letters, doubled slashes, dot segments, fragments, absolute form,
// mixed case, encoded slashes, matrix parameters…), sent with a predict key and with no key.
// Whatever the spelling, the answer must be the canonical path's answer or a refusal to route it
// (400/404) — never an admin action for a predict key, never a 2xx without a key.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { listRoutes, type RouteEntry } from '../src/api/server.js';
import { digest } from '../src/security/keys.js';
import { startGateway, type Harness } from './helpers.js';
import { concretePath, rawRequest } from './raw-http.js';

const PREDICT = 'iso_test_predict_secret_fuzz_paths_1';
const bearer = { authorization: `Bearer ${PREDICT}` };

const encodeChar = (c: string, upper = false): string => {
  const hex = c.charCodeAt(0).toString(16).padStart(2, '0');
  return `%${upper ? hex.toUpperCase() : hex}`;
};
const splitPath = (p: string): string[] => p.split('/').slice(1);
const join = (segs: string[]): string => `/${segs.join('/')}`;

/** Spellings of one concrete path; each names itself for the failure message. */
export function spellings(path: string): [string, string][] {
  const segs = splitPath(path);
  const first = segs[0] ?? '';
  const rest = segs.slice(1);
  const out: [string, string][] = [
    ['every letter percent-encoded', path.replace(/[A-Za-z]/g, (c) => encodeChar(c))],
    [
      'first letter of each segment encoded, upper-case hex',
      join(segs.map((s) => (s ? encodeChar(s[0]!, true) + s.slice(1) : s))),
    ],
    [
      'one letter encoded in the last segment',
      join([...segs.slice(0, -1), (segs.at(-1) ?? '').replace(/[a-z]/, (c) => encodeChar(c))]),
    ],
    ['double-encoded letter', path.replace(/[a-z]/, (c) => `%25${c.charCodeAt(0).toString(16)}`)],
    ['doubled inner slash', rest.length ? `/${first}//${rest.join('/')}` : `/${first}//`],
    ['leading double slash', `/${path}`],
    ['trailing slash', `${path}/`],
    ['dot segment', `/${first}/./${rest.join('/')}`],
    ['dot-dot segment', `/${first}/zz/../${rest.join('/')}`],
    ['encoded dot segments', `/${first}/zz/%2e%2e/${rest.join('/')}`],
    ['encoded slash', rest.length ? `/${first}%2F${rest.join('/')}` : `${path}%2F`],
    ['backslash', rest.length ? `/${first}\\${rest.join('/')}` : `${path}\\`],
    ['fragment', `${path}#frag`],
    ['fragment before the query', `${path}#x?y=1`],
    ['absolute form', `http://127.0.0.1${path}`],
    ['absolute form, other host', `http://example.invalid${path}`],
    ['mixed case', path.replace(/[a-z]/g, (c, i: number) => (i % 2 ? c.toUpperCase() : c))],
    ['matrix parameter', `${path};x=1`],
    ['encoded space', `${path}%20`],
    ['encoded NUL', `${path}%00`],
    ['query string', `${path}?x=1`],
    ['fullwidth letter', path.replace(/a/, '%EF%BD%81')],
  ];
  return out.filter(([, s]) => s !== path);
}

describe('path spellings against route-level authorization', () => {
  let h: Harness;
  let routes: RouteEntry[];
  before(async () => {
    h = await startGateway(['revcomp'], {
      auth: { keys: [{ name: 'lab', sha256: digest(PREDICT), scopes: ['predict'] }], failure_limit: { max: 0 } },
    });
    routes = [...listRoutes(h.gw.server!)];
  });
  after(async () => h.close());

  it('a spelling answers as its canonical path does, or is not routed', async () => {
    const values = { name: 'revcomp', id: 'revcomp', model: 'revcomp', version: '1.0.0' };
    const problems: string[] = [];
    let sent = 0;
    for (const r of routes) {
      for (const method of r.methods) {
        if (method === 'GET' && r.url === '/mcp') continue; // an SSE stream: it never ends by itself
        const path = concretePath(r.url, values);
        const body = method === 'GET' || method === 'HEAD' || method === 'DELETE' ? undefined : '{}';
        const canonical = await rawRequest(h.url, method, path, bearer, body);
        if (r.scope === 'admin' && canonical.status !== 403)
          problems.push(`${method} ${path}: canonical admin route answered ${canonical.status} to a predict key`);
        for (const [how, spelled] of spellings(path)) {
          const withKey = await rawRequest(h.url, method, spelled, bearer, body);
          const noKey = await rawRequest(h.url, method, spelled, {}, body);
          sent += 2;
          const allowed = new Set([canonical.status, 400, 404]);
          if (!allowed.has(withKey.status))
            problems.push(
              `${method} ${spelled} (${how}) with a predict key: ${withKey.status}, canonical ${canonical.status}`,
            );
          if (r.scope === 'admin' && withKey.status < 400)
            problems.push(`${method} ${spelled} (${how}): an admin route answered ${withKey.status} to a predict key`);
          if (r.scope !== 'public' && noKey.status !== 401 && noKey.status !== 400)
            problems.push(`${method} ${spelled} (${how}) without a key: ${noKey.status}`);
        }
      }
    }
    assert.ok(sent > 2000, `only ${sent} requests sent`);
    assert.deepEqual(problems, []);
    assert.equal(h.gw.registry.status('revcomp'), 'ready');
    // Nothing a predict key did was allowed as an admin action.
    assert.equal(h.gw.audit.query({ outcome: 'allowed', limit: 1000 }).length, 0);
  });

  it('HEAD follows its GET for every GET route', async () => {
    const values = { name: 'revcomp', id: 'revcomp', model: 'revcomp', version: '1.0.0' };
    for (const r of routes.filter((x) => x.methods.includes('GET') && x.url !== '/mcp')) {
      const path = concretePath(r.url, values);
      const head = await rawRequest(h.url, 'HEAD', path, bearer);
      const get = await rawRequest(h.url, 'GET', path, bearer);
      assert.equal(head.status, get.status, `HEAD ${path}`);
      assert.equal(head.text, '', `HEAD ${path} has no body`);
      assert.equal(
        (await rawRequest(h.url, 'HEAD', path)).status,
        r.scope === 'public' ? get.status : 401,
        `HEAD ${path} without a key`,
      );
    }
  });
});
