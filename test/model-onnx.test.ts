// The ONNX models (splice, promoter) through the gateway and onnxruntime-node: outputs equal
// the training-time reference vectors, batching does not change them, lengths are enforced.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BUILTIN_MODELS_DIR } from '../src/paths.js';
import { startGateway, type Harness } from './helpers.js';

interface Vectors {
  classes: string[];
  tolerance: number;
  cases: { sequence: string; probabilities: number[] }[];
}
const vectors = (model: string): Vectors =>
  JSON.parse(readFileSync(join(BUILTIN_MODELS_DIR, model, 'test_vectors.json'), 'utf8')) as Vectors;

describe('ONNX models', () => {
  let h: Harness;
  before(async () => {
    h = await startGateway(['splice', 'promoter']);
  });
  after(async () => h.close());

  it('splice: every reference vector, single and batched', async () => {
    const v = vectors('splice');
    const batch = await h.post('/models/splice/predict/batch', { sequences: v.cases.map((c) => c.sequence) });
    assert.equal(batch.status, 200, JSON.stringify(batch.body));
    for (const [i, c] of v.cases.entries()) {
      const single = await h.post('/models/splice/predict', { sequence: c.sequence });
      for (const out of [single.body.data, batch.body.data.predictions[i]]) {
        v.classes.forEach((cls, k) =>
          assert.ok(
            Math.abs(out.probabilities[cls] - c.probabilities[k]!) < v.tolerance,
            `${cls}: ${out.probabilities[cls]} vs ${c.probabilities[k]}`,
          ),
        );
        const best = v.classes[c.probabilities.indexOf(Math.max(...c.probabilities))];
        assert.equal(out.prediction, best);
        assert.equal(out.confidence, out.probabilities[best!]);
      }
    }
  });

  it('promoter: every reference vector, with the native response shape', async () => {
    const v = vectors('promoter');
    for (const c of v.cases) {
      const r = await h.post('/models/promoter/predict', { sequence: c.sequence, task_type: 'promoter_prediction' });
      assert.equal(r.status, 200);
      const p = c.probabilities[1]!;
      assert.ok(Math.abs(r.body.data.prediction - p) < v.tolerance);
      assert.ok(Math.abs(r.body.data.confidence - Math.max(p, 1 - p)) < v.tolerance);
      assert.equal(r.body.data.details.class, p >= 0.5 ? 'promoter' : 'non_promoter');
    }
    const noConf = await h.post('/models/promoter/predict', {
      sequence: v.cases[0]!.sequence,
      options: { return_confidence: false },
    });
    assert.ok(!('confidence' in noConf.body.data));
  });

  it('concurrent single requests are batched and answered exactly as alone', async () => {
    const v = vectors('splice');
    const seqs = Array.from({ length: 48 }, (_, i) => v.cases[i % v.cases.length]!);
    const res = await Promise.all(seqs.map((c) => h.post('/models/splice/predict', { sequence: c.sequence })));
    res.forEach((r, i) => {
      assert.equal(r.status, 200);
      v.classes.forEach((cls, k) =>
        assert.ok(Math.abs(r.body.data.probabilities[cls] - seqs[i]!.probabilities[k]!) < v.tolerance),
      );
    });
    const m = await h.get('/models/splice/metrics');
    assert.ok(m.body.data.model_metrics.average_batch_size > 1, 'the ONNX session saw real batches');
  });

  it('enforces the fixed input length', async () => {
    const short = await h.post('/models/splice/predict', { sequence: 'ACGT'.repeat(10) });
    assert.equal(short.status, 400);
    assert.equal(short.body.error.code, 'INVALID_SEQUENCE');
    assert.match(short.body.message, /at least 60/);
    const long = await h.post('/models/promoter/predict', { sequence: 'A'.repeat(58) });
    assert.equal(long.body.error.code, 'SEQUENCE_TOO_LONG');
  });
});
