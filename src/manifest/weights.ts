// Weights a package does not ship (manifest `weights`): where the model will look for them, and
// whether anything is there. A model whose load fails while its weights are absent is in state
// `needs_weights` (scheduler/registry.ts): a normal condition of a fresh install, not a failure.
import { existsSync, opendirSync, statSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import type { Manifest } from './schema.js';

export interface WeightsInfo {
  /** The variable that names the path (e.g. DNABERT2_MODEL_PATH). */
  env: string;
  /** Its value for this model: the operator's model_env over the manifest's env; null when unset. */
  path: string | null;
  /** Something is there: a file, or a folder that is not empty. */
  present: boolean;
  /** Where to get them (manifest weights.source, else its note). */
  source: string;
  /** What to do, in one sentence a person can follow. */
  hint: string;
}

/** The weights of `m` as `operatorEnv` (config model_env[name]) sets them; null for a model that declares none. */
export function weightsOf(m: Manifest, operatorEnv?: Record<string, string>): WeightsInfo | null {
  if (!m.weights) return null;
  const { env, source, note } = m.weights;
  const path = operatorEnv?.[env] ?? m.env[env] ?? null;
  const present = path !== null && pathHasContent(path);
  const hint =
    `set ${env} to the weights folder (model_env: {${m.name}: {${env}: /path/to/weights}} in isomodel.config.yaml)` +
    `${path ? ` or put them in ${path}` : ''}, then POST /v1/models/${m.name}/load` +
    (source ? `; or fetch them: isomodel pull --for ${m.name} (from ${source})` : '') +
    (note ? `; weights: ${note}` : '');
  return { env, path, present, source: source ?? note, hint };
}

/**
 * The weights path to make visible inside a sandbox or container: the folder the operator set
 * (model_env) or `isomodel pull --for` filled, never a path the manifest names by itself (a
 * package could otherwise have the host bind any file into its sandbox). Null when there is none.
 */
export function operatorWeightsPath(m: Manifest, operatorEnv: Record<string, string> | undefined): string | null {
  const path = m.weights ? operatorEnv?.[m.weights.env] : undefined;
  if (!path || !isAbsolute(path) || path.split('/').includes('..')) return null;
  return existsSync(path) ? path : null;
}

function pathHasContent(path: string): boolean {
  try {
    if (!existsSync(path)) return false;
    if (!statSync(path).isDirectory()) return true;
    // One entry is enough: a mounted weights folder may hold many files.
    const dir = opendirSync(path);
    try {
      return dir.readSync() !== null;
    } finally {
      dir.closeSync();
    }
  } catch {
    return false;
  }
}
