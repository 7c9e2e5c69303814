// Authentication and authorisation for every route. The decision is made after routing, from
// the scope the matched route declares in its options (src/security/route-scope.ts), never from
// the raw URL: the router decodes percent-escapes, ignores fragments and accepts absolute-form
// targets, so a check on the URL text can be spelled around. Also here: the failed-auth limiter
// (before any key lookup) and an audit row for every admin action and every denied request.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { IsoError } from '../errors.js';
import { sendError } from '../api/envelope.js';
import type { AuditSink } from './audit.js';
import { AuthFailureLimiter, type FailureLimit } from './failure-limiter.js';
import { hasScope, type KeyBackend, type Scope } from './keys.js';
import type { RouteScope } from './route-scope.js';

export interface Principal {
  id: string;
  name: string;
  scopes: Scope[];
  rateLimit: number | null;
}

/** What a request needs, worked out once in onRequest from its matched route. */
export interface RouteAccess {
  scope: RouteScope;
  /** The route pattern that matched ('' for no route: the not-found handler). */
  route: string;
  /** Audit name of an admin action. */
  action?: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal: Principal | null;
    access: RouteAccess | null;
  }
}

const ANONYMOUS: Principal = { id: 'anonymous', name: 'anonymous', scopes: ['predict', 'admin'], rateLimit: null };

/**
 * The scope a request needs, from the route it matched. No route (404): a key is still needed,
 * so unknown paths reveal nothing to a caller without one. A route without a declared scope
 * cannot be registered (requireRouteScopes); should one appear anyway, it is admin-only.
 */
export function accessOf(req: FastifyRequest): RouteAccess {
  if (req.is404) return { scope: 'predict', route: '' };
  const config = req.routeOptions.config;
  return { scope: config.scope ?? 'admin', route: req.routeOptions.url ?? '', action: config.action };
}

/**
 * Only origin-form targets ("/path?query") reach the router. Absolute-form ("http://host/path",
 * meant for proxies) and fragments (never sent by a conforming client) are refused, so that
 * what the audit log and the access log show is what was routed.
 */
export function badRequestTarget(raw: string): string | null {
  if (raw.charCodeAt(0) !== 0x2f)
    return 'the request target must be a path starting with "/" (absolute-form and authority-form targets are not accepted)';
  if (raw.charCodeAt(1) === 0x2f) return 'the request target must not start with "//"';
  if (raw.includes('#')) return 'the request target must not contain a fragment ("#")';
  return null;
}

function presentedKey(req: FastifyRequest): string | null {
  const auth = req.headers.authorization;
  if (typeof auth === 'string' && /^Bearer\s+/i.test(auth)) return auth.replace(/^Bearer\s+/i, '').trim();
  const header = req.headers['x-api-key'];
  return typeof header === 'string' && header !== '' ? header : null;
}

export interface AuthMetrics {
  authFailure(reason: 'missing' | 'invalid'): void;
  authThrottled(): void;
}

export interface AuthOptions {
  keys: KeyBackend;
  audit: AuditSink;
  /**
   * Whether having no key at all may mean "auth off": only on a loopback address. Elsewhere,
   * revoking the last key locks the API instead of opening it.
   */
  allowAnonymous: boolean;
  failureLimit: FailureLimit;
  metrics?: AuthMetrics;
  /** Where an audit row that could not be written is reported (the action itself goes on). */
  onAuditError?: (message: string) => void;
}

/** "Is any key configured" asked of SQLite at most this often: it is on every request's path. */
const ANY_KEY_TTL_MS = 1000;

/** Must be registered before the rate limiter: limits are per key once a key is known. */
export function registerAuth(app: FastifyInstance, opts: AuthOptions): void {
  app.decorateRequest('principal', null);
  app.decorateRequest('access', null);
  const failures = new AuthFailureLimiter(opts.failureLimit);

  const audit = (
    req: FastifyRequest,
    access: RouteAccess,
    outcome: 'allowed' | 'denied' | 'failed',
    status: number,
    details?: string,
  ): void => {
    try {
      opts.audit.record({
        actor: req.principal?.name ?? 'unknown',
        key_id: req.principal?.id,
        action: access.action ?? `${req.method} ${access.route || '(no route)'}`,
        route: access.route || undefined,
        params: access.route ? (req.params as Record<string, string>) : undefined,
        target: targetOf(req),
        outcome,
        status,
        client: req.ip,
        request_id: req.id,
        details,
      });
    } catch (e) {
      opts.onAuditError?.(
        `audit row not written (${access.action ?? access.route}, ${outcome}): ${(e as Error).message}`,
      );
    }
  };

  let anyKey = { value: true, at: 0 };
  const keysExist = (): boolean => {
    if (Date.now() - anyKey.at > ANY_KEY_TTL_MS) anyKey = { value: opts.keys.any(), at: Date.now() };
    return anyKey.value;
  };

  const deny = (req: FastifyRequest, reply: FastifyReply, access: RouteAccess, err: IsoError): void => {
    audit(req, access, 'denied', err.status, err.message);
    sendError(req, reply, err);
  };

  // Synchronous (callback style): an async hook costs every request a promise and a tick. A
  // denied request is answered here and never reaches done(). onRequest runs after routing, so
  // req.routeOptions is the matched route's.
  app.addHook('onRequest', (req, reply, done) => {
    const bad = badRequestTarget(req.raw.url ?? '');
    if (bad) {
      sendError(req, reply, new IsoError('INVALID_REQUEST', bad));
      return;
    }
    const access = accessOf(req);
    req.access = access;
    // Auth is off only when no key exists at all, on loopback.
    if (opts.allowAnonymous && !keysExist()) {
      req.principal = ANONYMOUS;
      return done();
    }
    if (access.scope === 'public') return done();
    // Before any key lookup: an address that keeps failing is not given more guesses.
    const wait = failures.retryAfterS(req.ip);
    if (wait > 0) {
      opts.metrics?.authThrottled();
      sendError(
        req,
        reply,
        new IsoError(
          'RATE_LIMITED',
          `too many failed authentications from this address; retry after ${wait} s`,
          { retry_after: wait },
          wait,
        ),
      );
      return;
    }
    const secret = presentedKey(req);
    const key = secret ? opts.keys.verify(secret) : null;
    if (!key) {
      failures.fail(req.ip);
      opts.metrics?.authFailure(secret ? 'invalid' : 'missing');
      deny(
        req,
        reply,
        access,
        new IsoError(
          'UNAUTHORIZED',
          secret
            ? 'invalid or revoked API key'
            : 'an API key is required: send Authorization: Bearer <key> or X-API-Key',
        ),
      );
      return;
    }
    req.principal = { id: key.id, name: key.name, scopes: key.scopes, rateLimit: key.rate_limit };
    if (!hasScope(key.scopes, access.scope)) {
      deny(
        req,
        reply,
        access,
        new IsoError('FORBIDDEN', `API key "${key.name}" lacks the "${access.scope}" scope`, {
          needed: access.scope,
          scopes: key.scopes,
        }),
      );
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

/** The object of an admin action: the model or deployment the route names, if any. */
function targetOf(req: FastifyRequest): string | undefined {
  const p = req.params as Record<string, string> | undefined;
  const t = p?.name ?? p?.id ?? p?.model;
  return typeof t === 'string' ? t.slice(0, 100) : undefined;
}
