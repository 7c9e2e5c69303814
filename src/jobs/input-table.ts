// CSV / TSV input: RFC 4180 rows read piece by piece, a header row naming the columns.
import {
  InputFormatError,
  isObject,
  parseJsonText,
  parseMaybeJson,
  RecordBatch,
  setOwn,
  type InputRecord,
  type RecordParser,
} from './input-records.js';

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
export function tableParser(delimiter: string, label: string): RecordParser {
  const batch = new RecordBatch();
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
      else batch.add(toRecord(row, n++));
    },
    label,
  );
  return {
    push(text) {
      reader.push(text);
      return batch.take();
    },
    end() {
      reader.end();
      return batch.take();
    },
  };
}
