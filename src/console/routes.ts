// Serves the web console at /console: one HTML page, its script and its stylesheet, all from
// this package (./assets.ts). The page only talks to this gateway's JSON API.
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { GatewayContext } from '../api/context.js';
import { CONSOLE_CSS, CONSOLE_HTML, CONSOLE_JS } from './assets.js';
import { PUBLIC } from '../security/route-scope.js';

/** Nothing but this origin: no CDN, no external font or script, no framing elsewhere. */
export const CONSOLE_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'self'";

function send(reply: FastifyReply, type: string, body: string): FastifyReply {
  return reply.type(type).header('content-security-policy', CONSOLE_CSP).header('x-content-type-options', 'nosniff').header('cache-control', 'no-cache').send(body);
}

export function registerConsoleRoutes(app: FastifyInstance, _gw: GatewayContext): void {
  app.get('/console', PUBLIC, async (_req, reply) => send(reply, 'text/html; charset=utf-8', CONSOLE_HTML));
  app.get('/console/', PUBLIC, async (_req, reply) => send(reply, 'text/html; charset=utf-8', CONSOLE_HTML));
  app.get('/console/app.js', PUBLIC, async (_req, reply) => send(reply, 'text/javascript; charset=utf-8', CONSOLE_JS));
  app.get('/console/app.css', PUBLIC, async (_req, reply) => send(reply, 'text/css; charset=utf-8', CONSOLE_CSS));
}
