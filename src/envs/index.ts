// Per-model environments (docs/environments.md): a Python package with a requirements.txt gets
// its own venv, a Node package with dependencies its own node_modules. Built once, cached by the
// hash of the dependency file, rebuilt when it changes; a marker written last means "complete",
// so a half-built env is never used. One build per env at a time (in this process and across
// processes); the build log stays in the env dir.
import {
  chmodSync,
  chownSync,
  existsSync,
  lchownSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import { removeTree } from '../drivers/privilege.js';
import { basename, join } from 'node:path';
import type { Logger } from 'pino';
import { IsoError } from '../errors.js';
import type { ModelPackage } from '../manifest/load.js';
import {
  BuildLog,
  buildHome,
  buildTimeoutMs,
  EnvBuildError,
  envsRoot,
  isLocked,
  LOG_FILE,
  readMarker,
  withDirLock,
  writeMarker,
  type EnvKind,
  type EnvPlan,
  type EnvResult,
  type EnvSettings,
} from './build.js';
import { planNode } from './node.js';
import { planPython } from './python.js';

export type { EnvResult, EnvSettings } from './build.js';

/** Builds done by this process (tests check that a second start reuses the env). */
export const envStats = { builds: 0 };

const building = new Map<string, Promise<EnvResult>>();

/** The env a package needs (null: none, it runs on the base interpreter / its own resolution). */
export async function planEnv(pkg: ModelPackage, settings: EnvSettings): Promise<EnvPlan | null> {
  if (settings.enabled === false || pkg.manifest.isolation === 'inline') return null;
  return pkg.manifest.runtime === 'python' ? planPython(pkg, settings) : planNode(pkg, settings);
}

/**
 * Builds (or reuses) the package's environment and says what the worker should use. Failures
 * are MODEL_NOT_LOADED with the tail of pip's / npm's output; the full log is in the env dir.
 */
export async function ensureEnv(
  pkg: ModelPackage,
  settings: EnvSettings,
  opts: { logger?: Logger; force?: boolean } = {},
): Promise<EnvResult & { built?: boolean }> {
  const name = pkg.manifest.name;
  let plan: EnvPlan | null;
  try {
    plan = await planEnv(pkg, settings);
  } catch (e) {
    throw toIsoError(name, e, undefined);
  }
  if (!plan) return {};
  const p = plan;
  if (!opts.force && readMarker(p.dir)?.hash === p.hash) return { ...p.result, built: false };
  const pending = building.get(p.dir);
  if (pending) return pending;
  const run = withDirLock(p.dir, buildTimeoutMs(settings), async () => {
    // Another process may have finished it while we waited for the lock.
    if (!opts.force && readMarker(p.dir)?.hash === p.hash) return { ...p.result, built: false };
    return { ...(await build(p, settings, opts.logger)), built: true };
  });
  building.set(p.dir, run);
  try {
    return await run;
  } catch (e) {
    throw toIsoError(name, e, p);
  } finally {
    building.delete(p.dir);
  }
}

async function build(plan: EnvPlan, settings: EnvSettings, logger?: Logger): Promise<EnvResult> {
  const t0 = Date.now();
  const runAs = settings.runAs;
  const home = buildHome(plan.dir);
  // A previous attempt that did not finish (no marker) is started over.
  await removeTree(plan.dir, runAs ?? null);
  await removeTree(home, runAs ?? null);
  mkdirSync(plan.dir, { recursive: true });
  // The log stays beside the env while the build (maybe another user) owns the env dir.
  const logFile = `${plan.dir}.${LOG_FILE}`;
  rmSync(logFile, { force: true });
  const log = new BuildLog(logFile);
  if (runAs) {
    chownSync(plan.dir, runAs.identity.uid, runAs.identity.gid);
    mkdirSync(home, { mode: 0o700 });
    chownSync(home, runAs.identity.uid, runAs.identity.gid);
  }
  log.write(
    `# ${new Date().toISOString()} building ${plan.kind} env ${plan.hash} for ${plan.model} (${plan.pkg.dir})${runAs ? ` as ${runAs.identity.name}` : ''}`,
  );
  logger?.info({ model: plan.model, env: plan.dir, packages: plan.summary }, 'building model environment');
  envStats.builds++;
  try {
    await plan.build(plan, settings, log);
  } finally {
    // Workers (another user when the gateway is root) read the env and must never write it.
    sealEnv(plan.dir, runAs ? runAs.identity.uid : null);
    await removeTree(home, runAs ?? null);
    try {
      renameSync(logFile, join(plan.dir, LOG_FILE));
    } catch {
      // the env dir was removed under the build (prune, test cleanup)
    }
  }
  const buildMs = Date.now() - t0;
  writeMarker(plan.dir, {
    kind: plan.kind,
    model: plan.model,
    hash: plan.hash,
    built_at: new Date().toISOString(),
    build_ms: buildMs,
    summary: plan.summary,
    result: plan.result,
  });
  logger?.info({ model: plan.model, env: plan.dir, ms: buildMs }, 'model environment ready');
  return plan.result;
}

/** Files of an env that workers never need and that can hold credentials (npm tokens). */
const PRIVATE_FILES = new Set([LOG_FILE, '.npmrc']);

/**
 * Hands a built env to the gateway: readable (and, where executable, runnable) by every user,
 * writable only by the gateway, whatever umask pip / npm ran under; a copied .npmrc and the
 * build log stay the gateway's (0600). After a build as another user (`buildUid`), what it made becomes the
 * gateway's, top-down: a directory is taken before its entries are read, so nothing in it can
 * be swapped (for a symlink, say) meanwhile; an entry neither made (a hard link to a foreign
 * file) is left alone.
 */
export function sealEnv(dir: string, buildUid: number | null): void {
  const me = process.geteuid?.() ?? -1;
  const myGid = process.getegid?.() ?? -1;
  const stack = [dir];
  while (stack.length > 0) {
    const p = stack.pop()!;
    let st;
    try {
      st = lstatSync(p);
    } catch {
      continue;
    }
    const built = buildUid !== null && st.uid === buildUid && buildUid !== me;
    if (buildUid !== null && !built && st.uid !== me) continue;
    if (built) lchownSync(p, me, myGid);
    if (st.isSymbolicLink()) continue;
    const mode = st.mode & 0o7777;
    const exec = st.isDirectory() || mode & 0o100 ? 0o111 : 0;
    const want =
      p !== dir && PRIVATE_FILES.has(basename(p)) && st.isFile() ? 0o600 : (mode | 0o444 | exec) & ~0o022 & ~0o6000;
    if (want !== mode || built) chmodSync(p, want);
    if (st.isDirectory()) for (const e of readdirSync(p)) stack.push(join(p, e));
  }
}

function toIsoError(model: string, e: unknown, plan: EnvPlan | undefined): IsoError {
  if (e instanceof IsoError) return e;
  const msg = (e as Error).message;
  const where = plan && existsSync(join(plan.dir, LOG_FILE)) ? ` (log: ${join(plan.dir, LOG_FILE)})` : '';
  return new IsoError('MODEL_NOT_LOADED', `environment for model ${model} could not be built: ${msg}${where}`, {
    env_dir: plan?.dir,
    log_tail: e instanceof EnvBuildError ? e.logTail : undefined,
  });
}

export interface EnvInfo {
  kind: EnvKind;
  model: string;
  hash: string;
  dir: string;
  /** ready: complete (marker); building: locked by a live process; incomplete: an interrupted or failed build. */
  state: 'ready' | 'building' | 'incomplete';
  /** A current package resolves to this env. */
  in_use: boolean;
  built_at?: string;
  build_ms?: number;
  summary?: string;
}

/** Every env under the work dir, marked with whether a current package uses it. */
export async function listEnvs(settings: EnvSettings, packages: ModelPackage[]): Promise<EnvInfo[]> {
  const used = new Set<string>();
  for (const pkg of packages) {
    const plan = await planEnv({ ...pkg }, { ...settings, enabled: true }).catch(() => null);
    if (plan) used.add(plan.dir);
  }
  const out: EnvInfo[] = [];
  for (const kind of ['python', 'node'] as const) {
    const root = join(envsRoot(settings.workDir), kind);
    if (!existsSync(root)) continue;
    for (const entry of readdirSync(root, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      const dir = join(root, entry.name);
      const m = /^(.*)-([0-9a-f]{16})$/.exec(entry.name);
      const marker = readMarker(dir);
      out.push({
        kind,
        model: marker?.model ?? m?.[1] ?? entry.name,
        hash: marker?.hash ?? m?.[2] ?? '',
        dir,
        state: isLocked(dir) ? 'building' : marker ? 'ready' : 'incomplete',
        in_use: used.has(dir),
        built_at: marker?.built_at ?? statSync(dir).mtime.toISOString(),
        build_ms: marker?.build_ms,
        summary: marker?.summary,
      });
    }
  }
  return out.sort(
    (a, b) =>
      a.kind.localeCompare(b.kind) ||
      a.model.localeCompare(b.model) ||
      (a.built_at ?? '').localeCompare(b.built_at ?? ''),
  );
}

/**
 * Removes envs no current package uses (and failed or interrupted builds); never one being
 * built. A gateway still serving an older version of a package keeps that version's env in use:
 * prune after it reloaded.
 */
export async function pruneEnvs(
  settings: EnvSettings,
  packages: ModelPackage[],
  opts: { dryRun?: boolean } = {},
): Promise<EnvInfo[]> {
  const removed: EnvInfo[] = [];
  for (const env of await listEnvs(settings, packages)) {
    if (env.in_use && env.state === 'ready') continue;
    if (env.state === 'building') continue;
    if (!opts.dryRun) await removeTree(env.dir, settings.runAs ?? null);
    removed.push(env);
  }
  return removed;
}
