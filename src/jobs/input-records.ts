// What the input formats read (docs/jobs.md): the records, the syntax error, the exchange object
// (one object or a flat record) and the incremental parser's interface. The formats themselves are
// in input.ts (line formats), input-table.ts (CSV / TSV) and input-json.ts (the exchange JSON).

/**
 * One input to run, as read from a file or a request (not validated yet): a `sequence`, or an
 * `input` of any type; a record has one or the other.
 */
export interface InputRecord {
  /** request_id: metadata.request_id, the FASTA id, the CSV id column, or seqN. */
  id: string;
  /** A sequence (or any input a task takes as a string). Validated against the task when the job runs; a bad one fails only its own record. */
  sequence?: unknown;
  /** An input of any type (`input` fields, the CSV input column, `inputs` lists), validated the same way. */
  input?: unknown;
  /** Overrides the job's task for this record (exchange files carry their own task). */
  task?: string;
  /** Becomes the model option `organism`. */
  organism?: string;
  /** Become model options (over the job's options). */
  parameters?: Record<string, unknown>;
}

/** A syntax error in an input file or body: the whole input is rejected, with where. */
export class InputFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InputFormatError';
  }
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function optionalString(v: unknown, what: string): string | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string') throw new InputFormatError(`${what} must be a string`);
  return v;
}

function optionalObject(v: unknown, what: string): Record<string, unknown> | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isObject(v)) throw new InputFormatError(`${what} must be an object`);
  return v;
}

/** Appends without spreading into arguments (a `sequences` list may hold a million entries). */
export function pushAll<T>(into: T[], items: readonly T[]): void {
  for (const it of items) into.push(it);
}

/** Records a parser completed, handed over a batch at a time. */
export class RecordBatch {
  private out: InputRecord[] = [];

  add(r: InputRecord): void {
    this.out.push(r);
  }

  addAll(records: readonly InputRecord[]): void {
    pushAll(this.out, records);
  }

  /** The records added since the last take. */
  take(): InputRecord[] {
    const out = this.out;
    this.out = [];
    return out;
  }
}

/** A property set as the object's own, whatever its name (`__proto__` included): never a prototype change. */
export function setOwn(obj: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

/** What one exchange object (or flat record) holds; `multi` when it carried `sequences` or `inputs`. */
export interface ExchangeInput {
  records: InputRecord[];
  multi: boolean;
  requestId: string;
  task?: string;
}

/** The members of the exchange input wrapper. */
const WRAPPER_KEYS: ReadonlySet<string> = new Set([
  'sequence',
  'sequences',
  'input',
  'inputs',
  'organism',
  'parameters',
]);

/**
 * Whether an object's `input` member is the exchange wrapper rather than the input itself: an
 * object with `sequence` or `sequences` (seed 003's {"sequence", "organism", "parameters"}), or
 * one with `input` or `inputs` and nothing but wrapper members. Anything else (text, a JSON
 * object, tensors, an image, messages) is the input. A value that would read as a wrapper is sent
 * wrapped once more: {"input": {"input": <value>}} (unwrapped exactly once).
 */
export function isExchangeWrapper(v: unknown): v is Record<string, unknown> {
  if (!isObject(v)) return false;
  if (Object.hasOwn(v, 'sequence') || Object.hasOwn(v, 'sequences')) return true;
  return (Object.hasOwn(v, 'input') || Object.hasOwn(v, 'inputs')) && Object.keys(v).every((k) => WRAPPER_KEYS.has(k));
}

/**
 * Reads one exchange input object, or a flat record. `fallbackId` names it when it carries no
 * request_id; a `sequences` or `inputs` list becomes one record per entry, named `<request_id>#<n>`.
 */
export function parseExchangeObject(obj: unknown, fallbackId: string, where: string): ExchangeInput {
  if (typeof obj === 'string')
    return { records: [{ id: fallbackId, sequence: obj }], multi: false, requestId: fallbackId };
  if (!isObject(obj))
    throw new InputFormatError(
      `${where}: expected an object with input or sequence (or input.sequence), or a sequence string`,
    );
  const wrapped = isExchangeWrapper(obj.input);
  // Where the input and its organism / parameters are: the wrapper, or the object itself.
  const src = wrapped ? (obj.input as Record<string, unknown>) : obj;
  const metadata = optionalObject(obj.metadata, `${where}: metadata`);
  const requestId =
    optionalString(metadata?.request_id, `${where}: metadata.request_id`) ??
    optionalString(obj.request_id, `${where}: request_id`) ??
    optionalString(obj.id, `${where}: id`) ??
    fallbackId;
  const task = optionalString(obj.task, `${where}: task`) ?? optionalString(obj.task_type, `${where}: task_type`);
  const organism = optionalString(src.organism, `${where}: organism`);
  const parameters =
    optionalObject(src.parameters, `${where}: parameters`) ??
    (wrapped ? undefined : optionalObject(obj.options, `${where}: options`));
  const base = { ...(task && { task }), ...(organism && { organism }), ...(parameters && { parameters }) };
  const typed = (['input', 'inputs'] as const).filter((k) => src[k] !== undefined);
  const given = [...typed, ...(['sequence', 'sequences'] as const).filter((k) => src[k] !== undefined)];
  if (typed.length && given.length > 1)
    throw new InputFormatError(
      `${where}: give one of ${wrapped ? 'input.' : ''}sequence, sequences, input or inputs (got ${given.join(' and ')})`,
    );
  if (src.inputs !== undefined) {
    if (!Array.isArray(src.inputs) || src.inputs.length === 0)
      throw new InputFormatError(`${where}: inputs must be a non-empty array`);
    const records = src.inputs.map((v: unknown, i) => ({ ...base, id: `${requestId}#${i + 1}`, input: v }));
    return { records, multi: true, requestId, task };
  }
  if (src.sequences !== undefined) {
    if (!Array.isArray(src.sequences) || src.sequences.length === 0)
      throw new InputFormatError(`${where}: sequences must be a non-empty array`);
    const records = src.sequences.map((s: unknown, i) => {
      // A sequences entry may itself be {id, sequence}.
      if (isObject(s))
        return {
          ...base,
          id: optionalString(s.id, `${where}: sequences[${i}].id`) ?? `${requestId}#${i + 1}`,
          sequence: s.sequence,
        };
      return { ...base, id: `${requestId}#${i + 1}`, sequence: s };
    });
    return { records, multi: true, requestId, task };
  }
  if (src.input !== undefined)
    return { records: [{ ...base, id: requestId, input: src.input }], multi: false, requestId, task };
  return { records: [{ ...base, id: requestId, sequence: src.sequence }], multi: false, requestId, task };
}

/**
 * A record as an object parseExchangeObject reads back as the same record, whatever its input
 * (an input that looks like the exchange wrapper is wrapped once more). For clients that send
 * records they read themselves (the CLI's jobs).
 */
export function recordObject(r: InputRecord): Record<string, unknown> {
  const head = { id: r.id, ...(r.task !== undefined && { task: r.task }) };
  const extra = {
    ...(r.organism !== undefined && { organism: r.organism }),
    ...(r.parameters !== undefined && { parameters: r.parameters }),
  };
  if (r.input !== undefined) return { ...head, input: { input: r.input, ...extra } };
  return { ...head, ...(r.sequence !== undefined && { sequence: r.sequence }), ...extra };
}

export function parseJsonText(text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new InputFormatError(`${where}: not valid JSON (${(e as Error).message})`);
  }
}

export function parseMaybeJson(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

/** Reads one input format piece by piece. */
export interface RecordParser {
  /** More text; returns the records it completed. Throws InputFormatError on a syntax error. */
  push(text: string): InputRecord[];
  /** The end of the input: the last records (throws on an unterminated construct). */
  end(): InputRecord[];
}
