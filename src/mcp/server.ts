// The MCP (Model Context Protocol) face of a gateway: one tool per model task plus
// analyze_sequences, list_models and model_info, all built from the manifests the registry holds
// right now. A task tool's input schema is its task's input type (sequences, text, the task's own
// JSON Schema, named tensors, base64 images or audio, chat conversations): one tool per task
// rather than one `predict` tool with a oneOf of every task, because each host then shows the
// model one exact schema, and several tool-calling APIs refuse a top-level oneOf. Both transports (stdio: cli/mcp.ts, Streamable HTTP: mcp/http.ts) serve this server.
//
// Tools are answered by our own tools/list and tools/call handlers on the McpServer's underlying
// Server, not by McpServer.registerTool: registerTool wants zod schemas (our schemas come from
// manifests as JSON Schema) and validates arguments itself, which would replace the REST API's
// error codes (INVALID_SEQUENCE, SEQUENCE_TOO_LONG, …) by a generic message. Computing the list on
// every request also means it can never go stale; a light poll of the registry sends
// notifications/tools/list_changed when a model is loaded, unloaded, reloaded, added or removed.
import { createHash, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import { CallToolRequestSchema, ListToolsRequestSchema, type CallToolResult, type ServerNotification, type ServerRequest, type Tool } from '@modelcontextprotocol/sdk/types.js';
import { checkBatchSize } from '../api/batch-limit.js';
import { parsePrediction } from '../api/predict-request.js';
import { modelInfo } from '../api/routes/native.js';
import { IsoError, fromWorkerError } from '../errors.js';
import type { Gateway } from '../gateway.js';
import { SEQUENCE_TYPES, type Manifest, type SequenceType, type TaskSpec } from '../manifest/schema.js';
import { PACKAGE_ROOT } from '../paths.js';
import { storageUnavailable } from '../store/storage-fault.js';
import { CHAT_ROLES } from '../validation/inputs/chat.js';
import type { TensorSpec } from '../validation/inputs/tensor.js';
import { ALPHABETS, detectSequenceType, normaliseSequence, parseSequenceType } from '../validation/sequence.js';
import { isItemError, type ItemOutput } from '../worker/protocol.js';
import { chooseModel, type ChoiceCandidate } from './choose.js';

type Extra = RequestHandlerExtra<ServerRequest, ServerNotification>;
type JsonSchema = Record<string, unknown>;

export interface McpServerOptions {
  /** How often the registry is compared with the last tool list sent (ms). Default 500. */
  watchIntervalMs?: number;
  /** Recorded as the request log's route ("mcp:stdio", "mcp:http"). */
  transport?: string;
}

export const BUILTIN_TOOLS = ['analyze_sequences', 'list_models', 'model_info'] as const;

/** Pause between the final progress notification and the result (see runTask). */
const PROGRESS_SETTLE_MS = 20;

/** The name length most MCP hosts (and LLM tool-calling APIs) accept. */
const MAX_TOOL_NAME = 64;

const VERSION = ((): string => {
  try {
    return (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version?: string }).version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
})();

const INSTRUCTIONS =
  'isomodel serves models of many input types: bio sequences (DNA, RNA, protein), text, JSON, tensors, images, ' +
  'audio and chat. Each tool named <model>__<task> runs one task of one model on a batch: `sequences` for sequence ' +
  'tasks, `inputs` for every other type (its schema says what one input is; images and audio are base64). ' +
  'analyze_sequences picks the model for a task_type on sequences by itself. list_models and model_info describe ' +
  'what is installed. Errors carry the codes of the isomodel REST API (INVALID_SEQUENCE, SEQUENCE_TOO_LONG, ' +
  'INVALID_INPUT, INPUT_TOO_LONG, UNSUPPORTED_MEDIA_TYPE, PAYLOAD_TOO_LARGE, MODEL_NOT_FOUND, MODEL_NOT_LOADED, …).';

// ---------------------------------------------------------------------------------------------
// Tool catalog: which tool is which model task.

export interface TaskTool {
  tool: string;
  model: string;
  task: TaskSpec;
  manifest: Manifest;
}

function shortHash(text: string): string {
  return createHash('sha1').update(text).digest('hex').slice(0, 6);
}

/**
 * `<model>__<task>` in the alphabet every MCP host accepts ([A-Za-z0-9_-], at most 64): other
 * characters (the "." model names may hold) become "_", and an over-long name is cut and ends in
 * a hash of the full one.
 */
export function taskToolName(model: string, task: string): string {
  const base = `${model}__${task}`.replace(/[^A-Za-z0-9_-]/g, '_');
  if (base.length <= MAX_TOOL_NAME) return base;
  return `${base.slice(0, MAX_TOOL_NAME - 7)}_${shortHash(`${model}/${task}`)}`;
}

/** Every task of every known package (loaded or not), with collision-free tool names. */
export function taskTools(gw: Gateway): TaskTool[] {
  const used = new Set<string>(BUILTIN_TOOLS);
  const out: TaskTool[] = [];
  for (const model of gw.registry.names()) {
    const manifest = gw.registry.package(model).manifest;
    for (const task of manifest.tasks) {
      let tool = taskToolName(model, task.name);
      // Two packages whose names differ only in characters that sanitise alike ("a.b", "a_b").
      if (used.has(tool)) tool = `${tool.slice(0, MAX_TOOL_NAME - 7)}_${shortHash(`${model}/${task.name}`)}`;
      used.add(tool);
      out.push({ tool, model, task, manifest });
    }
  }
  return out;
}

/** Only models that can answer now are offered as tools; the others still resolve on call. */
function listed(gw: Gateway, t: TaskTool): boolean {
  return gw.registry.status(t.model) === 'ready';
}

// ---------------------------------------------------------------------------------------------
// Input schemas, from the manifest.

function optionSchemas(task: TaskSpec): Record<string, JsonSchema> {
  // fromEntries defines each key as data: an option named "__proto__" stays an option.
  return Object.fromEntries(
    Object.entries(task.options).map(([k, v]) => [k, typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as JsonSchema) : { description: String(v) }]),
  );
}

const OPTIONS_DESCRIPTION = 'Task options (see each property). Options not listed are passed to the model unchanged, as the REST API does.';

function tensorSchema(t: TensorSpec): JsonSchema {
  const shape = `[${t.shape.join(', ')}]`;
  return {
    description: `${t.datatype} tensor of shape ${shape} (-1: any size): a nested array, or {datatype, shape, data} with data flat or nested, row-major`,
    anyOf: [
      { type: 'array' },
      {
        type: 'object',
        properties: { datatype: { type: 'string', const: t.datatype }, shape: { type: 'array', items: { type: 'integer', minimum: 0 } }, data: { type: 'array' } },
        required: ['data'],
        additionalProperties: false,
      },
    ],
  };
}

function mediaSchema(task: TaskSpec): JsonSchema {
  const limits = task.input_type === 'image' ? `at most ${task.max_bytes} bytes and ${task.max_pixels} pixels` : `at most ${task.max_bytes} bytes and ${task.max_seconds} s`;
  return {
    description: `${task.input_type === 'image' ? 'An image' : 'Audio'} (${task.formats.join(', ')}), ${limits}: base64 text, a data: URL, or {data: base64, format}. The format is read from the bytes.`,
    anyOf: [
      { type: 'string', contentEncoding: 'base64' },
      {
        type: 'object',
        properties: { data: { type: 'string', contentEncoding: 'base64' }, format: { type: 'string', enum: [...task.formats] } },
        required: ['data'],
        additionalProperties: false,
      },
    ],
  };
}

/** JSON Schema of one input of a non-sequence task, and definitions its $refs need at the root. */
function itemSchema(task: TaskSpec): { schema: JsonSchema; defs: JsonSchema } {
  switch (task.input_type) {
    case 'text':
      return { schema: { type: 'string', minLength: task.min_length, maxLength: task.max_length, description: `Text, ${task.min_length} to ${task.max_length} characters. ${task.input.description}`.trim() }, defs: {} };
    case 'json': {
      // The task's own schema; its definitions move to the tool schema's root so that local
      // $refs (#/$defs/…, #/definitions/…) still resolve there.
      const { $schema: _s, $id: _i, $defs, definitions, ...rest } = task.schema as JsonSchema;
      const defs: JsonSchema = {};
      if ($defs !== undefined) defs.$defs = $defs;
      if (definitions !== undefined) defs.definitions = definitions;
      return { schema: { ...rest, description: `${(rest.description as string | undefined) ?? task.input.description ?? ''} (a JSON value matching this schema, at most ${task.max_bytes} bytes)`.trim() }, defs };
    }
    case 'tensor':
      return {
        schema: {
          type: 'object',
          description: `Named tensors: ${task.tensors.map((t) => `${t.name} ${t.datatype} [${t.shape.join(', ')}]`).join(', ')}; at most ${task.max_elements} elements in all.`,
          properties: Object.fromEntries(task.tensors.map((t) => [t.name, tensorSchema(t)])),
          required: task.tensors.map((t) => t.name),
          additionalProperties: false,
        },
        defs: {},
      };
    case 'image':
    case 'audio':
      return { schema: mediaSchema(task), defs: {} };
    case 'chat':
      return {
        schema: {
          type: 'object',
          description: `A conversation of at most ${task.max_messages} messages and ${task.max_length} characters of content.`,
          properties: {
            messages: {
              type: 'array',
              minItems: 1,
              maxItems: task.max_messages,
              items: {
                type: 'object',
                properties: { role: { type: 'string', enum: [...CHAT_ROLES] }, content: { type: 'string' }, name: { type: 'string' } },
                required: ['role', 'content'],
              },
            },
          },
          required: ['messages'],
          additionalProperties: false,
        },
        defs: {},
      };
    case 'sequence':
      throw new Error('sequence tasks take `sequences`');
  }
}

export function taskInputSchema(task: TaskSpec, maxBatch: number): JsonSchema {
  const options = { type: 'object', description: OPTIONS_DESCRIPTION, properties: optionSchemas(task), additionalProperties: true };
  if (task.input_type !== 'sequence') {
    const { schema, defs } = itemSchema(task);
    return {
      type: 'object',
      properties: {
        inputs: { type: 'array', description: `1 to ${maxBatch} ${task.input_type} inputs, each answered in order.`, items: schema, minItems: 1, maxItems: maxBatch },
        options,
      },
      required: ['inputs'],
      additionalProperties: false,
      ...defs,
    };
  }
  const types = task.sequence_types.join(' or ');
  return {
    type: 'object',
    properties: {
      sequences: {
        type: 'array',
        description: `${types} sequences (IUPAC letters, case-insensitive, whitespace ignored), ${task.min_length} to ${task.max_length} residues each. ${task.input.description}`.trim(),
        items: { type: 'string', minLength: task.min_length, maxLength: task.max_length },
        minItems: 1,
        maxItems: maxBatch,
      },
      options,
      sequence_type: {
        type: 'string',
        enum: [...task.sequence_types],
        description: `Read every sequence as this type instead of detecting it (accepted: ${task.sequence_types.join(', ')}).`,
      },
    },
    required: ['sequences'],
    additionalProperties: false,
  };
}

/** One line on what a task's tool takes. */
function inputSummary(task: TaskSpec, maxBatch: number): string {
  const n = `1 to ${maxBatch}`;
  switch (task.input_type) {
    case 'sequence':
      return `Input: ${n} ${task.sequence_types.join('/')} sequences of at most ${task.max_length} residues.`;
    case 'text':
      return `Input: ${n} texts of at most ${task.max_length} characters.`;
    case 'json':
      return `Input: ${n} JSON values matching the task's schema (at most ${task.max_bytes} bytes each).`;
    case 'tensor':
      return `Input: ${n} items, each the tensors ${task.tensors.map((t) => `${t.name} (${t.datatype} [${t.shape.join(', ')}])`).join(', ')}.`;
    case 'image':
      return `Input: ${n} images (${task.formats.join(', ')}) as base64, at most ${task.max_bytes} bytes and ${task.max_pixels} pixels each.`;
    case 'audio':
      return `Input: ${n} audio files (${task.formats.join(', ')}) as base64, at most ${task.max_bytes} bytes and ${task.max_seconds} s each.`;
    case 'chat':
      return `Input: ${n} conversations {messages: [{role, content}]} of at most ${task.max_messages} messages and ${task.max_length} characters.`;
  }
}

function taskDescription(t: TaskTool, maxBatch: number): string {
  const m = t.manifest;
  const parts = [t.task.description || m.description, `Model ${m.name} ${m.version}${m.description ? `: ${m.description}` : ''}`, inputSummary(t.task, maxBatch)];
  if (t.task.output.description) parts.push(`Output per ${t.task.input_type === 'sequence' ? 'sequence' : 'input'}: ${t.task.output.description}`);
  return parts.map((p) => p.trim()).join('\n');
}

function builtinTools(gw: Gateway, tasks: TaskTool[]): Tool[] {
  const maxBatch = gw.config.max_batch_sequences;
  const ready = tasks.filter((t) => listed(gw, t));
  const taskTypes = [...new Set(ready.filter((t) => t.task.input_type === 'sequence').map((t) => t.task.name))].sort();
  const names = gw.registry.names();
  return [
    {
      name: 'analyze_sequences',
      title: 'Analyze sequences (automatic model choice)',
      description:
        'Runs a task on sequences with the model chosen automatically: the sequence type (DNA, RNA, protein) is ' +
        'detected, and among the ready models that have task_type, accept that type and the lengths, the most ' +
        'specific one answers. The result names the chosen model and why.' +
        (taskTypes.length ? ` Task types now: ${taskTypes.join(', ')}.` : ' No model is ready now.'),
      inputSchema: {
        type: 'object',
        properties: {
          sequences: { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1, maxItems: maxBatch, description: 'DNA, RNA or protein sequences (IUPAC letters)' },
          task_type: { type: 'string', ...(taskTypes.length ? { enum: taskTypes } : {}), description: 'The task to run, e.g. gc_content or embedding' },
          sequence_type: { type: 'string', enum: [...SEQUENCE_TYPES], description: 'Skip detection: read every sequence as this type (a protein made only of nucleotide letters needs it)' },
          options: { type: 'object', additionalProperties: true, description: 'Task options, passed to the chosen model' },
          model: { type: 'string', description: 'Use this model instead of choosing one' },
        },
        required: ['sequences', 'task_type'],
        additionalProperties: false,
      },
      annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
    },
    {
      name: 'list_models',
      title: 'List models',
      description: 'Every installed model: version, status (ready, loading, unloaded, failed), tasks with their tool names, sequence types and limits.',
      inputSchema: { type: 'object', properties: {}, additionalProperties: false },
      annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
    },
    {
      name: 'model_info',
      title: 'Model info',
      description: "One model's manifest: tasks with input, output and options, sequence types, limits, resources, status and metadata.",
      inputSchema: {
        type: 'object',
        properties: { model: { type: 'string', ...(names.length ? { enum: names } : {}), description: 'Model name' } },
        required: ['model'],
        additionalProperties: false,
      },
      annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
    },
  ];
}

/** The tools/list answer for the registry as it is now. */
export function listTools(gw: Gateway): Tool[] {
  const tasks = taskTools(gw);
  const maxBatch = gw.config.max_batch_sequences;
  const perTask: Tool[] = tasks
    .filter((t) => listed(gw, t))
    .map((t) => ({
      name: t.tool,
      title: `${t.model}: ${t.task.name}`,
      description: taskDescription(t, maxBatch),
      inputSchema: taskInputSchema(t.task, maxBatch) as Tool['inputSchema'],
      annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
      _meta: { 'isomodel/model': t.model, 'isomodel/version': t.manifest.version, 'isomodel/task': t.task.name },
    }));
  return [...builtinTools(gw, tasks), ...perTask];
}

// ---------------------------------------------------------------------------------------------
// Results and errors.

export interface ToolErrorBody {
  error: { code: string; status: number; message: string; details: unknown };
}

function okResult(data: Record<string, unknown>): CallToolResult {
  return { content: [{ type: 'text', text: JSON.stringify(data) }], structuredContent: data };
}

function errorResult(gw: Gateway, e: unknown): CallToolResult {
  let err = e instanceof IsoError ? e : storageUnavailable(e);
  if (!err) {
    gw.logger.error({ err: e }, 'MCP tool call failed');
    err = new IsoError('INTERNAL_ERROR', 'internal error');
  }
  const body: ToolErrorBody = { error: { code: err.code, status: err.status, message: err.message, details: err.details ?? null } };
  return { isError: true, content: [{ type: 'text', text: JSON.stringify(body) }], structuredContent: body as unknown as Record<string, unknown> };
}

function argsObject(args: unknown, allowed: readonly string[]): Record<string, unknown> {
  const a = (args ?? {}) as Record<string, unknown>;
  if (typeof a !== 'object' || Array.isArray(a)) throw new IsoError('INVALID_REQUEST', 'tool arguments must be an object');
  const unknown = Object.keys(a).filter((k) => !allowed.includes(k));
  if (unknown.length) throw new IsoError('INVALID_REQUEST', `unknown argument${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}; allowed: ${allowed.join(', ')}`);
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

function withoutConfidence(o: ItemOutput, keep: boolean): ItemOutput {
  if (keep || !('confidence' in o)) return o;
  const { confidence: _drop, ...rest } = o;
  return rest;
}

// ---------------------------------------------------------------------------------------------
// Running a task (shared by the per-task tools and analyze_sequences).

/** `sequences` for sequence tasks, `inputs` for every other input type. */
interface TaskInput {
  sequences?: unknown[];
  inputs?: unknown[];
  sequence_type?: unknown;
  options?: unknown;
}

async function runTask(gw: Gateway, route: string, model: string, taskName: string, input: TaskInput, extra: Extra): Promise<Record<string, unknown>> {
  const t0 = performance.now();
  const requestId = randomUUID();
  let sequences = 0;
  let task: string | undefined;
  try {
    const dep = gw.registry.serving(model);
    const parsed = parsePrediction(
      dep.pkg.manifest,
      { ...(input.inputs ? { inputs: input.inputs } : { sequences: input.sequences }), task_type: taskName, sequence_type: input.sequence_type, options: input.options },
      'batch',
      gw.config.max_batch_sequences,
    );
    const typed = parsed.task.input_type !== 'sequence';
    task = parsed.task.name;
    sequences = parsed.items.length;
    const ac = new AbortController();
    const onAbort = (): void => ac.abort();
    extra.signal.addEventListener('abort', onAbort, { once: true });
    let outputs: ItemOutput[];
    try {
      const token = extra._meta?.progressToken;
      if (token === undefined) {
        outputs = await dep.submit({ task, items: parsed.items, signal: ac.signal });
      } else {
        // Chunks of the model's own batch size, submitted together (the deployment batches and
        // spreads them over replicas as usual); progress is reported as each chunk completes.
        const size = Math.max(1, dep.pkg.manifest.batching.max_batch_size);
        const total = parsed.items.length;
        let done = 0;
        const parts: Promise<ItemOutput[]>[] = [];
        for (let i = 0; i < total; i += size) {
          parts.push(
            dep.submit({ task, items: parsed.items.slice(i, i + size), signal: ac.signal }).then(async (out) => {
              done += out.length;
              // Awaited: a notification that arrived after the result would be dropped by the client.
              await extra
                .sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress: done, total, message: `${done} of ${total} ${typed ? 'inputs' : 'sequences'} done` } })
                .catch(() => undefined);
              return out;
            }),
          );
        }
        try {
          outputs = (await Promise.all(parts)).flat();
        } catch (e) {
          ac.abort();
          throw e;
        }
        // The last notification and the result are written back to back; clients of the
        // TypeScript SDK (1.x) dispatch notifications a microtask later than responses and drop
        // progress that arrives with the result (typescript-sdk#2580). A short gap lets it land.
        await new Promise((r) => setTimeout(r, PROGRESS_SETTLE_MS));
      }
    } finally {
      extra.signal.removeEventListener('abort', onAbort);
    }
    const keepConfidence = parsed.items[0]!.options.return_confidence !== false;
    let failed = 0;
    const predictions = outputs.map((out, i) => {
      // Sequences are echoed (short text); other inputs (images…) are named by their index.
      const which = typed ? { index: i } : { sequence: parsed.items[i]!.sequence };
      if (isItemError(out)) {
        failed++;
        return { ...which, error: out.error };
      }
      return typed ? { ...which, ...withoutConfidence(out, keepConfidence) } : { ...which, sequence_type: parsed.sequenceTypes[i], ...withoutConfidence(out, keepConfidence) };
    });
    if (failed === outputs.length) {
      const first = outputs[0]!;
      if (outputs.length === 1 && isItemError(first)) throw fromWorkerError(first.error.code, first.error.message);
      throw new IsoError('PREDICTION_FAILED', `every ${typed ? 'input' : 'sequence'} of the batch failed`, { errors: predictions.map((p, index) => ({ index, ...(p as { error: unknown }) })) });
    }
    const latency = performance.now() - t0;
    dep.stats.record(true, latency, sequences);
    gw.metrics.observeRequest(dep.name, dep.version, task, true, 'OK', latency / 1000, sequences);
    gw.store.logRequest({ request_id: requestId, model, version: dep.version, task, route, status: 'success', sequences, latency_ms: latency, client: route });
    return {
      model: dep.name,
      version: dep.version,
      task_type: task,
      ...(typed && { input_type: parsed.task.input_type }),
      predictions,
      total_sequences: outputs.length,
      successful: outputs.length - failed,
      failed,
      processing_time: latency / 1000,
    };
  } catch (e) {
    const latency = performance.now() - t0;
    const code = e instanceof IsoError ? e.code : 'INTERNAL_ERROR';
    const dep = gw.registry.deployment(model);
    if (dep) {
      dep.stats.record(false, latency, sequences, code);
      gw.metrics.observeRequest(dep.name, dep.version, task ?? (dep.pkg.manifest.tasks.some((t) => t.name === taskName) ? taskName : 'unknown'), false, code, latency / 1000, sequences);
    }
    if (code !== 'MODEL_NOT_FOUND') {
      gw.store.logRequest({ request_id: requestId, model, task, route, status: 'error', error_code: code, sequences, latency_ms: latency, client: route });
    }
    throw e;
  }
}

/** Detected (or declared) type of each sequence, for the model choice; bad letters fail here. */
function sequenceTypesOf(raws: unknown[], declared: SequenceType | undefined): { types: SequenceType[]; longest: number; shortest: number } {
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
      throw new IsoError('INVALID_SEQUENCE', `sequences[${i}] is neither DNA, RNA nor protein: character '${seq[at]}' at position ${at + 1}`, {
        index: i,
        position: at + 1,
        character: seq[at],
      });
    }
    types.push(type);
  });
  return { types, longest, shortest };
}

async function analyzeSequences(gw: Gateway, route: string, args: unknown, extra: Extra): Promise<Record<string, unknown>> {
  const a = argsObject(args, ['sequences', 'task_type', 'sequence_type', 'options', 'model']);
  const raws = sequencesArg(a.sequences);
  if (typeof a.task_type !== 'string' || !a.task_type) throw new IsoError('INVALID_REQUEST', 'task_type is required (a task name such as gc_content)');
  const taskType = a.task_type;
  const input: TaskInput = { sequences: raws, sequence_type: a.sequence_type, options: a.options };
  if (a.model !== undefined) {
    if (typeof a.model !== 'string') throw new IsoError('INVALID_REQUEST', 'model must be a string');
    const result = await runTask(gw, route, a.model, taskType, input, extra);
    return { chosen: { model: a.model, task_type: taskType, reason: 'model given by the caller', alternatives: [] }, ...result };
  }
  if (raws.length === 0) throw new IsoError('INVALID_REQUEST', 'sequences must hold at least one sequence');
  checkBatchSize(raws.length, gw.config.max_batch_sequences);
  const declared = parseSequenceType(a.sequence_type);
  const { types, longest, shortest } = sequenceTypesOf(raws, declared);
  const candidates: ChoiceCandidate[] = gw.registry.names().map((name) => ({ name, manifest: gw.registry.package(name).manifest, status: gw.registry.status(name) }));
  const known = [...new Set(candidates.flatMap((c) => c.manifest.tasks.map((t) => t.name)))].sort();
  const detected = [...new Set(types)];
  if (!known.includes(taskType)) {
    throw new IsoError('MODEL_NOT_FOUND', `no installed model has task "${taskType}"; task types: ${known.join(', ') || 'none'}`, { task_type: taskType, task_types: known });
  }
  const res = chooseModel(candidates, { taskType, sequenceTypes: types, longest, shortest });
  if (!res.ok) {
    const onlyStatus = res.rejected.every((r) => r.reason.startsWith('model is '));
    const details = { task_type: taskType, sequence_types: detected, rejected: res.rejected };
    if (onlyStatus) throw new IsoError('MODEL_NOT_LOADED', `no model with task ${taskType} is ready: ${res.rejected.map((r) => `${r.model} (${r.reason})`).join('; ')}`, details, 2);
    throw new IsoError('MODEL_NOT_FOUND', `no ready model serves ${taskType} for ${detected.join(' and ')} sequences: ${res.rejected.map((r) => `${r.model}: ${r.reason}`).join('; ')}`, details);
  }
  const { choice } = res;
  const result = await runTask(gw, route, choice.model, choice.task.name, input, extra);
  return {
    chosen: { model: choice.model, task_type: choice.task.name, sequence_types: detected, reason: choice.reason, alternatives: choice.alternatives },
    ...result,
  };
}

function listModels(gw: Gateway): Record<string, unknown> {
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

function modelInfoTool(gw: Gateway, args: unknown): Record<string, unknown> {
  const a = argsObject(args, ['model']);
  if (typeof a.model !== 'string' || !a.model) throw new IsoError('INVALID_REQUEST', 'model is required');
  const info = modelInfo(gw, a.model);
  const tools = Object.fromEntries(taskTools(gw).filter((t) => t.model === a.model).map((t) => [t.task.name, t.tool]));
  return { ...info, tools };
}

function unknownTool(gw: Gateway, name: string): IsoError {
  const cut = name.indexOf('__');
  if (cut > 0) {
    const modelPart = name.slice(0, cut);
    const tools = taskTools(gw);
    const models = [...new Set(tools.filter((t) => t.model.replace(/[^A-Za-z0-9_-]/g, '_') === modelPart).map((t) => t.model))];
    if (models.length === 0) return new IsoError('MODEL_NOT_FOUND', `no model named "${modelPart.slice(0, 80)}"`, { available: gw.registry.names() });
    return new IsoError('NOT_FOUND', `model ${models[0]} has no task "${name.slice(cut + 2, cut + 82)}"`, {
      tools: tools.filter((t) => models.includes(t.model)).map((t) => t.tool),
    });
  }
  return new IsoError('NOT_FOUND', `no tool named "${name.slice(0, 80)}"; see tools/list`);
}

// ---------------------------------------------------------------------------------------------
// Following the registry: one poll per gateway, shared by every MCP session on it.

class RegistryWatch {
  private readonly subscribers = new Set<() => void>();
  private timer: NodeJS.Timeout | null = null;
  private last = '';

  constructor(
    private readonly gw: Gateway,
    private readonly intervalMs: number,
  ) {}

  private signature(): string {
    try {
      return JSON.stringify(listTools(this.gw));
    } catch {
      return this.last;
    }
  }

  subscribe(fn: () => void): () => void {
    if (!this.timer) {
      this.last = this.signature();
      this.timer = setInterval(() => this.tick(), this.intervalMs);
      this.timer.unref();
    }
    this.subscribers.add(fn);
    return () => {
      this.subscribers.delete(fn);
      if (this.subscribers.size === 0 && this.timer) {
        clearInterval(this.timer);
        this.timer = null;
      }
    };
  }

  private tick(): void {
    const now = this.signature();
    if (now === this.last) return;
    this.last = now;
    for (const fn of this.subscribers) fn();
  }
}

const watches = new WeakMap<Gateway, RegistryWatch>();

function watchFor(gw: Gateway, intervalMs: number): RegistryWatch {
  let w = watches.get(gw);
  if (!w) {
    w = new RegistryWatch(gw, intervalMs);
    watches.set(gw, w);
  }
  return w;
}

// ---------------------------------------------------------------------------------------------

/**
 * A new MCP server over `gw` (one per client connection / HTTP session). Its tools are answered by
 * handlers on `server.server`; do not call `registerTool` on it. Closing it stops its
 * list_changed subscription.
 */
export function createMcpServer(gw: Gateway, opts: McpServerOptions = {}): McpServer {
  const route = `mcp:${opts.transport ?? 'stdio'}`;
  const mcp = new McpServer({ name: 'isomodel', title: 'isomodel', version: VERSION }, { instructions: INSTRUCTIONS });
  const server = mcp.server;
  server.registerCapabilities({ tools: { listChanged: true } });

  server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: listTools(gw) }));

  server.setRequestHandler(CallToolRequestSchema, async (req, extra): Promise<CallToolResult> => {
    const { name, arguments: args } = req.params;
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
      if (entry.task.input_type !== 'sequence') {
        const a = argsObject(args, ['inputs', 'options']);
        return okResult(await runTask(gw, route, entry.model, entry.task.name, { inputs: inputsArg(a.inputs), options: a.options }, extra));
      }
      const a = argsObject(args, ['sequences', 'options', 'sequence_type']);
      return okResult(await runTask(gw, route, entry.model, entry.task.name, { sequences: sequencesArg(a.sequences), sequence_type: a.sequence_type, options: a.options }, extra));
    } catch (e) {
      return errorResult(gw, e);
    }
  });

  let unsubscribe: (() => void) | null = null;
  server.oninitialized = () => {
    unsubscribe ??= watchFor(gw, opts.watchIntervalMs ?? 500).subscribe(() => {
      server.sendToolListChanged().catch(() => undefined);
    });
  };
  server.onclose = () => {
    unsubscribe?.();
    unsubscribe = null;
  };
  return mcp;
}
