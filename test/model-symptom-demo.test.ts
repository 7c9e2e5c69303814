// models/symptom-demo through a real gateway and its Python worker: seed 002's request shape is
// taken and answered with facts about the input only (which listed words it recognises, their
// categories, the age band), labelled a demonstration; input failing the schema in model.yaml is
// refused by the gateway with INVALID_INPUT naming the path, before the model sees it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startGateway, type Harness } from './helpers.js';

describe('symptom-demo model (json input demonstration)', () => {
  let h: Harness;
  const predict = (input: unknown) => h.post('/models/symptom-demo/predict', { input });

  before(async () => {
    h = await startGateway(['symptom-demo']);
    assert.equal(h.gw.registry.status('symptom-demo'), 'ready', h.gw.registry.lastError('symptom-demo') ?? '');
  });
  after(async () => h.close());

  it("seed 002's example: three symptoms recognised, categories, age band; labelled a demonstration", async () => {
    const r = await predict({ symptoms: ['头痛', '乏力', '食欲不振'], patient_info: { age: 35, gender: 'female' } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const d = r.body.data;
    assert.equal(d.demonstration, true);
    assert.match(d.note, /demonstration.*not medicine/);
    assert.deepEqual(
      d.recognised.map((x: any) => [x.input, x.symptom, x.category, x.language]),
      [
        ['头痛', 'headache', 'head', 'zh'],
        ['乏力', 'fatigue', 'general', 'zh'],
        ['食欲不振', 'loss of appetite', 'digestive', 'zh'],
      ],
    );
    assert.deepEqual(
      [d.symptom_count, d.unrecognised, d.duplicates, d.categories],
      [3, [], [], { digestive: 1, general: 1, head: 1 }],
    );
    assert.deepEqual(d.patient, { age: 35, age_band: 'adult', gender: 'female' });
    assert.equal(
      d.summary,
      '3 symptoms given, 3 recognised (headache, fatigue, loss of appetite); age 35 (adult); female',
    );
    assert.equal(d.input_type, 'json');
    assert.equal(d.task_type, 'summarise');
    // No score of any kind: nothing here is a probability or a diagnosis.
    assert.equal(d.confidence, undefined);
    assert.equal(d.prediction, undefined);
  });

  it('English and Chinese spellings, case and full-width forms match; unknown and repeated words are listed', async () => {
    const r = await predict({
      symptoms: ['  Headache ', '头疼', 'ＦＥＶＥＲ', 'broken heart', 'cough', 'Coughing'],
      patient_info: { age: 70 },
    });
    const d = r.body.data;
    assert.deepEqual(
      d.recognised.map((x: any) => x.symptom),
      ['headache', 'fever', 'cough'],
    );
    assert.deepEqual(d.duplicates, ['头疼', 'Coughing']);
    assert.deepEqual(d.unrecognised, ['broken heart']);
    assert.deepEqual(d.patient, { age: 70, age_band: 'older adult', gender: null });
    // Batch (seed 002's batch_inference shape: two requests).
    const b = await h.post('/models/symptom-demo/predict/batch', {
      inputs: [{ symptoms: ['头痛', '乏力'] }, { symptoms: ['失眠', '焦虑'] }],
    });
    assert.deepEqual(
      b.body.data.predictions.map((p: any) => p.recognised.map((x: any) => x.symptom)),
      [
        ['headache', 'fatigue'],
        ['insomnia', 'anxiety'],
      ],
    );
    assert.deepEqual(b.body.data.predictions[0].patient, { age: null, age_band: null, gender: null });
  });

  it('input failing the schema: 400 INVALID_INPUT saying where; over max_bytes: 413', async () => {
    const cases: [unknown, RegExp][] = [
      [{ patient_info: { age: 35 } }, /missing the required property "symptoms"/],
      [{ symptoms: [] }, /\/symptoms must NOT have fewer than 1 items/],
      [{ symptoms: 'headache' }, /\/symptoms must be array/],
      [{ symptoms: ['headache', 42] }, /\/symptoms\/1 must be string/],
      [{ symptoms: [''] }, /\/symptoms\/0 must NOT have fewer than 1 characters/],
      [{ symptoms: ['x'], patient_info: { age: 35.5 } }, /\/patient_info\/age must be integer/],
      [{ symptoms: ['x'], patient_info: { age: 151 } }, /\/patient_info\/age must be <= 150/],
      [{ symptoms: ['x'], patient_info: { gender: 'f' } }, /\/patient_info\/gender must be one of/],
      [{ symptoms: ['x'], patient_info: { age: 3, weight: 12 } }, /"weight", which the schema does not allow/],
      [{ symptoms: ['x'], diagnosis: 'flu' }, /"diagnosis", which the schema does not allow/],
      [{ symptoms: Array.from({ length: 51 }, (_, i) => `s${i}`) }, /\/symptoms must NOT have more than 50 items/],
      [['头痛'], /must be object/],
    ];
    for (const [input, message] of cases) {
      const r = await predict(input);
      assert.deepEqual([r.status, r.body.error?.code], [400, 'INVALID_INPUT'], JSON.stringify(input));
      assert.match(r.body.message, message, JSON.stringify(input));
    }
    const big = await predict({
      symptoms: Array.from({ length: 50 }, () => 'x'.repeat(100)),
      patient_info: { age: 1 },
    });
    assert.equal(big.status, 200, 'just under the limit');
    const over = await h.post('/models/symptom-demo/predict', {
      input: { symptoms: Array.from({ length: 50 }, () => '🧬'.repeat(100)) },
    });
    assert.deepEqual([over.status, over.body.error.code], [413, 'PAYLOAD_TOO_LARGE']);
    // A JSON task does not take a bare string as `sequence`.
    const seq = await h.post('/models/symptom-demo/predict', { sequence: '头痛' });
    assert.deepEqual([seq.status, seq.body.error.code], [400, 'INVALID_REQUEST']);
  });
});
