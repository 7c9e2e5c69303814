// The input side of the file-exchange formats (docs/jobs.md), read incrementally: a parser takes
// the text piece by piece (an upload as it is read back from disk) and hands back the records
// each piece completes, so a 50 MB file never sits in memory as one string nor blocks the event
// loop in one call. parseInput() is the same parsers over one whole text.
//
// One record per input (a sequence, or an input of any type: text, JSON, tensors, image, audio,
// chat; validated against its task only when the job runs), from:
//   - the exchange JSON {task, input:{sequence|sequences|input|inputs, organism?, parameters?},
//     metadata:{request_id}}, or {task, input: <the input itself>, parameters?} (one object, or an
//     array of them: an array is split into its elements as it arrives),
//   - JSONL: one exchange object, a flat {id?, sequence | input, task?, organism?, parameters?} or
//     a bare JSON string per line,
//   - FASTA (the record id becomes the request_id), or plain text with one sequence per line,
//   - CSV / TSV with a header row: sequence (or seq) or input (text), id / request_id / name, task,
//     organism, parameters (a JSON object) and parameters.<key> columns.

export const INPUT_FORMATS = ['json', 'jsonl', 'fasta', 'csv', 'tsv', 'text'] as const;
export type InputFormat = (typeof INPUT_FORMATS)[number];

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

function isObject(v: unknown): v is Record<string, unknown> {
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

function parseMaybeJson(raw: string): unknown {
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

/** Splits text fed in pieces into lines (`\n` or `\r\n`), numbered from 1; linear in the input however long a line is. */
class LineSplitter {
  private parts: string[] = [];
  private n = 0;

  constructor(private readonly onLine: (line: string, no: number) => void) {}

  push(text: string): void {
    let start = 0;
    for (;;) {
      const nl = text.indexOf('\n', start);
      if (nl === -1) break;
      let line = text.slice(start, nl);
      if (this.parts.length) {
        this.parts.push(line);
        line = this.parts.join('');
        this.parts = [];
      }
      this.onLine(line.endsWith('\r') ? line.slice(0, -1) : line, ++this.n);
      start = nl + 1;
    }
    if (start < text.length) this.parts.push(text.slice(start));
  }

  /** The last line (a text that does not end with a newline has one more). */
  end(): void {
    const line = this.parts.join('');
    this.parts = [];
    this.onLine(line, ++this.n);
  }
}

/** Line formats: each line gives zero or more records. */
class LineParser implements RecordParser {
  private out: InputRecord[] = [];
  private readonly lines: LineSplitter;

  constructor(
    onLine: (line: string, no: number, out: InputRecord[]) => void,
    private readonly onEnd: (out: InputRecord[]) => void = () => undefined,
  ) {
    this.lines = new LineSplitter((line, no) => onLine(line, no, this.out));
  }

  push(text: string): InputRecord[] {
    this.lines.push(text);
    return this.take();
  }

  end(): InputRecord[] {
    this.lines.end();
    this.onEnd(this.out);
    return this.take();
  }

  private take(): InputRecord[] {
    const out = this.out;
    this.out = [];
    return out;
  }
}

/** FASTA: `>id description` headers, sequence lines joined, `;` comments, blank lines skipped. */
function fastaLines(label: string): {
  line: (raw: string, no: number, out: InputRecord[]) => void;
  end: (out: InputRecord[]) => void;
} {
  let id: string | null = null;
  let parts: string[] = [];
  const close = (out: InputRecord[]): void => {
    if (id !== null) out.push({ id, sequence: parts.join('') });
    parts = [];
  };
  return {
    line(raw, no, out) {
      const line = raw.trim();
      if (line === '' || line.startsWith(';')) return;
      if (line.startsWith('>')) {
        close(out);
        const header = line.slice(1).trim();
        const space = header.search(/\s/);
        id = space === -1 ? header : header.slice(0, space);
      } else {
        if (id === null) throw new InputFormatError(`${label} line ${no}: FASTA data before the first ">" header`);
        parts.push(line.replace(/\s+/g, ''));
      }
    },
    end: close,
  };
}

function fastaParser(label: string): RecordParser {
  const f = fastaLines(label);
  return new LineParser(f.line, f.end);
}

/** One sequence per line (`#` comments, blank lines skipped), or FASTA when the first non-blank line is a header. */
function textParser(label: string): RecordParser {
  let fasta: ReturnType<typeof fastaLines> | null = null;
  let decided = false;
  let n = 0;
  return new LineParser(
    (raw, no, out) => {
      if (fasta) return fasta.line(raw, no, out);
      const line = raw.trim();
      if (line === '') return;
      if (!decided) {
        decided = true;
        if (line.startsWith('>')) {
          fasta = fastaLines(label);
          return fasta.line(raw, no, out);
        }
      }
      if (!line.startsWith('#')) out.push({ id: `seq${++n}`, sequence: line });
    },
    (out) => fasta?.end(out),
  );
}

function jsonlParser(label: string): RecordParser {
  let count = 0;
  return new LineParser((line, no, out) => {
    if (line.trim() === '') return;
    const where = `${label} line ${no}`;
    const recs = parseExchangeObject(parseJsonText(line, where), `seq${count + 1}`, where).records;
    count += recs.length;
    pushAll(out, recs);
  });
}

/** RFC 4180 rows, fed in pieces: quoted fields may hold the delimiter, quotes ("") and line breaks. */
export class DelimitedReader {
  private row: string[] = [];
  private field = '';
  private quoted = false;
  private atFieldStart = true;
  /** A last character whose meaning depends on the next one (`"` in a quoted field, `\r`). */
  private held = '';
  private readonly special: RegExp;

  constructor(
    private readonly delimiter: string,
    private readonly onRow: (row: string[]) => void,
    /** Names the input in the error of an unterminated quote. */
    private readonly label?: string,
  ) {
    this.special = new RegExp(`["\\r\\n${delimiter === '\t' ? '\\t' : delimiter.replace(/[\\^\]-]/g, '\\$&')}]`, 'g');
  }

  push(text: string): void {
    this.scan(this.held + text, false);
  }

  end(): void {
    this.scan(this.held, true);
    if (this.quoted) throw new InputFormatError(`${this.label ? `${this.label}: ` : ''}unterminated quoted field`);
    this.row.push(this.field);
    if (this.row.length > 1 || this.row[0] !== '') this.onRow(this.row);
    this.row = [];
    this.field = '';
  }

  private endRow(): void {
    this.row.push(this.field);
    if (this.row.length > 1 || this.row[0] !== '') this.onRow(this.row);
    this.row = [];
    this.field = '';
    this.atFieldStart = true;
  }

  private scan(s: string, final: boolean): void {
    this.held = '';
    const n = s.length;
    let i = 0;
    while (i < n) {
      if (this.quoted) {
        const q = s.indexOf('"', i);
        if (q === -1) {
          this.field += s.slice(i);
          return;
        }
        this.field += s.slice(i, q);
        if (q + 1 >= n && !final) {
          this.held = '"';
          return;
        }
        if (s[q + 1] === '"') {
          this.field += '"';
          i = q + 2;
        } else {
          this.quoted = false;
          i = q + 1;
        }
        continue;
      }
      this.special.lastIndex = i;
      const m = this.special.exec(s);
      const j = m ? m.index : n;
      if (j > i) {
        this.field += s.slice(i, j);
        this.atFieldStart = false;
      }
      if (!m) return;
      const c = s[j]!;
      if (c === '"') {
        if (this.atFieldStart) {
          this.quoted = true;
          this.atFieldStart = false;
        } else this.field += '"';
        i = j + 1;
      } else if (c === this.delimiter) {
        this.row.push(this.field);
        this.field = '';
        this.atFieldStart = true;
        i = j + 1;
      } else if (c === '\r') {
        if (j + 1 >= n && !final) {
          this.held = '\r';
          return;
        }
        i = s[j + 1] === '\n' ? j + 2 : j + 1;
        this.endRow();
      } else {
        i = j + 1;
        this.endRow();
      }
    }
  }
}

/** RFC 4180 rows of a whole text. */
export function parseDelimited(text: string, delimiter: string): string[][] {
  const rows: string[][] = [];
  const r = new DelimitedReader(delimiter, (row) => rows.push(row));
  r.push(text);
  r.end();
  return rows;
}

/** CSV / TSV: a header row, then one record per row. */
function tableParser(delimiter: string, label: string): RecordParser {
  let out: InputRecord[] = [];
  let toRecord: ((r: string[], n: number) => InputRecord) | null = null;
  let n = 0;
  const header = (row: string[]): ((r: string[], n: number) => InputRecord) => {
    const names = row.map((h) => h.trim());
    const lower = names.map((h) => h.toLowerCase());
    const col = (...want: string[]): number => lower.findIndex((h) => want.includes(h));
    const seqCol = col('sequence', 'seq');
    // An `input` column holds text, for tasks that take text (or any string input).
    const inputCol = col('input');
    if (seqCol === -1 && inputCol === -1)
      throw new InputFormatError(
        `${label}: the header row needs a "sequence" or an "input" column (got: ${names.join(', ')})`,
      );
    if (seqCol !== -1 && inputCol !== -1)
      throw new InputFormatError(`${label}: the header row has both a "sequence" and an "input" column; give one`);
    const idCol = col('id', 'request_id', 'name');
    const taskCol = col('task', 'task_type');
    const orgCol = col('organism');
    const paramsCol = col('parameters', 'options');
    const paramCols = names
      .map((h, i) => ({ i, key: /^(parameters|param|option)\.(.+)$/i.exec(h)?.[2] }))
      .filter((p): p is { i: number; key: string } => p.key !== undefined);
    return (r, idx) => {
      const line = idx + 2;
      const cell = (i: number): string | undefined => (i === -1 ? undefined : (r[i] ?? '').trim() || undefined);
      let parameters: Record<string, unknown> | undefined;
      const rawParams = cell(paramsCol);
      if (rawParams !== undefined) {
        const p = parseJsonText(rawParams, `${label} row ${line}: parameters`);
        if (!isObject(p)) throw new InputFormatError(`${label} row ${line}: parameters must be a JSON object`);
        parameters = p;
      }
      for (const { i, key } of paramCols) {
        const v = cell(i);
        // A column named parameters.__proto__ is a parameter like any other, not a prototype.
        if (v !== undefined) setOwn((parameters ??= {}), key, parseMaybeJson(v));
      }
      const task = cell(taskCol);
      const organism = cell(orgCol);
      const value = inputCol === -1 ? { sequence: r[seqCol] ?? '' } : { input: r[inputCol] ?? '' };
      return {
        id: cell(idCol) ?? `seq${idx + 1}`,
        ...value,
        ...(task && { task }),
        ...(organism && { organism }),
        ...(parameters && { parameters }),
      };
    };
  };
  const reader = new DelimitedReader(
    delimiter,
    (row) => {
      if (!toRecord) toRecord = header(row);
      else out.push(toRecord(row, n++));
    },
    label,
  );
  const take = (): InputRecord[] => {
    const o = out;
    out = [];
    return o;
  };
  return {
    push(text) {
      reader.push(text);
      return take();
    },
    end() {
      reader.end();
      return take();
    },
  };
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;

/**
 * The exchange JSON: a top-level array is split into its elements as the text arrives, each
 * parsed on its own; a single document (one object) is parsed once complete.
 */
function jsonParser(label: string): RecordParser {
  let mode: 'start' | 'array' | 'doc' | 'done' = 'start';
  let doc: string[] = [];
  let elem: string[] = [];
  let depth = 0;
  let inString = false;
  let escaped = false;
  let index = 0;
  let count = 0;
  let out: InputRecord[] = [];

  const element = (closing: boolean): void => {
    const text = elem.join('').trim();
    elem = [];
    if (text === '') {
      if (closing && index === 0) return; // []
      throw new InputFormatError(`${label}[${index}]: not valid JSON (an empty element)`);
    }
    const where = `${label}[${index}]`;
    const recs = parseExchangeObject(parseJsonText(text, where), `seq${count + 1}`, where).records;
    count += recs.length;
    index++;
    pushAll(out, recs);
  };

  const take = (): InputRecord[] => {
    const o = out;
    out = [];
    return o;
  };

  return {
    push(text) {
      let i = 0;
      const n = text.length;
      if (mode === 'start') {
        while (i < n && /\s/.test(text[i]!)) i++;
        if (i === n) return [];
        if (text.charCodeAt(i) === OPEN_ARRAY) {
          mode = 'array';
          i++;
        } else mode = 'doc';
      }
      if (mode === 'doc') {
        doc.push(i ? text.slice(i) : text);
        return [];
      }
      if (mode === 'done') {
        if (text.slice(i).trim() !== '')
          throw new InputFormatError(`${label}: not valid JSON (text after the closing "]")`);
        return [];
      }
      let seg = i;
      for (; i < n; i++) {
        const c = text.charCodeAt(i);
        if (inString) {
          if (escaped) escaped = false;
          else if (c === BACKSLASH) escaped = true;
          else if (c === QUOTE) inString = false;
          continue;
        }
        if (c === QUOTE) inString = true;
        else if (c === OPEN_ARRAY || c === OPEN_OBJECT) depth++;
        else if (c === CLOSE_ARRAY || c === CLOSE_OBJECT) {
          if (depth > 0) {
            depth--;
            continue;
          }
          if (c === CLOSE_OBJECT) throw new InputFormatError(`${label}[${index}]: not valid JSON (unexpected "}")`);
          elem.push(text.slice(seg, i));
          element(true);
          mode = 'done';
          if (text.slice(i + 1).trim() !== '')
            throw new InputFormatError(`${label}: not valid JSON (text after the closing "]")`);
          return take();
        } else if (c === COMMA && depth === 0) {
          elem.push(text.slice(seg, i));
          element(false);
          seg = i + 1;
        }
      }
      elem.push(text.slice(seg));
      return take();
    },
    end() {
      if (mode === 'start') throw new InputFormatError(`${label}: not valid JSON (the input is empty)`);
      if (mode === 'array') throw new InputFormatError(`${label}: not valid JSON (the array is not closed)`);
      if (mode === 'doc') {
        const text = doc.join('');
        doc = [];
        pushAll(out, parseExchangeObject(parseJsonText(text, label), 'seq1', label).records);
      }
      return take();
    },
  };
}

/** An incremental parser of one format; `label` names the input in error messages. */
export function recordParser(format: InputFormat, label = 'input'): RecordParser {
  const inner = ((): RecordParser => {
    switch (format) {
      case 'fasta':
        return fastaParser(label);
      case 'text':
        return textParser(label);
      case 'csv':
        return tableParser(',', label);
      case 'tsv':
        return tableParser('\t', label);
      case 'jsonl':
        return jsonlParser(label);
      case 'json':
        return jsonParser(label);
    }
  })();
  // A byte-order mark at the start is not content.
  let first = true;
  return {
    push(text) {
      if (first && text !== '') {
        first = false;
        if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      }
      return inner.push(text);
    },
    end: () => inner.end(),
  };
}

/** Every record of an input text. Syntax errors throw InputFormatError naming the line. */
export function parseInput(text: string, format: InputFormat, label = 'input'): InputRecord[] {
  const p = recordParser(format, label);
  const out = p.push(text);
  pushAll(out, p.end());
  return out;
}

const EXTENSIONS = new Map<string, InputFormat>([
  ['json', 'json'],
  ['jsonl', 'jsonl'],
  ['ndjson', 'jsonl'],
  ['fasta', 'fasta'],
  ['fa', 'fasta'],
  ['faa', 'fasta'],
  ['fna', 'fasta'],
  ['ffn', 'fasta'],
  ['fas', 'fasta'],
  ['csv', 'csv'],
  ['tsv', 'tsv'],
  ['tab', 'tsv'],
  ['txt', 'text'],
  ['seq', 'text'],
]);

/** The format a file name's extension stands for, if any. */
export function formatFromFileName(name: string): InputFormat | undefined {
  const m = /\.([A-Za-z0-9]+)$/.exec(name);
  return m ? EXTENSIONS.get(m[1]!.toLowerCase()) : undefined;
}

/** The format a Content-Type names, if any (text/plain says nothing: sniff it). */
export function formatFromContentType(ct: string | undefined): InputFormat | undefined {
  const t = (ct ?? '').split(';')[0]!.trim().toLowerCase();
  if (
    t === 'application/x-ndjson' ||
    t === 'application/jsonl' ||
    t === 'application/x-jsonlines' ||
    t === 'application/jsonlines'
  )
    return 'jsonl';
  if (t === 'text/csv') return 'csv';
  if (t === 'text/tab-separated-values') return 'tsv';
  if (
    t === 'text/x-fasta' ||
    t === 'application/x-fasta' ||
    t === 'chemical/seq-na-fasta' ||
    t === 'chemical/seq-aa-fasta'
  )
    return 'fasta';
  return undefined;
}

/**
 * Guesses from the content: FASTA header, JSON, JSONL, CSV/TSV header, else one sequence per
 * line. `truncated`: the text is only the start of the input (its last line may be cut).
 */
export function sniffFormat(text: string, truncated = false): InputFormat {
  const t = text.replace(/^\uFEFF/, '').trimStart();
  if (t.startsWith('>')) return 'fasta';
  if (t.startsWith('[')) return 'json';
  if (t.startsWith('{') || t.startsWith('"')) {
    let lines = t.split(/\r?\n/);
    if (truncated && lines.length > 1) lines = lines.slice(0, -1);
    lines = lines.filter((l) => l.trim() !== '');
    if (lines.length > 1 && lines.every((l) => /^\s*[{"]/.test(l) && /[}"]\s*$/.test(l))) return 'jsonl';
    return 'json';
  }
  const first = t.split(/\r?\n/, 1)[0]!.toLowerCase();
  if (/(^|\t)(sequence|seq|input)(\t|$)/.test(first)) return 'tsv';
  if (/(^|,)"?(sequence|seq|input)"?(,|$)/.test(first)) return 'csv';
  return 'text';
}

export function isInputFormat(v: unknown): v is InputFormat {
  return typeof v === 'string' && (INPUT_FORMATS as readonly string[]).includes(v);
}
