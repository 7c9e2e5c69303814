// A gateway's job loop alone, as its own process, so that a test can SIGKILL it mid-job
// (shared-store.test.ts). Env: SHARED_DB (postgres:// URL or SQLite file), OWNER, LEASE_MS,
// DELAY_MS (per chunk). Prints `claimed <job>:<lo>` per chunk it starts and `ready` once running.
import { openSqlClient } from '../src/store/shared/open.js';
import { JobStore } from '../src/jobs/store.js';
import { SharedJobWorker } from '../src/store/shared/job-worker.js';
import { echoProcessor } from './shared-echo.js';

const sql = openSqlClient(process.env.SHARED_DB!, { onError: (m) => process.stderr.write(`${m}\n`) });
const store = await JobStore.open(sql);
const owner = process.env.OWNER ?? 'child';
const worker = new SharedJobWorker({
  store,
  owner,
  concurrency: 2,
  leaseMs: Number(process.env.LEASE_MS ?? 1500),
  idleMs: 20,
  process: echoProcessor(owner, Number(process.env.DELAY_MS ?? 5), (jobId, lo) =>
    process.stdout.write(`claimed ${jobId}:${lo}\n`),
  ),
  onError: (m) => process.stderr.write(`${m}\n`),
});
worker.start();
process.stdout.write('ready\n');
process.on(
  'SIGTERM',
  () =>
    void worker
      .stop()
      .then(() => sql.close())
      .then(() => process.exit(0)),
);
