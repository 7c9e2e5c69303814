// Authentication and authorisation for every route: which scope a route needs, who is
// asking, and an audit row for each admin action and each denied request.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { IsoError } from '../errors.js';
import { sendError } from '../api/envelope.js';
import type { AuditLog } from './audit.js';
import { hasScope, type KeyStore, type Scope } from './keys.js';

export interface Principal {
  id: string;
  name: string;
  scopes: Scope[];
  rateLimit: number | null;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
    /** What the route needs, worked out once in onRequest (onResponse audits from it). */
    access: RouteAccess | null;
  }
}

const ANONYMOUS: Principal = { id: 'anonymous', name: 'anonymous', scopes: ['predict', 'admin'], rateLimit: null };

/** Routes anyone may call: probes, the console's static page. */
const PUBLIC = [/^(\/api\/v1)?\/health(\/(live|ready|startup))?$/, /^\/api\/v1\/health\/$/, /^\/v2\/health\/(live|ready)$/, /^\/agent\/health$/, /^\/console(\/.*)?$/];

/** Admin actions: method, path pattern, audit action name. Everything else needs `predict`. */
const ADMIN: [string, RegExp, string][] = [
  ['POST', /^\/v1\/models\/reload$/, 'models.reload'],
  ['POST', /^\/v1\/models\/([^/]+)\/(load|unload)$/, 'models.$2'],
  ['POST', /^\/agent\/model\/([^/]+)\/(load|unload)$/, 'models.$2'],
  ['POST', /^\/v2\/repository\/models\/([^/]+)\/(load|unload)$/, 'models.$2'],
  ['POST', /^\/api\/v1\/models\/deploy$/, 'models.deploy'],
  ['POST', /^\/api\/v1\/models\/([^/]+)\/scale$/, 'models.scale'],
  ['PUT', /^\/api\/v1\/models\/([^/]+)$/, 'models.update'],
  ['DELETE', /^\/api\/v1\/models\/([^/]+)$/, 'models.delete'],
  ['PUT', /^\/api\/v1\/models\/([^/]+)\/traffic$/, 'models.traffic'],
  ['DELETE', /^\/api\/v1\/models\/([^/]+)\/traffic$/, 'models.traffic.clear'],
  ['POST', /^\/api\/v1\/models\/([^/]+)\/(promote|rollback)$/, 'models.$2'],
  ['PUT', /^\/v1\/monitor\/thresholds$/, 'monitor.thresholds'],
  ['DELETE', /^\/v1\/monitor\/thresholds$/, 'monitor.thresholds.reset'],
  ['GET', /^\/v1\/audit$/, 'audit.read'],
  ['GET', /^\/v1\/keys$/, 'keys.list'],
];

export interface RouteAccess {
  scope: Scope | null;
  action?: string;
  target?: string;
}

const PREDICT: RouteAccess = { scope: 'predict' };

export function accessFor(method: string, url: string, publicMetrics: boolean): RouteAccess {
  const q = url.indexOf('?');
  const path = q === -1 ? url : url.slice(0, q);
  // The hot prediction routes: no public or admin pattern can match under /models/.
  if (path.startsWith('/models/') || path === '/predict' || path === '/predict/batch') return PREDICT;
  if (PUBLIC.some((re) => re.test(path))) return { scope: null };
  if (publicMetrics && path === '/metrics/prometheus') return { scope: null };
  for (const [m, re, action] of ADMIN) {
    const match = method === m ? re.exec(path) : null;
    if (match) return { scope: 'admin', action: action.replace('$2', match[2] ?? ''), target: match[1] ? decodeURIComponent(match[1]).slice(0, 100) : undefined };
  }
  return PREDICT;
}

function presentedKey(req: FastifyRequest): string | null {
  const auth = req.headers.authorization;
  if (typeof auth === 'string' && /^Bearer\s+/i.test(auth)) return auth.replace(/^Bearer\s+/i, '').trim();
  const header = req.headers['x-api-key'];
  return typeof header === 'string' && header !== '' ? header : null;
}

export interface AuthOptions {
  keys: KeyStore;
  audit: AuditLog;
  publicMetrics: boolean;
  /**
   * Whether having no key at all may mean "auth off": only on a loopback address. Elsewhere,
   * revoking the last key locks the API instead of opening it.
   */
  allowAnonymous: boolean;
}

/** "Is any key configured" asked of SQLite at most this often: it is on every request's path. */
const ANY_KEY_TTL_MS = 1000;

/** Must be registered before the rate limiter: limits are per key once a key is known. */
export function registerAuth(app: FastifyInstance, opts: AuthOptions): void {
  app.decorateRequest('principal', null);
  app.decorateRequest('access', null);
  const audit = (req: FastifyRequest, access: RouteAccess, outcome: 'allowed' | 'denied' | 'failed', status: number, details?: string): void =>
    opts.audit.record({ actor: req.principal?.name ?? 'unknown', action: access.action ?? `${req.method} ${req.url.split('?')[0]!.slice(0, 200)}`, target: access.target, outcome, status, client: req.ip, request_id: req.id, details });

  let anyKey = { value: true, at: 0 };
  const keysExist = (): boolean => {
    if (Date.now() - anyKey.at > ANY_KEY_TTL_MS) anyKey = { value: opts.keys.any(), at: Date.now() };
    return anyKey.value;
  };

  // Synchronous (callback style): an async hook costs every request a promise and a tick. A
  // denied request is answered here and never reaches done().
  app.addHook('onRequest', (req, reply, done) => {
    const access = accessFor(req.method, req.url, opts.publicMetrics);
    req.access = access;
    // Auth is off only when no key exists at all, on loopback.
    if (opts.allowAnonymous && !keysExist()) {
      req.principal = ANONYMOUS;
      return done();
    }
    const secret = presentedKey(req);
    const key = secret ? opts.keys.verify(secret) : null;
    if (key) req.principal = { id: key.id, name: key.name, scopes: key.scopes, rateLimit: key.rate_limit };
    if (access.scope === null) return done();
    if (!key) {
      const err = new IsoError('UNAUTHORIZED', secret ? 'invalid or revoked API key' : 'an API key is required: send Authorization: Bearer <key> or X-API-Key');
      audit(req, access, 'denied', err.status, err.message);
      sendError(req, reply, err);
      return;
    }
    if (!hasScope(key.scopes, access.scope)) {
      const err = new IsoError('FORBIDDEN', `API key "${key.name}" lacks the "${access.scope}" scope`, { needed: access.scope, scopes: key.scopes });
      audit(req, access, 'denied', err.status, err.message);
      sendError(req, reply, err);
      return;
    }
    done();
  });

  // Synchronous: it runs after every response, and only admin routes have anything to do.
  app.addHook('onResponse', (req, reply, done) => {
    const access = req.access;
    if (access?.scope === 'admin' && reply.statusCode !== 401 && reply.statusCode !== 403) {
      audit(req, access, reply.statusCode < 400 ? 'allowed' : 'failed', reply.statusCode);
    }
    done();
  });
}
