// What `isomodel batch` and `isomodel pipeline run` are asked to do (their options as commander
// hands them over, and as the batch reads them), and the summary they answer with.
import type { PipelineInput } from '../jobs/pipeline.js';

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
  return {
    input,
    inputDir: o.inputDir,
    outputDir: o.outputDir,
    output: o.output,
    format: o.format,
    outputFormat: o.outputFormat,
    workers: int(o.workers),
    chunkSize: int(o.chunkSize),
    options,
    organism: o.organism,
    url: o.url,
    offline: o.offline,
    quiet: o.quiet,
  };
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
export interface FileStats {
  total: number;
  successful: number;
  failed: number;
  /** Sum over the files of their records' model-call times. */
  total_ms: number;
  /** total_ms / total: the seed's "Average time" (per file). */
  average_ms: number;
}
