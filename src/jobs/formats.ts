// The file-exchange formats of batch jobs (docs/jobs.md).
//
// Input, one record per sequence, from:
//   - the exchange JSON {task, input:{sequence|sequences, organism?, parameters?}, metadata:{request_id}}
//     (one object, or an array of them),
//   - JSONL: one exchange object, a flat {id?, sequence, task?, organism?, parameters?} or a bare
//     JSON string per line,
//   - FASTA (the record id becomes the request_id), or plain text with one sequence per line,
//   - CSV / TSV with a header row: sequence (or seq), id / request_id / name, task, organism,
//     parameters (a JSON object) and parameters.<key> columns.
// Output, one record per sequence, in the exchange shape
//   {task, status: "success"|"error", output | error, metadata:{request_id, processing_time_ms, service, version, index}}
// written as JSONL or CSV.
import { parseFasta, parseSequences } from '../validation/fasta.js';

export const INPUT_FORMATS = ['json', 'jsonl', 'fasta', 'csv', 'tsv', 'text'] as const;
export type InputFormat = (typeof INPUT_FORMATS)[number];
export const OUTPUT_FORMATS = ['jsonl', 'csv'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** One sequence to run, as read from a file or a request (not validated yet). */
export interface InputRecord {
  /** request_id: metadata.request_id, the FASTA id, the CSV id column, or seqN. */
  id: string;
  /** Validated against the task when the job runs; a bad one fails only its own record. */
  sequence: unknown;
  /** Overrides the job's task for this record (exchange files carry their own task). */
  task?: string;
  /** Becomes the model option `organism`. */
  organism?: string;
  /** Become model options (over the job's options). */
  parameters?: Record<string, unknown>;
}

export interface ItemErrorBody {
  code: string;
  message: string;
  [k: string]: unknown;
}

export interface OutputMetadata {
  request_id: string;
  processing_time_ms: number;
  service: string;
  version: string | null;
  /** Position of the record in the job's input (0-based). */
  index: number;
  [k: string]: unknown;
}

/** One result, in the exchange output shape. */
export interface OutputRecord {
  task: string;
  status: 'success' | 'error';
  output?: Record<string, unknown>;
  error?: ItemErrorBody;
  metadata: OutputMetadata;
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

/** What one exchange object (or flat record) holds; `multi` when it carried `sequences`. */
export interface ExchangeInput {
  records: InputRecord[];
  multi: boolean;
  requestId: string;
  task?: string;
}

/**
 * Reads one exchange input object, or a flat record. `fallbackId` names it when it carries no
 * request_id; a `sequences` list becomes one record per sequence, named `<request_id>#<n>`.
 */
export function parseExchangeObject(obj: unknown, fallbackId: string, where: string): ExchangeInput {
  if (typeof obj === 'string') return { records: [{ id: fallbackId, sequence: obj }], multi: false, requestId: fallbackId };
  if (!isObject(obj)) throw new InputFormatError(`${where}: expected an object with input.sequence (or sequence), or a sequence string`);
  const nested = obj.input !== undefined;
  const input = nested ? optionalObject(obj.input, `${where}: input`)! : obj;
  const metadata = optionalObject(obj.metadata, `${where}: metadata`);
  const requestId =
    optionalString(metadata?.request_id, `${where}: metadata.request_id`) ??
    optionalString(obj.request_id, `${where}: request_id`) ??
    optionalString(obj.id, `${where}: id`) ??
    fallbackId;
  const task = optionalString(obj.task, `${where}: task`) ?? optionalString(obj.task_type, `${where}: task_type`);
  const organism = optionalString(input.organism, `${where}: organism`);
  const parameters = optionalObject(input.parameters, `${where}: parameters`) ?? (nested ? undefined : optionalObject(obj.options, `${where}: options`));
  const base = { ...(task && { task }), ...(organism && { organism }), ...(parameters && { parameters }) };
  if (input.sequences !== undefined) {
    if (!Array.isArray(input.sequences) || input.sequences.length === 0) throw new InputFormatError(`${where}: sequences must be a non-empty array`);
    const records = input.sequences.map((s: unknown, i) => {
      // A sequences entry may itself be {id, sequence}.
      if (isObject(s)) return { ...base, id: optionalString(s.id, `${where}: sequences[${i}].id`) ?? `${requestId}#${i + 1}`, sequence: s.sequence };
      return { ...base, id: `${requestId}#${i + 1}`, sequence: s };
    });
    return { records, multi: true, requestId, task };
  }
  return { records: [{ ...base, id: requestId, sequence: input.sequence }], multi: false, requestId, task };
}

function parseJsonText(text: string, where: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new InputFormatError(`${where}: not valid JSON (${(e as Error).message})`);
  }
}

/** RFC 4180 rows: quoted fields may hold the delimiter, quotes ("") and line breaks. */
export function parseDelimited(text: string, delimiter: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let atFieldStart = true;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else quoted = false;
      } else field += c;
      continue;
    }
    if (c === '"' && atFieldStart) {
      quoted = true;
      atFieldStart = false;
    } else if (c === delimiter) {
      row.push(field);
      field = '';
      atFieldStart = true;
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      row.push(field);
      if (row.length > 1 || row[0] !== '') rows.push(row);
      row = [];
      field = '';
      atFieldStart = true;
    } else {
      field += c;
      atFieldStart = false;
    }
  }
  if (quoted) throw new InputFormatError('unterminated quoted field');
  row.push(field);
  if (row.length > 1 || row[0] !== '') rows.push(row);
  return rows;
}

function parseMaybeJson(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

function parseTable(text: string, delimiter: string, label: string): InputRecord[] {
  const rows = parseDelimited(text.replace(/^\uFEFF/, ''), delimiter);
  if (rows.length === 0) return [];
  const header = rows[0]!.map((h) => h.trim());
  const lower = header.map((h) => h.toLowerCase());
  const col = (...names: string[]): number => lower.findIndex((h) => names.includes(h));
  const seqCol = col('sequence', 'seq');
  if (seqCol === -1) throw new InputFormatError(`${label}: the header row needs a "sequence" column (got: ${header.join(', ')})`);
  const idCol = col('id', 'request_id', 'name');
  const taskCol = col('task', 'task_type');
  const orgCol = col('organism');
  const paramsCol = col('parameters', 'options');
  const paramCols = header.map((h, i) => ({ i, key: /^(parameters|param|option)\.(.+)$/i.exec(h)?.[2] })).filter((p): p is { i: number; key: string } => p.key !== undefined);
  return rows.slice(1).map((r, n) => {
    const line = n + 2;
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
      if (v !== undefined) (parameters ??= {})[key] = parseMaybeJson(v);
    }
    const task = cell(taskCol);
    const organism = cell(orgCol);
    return { id: cell(idCol) ?? `seq${n + 1}`, sequence: r[seqCol] ?? '', ...(task && { task }), ...(organism && { organism }), ...(parameters && { parameters }) };
  });
}

/** Every record of an input text. Syntax errors throw InputFormatError naming the line. */
export function parseInput(text: string, format: InputFormat, label = 'input'): InputRecord[] {
  switch (format) {
    case 'fasta':
      try {
        return parseFasta(text).map((r) => ({ id: r.id, sequence: r.sequence }));
      } catch (e) {
        throw new InputFormatError(`${label}: ${(e as Error).message}`);
      }
    case 'text':
      return parseSequences(text).map((r) => ({ id: r.id, sequence: r.sequence }));
    case 'csv':
      return parseTable(text, ',', label);
    case 'tsv':
      return parseTable(text, '\t', label);
    case 'jsonl': {
      const out: InputRecord[] = [];
      text.split(/\r?\n/).forEach((line, i) => {
        if (line.trim() === '') return;
        const where = `${label} line ${i + 1}`;
        out.push(...parseExchangeObject(parseJsonText(line, where), `seq${out.length + 1}`, where).records);
      });
      return out;
    }
    case 'json': {
      const doc = parseJsonText(text, label);
      const list = Array.isArray(doc) ? doc : [doc];
      const out: InputRecord[] = [];
      list.forEach((o, i) => out.push(...parseExchangeObject(o, `seq${out.length + 1}`, Array.isArray(doc) ? `${label}[${i}]` : label).records));
      return out;
    }
  }
}

const EXTENSIONS: Record<string, InputFormat> = {
  json: 'json',
  jsonl: 'jsonl',
  ndjson: 'jsonl',
  fasta: 'fasta',
  fa: 'fasta',
  faa: 'fasta',
  fna: 'fasta',
  ffn: 'fasta',
  fas: 'fasta',
  csv: 'csv',
  tsv: 'tsv',
  tab: 'tsv',
  txt: 'text',
  seq: 'text',
};

/** The format a file name's extension stands for, if any. */
export function formatFromFileName(name: string): InputFormat | undefined {
  const m = /\.([A-Za-z0-9]+)$/.exec(name);
  return m ? EXTENSIONS[m[1]!.toLowerCase()] : undefined;
}

/** The format a Content-Type names, if any (text/plain says nothing: sniff it). */
export function formatFromContentType(ct: string | undefined): InputFormat | undefined {
  const t = (ct ?? '').split(';')[0]!.trim().toLowerCase();
  if (t === 'application/x-ndjson' || t === 'application/jsonl' || t === 'application/x-jsonlines' || t === 'application/jsonlines') return 'jsonl';
  if (t === 'text/csv') return 'csv';
  if (t === 'text/tab-separated-values') return 'tsv';
  if (t === 'text/x-fasta' || t === 'application/x-fasta' || t === 'chemical/seq-na-fasta' || t === 'chemical/seq-aa-fasta') return 'fasta';
  return undefined;
}

/** Guesses from the content: FASTA header, JSON, JSONL, CSV/TSV header, else one sequence per line. */
export function sniffFormat(text: string): InputFormat {
  const t = text.trimStart();
  if (t.startsWith('>')) return 'fasta';
  if (t.startsWith('[')) return 'json';
  if (t.startsWith('{') || t.startsWith('"')) {
    const lines = t.split(/\r?\n/).filter((l) => l.trim() !== '');
    if (lines.length > 1 && lines.every((l) => /^\s*[{"]/.test(l) && /[}"]\s*$/.test(l))) return 'jsonl';
    return 'json';
  }
  const first = t.split(/\r?\n/, 1)[0]!.toLowerCase();
  if (/(^|\t)(sequence|seq)(\t|$)/.test(first)) return 'tsv';
  if (/(^|,)"?(sequence|seq)"?(,|$)/.test(first)) return 'csv';
  return 'text';
}

export function isInputFormat(v: unknown): v is InputFormat {
  return typeof v === 'string' && (INPUT_FORMATS as readonly string[]).includes(v);
}

// ---------------------------------------------------------------------------------------------
// Output

export function successRecord(task: string, output: Record<string, unknown>, metadata: OutputMetadata): OutputRecord {
  return { task, status: 'success', output, metadata };
}

export function errorRecord(task: string, error: ItemErrorBody, metadata: OutputMetadata): OutputRecord {
  return { task, status: 'error', error, metadata };
}

/**
 * The output file of one exchange input that carried `sequences`: one object in the exchange
 * shape whose output lists every sequence's result; status is "error" when any of them failed
 * (the results are still all there).
 */
export function aggregateRecord(task: string, requestId: string, records: OutputRecord[]): Record<string, unknown> {
  const failed = records.filter((r) => r.status === 'error').length;
  const first = records[0]?.metadata;
  const results = records.map((r) => ({ request_id: r.metadata.request_id, status: r.status, ...(r.output ? { output: r.output } : { error: r.error }) }));
  return {
    task,
    status: failed === 0 ? 'success' : 'error',
    output: { results, total: records.length, successful: records.length - failed, failed },
    ...(failed > 0 && { error: { code: failed === records.length ? 'PREDICTION_FAILED' : 'PARTIAL_FAILURE', message: `${failed} of ${records.length} sequences failed` } }),
    metadata: {
      request_id: requestId,
      processing_time_ms: Math.max(0, ...records.map((r) => r.metadata.processing_time_ms)),
      service: first?.service ?? null,
      version: first?.version ?? null,
    },
  };
}

/** A single-sequence exchange output file is the record itself, without the job index. */
export function exchangeRecord(r: OutputRecord): Record<string, unknown> {
  const { index: _index, ...metadata } = r.metadata;
  return { ...r, metadata };
}

function csvCell(v: unknown): string {
  if (v === undefined || v === null) return '';
  const s = typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : JSON.stringify(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

const FIXED_COLUMNS = ['index', 'request_id', 'task', 'status', 'service', 'version', 'processing_time_ms', 'error_code', 'error_message'];

/** CSV writer: fixed columns, then the output's top-level fields (nested values as JSON). */
export class CsvWriter {
  readonly columns: string[];
  constructor(outputFields: string[]) {
    this.columns = [...FIXED_COLUMNS, ...outputFields.filter((f) => !FIXED_COLUMNS.includes(f))];
  }

  /** The top-level output fields of some records, in first-seen order. */
  static fieldsOf(records: Iterable<OutputRecord>, into: string[] = []): string[] {
    const seen = new Set(into);
    for (const r of records) {
      for (const k of Object.keys(r.output ?? {})) {
        if (seen.has(k)) continue;
        seen.add(k);
        into.push(k);
      }
    }
    return into;
  }

  header(): string {
    return this.columns.map(csvCell).join(',') + '\n';
  }

  row(r: OutputRecord): string {
    const m = r.metadata;
    const fixed: Record<string, unknown> = {
      index: m.index,
      request_id: m.request_id,
      task: r.task,
      status: r.status,
      service: m.service,
      version: m.version,
      processing_time_ms: m.processing_time_ms,
      error_code: r.error?.code,
      error_message: r.error?.message,
    };
    return this.columns.map((c) => csvCell(c in fixed ? fixed[c] : r.output?.[c])).join(',') + '\n';
  }
}

/** All records as one CSV text. */
export function toCsv(records: OutputRecord[]): string {
  const w = new CsvWriter(CsvWriter.fieldsOf(records));
  return w.header() + records.map((r) => w.row(r)).join('');
}
