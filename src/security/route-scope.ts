// Who may call a route, declared in the route's own options and read by src/security/auth.ts
// after routing. Authorization never looks at the raw URL: the router decodes percent-escapes,
// drops fragments and accepts absolute-form targets, so only the route it matched is trustworthy.
import type { FastifyInstance } from 'fastify';

/** public: no key needed; predict: any key; admin: a key with the admin scope. */
export type RouteScope = 'public' | 'predict' | 'admin';
export const ROUTE_SCOPES: readonly RouteScope[] = ['public', 'predict', 'admin'];

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Required on every route: registration fails without it (see requireRouteScopes). */
    scope?: RouteScope;
    /** Name of an admin action in the audit log (e.g. `models.load`). */
    action?: string;
  }
}

/** The part of a route's options that says who may call it. */
export interface ScopeOptions {
  config: { scope: RouteScope; action?: string };
}

/** Route options of a route anyone may call (probes, the console's static files). */
export const PUBLIC: ScopeOptions = { config: { scope: 'public' } };
/** Route options of a route any valid API key may call (predictions, reads). */
export const PREDICT: ScopeOptions = { config: { scope: 'predict' } };
/** Route options of an admin route; `action` names it in the audit log. */
export function admin(action: string): ScopeOptions {
  return { config: { scope: 'admin', action } };
}

/**
 * Refuses to register a route that does not declare its scope, so a new route can never be
 * served with an authorization decision nobody made. Fastify's automatic HEAD routes copy
 * their GET route's options, config included.
 */
export function requireRouteScopes(app: FastifyInstance): void {
  app.addHook('onRoute', (r) => {
    const scope = r.config?.scope;
    if (!scope || !ROUTE_SCOPES.includes(scope)) {
      throw new Error(
        `route ${String(r.method)} ${r.url} declares no scope: add PUBLIC, PREDICT or admin(action) from src/security/route-scope.ts to its options`,
      );
    }
  });
}
