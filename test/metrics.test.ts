// The request path's metrics as GatewayMetrics exposes them, without a gateway: each counter,
// histogram and gauge fed directly (or read from a stand-in model registry) and read back from the
// text exposition by value. test/prometheus.test.ts checks the same through a real gateway and a
// real Prometheus; these are fast enough to run once per mutant (npm run mutate).
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { Counter, Histogram, Registry } from 'prom-client';
import type { ModelRegistry } from '../src/scheduler/registry.js';
import { BoundCounter, BoundHistogram } from '../src/telemetry/bound-metrics.js';
import { gpuProbe, type GpuSnapshot } from '../src/telemetry/gpu.js';
import { GatewayMetrics } from '../src/telemetry/prometheus.js';
import { parseExposition, promtool, type Sample } from './helpers.js';

describe("bound metrics (the request path's counters and histograms)", () => {
  // The same observations through prom-client's own metrics and through the bound ones must
  // expose byte-identical text: the bound ones replace them on the hot path only for speed.
  const buckets = [0.001, 0.01, 0.1, 1];
  const observations: [Record<string, string>, number][] = [
    [{ model: 'a', version: '1' }, 0.0005],
    [{ model: 'a', version: '1' }, 0.01],
    [{ model: 'a', version: '1' }, 0.5],
    [{ model: 'b', version: '2' }, 7],
    [{ model: 'a', version: '1' }, 0.05],
  ];

  it('expose what prom-client exposes for the same observations', async () => {
    const ref = new Registry();
    const refHist = new Histogram({
      name: 't_seconds',
      help: 'h',
      labelNames: ['model', 'version'],
      buckets,
      registers: [ref],
    });
    const refCount = new Counter({ name: 't_total', help: 'c', labelNames: ['model', 'version'], registers: [ref] });
    const ours = new Registry();
    const hist = new BoundHistogram({
      name: 't_seconds',
      help: 'h',
      labelNames: ['model', 'version'],
      buckets,
      registry: ours,
    });
    const count = new BoundCounter({ name: 't_total', help: 'c', labelNames: ['model', 'version'], registry: ours });
    for (const [labels, v] of observations) {
      refHist.observe(labels, v);
      refCount.inc(labels, 2);
      hist.bind(labels)(v);
      count.bind(labels)(2);
    }
    const text = await ours.metrics();
    assert.equal(text, await ref.metrics());
    assert.match(text, /t_seconds_bucket\{le="0\.1",model="a",version="1"\} 3/);
    assert.match(text, /t_seconds_bucket\{le="\+Inf",model="b",version="2"\} 1/);
    assert.match(text, /t_total\{model="a",version="1"\} 8/);
    const { code, out } = await promtool(text);
    assert.equal(code, 0, out);
  });

  it('keep counting through functions bound before a reset, and refuse unknown labels', async () => {
    const reg = new Registry();
    const hist = new BoundHistogram({ name: 'r_seconds', help: 'h', labelNames: ['model'], buckets, registry: reg });
    const observe = hist.bind({ model: 'a' });
    observe(0.5);
    reg.resetMetrics();
    observe(0.002);
    assert.match(await reg.metrics(), /r_seconds_count\{model="a"\} 1\n/);
    assert.match(await reg.metrics(), /r_seconds_sum\{model="a"\} 0\.002\n/);
    assert.throws(() => hist.bind({ model: 'a', tenant: 'x' }), /unknown label tenant/);
    assert.throws(
      () => new BoundHistogram({ name: 'bad', help: 'h', labelNames: ['le'], buckets, registry: reg }),
      /reserved/,
    );
  });

  it('sort their buckets, ignore non-finite observations, and keep label sets apart', async () => {
    // Buckets given in any order expose as if given sorted.
    const sorted = new Registry();
    const unsorted = new Registry();
    const inOrder = new BoundHistogram({
      name: 's_seconds',
      help: 'h',
      labelNames: ['model'],
      buckets: [0.001, 0.01, 0.1, 1],
      registry: sorted,
    });
    const shuffled = new BoundHistogram({
      name: 's_seconds',
      help: 'h',
      labelNames: ['model'],
      buckets: [1, 0.001, 0.1, 0.01],
      registry: unsorted,
    });
    for (const v of [0.0005, 0.005, 0.05, 0.5, 5]) {
      inOrder.bind({ model: 'a' })(v);
      shuffled.bind({ model: 'a' })(v);
    }
    assert.equal(await unsorted.metrics(), await sorted.metrics());
    assert.match(await sorted.metrics(), /s_seconds_bucket\{le="0\.01",model="a"\} 2\n/);
    // NaN or an infinite duration (a clock gone wrong) would poison the sum for good: dropped.
    const reg = new Registry();
    const hist = new BoundHistogram({ name: 'n_seconds', help: 'h', labelNames: ['model'], buckets, registry: reg });
    const observe = hist.bind({ model: 'a' });
    for (const v of [NaN, Infinity, -Infinity, 0.5]) observe(v);
    assert.match(await reg.metrics(), /n_seconds_count\{model="a"\} 1\n/);
    assert.match(await reg.metrics(), /n_seconds_sum\{model="a"\} 0\.5\n/);
    // Label values that read the same end to end ("a"+"b1", "ab"+"1") are still two series.
    const creg = new Registry();
    const count = new BoundCounter({ name: 'k_total', help: 'c', labelNames: ['model', 'version'], registry: creg });
    count.bind({ model: 'a', version: 'b1' })(1);
    count.bind({ model: 'ab', version: '1' })(2);
    const text = await creg.metrics();
    assert.match(text, /k_total\{model="a",version="b1"\} 1\n/);
    assert.match(text, /k_total\{model="ab",version="1"\} 2\n/);
  });
});

interface FakeReplica {
  id: string;
  state: string;
  rss_bytes?: number;
  cpu_percent?: number;
  open_fds?: number;
}
interface FakeDeployment {
  healthy: boolean;
  queue: number;
  inflight: number;
  replicas: FakeReplica[];
}

/** What GatewayMetrics reads of the model registry: names, versions, and each version's deployment. */
function fakeRegistry(
  models: Record<string, { version: string; default: boolean; status: string; dep?: FakeDeployment }[]>,
): ModelRegistry {
  return {
    names: () => Object.keys(models),
    versions: (name: string) =>
      models[name]!.map((v) => ({ version: v.version, default: v.default, status: v.status })),
    status: (id: string) => {
      const [name, version] = id.split('@');
      return models[name!]?.find((v) => v.version === version)?.status ?? 'unloaded';
    },
    deployment: (id: string) => {
      const [name, version] = id.split('@');
      const d = models[name!]?.find((v) => v.version === version)?.dep;
      return (
        d && {
          healthy: () => d.healthy,
          queueDepth: () => d.queue,
          inflightCount: () => d.inflight,
          replicaInfo: () => d.replicas,
        }
      );
    },
  } as unknown as ModelRegistry;
}

describe('GatewayMetrics', () => {
  const models = {
    a: [
      {
        version: '2.0.0',
        default: true,
        status: 'ready',
        dep: {
          healthy: true,
          queue: 3,
          inflight: 5,
          replicas: [
            { id: 'r1', state: 'ready', rss_bytes: 1000, cpu_percent: 50, open_fds: 12 },
            { id: 'r2', state: 'ready', rss_bytes: 2000, cpu_percent: 150, open_fds: 14 },
            { id: 'r3', state: 'starting' },
          ],
        },
      },
      { version: '1.0.0', default: false, status: 'unloaded' },
      {
        version: '1.5.0',
        default: false,
        status: 'ready',
        dep: { healthy: false, queue: 0, inflight: 0, replicas: [{ id: 'r1', state: 'failed' }] },
      },
    ],
    b: [{ version: '1.0.0', default: true, status: 'unloaded' }],
  };
  const m = new GatewayMetrics(() => fakeRegistry(models));
  let samples: Sample[] = [];
  let text = '';
  const scrape = async (): Promise<void> => {
    const e = await m.exposition();
    assert.equal(e.contentType, 'text/plain; version=0.0.4; charset=utf-8');
    text = e.body;
    samples = parseExposition(text);
  };
  /** The value of the one series with exactly these labels (undefined when there is none). */
  const value = (name: string, labels: Record<string, string>): number | undefined => {
    const found = samples.filter(
      (s) =>
        s.name === name &&
        Object.keys(s.labels).length === Object.keys(labels).length &&
        Object.entries(labels).every(([k, v]) => s.labels[k] === v),
    );
    assert.ok(found.length <= 1, `${name} ${JSON.stringify(labels)}: one series`);
    return found[0]?.value;
  };
  const series = (name: string): Sample[] => samples.filter((s) => s.name === name);
  const realCurrent = gpuProbe.current.bind(gpuProbe);
  after(() => {
    gpuProbe.current = realCurrent;
  });

  it('counts requests by outcome, sequences, and the latency of successful ones', async () => {
    m.observeRequest('a', '2.0.0', 'embed', true, 'OK', 0.003, 5);
    m.observeRequest('a', '2.0.0', 'embed', true, 'OK', 0.2, 1);
    m.observeRequest('a', '2.0.0', 'embed', false, 'INVALID_SEQUENCE', 0.001, 2);
    m.observeRequest('a', '2.0.0', 'embed', false, 'PREDICTION_FAILED', 7, 3);
    m.observeRequest('a', '2.0.0', 'other', true, 'OK', 0.01, 4);
    await scrape();
    const embed = { model: 'a', version: '2.0.0', task: 'embed' };
    assert.equal(value('isomodel_requests_total', { ...embed, status: 'success', code: 'OK' }), 2);
    assert.equal(value('isomodel_requests_total', { ...embed, status: 'error', code: 'INVALID_SEQUENCE' }), 1);
    assert.equal(value('isomodel_requests_total', { ...embed, status: 'error', code: 'PREDICTION_FAILED' }), 1);
    assert.equal(
      value('isomodel_requests_total', { model: 'a', version: '2.0.0', task: 'other', status: 'success', code: 'OK' }),
      1,
    );
    assert.equal(value('isomodel_sequences_total', embed), 6, 'the sequences of successful requests: 5 + 1');
    assert.equal(value('isomodel_sequences_total', { ...embed, task: 'other' }), 4);
    assert.equal(value('isomodel_request_duration_seconds_count', embed), 2, 'failures have no latency sample');
    assert.ok(Math.abs(value('isomodel_request_duration_seconds_sum', embed)! - 0.203) < 1e-9);
    assert.equal(value('isomodel_request_duration_seconds_bucket', { ...embed, le: '0.0025' }), 0);
    assert.equal(value('isomodel_request_duration_seconds_bucket', { ...embed, le: '0.005' }), 1);
    assert.equal(value('isomodel_request_duration_seconds_bucket', { ...embed, le: '0.25' }), 2);
    assert.equal(value('isomodel_request_duration_seconds_bucket', { ...embed, le: '+Inf' }), 2);
  });

  it("latency histograms use the documented buckets (the dashboards' quantiles rely on them)", async () => {
    m.observerFor('a', '2.0.0').queued(0.0001);
    m.observerFor('a', '2.0.0').batch(3, 0.0001, true);
    await scrape();
    const les = (name: string, labels: Record<string, string>) =>
      series(name)
        .filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))
        .map((s) => s.labels.le);
    const latency = [
      '0.0005',
      '0.001',
      '0.0025',
      '0.005',
      '0.01',
      '0.025',
      '0.05',
      '0.1',
      '0.25',
      '0.5',
      '1',
      '2.5',
      '5',
      '10',
      '30',
      '60',
      '+Inf',
    ];
    assert.deepEqual(les('isomodel_request_duration_seconds_bucket', { task: 'embed' }), latency);
    assert.deepEqual(les('isomodel_queue_duration_seconds_bucket', { model: 'a' }), latency);
    assert.deepEqual(les('isomodel_compute_duration_seconds_bucket', { model: 'a' }), latency);
    assert.deepEqual(les('isomodel_batch_size_bucket', { model: 'a' }), [
      '1',
      '2',
      '4',
      '8',
      '16',
      '32',
      '64',
      '128',
      '256',
      '512',
      '+Inf',
    ]);
  });

  it('a deployment reports queue waits, batches with their compute time, tokens and restarts', async () => {
    const o = m.observerFor('c', '1.0.0');
    const c = { model: 'c', version: '1.0.0' };
    await scrape();
    assert.equal(value('isomodel_batch_tokens_total', c), undefined, 'no token series before a batch by length');
    o.queued(0.02);
    o.queued(0.04);
    o.batch(4, 0.5, true);
    o.batch(2, 1.5, false);
    o.tokens(100, 20);
    o.tokens(50, 0);
    o.restart('exited with code 1 (signal SIGKILL)');
    o.restart('missed health ping (hung)');
    o.restart('exited with code 1');
    await scrape();
    assert.equal(value('isomodel_queue_duration_seconds_count', c), 2);
    assert.ok(Math.abs(value('isomodel_queue_duration_seconds_sum', c)! - 0.06) < 1e-9);
    assert.equal(value('isomodel_batch_size_count', c), 2);
    assert.equal(value('isomodel_batch_size_sum', c), 6, 'items per batch: 4 + 2');
    assert.equal(value('isomodel_batch_size_bucket', { ...c, le: '2' }), 1);
    assert.equal(value('isomodel_batch_size_bucket', { ...c, le: '4' }), 2);
    assert.equal(value('isomodel_compute_duration_seconds_count', c), 2, 'failed batches took worker time too');
    assert.equal(value('isomodel_compute_duration_seconds_sum', c), 2);
    assert.equal(value('isomodel_batch_tokens_total', c), 150);
    assert.equal(value('isomodel_batch_padding_tokens_total', c), 20);
    assert.equal(
      value('isomodel_worker_restarts_total', { ...c, reason: 'exited with code 1' }),
      2,
      'the parenthesised detail is not part of the label',
    );
    assert.equal(value('isomodel_worker_restarts_total', { ...c, reason: 'missed health ping' }), 1);
  });

  it('counts authentication failures by reason, throttled clients, and worker log drops per model', async () => {
    m.auth.authFailure('missing');
    m.auth.authFailure('missing');
    m.auth.authFailure('invalid');
    m.auth.authThrottled();
    const log = m.workerLog('a');
    log.onDropped(3);
    log.onDropped(4);
    log.onTruncated(2);
    await scrape();
    assert.equal(value('isomodel_auth_failures_total', { reason: 'missing' }), 2);
    assert.equal(value('isomodel_auth_failures_total', { reason: 'invalid' }), 1);
    assert.equal(value('isomodel_auth_throttled_total', {}), 1);
    assert.equal(value('isomodel_worker_log_dropped_total', { model: 'a' }), 7);
    assert.equal(value('isomodel_worker_log_truncated_total', { model: 'a' }), 2);
  });

  it("gauges read every live version and each model's default at scrape time", async () => {
    await scrape();
    const a2 = { model: 'a', version: '2.0.0' };
    const a15 = { model: 'a', version: '1.5.0' };
    const b1 = { model: 'b', version: '1.0.0' };
    assert.equal(value('isomodel_model_up', a2), 1);
    assert.equal(value('isomodel_model_up', a15), 0, 'a version with a failed replica is down');
    assert.equal(value('isomodel_model_up', b1), 0, 'an unloaded default is listed, and down');
    assert.equal(
      value('isomodel_model_up', { model: 'a', version: '1.0.0' }),
      undefined,
      'an unloaded non-default version is not',
    );
    assert.equal(value('isomodel_queue_depth', a2), 3);
    assert.equal(value('isomodel_queue_depth', b1), 0);
    assert.equal(value('isomodel_inflight_sequences', a2), 5);
    assert.equal(value('isomodel_inflight_sequences', b1), 0);
    assert.deepEqual(
      series('isomodel_replicas')
        .filter((s) => s.labels.version === '2.0.0')
        .map((s) => [s.labels.state, s.value]),
      [
        ['starting', 1],
        ['ready', 2],
        ['restarting', 0],
        ['stopping', 0],
        ['failed', 0],
      ],
    );
    assert.equal(value('isomodel_replicas', { ...a15, state: 'failed' }), 1);
    assert.deepEqual(
      series('isomodel_replicas')
        .filter((s) => s.labels.model === 'b')
        .map((s) => [s.labels.state, s.value]),
      [
        ['starting', 0],
        ['ready', 0],
        ['restarting', 0],
        ['stopping', 0],
        ['failed', 0],
      ],
      'a version without a deployment: every state at zero, and nothing else',
    );
    assert.equal(value('isomodel_worker_resident_memory_bytes', { ...a2, replica: 'r2' }), 2000);
    assert.equal(value('isomodel_worker_cpu_ratio', { ...a2, replica: 'r2' }), 1.5, 'cores, not percent');
    assert.equal(value('isomodel_worker_open_fds', { ...a2, replica: 'r1' }), 12);
    assert.equal(
      value('isomodel_worker_resident_memory_bytes', { ...a2, replica: 'r3' }),
      undefined,
      'no sample, no series',
    );
    assert.equal(series('isomodel_worker_cpu_ratio').length, 2);
    assert.equal(series('isomodel_worker_open_fds').length, 2);
    // Gauges are rebuilt at every scrape: a replica gone is a series gone.
    models.a[0]!.dep!.replicas.pop();
    models.a[0]!.dep!.replicas.pop();
    await scrape();
    assert.equal(series('isomodel_worker_resident_memory_bytes').length, 1);
    assert.equal(value('isomodel_replicas', { ...a2, state: 'ready' }), 1);
    assert.equal(value('isomodel_replicas', { ...a2, state: 'starting' }), 0);
  });

  it('GPU gauges come from the last nvidia-smi sample, with none without a GPU', async () => {
    gpuProbe.current = () => null;
    await scrape();
    assert.equal(series('isomodel_gpu_utilization_ratio').length, 0);
    assert.equal(series('isomodel_gpu_memory_used_bytes').length, 0);
    const snap: GpuSnapshot = {
      available: true,
      sampledAt: Date.now(),
      gpus: [
        {
          index: 0,
          uuid: 'GPU-aaa',
          name: 'H100',
          utilization_percent: 75,
          memory_used_mb: 1024,
          memory_total_mb: 81920,
        },
        {
          index: 1,
          uuid: 'GPU-bbb',
          name: 'H100',
          utilization_percent: null,
          memory_used_mb: null,
          memory_total_mb: null,
        },
      ],
    };
    gpuProbe.current = () => snap;
    await scrape();
    assert.deepEqual(series('isomodel_gpu_utilization_ratio'), [
      { name: 'isomodel_gpu_utilization_ratio', labels: { gpu: '0', uuid: 'GPU-aaa', name: 'H100' }, value: 0.75 },
    ]);
    assert.deepEqual(series('isomodel_gpu_memory_used_bytes'), [
      {
        name: 'isomodel_gpu_memory_used_bytes',
        labels: { gpu: '0', uuid: 'GPU-aaa', name: 'H100' },
        value: 1024 * 1024 * 1024,
      },
    ]);
  });

  it("every metric has help text and the right type; the gateway's own process metrics are there; promtool agrees", async () => {
    await scrape();
    const help = [...text.matchAll(/^# HELP (\S+) ?(.*)$/gm)];
    assert.ok(help.length > 20);
    for (const [, name, h] of help) assert.ok(h!.trim().length > 10, `${name} has help text`);
    const types = Object.fromEntries([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((t) => [t[1], t[2]]));
    for (const c of [
      'isomodel_requests_total',
      'isomodel_sequences_total',
      'isomodel_batch_tokens_total',
      'isomodel_batch_padding_tokens_total',
      'isomodel_worker_restarts_total',
      'isomodel_auth_failures_total',
      'isomodel_auth_throttled_total',
      'isomodel_worker_log_dropped_total',
      'isomodel_worker_log_truncated_total',
    ]) {
      assert.equal(types[c], 'counter', c);
    }
    for (const h of [
      'isomodel_request_duration_seconds',
      'isomodel_queue_duration_seconds',
      'isomodel_compute_duration_seconds',
      'isomodel_batch_size',
    ])
      assert.equal(types[h], 'histogram', h);
    for (const g of [
      'isomodel_model_up',
      'isomodel_queue_depth',
      'isomodel_inflight_sequences',
      'isomodel_replicas',
      'isomodel_worker_resident_memory_bytes',
      'isomodel_worker_cpu_ratio',
      'isomodel_worker_open_fds',
      'isomodel_gpu_utilization_ratio',
      'isomodel_gpu_memory_used_bytes',
    ]) {
      assert.equal(types[g], 'gauge', g);
    }
    assert.ok(series('isomodel_gateway_process_resident_memory_bytes')[0]!.value > 0);
    assert.ok(!('isomodel_gateway_nodejs_active_handles_total' in types), 'gauges named *_total are dropped');
    assert.ok(!('isomodel_gateway_nodejs_active_requests_total' in types));
    assert.ok(!('isomodel_gateway_nodejs_active_resources_total' in types));
    const { code, out } = await promtool(text);
    assert.equal(code, 0, out);
    assert.equal(out.trim(), '', out);
  });
});
