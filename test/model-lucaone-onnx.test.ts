// lucaone-onnx against its Python twin through one real gateway: a tiny RANDOM LucaOne checkpoint
// in the real layout, with a LucaOneTasks classification head (models/lucaone/tools/
// make_tiny_checkpoint.py), is served by the lucaone adapter and, exported by
// models/lucaone/tools/export_onnx.py, by the ONNX package; every answer must be the same
// (DNA/RNA/protein embeddings, both poolings, the head, batches, truncation, errors).
// Skips only when /usr/bin/python3 has no torch.
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BUILTIN_MODELS_DIR } from '../src/paths.js';
import { startGateway, workerTmpDir, type Harness } from './helpers.js';
import { Agreement, runPythonBatch, torchProblem } from './twin-compare.js';

const TOOLS = join(BUILTIN_MODELS_DIR, 'lucaone', 'tools');
const RTOL = 1e-4;
const HIDDEN = 32;
const MAX_POSITIONS = 64;
const DNA = 'ATGCGTACGTTAGCNA';
const RNA = 'AUGCGUACGUUAGCNA';
const PROTEIN = 'MKTLLILTAVVLLQW';
const SEQS = [DNA, RNA, PROTEIN, 'GGAUCC', 'ACGTRYKM', 'MSTNPKPQRKTKRNTNRRPQDVKFPGG'];
const NO_TORCH = torchProblem();

describe('lucaone-onnx without an export', () => {
  let h: Harness;
  before(async () => {
    h = await startGateway(['lucaone-onnx'], {
      model_env: { 'lucaone-onnx': { LUCAONE_ONNX_PATH: '/nonexistent/lucaone-onnx' } },
    });
  });
  after(async () => h?.close());

  it('answers 503 MODEL_NOT_LOADED naming the path, the variable and the export tool', async () => {
    for (const task of ['embedding', 'classification']) {
      const r = await h.post('/models/lucaone-onnx/predict', { sequence: 'ACGTACGT', task_type: task });
      assert.equal(r.status, 503, JSON.stringify(r.body));
      assert.equal(r.body.error.code, 'MODEL_NOT_LOADED');
      assert.match(r.body.message, /LucaOne ONNX export not found/);
      assert.match(r.body.message, /\/nonexistent\/lucaone-onnx/);
      assert.match(r.body.message, /LUCAONE_ONNX_PATH/);
      assert.match(r.body.message, /export_onnx\.py/);
    }
    assert.equal((await h.get('/health/ready')).status, 200);
  });
});

describe('lucaone-onnx equals lucaone on a tiny random checkpoint', { skip: NO_TORCH ?? false }, () => {
  let weights: string;
  let onnxDir: string;
  let h: Harness;
  const agree = new Agreement(RTOL);

  const both = (path: 'predict' | 'predict/batch', body: Record<string, unknown>) =>
    agree.both(h, { py: 'lucaone', onnx: 'lucaone-onnx' }, path, body);

  before(async () => {
    const root = workerTmpDir('isomodel-lucaone-onnx-');
    weights = join(root, 'weights');
    onnxDir = join(root, 'onnx');
    runPythonBatch([
      [
        join(TOOLS, 'make_tiny_checkpoint.py'),
        'make',
        weights,
        '--hidden',
        String(HIDDEN),
        '--head',
        'classification',
        // LucaOne's 4096 positions make a truncation test cost ~15 s of CPU; the cap is read from
        // the checkpoint's config by both twins, so a small one tests the same code.
        '--max-positions',
        String(MAX_POSITIONS),
      ],
      [join(TOOLS, 'export_onnx.py'), weights, onnxDir],
    ]);
    h = await startGateway(['lucaone', 'lucaone-onnx'], {
      model_env: {
        lucaone: { LUCAONE_MODEL_PATH: weights, LUCAONE_NUM_THREADS: '1' },
        'lucaone-onnx': { LUCAONE_ONNX_PATH: onnxDir },
      },
    });
  });
  after(async () => {
    await h?.close();
    if (weights) rmSync(join(weights, '..'), { recursive: true, force: true });
  });

  it('the export carries the alphabet and the head; both models load', async () => {
    const info = JSON.parse(readFileSync(join(onnxDir, 'isomodel_onnx.json'), 'utf8'));
    assert.deepEqual(info.outputs, ['last_hidden_state', 'classification_logits']);
    assert.deepEqual(info.heads.classification.labels, ['enzyme', 'transporter', 'other']);
    assert.equal(info.tokens.length, 39);
    const d = await h.get('/health/detailed');
    for (const name of ['lucaone', 'lucaone-onnx'])
      assert.equal(d.body.data.models.find((x: any) => x.name === name).status, 'ready', name);
  });

  it('DNA, RNA and protein embeddings are equal, [CLS] and mean pooling', async (t) => {
    for (const seq of SEQS) {
      for (const options of [{}, { pooling: 'mean' }]) {
        const { onnx } = await both('predict', { sequence: seq, task_type: 'embedding', options });
        assert.equal(onnx.dimension, HIDDEN);
        assert.equal(onnx.tokens, seq.length + 2);
      }
    }
    const [dna, rna] = await Promise.all([
      h.post('/models/lucaone-onnx/predict', { sequence: DNA, task_type: 'embedding' }),
      h.post('/models/lucaone-onnx/predict', { sequence: RNA, task_type: 'embedding' }),
    ]);
    assert.deepEqual(rna.body.data.embedding, dna.body.data.embedding, 'U is the token of T');
    t.diagnostic(`embeddings: ${agree}`);
  });

  it('seq_type overrides and their refusals are the same', async () => {
    const asProtein = await both('predict', {
      sequence: 'ACGTACGT',
      task_type: 'embedding',
      options: { seq_type: 'protein' },
    });
    assert.equal(asProtein.onnx.token_type_id, 1);
    await both('predict', {
      sequence: 'ACGTACGT',
      task_type: 'embedding',
      options: { seq_type: 'rna', pooling: 'mean' },
    });
    for (const [sequence, options] of [
      ['ACGT', { seq_type: 'lipid' }],
      [PROTEIN, { seq_type: 'gene' }],
      [DNA, { embedding_dimension: 768 }],
      [DNA, { pooling: 'max' }],
      [DNA, { trunc_type: 'middle' }],
    ] as const) {
      const r = await both('predict', { sequence, task_type: 'embedding', options });
      assert.equal(r.status, 400, JSON.stringify(options));
      assert.equal(r.onnx.message, r.py.message);
    }
    await both('predict', { sequence: DNA, task_type: 'embedding', options: { embedding_dimension: HIDDEN } });
  });

  it('the LucaOneTasks head gives the same class probabilities', async (t) => {
    for (const seq of SEQS) {
      const { onnx } = await both('predict', { sequence: seq, task_type: 'classification' });
      assert.deepEqual(Object.keys(onnx.probabilities), ['enzyme', 'transporter', 'other']);
      assert.equal(onnx.output_mode, 'multi_class');
    }
    await both('predict/batch', { sequences: SEQS, task_type: 'classification' });
    const pooled = await both('predict', {
      sequence: PROTEIN,
      task_type: 'classification',
      options: { pooling: 'mean' },
    });
    assert.equal(pooled.status, 400);
    assert.equal(pooled.onnx.message, pooled.py.message);
    t.diagnostic(`with the head: ${agree}`);
  });

  it('a task without an exported head answers MODEL_NOT_LOADED on both', async () => {
    const { status, onnx } = await both('predict', { sequence: PROTEIN, task_type: 'property_prediction' });
    assert.equal(status, 503);
    assert.equal(onnx.error.code, 'MODEL_NOT_LOADED');
    assert.match(onnx.message, /fine-tuned LucaOneTasks head/);
    assert.match(onnx.message, /heads\/property_prediction/);
  });

  it('a padded batch of mixed kinds and lengths answers as one by one, and as the Python batch', async () => {
    for (const options of [{}, { pooling: 'mean' }]) {
      const { onnx } = await both('predict/batch', { sequences: SEQS, task_type: 'embedding', options });
      for (const [i, seq] of SEQS.entries()) {
        const single = await h.post('/models/lucaone-onnx/predict', { sequence: seq, task_type: 'embedding', options });
        const alone = single.body.data;
        agree.same(alone.embedding, onnx.predictions[i].embedding, `batch item ${i} vs single`);
        for (const k of ['seq_type', 'token_type_id', 'tokens', 'truncated'])
          assert.equal(onnx.predictions[i][k], alone[k], `${k} of item ${i}`);
      }
    }
  });

  it('truncates over-long inputs as the adapter does, from either end', async (t) => {
    const long = Array.from({ length: MAX_POSITIONS + 4 }, (_, i) => 'ACGT'[(i * 5 + (i >> 2)) % 4]).join('');
    for (const trunc_type of ['right', 'left']) {
      const { py, onnx } = await both('predict', {
        sequence: long,
        task_type: 'embedding',
        options: { trunc_type, pooling: 'mean' },
      });
      assert.equal(py.truncated, true);
      assert.equal(onnx.tokens, MAX_POSITIONS);
    }
    t.diagnostic(`all comparisons: ${agree}`);
  });
});
