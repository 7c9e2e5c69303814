// Seed 002's metric names (`ai_model_*`), offered next to isomodel's own so its dashboards work
// unchanged. Each is an alias read from isomodel series at scrape time: the same values, the same
// labels (plus `resource` where two gauges become one), nothing counted twice. The mapping is
// documented in docs/monitoring.md; `prometheus_ai_model_names: false` turns them off.
import type { Registry } from 'prom-client';

interface Source {
  metric: string;
  /** Labels added to its series (which gauge it was, where two become one). */
  labels?: Record<string, string>;
}

export interface AiModelAlias {
  name: string;
  type: 'counter' | 'gauge' | 'histogram';
  help: string;
  from: Source[];
}

/** One isomodel series under a seed 002 name; its help says whose alias it is. */
function alias(name: string, type: AiModelAlias['type'], metric: string, help: string): AiModelAlias {
  return { name, type, help: `${help}; alias of ${metric}`, from: [{ metric }] };
}

export const AI_MODEL_ALIASES: AiModelAlias[] = [
  alias(
    'ai_model_deployments_total',
    'counter',
    'isomodel_deployments_total',
    'Model versions deployed (each start of a version: load, reload, rolling update)',
  ),
  alias('ai_model_inference_requests_total', 'counter', 'isomodel_requests_total', 'Inference requests by outcome'),
  alias(
    'ai_model_inference_duration_seconds',
    'histogram',
    'isomodel_request_duration_seconds',
    'End-to-end inference latency in the gateway',
  ),
  {
    name: 'ai_model_resource_usage',
    type: 'gauge',
    help: 'Worker resource use per replica: resource="cpu_ratio" (isomodel_worker_cpu_ratio) or "memory_bytes" (isomodel_worker_resident_memory_bytes)',
    from: [
      { metric: 'isomodel_worker_cpu_ratio', labels: { resource: 'cpu_ratio' } },
      { metric: 'isomodel_worker_resident_memory_bytes', labels: { resource: 'memory_bytes' } },
    ],
  },
  alias(
    'ai_model_health_status',
    'gauge',
    'isomodel_model_up',
    '1 when the model version is loaded and every replica healthy',
  ),
  alias(
    'ai_model_batch_inference_requests_total',
    'counter',
    'isomodel_batch_requests_total',
    'Batch inference requests (native /predict/batch, /api/v1 batch_inference) by outcome',
  ),
];

interface Value {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

/** Registers every alias in `r`; their sources must be registered there too. */
export function registerAiModelAliases(r: Registry): void {
  for (const a of AI_MODEL_ALIASES) {
    const metric = {
      name: a.name,
      help: a.help,
      type: a.type,
      aggregator: 'sum',
      async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Value[] }> {
        const values: Value[] = [];
        for (const s of a.from) {
          const src = r.getSingleMetric(s.metric);
          if (!src) continue;
          for (const v of ((await src.get()) as { values: Value[] }).values) {
            // A histogram's _bucket/_sum/_count keep their suffix under the new name.
            values.push({
              labels: { ...v.labels, ...s.labels },
              value: v.value,
              ...(v.metricName !== undefined && { metricName: a.name + v.metricName.slice(s.metric.length) }),
            });
          }
        }
        return { name: a.name, help: a.help, type: a.type, aggregator: 'sum', values };
      },
      reset(): void {
        // Nothing of its own: the sources hold the values.
      },
    };
    r.registerMetric(metric as unknown as Parameters<Registry['registerMetric']>[0]);
  }
}
