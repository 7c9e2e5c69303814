// The Agent API under /agent: a small surface for LLM agents and tool runners. They ask which
// model fits a task and an input (sequences of a type, text, JSON, tensors, images, audio, chat),
// then analyse inputs without knowing model names. A model is a candidate only when its task can
// take the input (input type, sequence type, lengths, alphabet: validateInput decides).
// Everything is derived from the manifests; see docs/agent-api.md for shapes and the model
// choice rules. Errors are the native envelope {success:false, message, error:{code, details}}.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { cancelOnDisconnect } from '../disconnect.js';
import { IsoError, fromWorkerError } from '../../errors.js';
import type { GatewayContext } from '../context.js';
import { callerOf } from '../caller.js';
import { RequestOutcome } from '../../inference/outcome.js';
import { itemResults, run, serving } from '../../inference/run.js';
import {
  INPUT_TYPES,
  SEQUENCE_TYPES,
  type InputType,
  type SequenceType,
  type TaskSpec,
} from '../../manifest/schema.js';
import { takesStrings } from '../../validation/inputs/index.js';
import { ALPHABETS, detectSequenceType, normaliseSequence, parseSequenceType } from '../../validation/sequence.js';
import type { WorkItem } from '../../worker/protocol.js';
import {
  allTasks,
  explainChoice,
  noModelFits,
  rankCandidates,
  sequenceTasksWith,
  unknownTask,
  validateAll,
  type InputQuery,
} from '../agent-choice.js';
import { describeZod } from '../../validation/zod-message.js';
import { admin, PREDICT, PUBLIC } from '../../security/route-scope.js';
import { checkBatchSize } from '../batch-limit.js';

export const AGENT_PREFIX = '/agent';

// ---------------------------------------------------------------------------------------------
// Request bodies.

function requireObject(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new IsoError('INVALID_REQUEST', 'request body must be a JSON object');
  return body as Record<string, unknown>;
}

function requireTaskType(gw: GatewayContext, v: unknown): string {
  if (v === undefined || v === null || v === '')
    throw new IsoError('INVALID_REQUEST', `task_type is required; one of: ${allTasks(gw).join(', ')}`, {
      tasks: allTasks(gw),
    });
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
function inputsOf(
  gw: GatewayContext,
  raw: Record<string, unknown>,
  required: boolean,
): { field: 'sequences' | 'inputs'; raws: unknown[] } | null {
  if (raw.sequences != null && raw.inputs != null)
    throw new IsoError('INVALID_REQUEST', 'send sequences or inputs, not both');
  const field = raw.inputs != null ? 'inputs' : 'sequences';
  const v = raw[field];
  if (v === undefined || v === null) {
    if (required)
      throw new IsoError(
        'INVALID_REQUEST',
        'sequences is required: a non-empty array of sequence strings (or inputs: a non-empty array of inputs of any type)',
      );
    return null;
  }
  if (!Array.isArray(v))
    throw new IsoError(
      'INVALID_REQUEST',
      field === 'sequences' ? 'sequences must be an array of sequence strings' : 'inputs must be an array',
    );
  if (v.length === 0)
    throw new IsoError(
      'INVALID_REQUEST',
      `${field} must hold at least one ${field === 'sequences' ? 'sequence' : 'input'}`,
    );
  checkBatchSize(v.length, gw.config.max_batch_sequences);
  if (field === 'sequences') {
    v.forEach((s, i) => {
      if (typeof s !== 'string')
        throw new IsoError('INVALID_REQUEST', `sequences[${i}] must be a string`, { index: i });
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
  if (
    sequenceTasks &&
    !declaredSeq &&
    inputs &&
    inputs.raws.every((r) => typeof r === 'string') &&
    (inputType === undefined || inputType === 'sequence')
  ) {
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
      throw new IsoError(
        'INVALID_SEQUENCE',
        `${field}[${i}] is not a DNA, RNA or protein sequence: character '${s[at]}' at position ${at + 1}`,
        {
          index: i,
          position: at + 1,
          character: s[at],
        },
      );
    }
    return t;
  });
  const distinct = [...new Set(types)];
  if (distinct.length === 1) return distinct[0]!;
  if (distinct.includes('protein') && sequences.every((s) => detectSequenceType(s) !== null)) return 'protein';
  const byType = Object.fromEntries(
    SEQUENCE_TYPES.map((t) => [t, types.flatMap((x, i) => (x === t ? [i] : []))]).filter(
      ([, v]) => (v as number[]).length > 0,
    ),
  );
  throw new IsoError(
    'INVALID_SEQUENCE',
    `sequences are of different types (${Object.entries(byType)
      .map(
        ([t, idx]) =>
          `${t}: ${field} ${(idx as number[]).slice(0, 5).join(', ')}${(idx as number[]).length > 5 ? ', …' : ''}`,
      )
      .join('; ')}); send one type per request or set sequence_type`,
    { sequence_types: byType },
  );
}

// ---------------------------------------------------------------------------------------------
// Routes.

function modelInfo(gw: GatewayContext, name: string): Record<string, unknown> {
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
    tasks: m.tasks.map((t) => ({
      name: t.name,
      description: t.description,
      input_type: t.input_type,
      sequence_types: t.sequence_types,
      max_length: t.max_length,
      min_length: t.min_length,
      options: t.options,
    })),
    metadata: m.metadata,
  };
}

export function registerAgentRoutes(app: FastifyInstance, gw: GatewayContext): void {
  const p = AGENT_PREFIX;

  app.get(`${p}/health`, PUBLIC, async () => ({ status: 'healthy', service: 'isomodel Agent API' }));

  app.get(`${p}/models`, PREDICT, async () => ({ success: true, models: gw.registry.names() }));

  app.get(`${p}/models/loaded`, PREDICT, async () => ({
    success: true,
    loaded_models: gw.registry.names().filter((n) => gw.registry.status(n) === 'ready'),
  }));

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
    return {
      success: true,
      best_model: candidates[0]!.name,
      reason: explainChoice(candidates, taskType, q),
      candidates,
      rejected: rejected.map(({ model, reason, code }) => ({ model, reason, code })),
    };
  });

  app.post(`${p}/analyze`, PREDICT, async (req, reply) => {
    const outcome = new RequestOutcome(gw, callerOf(req), 'agent');
    try {
      const raw = requireObject(req.body);
      const inputs = inputsOf(gw, raw, true)!;
      const taskType = requireTaskType(gw, raw.task_type);
      const parsed = analyzeBody.safeParse(raw);
      if (!parsed.success) throw new IsoError('INVALID_REQUEST', describeZod(parsed.error));
      const b = parsed.data;
      const declared = parseSequenceType(b.sequence_type);
      if (!b.model_name && !allTasks(gw).includes(taskType)) throw unknownTask(gw, taskType);
      const named = b.model_name
        ? gw.registry.package(b.model_name).manifest.tasks.find((t) => t.name === taskType)
        : undefined;
      const q = queryOf(
        inputs,
        declared,
        b.input_type,
        b.model_name ? named?.input_type === 'sequence' : sequenceTasksWith(gw, taskType),
      );

      let reason: string;
      let task: TaskSpec | undefined;
      if (b.model_name) {
        const m = gw.registry.package(b.model_name).manifest;
        outcome.model = m.name;
        task = m.tasks.find((t) => t.name === taskType);
        outcome.task = task?.name;
        if (!task) {
          throw new IsoError(
            'INVALID_REQUEST',
            `model ${m.name} has no task "${taskType.slice(0, 64)}"; its tasks: ${m.tasks.map((t) => t.name).join(', ')}`,
            {
              tasks: m.tasks.map((t) => t.name),
            },
          );
        }
        if (q.inputType && task.input_type !== q.inputType) {
          throw new IsoError(
            'INVALID_REQUEST',
            `model ${m.name} runs ${task.name} on ${task.input_type} input, not ${q.inputType}`,
            { input_type: task.input_type },
          );
        }
        if (task.input_type === 'sequence') {
          if (q.sequenceTypeError) throw q.sequenceTypeError;
          if (q.sequenceType && !task.sequence_types.includes(q.sequenceType)) {
            throw new IsoError(
              'INVALID_SEQUENCE',
              `model ${m.name} runs ${task.name} on ${task.sequence_types.join('/')} sequences, not ${q.sequenceType}`,
              {
                sequence_type: q.sequenceType,
                accepted: task.sequence_types,
              },
            );
          }
        } else if (inputs.field === 'sequences' && !takesStrings(task.input_type)) {
          throw new IsoError(
            'INVALID_REQUEST',
            `model ${m.name} runs ${task.name} on ${task.input_type} input: send it as inputs`,
          );
        }
        reason = `model_name ${m.name} was given`;
      } else {
        const { candidates, rejected } = rankCandidates(gw, taskType, q);
        if (candidates.length === 0) throw noModelFits(gw, taskType, q, rejected);
        outcome.model = candidates[0]!.name;
        task = gw.registry.package(outcome.model).manifest.tasks.find((t) => t.name === taskType)!;
        outcome.task = task.name;
        reason = explainChoice(candidates, taskType, q);
      }
      const dep = serving(gw, outcome, outcome.model);
      const seqTask = task.input_type === 'sequence';
      const items: WorkItem[] = validateAll(task, inputs.raws, inputs.field, q.sequenceType).map((v) => ({
        ...v.payload,
        options: b.options,
      }));
      const work = { task, items, timeoutMs: b.timeout_ms, priority: b.priority };
      const outputs = await cancelOnDisconnect(reply, (signal) => run(outcome, dep, work, { signal }));
      const keepConfidence = b.options.return_confidence !== false;
      // Sequences are echoed; other inputs (images…) are named by their index.
      const { predictions, failed } = itemResults(
        outputs,
        seqTask ? (i) => ({ sequence: items[i]!.sequence }) : (i) => ({ index: i }),
        keepConfidence,
      );
      const unit = seqTask ? 'sequence' : 'input';
      if (failed === outputs.length) {
        // Nothing to report as a success: the request fails with the inputs' own error.
        const errors = outputs.map((o, index) => ({
          index,
          ...(o as { error: { code: string; message: string } }).error,
        }));
        const codes = new Set(errors.map((e) => e.code));
        const first = errors[0]!;
        if (codes.size === 1) {
          const iso = fromWorkerError(
            first.code,
            errors.length === 1 ? first.message : `every ${unit} failed; ${inputs.field}[0]: ${first.message}`,
          );
          throw new IsoError(iso.code, iso.message, { errors });
        }
        throw new IsoError('PREDICTION_FAILED', `every ${unit} failed; ${inputs.field}[0]: ${first.message}`, {
          errors,
        });
      }
      outcome.ok();
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
            processing_time: outcome.seconds(),
            model_choice: reason,
          },
        },
      };
    } catch (e) {
      outcome.failed(e);
      throw e;
    }
  });

  app.get(`${p}/tasks`, PREDICT, async () => ({ success: true, tasks: allTasks(gw) }));

  app.get(`${p}/sequence-types`, PREDICT, async () => ({ success: true, sequence_types: [...SEQUENCE_TYPES] }));

  app.get<{ Params: { name: string } }>(`${p}/model/:name/info`, PREDICT, async (req) => ({
    success: true,
    model_info: modelInfo(gw, req.params.name),
  }));

  app.post<{ Params: { name: string } }>(`${p}/model/:name/load`, admin('models.load'), async (req) => {
    await gw.registry.load(req.params.name);
    return { success: true, message: `model ${req.params.name} loaded` };
  });

  app.post<{ Params: { name: string } }>(`${p}/model/:name/unload`, admin('models.unload'), async (req) => {
    await gw.registry.unload(req.params.name);
    return { success: true, message: `model ${req.params.name} unloaded` };
  });
}
