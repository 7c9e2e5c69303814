// The batch's input and output plan: the records read from one file (FASTA, JSONL, CSV, TSV,
// text, exchange JSON, an image or audio file) or a folder of them, and where each result goes
// (one stream in input order, or one output file per input file, written once its records are in).
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
  type WriteStream,
} from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import {
  aggregateRecord,
  exchangeRecord,
  formatFromFileName,
  INPUT_FORMATS,
  InputFormatError,
  isInputFormat,
  parseExchangeObject,
  parseInput,
  sniffFormat,
  toCsv,
  type InputFormat,
  type InputRecord,
  type OutputFormat,
  type OutputRecord,
} from '../jobs/formats.js';
import { AUDIO_FORMATS, IMAGE_FORMATS, type MediaFormat } from '../validation/inputs/media.js';
import type { BatchArgs, FileStats } from './batch-args.js';

export interface Group {
  /** Records [start, start + count) of the job. */
  start: number;
  count: number;
  write(records: OutputRecord[]): void;
}

export interface Plan {
  inputs: InputRecord[];
  groups: Group[];
  /** Streaming sink for single-file mode. */
  sink?: (r: OutputRecord) => void;
  finish(): Promise<void>;
  outputLabel: string;
  toStdout: boolean;
}

function outputFormatOf(args: BatchArgs, file?: string): OutputFormat {
  const f = args.outputFormat ?? (file && extname(file).toLowerCase() === '.csv' ? 'csv' : 'jsonl');
  if (f !== 'jsonl' && f !== 'csv') throw new Error(`--output-format must be jsonl or csv (got ${f})`);
  return f;
}

function checkedFormat(f: string | undefined): InputFormat | undefined {
  if (f === undefined || isInputFormat(f)) return f;
  throw new Error(`--format must be one of ${INPUT_FORMATS.join(', ')} (got ${f})`);
}

function inputFormatOf(args: BatchArgs, file: string, text: string): InputFormat {
  return checkedFormat(args.format) ?? formatFromFileName(file) ?? sniffFormat(text);
}

const MEDIA_EXTENSIONS = new Map<string, MediaFormat>([
  ...[...IMAGE_FORMATS, ...AUDIO_FORMATS].map((f) => [f, f] as [string, MediaFormat]),
  ['jpg', 'jpeg'],
  ['oga', 'ogg'],
]);

/** The image or audio format a file name's extension stands for, if any. */
export function mediaFormatOfFile(name: string): MediaFormat | undefined {
  const m = /\.([A-Za-z0-9]+)$/.exec(name);
  return m ? MEDIA_EXTENSIONS.get(m[1]!.toLowerCase()) : undefined;
}

/** An image or audio file as one record: its bytes as base64 with the format its name gives (the task checks both). */
function mediaRecord(path: string, id: string, format: MediaFormat): InputRecord {
  return { id, input: { data: readFileSync(path).toString('base64'), format } };
}

function readText(file: string): string {
  if (file === '-') return readFileSync(0, 'utf8');
  if (!existsSync(file)) throw new Error(`no such file: ${file}`);
  return readFileSync(file, 'utf8');
}

function parseOrExplain<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof InputFormatError) throw new Error(e.message);
    throw e;
  }
}

/** One input file, one output stream (JSONL streamed in order; CSV written at the end). */
export function singleFilePlan(args: BatchArgs): Plan {
  const file = args.input!;
  const media = args.format === undefined && file !== '-' ? mediaFormatOfFile(file) : undefined;
  let inputs: InputRecord[];
  if (media) {
    if (!existsSync(file)) throw new Error(`no such file: ${file}`);
    inputs = [mediaRecord(file, basename(file).replace(/\.[^.]+$/, ''), media)];
  } else {
    const text = readText(file);
    const format = inputFormatOf(args, file, text);
    inputs = parseOrExplain(() => parseInput(text, format, file === '-' ? 'stdin' : basename(file)));
  }
  const outFormat = outputFormatOf(args, args.output);
  const toStdout = !args.output || args.output === '-';
  let out: WriteStream | NodeJS.WriteStream;
  if (toStdout) out = process.stdout;
  else out = createWriteStream(args.output!);
  const buffered: OutputRecord[] = [];
  const sink = (r: OutputRecord): void => {
    if (outFormat === 'csv') buffered.push(r);
    else out.write(JSON.stringify(r) + '\n');
  };
  return {
    inputs,
    groups: [],
    sink,
    outputLabel: toStdout ? 'stdout' : args.output!,
    toStdout,
    finish: () =>
      new Promise<void>((resolve, reject) => {
        if (outFormat === 'csv') out.write(toCsv(buffered));
        if (toStdout) return resolve();
        (out as WriteStream).end((e?: Error | null) => (e ? reject(e) : resolve()));
      }),
  };
}

/**
 * A folder of input files, one output file each in the output folder: an exchange .json file
 * gives a .json file in the exchange output shape (an array for an array); FASTA, JSONL, CSV,
 * TSV and text files give .jsonl (or .csv) files of records; an image or audio file is one
 * record and gives a .json file with its result.
 */
export function dirPlan(args: BatchArgs, fileStats: FileStats): Plan {
  const dir = args.inputDir!;
  const outDir = args.outputDir ?? defaultOutputDir(dir);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`no such folder: ${dir}`);
  mkdirSync(outDir, { recursive: true });
  const outFormat = outputFormatOf(args);
  const inputs: InputRecord[] = [];
  const groups: Group[] = [];
  const files = readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isFile() && !e.name.startsWith('.'))
    .map((e) => e.name)
    .sort();
  for (const name of files) {
    const path = join(dir, name);
    const stem = name.replace(/\.[^.]+$/, '');
    const start = inputs.length;
    const tally = (records: OutputRecord[]): void => {
      fileStats.total++;
      for (const r of records) fileStats.total_ms += r.metadata.processing_time_ms;
      fileStats.average_ms = fileStats.total_ms / fileStats.total;
      if (records.every((r) => r.status === 'success')) fileStats.successful++;
      else fileStats.failed++;
    };
    const media = args.format === undefined ? mediaFormatOfFile(name) : undefined;
    if (media) {
      inputs.push(mediaRecord(path, stem, media));
      groups.push({
        start,
        count: 1,
        write: (records) => {
          writeFileSync(join(outDir, `${stem}.json`), JSON.stringify(exchangeRecord(records[0]!), null, 2) + '\n');
          tally(records);
        },
      });
      continue;
    }
    const fmt = checkedFormat(args.format) ?? formatFromFileName(name);
    if (!fmt) {
      process.stderr.write(`skipping ${name}: unknown extension (use --format)\n`);
      continue;
    }
    const text = readFileSync(path, 'utf8');
    if (fmt === 'json') {
      // Keep each exchange object's shape: a `sequences` input gets one aggregate output.
      const doc = parseOrExplain(() => {
        try {
          return JSON.parse(text) as unknown;
        } catch (e) {
          throw new InputFormatError(`${name}: not valid JSON (${(e as Error).message})`);
        }
      });
      const objects = Array.isArray(doc) ? doc : [doc];
      const parts = objects.map((o, i) => {
        const x = parseOrExplain(() =>
          parseExchangeObject(
            o,
            objects.length > 1 ? `${stem}-${i + 1}` : stem,
            Array.isArray(doc) ? `${name}[${i}]` : name,
          ),
        );
        inputs.push(...x.records);
        return x;
      });
      groups.push({
        start,
        count: inputs.length - start,
        write: (records) => {
          let at = start;
          const outputs = parts.map((p) => {
            const from = at;
            at += p.records.length;
            const mine = records.filter((r) => r.metadata.index >= from && r.metadata.index < at);
            const task = mine[0]?.task ?? p.task ?? args.task ?? '';
            if (mine.length === 0)
              return {
                task,
                status: 'error',
                error: { code: 'CANCELLED', message: 'not processed: the job ended first' },
                metadata: { request_id: p.requestId },
              };
            return p.multi ? aggregateRecord(task, p.requestId, mine) : exchangeRecord(mine[0]!);
          });
          writeFileSync(
            join(outDir, `${stem}.json`),
            JSON.stringify(Array.isArray(doc) ? outputs : outputs[0], null, 2) + '\n',
          );
          tally(records);
        },
      });
    } else {
      inputs.push(...parseOrExplain(() => parseInput(text, fmt, name)));
      groups.push({
        start,
        count: inputs.length - start,
        write: (records) => {
          const body = outFormat === 'csv' ? toCsv(records) : records.map((r) => JSON.stringify(r) + '\n').join('');
          writeFileSync(join(outDir, `${stem}.${outFormat}`), body);
          tally(records);
        },
      });
    }
  }
  return { inputs, groups, outputLabel: outDir, toStdout: false, finish: async () => undefined };
}

/**
 * The output folder of --input-dir when --output-dir is not given: seed 003's layout keeps
 * data/input/ and data/output/ side by side, so a folder named "input" gets its sibling "output".
 */
function defaultOutputDir(inputDir: string): string {
  const dir = resolve(inputDir);
  if (basename(dir) === 'input') return join(dirname(dir), 'output');
  throw new Error('--input-dir needs --output-dir (only a folder named input gets its sibling output/ by default)');
}

/**
 * Feeds each group's writer once all its records have arrived (they arrive in input order);
 * flush() writes what the groups got when some records never came (an interrupted job).
 */
export function groupDispatcher(groups: Group[]): { add: (r: OutputRecord) => void; flush: () => void } {
  let g = 0;
  let buf: OutputRecord[] = [];
  const flush = (): void => {
    for (; g < groups.length; g++) {
      const mine = buf.filter(
        (r) => r.metadata.index >= groups[g]!.start && r.metadata.index < groups[g]!.start + groups[g]!.count,
      );
      if (mine.length) groups[g]!.write(mine);
    }
    buf = [];
  };
  const add = (r: OutputRecord): void => {
    while (g < groups.length && r.metadata.index >= groups[g]!.start + groups[g]!.count) {
      if (buf.length) groups[g]!.write(buf);
      buf = [];
      g++;
    }
    buf.push(r);
    if (g < groups.length && buf.length === groups[g]!.count) {
      groups[g]!.write(buf);
      buf = [];
      g++;
    }
  };
  return { add, flush };
}
