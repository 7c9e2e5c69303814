// Prometheus exposition: names and types pass promtool, and a real Prometheus scrapes them.
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Counter, Histogram, Registry } from 'prom-client';
import { PACKAGE_ROOT } from '../src/paths.js';
import { BoundCounter, BoundHistogram } from '../src/telemetry/bound-metrics.js';
import { freePort, request, startGateway, waitFor, type Harness } from './helpers.js';

function promtool(text: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const p = execFile('promtool', ['check', 'metrics'], (err, stdout, stderr) => {
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') reject(new Error('promtool not found: apt-get install prometheus'));
      else resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr });
    });
    p.stdin!.end(text);
  });
}

describe('bound metrics (the request path\'s counters and histograms)', () => {
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
    const refHist = new Histogram({ name: 't_seconds', help: 'h', labelNames: ['model', 'version'], buckets, registers: [ref] });
    const refCount = new Counter({ name: 't_total', help: 'c', labelNames: ['model', 'version'], registers: [ref] });
    const ours = new Registry();
    const hist = new BoundHistogram({ name: 't_seconds', help: 'h', labelNames: ['model', 'version'], buckets, registry: ours });
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
    assert.throws(() => new BoundHistogram({ name: 'bad', help: 'h', labelNames: ['le'], buckets, registry: reg }), /reserved/);
  });
});

describe('Prometheus metrics', () => {
  let h: Harness;
  before(async () => {
    h = await startGateway(['revcomp', 'gc-scanner']);
    await Promise.all(Array.from({ length: 10 }, () => h.post('/models/revcomp/predict', { sequence: 'ACGTACGT' })));
    await h.post('/models/revcomp/predict', { sequence: 'ACGTX' });
  });
  after(async () => h.close());

  it('exposes request, latency, queue, batch, replica and worker metrics', async () => {
    const r = await request<string>(`${h.url}/metrics/prometheus`, 'GET');
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type')!, /text\/plain; version=0\.0\.4/);
    const text = r.body;
    assert.match(text, /isomodel_requests_total\{model="revcomp",version="1\.0\.0",task="reverse_complement",status="success",code="OK"\} 10/);
    assert.match(text, /isomodel_request_duration_seconds_count\{model="revcomp",version="1\.0\.0",task="reverse_complement"\} 10/);
    assert.match(text, /isomodel_batch_size_bucket\{le="\+Inf",model="revcomp",version="1\.0\.0"\} \d+/);
    assert.match(text, /isomodel_queue_duration_seconds_count\{model="revcomp",version="1\.0\.0"\} 10/);
    assert.match(text, /isomodel_compute_duration_seconds_sum\{model="revcomp"/);
    assert.match(text, /isomodel_replicas\{model="gc-scanner",version="1\.0\.0",state="ready"\} 1/);
    assert.match(text, /isomodel_model_up\{model="revcomp",version="1\.0\.0"\} 1/);
    assert.match(text, /isomodel_queue_depth\{model="revcomp",version="1\.0\.0"\} 0/);
    assert.match(text, /isomodel_worker_resident_memory_bytes\{model="gc-scanner",version="1\.0\.0",replica="r\d+"\} [1-9]\d+/);
    assert.match(text, /isomodel_gateway_process_resident_memory_bytes \d+/);
    // Client errors count against the model they were sent to, under their own code.
    assert.match(text, /isomodel_requests_total\{model="revcomp",version="1\.0\.0",task="reverse_complement",status="error",code="INVALID_SEQUENCE"\} 1/);
  });

  it('passes promtool check metrics', async () => {
    const { body } = await request<string>(`${h.url}/metrics/prometheus`, 'GET');
    const { code, out } = await promtool(body);
    assert.equal(code, 0, out);
    assert.equal(out.trim(), '', `promtool has no complaints: ${out}`);
  });

  it('the Grafana dashboard and deploy/prometheus.yml use exactly the exported names', async () => {
    const { body } = await request<string>(`${h.url}/metrics/prometheus`, 'GET');
    const exported = new Set([...body.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));
    const dashboard = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'deploy', 'grafana', 'isomodel-dashboard.json'), 'utf8'));
    const exprs: string[] = dashboard.panels.flatMap((p: any) => (p.targets ?? []).map((t: any) => t.expr));
    exprs.push(...dashboard.templating.list.map((v: any) => v.definition ?? ''));
    const used = new Set(exprs.flatMap((e) => [...e.matchAll(/\b(isomodel_[a-z0-9_]+)/g)].map((m) => m[1]!.replace(/_(bucket|sum|count)$/, ''))));
    assert.ok(used.size >= 12, `dashboard uses ${used.size} metrics`);
    for (const name of used) assert.ok(exported.has(name), `dashboard metric ${name} is exported`);
    const config = join(PACKAGE_ROOT, 'deploy', 'prometheus.yml');
    assert.match(readFileSync(config, 'utf8'), /metrics_path: \/metrics\/prometheus/);
    const check = await new Promise<{ code: number; out: string }>((resolve) =>
      execFile('promtool', ['check', 'config', config], (err, stdout, stderr) => resolve({ code: err ? 1 : 0, out: stdout + stderr })),
    );
    assert.equal(check.code, 0, check.out);
  });

  describe('scraped by a real Prometheus', () => {
    let prom: ChildProcess;
    let dir: string;
    let promUrl: string;
    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'isomodel-prom-'));
      const port = await freePort();
      promUrl = `http://127.0.0.1:${port}`;
      const target = new URL(h.url).host;
      writeFileSync(
        join(dir, 'prometheus.yml'),
        `global: { scrape_interval: 1s, evaluation_interval: 1s }\nscrape_configs:\n  - job_name: isomodel\n    metrics_path: /metrics/prometheus\n    static_configs: [{ targets: ['${target}'] }]\n`,
      );
      prom = spawn('prometheus', [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: 'ignore' });
    });
    after(() => {
      prom.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    });

    it('sees the gateway up and the request counters', async () => {
      const query = async (q: string) => (await request<any>(`${promUrl}/api/v1/query?query=${encodeURIComponent(q)}`, 'GET').catch(() => null))?.body?.data?.result ?? [];
      const up = await waitFor(async () => {
        const res = await query('up{job="isomodel"}');
        return res.length && res[0].value[1] === '1' ? res : null;
      }, 30_000, 250);
      assert.equal(up[0].value[1], '1');
      const reqs = await waitFor(async () => {
        const res = await query('sum(isomodel_requests_total{model="revcomp",status="success"})');
        return res.length ? res : null;
      }, 15_000, 250);
      assert.equal(Number(reqs[0].value[1]), 10);
    });
  });
});
