// `isomodel batch` (and `isomodel pipeline run`): many records (sequences, or inputs of any type:
// JSONL `{"id", "input"}` records, CSV `input` columns, image and audio files) through a model or a
// pipeline.
//
//   isomodel batch seqs.fasta --model M --task T [--output out.jsonl|out.csv] [--workers N]
//   isomodel batch --model M --task T --input-dir D --output-dir O [--workers N]
//
// With a gateway answering at --url the work is submitted there as a durable job and its
// results are streamed back (reconnecting if the gateway restarts); otherwise (or with
// --offline) the model's workers are started here, N replicas of each model. Either way the
// records come out in input order, with a progress bar on a terminal and plain lines otherwise,
// then a summary.
import { createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync, type WriteStream } from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { destination, pino } from 'pino';
import type { Config } from '../config/config.js';
import { IsoError } from '../errors.js';
import {
  aggregateRecord,
  exchangeRecord,
  formatFromFileName,
  INPUT_FORMATS,
  InputFormatError,
  isInputFormat,
  parseExchangeObject,
  parseInput,
  recordObject,
  sniffFormat,
  toCsv,
  type InputFormat,
  type InputRecord,
  type OutputFormat,
  type OutputRecord,
} from '../jobs/formats.js';
import { LocalModels } from '../jobs/local.js';
import { parsePipeline, processPipelineChunk, resolveSteps, type PipelineInput } from '../jobs/pipeline.js';
import { chunked, processPredictChunk, runChunks, sleep, type ChunkProcessor, type ModelExecutor } from '../jobs/work.js';
import { gatewayUp, type Envelope } from './client.js';
import { AUDIO_FORMATS, IMAGE_FORMATS, type MediaFormat } from '../validation/inputs/media.js';

export interface BatchArgs {
  /** A single-model job… */
  model?: string;
  task?: string;
  /** …or a pipeline definition (already read from its YAML file). */
  pipeline?: PipelineInput;
  input?: string;
  inputDir?: string;
  outputDir?: string;
  output?: string;
  format?: string;
  outputFormat?: string;
  workers?: number;
  chunkSize?: number;
  options: Record<string, unknown>;
  organism?: string;
  url: string;
  offline?: boolean;
  quiet?: boolean;
  /** Where progress and the summary go (default stderr). */
  log?: NodeJS.WritableStream & { isTTY?: boolean };
}

/** The options of the `batch` and `pipeline run` commands, as commander hands them over. */
export interface BatchCliOpts {
  inputDir?: string;
  outputDir?: string;
  output?: string;
  format?: string;
  outputFormat?: string;
  workers?: string;
  chunkSize?: string;
  option?: string[];
  organism?: string;
  url: string;
  offline?: boolean;
  quiet?: boolean;
}

export function batchArgsFrom(input: string | undefined, o: BatchCliOpts, options: Record<string, unknown>): BatchArgs {
  const int = (v: string | undefined): number | undefined => (v === undefined ? undefined : Number(v));
  return { input, inputDir: o.inputDir, outputDir: o.outputDir, output: o.output, format: o.format, outputFormat: o.outputFormat, workers: int(o.workers), chunkSize: int(o.chunkSize), options, organism: o.organism, url: o.url, offline: o.offline, quiet: o.quiet };
}

export interface BatchSummary {
  mode: 'server' | 'offline';
  job_id?: string;
  total: number;
  successful: number;
  failed: number;
  missing: number;
  average_ms: number;
  total_s: number;
  files?: FileStats;
}

/** Per input file of --input-dir: a file is successful when every record of it is. */
interface FileStats {
  total: number;
  successful: number;
  failed: number;
  /** Sum over the files of their records' model-call times. */
  total_ms: number;
  /** total_ms / total: the seed's "Average time" (per file). */
  average_ms: number;
}

interface Group {
  /** Records [start, start + count) of the job. */
  start: number;
  count: number;
  write(records: OutputRecord[]): void;
}

interface Plan {
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

const MEDIA_EXTENSIONS = new Map<string, MediaFormat>([...[...IMAGE_FORMATS, ...AUDIO_FORMATS].map((f) => [f, f] as [string, MediaFormat]), ['jpg', 'jpeg'], ['oga', 'ogg']]);

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
function singleFilePlan(args: BatchArgs): Plan {
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
function dirPlan(args: BatchArgs, fileStats: FileStats): Plan {
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
        const x = parseOrExplain(() => parseExchangeObject(o, objects.length > 1 ? `${stem}-${i + 1}` : stem, Array.isArray(doc) ? `${name}[${i}]` : name));
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
            if (mine.length === 0) return { task, status: 'error', error: { code: 'CANCELLED', message: 'not processed: the job ended first' }, metadata: { request_id: p.requestId } };
            return p.multi ? aggregateRecord(task, p.requestId, mine) : exchangeRecord(mine[0]!);
          });
          writeFileSync(join(outDir, `${stem}.json`), JSON.stringify(Array.isArray(doc) ? outputs : outputs[0], null, 2) + '\n');
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

/** Progress on a terminal: one redrawn bar; elsewhere: a plain line every few seconds. */
export class Progress {
  done = 0;
  failed = 0;
  private t0 = Date.now();
  private lastDraw = Date.now();
  private lastPct = 0;
  private lastDone = -1;

  constructor(
    private readonly total: number,
    private readonly out: NodeJS.WritableStream & { isTTY?: boolean },
    private readonly enabled: boolean,
  ) {}

  private get tty(): boolean {
    return this.out.isTTY === true;
  }

  /** Rates and ETA count from here: the workers are up (or the job is accepted). */
  begin(): void {
    this.t0 = Date.now();
    this.lastDraw = this.t0;
  }

  add(r: OutputRecord): void {
    this.done++;
    if (r.status === 'error') this.failed++;
    this.draw(false);
  }

  private stats(): { rate: number; eta: string; pct: number } {
    const s = (Date.now() - this.t0) / 1000;
    const rate = s > 0 ? this.done / s : 0;
    const left = this.total - this.done;
    const eta = rate > 0 ? formatDuration(left / rate) : '?';
    return { rate, eta, pct: this.total ? (100 * this.done) / this.total : 100 };
  }

  draw(force: boolean): void {
    if (!this.enabled || (force && this.done === this.lastDone)) return;
    const now = Date.now();
    const { rate, eta, pct } = this.stats();
    if (this.tty) {
      if (!force && now - this.lastDraw < 100) return;
      this.lastDraw = now;
      this.lastDone = this.done;
      const width = 30;
      const filled = Math.round((width * pct) / 100);
      const bar = '█'.repeat(filled) + '░'.repeat(width - filled);
      this.out.write(`\r${bar} ${pct.toFixed(1).padStart(5)}% ${this.done}/${this.total} | ok ${this.done - this.failed} failed ${this.failed} | ${rate.toFixed(1)}/s | ETA ${eta}  `);
    } else {
      const step = Math.floor(pct / 10);
      if (!force && now - this.lastDraw < 5000 && step === this.lastPct) return;
      this.lastDraw = now;
      this.lastPct = step;
      this.lastDone = this.done;
      this.out.write(`progress: ${this.done}/${this.total} (${pct.toFixed(1)}%) done=${this.done - this.failed} failed=${this.failed} rate=${rate.toFixed(1)}/s eta=${eta}\n`);
    }
  }

  end(): void {
    if (!this.enabled) return;
    this.draw(true);
    if (this.tty && this.lastDone >= 0) this.out.write('\n');
  }
}

function formatDuration(s: number): string {
  if (!Number.isFinite(s)) return '?';
  s = Math.round(s);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h ? `${h}h${String(m).padStart(2, '0')}m` : m ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}

/**
 * Feeds each group's writer once all its records have arrived (they arrive in input order);
 * flush() writes what the groups got when some records never came (an interrupted job).
 */
function groupDispatcher(groups: Group[]): { add: (r: OutputRecord) => void; flush: () => void } {
  let g = 0;
  let buf: OutputRecord[] = [];
  const flush = (): void => {
    for (; g < groups.length; g++) {
      const mine = buf.filter((r) => r.metadata.index >= groups[g]!.start && r.metadata.index < groups[g]!.start + groups[g]!.count);
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

/** The models a job needs, and the batch size to chunk by. */
function jobModels(args: BatchArgs, executor: Pick<ModelExecutor, 'manifest'>): { models: string[]; chunk: number; replicas: number } {
  if (args.pipeline) {
    const steps = resolveSteps(parsePipeline(args.pipeline), (m) => executor.manifest(m));
    return { models: steps.map((s) => s.manifest.name), chunk: steps[0]!.manifest.batching.max_batch_size, replicas: Math.max(...steps.map((s) => s.manifest.scaling.max_replicas)) };
  }
  const m = executor.manifest(args.model!);
  return { models: [m.name], chunk: m.batching.max_batch_size, replicas: m.scaling.max_replicas };
}

function jobOptions(args: BatchArgs): Record<string, unknown> {
  return args.organism === undefined ? args.options : { ...args.options, organism: args.organism };
}

/** Workers started here; records handed to `emit` in input order. */
async function runOffline(args: BatchArgs, config: Config, inputs: InputRecord[], emit: (r: OutputRecord) => void, signal: AbortSignal, onReady: () => void): Promise<void> {
  const logger = pino({ level: 'warn' }, destination(2));
  const local = new LocalModels(config, logger);
  const need = jobModels(args, local);
  const workers = args.workers ?? need.replicas;
  try {
    await local.start(need.models, workers);
    onReady();
    const options = jobOptions(args);
    const ctx = (s: AbortSignal) => ({ executor: local, signal: s, maxWaitMs: 60_000 });
    const process: ChunkProcessor = args.pipeline
      ? (c, s) => processPipelineChunk({ kind: 'pipeline', pipeline: args.pipeline!, options }, c, ctx(s))
      : (c, s) => processPredictChunk({ kind: 'predict', model: args.model!, task: args.task, options }, c, ctx(s));
    const pending = new Map<number, OutputRecord>();
    let next = 0;
    await runChunks({
      chunks: chunked(
        inputs.map((input, index) => ({ index, input })),
        args.chunkSize ?? need.chunk,
      ),
      concurrency: workers * 2,
      process,
      commit: (_chunk, records) => {
        for (const r of records) pending.set(r.metadata.index, r);
        while (pending.has(next)) {
          const r = pending.get(next)!;
          pending.delete(next++);
          emit(r);
        }
      },
      signal,
    });
  } finally {
    await local.close();
  }
}

/**
 * A gateway with API keys wants one on every job call: ISOMODEL_API_KEY (a key with the predict
 * scope). The job belongs to that key: only it (or an admin key) can read or cancel it.
 */
function authHeaders(): Record<string, string> {
  const key = process.env.ISOMODEL_API_KEY;
  return key ? { authorization: `Bearer ${key}` } : {};
}

async function http<T>(method: string, url: string, body?: unknown): Promise<Envelope<T>> {
  const res = await fetch(url, {
    method,
    headers: { ...authHeaders(), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(300_000),
  });
  return (await res.json()) as Envelope<T>;
}

/** Submits a durable job to the gateway and streams its results, resuming the stream after a restart. */
async function runOnServer(args: BatchArgs, inputs: InputRecord[], emit: (r: OutputRecord) => void, signal: AbortSignal, onJob: (id: string) => void, log: NodeJS.WritableStream): Promise<void> {
  const base = args.url.replace(/\/+$/, '');
  const body: Record<string, unknown> = {
    ...(args.pipeline ? { pipeline: args.pipeline } : { model: args.model, ...(args.task && { task: args.task }) }),
    // Each record spelt so the gateway reads it back as it is, whatever its input looks like.
    inputs: inputs.map(recordObject),
    options: jobOptions(args),
    ...(args.workers && { workers: args.workers }),
    ...(args.chunkSize && { chunk_size: args.chunkSize }),
    name: args.input ? basename(args.input) : args.inputDir ? basename(args.inputDir) : undefined,
  };
  const env = await http<{ id: string; total: number }>('POST', `${base}/v1/jobs`, body);
  if (!env.success || !env.data) throw new Error(`${env.error?.code ?? 'ERROR'}: ${env.message}`);
  const id = env.data.id;
  onJob(id);
  let next = 0;
  let outage = 0;
  while (next < inputs.length) {
    if (signal.aborted) throw new Error('interrupted');
    try {
      const res = await fetch(`${base}/v1/jobs/${id}/results?from=${next}`, { signal, headers: authHeaders() });
      if (!res.ok || !res.body) {
        const e = (await res.json().catch(() => ({}))) as Envelope;
        throw new IsoError('INTERNAL_ERROR', `${e.error?.code ?? res.status}: ${e.message ?? 'results unavailable'}`);
      }
      outage = 0;
      let rest = '';
      const decoder = new TextDecoder();
      for await (const part of res.body as unknown as AsyncIterable<Uint8Array>) {
        rest += decoder.decode(part, { stream: true });
        let nl: number;
        while ((nl = rest.indexOf('\n')) !== -1) {
          const line = rest.slice(0, nl);
          rest = rest.slice(nl + 1);
          if (!line.trim()) continue;
          const r = JSON.parse(line) as OutputRecord;
          if (r.metadata.index < next) continue;
          next = r.metadata.index + 1;
          emit(r);
        }
      }
      if (next >= inputs.length) break;
      // The stream ended early: a job that ended without every result, or a gateway going away.
      const status = await http<{ status: string; error: string | null }>('GET', `${base}/v1/jobs/${id}`);
      if (status.success && status.data && ['failed', 'cancelled', 'succeeded'].includes(status.data.status)) {
        if (status.data.status !== 'succeeded') throw new Error(`job ${id} ${status.data.status}${status.data.error ? `: ${status.data.error}` : ''}`);
        break;
      }
    } catch (e) {
      if (signal.aborted) throw new Error('interrupted');
      if (e instanceof IsoError || (e as Error).message.startsWith('job ')) throw e;
      // The gateway went away (restart, crash): the job is durable, wait for it to come back.
      if (outage === 0 && !args.quiet) log.write(`\nconnection to ${base} lost (${(e as Error).message}); waiting for the gateway to come back…\n`);
      outage++;
      if (outage > 600) throw new Error(`gateway at ${base} did not come back; job ${id} continues there`);
      await sleep(1000);
    }
  }
}

/** Runs the batch; returns the summary (also printed). */
export async function batchCommand(args: BatchArgs, config: Config): Promise<BatchSummary> {
  if (!args.model && !args.pipeline) throw new Error('--model (or --service) is required');
  if (args.workers !== undefined && (!Number.isInteger(args.workers) || args.workers < 1 || args.workers > 64)) throw new Error('--workers must be an integer from 1 to 64');
  if (args.chunkSize !== undefined && (!Number.isInteger(args.chunkSize) || args.chunkSize < 1 || args.chunkSize > 1000)) throw new Error('--chunk-size must be an integer from 1 to 1000');
  if (!args.input && !args.inputDir) throw new Error('give an input file (or -) or --input-dir');
  if (args.input && args.inputDir) throw new Error('give either an input file or --input-dir, not both');
  const log = args.log ?? process.stderr;
  const fileStats: FileStats = { total: 0, successful: 0, failed: 0, total_ms: 0, average_ms: 0 };
  const plan = args.inputDir ? dirPlan(args, fileStats) : singleFilePlan(args);
  if (plan.inputs.length === 0) throw new Error('no sequences in the input');
  const unit = plan.inputs.some((r) => r.input !== undefined) ? 'records' : 'sequences';
  const info = plan.toStdout ? log : process.stdout;
  const progress = new Progress(plan.inputs.length, log, !args.quiet);
  const toGroups = plan.groups.length ? groupDispatcher(plan.groups) : null;
  let sumMs = 0;
  let count = 0;
  const emit = (r: OutputRecord): void => {
    count++;
    sumMs += r.metadata.processing_time_ms;
    plan.sink?.(r);
    toGroups?.add(r);
    progress.add(r);
  };
  const ac = new AbortController();
  let jobId: string | undefined;
  const onSigint = (): void => {
    ac.abort();
  };
  process.once('SIGINT', onSigint);
  const t0 = Date.now();
  const server = !args.offline && (await gatewayUp(args.url));
  try {
    if (!args.quiet) log.write(`${plan.inputs.length} ${unit} → ${args.pipeline ? `pipeline ${parsePipeline(args.pipeline).name}` : args.model} (${server ? `gateway ${args.url}` : 'offline: workers started here'})\n`);
    if (server) {
      await runOnServer(args, plan.inputs, emit, ac.signal, (id) => {
        jobId = id;
        progress.begin();
        if (!args.quiet) log.write(`job ${id}\n`);
      }, log);
    } else await runOffline(args, config, plan.inputs, emit, ac.signal, () => progress.begin());
  } catch (e) {
    if (ac.signal.aborted && jobId) {
      await http('POST', `${args.url.replace(/\/+$/, '')}/v1/jobs/${jobId}/cancel`).catch(() => undefined);
      throw new Error(`interrupted; job ${jobId} cancelled`);
    }
    if (ac.signal.aborted) throw new Error('interrupted');
    throw e;
  } finally {
    process.off('SIGINT', onSigint);
    progress.end();
  }
  toGroups?.flush();
  await plan.finish();
  const totalS = (Date.now() - t0) / 1000;
  const summary: BatchSummary = {
    mode: server ? 'server' : 'offline',
    ...(jobId && { job_id: jobId }),
    total: plan.inputs.length,
    successful: progress.done - progress.failed,
    failed: progress.failed,
    missing: plan.inputs.length - count,
    average_ms: count ? sumMs / count : 0,
    total_s: totalS,
    ...(args.inputDir && { files: fileStats }),
  };
  if (!args.quiet && summary.files) {
    // seed 003's summary (scripts/batch_process.py): per file, then the records beneath.
    const f = summary.files;
    const lines = [
      `Total files:     ${f.total}`,
      `Successful:      ${f.successful}`,
      `Failed:          ${f.failed}`,
      `Average time:    ${(f.average_ms / 1000).toFixed(3)}s per file (its records' model calls)`,
      `Total time:      ${totalS.toFixed(2)}s`,
      `Records:         ${summary.total} (${summary.successful} successful, ${summary.failed} failed${summary.missing ? `, ${summary.missing} not processed` : ''})`,
      `Output:          ${plan.outputLabel}`,
    ];
    info.write(lines.join('\n') + '\n');
  } else if (!args.quiet) {
    const lines = [
      `Total:         ${summary.total}`,
      `Successful:    ${summary.successful}`,
      `Failed:        ${summary.failed}`,
      ...(summary.missing ? [`Not processed: ${summary.missing}`] : []),
      `Average time:  ${summary.average_ms.toFixed(2)} ms per record (its model call); ${((1000 * totalS) / Math.max(count, 1)).toFixed(3)} ms of wall time per sequence`,
      `Total time:    ${totalS.toFixed(2)} s (${(count / Math.max(totalS, 1e-9)).toFixed(1)} sequences/s)`,
      ...(!plan.toStdout ? [`Output:        ${plan.outputLabel}`] : []),
    ];
    info.write(lines.join('\n') + '\n');
  }
  return summary;
}
