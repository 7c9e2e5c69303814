// Where the batch's records are worked: by the workers of a gateway, as a durable job whose results
// stream back (resuming after a gateway restart), or offline by workers started here; either way
// the records are handed on in input order.
import { basename } from 'node:path';
import { destination, pino } from 'pino';
import type { Config } from '../config/config.js';
import { IsoError } from '../errors.js';
import { recordObject, type InputRecord, type OutputRecord } from '../jobs/formats.js';
import { LocalModels } from '../jobs/local.js';
import { parsePipeline, processPipelineChunk, resolveSteps } from '../jobs/pipeline.js';
import {
  chunked,
  processPredictChunk,
  runChunks,
  sleep,
  type ChunkProcessor,
  type ModelExecutor,
} from '../jobs/work.js';
import type { Envelope } from './client.js';
import type { BatchArgs } from './batch-args.js';

/** The models a job needs, and the batch size to chunk by. */
function jobModels(
  args: BatchArgs,
  executor: Pick<ModelExecutor, 'manifest'>,
): { models: string[]; chunk: number; replicas: number } {
  if (args.pipeline) {
    const steps = resolveSteps(parsePipeline(args.pipeline), (m) => executor.manifest(m));
    return {
      models: steps.map((s) => s.manifest.name),
      chunk: steps[0]!.manifest.batching.max_batch_size,
      replicas: Math.max(...steps.map((s) => s.manifest.scaling.max_replicas)),
    };
  }
  const m = executor.manifest(args.model!);
  return { models: [m.name], chunk: m.batching.max_batch_size, replicas: m.scaling.max_replicas };
}

function jobOptions(args: BatchArgs): Record<string, unknown> {
  return args.organism === undefined ? args.options : { ...args.options, organism: args.organism };
}

/** Workers started here; records handed to `emit` in input order. */
export async function runOffline(
  args: BatchArgs,
  config: Config,
  inputs: InputRecord[],
  emit: (r: OutputRecord) => void,
  signal: AbortSignal,
  onReady: () => void,
): Promise<void> {
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

export async function http<T>(method: string, url: string, body?: unknown): Promise<Envelope<T>> {
  const res = await fetch(url, {
    method,
    headers: { ...authHeaders(), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(300_000),
  });
  return (await res.json()) as Envelope<T>;
}

/** Submits a durable job to the gateway and streams its results, resuming the stream after a restart. */
export async function runOnServer(
  args: BatchArgs,
  inputs: InputRecord[],
  emit: (r: OutputRecord) => void,
  signal: AbortSignal,
  onJob: (id: string) => void,
  log: NodeJS.WritableStream,
): Promise<void> {
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
        if (status.data.status !== 'succeeded')
          throw new Error(`job ${id} ${status.data.status}${status.data.error ? `: ${status.data.error}` : ''}`);
        break;
      }
    } catch (e) {
      if (signal.aborted) throw new Error('interrupted');
      if (e instanceof IsoError || (e as Error).message.startsWith('job ')) throw e;
      // The gateway went away (restart, crash): the job is durable, wait for it to come back.
      if (outage === 0 && !args.quiet)
        log.write(`\nconnection to ${base} lost (${(e as Error).message}); waiting for the gateway to come back…\n`);
      outage++;
      if (outage > 600) throw new Error(`gateway at ${base} did not come back; job ${id} continues there`);
      await sleep(1000);
    }
  }
}
