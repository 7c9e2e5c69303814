// This gateway's share of the jobs in the shared store (database_url, src/jobs/store.ts):
// it runs chunks of any job with its own models, exactly as the local runner runs a job's
// chunks (work.ts, pipeline.ts), and commits them there. A job one gateway accepted is thereby
// finished by the others when that gateway dies (leases, src/store/shared/job-worker.ts).
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { JobsContext } from './context.js';
import type { JobStore } from './store.js';
import { SharedJobWorker } from '../store/shared/job-worker.js';
import { countedExecutor } from './counted.js';
import { processPipelineChunk } from './pipeline.js';
import { jobRunnerFor, type JobSpec } from './runner.js';
import { JobFatalError, processPredictChunk, registryExecutor, type WorkContext } from './work.js';

/** Chunks one gateway runs at once, over every shared job. */
export const SHARED_JOB_CONCURRENCY = 8;
/** A dead gateway's chunks are taken over this long after its last heartbeat. */
export const SHARED_JOB_LEASE_MS = 10_000;
/** How long a job waits for a model that is not serving before it fails (as the local runner). */
const MAX_WAIT_MS = 10 * 60_000;

export function sharedJobWorker(
  gw: JobsContext,
  store: JobStore,
  opts: { leaseMs?: number; idleMs?: number } = {},
): SharedJobWorker {
  const base = registryExecutor(gw.registry);
  const log = gw.logger.child({ component: 'shared-jobs' });
  return new SharedJobWorker({
    store,
    owner: `${hostname()}:${process.pid}:${randomBytes(3).toString('hex')}`,
    concurrency: SHARED_JOB_CONCURRENCY,
    leaseMs: opts.leaseMs ?? SHARED_JOB_LEASE_MS,
    idleMs: opts.idleMs ?? 500,
    process: (job, chunk, signal) => {
      const spec = JSON.parse(job.spec) as JobSpec;
      const executor = countedExecutor(base, gw, spec.kind === 'predict' ? 'job' : 'pipeline', job.id);
      const ctx: WorkContext = { executor, signal, priority: job.priority, maxWaitMs: MAX_WAIT_MS };
      return spec.kind === 'predict' ? processPredictChunk(spec, chunk, ctx) : processPipelineChunk(spec, chunk, ctx);
    },
    isFatal: (e) => e instanceof JobFatalError,
    onCommit: (jobId, outcome) => {
      // Whoever follows the job's results on this gateway reads on at once (others poll).
      jobRunnerFor(gw).changed(jobId);
      if (outcome.finished) log.info({ job: jobId, status: outcome.finished }, 'shared job finished');
    },
    onError: (message, jobId) => log.warn({ job: jobId }, message),
  });
}
