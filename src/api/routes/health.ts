// Probes for orchestrators: live (the process answers), startup (initial loads attempted),
// ready (every required model ready, no dead replica), detailed (everything, for humans).
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { IsoError } from '../../errors.js';
import type { GatewayContext } from '../context.js';
import { okEnvelope, sendError } from '../envelope.js';
import { PREDICT, PUBLIC } from '../../security/route-scope.js';
import { formatBytes, modelHealth, systemInfo, uptimeS } from '../describe.js';

export function registerHealthRoutes(app: FastifyInstance, gw: GatewayContext): void {
  // Also under /api/v1/health, where the model service spec puts them.
  for (const prefix of ['', '/api/v1']) registerProbes(app, gw, prefix);
  const basic = async (req: FastifyRequest) => {
    const storage = gw.store.storage.check();
    const healthy =
      gw.started && gw.requiredModels().every((n) => gw.registry.deployment(n)?.healthy()) && storage.status === 'ok';
    return okEnvelope(
      req,
      {
        status: healthy ? 'healthy' : 'degraded',
        uptime: uptimeS(gw),
        models: gw.registry.names().length,
        storage: storage.status,
      },
      healthy
        ? 'service is healthy'
        : storage.status === 'ok'
          ? 'service is degraded'
          : `service is degraded: ${storage.reason}`,
    );
  };
  app.get('/api/v1/health', PUBLIC, basic);
  app.get('/api/v1/health/', PUBLIC, basic);
}

function registerProbes(app: FastifyInstance, gw: GatewayContext, prefix: string): void {
  app.get(`${prefix}/health/live`, PUBLIC, async (req) =>
    okEnvelope(req, { status: 'alive', uptime: uptimeS(gw) }, 'alive'),
  );

  app.get(`${prefix}/health/startup`, PUBLIC, async (req, reply) => {
    if (!gw.started)
      return sendError(
        req,
        reply,
        new IsoError('MODEL_NOT_LOADED', 'gateway is still loading its models', undefined, 1),
      );
    return okEnvelope(req, { status: 'started', uptime: uptimeS(gw) }, 'started');
  });

  app.get(`${prefix}/health/ready`, PUBLIC, async (req, reply) => {
    const required = gw.requiredModels();
    const notReady = required.filter((n) => {
      const d = gw.registry.deployment(n);
      return !d || !d.healthy();
    });
    if (!gw.started || notReady.length > 0) {
      const details = Object.fromEntries(
        notReady.map((n) => [n, { status: gw.registry.status(n), last_error: gw.registry.lastError(n) ?? null }]),
      );
      return sendError(
        req,
        reply,
        new IsoError(
          'MODEL_NOT_LOADED',
          gw.started ? `not ready: ${notReady.join(', ')}` : 'gateway is still starting',
          { not_ready: details },
          1,
        ),
      );
    }
    return okEnvelope(req, { status: 'ready', models: required }, 'ready');
  });

  // Readiness leaves storage out on purpose: predictions keep working while the state dir is full.
  app.get(`${prefix}/health/detailed`, PREDICT, async (req) => {
    const models = gw.registry.names().map((n) => modelHealth(gw, n));
    const notHealthy = gw.requiredModels().filter((n) => !gw.registry.deployment(n)?.healthy());
    // Probed at most every few seconds (storage-fault.ts): a full disk shows here before a write fails.
    const storage = gw.store.storage.check();
    const reasons = [
      ...(notHealthy.length ? [`not healthy: ${notHealthy.join(', ')}`] : []),
      ...(storage.reason ? [`storage unavailable: ${storage.reason}`] : []),
    ];
    return okEnvelope(
      req,
      {
        status: reasons.length ? 'degraded' : 'healthy',
        reasons,
        storage,
        uptime: uptimeS(gw),
        started: gw.started,
        default_model: gw.defaultModel() ?? null,
        ...(gw.missingDefaultModel() && {
          default_model_missing: `default_model "${gw.missingDefaultModel()}" is not a model here; the root routes answer for ${gw.defaultModel() ?? 'no model'}`,
        }),
        isolation: { cgroups: gw.cgroups.version },
        gateway: { pid: process.pid, rss: formatBytes(process.memoryUsage().rss), node: process.version },
        system: systemInfo(),
        models,
        invalid_packages: gw.registry.invalidPackages(),
      },
      reasons.length ? `detailed health: degraded (${reasons.join('; ')})` : 'detailed health',
    );
  });
}
