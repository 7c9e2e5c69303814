// How long `isomodel` takes to answer a command a person types: `--help`, and `ls` with no
// gateway running (it reads the models dir). The CLI loads each command's modules only when
// that command runs (src/cli/index.ts), so neither pays for the gateway, the Kubernetes client
// or the MCP SDK. Wall time of the whole process, node's own start included, and its CPU time.
import { spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { join } from 'node:path';
import { BUILTIN_MODELS_DIR, PACKAGE_ROOT } from '../src/paths.js';

const BIN = join(PACKAGE_ROOT, 'bin', 'isomodel.js');
const RUNS = Number(process.env.BENCH_CLI_RUNS ?? 7);

/**
 * One run: wall time, and the child's CPU time (user + system, from bash's `time`): on a busy
 * machine the first includes waiting for a core, the second does not.
 */
function measure(args: string[]): { wall: number; cpu: number } {
  const t0 = performance.now();
  // Port 9 (discard) on loopback: nothing answers, so `ls` falls back to the models dir.
  // doctor exits 1 when a required check fails on this machine: its time counts all the same.
  const script = 'TIMEFORMAT="%U %S"; { time "$@" >/dev/null 2>&1; } 2>&1; true';
  const r = spawnSync('bash', ['-c', script, 'bash', process.execPath, BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ISOMODEL_URL: 'http://127.0.0.1:9' },
  });
  const wall = performance.now() - t0;
  const m = /^(\d+\.\d+) (\d+\.\d+)\s*$/m.exec(r.stdout ?? '');
  if (r.error || !m)
    throw new Error(`isomodel ${args.join(' ')}: ${r.error?.message ?? `no timing in ${JSON.stringify(r.stdout)}`}`);
  return { wall, cpu: (Number(m[1]) + Number(m[2])) * 1000 };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export interface CliStart {
  command: string;
  median_ms: number;
  max_ms: number;
  median_cpu_ms: number;
}

/** Median and worst of RUNS starts per command (one unmeasured start first, for the disk cache). */
export function cliStart(): CliStart[] {
  const commands: [string, string[]][] = [
    ['isomodel --help', ['--help']],
    ['isomodel ls (no gateway: reads models/)', ['--models-dir', BUILTIN_MODELS_DIR, 'ls']],
    ['isomodel doctor --json', ['--models-dir', BUILTIN_MODELS_DIR, 'doctor', '--json']],
  ];
  return commands.map(([command, args]) => {
    // The unmeasured start: also checks that the command works (doctor: 1 when a required check fails here).
    const first = spawnSync(process.execPath, [BIN, ...args], {
      stdio: 'ignore',
      env: { ...process.env, ISOMODEL_URL: 'http://127.0.0.1:9' },
    });
    if (first.error || (first.status !== 0 && first.status !== 1))
      throw new Error(`isomodel ${args.join(' ')} failed: ${first.error?.message ?? `exit ${first.status}`}`);
    const runs = Array.from({ length: RUNS }, () => measure(args));
    const times = runs.map((r) => r.wall);
    return {
      command,
      median_ms: median(times),
      max_ms: Math.max(...times),
      median_cpu_ms: median(runs.map((r) => r.cpu)),
    };
  });
}
