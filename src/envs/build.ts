// Shared plumbing of per-model environments: settings, the marker that says an env is complete,
// running pip / npm with a build log, and a cross-process lock per env directory.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  appendFileSync,
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import type { ModelPackage } from '../manifest/load.js';
import { dropArgs, type Privileges } from '../drivers/privilege.js';

/** What an env build needs from the configuration (config `envs`, plus the base interpreter). */
export interface EnvSettings {
  /** Config work_dir: envs live under <workDir>/envs, where workers can read them (drivers/workspace.ts). */
  workDir: string;
  /** Base interpreter (config `python`); a manifest's `python` wins. */
  python: string;
  enabled?: boolean;
  index_url?: string;
  wheel_dir?: string;
  build_timeout_s?: number;
  /**
   * Build as this user (the worker user, when the gateway is root): pip's and npm's scripts, an
   * sdist's setup.py, an install script of a dependency the package names, run with its rights,
   * never root's. The env is then handed to the gateway (index.ts sealEnv).
   */
  runAs?: Privileges;
}

export type EnvKind = 'python' | 'node';

/** An environment a package needs: where it lives and how to build it. */
export interface EnvPlan {
  kind: EnvKind;
  model: string;
  pkg: ModelPackage;
  /** sha256(dependency file + interpreter / Node ABI …)[:16]. */
  hash: string;
  dir: string;
  /** Human-readable summary of what gets installed (for logs and errors). */
  summary: string;
  build: (plan: EnvPlan, settings: EnvSettings, log: BuildLog) => Promise<void>;
  /** What the worker uses once built. */
  result: EnvResult;
}

export interface EnvResult {
  /** Interpreter of the venv (runtime python). */
  python?: string;
  /** node_modules of the env (runtime node / onnx). */
  nodeModules?: string;
  /** The env directory, when the package has one. */
  dir?: string;
}

/** Written last, so its presence means the build completed. */
export const MARKER_FILE = '.isomodel-env.json';
export const LOG_FILE = 'build.log';

export interface EnvMarker {
  kind: EnvKind;
  model: string;
  hash: string;
  built_at: string;
  build_ms: number;
  summary: string;
  result: EnvResult;
}

export function envsRoot(workDir: string): string {
  return join(workDir, 'envs');
}

/** HOME of a build run as the worker user (tool caches): beside the env, removed after the build. */
/** An env's directory: `<work_dir>/envs/<kind>/<model>-<hash>`. */
export function envDir(settings: EnvSettings, kind: EnvKind, model: string, hash: string): string {
  return join(envsRoot(settings.workDir), kind, `${model}-${hash}`);
}

/** How long one env build may take (envs.build_timeout_s, default 30 minutes). */
export function buildTimeoutMs(settings: EnvSettings): number {
  return (settings.build_timeout_s ?? 1800) * 1000;
}

export function buildHome(envDir: string): string {
  return `${envDir}.home`;
}

export function shortHash(...parts: (string | Buffer)[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p).update('\0');
  return h.digest('hex').slice(0, 16);
}

export function readMarker(dir: string): EnvMarker | null {
  try {
    return JSON.parse(readFileSync(join(dir, MARKER_FILE), 'utf8')) as EnvMarker;
  } catch {
    return null;
  }
}

export function writeMarker(dir: string, marker: EnvMarker): void {
  const tmp = join(dir, `${MARKER_FILE}.tmp`);
  // Whatever a build left under that name (a symlink, say) is removed, not written through.
  rmSync(tmp, { force: true });
  writeFileSync(tmp, JSON.stringify(marker, null, 2) + '\n', { flag: 'wx' });
  renameSync(tmp, join(dir, MARKER_FILE));
}

/** A build failure, with the tail of the tool's output. */
export class EnvBuildError extends Error {
  constructor(
    message: string,
    readonly logTail: string,
  ) {
    super(logTail ? `${message}: ${logTail}` : message);
    this.name = 'EnvBuildError';
  }
}

export class BuildLog {
  constructor(readonly file: string) {}
  write(text: string | Buffer): void {
    try {
      // 0600: the log names the package index (maybe with its credentials); workers can read the env dir.
      appendFileSync(this.file, typeof text !== 'string' || text.endsWith('\n') ? text : text + '\n', { mode: 0o600 });
    } catch {
      // the env dir was removed under a build (prune, test cleanup): the build fails on its own
    }
  }
  /** Last lines of the log, for error messages. */
  tail(lines = 12, maxChars = 1500): string {
    let text = '';
    try {
      text = readFileSync(this.file, 'utf8');
    } catch {
      return '';
    }
    const kept = text
      .split('\n')
      .filter((l) => l.trim() !== '' && !l.startsWith('$ ') && !l.startsWith('# '))
      .slice(-lines)
      .join(' | ');
    return kept.length > maxChars ? `…${kept.slice(-maxChars)}` : kept;
  }
}

/**
 * Environment for pip / npm: not the gateway's (no keys or tokens), but what package tools need
 * to reach the operator's registries: PATH, HOME (tool caches, .npmrc, pip.conf), proxies,
 * certificates and the tools' own PIP_* / npm_config_* settings.
 */
export function toolEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  const keep =
    /^(PATH|HOME|LANG|LC_ALL|TZ|TMPDIR|SSL_CERT_FILE|SSL_CERT_DIR|REQUESTS_CA_BUNDLE|PIP_.+|npm_config_.+|NPM_CONFIG_.+|https?_proxy|HTTPS?_PROXY|no_proxy|NO_PROXY)$/;
  for (const [k, v] of Object.entries(process.env))
    if (v !== undefined && keep.test(k) && !NPM_RUN_INJECTED.test(k)) env[k] = v;
  return { ...env, ...extra };
}

/**
 * Settings `npm run` / `npm test` puts into its scripts' environment: the calling user's cache,
 * rc files and prefixes. A gateway started through npm would otherwise hand a build (run as
 * the worker user) root's cache dir, which it cannot write (EACCES on /root/.npm).
 */
const NPM_RUN_INJECTED =
  /^npm_config_(cache|userconfig|globalconfig|prefix|global_prefix|local_prefix|init_module|node_gyp|npm_version|user_agent)$/i;

/** Runs a build step, its output appended to the build log; rejects with the log tail. */
export function runStep(
  log: BuildLog,
  command: string,
  args: string[],
  opts: {
    cwd: string;
    env: Record<string, string>;
    timeoutMs: number;
    what: string;
    runAs?: Privileges;
    home?: string;
  },
): Promise<void> {
  log.write(`$ ${[command, ...args].map((a) => (/[\s'"]/.test(a) ? JSON.stringify(a) : a)).join(' ')}`);
  const argv = opts.runAs ? [...dropArgs(opts.runAs), command, ...args] : [command, ...args];
  // A build user gets its own HOME, and npm's and pip's caches in it: the caller's are not its own.
  const env =
    opts.runAs && opts.home
      ? {
          ...opts.env,
          HOME: opts.home,
          npm_config_cache: join(opts.home, '.npm'),
          PIP_CACHE_DIR: join(opts.home, '.cache', 'pip'),
        }
      : opts.env;
  return new Promise<void>((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd: opts.cwd,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    const onData = (d: Buffer): void => log.write(d);
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        child.kill('SIGKILL');
      }
    }, opts.timeoutMs);
    timer.unref();
    child.on('error', (e) => {
      clearTimeout(timer);
      log.write(`# ${opts.what}: ${e.message}`);
      reject(new EnvBuildError(`${opts.what} could not run (${command}: ${e.message})`, ''));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      log.write(`# exit ${code ?? signal}`);
      if (code === 0) return resolve();
      const why = timedOut
        ? `timed out after ${Math.round(opts.timeoutMs / 1000)} s`
        : `failed (exit ${code ?? signal})`;
      reject(new EnvBuildError(`${opts.what} ${why}`, log.tail()));
    });
  });
}

/**
 * Cross-process lock on an env directory (`<dir>.lock`, holding the owner's pid): a gateway and
 * an `isomodel env build` never build the same env at once. A lock whose owner died is taken over.
 */
export async function withDirLock<T>(dir: string, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  const lock = `${dir}.lock`;
  mkdirSync(dirname(dir), { recursive: true });
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      const fd = openSync(lock, 'wx');
      writeSync(fd, String(process.pid));
      closeSync(fd);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const owner = Number(readFileSafe(lock));
      if (!ownerAlive(owner)) {
        rmSync(lock, { force: true });
        continue;
      }
      if (Date.now() > end) throw new EnvBuildError(`environment ${dir} is locked by process ${owner}`, '');
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(lock, { force: true });
  }
}

function readFileSafe(p: string): string {
  try {
    return readFileSync(p, 'utf8').trim();
  } catch {
    return '';
  }
}

function ownerAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function isLocked(dir: string): boolean {
  const lock = `${dir}.lock`;
  return existsSync(lock) && ownerAlive(Number(readFileSafe(lock)));
}
