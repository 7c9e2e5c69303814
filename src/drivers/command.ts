// The command line that starts a worker for each runtime.
import { join } from 'node:path';
import type { ModelPackage } from '../manifest/load.js';
import { HTTP_ADAPTER, NODE_HOST, ONNX_HOST, PYTHON_SDK } from '../paths.js';

export interface WorkerCommand {
  command: string;
  args: string[];
  /** Memory limit the runtime enforces itself (V8 heap), where rlimits do not fit. */
  selfLimited: boolean;
}

/**
 * The worker's environment is not handed to the processes that start it (the launcher runs as
 * root; bwrap runs outside its sandbox): a variable such as LD_PRELOAD from a manifest would run
 * package code there. It arrives on fd 3 as `export NAME='value'` lines, read by this shell right
 * before it execs the worker command (inside bwrap for the sandbox), never on a command line.
 */
export const ENV_SHIM = ['/bin/sh', '-c', 'eval "$(cat <&3)" || exit 95; exec 3<&-; exec "$@"', 'isomodel-env'];
export const EXIT_NO_ENV = 95;

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The script ENV_SHIM evaluates; names that are not shell variable names are left out (returned). */
export function envScript(env: Record<string, string>): { script: string; skipped: string[] } {
  const lines: string[] = [];
  const skipped: string[] = [];
  for (const [k, v] of Object.entries(env)) {
    if (!ENV_NAME.test(k)) {
      skipped.push(k);
      continue;
    }
    lines.push(`export ${k}='${v.replaceAll("'", `'\\''`)}'`);
  }
  return { script: lines.join('\n') + '\n', skipped };
}

export function workerCommand(pkg: ModelPackage, python: string): WorkerCommand {
  const m = pkg.manifest;
  switch (m.runtime) {
    case 'node':
      // V8 reserves far more address space than it uses, so RLIMIT_AS cannot bound it;
      // the heap flag keeps a leaking model from growing past its share.
      return {
        command: process.execPath,
        args: [
          `--max-old-space-size=${Math.max(32, Math.floor(m.resources.memory_mb * 0.75))}`,
          NODE_HOST,
          join(pkg.dir, m.entry as string),
        ],
        selfLimited: true,
      };
    case 'onnx':
      return {
        command: process.execPath,
        args: [ONNX_HOST, join(pkg.dir, m.entry as string), join(pkg.dir, m.pipeline!)],
        selfLimited: true,
      };
    case 'python':
      return {
        command: m.python ?? python,
        args: ['-u', PYTHON_SDK, join(pkg.dir, m.entry as string)],
        selfLimited: false,
      };
    case 'command': {
      // The worker runs in its scratch dir, so a command names package files as {model_dir}/….
      const argv = (Array.isArray(m.entry) ? m.entry : ['/bin/sh', '-c', m.entry]).map((a) =>
        a.replaceAll('{model_dir}', pkg.dir),
      );
      return { command: argv[0]!, args: argv.slice(1), selfLimited: false };
    }
    case 'http':
      // The adapter, which starts the server itself (ISOMODEL_HTTP, drivers/http.ts): both share
      // the replica's user, cgroup and network namespace. Self-limited: without a cgroup the
      // adapter puts the memory rlimit on the server (an rlimit on node itself would break it).
      return { command: process.execPath, args: [HTTP_ADAPTER], selfLimited: true };
  }
}
