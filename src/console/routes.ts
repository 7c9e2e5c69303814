// Serves the web console at /console: one HTML page, its script and its stylesheet, read once at
// start from this package (src/console/static/). The page only talks to this gateway's JSON API.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { GatewayContext } from '../api/context.js';
import { CONSOLE_STATIC_DIR } from '../paths.js';
import { PUBLIC } from '../security/route-scope.js';

/** Nothing but this origin: no CDN, no external font or script, no framing elsewhere. */
export const CONSOLE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'self'";

function send(reply: FastifyReply, type: string, body: string): FastifyReply {
  return reply
    .type(type)
    .header('content-security-policy', CONSOLE_CSP)
    .header('x-content-type-options', 'nosniff')
    .header('cache-control', 'no-cache')
    .send(body);
}

const readStatic = (name: string): string => readFileSync(join(CONSOLE_STATIC_DIR, name), 'utf8');

export function registerConsoleRoutes(app: FastifyInstance, _gw: GatewayContext): void {
  const html = readStatic('index.html');
  const js = readStatic('app.js');
  const css = readStatic('app.css');
  app.get('/console', PUBLIC, async (_req, reply) => send(reply, 'text/html; charset=utf-8', html));
  app.get('/console/', PUBLIC, async (_req, reply) => send(reply, 'text/html; charset=utf-8', html));
  app.get('/console/app.js', PUBLIC, async (_req, reply) => send(reply, 'text/javascript; charset=utf-8', js));
  app.get('/console/app.css', PUBLIC, async (_req, reply) => send(reply, 'text/css; charset=utf-8', css));
}
