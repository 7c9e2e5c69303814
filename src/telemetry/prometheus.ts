// Prometheus exposition (prom-client). Counters and histograms are fed on the request path;
// gauges (queue depth, replicas, worker memory/CPU) are read from the registry at scrape time.
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { DeploymentObserver } from '../scheduler/observer.js';
import type { ModelDeployment } from '../scheduler/deployment.js';
import type { ModelRegistry } from '../scheduler/registry.js';
import type { ReplicaInfo } from '../scheduler/replica-pool.js';
import { BoundCounter, BoundHistogram } from './bound-metrics.js';
import { gpuProbe, type GpuInfo } from '../util/gpu.js';
import type { WorkSource } from '../scheduler/model-stats.js';
import { registerAiModelAliases } from './ai-model-metrics.js';

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const BATCH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];

// The scheduler's port this module implements (observerFor); re-exported for its importers.
export type { DeploymentObserver } from '../scheduler/observer.js';

export class GatewayMetrics {
  readonly registry = new Registry();
  // The request path's metrics, with label sets bound once (bound-metrics.ts).
  private readonly requests: BoundCounter;
  private readonly requestDuration: BoundHistogram;
  private readonly queueDuration: BoundHistogram;
  private readonly computeDuration: BoundHistogram;
  private readonly batchSize: BoundHistogram;
  private readonly sequences: BoundCounter;
  private readonly batchTokens: BoundCounter;
  private readonly paddingTokens: BoundCounter;
  private readonly restarts: Counter<'model' | 'version' | 'reason'>;
  private readonly authFailures: Counter<'reason'>;
  private readonly authThrottled: Counter;
  private readonly deployments: Counter<'model' | 'version'>;
  private readonly batchRequests: Counter<'model' | 'version' | 'status'>;
  private readonly workerLogDropped: BoundCounter;
  private readonly workerLogTruncated: BoundCounter;
  private readonly requestChildren = new Map<
    string,
    { requests: () => void; duration: (s: number) => void; sequences: (n: number) => void }
  >();

  /** aiModelNames: seed 002's ai_model_* names beside isomodel's (ai-model-metrics.ts). */
  constructor(models: () => ModelRegistry, opts: { aiModelNames?: boolean } = {}) {
    const r = this.registry;
    collectDefaultMetrics({ register: r, prefix: 'isomodel_gateway_' });
    // prom-client names these gauges *_total, which promtool (rightly) rejects for non-counters.
    for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'])
      r.removeSingleMetric(`isomodel_gateway_${name}`);
    const counter = (name: string, help: string, labelNames: string[]): BoundCounter =>
      new BoundCounter({ name, help, labelNames, registry: r });
    const histogram = (name: string, help: string, labelNames: string[], buckets: number[]): BoundHistogram =>
      new BoundHistogram({ name, help, labelNames, buckets, registry: r });
    const perVersion = ['model', 'version'];
    // source: job or pipeline for the model calls of jobs; API requests carry no source label,
    // so their series are the same as before jobs were counted (docs/monitoring.md).
    this.requests = counter(
      'isomodel_requests_total',
      'Prediction requests by outcome (jobs and pipelines: one per model call, source label)',
      ['model', 'version', 'task', 'status', 'code', 'source'],
    );
    this.sequences = counter(
      'isomodel_sequences_total',
      'Sequences predicted successfully (jobs and pipelines: their records, source label)',
      ['model', 'version', 'task', 'source'],
    );
    this.requestDuration = histogram(
      'isomodel_request_duration_seconds',
      'End-to-end prediction latency in the gateway',
      ['model', 'version', 'task'],
      LATENCY_BUCKETS,
    );
    this.queueDuration = histogram(
      'isomodel_queue_duration_seconds',
      'Time a request waited before its first batch was dispatched',
      perVersion,
      LATENCY_BUCKETS,
    );
    this.computeDuration = histogram(
      'isomodel_compute_duration_seconds',
      'Worker time per batch (dispatch to answer)',
      perVersion,
      LATENCY_BUCKETS,
    );
    this.batchSize = histogram('isomodel_batch_size', 'Items per worker batch', perVersion, BATCH_BUCKETS);
    this.workerLogDropped = counter(
      'isomodel_worker_log_dropped_total',
      'Worker stderr lines left out of the gateway log over the per-replica rate (worker_log)',
      ['model'],
    );
    this.workerLogTruncated = counter(
      'isomodel_worker_log_truncated_total',
      'Worker stderr lines cut to worker_log.max_line_chars',
      ['model'],
    );
    this.batchTokens = counter(
      'isomodel_batch_tokens_total',
      'Tokens (residues) of worker batches padded to their longest item, for models batched by length (max_batch_tokens)',
      perVersion,
    );
    this.paddingTokens = counter(
      'isomodel_batch_padding_tokens_total',
      'Padding among isomodel_batch_tokens_total: residues computed only to fill a batch to its longest item',
      perVersion,
    );
    this.restarts = new Counter({
      name: 'isomodel_worker_restarts_total',
      help: 'Unexpected worker exits followed by a restart',
      labelNames: ['model', 'version', 'reason'],
      registers: [r],
    });
    this.authFailures = new Counter({
      name: 'isomodel_auth_failures_total',
      help: 'Requests refused for a missing or unknown API key',
      labelNames: ['reason'],
      registers: [r],
    });
    this.authThrottled = new Counter({
      name: 'isomodel_auth_throttled_total',
      help: 'Requests refused with 429 because their address failed authentication too often',
      registers: [r],
    });
    this.deployments = new Counter({
      name: 'isomodel_deployments_total',
      help: 'Model versions deployed: each start of a version (load, reload, rolling update)',
      labelNames: ['model', 'version'],
      registers: [r],
    });
    this.batchRequests = new Counter({
      name: 'isomodel_batch_requests_total',
      help: 'Batch prediction requests (native /predict/batch, /api/v1 batch_inference) by outcome',
      labelNames: ['model', 'version', 'status'],
      registers: [r],
    });

    const each = (fn: (name: string, version: string) => void): void => {
      const reg = models();
      // Every live version (and each model's default, loaded or not): per-version gauges.
      for (const name of reg.names())
        for (const v of reg.versions(name)) if (v.default || v.status !== 'unloaded') fn(name, v.version);
    };
    const deploymentOf = (model: string, version: string): ModelDeployment | undefined =>
      models().deployment(`${model}@${version}`);
    /** A gauge read at scrape time, reset first: series of what is gone disappear. */
    const gauge = (name: string, help: string, labelNames: string[], fill: (g: Gauge) => void): void => {
      new Gauge({
        name,
        help,
        labelNames,
        registers: [r],
        collect() {
          this.reset();
          fill(this);
        },
      });
    };
    /** One series per live version: a number its deployment gives. */
    const versionGauge = (name: string, help: string, value: (d: ModelDeployment | undefined) => number): void =>
      gauge(name, help, perVersion, (g) =>
        each((model, version) => g.set({ model, version }, value(deploymentOf(model, version)))),
      );
    /** One series per replica that has the number (a sample may not have it yet). */
    const replicaGauge = (name: string, help: string, value: (rep: ReplicaInfo) => number | undefined): void =>
      gauge(name, help, ['model', 'version', 'replica'], (g) =>
        each((model, version) => {
          for (const rep of deploymentOf(model, version)?.replicaInfo() ?? []) {
            const v = value(rep);
            if (v !== undefined) g.set({ model, version, replica: rep.id }, v);
          }
        }),
      );
    // GPUs from nvidia-smi (the last sample, refreshed in the background): no series without one.
    const gpuGauge = (name: string, help: string, value: (gpu: GpuInfo) => number | null): void =>
      gauge(name, help, ['gpu', 'uuid', 'name'], (g) => {
        for (const gpu of gpuProbe.current()?.gpus ?? []) {
          const v = value(gpu);
          if (v !== null) g.set({ gpu: String(gpu.index), uuid: gpu.uuid, name: gpu.name }, v);
        }
      });

    versionGauge('isomodel_model_up', '1 when the model is loaded and every replica is healthy', (d) =>
      d?.healthy() ? 1 : 0,
    );
    gauge(
      'isomodel_model_state',
      'The state of each model version: 1 for its current state (ready, loading, needs_weights, needs_packages, failed, ...)',
      ['model', 'version', 'state'],
      (g) => each((model, version) => g.set({ model, version, state: models().status(`${model}@${version}`) }, 1)),
    );
    versionGauge('isomodel_queue_depth', 'Sequences waiting in the model queue', (d) => d?.queueDepth() ?? 0);
    versionGauge(
      'isomodel_inflight_sequences',
      'Sequences in batches being computed by workers',
      (d) => d?.inflightCount() ?? 0,
    );
    gauge('isomodel_replicas', 'Replicas by state', ['model', 'version', 'state'], (g) =>
      each((model, version) => {
        const counts: Record<string, number> = { starting: 0, ready: 0, restarting: 0, stopping: 0, failed: 0 };
        for (const rep of deploymentOf(model, version)?.replicaInfo() ?? [])
          counts[rep.state] = (counts[rep.state] ?? 0) + 1;
        for (const [state, n] of Object.entries(counts)) g.set({ model, version, state }, n);
      }),
    );
    replicaGauge(
      'isomodel_worker_resident_memory_bytes',
      'Resident memory of each worker (its cgroup when limits are kernel-enforced)',
      (rep) => rep.rss_bytes,
    );
    replicaGauge(
      'isomodel_worker_cpu_ratio',
      'CPU use of each worker over the last sample, in cores (1 = one core busy)',
      (rep) => (rep.cpu_percent !== undefined ? rep.cpu_percent / 100 : undefined),
    );
    gpuGauge(
      'isomodel_gpu_utilization_ratio',
      'Share of the last sample period each GPU was busy (nvidia-smi utilization.gpu / 100)',
      (gpu) => (gpu.utilization_percent !== null ? gpu.utilization_percent / 100 : null),
    );
    gpuGauge('isomodel_gpu_memory_used_bytes', 'Memory in use on each GPU (nvidia-smi memory.used)', (gpu) =>
      gpu.memory_used_mb !== null ? gpu.memory_used_mb * 1024 * 1024 : null,
    );
    replicaGauge('isomodel_worker_open_fds', 'Open file descriptors of each worker', (rep) => rep.open_fds);
    if (opts.aiModelNames ?? true) registerAiModelAliases(r);
  }

  observeRequest(
    model: string,
    version: string,
    task: string,
    ok: boolean,
    code: string,
    seconds: number,
    sequences: number,
    source: WorkSource = 'api',
  ): void {
    // Bound once per label set, then a map lookup per request.
    const key = `${model}\u0000${version}\u0000${task}\u0000${code}\u0000${source}`;
    let c = this.requestChildren.get(key);
    if (!c) {
      const api = source === 'api';
      const bySource: Record<string, string> = api ? {} : { source };
      c = {
        requests: this.requests.bind({ model, version, task, status: ok ? 'success' : 'error', code, ...bySource }),
        // Latency is the API's: a job's model call is queued below interactive requests on purpose.
        duration: api ? this.requestDuration.bind({ model, version, task }) : () => undefined,
        sequences: this.sequences.bind({ model, version, task, ...bySource }),
      };
      this.requestChildren.set(key, c);
    }
    c.requests();
    if (ok) {
      c.duration(seconds);
      c.sequences(sequences);
    }
  }

  /** What src/security/auth.ts reports. */
  readonly auth = {
    authFailure: (reason: 'missing' | 'invalid'): void => this.authFailures.inc({ reason }),
    authThrottled: (): void => this.authThrottled.inc(),
  };

  /** One batch request (also counted, as any request, by observeRequest). */
  observeBatchRequest(model: string, version: string, ok: boolean): void {
    this.batchRequests.inc({ model, version, status: ok ? 'success' : 'error' });
  }

  /** Called once per deployment the registry starts. */
  observerFor(model: string, version: string): DeploymentObserver {
    this.deployments.inc({ model, version });
    const queued = this.queueDuration.bind({ model, version });
    const batchSize = this.batchSize.bind({ model, version });
    const compute = this.computeDuration.bind({ model, version });
    // Bound on first use: only models batched by length have these series.
    let padded: ((n: number) => void) | undefined;
    let padding: ((n: number) => void) | undefined;
    return {
      queued,
      batch: (size, s) => {
        batchSize(size);
        compute(s);
      },
      tokens: (total, pad) => {
        (padded ??= this.batchTokens.bind({ model, version }))(total);
        (padding ??= this.paddingTokens.bind({ model, version }))(pad);
      },
      restart: (reason) => this.restarts.inc({ model, version, reason: reason.replace(/\s*\(.*$/, '') }),
    };
  }

  /** Drop and truncation counters for one model's replicas (drivers' stderr readers). */
  workerLog(model: string): { onDropped: (n: number) => void; onTruncated: (n: number) => void } {
    return { onDropped: this.workerLogDropped.bind({ model }), onTruncated: this.workerLogTruncated.bind({ model }) };
  }

  async exposition(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
