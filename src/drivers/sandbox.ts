// Sandbox isolation (`isolation: sandbox`): the process driver's worker command, wrapped in
// bubblewrap. The worker gets its own user, PID, network, IPC, UTS and cgroup namespaces, a
// read-only view of only what its runtime needs (/usr, a few /etc files, the interpreter, the
// isomodel SDK, its package) and write access only to its scratch dir. Memory and CPU limits
// stay with the process driver's cgroup launcher, which runs outside bwrap and execs it, so
// bwrap and everything it starts are in the replica's cgroup. As root, bwrap is exec'd through
// setpriv as the worker user (drivers/privilege.ts). See docs/sandbox.md.
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, readlinkSync } from 'node:fs';
import { delimiter, dirname, isAbsolute, join } from 'node:path';
import type { ModelPackage } from '../manifest/load.js';
import { DIST_DIR, PACKAGE_ROOT, PYTHON_SDK } from '../paths.js';
import { ENV_SHIM, type WorkerCommand } from './command.js';
import { safeRealpath } from './privilege.js';
import { isExecutable } from '../util/executable.js';

export const BWRAP_MISSING =
  'sandbox isolation needs bubblewrap, and bwrap is not on PATH: install it (Debian/Ubuntu: apt-get install bubblewrap)';

/**
 * The uid/gid the model runs as inside its user namespace (nobody), mapped to the uid that ran
 * bwrap: the worker user when the gateway is root (bwrap then runs unprivileged, in a user
 * namespace), else the gateway's own.
 */
const SANDBOX_ID = '65534';

/** /etc files a runtime reads (dynamic linker, users, time zone); the rest of /etc stays hidden. */
const ETC_FILES = [
  '/etc/ld.so.cache',
  '/etc/ld.so.conf',
  '/etc/ld.so.conf.d',
  '/etc/passwd',
  '/etc/group',
  '/etc/nsswitch.conf',
  '/etc/localtime',
  '/etc/timezone',
  '/etc/alternatives',
  '/etc/mime.types',
  '/etc/ssl/certs',
  '/etc/ssl/openssl.cnf',
];

/** Top-level system dirs; on merged-/usr systems they are symlinks into /usr and are recreated as such. */
const SYSTEM_DIRS = ['/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32'];

/** Absolute path of bwrap on PATH (or the usual places), or null when it is not installed. */
export function findBwrap(path = process.env.PATH ?? ''): string | null {
  const dirs = [...path.split(delimiter).filter((d) => isAbsolute(d)), '/usr/bin', '/bin', '/usr/local/bin'];
  for (const d of dirs) {
    const f = join(d, 'bwrap');
    if (isExecutable(f)) return f;
  }
  return null;
}

interface PythonInfo {
  executable: string;
  prefixes: string[];
}
const pythonCache = new Map<string, PythonInfo | null>();

/**
 * Where an interpreter really lives. `python3` may be a pyenv shim (a shell script that needs
 * all of ~/.pyenv) or a venv: ask it once for sys.executable and its prefixes, then run that
 * executable directly and bind only its installation.
 */
export function probePython(python: string, runAs: string[] = []): PythonInfo | null {
  const key = `${runAs.join(' ')}\0${python}`;
  if (pythonCache.has(key)) return pythonCache.get(key)!;
  let info: PythonInfo | null = null;
  // The interpreter may be one the package names (model.yaml `python`): as root, it runs as the
  // worker user here too (runAs: setpriv …), never as the gateway.
  const [command, ...prefix] = [...runAs, python];
  try {
    const out = execFileSync(
      command!,
      [
        ...prefix,
        '-c',
        'import json, sys; print(json.dumps([sys.executable, sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]))',
      ],
      {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
        timeout: 15_000,
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, // not the gateway's secrets
      },
    );
    const [exe, ...prefixes] = JSON.parse(out.trim()) as string[];
    if (exe && isAbsolute(exe))
      info = { executable: exe, prefixes: [...new Set(prefixes.filter((p) => isAbsolute(p)))] };
  } catch {
    info = null; // bwrap will then report the interpreter as not found, in the worker's log
  }
  pythonCache.set(key, info);
  return info;
}

/** True when `path` is `dir` or lies under it. */
function within(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir.endsWith('/') ? dir : `${dir}/`);
}

/** Paths the sandbox already shows: /usr and the merged-/usr links. */
function systemPath(p: string): boolean {
  return within(p, '/usr') || SYSTEM_DIRS.some((d) => within(p, d));
}

/** Read-only binds that make an executable outside /usr runnable (its install prefix). */
function executableBinds(command: string): string[] {
  if (!isAbsolute(command)) return [];
  const out: string[] = [];
  for (const p of new Set([command, safeRealpath(command)])) {
    if (systemPath(p)) continue;
    // …/bin/node or …/bin/python3: the prefix holds the libraries next to it. Never a
    // top-level dir such as /root or /opt: then only the file itself.
    const bin = dirname(p);
    const prefix = bin.endsWith('/bin') ? dirname(bin) : bin;
    out.push(prefix.split('/').filter(Boolean).length >= 2 ? prefix : p);
  }
  return out;
}

export interface SandboxOptions {
  pkg: ModelPackage;
  /** The replica's scratch dir: the only writable path, also HOME, TMPDIR and cwd. */
  scratch: string;
  /** More paths to show read-only (the model's venv or node_modules from src/envs); unset entries are skipped. */
  readOnly?: (string | undefined)[];
  /** bwrap to use; found on PATH when left out. null: treat as missing. */
  bwrap?: string | null;
  /** Runs probes of the interpreter as the worker user (setpriv's arguments, drivers/privilege.ts). */
  runAs?: string[];
}

/** The bwrap arguments (without bwrap itself and the command) for one replica. */
export function sandboxArgs(cmd: WorkerCommand, opts: SandboxOptions): { command: string; args: string[] } {
  const { pkg, scratch } = opts;
  const m = pkg.manifest;
  let command = cmd.command;
  const readOnly: string[] = [];

  if (m.runtime === 'python') {
    const py = probePython(cmd.command, opts.runAs);
    if (py) {
      command = py.executable;
      readOnly.push(...py.prefixes);
    }
    readOnly.push(dirname(PYTHON_SDK));
  }
  if (m.runtime === 'node' || m.runtime === 'onnx' || m.runtime === 'http') {
    // The host (http: the adapter) and its SDK modules; package.json marks them as ES modules.
    readOnly.push(join(DIST_DIR, 'src'), join(PACKAGE_ROOT, 'package.json'));
    if (m.runtime === 'onnx') readOnly.push(join(PACKAGE_ROOT, 'node_modules'));
  }
  readOnly.push(...executableBinds(command));
  for (const p of opts.readOnly ?? []) if (p && isAbsolute(p)) readOnly.push(p);

  const args = [
    // Namespaces: user (run as nobody, no capabilities), pid, net (only a loopback of its own),
    // ipc, uts, cgroup. --unshare-all alone only *tries* the user namespace: ask for it.
    '--unshare-all',
    '--unshare-user',
    '--uid',
    SANDBOX_ID,
    '--gid',
    SANDBOX_ID,
    '--cap-drop',
    'ALL',
    '--hostname',
    'isomodel-sandbox',
    // The gateway dies or kills bwrap: the whole sandbox goes (its PID namespace ends with it).
    // No --new-session: the worker stays in the gateway's kill group (it has no terminal to
    // abuse; process.ts spawns it detached, in a session of its own).
    '--die-with-parent',
    // An empty root, then only what the runtime needs, read-only. /tmp first, so binds of
    // paths under /tmp (packages, scratch dirs) land on top of it.
    '--tmpfs',
    '/tmp',
    '--ro-bind',
    '/usr',
    '/usr',
  ];
  for (const dir of SYSTEM_DIRS) {
    let st;
    try {
      st = lstatSync(dir);
    } catch {
      continue;
    }
    if (st.isSymbolicLink()) args.push('--symlink', readlinkSync(dir), dir);
    else if (st.isDirectory()) args.push('--ro-bind', dir, dir);
  }
  for (const f of ETC_FILES) args.push('--ro-bind-try', f, f);
  // CPU topology, read by ONNX Runtime / OpenBLAS to size their thread pools.
  args.push('--ro-bind-try', '/sys/devices/system/cpu', '/sys/devices/system/cpu');
  args.push('--proc', '/proc', '--dev', '/dev', '--tmpfs', '/dev/shm');
  for (const p of new Set(readOnly)) if (!systemPath(p) && existsSync(p)) args.push('--ro-bind', p, p);
  args.push('--ro-bind', pkg.dir, pkg.dir);
  // Last, so it stays writable even if it lies under a read-only bind.
  args.push('--bind', scratch, scratch, '--chdir', scratch);
  // Nothing else is writable: not even the sandbox's own root tmpfs.
  args.push('--remount-ro', '/');
  // The environment is the process driver's scrubbed one, read from fd 3 by ENV_SHIM inside the
  // sandbox rather than passed as --setenv, so operator-set values never show in a command line,
  // and bwrap (outside the sandbox) never runs with a variable such as LD_PRELOAD from a manifest.
  return { command, args };
}

/** Wraps a worker command in bwrap; a missing bwrap becomes a worker that says how to install it. */
export function sandboxCommand(cmd: WorkerCommand, opts: SandboxOptions): WorkerCommand {
  const bwrap = opts.bwrap === undefined ? findBwrap() : opts.bwrap;
  if (!bwrap) {
    return {
      command: '/bin/sh',
      args: ['-c', 'echo "$1" >&2; exit 127', 'isomodel-sandbox', BWRAP_MISSING],
      selfLimited: cmd.selfLimited,
    };
  }
  const { command, args } = sandboxArgs(cmd, opts);
  // The worker's environment is set inside, by ENV_SHIM: bwrap itself never runs with it.
  return { command: bwrap, args: [...args, '--', ...ENV_SHIM, command, ...cmd.args], selfLimited: cmd.selfLimited };
}
