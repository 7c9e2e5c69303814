// Pipelines: model tasks chained in a YAML file (docs/jobs.md). Each step calls its own
// model's deployment, so every step runs in that model's isolated workers. A step's input (a
// sequence, or any input type its task takes: an OCR step's text into a language identifier)
// and options come from fields of the pipeline input or of earlier steps' outputs.
//
//   name: codon-design
//   steps:
//     - name: optimize
//       model: codon
//       task: codon_optimize
//       options: { organism: human }
//     - name: cai
//       model: codon
//       task: codon_adaptation_index
//       sequence: optimize.sequence
//       options_from: { organism: optimize.organism }
//     - name: properties
//       model: protein-props
//       task: property_prediction
//       sequence: { from: optimize.protein, until_stop: true }
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { IsoError } from '../errors.js';
import type { Manifest, TaskSpec } from '../manifest/schema.js';
import { resolveTask } from '../api/predict-request.js';
import type { WorkItem } from '../worker/protocol.js';
import { errorRecord, successRecord, type ItemErrorBody, type OutputRecord } from './formats.js';
import { setOwn } from './input.js';
import {
  callModel,
  isItemError,
  itemError,
  fatalUnless,
  recordOptions,
  round,
  validateRecordInput,
  type JobItem,
  type WorkContext,
} from './work.js';
import { describeZod } from '../validation/zod-message.js';

const STEP_NAME = /^[A-Za-z_][A-Za-z0-9_-]{0,63}$/;
/**
 * Step names key each record's output object. Inside, they live in Maps, so "constructor" or
 * "toString" are names like any other; "__proto__" is refused: as a key of the JSON a client
 * reads back it is a prototype, not a field, for most JavaScript consumers.
 */
const stepName = z
  .string()
  .regex(STEP_NAME, 'letters, digits, _ and -')
  .refine((n) => n !== '__proto__', '"__proto__" is reserved: it cannot name a field of the output object');
const PATH = /^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*$/;

const fieldRef = z.string().regex(PATH, 'a field path such as optimize.sequence or input.organism');

const sequenceMapping = z.union([
  fieldRef,
  z
    .object({
      from: fieldRef,
      /** Cut the text at its first "*" (a translation up to its stop codon). */
      until_stop: z.boolean().default(false),
    })
    .strict(),
]);

const stepSchema = z
  .object({
    name: stepName.optional(),
    model: z.string().min(1),
    task: z.string().optional(),
    /** Where this step's sequence comes from: default the record's input (or sequence) for the first step, <previous>.sequence after. */
    sequence: sequenceMapping.optional(),
    /** The same, for a task of any input type (`input: ocr.text`); give sequence or input, not both. */
    input: sequenceMapping.optional(),
    /** Fixed model options. */
    options: z.record(z.string(), z.unknown()).default({}),
    /** Options taken from fields: option name -> field path. */
    options_from: z.record(z.string(), fieldRef).default({}),
  })
  .strict();

export const pipelineSchema = z
  .object({
    name: z.string().regex(STEP_NAME, 'letters, digits, _ and -').default('pipeline'),
    version: z.union([z.string(), z.number()]).transform(String).default('1'),
    description: z.string().default(''),
    steps: z.array(stepSchema).min(1).max(32),
  })
  .strict();

export type PipelineInput = z.input<typeof pipelineSchema>;

export interface PipelineStep {
  name: string;
  model: string;
  task?: string;
  /**
   * Where the step's input comes from. `fromRecord`: the first step without a mapping takes the
   * record's own input, else its sequence (`from` then reads input.sequence).
   */
  sequence: { from: string[]; untilStop: boolean; fromRecord: boolean };
  options: Record<string, unknown>;
  optionsFrom: [string, string[]][];
}

export interface PipelineDef {
  name: string;
  version: string;
  description: string;
  steps: PipelineStep[];
}

/** What a pipeline job runs. */
export interface PipelineSpec {
  kind: 'pipeline';
  pipeline: PipelineInput;
  /** Options for every step (only those a step's task declares are passed to it). */
  options: Record<string, unknown>;
}

/** Validates a pipeline definition (an object from YAML or JSON); throws INVALID_REQUEST. */
export function parsePipeline(raw: unknown): PipelineDef {
  const parsed = pipelineSchema.safeParse(raw);
  if (!parsed.success) throw new IsoError('INVALID_REQUEST', `invalid pipeline: ${describeZod(parsed.error)}`);
  const p = parsed.data;
  const names = new Set<string>(['input']);
  const steps: PipelineStep[] = [];
  p.steps.forEach((s, i) => {
    const name = s.name ?? `step${i + 1}`;
    if (names.has(name))
      throw new IsoError(
        'INVALID_REQUEST',
        `invalid pipeline: steps.${i}.name: "${name}" is ${name === 'input' ? 'reserved' : 'used twice'}`,
      );
    const ref = (path: string, what: string): string[] => {
      const parts = path.split('.');
      if (!names.has(parts[0]!)) {
        throw new IsoError(
          'INVALID_REQUEST',
          `invalid pipeline: steps.${i}.${what}: "${path}" must start with input or an earlier step (${[...names].join(', ')})`,
        );
      }
      if (parts.length < 2)
        throw new IsoError('INVALID_REQUEST', `invalid pipeline: steps.${i}.${what}: "${path}" names no field`);
      return parts;
    };
    if (s.sequence !== undefined && s.input !== undefined)
      throw new IsoError('INVALID_REQUEST', `invalid pipeline: steps.${i}: give sequence or input, not both`);
    const given = s.input ?? s.sequence;
    const mapping = given ?? (i === 0 ? 'input.sequence' : `${steps[i - 1]!.name}.sequence`);
    const seq = typeof mapping === 'string' ? { from: mapping, until_stop: false } : mapping;
    steps.push({
      name,
      model: s.model,
      task: s.task,
      sequence: {
        from: ref(seq.from, s.input !== undefined ? 'input' : 'sequence'),
        untilStop: seq.until_stop,
        fromRecord: i === 0 && given === undefined,
      },
      options: s.options,
      optionsFrom: Object.entries(s.options_from).map(([k, path]) => [k, ref(path, `options_from.${k}`)]),
    });
    names.add(name);
  });
  return { name: p.name, version: p.version, description: p.description, steps };
}

/** Reads a pipeline YAML (or JSON) file. */
export function loadPipelineFile(file: string): PipelineInput {
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new IsoError('INVALID_REQUEST', `${file}: not valid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  parsePipeline(raw);
  return raw as PipelineInput;
}

/** Checks that every step's model and task exist; returns each step's manifest and task. */
export function resolveSteps(
  def: PipelineDef,
  manifest: (model: string) => Manifest,
): { manifest: Manifest; task: TaskSpec }[] {
  return def.steps.map((s) => {
    const m = manifest(s.model);
    try {
      return { manifest: m, task: resolveTask(m, s.task) };
    } catch (e) {
      throw new IsoError('INVALID_REQUEST', `pipeline step ${s.name}: ${(e as Error).message}`);
    }
  });
}

/** A field path: its first name in the record's scope (input, step outputs), then own properties only. */
function lookup(scope: ReadonlyMap<string, unknown>, path: string[]): unknown {
  let v: unknown = scope.get(path[0]!);
  for (const p of path.slice(1)) {
    if (typeof v !== 'object' || v === null || !Object.hasOwn(v, p)) return undefined;
    v = (v as Record<string, unknown>)[p];
  }
  return v;
}

interface ItemState {
  pos: number;
  /** `input` and each completed step's output, by step name. */
  scope: Map<string, unknown>;
  steps: Record<string, unknown>[];
  ms: number;
  error?: ItemErrorBody & { step: string };
  outputs: Map<string, unknown>;
}

/** Runs one chunk through every step, in order; a record that fails a step skips the rest. */
export async function processPipelineChunk(
  spec: PipelineSpec,
  chunk: JobItem[],
  ctx: WorkContext,
): Promise<OutputRecord[]> {
  const def = parsePipeline(spec.pipeline);
  const resolved = fatalUnless(() => resolveSteps(def, (m) => ctx.executor.manifest(m)), 'INVALID_REQUEST');
  const states: ItemState[] = chunk.map((it, pos) => ({
    pos,
    scope: new Map<string, unknown>([
      [
        'input',
        {
          id: it.input.id,
          sequence: it.input.sequence,
          input: it.input.input,
          organism: it.input.organism,
          parameters: it.input.parameters ?? {},
        },
      ],
    ]),
    steps: [],
    ms: 0,
    outputs: new Map<string, unknown>(),
  }));
  for (let s = 0; s < def.steps.length; s++) {
    const step = def.steps[s]!;
    const { manifest, task } = resolved[s]!;
    const declared = new Set(Object.keys(task.options));
    const alive: ItemState[] = [];
    const items: WorkItem[] = [];
    for (const st of states) {
      if (st.error) continue;
      const fail = (e: unknown): void => {
        st.error = { ...itemError(e), step: step.name };
        st.steps.push({
          step: step.name,
          model: step.model,
          task: task.name,
          version: manifest.version,
          status: 'error',
          processing_time_ms: 0,
        });
      };
      try {
        const record = chunk[st.pos]!.input;
        // The first step takes the record's own input (any type), else its sequence.
        const own = step.sequence.fromRecord && record.input !== undefined;
        const field = own ? 'input.input' : step.sequence.from.join('.');
        let value = own ? record.input : lookup(st.scope, step.sequence.from);
        if (value === undefined || value === null) throw new IsoError('INVALID_REQUEST', `field ${field} is missing`);
        if (step.sequence.untilStop && typeof value === 'string') value = value.split('*', 1)[0]!;
        const v = validateRecordInput(task, value, field, step.sequence.fromRecord && !own);
        // Record-level organism / parameters and the job's options reach a step only for options its task declares.
        const inherited = recordOptions(spec.options, chunk[st.pos]!.input, (k) => declared.has(k));
        const options: Record<string, unknown> = { ...step.options, ...inherited };
        for (const [k, path] of step.optionsFrom) {
          const val = lookup(st.scope, path);
          if (val !== undefined) setOwn(options, k, val);
        }
        alive.push(st);
        items.push({ ...v.payload, options });
      } catch (e) {
        fail(e);
      }
    }
    if (items.length === 0) continue;
    const r = await callModel(ctx, step.model, task.name, items);
    alive.forEach((st, i) => {
      const out = r.outputs[i] ?? {
        error: { code: 'PREDICTION_FAILED', message: 'the model returned no output for this record' },
      };
      const ms = r.ms[i] ?? 0;
      st.ms += ms;
      st.steps.push({
        step: step.name,
        model: step.model,
        task: task.name,
        version: r.version,
        status: isItemError(out) ? 'error' : 'success',
        processing_time_ms: round(ms),
      });
      if (isItemError(out)) st.error = { ...out.error, step: step.name };
      else {
        st.outputs.set(step.name, out);
        st.scope.set(step.name, out);
      }
    });
  }
  const service = `pipeline:${def.name}`;
  return states.map((st) => {
    const it = chunk[st.pos]!;
    const meta = {
      request_id: it.input.id,
      processing_time_ms: round(st.ms),
      service,
      version: def.version,
      index: it.index,
      steps: st.steps,
    };
    // fromEntries defines own properties: whatever a step is called, its output is a field.
    const outputs = Object.fromEntries(st.outputs) as Record<string, unknown>;
    if (st.error) return errorRecord(service, { ...st.error, ...(st.outputs.size && { outputs }) }, meta);
    return successRecord(service, outputs, meta);
  });
}
