// Least-privilege workers (docs/security.md). When the gateway runs as root, every
// process and sandbox worker runs as an unprivileged user (config `worker_user`, default
// nobody), with no supplementary groups, no capabilities and no_new_privs, through util-linux's
// setpriv. Also: what that user can reach (packages, interpreters, the work dir), checked before
// a worker starts so a load fails with the path and the fix instead of a worker dying mid-start.
import { execFile } from 'node:child_process';
import { lstatSync, readFileSync, readdirSync, realpathSync, rmSync, rmdirSync, statSync, type Stats } from 'node:fs';
import { delimiter, dirname, isAbsolute, join, resolve, sep } from 'node:path';
import type { Logger } from 'pino';
import { IsoError } from '../errors.js';
import { isExecutable } from '../util/executable.js';

export interface WorkerIdentity {
  /** The name from /etc/passwd, or the number when it has none. */
  name: string;
  uid: number;
  gid: number;
}

/** How workers drop privileges; absent when the gateway is not root (nothing to drop). */
export interface Privileges {
  identity: WorkerIdentity;
  setpriv: string;
  /** util-linux unshare, for a network namespace of the worker's own; null: not installed. */
  unshare: string | null;
  /** iproute2's ip, to bring that namespace's loopback up; null: the loopback stays down. */
  ip: string | null;
  /** The gateway holds CAP_SYS_ADMIN (and CAP_NET_ADMIN): it can give a worker a network namespace. */
  netns: boolean;
}

/** The user workers run as when config `worker_user` is not set. */
export const DEFAULT_WORKER_USER = 'nobody';
const NOBODY_ID = 65534;

const TOOL_DIRS = ['/usr/bin', '/bin', '/usr/sbin', '/sbin', '/usr/local/bin', '/usr/local/sbin'];

/** A system tool by absolute path (never from a directory a model could write to). */
export function findTool(name: string, dirs = TOOL_DIRS): string | null {
  for (const d of dirs) if (isExecutable(join(d, name))) return join(d, name);
  return null;
}

/** The command a worker's PATH resolves `cmd` to, as the gateway sees it; null when not found. */
export function whichCommand(cmd: string, path = process.env.PATH ?? ''): string | null {
  if (cmd.includes('/')) return resolve(cmd);
  for (const d of path.split(delimiter)) {
    if (!isAbsolute(d)) continue;
    if (isExecutable(join(d, cmd))) return join(d, cmd);
  }
  return null;
}

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
}

function readPasswd(file: string): PasswdEntry[] {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const out: PasswdEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length < 4 || !/^\d+$/.test(f[2]!) || !/^\d+$/.test(f[3]!)) continue;
    out.push({ name: f[0]!, uid: Number(f[2]), gid: Number(f[3]) });
  }
  return out;
}

/**
 * `worker_user` → uid and gid: a name from /etc/passwd, or `uid[:gid]` (a uid without a gid takes
 * its passwd group, else the same number). `nobody` missing from passwd is 65534:65534.
 */
export function resolveWorkerUser(spec: string, passwdFile = '/etc/passwd'): WorkerIdentity {
  const passwd = readPasswd(passwdFile);
  const numeric = /^(\d+)(?::(\d+))?$/.exec(spec.trim());
  let id: WorkerIdentity;
  if (numeric) {
    const uid = Number(numeric[1]);
    const entry = passwd.find((e) => e.uid === uid);
    id = {
      name: entry?.name ?? String(uid),
      uid,
      gid: numeric[2] !== undefined ? Number(numeric[2]) : (entry?.gid ?? uid),
    };
  } else {
    const entry = passwd.find((e) => e.name === spec.trim());
    if (entry) id = { ...entry };
    else if (spec.trim() === DEFAULT_WORKER_USER) id = { name: DEFAULT_WORKER_USER, uid: NOBODY_ID, gid: NOBODY_ID };
    else
      throw new Error(`worker_user "${spec}" is not a user in ${passwdFile}: name an existing user or give uid[:gid]`);
  }
  if (id.uid === 0 || id.gid === 0)
    throw new Error(
      `worker_user "${spec}" is root (uid ${id.uid}, gid ${id.gid}): workers must run as an unprivileged user`,
    );
  if (id.uid > 0xfffffffe || id.gid > 0xfffffffe) throw new Error(`worker_user "${spec}": uid/gid out of range`);
  return id;
}

/**
 * What the gateway's user means for workers: a plan to drop to the worker user; none (the gateway
 * is not root, or is a root without the capabilities to switch users: `why` says which); or an
 * error that keeps workers from starting.
 */
export type PrivilegePlan = { drop: Privileges } | { drop: null; why?: string } | { error: string };

const CAP_CHOWN = 0;
const CAP_SETGID = 6;
const CAP_SETUID = 7;
const CAP_NET_ADMIN = 12;
const CAP_SYS_ADMIN = 21;

/** The gateway's effective capabilities (CapEff of /proc/self/status); all of them when unreadable. */
export function effectiveCapabilities(): bigint {
  try {
    const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return BigInt(`0x${m[1]}`);
  } catch {
    // not Linux procfs: assume a plain root
  }
  return (1n << 41n) - 1n;
}

const has = (caps: bigint, cap: number): boolean => (caps & (1n << BigInt(cap))) !== 0n;

/**
 * Resolves config `worker_user` once per gateway. Not root: workers run as the gateway's user
 * (nothing to drop). Root without CAP_SETUID/CAP_SETGID/CAP_CHOWN (a container with cap_drop ALL)
 * cannot switch users either: the same, with the reason.
 */
export function planPrivileges(
  spec: string | undefined,
  euid = process.geteuid?.() ?? -1,
  caps = effectiveCapabilities(),
): PrivilegePlan {
  if (euid !== 0) return { drop: null };
  if (![CAP_SETUID, CAP_SETGID, CAP_CHOWN].every((c) => has(caps, c))) {
    return {
      drop: null,
      why: "the gateway runs as root without CAP_SETUID, CAP_SETGID and CAP_CHOWN (a container with its capabilities dropped?), so workers cannot switch to an unprivileged user: they run as root without capabilities, with no protection of the gateway's own files. Give the gateway those capabilities, or run it as an unprivileged user",
    };
  }
  let identity: WorkerIdentity;
  try {
    identity = resolveWorkerUser(spec ?? DEFAULT_WORKER_USER);
  } catch (e) {
    return { error: (e as Error).message };
  }
  const setpriv = findTool('setpriv');
  if (!setpriv) {
    return {
      error:
        'the gateway runs as root, so workers must drop to an unprivileged user, and setpriv is not installed: install util-linux (Debian/Ubuntu: apt-get install util-linux), or run the gateway as an unprivileged user',
    };
  }
  return {
    drop: {
      identity,
      setpriv,
      unshare: findTool('unshare'),
      ip: findTool('ip'),
      netns: has(caps, CAP_SYS_ADMIN) && has(caps, CAP_NET_ADMIN),
    },
  };
}

/** setpriv's arguments, up to and including `--`: the command to run follows. */
export function dropArgs(p: Privileges): string[] {
  const { uid, gid } = p.identity;
  // Real, effective and saved ids all change; with no_new_privs no setuid binary gives them back.
  return [
    p.setpriv,
    '--reuid',
    String(uid),
    '--regid',
    String(gid),
    '--clear-groups',
    '--no-new-privs',
    '--inh-caps=-all',
    '--bounding-set=-all',
    '--',
  ];
}

const R = 4;
const W = 2;
const X = 1;

function allows(st: Stats, id: WorkerIdentity, bits: number): boolean {
  const shift = st.uid === id.uid ? 6 : st.gid === id.gid ? 3 : 0;
  return ((st.mode >> shift) & bits) === bits;
}

function describe(path: string, st: Stats): string {
  return `${path} is mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')}, owner ${st.uid}:${st.gid}`;
}

function ancestors(path: string): string[] {
  const out: string[] = [];
  let d = dirname(path);
  for (;;) {
    out.unshift(d);
    const up = dirname(d);
    if (up === d) break;
    d = up;
  }
  return out;
}

/** realpath, or the path itself when it cannot be resolved (missing, unreadable). */
export function safeRealpath(p: string): string {
  try {
    return realpathSync(p);
  } catch {
    return p;
  }
}

/**
 * Why the worker user cannot reach `path` with the wanted access ('r', 'w', 'x', combined), or
 * null when it can: every directory on the way (as written and after symlinks) must be
 * searchable. Mode bits only (no ACLs); supplementary groups do not count (setpriv clears them).
 */
export function accessProblem(path: string, id: WorkerIdentity, want: string): string | null {
  const abs = resolve(path);
  const real = safeRealpath(abs);
  for (const dir of new Set([...ancestors(abs), ...ancestors(real)])) {
    let st: Stats;
    try {
      st = statSync(dir);
    } catch (e) {
      return `${dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`;
    }
    if (!allows(st, id, X)) return `${describe(dir, st)}, so it cannot be entered`;
  }
  let st: Stats;
  try {
    st = statSync(abs);
  } catch (e) {
    return `${abs}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`;
  }
  const bits = (want.includes('r') ? R : 0) | (want.includes('w') ? W : 0) | (want.includes('x') ? X : 0);
  if (!allows(st, id, bits)) return describe(abs, st);
  return null;
}

/** Whether the worker user may replace or change what `st` is: write to it (a dir: not if sticky and not its owner). */
function writableBy(st: Stats, id: WorkerIdentity, asParent: boolean): boolean {
  if (!allows(st, id, W)) return false;
  if (asParent && st.mode & 0o1000 && st.uid !== id.uid) return false; // sticky: only owners rename
  return true;
}

/** Entries checked per package at most: a package is code and weights, not a file system. */
const MAX_PACKAGE_ENTRIES = 200_000;

/**
 * The first file or directory of a package the worker user could write to (or one on the way to
 * it it could rename): a worker could then change this model's code or another's (and a watching
 * gateway would load it). null when there is none.
 */
export function writablePackagePath(dir: string, id: WorkerIdentity): string | null {
  const root = resolve(dir);
  for (const a of ancestors(safeRealpath(root))) {
    try {
      const st = statSync(a);
      if (writableBy(st, id, true)) return describe(a, st);
    } catch {
      // a missing ancestor fails the package load anyway
    }
  }
  let seen = 0;
  const stack = [root];
  while (stack.length > 0) {
    const p = stack.pop()!;
    if (++seen > MAX_PACKAGE_ENTRIES) return `${root} has more than ${MAX_PACKAGE_ENTRIES} files: too many to check`;
    let st: Stats;
    try {
      st = lstatSync(p);
    } catch {
      continue;
    }
    if (st.isSymbolicLink()) {
      // A link's own mode means nothing; what it points to is what the worker would change.
      try {
        const target = statSync(p);
        if (writableBy(target, id, false)) return `${describe(p, target)} (through a symlink to ${safeRealpath(p)})`;
      } catch {
        // dangling: nothing to write through
      }
      continue;
    }
    if (writableBy(st, id, p !== root)) return describe(p, st);
    if (st.isDirectory()) {
      try {
        for (const e of readdirSync(p)) stack.push(p + sep + e);
      } catch {
        // unreadable by the gateway: not writable through us either
      }
    }
  }
  return null;
}

const interpreterCache = new Map<string, Promise<string>>();

/** Runs `python -c` as the worker user; resolves with sys.executable. */
function probeAsWorker(python: string, p: Privileges): Promise<string> {
  const [setpriv, ...args] = dropArgs(p);
  return new Promise((res, rej) => {
    execFile(
      setpriv!,
      [...args, python, '-c', 'import sys; print(sys.executable)'],
      { timeout: 20_000, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/', LANG: 'C.UTF-8' }, cwd: '/' },
      (err, stdout, stderr) => {
        if (err) return rej(new Error((stderr || err.message).trim().split('\n').slice(-2).join(' | ').slice(0, 400)));
        res(stdout.trim());
      },
    );
  });
}

async function usableBy(python: string, p: Privileges): Promise<string | null> {
  const abs = whichCommand(python);
  if (!abs) return `${python} is not on PATH`;
  const problem = accessProblem(abs, p.identity, 'x') ?? accessProblem(safeRealpath(abs), p.identity, 'rx');
  if (problem) return problem;
  try {
    await probeAsWorker(abs, p);
    return null;
  } catch (e) {
    return `it fails as that user: ${(e as Error).message}`;
  }
}

/** The interpreter config `python` falls back to when the worker user cannot run it. */
export const SYSTEM_PYTHON = '/usr/bin/python3';

/**
 * The Python interpreter workers run as the worker user. `python` itself when that user can run
 * it; for the config's interpreter (fallback true), /usr/bin/python3 otherwise, with one log
 * line (`python3` here is often a pyenv shim under /root, which is 0700); else MODEL_NOT_LOADED
 * saying why and what to do. Cached per interpreter.
 */
export function workerPython(
  python: string,
  p: Privileges,
  opts: { fallback: boolean; logger?: Logger },
): Promise<string> {
  const key = `${python}\0${p.identity.uid}:${p.identity.gid}\0${opts.fallback}`;
  let pending = interpreterCache.get(key);
  if (!pending) {
    pending = (async () => {
      const who = `worker user ${p.identity.name} (uid ${p.identity.uid})`;
      const why = await usableBy(python, p);
      if (why === null) return whichCommand(python)!;
      if (opts.fallback && python !== SYSTEM_PYTHON && (await usableBy(SYSTEM_PYTHON, p)) === null) {
        opts.logger?.warn(
          { python, fallback: SYSTEM_PYTHON, reason: why },
          `python interpreter ${python} cannot be run by ${who}; workers use ${SYSTEM_PYTHON}`,
        );
        return SYSTEM_PYTHON;
      }
      throw new IsoError(
        'MODEL_NOT_LOADED',
        `python interpreter ${python} cannot be run by ${who}: ${why}. Install an interpreter that user can run (e.g. ${SYSTEM_PYTHON}) and name it in \`python:\` (config or model.yaml), or change worker_user`,
      );
    })();
    pending.catch(() => interpreterCache.delete(key));
    interpreterCache.set(key, pending);
  }
  return pending;
}

function runAsWorker(p: Privileges, argv: string[]): Promise<void> {
  const [setpriv, ...args] = dropArgs(p);
  return new Promise((res) => {
    execFile(setpriv!, [...args, ...argv], { timeout: 600_000, env: { PATH: '/usr/bin:/bin' }, cwd: '/' }, () => res());
  });
}

/**
 * Removes a tree that may hold directories the worker user owns (scratch dirs, an env being
 * built). rm -rf as root over a dir another process of that user can still change could be sent
 * through a symlink swapped in mid-walk; so what that user owns is emptied as that user (it can
 * then only remove what it could anyway) and only the empty dir is removed by the gateway, and
 * directories the gateway owns (which that user cannot change) are walked by the gateway.
 */
export async function removeTree(path: string, p: Privileges | null): Promise<void> {
  let st: Stats;
  try {
    st = lstatSync(path);
  } catch {
    return;
  }
  if (!p) {
    rmSync(path, { recursive: true, force: true });
    return;
  }
  if (!st.isDirectory()) {
    rmSync(path, { force: true }); // unlink: never follows a symlink
    return;
  }
  if (st.uid === p.identity.uid) {
    await runAsWorker(p, ['/bin/rm', '-rf', '--one-file-system', '--', path]);
    try {
      rmdirSync(path);
    } catch {
      // its parent was the worker's too (then rm removed it) or something is left: leave it
    }
    return;
  }
  for (const e of readdirSync(path)) await removeTree(join(path, e), p);
  try {
    rmdirSync(path);
  } catch {
    // not empty: a part the worker could not remove
  }
}
