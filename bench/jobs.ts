// Batch throughput: a 10,000-sequence job through `isomodel batch --offline` on a CPU-bound model
// (bench/models/cpu-burn: fixed CPU work per sequence), with --workers 1 and --workers 2. On two
// cores the second worker process should nearly halve the wall time (target: ratio >= 1.7).
//
//   node dist/bench/jobs.js            prints the times and the ratio
//   jobsBench()                        the same, for bench/run.ts
// Env: BENCH_JOBS_SEQUENCES (10000), BENCH_JOBS_ROUNDS (cpu-burn rounds per sequence, 10000),
// BENCH_JOBS_REPEAT (runs per setting, best one kept; 1), BENCH_JOBS_CGROUPS=1 (keep cgroups).
//
// Replica cgroups are off by default here: with cgroup v1 every replica's cpu group sits under one
// `isomodel` parent whose cpu.shares (1024) weigh as much as a single process, so on a machine
// busy with other work all replicas together get one process's share of CPU and a second replica
// cannot show. On an idle machine both settings measure the same.
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { PACKAGE_ROOT } from '../src/paths.js';

const SEQUENCES = Number(process.env.BENCH_JOBS_SEQUENCES ?? 10_000);
const ROUNDS = Number(process.env.BENCH_JOBS_ROUNDS ?? 10_000);
const REPEAT = Math.max(1, Number(process.env.BENCH_JOBS_REPEAT ?? 1));
const MODELS_DIR = join(PACKAGE_ROOT, 'bench', 'models');
const CGROUPS = process.env.BENCH_JOBS_CGROUPS === '1';

/** Wall time of one `isomodel batch` run, in seconds, checking that it produced every record. */
function runBatch(input: string, workers: number, dir: string): Promise<number> {
  const out = join(dir, `out-${workers}.jsonl`);
  const config = join(dir, 'isomodel.config.yaml');
  writeFileSync(config, `cgroups: ${CGROUPS}\n`);
  const args = [
    join(PACKAGE_ROOT, 'bin', 'isomodel.js'),
    '--config',
    config,
    '--models-dir',
    MODELS_DIR,
    '--state-dir',
    join(dir, 'state'),
    'batch',
    input,
    '--model',
    'cpu-burn',
    '--offline',
    '--workers',
    String(workers),
    '--option',
    `rounds=${ROUNDS}`,
    '--output',
    out,
    '--quiet',
  ];
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(process.execPath, args, {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, ISOMODEL_LOG_LEVEL: 'warn' },
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => {
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      if (code !== 0) return reject(new Error(`isomodel batch --workers ${workers} exited ${code}: ${stderr}`));
      const lines = readFileSync(out, 'utf8').trim().split('\n');
      const ok = lines.filter((l) => (JSON.parse(l) as { status: string }).status === 'success').length;
      if (lines.length !== SEQUENCES || ok !== SEQUENCES)
        return reject(
          new Error(`--workers ${workers}: ${ok} of ${lines.length} records succeeded, expected ${SEQUENCES}`),
        );
      resolve(s);
    });
  });
}

export async function jobsBench(): Promise<{ workers1_s: number; workers2_s: number; ratio: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'isomodel-bench-jobs-'));
  chmodSync(dir, 0o755); // the work dir (<state>-work) is in here: workers (nobody, as root) pass through
  try {
    const input = join(dir, 'seqs.fasta');
    let x = 42;
    const rnd = (): number => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 8;
    writeFileSync(
      input,
      Array.from(
        { length: SEQUENCES },
        (_, i) => `>s${i}\n${Array.from({ length: 30 }, () => 'ACGT'[rnd() % 4]).join('')}\n`,
      ).join(''),
    );
    let w1 = Infinity;
    let w2 = Infinity;
    for (let i = 0; i < REPEAT; i++) {
      w1 = Math.min(w1, await runBatch(input, 1, dir));
      w2 = Math.min(w2, await runBatch(input, 2, dir));
    }
    return { workers1_s: round(w1), workers2_s: round(w2), ratio: round(w1 / w2) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const r = await jobsBench();
  process.stdout.write(
    `jobs: ${SEQUENCES} sequences on cpu-burn (rounds=${ROUNDS}), isomodel batch --offline, cgroups ${CGROUPS ? 'on' : 'off'}\n` +
      `  --workers 1: ${r.workers1_s.toFixed(2)} s\n  --workers 2: ${r.workers2_s.toFixed(2)} s\n  ratio:       ${r.ratio.toFixed(2)}x (target >= 1.7x)\n`,
  );
}
