// The Agent API under /agent: a small surface for LLM agents and tool runners. They ask which
// model fits a task and an input (sequences of a type, text, JSON, tensors, images, audio, chat),
// then analyse inputs without knowing model names. A model is a candidate only when its task can
// take the input (input type, sequence type, lengths, alphabet: validateInput decides).
// Everything is derived from the manifests; see docs/agent-api.md for shapes and the model
// choice rules. Errors are the native envelope {success:false, message, error:{code, details}}.
import { performance } from 'node:perf_hooks';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { cancelOnDisconnect } from '../disconnect.js';
import { IsoError, fromWorkerError } from '../../errors.js';
import type { Gateway } from '../../gateway.js';
import { INPUT_TYPES, SEQUENCE_TYPES, type InputType, type SequenceType, type TaskSpec } from '../../manifest/schema.js';
import type { ModelDeployment } from '../../scheduler/deployment.js';
import type { ModelStatus } from '../../scheduler/registry.js';
import { takesStrings, validateInput, type ValidInput } from '../../validation/inputs/index.js';
import { ALPHABETS, detectSequenceType, normaliseSequence, parseSequenceType } from '../../validation/sequence.js';
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
  /** What the matching task takes. */
  input_type: InputType;
  /** Sequence types the matching task accepts (sequence tasks; [] for other input types). */
  sequence_types: SequenceType[];
  /** Number of tasks of the model. */
  task_count: number;
}

/** Readiness order: a serving model first, then one on its way, then one that must be loaded; failed last. */
const STATUS_RANK: Record<ModelStatus, number> = { ready: 1, loading: 2, unloaded: 3, stopped: 3, draining: 4, needs_weights: 5, needs_packages: 5, failed: 5 };

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

/** Sequence types accepted, compared only between two sequence tasks (other types take none). */
const bothSequences = (a: Candidate, b: Candidate): boolean => a.input_type === 'sequence' && b.input_type === 'sequence';

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
    cmp: (a, b) => (bothSequences(a, b) ? a.sequence_types.length - b.sequence_types.length : 0),
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

/** What a request tells about its input, to decide which tasks can take it. */
export interface InputQuery {
  /** Declared input_type: only tasks of this type. */
  inputType?: InputType;
  /** Sequence type (declared, or read from the sequences), for sequence tasks. */
  sequenceType?: SequenceType;
  /** The sequences read as no single type (for sequence tasks this is their error). */
  sequenceTypeError?: IsoError;
  /** The inputs themselves, each checked with validateInput; absent: only the types are compared. */
  raws?: unknown[];
  /** The body field the inputs came in (errors name `field[i]`). */
  field?: 'sequences' | 'inputs';
}

/** Why a model was not a candidate. `error` is the input's own error when the input is at fault. */
export interface Rejection {
  model: string;
  reason: string;
  code: string;
  error?: IsoError;
  /** Left out by the request's own input_type, not by its input. */
  filtered?: boolean;
}

function withIndex(e: IsoError, index: number): IsoError {
  return new IsoError(e.code, e.message, { index, ...(typeof e.details === 'object' ? (e.details as object) : {}) });
}

/** Validates every input for a task; the first bad one throws its error with `details.index`. */
export function validateAll(task: TaskSpec, raws: unknown[], field: string, type?: SequenceType): ValidInput[] {
  return raws.map((raw, i) => {
    try {
      return validateInput(task, raw, `${field}[${i}]`, task.input_type === 'sequence' ? type : undefined);
    } catch (e) {
      throw e instanceof IsoError ? withIndex(e, i) : e;
    }
  });
}

/** Why this task cannot take the input (null: it can). */
export function unfit(task: TaskSpec, q: InputQuery): Omit<Rejection, 'model'> | null {
  if (q.inputType && task.input_type !== q.inputType) return { reason: `task ${task.name} takes ${task.input_type} input, not ${q.inputType}`, code: 'MODEL_NOT_FOUND', filtered: true };
  if (task.input_type === 'sequence') {
    if (q.sequenceTypeError) return { reason: q.sequenceTypeError.message, code: q.sequenceTypeError.code, error: q.sequenceTypeError };
    if (q.sequenceType && !task.sequence_types.includes(q.sequenceType)) {
      return { reason: `task ${task.name} takes ${task.sequence_types.join('/')} sequences, not ${q.sequenceType}`, code: 'MODEL_NOT_FOUND' };
    }
  } else if (q.field === 'sequences' && !takesStrings(task.input_type)) {
    return { reason: `task ${task.name} takes ${task.input_type} input: send it as inputs`, code: 'MODEL_NOT_FOUND' };
  }
  if (!q.raws) return null;
  try {
    validateAll(task, q.raws, q.field ?? 'inputs', q.sequenceType);
    return null;
  } catch (e) {
    if (!(e instanceof IsoError)) throw e;
    return { reason: e.message, code: e.code, error: e };
  }
}

export interface Ranking {
  /** Models whose task can take the input, best first. */
  candidates: Candidate[];
  /** Models with the task that cannot, each with its reason. */
  rejected: Rejection[];
}

/** Every model with a task of this name, split into those that can take the input (best first) and those that cannot. */
export function rankCandidates(gw: Gateway, task: string, q: InputQuery = {}): Ranking {
  const candidates: Candidate[] = [];
  const rejected: Rejection[] = [];
  for (const name of gw.registry.names()) {
    const m = gw.registry.package(name).manifest;
    const t = m.tasks.find((x) => x.name === task);
    if (!t) continue;
    const why = unfit(t, q);
    if (why) {
      rejected.push({ model: name, ...why });
      continue;
    }
    const status = gw.registry.status(name);
    candidates.push({
      name,
      version: m.version,
      status,
      ready: status === 'ready' && (gw.registry.deployment(name)?.healthy() ?? false),
      agent_priority: agentPriority(m.metadata, task),
      input_type: t.input_type,
      sequence_types: [...t.sequence_types],
      task_count: m.tasks.length,
    });
  }
  return { candidates: candidates.sort(compareCandidates), rejected };
}

/** "gc_content on DNA sequences": the sequence type only where sequence tasks are concerned (`sequences`). */
function describeQuery(task: string, q: InputQuery, sequences = true): string {
  const on = sequences && q.sequenceType ? ` on ${q.sequenceType} sequences` : q.inputType ? ` on ${q.inputType} input` : '';
  return `${task}${on}${q.raws ? ' for these inputs' : ''}`;
}

export function explainChoice(candidates: Candidate[], task: string, q: InputQuery = {}): string {
  const best = candidates[0]!;
  const what = describeQuery(task, q, candidates.every((c) => c.input_type === 'sequence'));
  if (candidates.length === 1) return `${best.name} is the only model that runs ${what}${best.ready ? '' : ` (it is ${best.status})`}`;
  const second = candidates[1]!;
  const decisive = CRITERIA.find((c) => c.cmp(best, second) !== 0) ?? CRITERIA[CRITERIA.length - 1]!;
  return `${best.name} is chosen among ${candidates.length} models that run ${what} because ${decisive.why(best, second)}`;
}

/** Whether some model's task of this name takes sequences. */
function sequenceTasksWith(gw: Gateway, task: string): boolean {
  return gw.registry.names().some((n) => gw.registry.package(n).manifest.tasks.some((t) => t.name === task && t.input_type === 'sequence'));
}

/** Union of the task names of every manifest, sorted. */
export function allTasks(gw: Gateway): string[] {
  return [...new Set(gw.registry.names().flatMap((n) => gw.registry.package(n).manifest.tasks.map((t) => t.name)))].sort();
}

function unknownTask(gw: Gateway, task: string): IsoError {
  const tasks = allTasks(gw);
  return new IsoError('INVALID_REQUEST', `unknown task_type "${task.slice(0, 64)}"; available: ${tasks.join(', ') || 'none (no models installed)'}`, { tasks });
}

/**
 * No model with the task can take the input. When every one refused the input itself for the
 * same reason (letters no alphabet has, longer than every limit, a truncated PNG for every image
 * model) that is the answer, with its own code and every model's reason; otherwise
 * MODEL_NOT_FOUND, giving each model's reason.
 */
function noModelFits(gw: Gateway, task: string, q: InputQuery, rejected: Rejection[]): IsoError {
  const listed = rejected.map(({ model, reason, code }) => ({ model, reason, code }));
  // Models the request's input_type left out are listed, but do not decide the answer.
  const judged = rejected.filter((r) => !r.filtered);
  const first = judged[0];
  if (first?.error && judged.every((r) => r.error && r.code === first.code)) {
    const e = first.error;
    return new IsoError(e.code, judged.length === 1 ? e.message : `${e.message} (and for every other model with task ${task}${judged.length < rejected.length ? ' that takes this input type' : ''})`, {
      ...(typeof e.details === 'object' ? (e.details as object) : {}),
      rejected: listed,
    });
  }
  const seqConcerned = rejected.some((r) => gw.registry.package(r.model).manifest.tasks.find((t) => t.name === task)?.input_type === 'sequence');
  const withTask = gw.registry.names().flatMap((n) => {
    const t = gw.registry.package(n).manifest.tasks.find((x) => x.name === task);
    return t ? [{ model: n, sequence_types: [...t.sequence_types] }] : [];
  });
  return new IsoError(
    'MODEL_NOT_FOUND',
    `no model runs ${describeQuery(task, q, seqConcerned)}; ${listed.map((r) => `${r.model}: ${r.reason}`).join('; ') || 'no model has this task'}`,
    { task_type: task, sequence_type: (seqConcerned && q.sequenceType) || null, input_type: q.inputType ?? null, models_with_task: withTask, rejected: listed },
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

const inputType = z.enum(INPUT_TYPES);

const bestBody = z
  .object({
    task_type: z.string(),
    sequence_type: z.string().max(16).nullable().optional(),
    input_type: inputType.nullable().optional(),
    sequences: z.array(z.unknown()).optional(),
    inputs: z.array(z.unknown()).optional(),
  })
  .strict();

const analyzeBody = z
  .object({
    sequences: z.array(z.unknown()).optional(),
    inputs: z.array(z.unknown()).optional(),
    task_type: z.string(),
    input_type: inputType.nullable().optional(),
    model_name: z.string().max(200).nullable().optional(),
    sequence_type: z.string().max(16).nullable().optional(),
    options: z.record(z.string(), z.unknown()).default({}),
    timeout_ms: z.number().int().positive().max(3_600_000).optional(),
    priority: z.number().int().min(-10).max(10).optional(),
  })
  .strict();

/**
 * The inputs of a request, `sequences` (strings) or `inputs` (any type), checked for shape and
 * the batch limit before anything reads them. `required`: analyze needs them, best does not.
 */
function inputsOf(gw: Gateway, raw: Record<string, unknown>, required: boolean): { field: 'sequences' | 'inputs'; raws: unknown[] } | null {
  if (raw.sequences != null && raw.inputs != null) throw new IsoError('INVALID_REQUEST', 'send sequences or inputs, not both');
  const field = raw.inputs != null ? 'inputs' : 'sequences';
  const v = raw[field];
  if (v === undefined || v === null) {
    if (required) throw new IsoError('INVALID_REQUEST', 'sequences is required: a non-empty array of sequence strings (or inputs: a non-empty array of inputs of any type)');
    return null;
  }
  if (!Array.isArray(v)) throw new IsoError('INVALID_REQUEST', field === 'sequences' ? 'sequences must be an array of sequence strings' : 'inputs must be an array');
  if (v.length === 0) throw new IsoError('INVALID_REQUEST', `${field} must hold at least one ${field === 'sequences' ? 'sequence' : 'input'}`);
  checkBatchSize(v.length, gw.config.max_batch_sequences);
  if (field === 'sequences') {
    v.forEach((s, i) => {
      if (typeof s !== 'string') throw new IsoError('INVALID_REQUEST', `sequences[${i}] must be a string`, { index: i });
    });
  }
  return { field, raws: v };
}

/** The request's input query: declared types, and the one sequence type of its strings (or why they have none). */
function queryOf(
  inputs: { field: 'sequences' | 'inputs'; raws: unknown[] } | null,
  declaredSeq: SequenceType | undefined,
  declaredInput: InputType | undefined | null,
  sequenceTasks: boolean,
): InputQuery {
  const inputType = declaredInput ?? undefined;
  const q: InputQuery = { inputType, sequenceType: declaredSeq, raws: inputs?.raws, field: inputs?.field };
  // Read only where a sequence task may take the inputs (a 5 MB base64 image is not read as letters).
  if (sequenceTasks && !declaredSeq && inputs && inputs.raws.every((r) => typeof r === 'string') && (inputType === undefined || inputType === 'sequence')) {
    try {
      q.sequenceType = consensusSequenceType((inputs.raws as string[]).map(normaliseSequence), inputs.field);
    } catch (e) {
      if (!(e instanceof IsoError)) throw e;
      q.sequenceTypeError = e;
    }
  }
  return q;
}

/**
 * The one sequence type of a request's sequences when none is declared. Each sequence is read as
 * detectSequenceType reads it (by composition: mostly A/C/G/T/U/N is nucleic acid, DNA before
 * RNA; otherwise protein). If they differ, the request is protein when at least one sequence
 * reads as protein and all are valid protein (a peptide such as "ACT" reads as DNA); any other
 * disagreement (DNA beside RNA) is a 400.
 */
export function consensusSequenceType(sequences: string[], field = 'sequences'): SequenceType {
  const types = sequences.map((s, i) => {
    const t = detectSequenceType(s);
    if (t === null) {
      const at = [...s].findIndex((c) => !ALPHABETS.protein.includes(c));
      throw new IsoError('INVALID_SEQUENCE', `${field}[${i}] is not a DNA, RNA or protein sequence: character '${s[at]}' at position ${at + 1}`, {
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
      .map(([t, idx]) => `${t}: ${field} ${(idx as number[]).slice(0, 5).join(', ')}${(idx as number[]).length > 5 ? ', …' : ''}`)
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
    input_types: [...new Set(m.tasks.map((t) => t.input_type))],
    tasks: m.tasks.map((t) => ({ name: t.name, description: t.description, input_type: t.input_type, sequence_types: t.sequence_types, max_length: t.max_length, min_length: t.min_length, options: t.options })),
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
    const inputs = inputsOf(gw, raw, false);
    const parsed = bestBody.safeParse(raw);
    if (!parsed.success) throw new IsoError('INVALID_REQUEST', describeZod(parsed.error));
    const type = parseSequenceType(parsed.data.sequence_type);
    if (!allTasks(gw).includes(taskType)) throw unknownTask(gw, taskType);
    const q = queryOf(inputs, type, parsed.data.input_type, sequenceTasksWith(gw, taskType));
    const { candidates, rejected } = rankCandidates(gw, taskType, q);
    if (candidates.length === 0) throw noModelFits(gw, taskType, q, rejected);
    return { success: true, best_model: candidates[0]!.name, reason: explainChoice(candidates, taskType, q), candidates, rejected: rejected.map(({ model, reason, code }) => ({ model, reason, code })) };
  });

  app.post(`${p}/analyze`, PREDICT, async (req, reply) => {
    const t0 = performance.now();
    let model: string | undefined;
    let task: TaskSpec | undefined;
    let count = 0;
    try {
      const raw = requireObject(req.body);
      const inputs = inputsOf(gw, raw, true)!;
      const taskType = requireTaskType(gw, raw.task_type);
      const parsed = analyzeBody.safeParse(raw);
      if (!parsed.success) throw new IsoError('INVALID_REQUEST', describeZod(parsed.error));
      const b = parsed.data;
      const declared = parseSequenceType(b.sequence_type);
      if (!b.model_name && !allTasks(gw).includes(taskType)) throw unknownTask(gw, taskType);
      const named = b.model_name ? gw.registry.package(b.model_name).manifest.tasks.find((t) => t.name === taskType) : undefined;
      const q = queryOf(inputs, declared, b.input_type, b.model_name ? named?.input_type === 'sequence' : sequenceTasksWith(gw, taskType));

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
        if (q.inputType && task.input_type !== q.inputType) {
          throw new IsoError('INVALID_REQUEST', `model ${m.name} runs ${task.name} on ${task.input_type} input, not ${q.inputType}`, { input_type: task.input_type });
        }
        if (task.input_type === 'sequence') {
          if (q.sequenceTypeError) throw q.sequenceTypeError;
          if (q.sequenceType && !task.sequence_types.includes(q.sequenceType)) {
            throw new IsoError('INVALID_SEQUENCE', `model ${m.name} runs ${task.name} on ${task.sequence_types.join('/')} sequences, not ${q.sequenceType}`, {
              sequence_type: q.sequenceType,
              accepted: task.sequence_types,
            });
          }
        } else if (inputs.field === 'sequences' && !takesStrings(task.input_type)) {
          throw new IsoError('INVALID_REQUEST', `model ${m.name} runs ${task.name} on ${task.input_type} input: send it as inputs`);
        }
        reason = `model_name ${m.name} was given`;
      } else {
        const { candidates, rejected } = rankCandidates(gw, taskType, q);
        if (candidates.length === 0) throw noModelFits(gw, taskType, q, rejected);
        model = candidates[0]!.name;
        task = gw.registry.package(model).manifest.tasks.find((t) => t.name === taskType)!;
        reason = explainChoice(candidates, taskType, q);
      }
      const dep = gw.registry.serving(model);
      const seqTask = task.input_type === 'sequence';
      const items: WorkItem[] = validateAll(task, inputs.raws, inputs.field, q.sequenceType).map((v) => ({ ...v.payload, options: b.options }));
      count = items.length;

      const outputs = await runChunked(gw, reply, dep, task.name, items, { timeoutMs: b.timeout_ms, priority: b.priority });
      const keepConfidence = b.options.return_confidence !== false;
      let failed = 0;
      const predictions = outputs.map((out, i) => {
        // Sequences are echoed; other inputs (images…) are named by their index.
        const which = seqTask ? { sequence: items[i]!.sequence } : { index: i };
        if (isItemError(out)) {
          failed++;
          return { ...which, error: out.error };
        }
        return { ...which, ...withoutConfidence(out, keepConfidence) };
      });
      const unit = seqTask ? 'sequence' : 'input';
      if (failed === outputs.length) {
        // Nothing to report as a success: the request fails with the inputs' own error.
        const errors = outputs.map((o, index) => ({ index, ...(o as { error: { code: string; message: string } }).error }));
        const codes = new Set(errors.map((e) => e.code));
        const first = errors[0]!;
        if (codes.size === 1) {
          const iso = fromWorkerError(first.code, errors.length === 1 ? first.message : `every ${unit} failed; ${inputs.field}[0]: ${first.message}`);
          throw new IsoError(iso.code, iso.message, { errors });
        }
        throw new IsoError('PREDICTION_FAILED', `every ${unit} failed; ${inputs.field}[0]: ${first.message}`, { errors });
      }
      recordRequest(gw, req, { model, task: task.name, route: 'agent', sequences: count, t0 });
      return {
        success: true,
        result: {
          predictions,
          metadata: {
            task_type: task.name,
            input_type: task.input_type,
            ...(seqTask && { sequence_type: q.sequenceType ?? null }),
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
      recordRequest(gw, req, { model, task: task?.name, route: 'agent', sequences: count, t0, error: asIsoError(e) });
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
