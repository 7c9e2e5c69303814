// Jobs and pipelines are work (issue 23): each model call they make counts as a request and its
// records as sequences, labelled by source, in the JSON metrics, Prometheus, the monitor the
// console reads, and reports; API traffic keeps its series and latency figures as they were.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startGateway, waitFor, type Harness } from './helpers.js';

const JOB_SEQS = ['ACGTAC', 'GGCATT', 'TTGACA', 'CCGTAA'];
const PIPE_SEQS = ['ACGTACGTAA', 'GGCCGGCCAT', 'TATAATGCGC'];

async function finished(h: Harness, id: string): Promise<any> {
  return waitFor(
    async () => {
      const j = (await h.get(`/v1/jobs/${id}`)).body.data;
      return ['succeeded', 'failed', 'cancelled'].includes(j.status) ? j : null;
    },
    60_000,
    50,
  );
}

describe('jobs and pipelines count as work', { timeout: 120_000 }, () => {
  let h: Harness;
  let prom: string;

  before(async () => {
    h = await startGateway(['revcomp', 'gc-scanner'], { monitor: { interval_ms: 100 } });
    // One API request, one batch job (chunks of 2: two model calls), one pipeline job (a call per step).
    assert.equal((await h.post('/models/revcomp/predict', { sequence: 'ACGT' })).status, 200);
    const job = await h.post('/v1/jobs', { model: 'revcomp', sequences: JOB_SEQS, chunk_size: 2 });
    assert.equal(job.status, 202, JSON.stringify(job.body));
    assert.equal((await finished(h, job.body.data.id)).status, 'succeeded');
    const pipeline = {
      name: 'rc-gc',
      steps: [
        { name: 'rc', model: 'revcomp', task: 'reverse_complement' },
        { name: 'gc', model: 'gc-scanner', task: 'gc_content', sequence: 'rc.reverse_complement' },
      ],
    };
    const pj = await h.post('/v1/jobs', { pipeline, sequences: PIPE_SEQS, chunk_size: 10 });
    assert.equal(pj.status, 202, JSON.stringify(pj.body));
    assert.equal((await finished(h, pj.body.data.id)).status, 'succeeded');
    prom = String((await h.get('/metrics/prometheus')).body);
  });
  after(async () => h?.close());

  it("JSON /metrics: totals include them, by_source splits them, latency stays the API's", async () => {
    const m = (await h.get('/models/revcomp/metrics')).body.data.model_metrics;
    assert.deepEqual(m.by_source, {
      api: { requests: 1, successful: 1, failed: 0, sequences: 1 },
      job: { requests: 2, successful: 2, failed: 0, sequences: 4 },
      pipeline: { requests: 1, successful: 1, failed: 0, sequences: 3 },
    });
    assert.equal(m.total_requests, 4);
    assert.equal(m.total_sequences, 8);
    assert.equal(m.batches >= 4, true);
    const gc = (await h.get('/models/gc-scanner/metrics')).body.data.model_metrics;
    assert.deepEqual(gc.by_source.pipeline, { requests: 1, successful: 1, failed: 0, sequences: 3 });
    assert.equal(gc.by_source.api.requests, 0);
    assert.equal(gc.average_response_time, null, 'no API request: no response time');
  });

  it('Prometheus: the same metric names, a source label on job and pipeline series, API series unchanged', () => {
    assert.match(
      prom,
      /^isomodel_requests_total\{model="revcomp",version="1\.0\.0",task="reverse_complement",status="success",code="OK"\} 1$/m,
    );
    assert.match(
      prom,
      /^isomodel_requests_total\{model="revcomp",version="1\.0\.0",task="reverse_complement",status="success",code="OK",source="job"\} 2$/m,
    );
    assert.match(
      prom,
      /^isomodel_requests_total\{model="revcomp",version="1\.0\.0",task="reverse_complement",status="success",code="OK",source="pipeline"\} 1$/m,
    );
    assert.match(
      prom,
      /^isomodel_sequences_total\{model="revcomp",version="1\.0\.0",task="reverse_complement",source="job"\} 4$/m,
    );
    assert.match(
      prom,
      /^isomodel_sequences_total\{model="gc-scanner",version="1\.0\.0",task="gc_content",source="pipeline"\} 3$/m,
    );
    assert.match(prom, /^isomodel_sequences_total\{model="revcomp",version="1\.0\.0",task="reverse_complement"\} 1$/m);
    // The latency histogram is the API's alone.
    assert.match(
      prom,
      /^isomodel_request_duration_seconds_count\{model="revcomp",version="1\.0\.0",task="reverse_complement"\} 1$/m,
    );
    assert.doesNotMatch(prom, /isomodel_request_duration_seconds_count\{[^}]*source=/);
  });

  it('the monitor (what the console shows) counts them per model and in its summary', async () => {
    const m = (await h.get('/v1/monitor/metrics/revcomp')).body.data;
    assert.equal(m.requests.total, 4);
    assert.equal(m.requests.by_source.job.sequences, 4);
    const s = (await h.get('/v1/monitor/summary')).body.data;
    assert.deepEqual(s.totals.requests_by_source, {
      api: { requests: 1, sequences: 1 },
      job: { requests: 2, sequences: 4 },
      pipeline: { requests: 2, sequences: 6 },
    });
  });

  it('reports count them by source, and keep latency figures to API requests', async () => {
    const r = (await h.get('/v1/reports/revcomp?window=1h')).body.data;
    assert.equal(r.totals.requests, 4);
    assert.deepEqual(r.totals.by_source.job, { requests: 2, successful: 2, failed: 0, sequences: 4 });
    assert.deepEqual(r.totals.by_source.pipeline, { requests: 1, successful: 1, failed: 0, sequences: 3 });
    assert.equal(r.totals.latency_ms.count, 1);
    assert.equal(
      r.histogram.reduce((n: number, b: { count: number }) => n + b.count, 0),
      1,
    );
    const html = String((await h.get('/v1/reports/revcomp?window=1h&format=html')).body);
    assert.match(html, /<h2>By source<\/h2>/);
    assert.match(html, /<td>job<\/td><td class="num">2<\/td><td class="num">0<\/td><td class="num">4<\/td>/);
  });
});
