// How long `isomodel` takes to answer a command a person types: `--help`, and `ls` with no
// gateway running (it reads the models dir). The CLI loads each command's modules only when
// that command runs (src/cli/index.ts), so neither pays for the gateway, the Kubernetes client
// or the MCP SDK. Wall time of the whole process, node's own start included.
import { spawnSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { join } from 'node:path';
import { BUILTIN_MODELS_DIR, PACKAGE_ROOT } from '../src/paths.js';

const BIN = join(PACKAGE_ROOT, 'bin', 'isomodel.js');
const RUNS = Number(process.env.BENCH_CLI_RUNS ?? 7);

function wallMs(args: string[]): number {
  const t0 = performance.now();
  // Port 9 (discard) on loopback: nothing answers, so `ls` falls back to the models dir.
  // doctor exits 1 when a required check fails on this machine: its time counts all the same.
  const r = spawnSync(process.execPath, [BIN, ...args], { stdio: 'ignore', env: { ...process.env, ISOMODEL_URL: 'http://127.0.0.1:9' } });
  if (r.error || (r.status !== 0 && r.status !== 1)) throw new Error(`isomodel ${args.join(' ')} failed: ${r.error?.message ?? `exit ${r.status}`}`);
  return performance.now() - t0;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export interface CliStart {
  command: string;
  median_ms: number;
  max_ms: number;
}

/** Median and worst of RUNS starts per command (one unmeasured start first, for the disk cache). */
export function cliStart(): CliStart[] {
  const commands: [string, string[]][] = [
    ['isomodel --help', ['--help']],
    ['isomodel ls (no gateway: reads models/)', ['--models-dir', BUILTIN_MODELS_DIR, 'ls']],
    ['isomodel doctor --json', ['--models-dir', BUILTIN_MODELS_DIR, 'doctor', '--json']],
  ];
  return commands.map(([command, args]) => {
    wallMs(args);
    const times = Array.from({ length: RUNS }, () => wallMs(args));
    return { command, median_ms: median(times), max_ms: Math.max(...times) };
  });
}
