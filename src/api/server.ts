// Builds the Fastify app: request ids, the error envelope, body limits, rate limiting and
// every route group.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import { IsoError } from '../errors.js';
import type { Gateway } from '../gateway.js';
import { sendError, toIsoError } from './envelope.js';
import { registerHealthRoutes } from './routes/health.js';
import { registerManagementRoutes } from './routes/management.js';
import { registerNativeRoutes } from './routes/native.js';
import { registerSecurityRoutes } from './routes/security.js';
import { registerAuth } from '../security/auth.js';
import { registerAgentRoutes } from './routes/agent.js';
import { registerOipRoutes } from './routes/oip.js';
import { registerOpenAiRoutes } from './routes/openai.js';
import { registerMcpRoutes } from '../mcp/http.js';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
/** Probes and scrapes are never rate limited: throttling them turns load into restarts. */
const PROBE_PATHS = /^\/(health\/|v2\/health\/|agent\/health$|metrics\/prometheus$)/;

export async function buildServer(gw: Gateway): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: gw.logger.child({ component: 'http' }) as FastifyBaseLogger,
    // Per-request access lines would dominate the log at load; the request log lives in SQLite.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: gw.config.body_limit_bytes,
    // A client-supplied id is kept when it is safe to echo back; otherwise we mint one.
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    routerOptions: { maxParamLength: 200 },
    ...(gw.config.tls ? { https: { cert: readFileSync(gw.config.tls.cert), key: readFileSync(gw.config.tls.key) } } : {}),
  });

  app.addHook('onSend', async (req, reply) => {
    void reply.header('x-request-id', req.id);
  });

  app.setErrorHandler((err, req, reply) => {
    const iso = toIsoError(err);
    if (iso.code === 'INTERNAL_ERROR') req.log.error({ err }, 'unhandled error');
    return sendError(req, reply, iso);
  });

  app.setNotFoundHandler((req, reply) => sendError(req, reply, new IsoError('NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`)));

  // Before the rate limiter, so a known key gets its own budget.
  registerAuth(app, { keys: gw.keys, audit: gw.audit, publicMetrics: gw.config.auth.public_metrics });

  if (gw.config.rate_limit.max > 0) {
    await app.register(rateLimit, {
      global: true,
      // Per API key when one was presented, else per client address; a key may carry its own quota.
      keyGenerator: (req) => (req.principal && req.principal.id !== 'anonymous' ? `key:${req.principal.id}` : `ip:${req.ip}`),
      max: (req) => req.principal?.rateLimit ?? gw.config.rate_limit.max,
      timeWindow: gw.config.rate_limit.window_ms,
      // Orchestrator probes must never be throttled into a restart loop.
      allowList: (req) => PROBE_PATHS.test(req.url),
      // The plugin throws what this returns; the error handler turns it into the envelope.
      errorResponseBuilder: (_req, ctx) =>
        new IsoError('RATE_LIMITED', `rate limit of ${ctx.max} requests per window exceeded; retry after ${ctx.after}`, { limit: ctx.max, retry_after: ctx.after }, Math.max(1, Math.ceil(ctx.ttl / 1000))),
    });
  }

  registerHealthRoutes(app, gw);
  registerManagementRoutes(app, gw);
  registerNativeRoutes(app, gw);
  registerSecurityRoutes(app, gw);
  registerAgentRoutes(app, gw);
  registerOipRoutes(app, gw);
  registerOpenAiRoutes(app, gw);
  registerMcpRoutes(app, gw);
  return app;
}
