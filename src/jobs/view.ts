// What a client sees of a job (GET /v1/jobs, /v1/jobs/{id}, the answer to a submission).
import type { JobCaller } from './context.js';
import type { JobRow } from './store.js';

export interface JobView {
  id: string;
  name: string | null;
  kind: 'predict' | 'pipeline';
  model: string | null;
  pipeline: string | null;
  task: string | null;
  status: string;
  total: number;
  done: number;
  successful: number;
  failed: number;
  pending: number;
  progress: number;
  rate_per_s: number | null;
  eta_s: number | null;
  workers: number;
  chunk_size: number;
  error: string | null;
  idempotency_key: string | null;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  updated_at: string;
  links: { self: string; results: string; cancel: string };
  /** Who submitted it: shown to admin keys only. */
  owner?: { id: string; name: string | null };
}

/** The client's view of a job, at `perS` records per second (null: not measured); its owner only for an admin caller. */
export function jobView(job: JobRow, perS: number | null, caller?: JobCaller): JobView {
  const rate = perS === null ? null : Math.round(perS * 10) / 10;
  const eta = perS === null ? null : Math.round(((job.total - job.done) / perS) * 10) / 10;
  const pipeline = job.kind === 'pipeline';
  return {
    id: job.id,
    name: job.name,
    kind: job.kind,
    model: pipeline ? null : job.model,
    pipeline: pipeline ? job.model : null,
    task: job.task,
    status: job.status,
    total: job.total,
    done: job.done,
    successful: job.done - job.failed,
    failed: job.failed,
    pending: job.total - job.done,
    progress: job.total ? Math.round((job.done / job.total) * 10_000) / 10_000 : 1,
    rate_per_s: rate,
    eta_s: eta,
    workers: job.workers,
    chunk_size: job.chunk_size,
    error: job.error,
    idempotency_key: job.idempotency_key,
    created_at: job.created_at,
    started_at: job.started_at,
    finished_at: job.finished_at,
    updated_at: job.updated_at,
    links: { self: `/v1/jobs/${job.id}`, results: `/v1/jobs/${job.id}/results`, cancel: `/v1/jobs/${job.id}/cancel` },
    ...(caller?.admin && { owner: { id: job.owner, name: job.owner_name } }),
  };
}
