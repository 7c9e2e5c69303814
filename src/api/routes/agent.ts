// The Agent API under /agent: a small surface for LLM agents and tool runners. They ask which
// model fits a task and a sequence type, then analyse sequences without knowing model names.
// Everything is derived from the manifests; see docs/agent-api.md for shapes and the model
// choice rules. Errors are the native envelope {success:false, message, error:{code, details}}.
import { performance } from 'node:perf_hooks';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { cancelOnDisconnect } from '../disconnect.js';
import { IsoError, fromWorkerError } from '../../errors.js';
import type { Gateway } from '../../gateway.js';
import { SEQUENCE_TYPES, type SequenceType, type TaskSpec } from '../../manifest/schema.js';
import type { ModelDeployment } from '../../scheduler/deployment.js';
import type { ModelStatus } from '../../scheduler/registry.js';
import { ALPHABETS, detectSequenceType, normaliseSequence, parseSequenceType, taskRule, validateSequence } from '../../validation/sequence.js';
import { isItemError, type ItemOutput, type WorkItem } from '../../worker/protocol.js';
import { describeZod } from '../../validation/zod-message.js';
import { admin, PREDICT, PUBLIC } from '../../security/route-scope.js';
import { checkBatchSize } from '../batch-limit.js';

export const AGENT_PREFIX = '/agent';

// ---------------------------------------------------------------------------------------------
// Shared with the Open Inference Protocol routes: run many sequences, record the request.

export interface RunOptions {
  timeoutMs?: number;
  priority?: number;
}

/**
 * Submits items in chunks of the gateway's max_batch_sequences (one chunk after the other, so a
 * large request cannot flood the model's queue) and returns one output per item, in order. A
 * client that disconnects cancels whatever is still queued.
 */
export async function runChunked(gw: Gateway, reply: FastifyReply, dep: ModelDeployment, task: string, items: WorkItem[], opts: RunOptions = {}): Promise<ItemOutput[]> {
  return cancelOnDisconnect(reply, async (signal) => {
    const size = Math.max(1, gw.config.max_batch_sequences);
    const outputs: ItemOutput[] = [];
    for (let i = 0; i < items.length; i += size) {
      const chunk = items.slice(i, i + size);
      const out = await dep.submit({ task, items: chunk, timeoutMs: opts.timeoutMs, priority: opts.priority, signal });
      outputs.push(...out);
    }
    return outputs;
  });
}

export interface RequestRecord {
  /** A model name the registry knows; nothing is recorded for anything else. */
  model?: string;
  /** A task the manifest declares (never client text: it becomes a metric label). */
  task?: string;
  route: string;
  sequences: number;
  t0: number;
  error?: IsoError;
  /** The deployment that served it (one version under a traffic split); else the model's default. */
  dep?: ModelDeployment;
}

/** Per-model stats, Prometheus counters and the SQLite request log, as the native routes keep them. */
export function recordRequest(gw: Gateway, req: FastifyRequest, r: RequestRecord): void {
  if (!r.model || r.error?.code === 'MODEL_NOT_FOUND') return;
  const latency = performance.now() - r.t0;
  const ok = r.error === undefined;
  const dep = r.dep ?? gw.registry.deployment(r.model);
  dep?.stats.record(ok, latency, r.sequences, r.error?.code);
  if (dep) gw.metrics.observeRequest(dep.name, dep.version, r.task ?? 'unknown', ok, r.error?.code ?? 'OK', latency / 1000, r.sequences);
  if (dep && r.route === 'api.batch_inference') gw.metrics.observeBatchRequest(dep.name, dep.version, ok);
  gw.store.logRequest({
    request_id: req.id,
    model: r.model,
    version: dep?.version,
    task: r.task,
    route: r.route,
    status: ok ? 'success' : 'error',
    error_code: r.error?.code,
    sequences: r.sequences,
    latency_ms: latency,
    client: req.ip,
  });
}

export function asIsoError(e: unknown): IsoError {
  return e instanceof IsoError ? e : new IsoError('INTERNAL_ERROR', 'internal error');
}

// ---------------------------------------------------------------------------------------------
// Model choice.

export interface Candidate {
  name: string;
  version: string;
  status: ModelStatus;
  /** Ready and every replica that should run is running. */
  ready: boolean;
  agent_priority: number;
  /** Sequence types the matching task accepts. */
  sequence_types: SequenceType[];
  /** Number of tasks of the model. */
  task_count: number;
}

/** Readiness order: a serving model first, then one on its way, then one that must be loaded; failed last. */
const STATUS_RANK: Record<ModelStatus, number> = { ready: 1, loading: 2, unloaded: 3, stopped: 3, draining: 4, needs_weights: 5, failed: 5 };

function readinessRank(c: Candidate): number {
  return c.ready ? 0 : STATUS_RANK[c.status];
}

/**
 * `metadata.agent_priority` of a manifest: a number for every task, or a map from task name to
 * number. Higher wins; absent or not a finite number is 0.
 */
export function agentPriority(metadata: Record<string, unknown>, task: string): number {
  const p = metadata.agent_priority;
  // Own entries only: a task named "constructor" must not read Object.prototype's.
  const v = typeof p === 'object' && p !== null && !Array.isArray(p) ? (Object.hasOwn(p, task) ? (p as Record<string, unknown>)[task] : undefined) : p;
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}

/** Tie-break order of two candidates; the comparison and its reason are kept together. */
const CRITERIA: { cmp: (a: Candidate, b: Candidate) => number; why: (a: Candidate, b: Candidate) => string }[] = [
  {
    cmp: (a, b) => readinessRank(a) - readinessRank(b),
    why: (a, b) => `it is ${a.ready ? 'loaded and ready' : a.status} while ${b.name} is ${b.ready ? 'ready' : b.status}`,
  },
  {
    cmp: (a, b) => b.agent_priority - a.agent_priority,
    why: (a, b) => `its agent_priority ${a.agent_priority} is higher than ${b.name}'s ${b.agent_priority}`,
  },
  {
    cmp: (a, b) => a.sequence_types.length - b.sequence_types.length,
    why: (a, b) => `it is more specialised: its task accepts ${a.sequence_types.length} sequence type(s), ${b.name}'s ${b.sequence_types.length}`,
  },
  {
    cmp: (a, b) => a.task_count - b.task_count,
    why: (a, b) => `it is more specialised: ${a.task_count} task(s) against ${b.task_count} for ${b.name}`,
  },
  { cmp: (a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0), why: (_a, b) => `its name sorts before ${b.name} (all else equal)` },
];

function compareCandidates(a: Candidate, b: Candidate): number {
  for (const c of CRITERIA) {
    const d = c.cmp(a, b);
    if (d !== 0) return d;
  }
  return 0;
}

/** Every model with a task of this name that accepts the sequence type (any type when absent), best first. */
export function rankCandidates(gw: Gateway, task: string, type?: SequenceType): Candidate[] {
  const out: Candidate[] = [];
  for (const name of gw.registry.names()) {
    const m = gw.registry.package(name).manifest;
    const t = m.tasks.find((x) => x.name === task);
    if (!t || (type && !t.sequence_types.includes(type))) continue;
    const status = gw.registry.status(name);
    out.push({
      name,
      version: m.version,
      status,
      ready: status === 'ready' && (gw.registry.deployment(name)?.healthy() ?? false),
      agent_priority: agentPriority(m.metadata, task),
      sequence_types: [...t.sequence_types],
      task_count: m.tasks.length,
    });
  }
  return out.sort(compareCandidates);
}

export function explainChoice(candidates: Candidate[], task: string, type?: SequenceType): string {
  const best = candidates[0]!;
  const what = `${task}${type ? ` on ${type} sequences` : ''}`;
  if (candidates.length === 1) return `${best.name} is the only model that runs ${what}${best.ready ? '' : ` (it is ${best.status})`}`;
  const second = candidates[1]!;
  const decisive = CRITERIA.find((c) => c.cmp(best, second) !== 0) ?? CRITERIA[CRITERIA.length - 1]!;
  return `${best.name} is chosen among ${candidates.length} models that run ${what} because ${decisive.why(best, second)}`;
}

/** Union of the task names of every manifest, sorted. */
export function allTasks(gw: Gateway): string[] {
  return [...new Set(gw.registry.names().flatMap((n) => gw.registry.package(n).manifest.tasks.map((t) => t.name)))].sort();
}

function unknownTask(gw: Gateway, task: string): IsoError {
  const tasks = allTasks(gw);
  return new IsoError('INVALID_REQUEST', `unknown task_type "${task.slice(0, 64)}"; available: ${tasks.join(', ') || 'none (no models installed)'}`, { tasks });
}

function noModelFits(gw: Gateway, task: string, type?: SequenceType): IsoError {
  const withTask = rankCandidates(gw, task).map((c) => ({ model: c.name, sequence_types: c.sequence_types }));
  return new IsoError(
    'MODEL_NOT_FOUND',
    `no model runs ${task}${type ? ` on ${type} sequences` : ''}; ${withTask.map((c) => `${c.model} takes ${c.sequence_types.join('/')}`).join(', ') || 'no model has this task'}`,
    { task_type: task, sequence_type: type ?? null, models_with_task: withTask },
  );
}

// ---------------------------------------------------------------------------------------------
// Request bodies.

function requireObject(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new IsoError('INVALID_REQUEST', 'request body must be a JSON object');
  return body as Record<string, unknown>;
}

function requireTaskType(gw: Gateway, v: unknown): string {
  if (v === undefined || v === null || v === '') throw new IsoError('INVALID_REQUEST', `task_type is required; one of: ${allTasks(gw).join(', ')}`, { tasks: allTasks(gw) });
  if (typeof v !== 'string') throw new IsoError('INVALID_REQUEST', 'task_type must be a string');
  return v;
}

const bestBody = z.object({ task_type: z.string(), sequence_type: z.string().max(16).nullable().optional() }).strict();

const analyzeBody = z
  .object({
    sequences: z.array(z.unknown()),
    task_type: z.string(),
    model_name: z.string().max(200).nullable().optional(),
    sequence_type: z.string().max(16).nullable().optional(),
    options: z.record(z.string(), z.unknown()).default({}),
    timeout_ms: z.number().int().positive().max(3_600_000).optional(),
    priority: z.number().int().min(-10).max(10).optional(),
  })
  .strict();

/**
 * The one sequence type of a request's sequences when none is declared. Each sequence is read as
 * the most specific type it is valid as (DNA, then RNA, then protein). If they differ, the
 * request is protein when at least one sequence can only be protein and all are valid protein
 * (a peptide such as "ACT" is also valid DNA); any other disagreement (DNA beside RNA) is a 400.
 */
export function consensusSequenceType(sequences: string[]): SequenceType {
  const types = sequences.map((s, i) => {
    const t = detectSequenceType(s);
    if (t === null) {
      const at = [...s].findIndex((c) => !ALPHABETS.protein.includes(c));
      throw new IsoError('INVALID_SEQUENCE', `sequences[${i}] is not a DNA, RNA or protein sequence: character '${s[at]}' at position ${at + 1}`, {
        index: i,
        position: at + 1,
        character: s[at],
      });
    }
    return t;
  });
  const distinct = [...new Set(types)];
  if (distinct.length === 1) return distinct[0]!;
  if (distinct.includes('protein') && sequences.every((s) => detectSequenceType(s) !== null)) return 'protein';
  const byType = Object.fromEntries(SEQUENCE_TYPES.map((t) => [t, types.flatMap((x, i) => (x === t ? [i] : []))]).filter(([, v]) => (v as number[]).length > 0));
  throw new IsoError(
    'INVALID_SEQUENCE',
    `sequences are of different types (${Object.entries(byType)
      .map(([t, idx]) => `${t}: sequences ${(idx as number[]).slice(0, 5).join(', ')}${(idx as number[]).length > 5 ? ', …' : ''}`)
      .join('; ')}); send one type per request or set sequence_type`,
    { sequence_types: byType },
  );
}

function withoutConfidence(o: ItemOutput, keep: boolean): ItemOutput {
  if (keep || !('confidence' in o)) return o;
  const { confidence: _drop, ...rest } = o;
  return rest;
}

// ---------------------------------------------------------------------------------------------
// Routes.

function modelInfo(gw: Gateway, name: string): Record<string, unknown> {
  const m = gw.registry.package(name).manifest;
  return {
    name: m.name,
    version: m.version,
    description: m.description,
    supported_tasks: m.tasks.map((t) => t.name),
    supported_sequences: SEQUENCE_TYPES.filter((s) => m.tasks.some((t) => t.sequence_types.includes(s))),
    runtime: m.runtime,
    status: gw.registry.status(name),
    tasks: m.tasks.map((t) => ({ name: t.name, description: t.description, sequence_types: t.sequence_types, max_length: t.max_length, min_length: t.min_length, options: t.options })),
    metadata: m.metadata,
  };
}

export function registerAgentRoutes(app: FastifyInstance, gw: Gateway): void {
  const p = AGENT_PREFIX;

  app.get(`${p}/health`, PUBLIC, async () => ({ status: 'healthy', service: 'isomodel Agent API' }));

  app.get(`${p}/models`, PREDICT, async () => ({ success: true, models: gw.registry.names() }));

  app.get(`${p}/models/loaded`, PREDICT, async () => ({ success: true, loaded_models: gw.registry.names().filter((n) => gw.registry.status(n) === 'ready') }));

  app.post(`${p}/models/best`, PREDICT, async (req) => {
    const raw = requireObject(req.body);
    const taskType = requireTaskType(gw, raw.task_type);
    const parsed = bestBody.safeParse(raw);
    if (!parsed.success) throw new IsoError('INVALID_REQUEST', describeZod(parsed.error));
    const type = parseSequenceType(parsed.data.sequence_type);
    if (!allTasks(gw).includes(taskType)) throw unknownTask(gw, taskType);
    const candidates = rankCandidates(gw, taskType, type);
    if (candidates.length === 0) throw noModelFits(gw, taskType, type);
    return { success: true, best_model: candidates[0]!.name, reason: explainChoice(candidates, taskType, type), candidates };
  });

  app.post(`${p}/analyze`, PREDICT, async (req, reply) => {
    const t0 = performance.now();
    let model: string | undefined;
    let task: TaskSpec | undefined;
    let sequences = 0;
    try {
      const raw = requireObject(req.body);
      if (raw.sequences === undefined || raw.sequences === null) throw new IsoError('INVALID_REQUEST', 'sequences is required: a non-empty array of sequence strings');
      if (!Array.isArray(raw.sequences)) throw new IsoError('INVALID_REQUEST', 'sequences must be an array of sequence strings');
      if (raw.sequences.length === 0) throw new IsoError('INVALID_REQUEST', 'sequences must hold at least one sequence');
      checkBatchSize(raw.sequences.length, gw.config.max_batch_sequences);
      const taskType = requireTaskType(gw, raw.task_type);
      const parsed = analyzeBody.safeParse(raw);
      if (!parsed.success) throw new IsoError('INVALID_REQUEST', describeZod(parsed.error));
      const b = parsed.data;
      b.sequences.forEach((s, i) => {
        if (typeof s !== 'string') throw new IsoError('INVALID_REQUEST', `sequences[${i}] must be a string`, { index: i });
      });
      const strings = b.sequences as string[];
      const declared = parseSequenceType(b.sequence_type);
      if (!b.model_name && !allTasks(gw).includes(taskType)) throw unknownTask(gw, taskType);
      const type = declared ?? consensusSequenceType(strings.map(normaliseSequence));

      let reason: string;
      if (b.model_name) {
        const m = gw.registry.package(b.model_name).manifest;
        model = m.name;
        task = m.tasks.find((t) => t.name === taskType);
        if (!task) {
          throw new IsoError('INVALID_REQUEST', `model ${m.name} has no task "${taskType.slice(0, 64)}"; its tasks: ${m.tasks.map((t) => t.name).join(', ')}`, {
            tasks: m.tasks.map((t) => t.name),
          });
        }
        if (!task.sequence_types.includes(type)) {
          throw new IsoError('INVALID_SEQUENCE', `model ${m.name} runs ${task.name} on ${task.sequence_types.join('/')} sequences, not ${type}`, {
            sequence_type: type,
            accepted: task.sequence_types,
          });
        }
        reason = `model_name ${m.name} was given`;
      } else {
        const candidates = rankCandidates(gw, taskType, type);
        if (candidates.length === 0) throw noModelFits(gw, taskType, type);
        model = candidates[0]!.name;
        task = gw.registry.package(model).manifest.tasks.find((t) => t.name === taskType)!;
        reason = explainChoice(candidates, taskType, type);
      }
      const dep = gw.registry.serving(model);

      const rule = taskRule(task);
      const items: WorkItem[] = strings.map((s, i) => {
        try {
          return { sequence: validateSequence(s, rule, type, `sequences[${i}]`).sequence, options: b.options };
        } catch (e) {
          if (e instanceof IsoError) throw new IsoError(e.code, e.message, { index: i, ...(typeof e.details === 'object' ? (e.details as object) : {}) });
          throw e;
        }
      });
      sequences = items.length;

      const outputs = await runChunked(gw, reply, dep, task.name, items, { timeoutMs: b.timeout_ms, priority: b.priority });
      const keepConfidence = b.options.return_confidence !== false;
      let failed = 0;
      const predictions = outputs.map((out, i) => {
        const sequence = items[i]!.sequence;
        if (isItemError(out)) {
          failed++;
          return { sequence, error: out.error };
        }
        return { sequence, ...withoutConfidence(out, keepConfidence) };
      });
      if (failed === outputs.length) {
        // Nothing to report as a success: the request fails with the sequences' own error.
        const errors = outputs.map((o, index) => ({ index, ...(o as { error: { code: string; message: string } }).error }));
        const codes = new Set(errors.map((e) => e.code));
        const first = errors[0]!;
        if (codes.size === 1) {
          const iso = fromWorkerError(first.code, errors.length === 1 ? first.message : `every sequence failed; sequences[0]: ${first.message}`);
          throw new IsoError(iso.code, iso.message, { errors });
        }
        throw new IsoError('PREDICTION_FAILED', `every sequence failed; sequences[0]: ${first.message}`, { errors });
      }
      recordRequest(gw, req, { model, task: task.name, route: 'agent', sequences, t0 });
      return {
        success: true,
        result: {
          predictions,
          metadata: {
            task_type: task.name,
            sequence_type: type,
            model_name: dep.name,
            model_version: dep.version,
            sequence_count: outputs.length,
            successful: outputs.length - failed,
            failed,
            processing_time: (performance.now() - t0) / 1000,
            model_choice: reason,
          },
        },
      };
    } catch (e) {
      recordRequest(gw, req, { model, task: task?.name, route: 'agent', sequences, t0, error: asIsoError(e) });
      throw e;
    }
  });

  app.get(`${p}/tasks`, PREDICT, async () => ({ success: true, tasks: allTasks(gw) }));

  app.get(`${p}/sequence-types`, PREDICT, async () => ({ success: true, sequence_types: [...SEQUENCE_TYPES] }));

  app.get<{ Params: { name: string } }>(`${p}/model/:name/info`, PREDICT, async (req) => ({ success: true, model_info: modelInfo(gw, req.params.name) }));

  app.post<{ Params: { name: string } }>(`${p}/model/:name/load`, admin('models.load'), async (req) => {
    await gw.registry.load(req.params.name);
    return { success: true, message: `model ${req.params.name} loaded` };
  });

  app.post<{ Params: { name: string } }>(`${p}/model/:name/unload`, admin('models.unload'), async (req) => {
    await gw.registry.unload(req.params.name);
    return { success: true, message: `model ${req.params.name} unloaded` };
  });
}
