// Builds the Fastify app: request ids, the error envelope, body limits, rate limiting and
// every route group.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import { IsoError } from '../errors.js';
import type { GatewayContext } from './context.js';
import { sendError, toIsoError } from './envelope.js';
import { registerHealthRoutes } from './routes/health.js';
import { registerManagementRoutes } from './routes/management.js';
import { registerNativeRoutes } from './routes/native.js';
import { registerSecurityRoutes } from './routes/security.js';
import { registerAuth } from '../security/auth.js';
import { registerMediaBodies } from './media-body.js';
import { jsonDepthExceeds, MAX_JSON_DEPTH } from '../util/json-depth.js';
export { jsonDepthExceeds, MAX_JSON_DEPTH } from '../util/json-depth.js';
import { requireRouteScopes, type RouteScope } from '../security/route-scope.js';
import { isLoopback } from '../security/network.js';
import { registerMonitorRoutes } from './routes/monitor.js';
import { registerReportRoutes } from './routes/reports.js';
import { registerConsoleRoutes } from '../console/routes.js';
import { registerJobRoutes } from './routes/jobs.js';
import { registerOpenAiRoutes } from './routes/openai.js';
import { registerMcpRoutes } from '../mcp/http.js';
import { registerAgentRoutes } from './routes/agent.js';
import { registerOipRoutes } from './routes/oip.js';
import { registerDeploymentRoutes } from './routes/deployments.js';
import { registerSeed001Routes } from './routes/seed-001.js';
import { registerLogRoutes } from './routes/logs.js';
import { closeSilentSocketsOnClose } from './silent-sockets.js';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** One registered route: its methods, its full URL pattern (with the plugin prefix) and its scope. */
export interface RouteEntry {
  methods: string[];
  url: string;
  scope: RouteScope | undefined;
  action: string | undefined;
}
const routeLists = new WeakMap<FastifyInstance, RouteEntry[]>();

/** Every route the app registered, in order; the fuzz test derives its targets from it. */
export function listRoutes(app: FastifyInstance): readonly RouteEntry[] {
  return routeLists.get(app) ?? [];
}

/** Status and code for what Node's HTTP parser rejects before Fastify routes anything. */
function clientErrorCode(code: string | undefined): IsoError['code'] {
  if (code === 'HPE_HEADER_OVERFLOW') return 'HEADERS_TOO_LARGE';
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return 'REQUEST_TIMEOUT';
  return 'INVALID_REQUEST';
}

/** Probes and scrapes are never rate limited: throttling them turns load into restarts. Matched on the route pattern. */
const PROBE_ROUTES = /^\/(health\/|api\/v1\/health|v2\/health\/|agent\/health$|metrics\/prometheus$)/;

/** The routes are handed the surfaces' view of the gateway (api/context.ts). */
export async function buildServer(gw: GatewayContext): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: gw.logger.child({ component: 'http' }) as FastifyBaseLogger,
    // Per-request access lines would dominate the log at load; the request log lives in SQLite.
    logController: new LogController({ disableRequestLogging: true }),
    // No child logger per request (pino child creation is a measurable share of a no-op
    // request); error logs carry the request id themselves (see the error handler).
    childLoggerFactory: (logger) => logger,
    bodyLimit: gw.config.body_limit_bytes,
    // A client-supplied id is kept when it is safe to echo back; otherwise we mint one.
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    routerOptions: { maxParamLength: 200 },
    // Errors Fastify raises while routing (a path parameter that is not valid percent-encoding,
    // FST_ERR_BAD_URL; one over maxParamLength) used to go out as Fastify's own JSON, not as the
    // envelope (found by test/fuzz.test.ts). /v2 answers with the OIP error object instead.
    frameworkErrors: (err, req, reply) => {
      const iso = toIsoError(err);
      const path = req.url.split('?')[0]!;
      if (path === '/v2' || path.startsWith('/v2/'))
        void (reply as FastifyReply).code(iso.status).send({ error: iso.message });
      else void sendError(req, reply, iso);
    },
    // Malformed HTTP (unknown method, bad request line or header, headers over the limit) is
    // answered on the socket before any request exists: the envelope here too, not Fastify's body.
    clientErrorHandler: (err, socket) => {
      const errno = (err as NodeJS.ErrnoException).code;
      if (errno === 'ECONNRESET' || socket.destroyed) return;
      if (socket.writable) {
        const iso = new IsoError(
          clientErrorCode(errno),
          errno === 'HPE_HEADER_OVERFLOW' ? 'request line and headers are too large' : 'malformed HTTP request',
        );
        const body = JSON.stringify({
          success: false,
          message: iso.message,
          error: { code: iso.code, details: errno ?? iso.message },
          timestamp: new Date().toISOString(),
          request_id: randomUUID(),
        });
        socket.write(
          `HTTP/1.1 ${iso.status} ${iso.status === 400 ? 'Bad Request' : iso.status === 408 ? 'Request Timeout' : 'Request Header Fields Too Large'}\r\nContent-Length: ${Buffer.byteLength(body)}\r\nContent-Type: application/json; charset=utf-8\r\nConnection: close\r\n\r\n${body}`,
        );
      }
      socket.destroy(err);
    },
    ...(gw.config.tls
      ? { https: { cert: readFileSync(gw.config.tls.cert), key: readFileSync(gw.config.tls.key) } }
      : {}),
  });

  // Before any route is added, so that listRoutes() sees them all (child scopes inherit the hook).
  const routes: RouteEntry[] = [];
  routeLists.set(app, routes);
  app.addHook('onRoute', (r) => {
    routes.push({
      methods: ([] as string[]).concat(r.method),
      url: r.url,
      scope: r.config?.scope,
      action: r.config?.action,
    });
  });
  requireRouteScopes(app);
  closeSilentSocketsOnClose(app);

  // The stock JSON parser (prototype poisoning still rejected), behind a nesting limit.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    if (jsonDepthExceeds(body as string, MAX_JSON_DEPTH))
      return done(new IsoError('INVALID_REQUEST', `JSON nests deeper than ${MAX_JSON_DEPTH} levels`), undefined);
    return parseJson(req, body as string, done);
  });

  // Set up front (synchronously) rather than in an onSend hook: one less async step per request.
  app.addHook('onRequest', (req, reply, done) => {
    void reply.header('x-request-id', req.id);
    done();
  });

  app.setErrorHandler((err, req, reply) => {
    const iso = toIsoError(err);
    if (iso.code === 'INTERNAL_ERROR') req.log.error({ err, reqId: req.id }, 'unhandled error');
    return sendError(req, reply, iso);
  });

  app.setNotFoundHandler((req, reply) =>
    sendError(req, reply, new IsoError('NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`)),
  );

  // Before the rate limiter, so a known key gets its own budget.
  registerAuth(app, {
    keys: gw.keyring,
    audit: gw.auditTrail,
    allowAnonymous: isLoopback(gw.config.host),
    failureLimit: { max: gw.config.auth.failure_limit.max, windowMs: gw.config.auth.failure_limit.window_ms },
    metrics: gw.metrics.auth,
    onAuditError: (message) => gw.logger.error(message),
  });

  if (gw.config.rate_limit.max > 0) {
    await app.register(rateLimit, {
      global: true,
      // Per API key when one was presented, else per client address; a key may carry its own quota.
      keyGenerator: (req) =>
        req.principal && req.principal.id !== 'anonymous' ? `key:${req.principal.id}` : `ip:${req.ip}`,
      max: (req) => req.principal?.rateLimit ?? gw.config.rate_limit.max,
      timeWindow: gw.config.rate_limit.window_ms,
      // Orchestrator probes must never be throttled into a restart loop.
      allowList: (req) => PROBE_ROUTES.test(req.routeOptions.url ?? ''),
      // The plugin throws what this returns; the error handler turns it into the envelope.
      errorResponseBuilder: (_req, ctx) =>
        new IsoError(
          'RATE_LIMITED',
          `rate limit of ${ctx.max} requests per window exceeded; retry after ${ctx.after}`,
          { limit: ctx.max, retry_after: ctx.after },
          Math.max(1, Math.ceil(ctx.ttl / 1000)),
        ),
    });
  }

  // Raw image/audio bodies and multipart uploads for the prediction routes (api/media-body.ts).
  await registerMediaBodies(app, {
    maxBytes: gw.config.predict_body_limit_bytes,
    maxFiles: gw.config.max_batch_sequences,
  });

  registerHealthRoutes(app, gw);
  registerManagementRoutes(app, gw);
  registerNativeRoutes(app, gw);
  registerSecurityRoutes(app, gw);
  registerMonitorRoutes(app, gw);
  registerReportRoutes(app, gw);
  registerConsoleRoutes(app, gw);
  registerJobRoutes(app, gw);
  registerOpenAiRoutes(app, gw);
  registerMcpRoutes(app, gw);
  registerAgentRoutes(app, gw);
  registerOipRoutes(app, gw);
  registerDeploymentRoutes(app, gw);
  registerSeed001Routes(app, gw);
  registerLogRoutes(app, gw);
  return app;
}
