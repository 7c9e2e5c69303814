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
import {
  InputFormatError,
  parseExchangeObject,
  parseJsonText,
  pushAll,
  type InputRecord,
  type RecordParser,
} from './input-records.js';
import { tableParser } from './input-table.js';
import { jsonParser } from './input-json.js';

export {
  InputFormatError,
  isExchangeWrapper,
  parseExchangeObject,
  parseJsonText,
  pushAll,
  recordObject,
  setOwn,
  type ExchangeInput,
  type InputRecord,
  type RecordParser,
} from './input-records.js';
export { DelimitedReader, parseDelimited } from './input-table.js';

export const INPUT_FORMATS = ['json', 'jsonl', 'fasta', 'csv', 'tsv', 'text'] as const;
export type InputFormat = (typeof INPUT_FORMATS)[number];

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
