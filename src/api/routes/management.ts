// Model management: list, load, unload, hot reload.
import type { FastifyInstance } from 'fastify';
import type { Gateway } from '../../gateway.js';
import { okEnvelope } from '../envelope.js';
import { admin, PREDICT } from '../../security/route-scope.js';

export function modelSummary(gw: Gateway, name: string): Record<string, unknown> {
  const pkg = gw.registry.package(name);
  const m = pkg.manifest;
  const d = gw.registry.deployment(name);
  return {
    name: m.name,
    version: m.version,
    description: m.description,
    runtime: m.runtime,
    isolation: m.isolation,
    status: gw.registry.status(name),
    default: gw.defaultModel() === name,
    tasks: m.tasks.map((t) => ({ name: t.name, input_type: t.input_type, sequence_types: t.sequence_types, max_length: t.max_length, description: t.description })),
    default_task: (m.tasks.find((t) => t.name === m.default_task) ?? m.tasks[0])?.name ?? null,
    sequence_types: [...new Set(m.tasks.flatMap((t) => t.sequence_types))],
    replicas: d?.replicaInfo().length ?? 0,
    scaling: m.scaling,
    batching: m.batching,
    resources: m.resources,
    last_error: gw.registry.lastError(name) ?? null,
    // Models that declare weights outside the package: where they are looked for, and what to do.
    weights: gw.registry.weights(name),
    // Host software its manifest requires that the last load found missing (null otherwise).
    requires: gw.registry.requirements(name),
    path: pkg.dir,
  };
}

export function registerManagementRoutes(app: FastifyInstance, gw: Gateway): void {
  app.get('/v1/models', PREDICT, async (req) => {
    const models = gw.registry.names().map((n) => modelSummary(gw, n));
    return okEnvelope(req, { models, invalid_packages: gw.registry.invalidPackages() }, `${models.length} models`);
  });

  app.post<{ Params: { name: string } }>('/v1/models/:name/load', admin('models.load'), async (req) => {
    const t0 = Date.now();
    await gw.registry.load(req.params.name);
    return okEnvelope(req, { ...modelSummary(gw, req.params.name), load_time_ms: Date.now() - t0 }, `model ${req.params.name} loaded`);
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
