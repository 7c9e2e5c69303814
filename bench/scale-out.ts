// Scale-out: one 2,000-sequence job on a CPU-bound model (bench/models/cpu-burn, one replica per
// gateway), run by one gateway and then by two gateways sharing a PostgreSQL database
// (database_url, docs/scale-out.md). The job is queued in the shared job store, as a gateway
// queues it, and timed from queued to succeeded. Every gateway is its own `isomodel serve`
// process; PostgreSQL is a throwaway cluster in a temp dir (test/postgres.ts). Target: two
// gateways at least 1.6x as fast as one.
//
//   node dist/bench/scale-out.js       prints the times and the ratio
// Env: BENCH_SCALEOUT_SEQUENCES (2000), BENCH_SCALEOUT_ROUNDS (cpu-burn rounds, 200000). The
// model's compute must dominate, as it does when scale-out is worth it: at 10,000 rounds (about
// 1 ms a record) the gateway's own per-record work fills a 2-core machine on its own.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { JobStore } from '../src/jobs/store.js';
import { PostgresClient } from '../src/store/sql.js';
import { pgUnavailable, startPgCluster, type PgCluster } from '../test/postgres.js';
import { BENCH_MODELS, copyModels, sleep, startGateway, type Server } from './lib.js';

export const SEQUENCES = Number(process.env.BENCH_SCALEOUT_SEQUENCES ?? 2_000);
const ROUNDS = Number(process.env.BENCH_SCALEOUT_ROUNDS ?? 200_000);

/** Seconds from queued to succeeded for one job run by `gateways` gateways over a fresh database. */
async function timeJob(cluster: PgCluster, gateways: number, config: string, models: string): Promise<number> {
  const url = await cluster.createDatabase(`scaleout${gateways}_${Date.now()}`);
  const sql = new PostgresClient(url);
  const servers: Server[] = [];
  try {
    // The first creates the tables; the others find them.
    for (let i = 0; i < gateways; i++)
      servers.push(await startGateway(models, { ISOMODEL_DATABASE_URL: url, ISOMODEL_CONFIG: config }));
    const store = await JobStore.open(sql);
    const spec = { kind: 'predict', model: 'cpu-burn', task: 'burn', options: { rounds: ROUNDS } };
    const { job } = await store.begin({
      id: `bench-${gateways}`,
      name: null,
      kind: 'predict',
      model: 'cpu-burn',
      task: 'burn',
      spec: JSON.stringify(spec),
      chunk_size: 32,
      workers: 1,
      priority: 0,
      idempotency_key: null,
      request_hash: null,
      created_at: new Date().toISOString(),
      owner: 'bench',
      owner_name: 'bench',
    });
    let x = 42;
    const rnd = (): number => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 8;
    for (let i = 0; i < SEQUENCES; i += 1000) {
      const n = Math.min(1000, SEQUENCES - i);
      await store.append(
        job.id,
        i,
        Array.from({ length: n }, (_, k) => ({
          id: `s${i + k}`,
          sequence: Array.from({ length: 30 }, () => 'ACGT'[rnd() % 4]).join(''),
        })),
      );
    }
    const t0 = process.hrtime.bigint();
    await store.activate(job.id);
    for (;;) {
      const j = (await store.get(job.id))!;
      if (j.status === 'succeeded' || j.status === 'failed') {
        const s = Number(process.hrtime.bigint() - t0) / 1e9;
        if (j.status !== 'succeeded' || j.done !== SEQUENCES || j.failed !== 0)
          throw new Error(
            `${gateways} gateway(s): job ${j.status}, ${j.done - j.failed} of ${SEQUENCES} records succeeded (${j.error ?? ''})`,
          );
        return s;
      }
      await sleep(50);
    }
  } finally {
    for (const s of servers) await s.stop();
    await sql.close();
  }
}

/** Null when PostgreSQL is not installed here (the reason is printed). */
export async function scaleOutBench(): Promise<{ one_s: number; two_s: number; ratio: number } | null> {
  const missing = pgUnavailable();
  if (missing) {
    process.stderr.write(`scale-out bench skipped: ${missing}\n`);
    return null;
  }
  const dir = mkdtempSync(join(tmpdir(), 'isomodel-bench-scaleout-'));
  // Replica cgroups off, as in bench/jobs.ts: with cgroup v1 all replicas share one parent's CPU weight.
  const config = join(dir, 'isomodel.config.yaml');
  writeFileSync(config, 'cgroups: false\n');
  const models = copyModels([{ from: join(BENCH_MODELS, 'cpu-burn'), name: 'cpu-burn' }]);
  const cluster = await startPgCluster();
  try {
    const one = await timeJob(cluster, 1, config, models);
    const two = await timeJob(cluster, 2, config, models);
    return { one_s: round(one), two_s: round(two), ratio: round(one / two) };
  } finally {
    await cluster.destroy();
    rmSync(dir, { recursive: true, force: true });
    rmSync(models, { recursive: true, force: true });
  }
}

function round(n: number): number {
  return Math.round(n * 1000) / 1000;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const r = await scaleOutBench();
  if (r) {
    process.stdout.write(
      `scale-out: ${SEQUENCES} sequences on cpu-burn (rounds=${ROUNDS}), one replica per gateway, shared PostgreSQL\n` +
        `  1 gateway:  ${r.one_s.toFixed(2)} s\n  2 gateways: ${r.two_s.toFixed(2)} s\n  ratio:      ${r.ratio.toFixed(2)}x (target >= 1.6x)\n`,
    );
  }
}
