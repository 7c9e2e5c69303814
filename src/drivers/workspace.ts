// The gateway's files and the workers' files live apart (docs/security.md):
//   state dir (config state_dir, 0700, the gateway's only): SQLite db (0600), job files, docker
//     build contexts;
//   work dir (config work_dir, default `<state_dir>-work`): what workers must reach:
//     run/<gateway>/<model>/<replica>.<n>  a replica's scratch dir (HOME, TMPDIR, cwd): 0700, owned
//                                      by the worker user, removed when the worker exits;
//     envs/{python,node}/…             per-model venvs / node_modules (src/envs), built by the
//                                      gateway: readable, not writable, by workers.
// Beside the state dir by default: same file system and lifetime as the state it goes with, a
// path the operator already chose (nothing under /tmp that another user could pre-create), and
// two gateways with different state dirs never share one.
import {
  chmodSync,
  chownSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  rmSync,
  rmdirSync,
  statSync,
} from 'node:fs';
import { join, resolve } from 'node:path';
import { accessProblem, removeTree, type Privileges } from './privilege.js';
import { tagAlive } from './reap.js';

export function defaultWorkDir(stateDir: string): string {
  return `${resolve(stateDir)}-work`;
}

export function envsRoot(workDir: string): string {
  return join(workDir, 'envs');
}

function runRoot(workDir: string): string {
  return join(workDir, 'run');
}

const DB_FILE = /\.db(-wal|-shm|-journal)?$/;

/**
 * The state dir is the gateway's alone: 0700, its SQLite files 0600, applied at every start (also
 * to a dir made by an older version). Scratch dirs of older versions (`<state>/run`) are removed.
 * Returns notes worth a log line.
 */
export function secureStateDir(stateDir: string): string[] {
  const notes: string[] = [];
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const restrict = (path: string, mode: number): void => {
    try {
      chmodSync(path, mode);
    } catch (e) {
      notes.push(`could not make ${path} ${mode.toString(8).padStart(4, '0')}: ${(e as Error).message}`);
    }
  };
  restrict(stateDir, 0o700);
  const euid = process.geteuid?.();
  const st = statSync(stateDir);
  if (euid !== undefined && st.uid !== euid)
    notes.push(`state dir ${stateDir} is owned by uid ${st.uid}, not by the gateway's user (uid ${euid})`);
  for (const f of readdirSync(stateDir)) {
    if (DB_FILE.test(f) && lstatSync(join(stateDir, f)).isFile()) restrict(join(stateDir, f), 0o600);
  }
  const legacyRun = join(stateDir, 'run');
  if (existsSync(legacyRun)) rmSync(legacyRun, { recursive: true, force: true });
  if (existsSync(join(stateDir, 'envs')))
    notes.push(
      `model environments now live in the work dir; ${join(stateDir, 'envs')} is no longer used and can be removed`,
    );
  return notes;
}

function ensureDir(dir: string, mode: number): void {
  mkdirSync(dir, { recursive: true, mode });
  const st = lstatSync(dir);
  if (!st.isDirectory()) throw new Error(`${dir} is not a directory`);
  const euid = process.geteuid?.();
  // Someone else's dir here could swap envs or scratch dirs under us.
  if (euid !== undefined && st.uid !== euid)
    throw new Error(
      `${dir} is owned by uid ${st.uid}, not by the gateway's user (uid ${euid}): remove it or set work_dir elsewhere`,
    );
  if ((st.mode & 0o7777) !== mode) chmodSync(dir, mode);
}

/**
 * Creates the work dir's skeleton with its modes (0711: workers pass through, cannot list) and
 * checks the worker user can reach it. Throws with the path and the fix.
 */
export function prepareWorkDir(workDir: string, priv: Privileges | null): void {
  ensureDir(workDir, 0o711);
  ensureDir(runRoot(workDir), 0o711);
  ensureDir(envsRoot(workDir), 0o755);
  if (!priv) return;
  const problem = accessProblem(runRoot(workDir), priv.identity, 'x');
  if (problem) {
    throw new Error(
      `work_dir ${workDir} cannot be reached by worker user ${priv.identity.name} (uid ${priv.identity.uid}): ${problem}. Set work_dir in the config to a directory under one that others may enter (e.g. /var/lib/isomodel-work)`,
    );
  }
}

export function scratchDir(workDir: string, gateway: string, model: string, replica: string): string {
  return join(runRoot(workDir), gateway, model, replica);
}

/** A fresh scratch dir (and its tmp/), 0700, owned by the worker user when there is one. */
export async function makeScratch(dir: string, priv: Privileges | null): Promise<void> {
  // The per-gateway and per-model levels: traversable, not listable, not writable by workers.
  const model = resolve(dir, '..');
  ensureDir(resolve(model, '..'), 0o711);
  ensureDir(model, 0o711);
  await removeTree(dir, priv);
  mkdirSync(join(dir, 'tmp'), { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  if (priv) {
    chownSync(dir, priv.identity.uid, priv.identity.gid);
    chownSync(join(dir, 'tmp'), priv.identity.uid, priv.identity.gid);
  }
}

/** Removes scratch dirs of gateways that are no longer running (killed, crashed). */
export async function removeStaleScratch(workDir: string, priv: Privileges | null): Promise<string[]> {
  const removed: string[] = [];
  let tags: string[] = [];
  try {
    tags = readdirSync(runRoot(workDir));
  } catch {
    return removed;
  }
  for (const tag of tags) {
    if (tagAlive(tag)) continue;
    await removeTree(join(runRoot(workDir), tag), priv);
    removed.push(join(runRoot(workDir), tag));
  }
  return removed;
}

/** On close: drops this gateway's (now empty) scratch levels, and the work dir if nothing is left. */
export function tidyWorkDir(workDir: string, gateway: string): void {
  const mine = join(runRoot(workDir), gateway);
  try {
    for (const m of readdirSync(mine)) tryRmdir(join(mine, m));
  } catch {
    // never created
  }
  for (const d of [mine, runRoot(workDir), envsRoot(workDir), workDir]) tryRmdir(d);
}

function tryRmdir(dir: string): void {
  try {
    rmdirSync(dir);
  } catch {
    // not empty, or gone
  }
}
