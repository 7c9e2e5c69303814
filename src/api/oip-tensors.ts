// Open Inference Protocol v2 tensors ⇄ isomodel work: an inference request's input tensors
// become validated work items of one task (validation/inputs), the task's outputs become typed
// output tensors, and a task's declared inputs and outputs become the model metadata's tensors.
// The routes are in api/routes/oip.ts; docs/open-inference.md has the mapping rules.
import { IsoError } from '../errors.js';
import type { InputType, Manifest, TaskSpec } from '../manifest/schema.js';
import { validateInput } from '../validation/inputs/index.js';
import { parseSequenceType } from '../validation/sequence.js';
import type { ItemOutput, WorkItem } from '../worker/protocol.js';
import { batchTooLarge } from './batch-limit.js';
import { resolveTask } from './predict-request.js';

export const SEQUENCES_INPUT = 'sequences';

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
  if (values.every((v) => typeof v === 'string'))
    return { name, datatype: 'BYTES', shape: [n], data: values, parameters: { content_type: 'str' } };
  return {
    name,
    datatype: 'BYTES',
    shape: [n],
    data: values.map((v) => JSON.stringify(v ?? null)),
    parameters: { content_type: 'json' },
  };
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
  return names.map((k) =>
    tensorFor(
      k,
      outputs.map((o) => (Object.hasOwn(o, k) ? (o[k] ?? null) : null)),
    ),
  );
}

/** What a task's output tensors look like, from the output example in its manifest. */
export function declaredOutputs(task: TaskSpec): MetadataTensor[] {
  const ex = task.output.example;
  if (typeof ex !== 'object' || ex === null || Array.isArray(ex)) return [];
  return Object.entries(ex as Record<string, unknown>).map(([name, v]) => {
    const t = tensorFor(name, [v]);
    const shape = t.shape.length === 2 ? [-1, -1] : [-1];
    return { name, datatype: t.datatype, shape };
  });
}

/** The one BYTES input of a task that is not a tensor task: its name and how its elements are written. */
export const BYTES_INPUTS: Record<Exclude<InputType, 'tensor'>, { name: string; content_type: string }> = {
  sequence: { name: SEQUENCES_INPUT, content_type: 'str' },
  text: { name: 'text', content_type: 'str' },
  json: { name: 'json', content_type: 'json' },
  chat: { name: 'messages', content_type: 'json' },
  image: { name: 'image', content_type: 'base64' },
  audio: { name: 'audio', content_type: 'base64' },
};

/** What a task's inputs look like: its tensors with the batch dimension first, or its one BYTES input. */
export function declaredInputs(task: TaskSpec): MetadataTensor[] {
  if (task.input_type === 'tensor')
    return task.tensors.map((t) => ({ name: t.name, datatype: t.datatype as Datatype, shape: [-1, ...t.shape] }));
  const b = BYTES_INPUTS[task.input_type];
  // Sequences are plain strings, as they always were: no parameters to read.
  if (task.input_type === 'sequence') return [{ name: b.name, datatype: 'BYTES', shape: [-1] }];
  const media = task.input_type === 'image' || task.input_type === 'audio' ? { formats: task.formats } : {};
  return [{ name: b.name, datatype: 'BYTES', shape: [-1], parameters: { content_type: b.content_type, ...media } }];
}

// ---------------------------------------------------------------------------------------------
// Inference request.

export interface ParsedInfer {
  id?: string;
  task: TaskSpec;
  items: WorkItem[];
  /** How item i is named in errors: `sequences[i]`, `text[i]`, `batch[i]` (tensor tasks). */
  itemName: (i: number) => string;
  requested?: string[];
  sequenceType?: string;
}

export function bad(message: string): IsoError {
  return new IsoError('INVALID_REQUEST', message);
}

function badInput(message: string, details?: Record<string, unknown>): IsoError {
  return new IsoError('INVALID_INPUT', message, details);
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

interface RequestTensor {
  name: string;
  datatype?: unknown;
  shape?: unknown;
  data?: unknown;
  parameters?: unknown;
}

const cut = (name: string): string => name.slice(0, 64);

function shapeText(shape: readonly number[]): string {
  return `[${shape.slice(0, 8).join(', ')}${shape.length > 8 ? ', …' : ''}]`;
}

function checkShape(input: RequestTensor): number[] {
  const shape = input.shape;
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && (d as number) >= 0))
    throw bad(`input "${cut(input.name)}" shape must be a list of non-negative integers`);
  return shape as number[];
}

/** The tensor's `parameters.content_type`, when it has one. */
function contentTypeOf(input: RequestTensor): string | undefined {
  const p = input.parameters;
  if (p === undefined || p === null) return undefined;
  if (typeof p !== 'object' || Array.isArray(p)) throw bad(`input "${cut(input.name)}" parameters must be an object`);
  const ct = (p as { content_type?: unknown }).content_type;
  if (ct === undefined) return undefined;
  if (typeof ct !== 'string') throw bad(`input "${cut(input.name)}" parameters.content_type must be a string`);
  return ct;
}

/**
 * One BYTES element as validateInput takes it for this input type: strings as they are, JSON
 * text parsed (json, chat), base64 with its media type when the content_type names one (image,
 * audio). Nothing is checked here beyond what the content_type says; validateInput does the rest.
 */
function bytesElement(task: TaskSpec, raw: unknown, contentType: string | undefined, field: string): unknown {
  switch (task.input_type) {
    case 'json':
    case 'chat': {
      if (typeof raw !== 'string') throw badInput(`${field} must be JSON text (a string element of the BYTES tensor)`);
      try {
        return JSON.parse(raw) as unknown;
      } catch (e) {
        throw badInput(`${field} is not JSON text: ${(e as Error).message.slice(0, 120)}`);
      }
    }
    case 'image':
    case 'audio':
      return contentType !== undefined && contentType.includes('/') && typeof raw === 'string'
        ? { data: raw, media_type: contentType }
        : raw;
    default:
      return raw;
  }
}

/** The content types each BYTES input takes; anything else is a 400 naming them. */
function checkContentType(task: TaskSpec, input: RequestTensor, ct: string | undefined): void {
  if (ct === undefined) return;
  const t = task.input_type;
  const fits =
    t === 'sequence' || t === 'text'
      ? ct === 'str'
      : t === 'json' || t === 'chat'
        ? ct === 'json'
        : ct === 'base64' || /^[a-z]+\/[a-z0-9.+-]+$/i.test(ct);
  if (!fits) {
    const want =
      t === 'image' || t === 'audio'
        ? `"base64" or a media type such as "${t === 'image' ? 'image/png' : 'audio/wav'}"`
        : `"${BYTES_INPUTS[t as Exclude<InputType, 'tensor'>].content_type}"`;
    throw badInput(
      `input "${cut(input.name)}" has content_type "${ct.slice(0, 64)}"; task ${task.name} takes ${t} input: ${want}`,
      { content_type: ct.slice(0, 64), input_type: t },
    );
  }
}

/** Every input type but tensor: one BYTES tensor of shape [n] or [n, 1]. */
function bytesItems(
  m: Manifest,
  task: TaskSpec,
  named: RequestTensor[],
  maxBatch: number,
  declared: ReturnType<typeof parseSequenceType>,
  options: Record<string, unknown>,
): { items: WorkItem[]; inputName: string } {
  const expected = BYTES_INPUTS[task.input_type as Exclude<InputType, 'tensor'>].name;
  const input = named.length === 1 ? named[0]! : named.find((i) => i.name === expected);
  if (!input)
    throw bad(`model ${m.name} takes one input, "${expected}"; got ${named.map((i) => `"${cut(i.name)}"`).join(', ')}`);
  const extra = named.filter((i) => i !== input);
  if (extra.length)
    throw bad(`unexpected input "${cut(extra[0]!.name)}": model ${m.name} takes one input, "${expected}"`);
  if (input.datatype !== 'BYTES')
    throw bad(
      `input "${cut(input.name)}" must have datatype BYTES (got ${JSON.stringify(input.datatype ?? null).slice(0, 32)})`,
    );
  const ct = contentTypeOf(input);
  checkContentType(task, input, ct);
  const shape = checkShape(input);
  const shown = shapeText(shape);
  if (!(shape.length === 1 || (shape.length === 2 && shape[1] === 1)))
    throw bad(`input shape must be [n] or [n, 1] (got ${shown})`);
  // The one input tensor is every element of the request: its shape's product ([n] or [n, 1])
  // and its data are held to max_batch_sequences, as the other surfaces' lists, before the data
  // is read (260,000 items went through before).
  const n = shape[0] as number;
  if (n > maxBatch) throw batchTooLarge(n, maxBatch);
  if (!Array.isArray(input.data)) throw bad('input data must be a list of strings');
  const data = flattenAtMost(input.data, maxBatch);
  if (!data) throw batchTooLarge(`more than ${maxBatch}`, maxBatch);
  if (data.length !== n) throw bad(`input shape ${shown} holds ${n} elements but data has ${data.length}`);
  if (n === 0) throw bad(task.input_type === 'sequence' ? 'input holds no sequence' : 'input holds no element');
  const name = cut(input.name);
  const items = data.map((raw, i): WorkItem => {
    const field = `${name}[${i}]`;
    const v = validateInput(task, bytesElement(task, raw, ct, field), field, declared);
    return { ...v.payload, options };
  });
  return { items, inputName: name };
}

/**
 * Tensor tasks: every declared tensor, each with the batch dimension first ([n, ...declared
 * shape], as Triton shows a batching model); item i is the i-th slice of every tensor.
 */
function tensorItems(
  task: TaskSpec,
  named: RequestTensor[],
  maxBatch: number,
  options: Record<string, unknown>,
): WorkItem[] {
  const taken = task.tensors.map((t) => t.name).join(', ');
  let n: number | undefined;
  let first = '';
  const slices = new Map<string, { datatype: unknown; shape: number[]; data: unknown[]; per: number }>();
  for (const input of named) {
    const spec = task.tensors.find((t) => t.name === input.name);
    if (!spec) throw badInput(`unexpected input "${cut(input.name)}": task ${task.name} takes the tensors ${taken}`);
    if (slices.has(spec.name)) throw badInput(`input "${spec.name}" is given twice`);
    if (contentTypeOf(input) !== undefined && input.datatype !== 'BYTES')
      throw badInput(`input "${spec.name}": content_type applies to BYTES tensors only`);
    const shape = checkShape(input);
    const want = `[n, ${spec.shape.join(', ')}]`.replace(', ]', ']');
    if (shape.length !== spec.shape.length + 1) {
      throw badInput(
        `input "${spec.name}" has shape ${shapeText(shape)}; task ${task.name} takes ${want} (the first dimension is the batch; -1: any size)`,
        { shape: shape.slice(0, 9), expected: [-1, ...spec.shape] },
      );
    }
    const batch = shape[0]!;
    if (n === undefined) [n, first] = [batch, spec.name];
    else if (batch !== n)
      throw badInput(
        `inputs disagree on the batch size (the first dimension): "${first}" has ${n}, "${spec.name}" has ${batch}`,
      );
    if (batch > maxBatch) throw batchTooLarge(batch, maxBatch, 'items per request (the batch dimension)');
    const per = shape.slice(1).reduce((a, b) => a * b, 1);
    const total = batch * per;
    // Sized before the data is read: no item may hold more than max_elements.
    if (per > task.max_elements)
      throw new IsoError(
        'PAYLOAD_TOO_LARGE',
        `input "${spec.name}" has ${per} elements per item; the limit is ${task.max_elements}`,
        { max_elements: task.max_elements },
      );
    if (!Array.isArray(input.data)) throw badInput(`input "${spec.name}" data must be a list`);
    const data = flattenAtMost(input.data, total);
    if (!data)
      throw badInput(`input "${spec.name}" shape ${shapeText(shape)} holds ${total} elements but data has more`);
    if (data.length !== total)
      throw badInput(
        `input "${spec.name}" shape ${shapeText(shape)} holds ${total} elements but data has ${data.length}`,
      );
    slices.set(spec.name, { datatype: input.datatype, shape: shape.slice(1), data, per });
  }
  if (n === 0) throw bad('inputs hold no item (the batch dimension is 0)');
  const items: WorkItem[] = [];
  for (let i = 0; i < n!; i++) {
    const raw: Record<string, unknown> = {};
    for (const [name, t] of slices)
      raw[name] = { datatype: t.datatype, shape: t.shape, data: t.data.slice(i * t.per, (i + 1) * t.per) };
    items.push({ ...validateInput(task, raw, `batch[${i}]`).payload, options });
  }
  return items;
}

export function parseInfer(m: Manifest, body: unknown, maxBatch: number): ParsedInfer {
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw bad('request body must be a JSON inference request object');
  const b = body as Record<string, unknown>;
  if (b.id !== undefined && typeof b.id !== 'string') throw bad('id must be a string');
  const params = b.parameters ?? {};
  if (typeof params !== 'object' || params === null || Array.isArray(params)) throw bad('parameters must be an object');
  const { task_type: taskType, sequence_type: seqType, ...options } = params as Record<string, unknown>;
  if (taskType !== undefined && typeof taskType !== 'string') throw bad('parameters.task_type must be a string');
  const task = resolveTask(m, taskType);
  const declared = parseSequenceType(seqType);

  if (!Array.isArray(b.inputs) || b.inputs.length === 0) {
    throw bad(
      task.input_type === 'tensor'
        ? `inputs is required: the tensors ${task.tensors.map((t) => `"${t.name}" ${t.datatype} [n, ${t.shape.join(', ')}]`.replace(', ]', ']')).join(', ')}`
        : `inputs is required: one BYTES tensor "${BYTES_INPUTS[task.input_type].name}" of shape [n]`,
    );
  }
  const inputs = b.inputs as unknown[];
  if (
    !inputs.every(
      (i) =>
        typeof i === 'object' && i !== null && !Array.isArray(i) && typeof (i as { name?: unknown }).name === 'string',
    )
  ) {
    throw bad('every input must be an object with a name');
  }
  const named = inputs as RequestTensor[];
  for (const i of named) {
    const ip = i.parameters;
    if (ip && typeof ip === 'object' && 'binary_data_size' in ip)
      throw bad('binary tensor data is not supported; send the data as JSON (BYTES elements as strings)');
  }
  let items: WorkItem[];
  let itemName: (i: number) => string;
  if (task.input_type === 'tensor') {
    items = tensorItems(task, named, maxBatch, options);
    itemName = (i) => `batch[${i}]`;
  } else {
    const r = bytesItems(m, task, named, maxBatch, declared, options);
    items = r.items;
    itemName = (i) => `${r.inputName}[${i}]`;
  }

  let requested: string[] | undefined;
  if (b.outputs !== undefined) {
    if (
      !Array.isArray(b.outputs) ||
      !b.outputs.every((o) => typeof o === 'object' && o !== null && typeof (o as { name?: unknown }).name === 'string')
    ) {
      throw bad('outputs must be a list of {name}');
    }
    requested = (b.outputs as { name: string }[]).map((o) => o.name);
  }
  return { id: b.id as string | undefined, task, items, itemName, requested, sequenceType: declared };
}
