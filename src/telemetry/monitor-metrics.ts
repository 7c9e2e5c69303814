// What the monitor reports live, read from the host and the deployments at the moment of asking:
// the system (state dir's disk, load, memory), each model and each of its replicas (CPU, RSS,
// open fds, I/O where a probe gives it, queue, request counters and latencies).
import { statfsSync } from 'node:fs';
import os from 'node:os';
import type { ModelDeployment } from '../scheduler/deployment.js';
import type { ModelRegistry } from '../scheduler/registry.js';
import type { IoSample, WorkerIoProbe } from '../util/proc.js';
import type { SourceCounts, WorkSource } from '../scheduler/model-stats.js';
import type { WeightsInfo } from '../manifest/weights.js';
import type { RequirementsInfo } from '../manifest/requires.js';

export interface ReplicaMetrics {
  id: string;
  state: string;
  pid: number | null;
  busy: boolean;
  restarts: number;
  /** Percent of one core. */
  cpu_percent: number | null;
  /** Percent of the model's CPU allotment: what the cpu threshold compares. */
  cpu_limit_percent: number | null;
  rss_bytes: number | null;
  /** Percent of the model's memory limit: what the memory threshold compares. */
  memory_percent: number | null;
  open_fds: number | null;
  io: IoSample;
  last_exit: string | null;
  last_error: string | null;
}

export interface ModelMetrics {
  model: string;
  version: string;
  description: string;
  runtime: string;
  isolation: string;
  status: string;
  healthy: boolean;
  tasks: { name: string; sequence_types: string[]; description?: string }[];
  limits: { memory_bytes: number; cpus: number };
  replicas: ReplicaMetrics[];
  totals: {
    replicas: number;
    ready: number;
    busy: number;
    cpu_percent: number | null;
    rss_bytes: number | null;
    memory_percent: number | null;
    open_fds: number | null;
    restarts: number;
  };
  queue_depth: number;
  in_flight: number;
  requests: {
    total: number;
    successful: number;
    failed: number;
    error_rate: number | null;
    sequences: number;
    rps: number | null;
    p50_ms: number | null;
    p99_ms: number | null;
    queue_p50_ms: number | null;
    by_source: Record<WorkSource, SourceCounts> | null;
  };
  active_alerts: number;
  last_error: string | null;
  /** Weights the model declares (manifest weights): where they are looked for and what to do; null when none. */
  weights: WeightsInfo | null;
  /** Host software its manifest requires that the last load found missing; null when nothing was. */
  requires: RequirementsInfo | null;
}

export interface SystemMetrics {
  at: string;
  disk_path: string;
  disk_percent: number | null;
  disk_used_bytes: number | null;
  disk_total_bytes: number | null;
  load1: number;
  memory_used_percent: number;
  gateway_rss_bytes: number;
}

export const round1 = (v: number): number => Math.round(v * 10) / 10;
export const round2 = (v: number): number => Math.round(v * 100) / 100;
export const MB = 1024 * 1024;

/** What a model's live metrics are read from, besides the model itself. */
export interface ModelMetricsSource {
  registry: ModelRegistry;
  ioProbe: WorkerIoProbe;
  /** Requests per second over the last sampling interval of this deployment; null before two samples. */
  rps(name: string, d: ModelDeployment | undefined): number | null;
  activeAlerts(name: string): number;
}

export function systemMetrics(stateDir: string): SystemMetrics {
  let disk: { percent: number; used: number; total: number } | null = null;
  try {
    const s = statfsSync(stateDir);
    const used = (s.blocks - s.bfree) * s.bsize;
    const avail = s.bavail * s.bsize;
    // As df computes Use%: of what non-root users can fill.
    disk = { percent: used + avail > 0 ? (used / (used + avail)) * 100 : 0, used, total: s.blocks * s.bsize };
  } catch {
    disk = null;
  }
  const total = os.totalmem();
  return {
    at: new Date().toISOString(),
    disk_path: stateDir,
    disk_percent: disk ? round2(disk.percent) : null,
    disk_used_bytes: disk?.used ?? null,
    disk_total_bytes: disk?.total ?? null,
    load1: round2(os.loadavg()[0]!),
    memory_used_percent: round2(((total - os.freemem()) / total) * 100),
    gateway_rss_bytes: process.memoryUsage().rss,
  };
}

/** Current metrics of one model (live: read from the deployment now). */
export function modelMetrics(src: ModelMetricsSource, name: string): ModelMetrics {
  const { registry } = src;
  const m = registry.package(name).manifest;
  const d = registry.deployment(name);
  const limitBytes = m.resources.memory_mb * MB;
  const cpus = m.resources.cpus;
  const replicas: ReplicaMetrics[] = (d?.replicaInfo() ?? []).map((r) => {
    const io = src.ioProbe({ model: name, version: m.version, replica: r }) ?? {};
    return {
      id: r.id,
      state: r.state,
      pid: r.pid ?? null,
      busy: r.busy,
      restarts: r.restarts,
      cpu_percent: r.cpu_percent ?? null,
      cpu_limit_percent: r.cpu_percent === undefined ? null : round1(r.cpu_percent / cpus),
      rss_bytes: r.rss_bytes ?? null,
      memory_percent: r.rss_bytes === undefined ? null : round2((r.rss_bytes / limitBytes) * 100),
      open_fds: r.open_fds ?? null,
      io: {
        disk_read_bytes: io.disk_read_bytes ?? null,
        disk_write_bytes: io.disk_write_bytes ?? null,
        net_rx_bytes: io.net_rx_bytes ?? null,
        net_tx_bytes: io.net_tx_bytes ?? null,
      },
      last_exit: r.last_exit ?? null,
      last_error: r.last_error ?? null,
    };
  });
  const sum = (f: (r: ReplicaMetrics) => number | null): number | null => {
    const vals = replicas.map(f).filter((v): v is number => v !== null);
    return vals.length ? vals.reduce((a, b) => a + b, 0) : null;
  };
  const mems = replicas.map((r) => r.memory_percent).filter((v): v is number => v !== null);
  const s = d?.stats;
  const p = (v: number | null | undefined): number | null =>
    v === null || v === undefined ? null : Math.round(v * 1000) / 1000;
  return {
    model: name,
    version: m.version,
    description: m.description,
    runtime: m.runtime,
    isolation: m.isolation,
    status: registry.status(name),
    healthy: d?.healthy() ?? false,
    tasks: m.tasks.map((t) => ({ name: t.name, sequence_types: t.sequence_types, description: t.description })),
    limits: { memory_bytes: limitBytes, cpus },
    replicas,
    totals: {
      replicas: replicas.length,
      ready: replicas.filter((r) => r.state === 'ready').length,
      busy: replicas.filter((r) => r.busy).length,
      cpu_percent: ((v) => (v === null ? null : round1(v)))(sum((r) => r.cpu_percent)),
      rss_bytes: sum((r) => r.rss_bytes),
      memory_percent: mems.length ? Math.max(...mems) : null,
      open_fds: sum((r) => r.open_fds),
      restarts: replicas.reduce((n, r) => n + r.restarts, 0),
    },
    queue_depth: d?.queueDepth() ?? 0,
    in_flight: d?.inflightCount() ?? 0,
    requests: {
      total: s?.totalRequests ?? 0,
      successful: s?.successfulRequests ?? 0,
      failed: s?.failedRequests ?? 0,
      error_rate: s && s.totalRequests ? round2(s.failedRequests / s.totalRequests) : null,
      sequences: s?.totalItems ?? 0,
      rps: src.rps(name, d),
      p50_ms: p(s?.latency.percentile(50)),
      p99_ms: p(s?.latency.percentile(99)),
      queue_p50_ms: p(s?.queueWait.percentile(50)),
      by_source: s ? (structuredClone(s.bySource) as Record<WorkSource, SourceCounts>) : null,
    },
    active_alerts: src.activeAlerts(name),
    last_error: registry.lastError(name) ?? null,
    weights: registry.weights(name),
    requires: registry.requirements(name),
  };
}
