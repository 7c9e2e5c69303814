// The Agent API's model choice: which models have a task that can take the request's input
// (input type, sequence type, lengths, alphabet: validateInput decides), best first, and the
// reason in words; and the error when none can (docs/agent-api.md, "model choice").
import { IsoError } from '../errors.js';
import type { InputType, SequenceType, TaskSpec } from '../manifest/schema.js';
import type { ModelStatus } from '../scheduler/registry.js';
import { takesStrings, validateInput, type ValidInput } from '../validation/inputs/index.js';
import type { InferenceContext } from '../inference/context.js';

type Registry = Pick<InferenceContext, 'registry'>;

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
const STATUS_RANK: Record<ModelStatus, number> = {
  ready: 1,
  loading: 2,
  unloaded: 3,
  stopped: 3,
  draining: 4,
  needs_weights: 5,
  needs_packages: 5,
  failed: 5,
};

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
  const v =
    typeof p === 'object' && p !== null && !Array.isArray(p)
      ? Object.hasOwn(p, task)
        ? (p as Record<string, unknown>)[task]
        : undefined
      : p;
  return typeof v === 'number' && Number.isFinite(v) ? v : 0;
}

/** Sequence types accepted, compared only between two sequence tasks (other types take none). */
const bothSequences = (a: Candidate, b: Candidate): boolean =>
  a.input_type === 'sequence' && b.input_type === 'sequence';

/** Tie-break order of two candidates; the comparison and its reason are kept together. */
const CRITERIA: { cmp: (a: Candidate, b: Candidate) => number; why: (a: Candidate, b: Candidate) => string }[] = [
  {
    cmp: (a, b) => readinessRank(a) - readinessRank(b),
    why: (a, b) =>
      `it is ${a.ready ? 'loaded and ready' : a.status} while ${b.name} is ${b.ready ? 'ready' : b.status}`,
  },
  {
    cmp: (a, b) => b.agent_priority - a.agent_priority,
    why: (a, b) => `its agent_priority ${a.agent_priority} is higher than ${b.name}'s ${b.agent_priority}`,
  },
  {
    cmp: (a, b) => (bothSequences(a, b) ? a.sequence_types.length - b.sequence_types.length : 0),
    why: (a, b) =>
      `it is more specialised: its task accepts ${a.sequence_types.length} sequence type(s), ${b.name}'s ${b.sequence_types.length}`,
  },
  {
    cmp: (a, b) => a.task_count - b.task_count,
    why: (a, b) => `it is more specialised: ${a.task_count} task(s) against ${b.task_count} for ${b.name}`,
  },
  {
    cmp: (a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
    why: (_a, b) => `its name sorts before ${b.name} (all else equal)`,
  },
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
  if (q.inputType && task.input_type !== q.inputType)
    return {
      reason: `task ${task.name} takes ${task.input_type} input, not ${q.inputType}`,
      code: 'MODEL_NOT_FOUND',
      filtered: true,
    };
  if (task.input_type === 'sequence') {
    if (q.sequenceTypeError)
      return { reason: q.sequenceTypeError.message, code: q.sequenceTypeError.code, error: q.sequenceTypeError };
    if (q.sequenceType && !task.sequence_types.includes(q.sequenceType)) {
      return {
        reason: `task ${task.name} takes ${task.sequence_types.join('/')} sequences, not ${q.sequenceType}`,
        code: 'MODEL_NOT_FOUND',
      };
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
export function rankCandidates(gw: Registry, task: string, q: InputQuery = {}): Ranking {
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
  const on =
    sequences && q.sequenceType ? ` on ${q.sequenceType} sequences` : q.inputType ? ` on ${q.inputType} input` : '';
  return `${task}${on}${q.raws ? ' for these inputs' : ''}`;
}

export function explainChoice(candidates: Candidate[], task: string, q: InputQuery = {}): string {
  const best = candidates[0]!;
  const what = describeQuery(
    task,
    q,
    candidates.every((c) => c.input_type === 'sequence'),
  );
  if (candidates.length === 1)
    return `${best.name} is the only model that runs ${what}${best.ready ? '' : ` (it is ${best.status})`}`;
  const second = candidates[1]!;
  const decisive = CRITERIA.find((c) => c.cmp(best, second) !== 0) ?? CRITERIA[CRITERIA.length - 1]!;
  return `${best.name} is chosen among ${candidates.length} models that run ${what} because ${decisive.why(best, second)}`;
}

/** Whether some model's task of this name takes sequences. */
export function sequenceTasksWith(gw: Registry, task: string): boolean {
  return gw.registry
    .names()
    .some((n) => gw.registry.package(n).manifest.tasks.some((t) => t.name === task && t.input_type === 'sequence'));
}

/** Union of the task names of every manifest, sorted. */
export function allTasks(gw: Registry): string[] {
  return [
    ...new Set(gw.registry.names().flatMap((n) => gw.registry.package(n).manifest.tasks.map((t) => t.name))),
  ].sort();
}

export function unknownTask(gw: Registry, task: string): IsoError {
  const tasks = allTasks(gw);
  return new IsoError(
    'INVALID_REQUEST',
    `unknown task_type "${task.slice(0, 64)}"; available: ${tasks.join(', ') || 'none (no models installed)'}`,
    { tasks },
  );
}

/**
 * No model with the task can take the input. When every one refused the input itself for the
 * same reason (letters no alphabet has, longer than every limit, a truncated PNG for every image
 * model) that is the answer, with its own code and every model's reason; otherwise
 * MODEL_NOT_FOUND, giving each model's reason.
 */
export function noModelFits(gw: Registry, task: string, q: InputQuery, rejected: Rejection[]): IsoError {
  const listed = rejected.map(({ model, reason, code }) => ({ model, reason, code }));
  // Models the request's input_type left out are listed, but do not decide the answer.
  const judged = rejected.filter((r) => !r.filtered);
  const first = judged[0];
  if (first?.error && judged.every((r) => r.error && r.code === first.code)) {
    const e = first.error;
    return new IsoError(
      e.code,
      judged.length === 1
        ? e.message
        : `${e.message} (and for every other model with task ${task}${judged.length < rejected.length ? ' that takes this input type' : ''})`,
      {
        ...(typeof e.details === 'object' ? (e.details as object) : {}),
        rejected: listed,
      },
    );
  }
  const seqConcerned = rejected.some(
    (r) => gw.registry.package(r.model).manifest.tasks.find((t) => t.name === task)?.input_type === 'sequence',
  );
  const withTask = gw.registry.names().flatMap((n) => {
    const t = gw.registry.package(n).manifest.tasks.find((x) => x.name === task);
    return t ? [{ model: n, sequence_types: [...t.sequence_types] }] : [];
  });
  return new IsoError(
    'MODEL_NOT_FOUND',
    `no model runs ${describeQuery(task, q, seqConcerned)}; ${listed.map((r) => `${r.model}: ${r.reason}`).join('; ') || 'no model has this task'}`,
    {
      task_type: task,
      sequence_type: (seqConcerned && q.sequenceType) || null,
      input_type: q.inputType ?? null,
      models_with_task: withTask,
      rejected: listed,
    },
  );
}
