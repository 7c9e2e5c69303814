// Parses and validates prediction bodies into work items for one model task. A body carries
// `sequence` / `sequences` (sequence, text, image and audio tasks take strings there) or `input` /
// `inputs` (any input type: validation/inputs).
import { z } from 'zod';
import { IsoError } from '../errors.js';
import type { Manifest, SequenceType, TaskSpec } from '../manifest/schema.js';
import { parseSequenceType } from '../validation/sequence.js';
import { takesStrings, validateInput } from '../validation/inputs/index.js';
import type { WorkItem } from '../worker/protocol.js';
import { describeZod } from '../validation/zod-message.js';
import { checkBatchSize } from './batch-limit.js';

const common = {
  task_type: z.string().max(64).optional(),
  sequence_type: z.string().max(16).optional(),
  options: z.record(z.string(), z.unknown()).default({}),
  timeout_ms: z.number().int().positive().max(3_600_000).optional(),
  priority: z.number().int().min(-10).max(10).optional(),
};

/** `stream: true` asks for Server-Sent Events (see api/sse.ts); single predictions only. */
export const singleBody = z
  .object({
    sequence: z.unknown().optional(),
    input: z.unknown().optional(),
    stream: z.boolean().optional(),
    ...common,
  })
  .strict();
export const batchBody = z
  .object({ sequences: z.array(z.unknown()).optional(), inputs: z.array(z.unknown()).optional(), ...common })
  .strict();

export interface ParsedPrediction {
  task: TaskSpec;
  items: WorkItem[];
  /** sequence tasks: the type each item was read as. */
  sequenceTypes: SequenceType[];
  /** Per item: residues, characters, KiB or elements (validation/inputs). */
  sizes: number[];
  timeoutMs?: number;
  priority?: number;
  /** The body's `stream` flag, when given (single predictions). */
  stream?: boolean;
}

/** A body either path accepted; `options` is absent when the fast check let a body without it through. */
type Body = Omit<z.infer<typeof singleBody>, 'options'> &
  Partial<Omit<z.infer<typeof batchBody>, 'options'>> & { options?: Record<string, unknown> };
const SINGLE_KEYS = new Set([
  'sequence',
  'input',
  'stream',
  'task_type',
  'sequence_type',
  'options',
  'timeout_ms',
  'priority',
]);
const BATCH_KEYS = new Set(['sequences', 'inputs', 'task_type', 'sequence_type', 'options', 'timeout_ms', 'priority']);

/**
 * The zod schemas' rules, checked by hand for the common well-formed body (zod is a visible share
 * of a no-op request). Anything it does not accept goes through zod, which words the error.
 * The body is used as it is (no copy); a missing `options` is read as {} by the caller.
 */
function fastBody(b: Record<string, unknown>, kind: 'single' | 'batch'): Body | null {
  const keys = kind === 'single' ? SINGLE_KEYS : BATCH_KEYS;
  for (const k in b) if (!keys.has(k)) return null;
  const { task_type, sequence_type, options, timeout_ms, priority, stream, sequences, inputs } = b;
  if (task_type !== undefined && (typeof task_type !== 'string' || task_type.length > 64)) return null;
  if (sequence_type !== undefined && (typeof sequence_type !== 'string' || sequence_type.length > 16)) return null;
  if (options !== undefined && (typeof options !== 'object' || options === null || Array.isArray(options))) return null;
  if (
    timeout_ms !== undefined &&
    !(typeof timeout_ms === 'number' && Number.isInteger(timeout_ms) && timeout_ms > 0 && timeout_ms <= 3_600_000)
  )
    return null;
  if (
    priority !== undefined &&
    !(typeof priority === 'number' && Number.isInteger(priority) && priority >= -10 && priority <= 10)
  )
    return null;
  if (stream !== undefined && typeof stream !== 'boolean') return null;
  if (kind === 'batch' && !Array.isArray(sequences) && !Array.isArray(inputs)) return null;
  return b as Body;
}

/** The task a request names, or the model's default task (`default_task`, else its first). */
export function resolveTask(manifest: Manifest, taskType: string | undefined): TaskSpec {
  if (taskType === undefined) return manifest.tasks.find((t) => t.name === manifest.default_task) ?? manifest.tasks[0]!;
  const task = manifest.tasks.find((t) => t.name === taskType);
  if (!task) {
    throw new IsoError(
      'INVALID_REQUEST',
      `model ${manifest.name} has no task "${taskType}"; available: ${manifest.tasks.map((t) => t.name).join(', ')}`,
      {
        tasks: manifest.tasks.map((t) => t.name),
      },
    );
  }
  return task;
}

/** Validates one or many inputs for a task; the first bad one rejects the request. */
export function parsePrediction(
  manifest: Manifest,
  body: unknown,
  kind: 'single' | 'batch',
  maxBatch: number,
): ParsedPrediction {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new IsoError('INVALID_REQUEST', 'request body must be a JSON object');
  }
  // Counted before anything else reads the list (zod included).
  const listed = (body as { sequences?: unknown; inputs?: unknown }).sequences ?? (body as { inputs?: unknown }).inputs;
  if (kind === 'batch' && Array.isArray(listed)) checkBatchSize(listed.length, maxBatch);
  let b: Body | null = fastBody(body as Record<string, unknown>, kind);
  if (!b) {
    const parsed = (kind === 'single' ? singleBody : batchBody).safeParse(body);
    if (!parsed.success) throw new IsoError('INVALID_REQUEST', describeZod(parsed.error));
    b = parsed.data as Body;
  }
  const task = resolveTask(manifest, b.task_type);
  const declared = parseSequenceType(b.sequence_type);
  const [one, many] = kind === 'single' ? (['sequence', 'input'] as const) : (['sequences', 'inputs'] as const);
  const given = (k: string): boolean => (b as Record<string, unknown>)[k] !== undefined;
  if (given(one) && given(many)) throw new IsoError('INVALID_REQUEST', `send ${one} or ${many}, not both`);
  if (given(one) && !takesStrings(task.input_type)) {
    throw new IsoError(
      'INVALID_REQUEST',
      `task ${task.name} takes ${task.input_type} input: send it as ${kind === 'single' ? 'input' : 'inputs'}`,
    );
  }
  const field = given(one) ? one : many;
  let raws: unknown[];
  if (kind === 'single') {
    const v = (b as Record<string, unknown>)[field];
    if (v === undefined)
      throw new IsoError(
        'INVALID_REQUEST',
        task.input_type === 'sequence'
          ? 'sequence is required'
          : `${many} is required (this task takes ${task.input_type} input)`,
      );
    raws = [v];
  } else {
    raws = ((b as Record<string, unknown>)[field] as unknown[] | undefined) ?? [];
    if (raws.length === 0)
      throw new IsoError(
        'INVALID_REQUEST',
        `${field} must hold at least one ${task.input_type === 'sequence' ? 'sequence' : 'input'}`,
      );
  }
  const options = b.options ?? {};
  const items: WorkItem[] = [];
  const sequenceTypes: SequenceType[] = [];
  const sizes: number[] = [];
  for (let i = 0; i < raws.length; i++) {
    const at = kind === 'single' ? field : `${field}[${i}]`;
    try {
      const v = validateInput(task, raws[i], at, declared);
      items.push({ ...v.payload, options });
      if (v.sequenceType) sequenceTypes.push(v.sequenceType);
      sizes.push(v.size);
    } catch (e) {
      if (e instanceof IsoError && kind === 'batch') {
        throw new IsoError(e.code, e.message, {
          index: i,
          ...(typeof e.details === 'object' ? (e.details as object) : {}),
        });
      }
      throw e;
    }
  }
  const stream = 'stream' in b ? b.stream : undefined;
  return { task, items, sequenceTypes, sizes, timeoutMs: b.timeout_ms, priority: b.priority, stream };
}
