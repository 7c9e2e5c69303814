// Automatic model choice for the MCP tool `analyze_sequences`: which loaded model should run
// a task for these sequences. Pure and self-contained (no gateway access) so it is easy to test;
// the Agent API has its own chooser.
import type { Manifest, SequenceType, TaskSpec } from '../manifest/schema.js';

export interface ChoiceCandidate {
  name: string;
  manifest: Manifest;
  /** Registry status; only 'ready' models are chosen. */
  status: string;
}

export interface ChoiceRequest {
  taskType: string;
  /** The sequence type of every sequence (detected or declared); duplicates are fine. */
  sequenceTypes: readonly SequenceType[];
  /** Residues of the longest and the shortest sequence (after normalisation). */
  longest: number;
  shortest: number;
}

export interface Choice {
  model: string;
  task: TaskSpec;
  reason: string;
  /** Other models that could have answered, best first. */
  alternatives: string[];
}

export interface Rejection {
  model: string;
  reason: string;
}

export type ChoiceResult = { ok: true; choice: Choice; rejected: Rejection[] } | { ok: false; rejected: Rejection[] };

function unsuitable(c: ChoiceCandidate, task: TaskSpec, req: ChoiceRequest, types: SequenceType[]): string | null {
  if (task.input_type !== 'sequence') return `task ${task.name} takes ${task.input_type} input, not sequences`;
  const missing = types.filter((t) => !task.sequence_types.includes(t));
  if (missing.length)
    return `task ${task.name} does not accept ${missing.join(', ')} (accepts ${task.sequence_types.join(', ')})`;
  if (req.longest > task.max_length) return `a sequence has ${req.longest} residues; the limit is ${task.max_length}`;
  if (req.shortest < task.min_length)
    return `a sequence has ${req.shortest} residues; the task needs at least ${task.min_length}`;
  if (c.status !== 'ready') return `model is ${c.status}`;
  return null;
}

/**
 * Picks the model for `taskType`. A model qualifies when it is ready, declares the task, the task
 * accepts every sequence type present and the lengths fit. Among those the most specific task
 * wins (fewest accepted sequence types: a DNA-only model beats a DNA/RNA/protein generalist for
 * DNA), then the larger max_length, then the model name (deterministic). Models without the task
 * are not listed in `rejected`.
 */
export function chooseModel(candidates: readonly ChoiceCandidate[], req: ChoiceRequest): ChoiceResult {
  const types = [...new Set(req.sequenceTypes)];
  const eligible: { c: ChoiceCandidate; task: TaskSpec }[] = [];
  const rejected: Rejection[] = [];
  for (const c of candidates) {
    const task = c.manifest.tasks.find((t) => t.name === req.taskType);
    if (!task) continue;
    const why = unsuitable(c, task, req, types);
    if (why) rejected.push({ model: c.name, reason: why });
    else eligible.push({ c, task });
  }
  if (eligible.length === 0) return { ok: false, rejected };
  eligible.sort(
    (a, b) =>
      a.task.sequence_types.length - b.task.sequence_types.length ||
      b.task.max_length - a.task.max_length ||
      (a.c.name < b.c.name ? -1 : a.c.name > b.c.name ? 1 : 0),
  );
  const best = eligible[0]!;
  const typeText = types.join(' and ');
  const reason =
    eligible.length === 1
      ? `${best.c.name} is the only ready model with task ${req.taskType} for ${typeText} sequences`
      : `${eligible.length} ready models serve ${req.taskType} for ${typeText}; ${best.c.name} is the most specific (accepts ${best.task.sequence_types.join(', ')})`;
  return {
    ok: true,
    choice: { model: best.c.name, task: best.task, reason, alternatives: eligible.slice(1).map((e) => e.c.name) },
    rejected,
  };
}
