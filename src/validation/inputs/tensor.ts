// Tensor inputs, as the Open Inference Protocol defines them: named tensors with a datatype, a
// shape (-1: any size in that dimension) and row-major data. A request gives each declared tensor
// as {datatype?, shape?, data} (data flat or nested); a task with one tensor also takes a bare
// (nested) array. The worker gets {<name>: {datatype, shape, data: flat}}.
import { IsoError } from '../../errors.js';

export const TENSOR_DATATYPES = [
  'BOOL',
  'UINT8',
  'UINT16',
  'UINT32',
  'UINT64',
  'INT8',
  'INT16',
  'INT32',
  'INT64',
  'FP16',
  'FP32',
  'FP64',
  'BYTES',
] as const;
export type TensorDatatype = (typeof TENSOR_DATATYPES)[number];

export interface TensorSpec {
  name: string;
  datatype: TensorDatatype;
  shape: number[];
}

export interface TensorValue {
  datatype: TensorDatatype;
  shape: number[];
  data: unknown[];
}

const INT_RANGES: Partial<Record<TensorDatatype, [number, number]>> = {
  UINT8: [0, 255],
  UINT16: [0, 65535],
  UINT32: [0, 4294967295],
  UINT64: [0, Number.MAX_SAFE_INTEGER],
  INT8: [-128, 127],
  INT16: [-32768, 32767],
  INT32: [-2147483648, 2147483647],
  INT64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
};

/** Flattens nested arrays row-major and works out their shape; ragged nesting is an error. */
function flatten(v: unknown, field: string, maxElements: number): { shape: number[]; data: unknown[] } {
  const shape: number[] = [];
  let probe: unknown = v;
  while (Array.isArray(probe)) {
    shape.push(probe.length);
    if (shape.length > 8) throw new IsoError('INVALID_INPUT', `${field} nests deeper than 8 dimensions`);
    probe = probe[0];
  }
  const data: unknown[] = [];
  const walk = (x: unknown, depth: number): void => {
    if (depth === shape.length) {
      if (Array.isArray(x))
        throw new IsoError('INVALID_INPUT', `${field} is ragged: deeper nesting than its first element's`);
      if (data.length >= maxElements)
        throw new IsoError('PAYLOAD_TOO_LARGE', `${field} holds more than ${maxElements} elements`, {
          max_elements: maxElements,
        });
      data.push(x);
      return;
    }
    if (!Array.isArray(x) || x.length !== shape[depth])
      throw new IsoError(
        'INVALID_INPUT',
        `${field} is ragged: dimension ${depth} should have ${shape[depth]} elements`,
      );
    for (const y of x) walk(y, depth + 1);
  };
  walk(v, 0);
  return { shape, data };
}

function checkElement(v: unknown, dt: TensorDatatype, field: string, i: number): void {
  const bad = (what: string): never => {
    throw new IsoError(
      'INVALID_INPUT',
      `${field} element ${i} is ${JSON.stringify(v)?.slice(0, 40)}; a ${dt} tensor holds ${what}`,
    );
  };
  if (dt === 'BOOL') {
    if (typeof v !== 'boolean') bad('booleans');
    return;
  }
  if (dt === 'BYTES') {
    if (typeof v !== 'string') bad('strings');
    return;
  }
  if (typeof v !== 'number' || !Number.isFinite(v)) bad('finite numbers');
  const range = INT_RANGES[dt];
  if (range && (!Number.isInteger(v) || (v as number) < range[0] || (v as number) > range[1]))
    bad(`integers in [${range[0]}, ${range[1]}]`);
}

function shapeMatches(spec: number[], shape: number[]): boolean {
  return spec.length === shape.length && spec.every((d, i) => d === -1 || d === shape[i]);
}

/** One named tensor from a request: {datatype?, shape?, data} or a bare (nested) array. */
function readTensor(raw: unknown, spec: TensorSpec, field: string, maxElements: number): TensorValue {
  let shape: number[];
  let data: unknown[];
  if (Array.isArray(raw)) ({ shape, data } = flatten(raw, field, maxElements));
  else if (typeof raw === 'object' && raw !== null && Object.hasOwn(raw, 'data')) {
    const t = raw as { datatype?: unknown; shape?: unknown; data?: unknown };
    if (t.datatype !== undefined && t.datatype !== spec.datatype)
      throw new IsoError(
        'INVALID_INPUT',
        `${field}.datatype is ${JSON.stringify(t.datatype)}; this task's tensor "${spec.name}" is ${spec.datatype}`,
      );
    const flat = flatten(t.data, `${field}.data`, maxElements);
    data = flat.data;
    if (t.shape !== undefined) {
      if (
        !Array.isArray(t.shape) ||
        !t.shape.every((d) => Number.isInteger(d) && (d as number) >= 0) ||
        t.shape.length > 8
      )
        throw new IsoError('INVALID_INPUT', `${field}.shape must be a list of at most 8 non-negative integers`);
      shape = t.shape as number[];
      const n = shape.reduce((a, b) => a * b, 1);
      if (n !== data.length)
        throw new IsoError(
          'INVALID_INPUT',
          `${field}: shape [${shape.join(', ')}] holds ${n} elements, data has ${data.length}`,
        );
    } else shape = flat.shape;
  } else throw new IsoError('INVALID_INPUT', `${field} must be a tensor {datatype, shape, data} or a (nested) array`);
  if (!shapeMatches(spec.shape, shape))
    throw new IsoError(
      'INVALID_INPUT',
      `${field} has shape [${shape.join(', ')}]; this task's tensor "${spec.name}" needs [${spec.shape.join(', ')}] (-1: any)`,
      { shape, expected: spec.shape },
    );
  for (let i = 0; i < data.length; i++) checkElement(data[i], spec.datatype, field, i);
  return { datatype: spec.datatype, shape, data };
}

export interface TensorRule {
  tensors: TensorSpec[];
  /** Elements over all tensors of one item. */
  maxElements: number;
}

export function validateTensors(raw: unknown, rule: TensorRule, field: string): Record<string, TensorValue> {
  const out = new Map<string, TensorValue>();
  let budget = rule.maxElements;
  const take = (spec: TensorSpec, v: unknown, at: string): void => {
    const t = readTensor(v, spec, at, budget);
    budget -= t.data.length;
    out.set(spec.name, t);
  };
  if (rule.tensors.length === 1 && Array.isArray(raw)) take(rule.tensors[0]!, raw, field);
  else {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
      throw new IsoError(
        'INVALID_INPUT',
        `${field} must be an object of named tensors: ${rule.tensors.map((t) => t.name).join(', ')}`,
      );
    const given = raw as Record<string, unknown>;
    // A task with one tensor also takes that tensor itself ({data, shape}).
    if (rule.tensors.length === 1 && Object.hasOwn(given, 'data') && !Object.hasOwn(given, rule.tensors[0]!.name))
      take(rule.tensors[0]!, given, field);
    else {
      for (const k of Object.keys(given))
        if (!rule.tensors.some((t) => t.name === k))
          throw new IsoError(
            'INVALID_INPUT',
            `${field} has an unknown tensor "${k.slice(0, 64)}"; this task takes ${rule.tensors.map((t) => t.name).join(', ')}`,
          );
      for (const spec of rule.tensors) {
        if (!Object.hasOwn(given, spec.name))
          throw new IsoError('INVALID_INPUT', `${field} is missing the tensor "${spec.name}"`);
        take(spec, given[spec.name], `${field}.${spec.name}`);
      }
    }
  }
  return Object.fromEntries(out);
}
