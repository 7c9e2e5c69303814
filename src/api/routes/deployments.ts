// The deployment API under /api/v1/models (the contract of shared/spec's model service): deploy
// a version, infer, batch infer, status, scale, rolling update (PUT), undeploy (DELETE), plus
// versions, A/B and canary traffic, promote and rollback. `{id}` is `name` or `name@version`.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { cancelOnDisconnect } from '../disconnect.js';
import { parseMemoryMb } from '../../manifest/schema.js';
import { IsoError } from '../../errors.js';
import type { GatewayContext } from '../context.js';
import { parseBody } from '../body.js';
import { callerOf } from '../caller.js';
import { asIsoError, RequestOutcome } from '../../inference/outcome.js';
import { outputOf, run, serving, submit } from '../../inference/run.js';
import type { VersionOverrides } from '../../scheduler/registry.js';
import { canaryWeights } from '../../scheduler/traffic.js';
import { parseModelId } from '../../scheduler/versions.js';
import { isItemError } from '../../worker/protocol.js';
import { checkBatchSize } from '../batch-limit.js';
import { okEnvelope } from '../envelope.js';
import { parsePrediction } from '../predict-request.js';
import { stickyKey } from '../sticky.js';
import { modelSummary } from '../describe.js';
import { admin, PREDICT } from '../../security/route-scope.js';
import { httpManifest, writeHttpPackage } from '../../manifest/http-package.js';
import type { Manifest } from '../../manifest/schema.js';

export const DEPLOY_PREFIX = '/api/v1/models';

const PRIORITY = { low: -5, normal: 0, high: 5 } as const;
const priority = z.union([z.enum(['low', 'normal', 'high']), z.number().int().min(-10).max(10)]).optional();
/** Seconds, as in the spec (the native API's timeout_ms is milliseconds). */
const timeout = z.number().positive().max(3600).optional();

const inputData = z.union([
  z.string(),
  z
    .object({
      sequence: z.unknown(),
      task_type: z.string().max(64).optional(),
      sequence_type: z.string().max(16).optional(),
      options: z.record(z.string(), z.unknown()).optional(),
    })
    .strict(),
]);
const inferenceItem = { input_data: inputData, parameters: z.record(z.string(), z.unknown()).default({}) };
const inferenceBody = z
  .object({ ...inferenceItem, timeout, priority, sticky_key: z.string().max(256).optional() })
  .strict();
const batchBody = z
  .object({
    requests: z.array(z.object(inferenceItem).strict()).min(1),
    timeout,
    priority,
    sticky_key: z.string().max(256).optional(),
  })
  .strict();

/** Kubernetes-style quantities, as the spec's resource_requirements: "2", "500m"; "8Gi", "512Mi". */
const resources = z
  .object({
    cpu: z.union([z.number().positive(), z.string().regex(/^\d+(\.\d+)?m?$/)]).optional(),
    memory: z
      .union([z.number().int().positive(), z.string().regex(/^\d+(\.\d+)?(Ki|Mi|Gi|K|M|G|KB|MB|GB)?$/i)])
      .optional(),
    'nvidia.com/gpu': z.union([z.number().int().min(0), z.string().regex(/^\d+$/)]).optional(),
  })
  .strict();
const scaling = z
  .object({
    min_replicas: z.number().int().min(0).max(100).optional(),
    max_replicas: z.number().int().min(1).max(100).optional(),
    idle_timeout_s: z.number().min(0).optional(),
    /** Accepted for compatibility; replicas scale on queue depth here, not CPU. */
    target_cpu_utilization: z.number().int().min(1).max(100).optional(),
  })
  .strict();
const deployConfig = z
  .object({
    model_id: z.string().min(1).max(64),
    version: z.string().max(64).optional(),
    /** A package folder (relative to the models dir, or absolute) providing this version. */
    path: z.string().min(1).max(4096).optional(),
    /** Send this percentage of the model's traffic to the new version (a canary). */
    canary_percent: z.number().min(0).max(100).optional(),
    // Descriptive fields of the spec's deploy body; the package's manifest is what counts.
    name: z.string().max(200).optional(),
    model_type: z.string().max(100).optional(),
    framework: z.string().max(100).optional(),
    /**
     * Without `path`: the image is the model, an HTTP server (runtime http, isolation docker): a
     * package is written for it from this body (src/manifest/http-package.ts). With `path`: descriptive.
     */
    docker_image: z.string().max(300).optional(),
    /** docker_image: the port its server listens on (default 8000). */
    port: z.number().int().min(1).max(65535).optional(),
    /** docker_image: the manifest's http section (health_path, predict_path, request, response, batch, …). */
    http: z.record(z.string().max(64), z.unknown()).optional(),
    /** docker_image: the manifest's tasks (default one sequence task named after model_type, else "predict"). */
    tasks: z.array(z.unknown()).max(64).optional(),
    resource_requirements: resources.optional(),
    scaling_config: scaling.optional(),
  })
  .strict();
const deployBody = z.object({ config: deployConfig }).strict();
const updateBody = z
  .object({ config: deployConfig.partial({ model_id: true }).extend({ version: z.string().min(1).max(64) }) })
  .strict();
const scaleBody = z.object({ replicas: z.unknown() }).strict();
const trafficBody = z.union([
  z.object({ weights: z.record(z.string(), z.number().min(0).max(1_000_000)) }).strict(),
  z.object({ canary: z.object({ version: z.string().min(1), percent: z.number().min(0).max(100) }).strict() }).strict(),
]);
const promoteBody = z.object({ version: z.string().min(1).max(64) }).strict();

/**
 * A deploy or PUT body naming docker_image and no path: writes and registers the runtime-http
 * package it describes. PUT passes the serving version's manifest, whose settings the body keeps.
 */
function registerImagePackage(
  gw: GatewayContext,
  c: Partial<z.infer<typeof deployConfig>> & { model_id: string; docker_image: string },
  base?: Manifest,
): void {
  const m = httpManifest(
    {
      model_id: c.model_id,
      version: c.version ?? base?.version ?? '1.0.0',
      docker_image: c.docker_image,
      http: c.http,
      port: c.port,
      tasks: c.tasks,
      name: c.name,
      model_type: c.model_type,
      framework: c.framework,
    },
    base,
  );
  gw.registry.register(writeHttpPackage(gw.config.state_dir, m));
}

function cpus(q: string | number): number {
  if (typeof q === 'number') return q;
  return q.endsWith('m') ? Number(q.slice(0, -1)) / 1000 : Number(q);
}

/** A Kubernetes memory quantity in MB: a bare number is bytes there (the manifest's is MB). */
function memoryMb(q: string | number): number {
  if (typeof q === 'number') return q;
  return /^\d+(\.\d+)?$/.test(q) ? Math.max(1, Math.round(Number(q) / (1024 * 1024))) : parseMemoryMb(q);
}

function overridesOf(c: Partial<z.infer<typeof deployConfig>>): VersionOverrides | undefined {
  const o: VersionOverrides = {};
  const r = c.resource_requirements;
  if (r?.cpu !== undefined || r?.memory !== undefined) {
    o.resources = {
      ...(r.cpu !== undefined && { cpus: cpus(r.cpu) }),
      ...(r.memory !== undefined && { memory_mb: memoryMb(r.memory) }),
    };
  }
  const s = c.scaling_config;
  if (s) {
    const { target_cpu_utilization: _ignored, ...rest } = s;
    if (rest.min_replicas !== undefined && rest.max_replicas !== undefined && rest.min_replicas > rest.max_replicas) {
      throw new IsoError('VALIDATION_ERROR', 'scaling_config.min_replicas exceeds max_replicas');
    }
    if (Object.keys(rest).length) o.scaling = rest;
  }
  return o.resources || o.scaling ? o : undefined;
}

/** Everything about one model: versions, traffic, replicas and per-version request statistics. */
function modelStatus(gw: GatewayContext, id: string): Record<string, unknown> {
  const { name, version } = parseModelId(id);
  gw.registry.package(id);
  const versions = gw.registry.versions(name).filter((v) => version === undefined || v.version === version);
  return {
    model_id: name,
    ...modelSummary(gw, version ? id : name),
    traffic: gw.registry.traffic(name),
    versions: versions.map((v) => {
      const d = gw.registry.deployment(`${name}@${v.version}`);
      return {
        ...v,
        healthy: d?.healthy() ?? false,
        replicas: d?.replicaInfo() ?? [],
        queue_depth: d?.queueDepth() ?? 0,
        in_flight: d?.inflightCount() ?? 0,
        metrics: d?.stats.summary() ?? null,
      };
    }),
  };
}

/** One inference request → the native prediction body it means. */
function toPredictBody(
  input: z.infer<typeof inputData>,
  parameters: Record<string, unknown>,
  timeoutS?: number,
  prio?: z.infer<typeof priority>,
): unknown {
  const { task_type, sequence_type, ...options } = parameters;
  const base = typeof input === 'string' ? { sequence: input } : input;
  return {
    sequence: base.sequence,
    task_type: base.task_type ?? task_type,
    sequence_type: base.sequence_type ?? sequence_type,
    options: { ...options, ...(typeof input === 'object' ? input.options : {}) },
    ...(timeoutS !== undefined && { timeout_ms: Math.round(timeoutS * 1000) }),
    ...(prio !== undefined && { priority: typeof prio === 'number' ? prio : PRIORITY[prio] }),
  };
}

export function registerDeploymentRoutes(app: FastifyInstance, gw: GatewayContext): void {
  const P = DEPLOY_PREFIX;
  type IdReq = FastifyRequest<{ Params: { id: string } }>;

  app.get(P, PREDICT, async (req) => {
    const models = gw.registry.names().map((n) => modelStatus(gw, n));
    return okEnvelope(req, { models, total: models.length }, `${models.length} models`);
  });

  app.post(`${P}/deploy`, admin('models.deploy'), async (req, reply) => {
    const { config: c } = parseBody(deployBody, req.body);
    if (c.path) {
      const pkg = gw.registry.register(c.path);
      if (pkg.manifest.name !== c.model_id)
        throw new IsoError(
          'VALIDATION_ERROR',
          `the package at ${c.path} is model "${pkg.manifest.name}", not "${c.model_id}"`,
        );
      if (c.version && pkg.manifest.version !== c.version)
        throw new IsoError(
          'VALIDATION_ERROR',
          `the package at ${c.path} is version ${pkg.manifest.version}, not ${c.version}`,
        );
    } else if (c.docker_image) {
      registerImagePackage(gw, { ...c, docker_image: c.docker_image, version: c.version ?? '1.0.0' });
    }
    const version =
      c.version ?? (c.docker_image && !c.path ? '1.0.0' : gw.registry.package(c.model_id).manifest.version);
    const id = `${c.model_id}@${version}`;
    gw.registry.package(id);
    // A model that already serves keeps its default version: the new one takes traffic only
    // through canary_percent, a traffic split, promote, or PUT (rolling update).
    const before = gw.registry.status(c.model_id) === 'ready' ? gw.registry.defaultVersion(c.model_id) : undefined;
    const t0 = Date.now();
    // Pinned before the new version is ready, so no request reaches it by the newest-ready rule
    // (an A/B split in place is kept).
    if (before && before !== version) gw.registry.pinDefault(c.model_id);
    const overrides = overridesOf(c);
    await gw.registry.load(id, overrides);
    if (before && before !== version && c.canary_percent)
      await gw.registry.setTraffic(c.model_id, canaryWeights(before, version, c.canary_percent));
    await gw.deploymentSync?.deployed(id, overrides);
    return reply
      .code(201)
      .send(
        okEnvelope(
          req,
          { ...modelStatus(gw, c.model_id), deployed_version: version, load_time_ms: Date.now() - t0 },
          `model ${id} deployed`,
        ),
      );
  });

  const status = async (req: IdReq) => okEnvelope(req, modelStatus(gw, req.params.id), 'model status');
  app.get(`${P}/:id`, PREDICT, status);
  app.get(`${P}/:id/status`, PREDICT, status);

  app.post(`${P}/:id/inference`, PREDICT, async (req: IdReq, reply) => {
    const outcome = new RequestOutcome(gw, callerOf(req), 'api.inference');
    const { name } = parseModelId(req.params.id);
    outcome.model = gw.registry.names().includes(name) ? name : undefined;
    outcome.sequences = 1;
    try {
      const b = parseBody(inferenceBody, req.body);
      const d = serving(gw, outcome, req.params.id, stickyKey(req, b.sticky_key));
      const parsed = parsePrediction(
        d.pkg.manifest,
        toPredictBody(b.input_data, b.parameters, b.timeout, b.priority),
        'single',
        1,
      );
      outcome.task = parsed.task.name;
      const out = outputOf((await cancelOnDisconnect(reply, (signal) => run(outcome, d, parsed, { signal })))[0]!);
      outcome.ok();
      const data = {
        ...out,
        processing_time: outcome.seconds(),
        sequence_type: parsed.sequenceTypes[0],
        model_id: name,
        model: d.name,
        version: d.version,
        task_type: parsed.task.name,
      };
      return okEnvelope(req, data, 'inference done');
    } catch (e) {
      outcome.failed(e);
      throw e;
    }
  });

  app.post(`${P}/:id/batch_inference`, PREDICT, async (req: IdReq, reply) => {
    const outcome = new RequestOutcome(gw, callerOf(req), 'api.batch_inference', { batch: true });
    const { name } = parseModelId(req.params.id);
    outcome.model = gw.registry.names().includes(name) ? name : undefined;
    try {
      // Counted before the requests are parsed.
      const listed = (req.body as { requests?: unknown } | null)?.requests;
      if (Array.isArray(listed)) checkBatchSize(listed.length, gw.config.max_batch_sequences, 'requests per batch');
      const b = parseBody(batchBody, req.body);
      // One version for the whole batch, so its results are comparable.
      const d = serving(gw, outcome, req.params.id, stickyKey(req, b.sticky_key));
      // Every request is validated before any runs: one bad input rejects the batch, naming it.
      const parsed = b.requests.map((r, index) => {
        try {
          return parsePrediction(
            d.pkg.manifest,
            toPredictBody(r.input_data, r.parameters, b.timeout, b.priority),
            'single',
            1,
          );
        } catch (e) {
          const err = asIsoError(e);
          throw new IsoError(err.code, `requests[${index}]: ${err.message}`, { index });
        }
      });
      // Submitted together: the scheduler batches them into as few worker calls as it can.
      const settled = await cancelOnDisconnect(reply, (signal) =>
        Promise.allSettled(parsed.map((p) => submit(d, p, { signal }))),
      );
      const results = settled.map((s, index) => {
        const out =
          s.status === 'fulfilled'
            ? s.value[0]!
            : { error: { code: asIsoError(s.reason).code, message: asIsoError(s.reason).message } };
        if (isItemError(out)) return { index, success: false, error: out.error };
        return { index, success: true, data: { ...out, task_type: parsed[index]!.task.name } };
      });
      const failed = results.filter((r) => !r.success).length;
      if (failed === results.length) {
        throw new IsoError('PREDICTION_FAILED', 'every request of the batch failed', {
          errors: results.map((r) => ({ index: r.index, ...(r as { error: unknown }) })),
        });
      }
      outcome.task = parsed[0]!.task.name;
      outcome.sequences = parsed.length;
      outcome.ok();
      const data = {
        results,
        total_requests: results.length,
        successful: results.length - failed,
        failed,
        processing_time: outcome.seconds(),
        model_id: name,
        model: d.name,
        version: d.version,
      };
      return okEnvelope(
        req,
        data,
        failed ? `batch done; ${failed} of ${results.length} requests failed` : 'batch done',
      );
    } catch (e) {
      outcome.failed(e);
      throw e;
    }
  });

  app.post(`${P}/:id/scale`, admin('models.scale'), async (req: IdReq) => {
    const { replicas } = parseBody(scaleBody, req.body);
    if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0 || replicas > 100) {
      throw new IsoError('VALIDATION_ERROR', 'replicas must be an integer from 0 to 100', {
        replicas: replicas ?? null,
        min: 0,
        max: 100,
      });
    }
    await gw.registry.scale(req.params.id, replicas);
    await gw.deploymentSync?.scaled(req.params.id, replicas);
    return okEnvelope(req, modelStatus(gw, req.params.id), `model ${req.params.id} scaled to ${replicas} replicas`);
  });

  // Rolling update: the new version's replicas start and become ready, traffic moves, the old drain.
  app.put(`${P}/:id`, admin('models.update'), async (req: IdReq) => {
    const { config: c } = parseBody(updateBody, req.body);
    const { name } = parseModelId(req.params.id);
    if (c.model_id !== undefined && c.model_id !== name)
      throw new IsoError(
        'VALIDATION_ERROR',
        `config.model_id "${c.model_id}" does not match the URL's model "${name}"`,
      );
    gw.registry.package(name);
    if (c.path) {
      const pkg = gw.registry.register(c.path);
      if (pkg.manifest.name !== name || pkg.manifest.version !== c.version) {
        throw new IsoError(
          'VALIDATION_ERROR',
          `the package at ${c.path} is ${pkg.manifest.name}@${pkg.manifest.version}, not ${name}@${c.version}`,
        );
      }
    } else if (c.docker_image) {
      // The new version keeps the serving one's port, paths, mapping and tasks unless the body says otherwise.
      const serving = gw.registry.package(name).manifest;
      registerImagePackage(
        gw,
        { ...c, model_id: name, docker_image: c.docker_image },
        serving.runtime === 'http' ? serving : undefined,
      );
    }
    const t0 = Date.now();
    const overrides = overridesOf(c);
    const { previous } = await gw.registry.rollingUpdate(name, c.version, overrides);
    await gw.deploymentSync?.updated(name, c.version, overrides);
    return okEnvelope(
      req,
      { ...modelStatus(gw, name), previous_versions: previous, update_time_ms: Date.now() - t0 },
      `model ${name} updated to ${c.version}`,
    );
  });

  app.delete(`${P}/:id`, admin('models.delete'), async (req: IdReq) => {
    const { name, version } = parseModelId(req.params.id);
    gw.registry.package(req.params.id);
    if (version !== undefined) {
      if (
        gw.registry.traffic(name).default_version === version &&
        gw.registry.versions(name).some((v) => v.version !== version && v.status === 'ready')
      ) {
        throw new IsoError(
          'VALIDATION_ERROR',
          `${req.params.id} is the default version; promote another version first`,
        );
      }
      await gw.registry.unload(req.params.id);
      await gw.deploymentSync?.undeployed(req.params.id);
      return okEnvelope(req, modelStatus(gw, name), `version ${req.params.id} undeployed`);
    }
    await gw.registry.remove(name);
    await gw.deploymentSync?.removed(name);
    const known = gw.registry.names().includes(name);
    return okEnvelope(
      req,
      known ? modelStatus(gw, name) : { model_id: name, status: 'removed' },
      `model ${name} undeployed`,
    );
  });

  app.get(`${P}/:id/traffic`, PREDICT, async (req: IdReq) =>
    okEnvelope(req, gw.registry.traffic(parseModelId(req.params.id).name), 'traffic'),
  );

  app.put(`${P}/:id/traffic`, admin('models.traffic'), async (req: IdReq) => {
    const name = parseModelId(req.params.id).name;
    const b = parseBody(trafficBody, req.body);
    const weights =
      'weights' in b ? b.weights : canaryWeights(gw.registry.defaultVersion(name), b.canary.version, b.canary.percent);
    if ('canary' in b && b.canary.version === gw.registry.defaultVersion(name))
      throw new IsoError('VALIDATION_ERROR', `${b.canary.version} is already the default version`);
    await gw.registry.setTraffic(name, weights);
    return okEnvelope(req, gw.registry.traffic(name), 'traffic split set');
  });

  app.delete(`${P}/:id/traffic`, admin('models.traffic.clear'), async (req: IdReq) => {
    const name = parseModelId(req.params.id).name;
    await gw.registry.setTraffic(name, null);
    return okEnvelope(req, gw.registry.traffic(name), 'traffic split cleared; the default version takes all traffic');
  });

  app.post(`${P}/:id/promote`, admin('models.promote'), async (req: IdReq) => {
    const name = parseModelId(req.params.id).name;
    const { version } = parseBody(promoteBody, req.body);
    await gw.registry.promote(name, version);
    return okEnvelope(req, modelStatus(gw, name), `${name}@${version} promoted`);
  });

  app.post(`${P}/:id/rollback`, admin('models.rollback'), async (req: IdReq) => {
    const name = parseModelId(req.params.id).name;
    const to = await gw.registry.rollback(name);
    return okEnvelope(req, modelStatus(gw, name), `${name} rolled back to ${to}`);
  });
}
