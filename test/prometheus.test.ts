// Prometheus exposition: names and types pass promtool, and a real Prometheus scrapes them.
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PACKAGE_ROOT } from '../src/paths.js';
import {
  freePort,
  parseExposition,
  promtool,
  request,
  startGateway,
  waitFor,
  type Harness,
  type Sample,
} from './helpers.js';

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
    assert.match(
      text,
      /isomodel_requests_total\{model="revcomp",version="1\.0\.0",task="reverse_complement",status="success",code="OK"\} 10/,
    );
    assert.match(
      text,
      /isomodel_request_duration_seconds_count\{model="revcomp",version="1\.0\.0",task="reverse_complement"\} 10/,
    );
    assert.match(text, /isomodel_batch_size_bucket\{le="\+Inf",model="revcomp",version="1\.0\.0"\} \d+/);
    assert.match(text, /isomodel_queue_duration_seconds_count\{model="revcomp",version="1\.0\.0"\} 10/);
    assert.match(text, /isomodel_compute_duration_seconds_sum\{model="revcomp"/);
    assert.match(text, /isomodel_replicas\{model="gc-scanner",version="1\.0\.0",state="ready"\} 1/);
    assert.match(text, /isomodel_model_up\{model="revcomp",version="1\.0\.0"\} 1/);
    assert.match(text, /isomodel_queue_depth\{model="revcomp",version="1\.0\.0"\} 0/);
    assert.match(
      text,
      /isomodel_worker_resident_memory_bytes\{model="gc-scanner",version="1\.0\.0",replica="r\d+"\} [1-9]\d+/,
    );
    assert.match(text, /isomodel_gateway_process_resident_memory_bytes \d+/);
    // Client errors count against the model they were sent to, under their own code.
    assert.match(
      text,
      /isomodel_requests_total\{model="revcomp",version="1\.0\.0",task="reverse_complement",status="error",code="INVALID_SEQUENCE"\} 1/,
    );
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
    const dashboard = JSON.parse(
      readFileSync(join(PACKAGE_ROOT, 'deploy', 'grafana', 'isomodel-dashboard.json'), 'utf8'),
    );
    const exprs: string[] = dashboard.panels.flatMap((p: any) => (p.targets ?? []).map((t: any) => t.expr));
    exprs.push(...dashboard.templating.list.map((v: any) => v.definition ?? ''));
    const used = new Set(
      exprs.flatMap((e) =>
        [...e.matchAll(/\b(isomodel_[a-z0-9_]+)/g)].map((m) => m[1]!.replace(/_(bucket|sum|count)$/, '')),
      ),
    );
    assert.ok(used.size >= 12, `dashboard uses ${used.size} metrics`);
    for (const name of used) assert.ok(exported.has(name), `dashboard metric ${name} is exported`);
    const config = join(PACKAGE_ROOT, 'deploy', 'prometheus.yml');
    assert.match(readFileSync(config, 'utf8'), /metrics_path: \/metrics\/prometheus/);
    const check = await new Promise<{ code: number; out: string }>((resolve) =>
      execFile('promtool', ['check', 'config', config], (err, stdout, stderr) =>
        resolve({ code: err ? 1 : 0, out: stdout + stderr }),
      ),
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
      prom = spawn(
        'prometheus',
        [
          `--config.file=${join(dir, 'prometheus.yml')}`,
          `--storage.tsdb.path=${join(dir, 'data')}`,
          `--web.listen-address=127.0.0.1:${port}`,
        ],
        { stdio: 'ignore' },
      );
    });
    after(() => {
      prom.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    });

    it('sees the gateway up and the request counters', async () => {
      const query = async (q: string) =>
        (await request<any>(`${promUrl}/api/v1/query?query=${encodeURIComponent(q)}`, 'GET').catch(() => null))?.body
          ?.data?.result ?? [];
      const up = await waitFor(
        async () => {
          const res = await query('up{job="isomodel"}');
          return res.length && res[0].value[1] === '1' ? res : null;
        },
        30_000,
        250,
      );
      assert.equal(up[0].value[1], '1');
      const reqs = await waitFor(
        async () => {
          const res = await query('sum(isomodel_requests_total{model="revcomp",status="success"})');
          return res.length ? res : null;
        },
        15_000,
        250,
      );
      assert.equal(Number(reqs[0].value[1]), 10);
    });
  });
});

describe('request-path metric values for single, batch and job traffic', () => {
  // Sums over every series that matches, so a label added later (a job's `source`, say) splits
  // series without changing these totals. API traffic is what carries no source (or source="api").
  let h: Harness;
  let samples: Sample[] = [];
  const scrape = async (): Promise<void> => {
    const r = await request<string>(`${h.url}/metrics/prometheus`, 'GET');
    assert.equal(r.status, 200);
    samples = parseExposition(r.body);
  };
  const api = (l: Record<string, string>): boolean => l.source === undefined || l.source === 'api';
  const sum = (
    name: string,
    match: Record<string, string> = {},
    keep: (l: Record<string, string>) => boolean = () => true,
  ): number =>
    samples
      .filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v) && keep(s.labels))
      .reduce((a, s) => a + s.value, 0);
  const revcomp = { model: 'revcomp', version: '1.0.0' };
  const task = { ...revcomp, task: 'reverse_complement' };
  /** The request-path figures for revcomp now. */
  const figures = () => ({
    apiRequestsOk: sum('isomodel_requests_total', { ...task, status: 'success', code: 'OK' }, api),
    apiRequestsInvalid: sum('isomodel_requests_total', { ...task, status: 'error', code: 'INVALID_SEQUENCE' }, api),
    apiSequences: sum('isomodel_sequences_total', task, api),
    requestDurationCount: sum('isomodel_request_duration_seconds_count', task),
    requestDurationInf: sum('isomodel_request_duration_seconds_bucket', { ...task, le: '+Inf' }),
    queueCount: sum('isomodel_queue_duration_seconds_count', revcomp),
    batchItems: sum('isomodel_batch_size_sum', revcomp),
    batches: sum('isomodel_batch_size_count', revcomp),
    computeCount: sum('isomodel_compute_duration_seconds_count', revcomp),
  });
  let before0: ReturnType<typeof figures>;

  before(async () => {
    h = await startGateway(['revcomp']);
    await scrape();
    before0 = figures();
  });
  after(async () => h.close());

  const delta = (from: ReturnType<typeof figures>, to: ReturnType<typeof figures>): Record<string, number> =>
    Object.fromEntries(Object.entries(to).map(([k, v]) => [k, v - from[k as keyof typeof from]]));

  it('starts at zero', () => {
    assert.deepEqual(Object.values(before0), Array(9).fill(0));
  });

  it('single requests: one request, one sequence, one latency and one queue wait each', async () => {
    await scrape();
    const start = figures();
    for (const s of ['ACGTAC', 'GGATCC', 'TTTAAA'])
      assert.equal((await h.post('/models/revcomp/predict', { sequence: s })).status, 200);
    await scrape();
    const d = delta(start, figures());
    assert.deepEqual(
      { ...d, batches: undefined, computeCount: undefined },
      {
        apiRequestsOk: 3,
        apiRequestsInvalid: 0,
        apiSequences: 3,
        requestDurationCount: 3,
        requestDurationInf: 3,
        queueCount: 3,
        batchItems: 3,
        batches: undefined,
        computeCount: undefined,
      },
    );
    assert.ok(d.batches! >= 1 && d.batches! <= 3, `${d.batches} worker batches`);
    assert.equal(d.computeCount, d.batches, 'one compute time per worker batch');
    assert.ok(sum('isomodel_request_duration_seconds_sum', task) > 0);
    assert.ok(sum('isomodel_compute_duration_seconds_sum', revcomp) > 0);
  });

  it('batch requests: one request each, but every sequence counted', async () => {
    await scrape();
    const start = figures();
    const a = await h.post('/models/revcomp/predict/batch', { sequences: ['AAAC', 'AAAG', 'AAAT', 'AACA'] });
    const b = await h.post('/models/revcomp/predict/batch', { sequences: ['CCCA', 'CCCG', 'CCCT'] });
    assert.deepEqual([a.status, a.body.data.total_sequences, b.status, b.body.data.total_sequences], [200, 4, 200, 3]);
    await scrape();
    const d = delta(start, figures());
    assert.equal(d.apiRequestsOk, 2, 'requests are requests');
    assert.equal(d.apiSequences, 7, 'sequences are sequences: 4 + 3');
    assert.equal(d.requestDurationCount, 2);
    assert.equal(d.queueCount, 2, 'one queue wait per request (its first item)');
    assert.equal(d.batchItems, 7, 'every item went through a worker batch');
    assert.equal(d.computeCount, d.batches);
    assert.ok(d.batches! >= 2, 'two requests sent one after the other are two batches at least');
    // Histogram buckets of the batch size are cumulative and end at the count.
    assert.equal(
      sum('isomodel_batch_size_bucket', { ...revcomp, le: '+Inf' }),
      sum('isomodel_batch_size_count', revcomp),
    );
    assert.ok(
      sum('isomodel_batch_size_bucket', { ...revcomp, le: '4' }) >=
        sum('isomodel_batch_size_bucket', { ...revcomp, le: '2' }),
    );
  });

  it('a refused request counts as an error under its code, with no sequences, latency or batch', async () => {
    await scrape();
    const start = figures();
    assert.equal((await h.post('/models/revcomp/predict', { sequence: 'ACGTZ' })).status, 400);
    assert.equal((await h.post('/models/revcomp/predict/batch', { sequences: ['ACGT', 'ACG1'] })).status, 400);
    await scrape();
    assert.deepEqual(delta(start, figures()), {
      apiRequestsOk: 0,
      apiRequestsInvalid: 2,
      apiSequences: 0,
      requestDurationCount: 0,
      requestDurationInf: 0,
      queueCount: 0,
      batchItems: 0,
      batches: 0,
      computeCount: 0,
    });
  });

  it('job traffic: its records go through worker batches and queue waits, not the API latency', async () => {
    await scrape();
    const start = figures();
    const seqs = ['GATTAC', 'GATTAG', 'GATTCA', 'GATTCC', 'GATTCG', 'GATTCT'];
    const r = await h.post('/v1/jobs', { model: 'revcomp', sequences: seqs, chunk_size: 2 });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    const job = await waitFor(async () => {
      const j = (await h.get(`/v1/jobs/${r.body.data.id}`)).body.data;
      return ['succeeded', 'failed', 'cancelled'].includes(j.status) ? j : null;
    }, 60_000);
    assert.deepEqual([job.status, job.successful], ['succeeded', 6]);
    await scrape();
    const d = delta(start, figures());
    assert.equal(d.batchItems, 6, 'six records through the workers');
    assert.equal(d.queueCount, 3, 'three chunks of two: three model calls, each waited in the queue once');
    assert.equal(d.computeCount, d.batches);
    // Chunks run concurrently: the deployment may merge them into fewer worker batches.
    assert.ok(d.batches! >= 1 && d.batches! <= 3, `${d.batches} worker batches`);
    // The API's own series do not move: a job's records are not API requests.
    assert.deepEqual([d.apiRequestsOk, d.apiSequences, d.apiRequestsInvalid, d.requestDurationCount], [0, 0, 0, 0]);
  });
});
