// Model management: list, load, unload, hot reload.
import type { FastifyInstance } from 'fastify';
import type { GatewayContext } from '../context.js';
import { okEnvelope } from '../envelope.js';
import { admin, PREDICT } from '../../security/route-scope.js';
import { modelSummary } from '../describe.js';

export function registerManagementRoutes(app: FastifyInstance, gw: GatewayContext): void {
  app.get('/v1/models', PREDICT, async (req) => {
    const models = gw.registry.names().map((n) => modelSummary(gw, n));
    return okEnvelope(req, { models, invalid_packages: gw.registry.invalidPackages() }, `${models.length} models`);
  });

  app.post<{ Params: { name: string } }>('/v1/models/:name/load', admin('models.load'), async (req) => {
    const t0 = Date.now();
    await gw.registry.load(req.params.name);
    return okEnvelope(
      req,
      { ...modelSummary(gw, req.params.name), load_time_ms: Date.now() - t0 },
      `model ${req.params.name} loaded`,
    );
  });

  app.post<{ Params: { name: string } }>('/v1/models/:name/unload', admin('models.unload'), async (req) => {
    await gw.registry.unload(req.params.name);
    return okEnvelope(req, modelSummary(gw, req.params.name), `model ${req.params.name} unloaded`);
  });

  app.post('/v1/models/reload', admin('models.reload'), async (req) => {
    const summary = await gw.registry.reload();
    return okEnvelope(req, summary, 'models reloaded');
  });
}
