// Serves the web console at /console: one HTML page with its scripts and stylesheets, read once at
// start from this package (src/console/static/). The page only talks to this gateway's JSON API.
import { readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { GatewayContext } from '../api/context.js';
import { CONSOLE_STATIC_DIR } from '../paths.js';
import { PUBLIC } from '../security/route-scope.js';

/** Nothing but this origin: no CDN, no external font or script, no framing elsewhere. */
export const CONSOLE_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'self'";

const HTML = 'text/html; charset=utf-8';
const ASSET_TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

function send(reply: FastifyReply, type: string, body: string): FastifyReply {
  return reply
    .type(type)
    .header('content-security-policy', CONSOLE_CSP)
    .header('x-content-type-options', 'nosniff')
    .header('cache-control', 'no-cache')
    .send(body);
}

const readStatic = (name: string): string => readFileSync(join(CONSOLE_STATIC_DIR, name), 'utf8');

/** The scripts and stylesheets of static/, by file name: listed once at start, so a request's path
 * only ever picks one of these fixed routes and never reaches the file system. */
function consoleAssetNames(): string[] {
  return readdirSync(CONSOLE_STATIC_DIR)
    .filter((name) => /^[a-z0-9][a-z0-9-]*\.(js|css)$/.test(name))
    .sort();
}

export function registerConsoleRoutes(app: FastifyInstance, _gw: GatewayContext): void {
  const html = readStatic('index.html');
  app.get('/console', PUBLIC, async (_req, reply) => send(reply, HTML, html));
  app.get('/console/', PUBLIC, async (_req, reply) => send(reply, HTML, html));
  for (const name of consoleAssetNames()) {
    const type = ASSET_TYPES[extname(name)]!;
    const body = readStatic(name);
    app.get(`/console/${name}`, PUBLIC, async (_req, reply) => send(reply, type, body));
  }
}
