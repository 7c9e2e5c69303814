// Seed 001's model-management API (../shared/spec/001_*.txt) as a compatibility surface over
// isomodel's own objects (docs/model-management.md): POST /api/models/download pulls a package or
// a model's weights (src/pull); GET /api/models lists models, DELETE /api/models/{id} removes what
// a download installed; /api/containers/* manage named replica sets of a model with their own
// limits (scheduler/containers.ts); POST /api/models/run predicts through one.
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { IsoError } from '../../errors.js';
import type { GatewayContext } from '../context.js';
import { isValidModelName } from '../../manifest/load.js';
import { parseMemoryMb } from '../../manifest/schema.js';
import { PACKAGE_MARKER, pull, pullSettings, pulledWeightsInfo, type PullResult } from '../../pull/pull.js';
import { MAX_CONTAINER_CPUS, MAX_CONTAINER_MEMORY_MB, MAX_CONTAINER_REPLICAS } from '../../scheduler/containers.js';
import type { ModelDeployment } from '../../scheduler/deployment.js';
import { cancelOnDisconnect } from '../disconnect.js';
import { parsePrediction } from '../predict-request.js';
import { admin, PREDICT } from '../../security/route-scope.js';
import { parseBody } from '../body.js';
import { callerOf } from '../caller.js';
import { RequestOutcome } from '../../inference/outcome.js';
import { outputOf, run } from '../../inference/run.js';
import { okEnvelope } from '../envelope.js';

const modelId = z
  .string()
  .min(1)
  .max(64)
  .refine(isValidModelName, 'a model name: lowercase letters, digits, "-", "_" and "."');

const downloadBody = z
  .object({
    model_id: modelId,
    /** Seed 001's field; descriptive here (the package's manifest says what the model does). */
    model_type: z.string().max(100).optional(),
    /** A folder or .tar.gz on the gateway's machine, an http(s) URL, or hf:<org>/<repo>[@revision]. */
    source: z.string().min(1).max(4096).optional(),
    /** package: install a model package; weights: fill model_id's weights. Default: weights when model_id is a package that declares weights. */
    kind: z.enum(['package', 'weights']).optional(),
    /** Replace a package that is already in the models dir. */
    force: z.boolean().optional(),
    /** Hub sources: only the files matching these globs. */
    include: z.array(z.string().min(1).max(256)).max(64).optional(),
  })
  .strict();

/** An AbortSignal that fires when the client goes away before the answer is sent. */
function abortOnDisconnect(reply: FastifyReply): { signal: AbortSignal; done: () => void } {
  const ac = new AbortController();
  const onClose = (): void => {
    if (!reply.raw.writableFinished) ac.abort(new IsoError('CANCELLED', 'the client went away'));
  };
  reply.raw.on('close', onClose);
  return { signal: ac.signal, done: () => reply.raw.off('close', onClose) };
}

/** After new weights: (re)start the model so its workers get them; reports how that went. */
async function restartWithWeights(
  gw: GatewayContext,
  model: string,
): Promise<{ status: string; error: string | null }> {
  try {
    if (gw.registry.status(model) === 'ready') await gw.registry.unload(model);
    await gw.registry.load(model);
  } catch {
    // reported below: the pull itself succeeded
  }
  return { status: gw.registry.status(model), error: gw.registry.lastError(model) ?? null };
}

const containerName = z.string().min(1).max(64);
const createBody = z
  .object({
    model_id: modelId,
    container_name: containerName,
    resources: z
      .object({
        /** CPUs (fractions allowed): the cgroup's cpu.max, or the process limits without cgroups. */
        cpu: z.union([z.number().positive().max(MAX_CONTAINER_CPUS), z.string().regex(/^\d+(\.\d+)?m?$/)]).optional(),
        /** "1G", "512M", "512Mi", or a number of MB. */
        memory: z
          .union([
            z.number().int().positive().max(MAX_CONTAINER_MEMORY_MB),
            z.string().regex(/^\d+(\.\d+)?\s*(K|M|G|Ki|Mi|Gi|KB|MB|GB)?$/i),
          ])
          .optional(),
      })
      .strict()
      .optional(),
    /** Replicas of the container (seed 001 has one; more share its requests). */
    replicas: z.number().int().min(1).max(MAX_CONTAINER_REPLICAS).optional(),
  })
  .strict();
const nameBody = z.object({ container_name: containerName }).strict();
const runBody = z
  .object({
    container_name: containerName,
    /** A sequence (the model's only or first task), or a native prediction body ({sequence, task_type, options, …}). */
    input: z.union([z.string(), z.record(z.string(), z.unknown())]),
    task_type: z.string().max(64).optional(),
    options: z.record(z.string(), z.unknown()).optional(),
    timeout_ms: z.number().int().positive().max(3_600_000).optional(),
  })
  .strict();

function cpusOf(q: string | number): number {
  if (typeof q === 'number') return q;
  return q.endsWith('m') ? Number(q.slice(0, -1)) / 1000 : Number(q);
}

/** One model as seed 001's list shows it. */
function modelEntry(gw: GatewayContext, name: string): Record<string, unknown> {
  const pkg = gw.registry.package(name);
  const m = pkg.manifest;
  return {
    model_id: name,
    version: m.version,
    model_type: m.tasks.map((t) => t.name).join(','),
    description: m.description,
    runtime: m.runtime,
    isolation: m.isolation,
    status: gw.registry.status(name),
    last_error: gw.registry.lastError(name) ?? null,
    path: pkg.dir,
    downloaded: existsSync(join(pkg.dir, PACKAGE_MARKER)),
    weights: m.weights ? { env: m.weights.env, source: m.weights.source ?? null, pulled: weightsOf(gw, name) } : null,
    containers: gw.containers.ofModel(name),
  };
}

async function runInContainer(
  dep: ModelDeployment,
  body: unknown,
  timeoutMs: number | undefined,
  req: FastifyRequest,
  reply: FastifyReply,
  gw: GatewayContext,
  container: string,
): Promise<unknown> {
  const outcome = new RequestOutcome(gw, callerOf(req), 'api.models.run');
  outcome.model = dep.name;
  outcome.dep = dep;
  outcome.sequences = 1;
  try {
    const parsed = parsePrediction(dep.pkg.manifest, body, 'single', 1);
    outcome.task = parsed.task.name;
    const work = { ...parsed, timeoutMs: timeoutMs ?? parsed.timeoutMs };
    const out = outputOf((await cancelOnDisconnect(reply, (signal) => run(outcome, dep, work, { signal })))[0]!);
    outcome.ok();
    return {
      container_name: container,
      model_id: dep.name,
      version: dep.version,
      task_type: parsed.task.name,
      output: out,
      processing_time: outcome.seconds(),
    };
  } catch (e) {
    outcome.failed(e);
    throw e;
  }
}

export function registerSeed001Routes(app: FastifyInstance, gw: GatewayContext): void {
  app.get('/api/models', PREDICT, async (req) => {
    const models = gw.registry.names().map((n) => modelEntry(gw, n));
    return okEnvelope(req, { models, total: models.length }, `${models.length} models`);
  });

  // Removes what a download installed: the package folder (the model leaves the gateway), or a
  // model's pulled weights. A package the operator put in the models dir is not the API's to delete.
  app.delete<{ Params: { id: string } }>('/api/models/:id', admin('models.remove'), async (req) => {
    const name = req.params.id;
    const pkg = gw.registry.package(name);
    const held = gw.containers.ofModel(name);
    if (held.length)
      throw new IsoError('CONFLICT', `model ${name} has containers (${held.join(', ')}): delete them first`, {
        containers: held,
      });
    if (existsSync(join(pkg.dir, PACKAGE_MARKER)) && pkg.dir.startsWith(gw.config.models_dir + '/')) {
      await gw.registry.unload(name);
      rmSync(pkg.dir, { recursive: true, force: true });
      await gw.registry.reload();
      return okEnvelope(req, { model_id: name, removed: 'package', path: pkg.dir }, `model ${name} deleted`);
    }
    const weightsDir = join(pullSettings(gw.config).weightsDir, name);
    if (weightsOf(gw, name)) {
      await gw.registry.unload(name);
      rmSync(weightsDir, { recursive: true, force: true });
      return okEnvelope(
        req,
        { model_id: name, removed: 'weights', path: weightsDir, status: gw.registry.status(name) },
        `weights of ${name} deleted`,
      );
    }
    throw new IsoError(
      'VALIDATION_ERROR',
      `model ${name} was not installed by a download (its folder ${pkg.dir} is the operator's): undeploy it with DELETE /api/v1/models/${name}, or remove the folder`,
    );
  });

  app.post('/api/containers/create', admin('containers.create'), async (req, reply) => {
    const b = parseBody(createBody, req.body);
    const m = gw.registry.package(b.model_id).manifest;
    const r = b.resources ?? {};
    const memoryMb =
      r.memory === undefined
        ? m.resources.memory_mb
        : typeof r.memory === 'number'
          ? r.memory
          : parseMemoryMb(r.memory);
    const cpus = r.cpu === undefined ? m.resources.cpus : cpusOf(r.cpu);
    if (!(cpus > 0)) throw new IsoError('VALIDATION_ERROR', 'resources.cpu must be more than 0');
    gw.containers.create({ name: b.container_name, model: b.model_id, cpus, memoryMb, replicas: b.replicas ?? 1 });
    return reply
      .code(201)
      .send(okEnvelope(req, gw.containers.describe(b.container_name), `container ${b.container_name} created`));
  });

  app.post('/api/containers/start', admin('containers.start'), async (req) => {
    const { container_name: name } = parseBody(nameBody, req.body);
    await gw.containers.start(name);
    return okEnvelope(req, gw.containers.describe(name), `container ${name} started`);
  });

  app.post('/api/containers/stop', admin('containers.stop'), async (req) => {
    const { container_name: name } = parseBody(nameBody, req.body);
    await gw.containers.stop(name);
    return okEnvelope(req, gw.containers.describe(name), `container ${name} stopped`);
  });

  app.post('/api/containers/delete', admin('containers.delete'), async (req) => {
    const { container_name: name } = parseBody(nameBody, req.body);
    await gw.containers.delete(name);
    return okEnvelope(req, { container_name: name, status: 'deleted' }, `container ${name} deleted`);
  });

  app.get('/api/containers', PREDICT, async (req) => {
    const containers = gw.containers.names().map((n) => gw.containers.describe(n));
    return okEnvelope(req, { containers, total: containers.length }, `${containers.length} containers`);
  });

  app.get<{ Params: { name: string } }>('/api/containers/:name', PREDICT, async (req) =>
    okEnvelope(req, gw.containers.describe(req.params.name), 'container'),
  );

  app.post('/api/models/run', PREDICT, async (req, reply) => {
    const b = parseBody(runBody, req.body);
    const dep = gw.containers.serving(b.container_name);
    const body =
      typeof b.input === 'string'
        ? {
            sequence: b.input,
            ...(b.task_type && { task_type: b.task_type }),
            ...(b.options && { options: b.options }),
          }
        : { ...b.input, ...(b.task_type && { task_type: b.task_type }), ...(b.options && { options: b.options }) };
    return okEnvelope(req, await runInContainer(dep, body, b.timeout_ms, req, reply, gw, b.container_name), 'done');
  });

  app.post('/api/models/download', admin('models.download'), async (req, reply) => {
    const b = parseBody(downloadBody, req.body);
    const known = gw.registry.names().includes(b.model_id);
    const manifest = known ? gw.registry.package(b.model_id).manifest : undefined;
    const kind = b.kind ?? (manifest?.weights ? 'weights' : 'package');
    if (kind === 'weights' && !manifest)
      throw new IsoError('MODEL_NOT_FOUND', `no model ${b.model_id}: download its package first`);
    const source = b.source ?? (kind === 'weights' ? manifest?.weights?.source : undefined);
    if (!source) {
      if (known && kind === 'package') {
        return okEnvelope(
          req,
          {
            model_id: b.model_id,
            model_type: b.model_type ?? null,
            kind,
            status: gw.registry.status(b.model_id),
            path: gw.registry.package(b.model_id).dir,
            downloaded: false,
          },
          `model ${b.model_id} is already installed`,
        );
      }
      throw new IsoError(
        'INVALID_REQUEST',
        kind === 'weights'
          ? `model ${b.model_id} names no default weights source (weights.source): give source`
          : `model ${b.model_id} is not installed: give source (a folder, a .tar.gz, an http(s) URL or hf:<org>/<repo>[@revision])`,
      );
    }
    const { signal, done } = abortOnDisconnect(reply);
    let result: PullResult;
    try {
      result = await pull(
        kind === 'weights'
          ? { source, forModel: b.model_id, forManifest: manifest, include: b.include, signal }
          : { source, expectName: b.model_id, force: b.force, include: b.include, signal },
        pullSettings(gw.config),
      );
    } finally {
      done();
    }
    let load: { status: string; error: string | null };
    if (kind === 'weights') load = await restartWithWeights(gw, b.model_id);
    else {
      await gw.registry.reload();
      load = { status: gw.registry.status(b.model_id), error: gw.registry.lastError(b.model_id) ?? null };
    }
    const message = `${kind === 'weights' ? `weights of ${b.model_id}` : `model ${b.model_id}`} downloaded (${result.files} files, ${result.bytes} bytes); ${load.status}`;
    return reply.code(201).send(
      okEnvelope(
        req,
        {
          model_id: b.model_id,
          model_type: b.model_type ?? null,
          ...result,
          status: load.status,
          last_error: load.error,
          downloaded: true,
        },
        message,
      ),
    );
  });
}

/** What a model's pulled weights are (for listings): the marker's contents, or null. */
export function weightsOf(gw: GatewayContext, model: string): Record<string, unknown> | null {
  return pulledWeightsInfo(pullSettings(gw.config).weightsDir, model);
}
