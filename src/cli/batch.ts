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
// Its parts: batch-args.ts (options, summary), batch-plan.ts (inputs and outputs), batch-run.ts
// (on a gateway or offline), batch-progress.ts (the progress bar).
import type { Config } from '../config/config.js';
import type { OutputRecord } from '../jobs/formats.js';
import { parsePipeline } from '../jobs/pipeline.js';
import { gatewayUp } from './client.js';
import type { BatchArgs, BatchSummary, FileStats } from './batch-args.js';
import { dirPlan, groupDispatcher, singleFilePlan } from './batch-plan.js';
import { Progress } from './batch-progress.js';
import { http, runOffline, runOnServer } from './batch-run.js';

export { batchArgsFrom, type BatchArgs, type BatchCliOpts, type BatchSummary } from './batch-args.js';
export { mediaFormatOfFile } from './batch-plan.js';
export { Progress } from './batch-progress.js';

/** Runs the batch; returns the summary (also printed). */
export async function batchCommand(args: BatchArgs, config: Config): Promise<BatchSummary> {
  if (!args.model && !args.pipeline) throw new Error('--model (or --service) is required');
  if (args.workers !== undefined && (!Number.isInteger(args.workers) || args.workers < 1 || args.workers > 64))
    throw new Error('--workers must be an integer from 1 to 64');
  if (
    args.chunkSize !== undefined &&
    (!Number.isInteger(args.chunkSize) || args.chunkSize < 1 || args.chunkSize > 1000)
  )
    throw new Error('--chunk-size must be an integer from 1 to 1000');
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
    if (!args.quiet)
      log.write(
        `${plan.inputs.length} ${unit} → ${args.pipeline ? `pipeline ${parsePipeline(args.pipeline).name}` : args.model} (${server ? `gateway ${args.url}` : 'offline: workers started here'})\n`,
      );
    if (server) {
      await runOnServer(
        args,
        plan.inputs,
        emit,
        ac.signal,
        (id) => {
          jobId = id;
          progress.begin();
          if (!args.quiet) log.write(`job ${id}\n`);
        },
        log,
      );
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
