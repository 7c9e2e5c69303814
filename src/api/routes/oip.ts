// Open Inference Protocol v2 (KServe / Triton REST) under /v2, after
// shared/spec/open_inference_rest_v2.yaml, plus the model repository extension (index, load,
// unload). A task's inputs follow its input_type: tensor tasks take their declared named tensors
// with a batch dimension first; every other type is one BYTES tensor of n elements (sequences,
// text, JSON text, base64 images or audio). What the task returns is mapped to typed output
// tensors (docs/open-inference.md). Errors are {error: "CODE: message"}.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { IsoError, fromWorkerError } from '../../errors.js';
import type { GatewayContext } from '../context.js';
import type { Manifest } from '../../manifest/schema.js';
import { PACKAGE_VERSION } from '../../paths.js';
import type { ModelStatus } from '../../scheduler/registry.js';
import { isItemError } from '../../worker/protocol.js';
import { toIsoError } from '../envelope.js';
import {
  bad,
  declaredInputs,
  declaredOutputs,
  outputsToTensors,
  parseInfer,
  type MetadataTensor,
} from '../oip-tensors.js';
import { cancelOnDisconnect } from '../disconnect.js';
import { callerOf } from '../caller.js';
import { RequestOutcome } from '../../inference/outcome.js';
import { run, serving } from '../../inference/run.js';
import { stickyKey } from '../sticky.js';
import { admin, PREDICT, PUBLIC } from '../../security/route-scope.js';

export const OIP_PREFIX = '/v2';
/** Protocol extensions this server implements (the server metadata lists them). */
export const OIP_EXTENSIONS = ['model_repository'];

export function platformOf(m: Manifest): string {
  return m.runtime === 'onnx' ? 'onnxruntime' : `isomodel-${m.runtime}`;
}

export function modelMetadata(gw: GatewayContext, name: string): Record<string, unknown> {
  const m = gw.registry.package(name).manifest;
  const outputs = new Map<string, MetadataTensor & { parameters: { task_types: string[] } }>();
  for (const task of m.tasks) {
    for (const t of declaredOutputs(task)) {
      const prev = outputs.get(t.name);
      if (!prev) outputs.set(t.name, { ...t, parameters: { task_types: [task.name] } });
      else {
        prev.parameters.task_types.push(task.name);
        if (prev.datatype !== t.datatype || prev.shape.length !== t.shape.length)
          Object.assign(prev, { datatype: 'BYTES', shape: [-1] });
      }
    }
  }
  // Inputs: one entry per distinct declaration (name, datatype, shape, parameters); the tasks that
  // take it are listed when not every task does.
  const inputs: { t: MetadataTensor; key: string; tasks: string[] }[] = [];
  for (const task of m.tasks) {
    for (const t of declaredInputs(task)) {
      const key = JSON.stringify(t);
      const prev = inputs.find((x) => x.key === key);
      if (prev) prev.tasks.push(task.name);
      else inputs.push({ t, key, tasks: [task.name] });
    }
  }
  return {
    name: m.name,
    versions: gw.registry.versions(m.name).map((v) => v.version),
    platform: platformOf(m),
    inputs: inputs.map(({ t, tasks }) =>
      tasks.length === m.tasks.length ? t : { ...t, parameters: { ...t.parameters, task_types: tasks } },
    ),
    outputs: [...outputs.values()],
    parameters: {
      task_types: m.tasks.map((t) => t.name),
      default_task_type: m.tasks.length === 1 ? m.tasks[0]!.name : null,
      sequence_types: [...new Set(m.tasks.flatMap((t) => t.sequence_types))],
      input_types: Object.fromEntries(m.tasks.map((t) => [t.name, t.input_type])),
      description: m.description,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Addressing.

/** The id a route names: `name` (default version / traffic split) or `name@version`. */
function modelIdOf(gw: GatewayContext, name: string, version?: string): string {
  gw.registry.package(name);
  if (version === undefined) return name;
  const versions = gw.registry.versions(name).map((v) => v.version);
  if (!versions.includes(version)) {
    throw new IsoError(
      'NOT_FOUND',
      `model ${name} has no version "${version.slice(0, 64)}"; available versions: ${versions.join(', ')}`,
      { versions },
    );
  }
  return `${name}@${version}`;
}

function notReadyReason(gw: GatewayContext, id: string): string | null {
  const status = gw.registry.status(id);
  const d = gw.registry.deployment(id);
  if (status === 'ready' && d?.healthy()) return null;
  if (status === 'ready') return `model ${id} has a replica restarting`;
  const err = gw.registry.lastError(id);
  return `model ${id} is ${status}${err ? `: ${err}` : ''}`;
}

type RepoState = 'READY' | 'LOADING' | 'UNAVAILABLE';
function repositoryState(status: ModelStatus): RepoState {
  return status === 'ready' ? 'READY' : status === 'loading' ? 'LOADING' : 'UNAVAILABLE';
}

// ---------------------------------------------------------------------------------------------
// Routes.

interface ModelParams {
  name: string;
  version?: string;
}

export function registerOipRoutes(app: FastifyInstance, gw: GatewayContext): void {
  void app.register(
    async (v2) => {
      // The protocol's error object, in place of the native envelope, for everything under /v2.
      v2.setErrorHandler((err, req, reply) => {
        const iso = toIsoError(err);
        if (iso.code === 'INTERNAL_ERROR') req.log.error({ err, reqId: req.id }, 'unhandled error');
        if (iso.retryAfterS !== undefined) void reply.header('retry-after', String(iso.retryAfterS));
        // The protocol's error is one string: it starts with the stable isomodel code.
        return reply.code(iso.status).send({ error: `${iso.code}: ${iso.message}` });
      });
      v2.setNotFoundHandler((req, reply) =>
        reply.code(404).send({ error: `no route ${req.method} ${req.url.split('?')[0]}` }),
      );

      v2.get('/', PREDICT, async () => ({ name: 'isomodel', version: PACKAGE_VERSION, extensions: OIP_EXTENSIONS }));

      v2.get('/health/live', PUBLIC, async () => ({ live: true }));

      v2.get('/health/ready', PUBLIC, async (_req, reply) => {
        if (!gw.started) return reply.code(400).send({ error: 'server is still loading its models' });
        const notReady = gw.requiredModels().flatMap((n) => notReadyReason(gw, n) ?? []);
        if (notReady.length) return reply.code(400).send({ error: `not ready: ${notReady.join('; ')}` });
        return { ready: true };
      });

      const metadata = async (req: FastifyRequest<{ Params: ModelParams }>) =>
        modelMetadata(gw, modelIdOf(gw, req.params.name, req.params.version));
      v2.get('/models/:name', PREDICT, metadata);
      v2.get('/models/:name/versions/:version', PREDICT, metadata);

      const ready = async (req: FastifyRequest<{ Params: ModelParams }>, reply: FastifyReply) => {
        const id = modelIdOf(gw, req.params.name, req.params.version);
        const why = notReadyReason(gw, id);
        if (why) return reply.code(400).send({ error: why });
        const m = gw.registry.package(id).manifest;
        return { name: m.name, version: m.version, ready: true };
      };
      v2.get('/models/:name/ready', PREDICT, ready);
      v2.get('/models/:name/versions/:version/ready', PREDICT, ready);

      const infer = async (req: FastifyRequest<{ Params: ModelParams }>, reply: FastifyReply) => {
        const outcome = new RequestOutcome(gw, callerOf(req), 'oip');
        try {
          const id = modelIdOf(gw, req.params.name, req.params.version);
          outcome.model = req.params.name;
          const dep = serving(gw, outcome, id, stickyKey(req));
          const parsed = parseInfer(dep.pkg.manifest, req.body, gw.config.max_batch_sequences);
          const outputs = await cancelOnDisconnect(reply, (signal) => run(outcome, dep, parsed, { signal }));
          // Tensors are dense: one failed sequence fails the request, naming it.
          const failedAt = outputs.findIndex((o) => isItemError(o));
          if (failedAt >= 0) {
            const e = (outputs[failedAt] as { error: { code: string; message: string } }).error;
            throw fromWorkerError(e.code, `${parsed.itemName(failedAt)}: ${e.message}`);
          }
          let tensors = outputsToTensors(outputs);
          if (parsed.requested) {
            const missing = parsed.requested.filter((r) => !tensors.some((t) => t.name === r));
            if (missing.length) {
              throw bad(
                `unknown output "${missing[0]!.slice(0, 64)}"; ${parsed.task.name} returns: ${tensors.map((t) => t.name).join(', ')}`,
              );
            }
            tensors = parsed.requested.map((r) => tensors.find((t) => t.name === r)!);
          }
          outcome.ok();
          return {
            model_name: dep.name,
            model_version: dep.version,
            id: parsed.id ?? req.id,
            parameters: {
              task_type: parsed.task.name,
              ...(parsed.sequenceType ? { sequence_type: parsed.sequenceType } : {}),
            },
            outputs: tensors,
          };
        } catch (e) {
          outcome.failed(e);
          throw e;
        }
      };
      // Inference bodies may carry base64 images and audio: the prediction routes' larger limit.
      const inferRoute = { ...PREDICT, bodyLimit: gw.config.predict_body_limit_bytes };
      v2.post('/models/:name/infer', inferRoute, infer);
      v2.post('/models/:name/versions/:version/infer', inferRoute, infer);

      v2.post('/repository/index', PREDICT, async (req) => {
        const body = (req.body ?? {}) as { ready?: unknown };
        if (typeof body !== 'object' || body === null || Array.isArray(body))
          throw bad('request body must be a JSON object');
        if (body.ready !== undefined && typeof body.ready !== 'boolean') throw bad('ready must be a boolean');
        // One row per version, as Triton lists a model repository.
        const rows = gw.registry.names().flatMap((n) =>
          gw.registry.versions(n).map((v) => {
            const state = repositoryState(v.status);
            const reason =
              state === 'READY'
                ? ''
                : v.status === 'loading'
                  ? 'loading'
                  : (notReadyReason(gw, `${n}@${v.version}`) ?? v.status);
            return { name: n, version: v.version, state, reason };
          }),
        );
        return body.ready === true ? rows.filter((r) => r.state === 'READY') : rows;
      });

      for (const op of ['load', 'unload'] as const) {
        v2.post<{ Params: { name: string } }>(
          `/repository/models/:name/${op}`,
          admin(`models.${op}`),
          async (req, reply) => {
            await gw.registry[op](req.params.name);
            return reply.code(200).send();
          },
        );
      }
    },
    { prefix: OIP_PREFIX },
  );
}
