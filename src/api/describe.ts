// How the surfaces describe a model and the host: the summary (/v1/models, deployments), the
// native model info (also MCP's model_info), health (probes, native /health) and system figures.
import os from 'node:os';
import { gpuAvailable } from '../telemetry/gpu.js';
import type { GatewayContext } from './context.js';

/** /v1/models and the deployment API: what a model is, where it runs and how it is doing. */
export function modelSummary(
  gw: Pick<GatewayContext, 'registry' | 'defaultModel'>,
  name: string,
): Record<string, unknown> {
  const pkg = gw.registry.package(name);
  const m = pkg.manifest;
  const d = gw.registry.deployment(name);
  return {
    name: m.name,
    version: m.version,
    description: m.description,
    runtime: m.runtime,
    isolation: m.isolation,
    status: gw.registry.status(name),
    default: gw.defaultModel() === name,
    tasks: m.tasks.map((t) => ({
      name: t.name,
      input_type: t.input_type,
      sequence_types: t.sequence_types,
      max_length: t.max_length,
      description: t.description,
    })),
    default_task: (m.tasks.find((t) => t.name === m.default_task) ?? m.tasks[0])?.name ?? null,
    sequence_types: [...new Set(m.tasks.flatMap((t) => t.sequence_types))],
    replicas: d?.replicaInfo().length ?? 0,
    scaling: m.scaling,
    batching: m.batching,
    resources: m.resources,
    last_error: gw.registry.lastError(name) ?? null,
    // Models that declare weights outside the package: where they are looked for, and what to do.
    weights: gw.registry.weights(name),
    // Host software its manifest requires that the last load found missing (null otherwise).
    requires: gw.registry.requirements(name),
    path: pkg.dir,
  };
}

/** The native /model/info answer (and MCP's model_info). */
export function modelInfo(gw: Pick<GatewayContext, 'registry'>, name: string): Record<string, unknown> {
  const m = gw.registry.package(name).manifest;
  const first = m.tasks[0]!;
  return {
    name: m.name,
    version: m.version,
    description: m.description,
    tasks: m.tasks.map((t) => t.name),
    task_details: m.tasks,
    sequence_types: [...new Set(m.tasks.flatMap((t) => t.sequence_types))],
    input_format: first.input,
    output_format: first.output,
    max_sequence_length: Math.max(...m.tasks.map((t) => t.max_length)),
    runtime: m.runtime,
    isolation: m.isolation,
    resources: m.resources,
    batching: m.batching,
    scaling: m.scaling,
    status: gw.registry.status(name),
    ...m.metadata,
  };
}

/** A model's health: status, replicas, queue, memory, last error, weights and requirements. */
export function modelHealth(gw: Pick<GatewayContext, 'registry'>, name: string): Record<string, unknown> {
  const d = gw.registry.deployment(name);
  const replicas = d?.replicaInfo() ?? [];
  const rss = replicas.reduce((n, r) => n + (r.rss_bytes ?? 0), 0);
  return {
    name,
    version: gw.registry.package(name).manifest.version,
    status: gw.registry.status(name),
    healthy: d?.healthy() ?? false,
    replicas,
    queue_depth: d?.queueDepth() ?? 0,
    in_flight: d?.inflightCount() ?? 0,
    memory_usage: formatBytes(rss),
    last_error: gw.registry.lastError(name) ?? null,
    weights: gw.registry.weights(name),
    requires: gw.registry.requirements(name),
  };
}

export function formatBytes(n: number): string {
  if (n >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(2)}GB`;
  return `${(n / 1024 ** 2).toFixed(1)}MB`;
}

/** Seconds since the gateway started. */
export function uptimeS(gw: Pick<GatewayContext, 'startedAt'>): number {
  return Math.round((Date.now() - gw.startedAt) / 1000);
}

export function systemInfo(): Record<string, unknown> {
  const total = os.totalmem();
  const free = os.freemem();
  return {
    cpu_count: os.cpus().length,
    load_average: os.loadavg().map((l) => Math.round(l * 100) / 100),
    cpu_usage: Math.round((os.loadavg()[0]! / Math.max(1, os.cpus().length)) * 100) / 100,
    memory_total: formatBytes(total),
    memory_usage: formatBytes(total - free),
    gpu_available: gpuAvailable(),
  };
}
