// What the jobs need of a gateway: the inference context, plus where its jobs are stored and run
// when several gateways share them (database_url). The Gateway class implements it; the jobs
// import this type, never src/gateway.ts, so that the composition root stays on top.
import type { InferenceContext } from '../inference/context.js';
import type { JobStore } from './store.js';

export interface JobsContext extends InferenceContext {
  /** When the gateway started: submissions older than that were left by a process that died. */
  readonly startedAt: number;
  /** The state shared with other gateways (database_url), once opened; null: the jobs are in SQLite. */
  readonly shared: { readonly jobs: JobStore } | null;
  /** This gateway's share of the shared store's jobs (jobs/shared-runner.ts); null without database_url. */
  readonly sharedJobs: { poke(): void; drop(jobId: string): void } | null;
}

/** Who asks: jobs belong to the key that submitted them; an admin key sees and cancels every job. */
export interface JobCaller {
  /** The principal's id (an API key's id, `config:<name>`, or `anonymous` with auth off). */
  id: string;
  name: string;
  admin: boolean;
}
