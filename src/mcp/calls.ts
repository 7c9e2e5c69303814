// tools/call: the task tools and analyze_sequences run on the common inference path
// (src/inference: resolve, validate, submit, record once); list_models and model_info describe
// the registry. Every failure is a tool result with isError and the REST API's error code.
import { randomUUID } from 'node:crypto';
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import type { CallToolResult, ServerNotification, ServerRequest } from '@modelcontextprotocol/sdk/types.js';
import { checkBatchSize } from '../api/batch-limit.js';
import { modelInfo } from '../api/describe.js';
import { parsePrediction } from '../api/predict-request.js';
import { IsoError, fromWorkerError } from '../errors.js';
import type { InferenceContext } from '../inference/context.js';
import { RequestOutcome } from '../inference/outcome.js';
import { everyItemFailed, itemResults, run, serving } from '../inference/run.js';
import type { SequenceType } from '../manifest/schema.js';
import { storageUnavailable } from '../store/storage-fault.js';
import { ALPHABETS, detectSequenceType, normaliseSequence, parseSequenceType } from '../validation/sequence.js';
import { isItemError } from '../worker/protocol.js';
import { chooseModel, type ChoiceCandidate } from './choose.js';
import { taskTools } from './tools.js';

type Extra = RequestHandlerExtra<ServerRequest, ServerNotification>;

/** Pause between the final progress notification and the result (see runTask). */
const PROGRESS_SETTLE_MS = 20;

export interface ToolErrorBody {
  error: { code: string; status: number; message: string; details: unknown };
}

function okResult(data: Record<string, unknown>): CallToolResult {
  return { content: [{ type: 'text', text: JSON.stringify(data) }], structuredContent: data };
}

function errorResult(gw: InferenceContext, e: unknown): CallToolResult {
  let err = e instanceof IsoError ? e : storageUnavailable(e);
  if (!err) {
    gw.logger.error({ err: e }, 'MCP tool call failed');
    err = new IsoError('INTERNAL_ERROR', 'internal error');
  }
  const body: ToolErrorBody = {
    error: { code: err.code, status: err.status, message: err.message, details: err.details ?? null },
  };
  return {
    isError: true,
    content: [{ type: 'text', text: JSON.stringify(body) }],
    structuredContent: body as unknown as Record<string, unknown>,
  };
}

function argsObject(args: unknown, allowed: readonly string[]): Record<string, unknown> {
  const a = (args ?? {}) as Record<string, unknown>;
  if (typeof a !== 'object' || Array.isArray(a))
    throw new IsoError('INVALID_REQUEST', 'tool arguments must be an object');
  const unknown = Object.keys(a).filter((k) => !allowed.includes(k));
  if (unknown.length)
    throw new IsoError(
      'INVALID_REQUEST',
      `unknown argument${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}; allowed: ${allowed.join(', ')}`,
    );
  return a;
}

/** A lone string is taken as a batch of one (a common slip of tool-calling models). */
function sequencesArg(v: unknown): unknown[] {
  if (typeof v === 'string') return [v];
  if (v === undefined) throw new IsoError('INVALID_REQUEST', 'sequences is required');
  if (!Array.isArray(v)) throw new IsoError('INVALID_REQUEST', 'sequences must be an array of strings');
  return v;
}

/** `inputs` of a typed task: a list, or one input on its own (a batch of one). */
function inputsArg(v: unknown): unknown[] {
  if (v === undefined) throw new IsoError('INVALID_REQUEST', 'inputs is required');
  return Array.isArray(v) ? v : [v];
}

interface TaskInput {
  sequences?: unknown[];
  inputs?: unknown[];
  sequence_type?: unknown;
  options?: unknown;
}

async function runTask(
  gw: InferenceContext,
  route: string,
  model: string,
  taskName: string,
  input: TaskInput,
  extra: Extra,
): Promise<Record<string, unknown>> {
  const outcome = new RequestOutcome(gw, { requestId: randomUUID(), client: route }, route);
  outcome.model = model;
  // Before the arguments parse: the tool's task, when the manifest declares it (a metric label).
  outcome.taskHint = (m) => (m.tasks.some((t) => t.name === taskName) ? taskName : undefined);
  try {
    const dep = serving(gw, outcome, model);
    const parsed = parsePrediction(
      dep.pkg.manifest,
      {
        ...(input.inputs ? { inputs: input.inputs } : { sequences: input.sequences }),
        task_type: taskName,
        sequence_type: input.sequence_type,
        options: input.options,
      },
      'batch',
      gw.config.max_batch_sequences,
    );
    const typed = parsed.task.input_type !== 'sequence';
    const token = extra._meta?.progressToken;
    // With a progress token: chunks of the model's own batch size, progress as each completes.
    const progress =
      token === undefined
        ? undefined
        : {
            chunkSize: dep.pkg.manifest.batching.max_batch_size,
            // Awaited: a notification that arrived after the result would be dropped by the client.
            report: (done: number, total: number) =>
              extra
                .sendNotification({
                  method: 'notifications/progress',
                  params: {
                    progressToken: token,
                    progress: done,
                    total,
                    message: `${done} of ${total} ${typed ? 'inputs' : 'sequences'} done`,
                  },
                })
                .catch(() => undefined),
          };
    const outputs = await run(outcome, dep, parsed, { signal: extra.signal, progress });
    // The last notification and the result are written back to back; clients of the
    // TypeScript SDK (1.x) dispatch notifications a microtask later than responses and drop
    // progress that arrives with the result (typescript-sdk#2580). A short gap lets it land.
    if (progress) await new Promise((r) => setTimeout(r, PROGRESS_SETTLE_MS));
    const keepConfidence = parsed.items[0]!.options.return_confidence !== false;
    // Sequences are echoed (short text); other inputs (images…) are named by their index.
    const { predictions, failed } = typed
      ? itemResults(outputs, (i) => ({ index: i }), keepConfidence)
      : itemResults(
          outputs,
          (i) => ({ sequence: parsed.items[i]!.sequence }),
          keepConfidence,
          (i) => ({ sequence_type: parsed.sequenceTypes[i] }),
        );
    if (failed === outputs.length) {
      const first = outputs[0]!;
      if (outputs.length === 1 && isItemError(first)) throw fromWorkerError(first.error.code, first.error.message);
      throw new IsoError('PREDICTION_FAILED', `every ${typed ? 'input' : 'sequence'} of the batch failed`, {
        errors: everyItemFailed(predictions),
      });
    }
    outcome.stop();
    outcome.ok();
    return {
      model: dep.name,
      version: dep.version,
      task_type: parsed.task.name,
      ...(typed && { input_type: parsed.task.input_type }),
      predictions,
      total_sequences: outputs.length,
      successful: outputs.length - failed,
      failed,
      processing_time: outcome.seconds(),
    };
  } catch (e) {
    outcome.failed(e);
    throw e;
  }
}

/** Detected (or declared) type of each sequence, for the model choice; bad letters fail here. */
function sequenceTypesOf(
  raws: unknown[],
  declared: SequenceType | undefined,
): { types: SequenceType[]; longest: number; shortest: number } {
  const types: SequenceType[] = [];
  let longest = 0;
  let shortest = Number.MAX_SAFE_INTEGER;
  raws.forEach((raw, i) => {
    if (typeof raw !== 'string') throw new IsoError('INVALID_REQUEST', `sequences[${i}] must be a string`);
    const seq = normaliseSequence(raw);
    if (seq.length === 0) throw new IsoError('INVALID_SEQUENCE', `sequences[${i}] is empty`, { index: i });
    longest = Math.max(longest, seq.length);
    shortest = Math.min(shortest, seq.length);
    if (declared) {
      types.push(declared);
      return;
    }
    const type = detectSequenceType(seq);
    if (!type) {
      const at = [...seq].findIndex((c) => !ALPHABETS.protein.includes(c));
      throw new IsoError(
        'INVALID_SEQUENCE',
        `sequences[${i}] is neither DNA, RNA nor protein: character '${seq[at]}' at position ${at + 1}`,
        {
          index: i,
          position: at + 1,
          character: seq[at],
        },
      );
    }
    types.push(type);
  });
  return { types, longest, shortest };
}

async function analyzeSequences(
  gw: InferenceContext,
  route: string,
  args: unknown,
  extra: Extra,
): Promise<Record<string, unknown>> {
  const a = argsObject(args, ['sequences', 'task_type', 'sequence_type', 'options', 'model']);
  const raws = sequencesArg(a.sequences);
  if (typeof a.task_type !== 'string' || !a.task_type)
    throw new IsoError('INVALID_REQUEST', 'task_type is required (a task name such as gc_content)');
  const taskType = a.task_type;
  const input: TaskInput = { sequences: raws, sequence_type: a.sequence_type, options: a.options };
  if (a.model !== undefined) {
    if (typeof a.model !== 'string') throw new IsoError('INVALID_REQUEST', 'model must be a string');
    const result = await runTask(gw, route, a.model, taskType, input, extra);
    return {
      chosen: { model: a.model, task_type: taskType, reason: 'model given by the caller', alternatives: [] },
      ...result,
    };
  }
  if (raws.length === 0) throw new IsoError('INVALID_REQUEST', 'sequences must hold at least one sequence');
  checkBatchSize(raws.length, gw.config.max_batch_sequences);
  const declared = parseSequenceType(a.sequence_type);
  const { types, longest, shortest } = sequenceTypesOf(raws, declared);
  const candidates: ChoiceCandidate[] = gw.registry
    .names()
    .map((name) => ({ name, manifest: gw.registry.package(name).manifest, status: gw.registry.status(name) }));
  const known = [...new Set(candidates.flatMap((c) => c.manifest.tasks.map((t) => t.name)))].sort();
  const detected = [...new Set(types)];
  if (!known.includes(taskType)) {
    throw new IsoError(
      'MODEL_NOT_FOUND',
      `no installed model has task "${taskType}"; task types: ${known.join(', ') || 'none'}`,
      { task_type: taskType, task_types: known },
    );
  }
  const res = chooseModel(candidates, { taskType, sequenceTypes: types, longest, shortest });
  if (!res.ok) {
    const onlyStatus = res.rejected.every((r) => r.reason.startsWith('model is '));
    const details = { task_type: taskType, sequence_types: detected, rejected: res.rejected };
    if (onlyStatus)
      throw new IsoError(
        'MODEL_NOT_LOADED',
        `no model with task ${taskType} is ready: ${res.rejected.map((r) => `${r.model} (${r.reason})`).join('; ')}`,
        details,
        2,
      );
    throw new IsoError(
      'MODEL_NOT_FOUND',
      `no ready model serves ${taskType} for ${detected.join(' and ')} sequences: ${res.rejected.map((r) => `${r.model}: ${r.reason}`).join('; ')}`,
      details,
    );
  }
  const { choice } = res;
  const result = await runTask(gw, route, choice.model, choice.task.name, input, extra);
  return {
    chosen: {
      model: choice.model,
      task_type: choice.task.name,
      sequence_types: detected,
      reason: choice.reason,
      alternatives: choice.alternatives,
    },
    ...result,
  };
}

function listModels(gw: InferenceContext): Record<string, unknown> {
  const tools = taskTools(gw);
  const models = gw.registry.names().map((name) => {
    const m = gw.registry.package(name).manifest;
    const status = gw.registry.status(name);
    return {
      name,
      version: m.version,
      description: m.description,
      status,
      tools_listed: status === 'ready',
      tasks: m.tasks.map((t) => ({
        name: t.name,
        tool: tools.find((x) => x.model === name && x.task.name === t.name)?.tool,
        description: t.description,
        input_type: t.input_type,
        sequence_types: t.sequence_types,
        max_length: t.max_length,
      })),
      last_error: gw.registry.lastError(name) ?? null,
    };
  });
  return { models, invalid_packages: gw.registry.invalidPackages() };
}

function modelInfoTool(gw: InferenceContext, args: unknown): Record<string, unknown> {
  const a = argsObject(args, ['model']);
  if (typeof a.model !== 'string' || !a.model) throw new IsoError('INVALID_REQUEST', 'model is required');
  const info = modelInfo(gw, a.model);
  const tools = Object.fromEntries(
    taskTools(gw)
      .filter((t) => t.model === a.model)
      .map((t) => [t.task.name, t.tool]),
  );
  return { ...info, tools };
}

function unknownTool(gw: InferenceContext, name: string): IsoError {
  const cut = name.indexOf('__');
  if (cut > 0) {
    const modelPart = name.slice(0, cut);
    const tools = taskTools(gw);
    const models = [
      ...new Set(tools.filter((t) => t.model.replace(/[^A-Za-z0-9_-]/g, '_') === modelPart).map((t) => t.model)),
    ];
    if (models.length === 0)
      return new IsoError('MODEL_NOT_FOUND', `no model named "${modelPart.slice(0, 80)}"`, {
        available: gw.registry.names(),
      });
    return new IsoError('NOT_FOUND', `model ${models[0]} has no task "${name.slice(cut + 2, cut + 82)}"`, {
      tools: tools.filter((t) => models.includes(t.model)).map((t) => t.tool),
    });
  }
  return new IsoError('NOT_FOUND', `no tool named "${name.slice(0, 80)}"; see tools/list`);
}

/** Answers one tools/call: a built-in tool or a model task's tool; a failure is an isError result. */
export async function callTool(
  gw: InferenceContext,
  route: string,
  name: string,
  args: unknown,
  extra: Extra,
): Promise<CallToolResult> {
  try {
    switch (name) {
      case 'list_models':
        argsObject(args, []);
        return okResult(listModels(gw));
      case 'model_info':
        return okResult(modelInfoTool(gw, args));
      case 'analyze_sequences':
        return okResult(await analyzeSequences(gw, route, args, extra));
    }
    const entry = taskTools(gw).find((t) => t.tool === name);
    if (!entry) throw unknownTool(gw, name);
    // A sequence task's tool takes `sequences` (and sequence_type), every other type's `inputs`.
    const sequences = entry.task.input_type === 'sequence';
    const a = argsObject(args, sequences ? ['sequences', 'options', 'sequence_type'] : ['inputs', 'options']);
    const request = sequences
      ? { sequences: sequencesArg(a.sequences), sequence_type: a.sequence_type, options: a.options }
      : { inputs: inputsArg(a.inputs), options: a.options };
    return okResult(await runTask(gw, route, entry.model, entry.task.name, request, extra));
  } catch (e) {
    return errorResult(gw, e);
  }
}
