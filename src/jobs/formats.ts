// The file-exchange formats of batch jobs (docs/jobs.md). The input side (formats to records,
// read incrementally) lives in input.ts and is re-exported here.
//
// Output, one record per input, in the exchange shape
//   {task, status: "success"|"error", output | error, metadata:{request_id, processing_time_ms, service, version, index}}
// written as JSONL or CSV.
export {
  DelimitedReader,
  formatFromContentType,
  formatFromFileName,
  INPUT_FORMATS,
  InputFormatError,
  isExchangeWrapper,
  isInputFormat,
  parseDelimited,
  parseExchangeObject,
  parseInput,
  pushAll,
  recordObject,
  recordParser,
  setOwn,
  sniffFormat,
  type ExchangeInput,
  type InputFormat,
  type InputRecord,
  type RecordParser,
} from './input.js';

export const OUTPUT_FORMATS = ['jsonl', 'csv'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export interface ItemErrorBody {
  code: string;
  message: string;
  [k: string]: unknown;
}

// The published client's wire type is the contract: the gateway writes what the client reads.
import type { ResultMetadata } from '../client/types.js';
export type OutputMetadata = ResultMetadata;

/** One result, in the exchange output shape. */
export interface OutputRecord {
  task: string;
  status: 'success' | 'error';
  output?: Record<string, unknown>;
  error?: ItemErrorBody;
  metadata: OutputMetadata;
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
  const results = records.map((r) => ({
    request_id: r.metadata.request_id,
    status: r.status,
    ...(r.output ? { output: r.output } : { error: r.error }),
  }));
  return {
    task,
    status: failed === 0 ? 'success' : 'error',
    output: { results, total: records.length, successful: records.length - failed, failed },
    ...(failed > 0 && {
      error: {
        code: failed === records.length ? 'PREDICTION_FAILED' : 'PARTIAL_FAILURE',
        message: `${failed} of ${records.length} sequences failed`,
      },
    }),
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

const FIXED_COLUMNS = [
  'index',
  'request_id',
  'task',
  'status',
  'service',
  'version',
  'processing_time_ms',
  'error_code',
  'error_message',
];

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
    // A Map: output fields are named by models and pipeline steps ("constructor", "__proto__"…).
    const fixed = new Map<string, unknown>([
      ['index', m.index],
      ['request_id', m.request_id],
      ['task', r.task],
      ['status', r.status],
      ['service', m.service],
      ['version', m.version],
      ['processing_time_ms', m.processing_time_ms],
      ['error_code', r.error?.code],
      ['error_message', r.error?.message],
    ]);
    const output = r.output ?? {};
    return (
      this.columns
        .map((c) => csvCell(fixed.has(c) ? fixed.get(c) : Object.hasOwn(output, c) ? output[c] : undefined))
        .join(',') + '\n'
    );
  }
}

/** All records as one CSV text. */
export function toCsv(records: OutputRecord[]): string {
  const w = new CsvWriter(CsvWriter.fieldsOf(records));
  return w.header() + records.map((r) => w.row(r)).join('');
}
