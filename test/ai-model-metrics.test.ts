// Seed 002's metric names (issue 23): ai_model_* series beside isomodel_*, the same values under
// the documented mapping (src/telemetry/ai-model-metrics.ts, docs/monitoring.md), valid for
// promtool; one config switch turns them off. Through a real gateway's /metrics/prometheus.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { AI_MODEL_ALIASES } from '../src/telemetry/ai-model-metrics.js';
import { startGateway, type Harness } from './helpers.js';

function promtool(text: string): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const p = execFile('promtool', ['check', 'metrics'], (err, stdout, stderr) => {
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT')
        reject(new Error('promtool not found: apt-get install prometheus'));
      else resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr });
    });
    p.stdin!.end(text);
  });
}

/** The samples of a scrape: "name{labels}" → value. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([a-z_:][\w:]*(?:\{[^}]*\})?) (\S+)$/i.exec(line);
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

describe('ai_model_* metric names', { timeout: 120_000 }, () => {
  let h: Harness;
  let text: string;

  before(async () => {
    h = await startGateway(['revcomp']);
    assert.equal((await h.post('/models/revcomp/predict', { sequence: 'ACGT' })).status, 200);
    assert.equal((await h.post('/models/revcomp/predict/batch', { sequences: ['ACGT', 'GGCC'] })).status, 200);
    assert.equal(
      (await h.post('/models/revcomp/predict/batch', { sequences: ['ACGT', 'NOT A SEQUENCE!'] })).status,
      400,
    );
    assert.equal(
      (
        await h.post('/api/v1/models/revcomp/batch_inference', {
          requests: [{ input_data: 'ACGT' }, { input_data: 'TTGA' }],
        })
      ).status,
      200,
    );
    text = String((await h.get('/metrics/prometheus')).body);
  });
  after(async () => h?.close());

  it('has every seed-002 name, with the values of its isomodel source', () => {
    const s = samples(text);
    for (const a of AI_MODEL_ALIASES) assert.match(text, new RegExp(`^# TYPE ${a.name} ${a.type}$`, 'm'), a.name);
    const pairs: [string, string][] = [
      [
        'ai_model_inference_requests_total{model="revcomp",version="1.0.0",task="reverse_complement",status="success",code="OK"}',
        'isomodel_requests_total{model="revcomp",version="1.0.0",task="reverse_complement",status="success",code="OK"}',
      ],
      [
        'ai_model_inference_duration_seconds_count{model="revcomp",version="1.0.0",task="reverse_complement"}',
        'isomodel_request_duration_seconds_count{model="revcomp",version="1.0.0",task="reverse_complement"}',
      ],
      [
        'ai_model_inference_duration_seconds_bucket{le="+Inf",model="revcomp",version="1.0.0",task="reverse_complement"}',
        'isomodel_request_duration_seconds_bucket{le="+Inf",model="revcomp",version="1.0.0",task="reverse_complement"}',
      ],
      ['ai_model_health_status{model="revcomp",version="1.0.0"}', 'isomodel_model_up{model="revcomp",version="1.0.0"}'],
      [
        'ai_model_deployments_total{model="revcomp",version="1.0.0"}',
        'isomodel_deployments_total{model="revcomp",version="1.0.0"}',
      ],
      [
        'ai_model_batch_inference_requests_total{model="revcomp",version="1.0.0",status="success"}',
        'isomodel_batch_requests_total{model="revcomp",version="1.0.0",status="success"}',
      ],
      [
        'ai_model_batch_inference_requests_total{model="revcomp",version="1.0.0",status="error"}',
        'isomodel_batch_requests_total{model="revcomp",version="1.0.0",status="error"}',
      ],
    ];
    for (const [alias, source] of pairs) {
      assert.ok(s.has(source), `${source} in\n${text.slice(0, 3000)}`);
      assert.equal(s.get(alias), s.get(source), alias);
    }
    // What the requests above were: 3 successful requests (one single, two batches), 2 of them batch requests, 1 failed batch.
    assert.equal(s.get(pairs[0]![0]), 3);
    assert.equal(s.get(pairs[5]![0]), 2);
    assert.equal(s.get(pairs[6]![0]), 1);
    assert.equal(s.get(pairs[3]![0]), 1);
    assert.equal(s.get(pairs[4]![0]), 1);
  });

  it('folds the worker CPU and memory gauges into ai_model_resource_usage by resource', () => {
    const mem = [...samples(text)].filter(
      ([k]) => k.startsWith('ai_model_resource_usage{') && k.includes('resource="memory_bytes"'),
    );
    const src = [...samples(text)].filter(([k]) => k.startsWith('isomodel_worker_resident_memory_bytes{'));
    assert.equal(mem.length, src.length);
    assert.ok(mem.length >= 1);
    assert.match(
      text,
      /^ai_model_resource_usage\{model="revcomp",version="1\.0\.0",replica="[^"]+",resource="cpu_ratio"\} /m,
    );
  });

  it('passes promtool', async () => {
    const { code, out } = await promtool(text);
    assert.equal(code, 0, out);
  });

  it('are off with prometheus_ai_model_names: false', async () => {
    const off = await startGateway(['revcomp'], { prometheus_ai_model_names: false });
    try {
      const t = String((await off.get('/metrics/prometheus')).body);
      assert.match(t, /^isomodel_requests_total|^# TYPE isomodel_requests_total/m);
      assert.doesNotMatch(t, /ai_model_/);
    } finally {
      await off.close();
    }
  });
});
