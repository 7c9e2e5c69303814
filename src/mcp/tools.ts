// tools/list: one tool per task of every ready model (named <model>__<task>) after the built-in
// analyze_sequences, list_models and model_info, computed from the registry on every request so
// that the list never goes stale.
import { createHash } from 'node:crypto';
import type { Tool } from '@modelcontextprotocol/sdk/types.js';
import type { InferenceContext } from '../inference/context.js';
import { SEQUENCE_TYPES, type Manifest, type TaskSpec } from '../manifest/schema.js';
import { taskInputSchema } from './schemas.js';

export const BUILTIN_TOOLS = ['analyze_sequences', 'list_models', 'model_info'] as const;

/** The name length most MCP hosts (and LLM tool-calling APIs) accept. */
const MAX_TOOL_NAME = 64;

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
export function taskTools(gw: InferenceContext): TaskTool[] {
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
function listed(gw: InferenceContext, t: TaskTool): boolean {
  return gw.registry.status(t.model) === 'ready';
}

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
  const parts = [
    t.task.description || m.description,
    `Model ${m.name} ${m.version}${m.description ? `: ${m.description}` : ''}`,
    inputSummary(t.task, maxBatch),
  ];
  if (t.task.output.description)
    parts.push(`Output per ${t.task.input_type === 'sequence' ? 'sequence' : 'input'}: ${t.task.output.description}`);
  return parts.map((p) => p.trim()).join('\n');
}

function builtinTools(gw: InferenceContext, tasks: TaskTool[]): Tool[] {
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
          sequences: {
            type: 'array',
            items: { type: 'string', minLength: 1 },
            minItems: 1,
            maxItems: maxBatch,
            description: 'DNA, RNA or protein sequences (IUPAC letters)',
          },
          task_type: {
            type: 'string',
            ...(taskTypes.length ? { enum: taskTypes } : {}),
            description: 'The task to run, e.g. gc_content or embedding',
          },
          sequence_type: {
            type: 'string',
            enum: [...SEQUENCE_TYPES],
            description:
              'Skip detection: read every sequence as this type (a protein made only of nucleotide letters needs it)',
          },
          options: {
            type: 'object',
            additionalProperties: true,
            description: 'Task options, passed to the chosen model',
          },
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
      description:
        'Every installed model: version, status (ready, loading, unloaded, failed), tasks with their tool names, sequence types and limits.',
      inputSchema: { type: 'object', properties: {}, additionalProperties: false },
      annotations: { readOnlyHint: true, idempotentHint: true, openWorldHint: false },
    },
    {
      name: 'model_info',
      title: 'Model info',
      description:
        "One model's manifest: tasks with input, output and options, sequence types, limits, resources, status and metadata.",
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
export function listTools(gw: InferenceContext): Tool[] {
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
