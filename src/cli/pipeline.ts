// `isomodel pipeline run file.yaml --input seqs.fasta` and `isomodel pipeline validate file.yaml`:
// a pipeline (src/jobs/pipeline.ts) over every record of an input file or folder, through a
// running gateway (as a job) or workers started here; see batch.ts for the shared machinery.
import type { Config } from '../config/config.js';
import { LocalModels } from '../jobs/local.js';
import { DEFAULT_PIPELINE } from '../jobs/default-pipeline.js';
import { loadPipelineFile, parsePipeline, resolveSteps, type PipelineInput } from '../jobs/pipeline.js';
import { batchCommand, type BatchArgs, type BatchSummary } from './batch.js';
import { pino } from 'pino';

/** A pipeline file, or without one seed 003's default pipeline (generate → optimise → verify). */
function pipelineFrom(file: string | undefined): PipelineInput {
  return file === undefined ? DEFAULT_PIPELINE : loadPipelineFile(file);
}

export async function pipelineRunCommand(
  file: string | undefined,
  args: Omit<BatchArgs, 'pipeline' | 'model' | 'task'>,
  config: Config,
): Promise<BatchSummary> {
  const pipeline = pipelineFrom(file);
  return batchCommand({ ...args, pipeline }, config);
}

/** Checks the file and that every step's model and task exist in the models dir; one line per step. */
export function pipelineValidateCommand(file: string | undefined, config: Config): string {
  const def = parsePipeline(pipelineFrom(file));
  const local = new LocalModels(config, pino({ level: 'silent' }));
  const steps = resolveSteps(def, (m) => local.manifest(m));
  const lines = def.steps.map((s, i) => {
    // The first step reads the record's own input: its sequence for a sequence task.
    const whole =
      s.sequence.fromRecord && steps[i]!.task.input_type !== 'sequence' ? 'input.input' : s.sequence.from.join('.');
    const from = whole + (s.sequence.untilStop ? ' (until stop)' : '');
    const opts = [...Object.keys(s.options), ...s.optionsFrom.map(([k, p]) => `${k}<-${p.join('.')}`)];
    return `${i + 1}. ${s.name}: ${s.model}/${steps[i]!.task.name} on ${from}${opts.length ? ` [${opts.join(', ')}]` : ''}`;
  });
  return `pipeline ${def.name} (version ${def.version}) is valid:\n${lines.join('\n')}`;
}
