// Open Inference Protocol v2 (KServe / Triton REST) under /v2, after
// shared/spec/open_inference_rest_v2.yaml, plus the model repository extension (index, load,
// unload). Every model takes one BYTES input tensor "sequences"; what its task returns is
// mapped to typed output tensors (docs/open-inference.md). Errors are {error: "message"}.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { IsoError, fromWorkerError } from '../../errors.js';
import type { Gateway } from '../../gateway.js';
import type { Manifest, TaskSpec } from '../../manifest/schema.js';
import { PACKAGE_ROOT } from '../../paths.js';
import type { ModelStatus } from '../../scheduler/registry.js';
import { parseSequenceType, taskRule, validateSequence } from '../../validation/sequence.js';
import { isItemError, type ItemOutput, type WorkItem } from '../../worker/protocol.js';
import { batchTooLarge } from '../batch-limit.js';
import { toIsoError } from '../envelope.js';
import { resolveTask } from '../predict-request.js';
import { asIsoError, recordRequest, runChunked } from './agent.js';
import { stickyKey } from '../sticky.js';
import { admin, PREDICT, PUBLIC } from '../../security/route-scope.js';

export const OIP_PREFIX = '/v2';
export const SEQUENCES_INPUT = 'sequences';
/** Protocol extensions this server implements (the server metadata lists them). */
export const OIP_EXTENSIONS = ['model_repository'];

const SERVER_VERSION: string = (() => {
  try {
    return (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version?: string }).version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
})();

export type Datatype = 'BOOL' | 'INT64' | 'FP32' | 'FP64' | 'BYTES';

export interface MetadataTensor {
  name: string;
  datatype: Datatype;
  shape: number[];
  parameters?: Record<string, unknown>;
}

export interface OutputTensor extends MetadataTensor {
  data: unknown[];
}

export function platformOf(m: Manifest): string {
  return m.runtime === 'onnx' ? 'onnxruntime' : `isomodel-${m.runtime}`;
}

// ---------------------------------------------------------------------------------------------
// Tensor mapping. One output tensor per field of the model's output objects, in the order the
// fields first appear; the batch dimension comes first:
//   every value a boolean                      -> BOOL  [n]
//   every value a finite number                -> FP64  [n]      (exact: models compute in doubles)
//   every value a numeric array of one length d -> FP32  [n, d]   (embeddings and other vectors)
//   every value a string                       -> BYTES [n]      (the string itself)
//   anything else (objects, lists, nulls, mix) -> BYTES [n]      (each value as JSON text)
// A field missing from an item counts as null.

const isNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isVector = (v: unknown): v is number[] => Array.isArray(v) && v.length > 0 && v.every(isNum);

function tensorFor(name: string, values: unknown[]): OutputTensor {
  const n = values.length;
  if (values.every((v) => typeof v === 'boolean')) return { name, datatype: 'BOOL', shape: [n], data: values };
  if (values.every(isNum)) return { name, datatype: 'FP64', shape: [n], data: values };
  if (values.every(isVector)) {
    const d = values[0]!.length;
    if (values.every((v) => v.length === d)) return { name, datatype: 'FP32', shape: [n, d], data: values.flat() };
  }
  if (values.every((v) => typeof v === 'string')) return { name, datatype: 'BYTES', shape: [n], data: values, parameters: { content_type: 'str' } };
  return { name, datatype: 'BYTES', shape: [n], data: values.map((v) => JSON.stringify(v ?? null)), parameters: { content_type: 'json' } };
}

export function outputsToTensors(outputs: ItemOutput[]): OutputTensor[] {
  const names: string[] = [];
  const seen = new Set<string>();
  for (const o of outputs) {
    for (const k of Object.keys(o)) {
      if (!seen.has(k)) {
        seen.add(k);
        names.push(k);
      }
    }
  }
  // Own fields only: an item without a field named "constructor" or "__proto__" has null there, not Object.prototype's.
  return names.map((k) => tensorFor(k, outputs.map((o) => (Object.hasOwn(o, k) ? (o[k] ?? null) : null))));
}

/** What a task's output tensors look like, from the output example in its manifest. */
function declaredOutputs(task: TaskSpec): MetadataTensor[] {
  const ex = task.output.example;
  if (typeof ex !== 'object' || ex === null || Array.isArray(ex)) return [];
  return Object.entries(ex as Record<string, unknown>).map(([name, v]) => {
    const t = tensorFor(name, [v]);
    const shape = t.shape.length === 2 ? [-1, -1] : [-1];
    return { name, datatype: t.datatype, shape };
  });
}

export function modelMetadata(gw: Gateway, name: string): Record<string, unknown> {
  const m = gw.registry.package(name).manifest;
  const outputs = new Map<string, MetadataTensor & { parameters: { task_types: string[] } }>();
  for (const task of m.tasks) {
    for (const t of declaredOutputs(task)) {
      const prev = outputs.get(t.name);
      if (!prev) outputs.set(t.name, { ...t, parameters: { task_types: [task.name] } });
      else {
        prev.parameters.task_types.push(task.name);
        if (prev.datatype !== t.datatype || prev.shape.length !== t.shape.length) Object.assign(prev, { datatype: 'BYTES', shape: [-1] });
      }
    }
  }
  return {
    name: m.name,
    versions: gw.registry.versions(m.name).map((v) => v.version),
    platform: platformOf(m),
    inputs: [{ name: SEQUENCES_INPUT, datatype: 'BYTES', shape: [-1] }],
    outputs: [...outputs.values()],
    parameters: {
      task_types: m.tasks.map((t) => t.name),
      default_task_type: m.tasks.length === 1 ? m.tasks[0]!.name : null,
      sequence_types: [...new Set(m.tasks.flatMap((t) => t.sequence_types))],
      description: m.description,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Addressing.

/** The id a route names: `name` (default version / traffic split) or `name@version`. */
function modelIdOf(gw: Gateway, name: string, version?: string): string {
  gw.registry.package(name);
  if (version === undefined) return name;
  const versions = gw.registry.versions(name).map((v) => v.version);
  if (!versions.includes(version)) {
    throw new IsoError('NOT_FOUND', `model ${name} has no version "${version.slice(0, 64)}"; available versions: ${versions.join(', ')}`, { versions });
  }
  return `${name}@${version}`;
}

function notReadyReason(gw: Gateway, id: string): string | null {
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
// Inference request.

interface ParsedInfer {
  id?: string;
  task: TaskSpec;
  items: WorkItem[];
  requested?: string[];
  sequenceType?: string;
}

function bad(message: string): IsoError {
  return new IsoError('INVALID_REQUEST', message);
}

/** The leaves of nested lists, or null as soon as there are more than `max`. */
function flattenAtMost(data: unknown, max: number): unknown[] | null {
  const out: unknown[] = [];
  const walk = (d: unknown): boolean => {
    if (!Array.isArray(d)) {
      out.push(d);
      return out.length <= max;
    }
    for (const x of d) if (!walk(x)) return false;
    return true;
  };
  return walk(data) ? out : null;
}

function parseInfer(m: Manifest, body: unknown, maxBatch: number): ParsedInfer {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw bad('request body must be a JSON inference request object');
  const b = body as Record<string, unknown>;
  if (b.id !== undefined && typeof b.id !== 'string') throw bad('id must be a string');
  const params = b.parameters ?? {};
  if (typeof params !== 'object' || params === null || Array.isArray(params)) throw bad('parameters must be an object');
  const { task_type: taskType, sequence_type: seqType, ...options } = params as Record<string, unknown>;
  if (taskType !== undefined && typeof taskType !== 'string') throw bad('parameters.task_type must be a string');
  const task = resolveTask(m, taskType);
  const declared = parseSequenceType(seqType);

  if (!Array.isArray(b.inputs) || b.inputs.length === 0) throw bad(`inputs is required: one BYTES tensor "${SEQUENCES_INPUT}" of shape [n]`);
  const inputs = b.inputs as unknown[];
  if (!inputs.every((i) => typeof i === 'object' && i !== null && !Array.isArray(i) && typeof (i as { name?: unknown }).name === 'string')) {
    throw bad('every input must be an object with a name');
  }
  const named = inputs as { name: string; datatype?: unknown; shape?: unknown; data?: unknown; parameters?: unknown }[];
  const input = named.length === 1 ? named[0]! : named.find((i) => i.name === SEQUENCES_INPUT);
  if (!input) throw bad(`model ${m.name} takes one input, "${SEQUENCES_INPUT}"; got ${named.map((i) => `"${i.name.slice(0, 64)}"`).join(', ')}`);
  const extra = named.filter((i) => i !== input);
  if (extra.length) throw bad(`unexpected input "${extra[0]!.name.slice(0, 64)}": model ${m.name} takes one input, "${SEQUENCES_INPUT}"`);
  if (input.datatype !== 'BYTES') throw bad(`input "${input.name.slice(0, 64)}" must have datatype BYTES (got ${JSON.stringify(input.datatype ?? null).slice(0, 32)})`);
  const ip = input.parameters as Record<string, unknown> | undefined;
  if (ip && typeof ip === 'object' && 'binary_data_size' in ip) throw bad('binary tensor data is not supported; send the sequences as JSON strings');
  const shape = input.shape;
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && (d as number) >= 0)) throw bad('input shape must be a list of non-negative integers');
  const shown = `[${shape.slice(0, 8).join(', ')}${shape.length > 8 ? ', …' : ''}]`;
  if (!(shape.length === 1 || (shape.length === 2 && shape[1] === 1))) throw bad(`input shape must be [n] or [n, 1] (got ${shown})`);
  // The one input tensor is every element of the request: its shape's product ([n] or [n, 1])
  // and its data are held to max_batch_sequences, as the other surfaces' sequence lists, before
  // the data is read (260,000 items went through before).
  const n = shape[0] as number;
  if (n > maxBatch) throw batchTooLarge(n, maxBatch);
  if (!Array.isArray(input.data)) throw bad('input data must be a list of strings');
  const data = flattenAtMost(input.data, maxBatch);
  if (!data) throw batchTooLarge(`more than ${maxBatch}`, maxBatch);
  if (data.length !== n) throw bad(`input shape ${shown} holds ${n} elements but data has ${data.length}`);
  if (n === 0) throw bad('input holds no sequence');

  const rule = taskRule(task);
  const items = data.map((raw, i): WorkItem => {
    const field = `${input.name.slice(0, 64)}[${i}]`;
    if (typeof raw !== 'string') throw bad(`${field} must be a string`);
    return { sequence: validateSequence(raw, rule, declared, field).sequence, options };
  });

  let requested: string[] | undefined;
  if (b.outputs !== undefined) {
    if (!Array.isArray(b.outputs) || !b.outputs.every((o) => typeof o === 'object' && o !== null && typeof (o as { name?: unknown }).name === 'string')) {
      throw bad('outputs must be a list of {name}');
    }
    requested = (b.outputs as { name: string }[]).map((o) => o.name);
  }
  return { id: b.id as string | undefined, task, items, requested, sequenceType: declared };
}

// ---------------------------------------------------------------------------------------------
// Routes.

interface ModelParams {
  name: string;
  version?: string;
}

export function registerOipRoutes(app: FastifyInstance, gw: Gateway): void {
  void app.register(
    async (v2) => {
      // The protocol's error object, in place of the native envelope, for everything under /v2.
      v2.setErrorHandler((err, req, reply) => {
        const iso = toIsoError(err);
        if (iso.code === 'INTERNAL_ERROR') req.log.error({ err, reqId: req.id }, 'unhandled error');
        if (iso.retryAfterS !== undefined) void reply.header('retry-after', String(iso.retryAfterS));
        return reply.code(iso.status).send({ error: iso.message });
      });
      v2.setNotFoundHandler((req, reply) => reply.code(404).send({ error: `no route ${req.method} ${req.url.split('?')[0]}` }));

      v2.get('/', PREDICT, async () => ({ name: 'isomodel', version: SERVER_VERSION, extensions: OIP_EXTENSIONS }));

      v2.get('/health/live', PUBLIC, async () => ({ live: true }));

      v2.get('/health/ready', PUBLIC, async (_req, reply) => {
        if (!gw.started) return reply.code(400).send({ error: 'server is still loading its models' });
        const notReady = gw.requiredModels().flatMap((n) => notReadyReason(gw, n) ?? []);
        if (notReady.length) return reply.code(400).send({ error: `not ready: ${notReady.join('; ')}` });
        return { ready: true };
      });

      const metadata = async (req: FastifyRequest<{ Params: ModelParams }>) => modelMetadata(gw, modelIdOf(gw, req.params.name, req.params.version));
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
        const t0 = performance.now();
        let model: string | undefined;
        let task: string | undefined;
        let sequences = 0;
        try {
          const id = modelIdOf(gw, req.params.name, req.params.version);
          model = req.params.name;
          const dep = gw.registry.serving(id, stickyKey(req));
          const parsed = parseInfer(dep.pkg.manifest, req.body, gw.config.max_batch_sequences);
          task = parsed.task.name;
          sequences = parsed.items.length;
          const outputs = await runChunked(gw, reply, dep, parsed.task.name, parsed.items);
          // Tensors are dense: one failed sequence fails the request, naming it.
          const failedAt = outputs.findIndex((o) => isItemError(o));
          if (failedAt >= 0) {
            const e = (outputs[failedAt] as { error: { code: string; message: string } }).error;
            const iso = fromWorkerError(e.code, `${SEQUENCES_INPUT}[${failedAt}]: ${e.message}`);
            throw iso;
          }
          let tensors = outputsToTensors(outputs);
          if (parsed.requested) {
            const missing = parsed.requested.filter((r) => !tensors.some((t) => t.name === r));
            if (missing.length) {
              throw bad(`unknown output "${missing[0]!.slice(0, 64)}"; ${parsed.task.name} returns: ${tensors.map((t) => t.name).join(', ')}`);
            }
            tensors = parsed.requested.map((r) => tensors.find((t) => t.name === r)!);
          }
          recordRequest(gw, req, { model, task, route: 'oip', sequences, t0, dep });
          return {
            model_name: dep.name,
            model_version: dep.version,
            id: parsed.id ?? req.id,
            parameters: { task_type: parsed.task.name, ...(parsed.sequenceType ? { sequence_type: parsed.sequenceType } : {}) },
            outputs: tensors,
          };
        } catch (e) {
          recordRequest(gw, req, { model, task, route: 'oip', sequences, t0, error: asIsoError(e) });
          throw e;
        }
      };
      v2.post('/models/:name/infer', PREDICT, infer);
      v2.post('/models/:name/versions/:version/infer', PREDICT, infer);

      v2.post('/repository/index', PREDICT, async (req) => {
        const body = (req.body ?? {}) as { ready?: unknown };
        if (typeof body !== 'object' || body === null || Array.isArray(body)) throw bad('request body must be a JSON object');
        if (body.ready !== undefined && typeof body.ready !== 'boolean') throw bad('ready must be a boolean');
        // One row per version, as Triton lists a model repository.
        const rows = gw.registry.names().flatMap((n) =>
          gw.registry.versions(n).map((v) => {
            const state = repositoryState(v.status);
            const reason = state === 'READY' ? '' : v.status === 'loading' ? 'loading' : (notReadyReason(gw, `${n}@${v.version}`) ?? v.status);
            return { name: n, version: v.version, state, reason };
          }),
        );
        return body.ready === true ? rows.filter((r) => r.state === 'READY') : rows;
      });

      v2.post<{ Params: { name: string } }>('/repository/models/:name/load', admin('models.load'), async (req, reply) => {
        await gw.registry.load(req.params.name);
        return reply.code(200).send();
      });
      v2.post<{ Params: { name: string } }>('/repository/models/:name/unload', admin('models.unload'), async (req, reply) => {
        await gw.registry.unload(req.params.name);
        return reply.code(200).send();
      });
    },
    { prefix: OIP_PREFIX },
  );
}
