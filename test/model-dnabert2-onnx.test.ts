// dnabert2-onnx against its Python twin through one real gateway: a tiny RANDOM DNABERT-2
// checkpoint (models/dnabert2/tools/make_tiny_checkpoint.py) is served by the dnabert2 adapter
// and, exported by models/dnabert2/tools/export_onnx.py, by the ONNX package; every answer must
// be the same (tokens, every pooling, promoter probabilities, batches, truncation, errors).
// Skips only when /usr/bin/python3 has no torch.
import assert from 'node:assert/strict';
import { cpSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BUILTIN_MODELS_DIR } from '../src/paths.js';
import { startGateway, workerTmpDir, type Harness } from './helpers.js';
import { Agreement, answer, runPythonBatch, torchProblem } from './twin-compare.js';

const TOOLS = join(BUILTIN_MODELS_DIR, 'dnabert2', 'tools');
const RTOL = 1e-4;
// N is outside the tiny vocabulary ([UNK]); the last one is over 512 tokens (the tiny config's cap).
const SEQS = ['ACGTTATAATGGGCGGNNACGT', 'TTGACAATTATAATGCCAATACGT', 'GATTACA'.repeat(12), 'A', 'CCAATGGGCGGTATAAT'];
const LONG = Array.from({ length: 5000 }, (_, i) => 'ACGT'[(i * 7 + (i >> 3)) % 4]).join('');
const NO_TORCH = torchProblem();

function envFor(
  ckpt: string,
  onnx: string,
  extra: Record<string, string> = {},
): { model_env: Record<string, Record<string, string>> } {
  return {
    model_env: {
      dnabert2: { DNABERT2_MODEL_PATH: ckpt, DNABERT2_TORCH_THREADS: '1', ...extra },
      'dnabert2-onnx': { DNABERT2_ONNX_PATH: onnx, ...extra },
    },
  };
}

describe('dnabert2-onnx without an export', () => {
  let h: Harness;
  before(async () => {
    h = await startGateway(['dnabert2-onnx'], {
      model_env: { 'dnabert2-onnx': { DNABERT2_ONNX_PATH: '/nonexistent/dnabert2-onnx' } },
    });
  });
  after(async () => h?.close());

  it('answers 503 MODEL_NOT_LOADED naming the path, the variable and the export tool', async () => {
    for (const task of ['embedding', 'promoter_prediction']) {
      const r = await h.post('/models/dnabert2-onnx/predict', { sequence: 'ACGTACGT', task_type: task });
      assert.equal(r.status, 503, JSON.stringify(r.body));
      assert.equal(r.body.error.code, 'MODEL_NOT_LOADED');
      assert.match(r.body.message, /DNABERT-2 ONNX export not found/);
      assert.match(r.body.message, /\/nonexistent\/dnabert2-onnx/);
      assert.match(r.body.message, /DNABERT2_ONNX_PATH/);
      assert.match(r.body.message, /export_onnx\.py/);
    }
  });

  it('does not hold /health/ready hostage (required: false)', async () => {
    assert.equal((await h.get('/health/ready')).status, 200);
    const d = await h.get('/health/detailed');
    assert.equal(d.body.data.models.find((x: any) => x.name === 'dnabert2-onnx').status, 'needs_weights');
  });
});

describe('dnabert2-onnx equals dnabert2 on a tiny random checkpoint', { skip: NO_TORCH ?? false }, () => {
  let root: string;
  let onnxDir: string;
  let headlessCkpt: string;
  let headlessOnnx: string;
  let h: Harness;
  const agree = new Agreement(RTOL);

  /** The same request to both models: both answers, asserted equal, the Python one returned. */
  const both = (path: 'predict' | 'predict/batch', body: Record<string, unknown>, harness = h) =>
    agree.both(harness, { py: 'dnabert2', onnx: 'dnabert2-onnx' }, path, body);

  before(async () => {
    root = workerTmpDir('isomodel-dnabert2-onnx-');
    const ckpt = join(root, 'ckpt');
    onnxDir = join(root, 'onnx');
    headlessCkpt = join(root, 'headless');
    headlessOnnx = join(root, 'headless-onnx');
    runPythonBatch([
      [join(TOOLS, 'make_tiny_checkpoint.py'), ckpt, '--format', 'safetensors', '--seed', '7'],
      [join(TOOLS, 'make_tiny_checkpoint.py'), headlessCkpt, '--format', 'bin', '--seed', '11', '--no-classifier'],
      [join(TOOLS, 'export_onnx.py'), ckpt, onnxDir],
      [join(TOOLS, 'export_onnx.py'), headlessCkpt, headlessOnnx],
    ]);
    h = await startGateway(['dnabert2', 'dnabert2-onnx'], envFor(ckpt, onnxDir));
  });
  after(async () => {
    await h?.close();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('both load the same checkpoint', async () => {
    const d = await h.get('/health/detailed');
    for (const name of ['dnabert2', 'dnabert2-onnx'])
      assert.equal(d.body.data.models.find((x: any) => x.name === name).status, 'ready', name);
  });

  it('tokenises identically (JavaScript BPE vs Python BPE), [UNK] and specials included', async () => {
    for (const seq of [...SEQS, LONG.slice(0, 300)]) {
      const { py, onnx } = await both('predict', {
        sequence: seq,
        task_type: 'embedding',
        options: { return_tokens: true },
      });
      assert.deepEqual(onnx.tokens, py.tokens, seq);
      assert.equal(onnx.tokens[0], '[CLS]');
      assert.equal(onnx.tokens.at(-1), '[SEP]');
    }
    const { onnx } = await both('predict', {
      sequence: SEQS[0],
      task_type: 'embedding',
      options: { return_tokens: true },
    });
    assert.ok(onnx.tokens.includes('[UNK]'));
  });

  it('embeddings are equal for every pooling, with and without the special tokens', async (t) => {
    const variants = [
      {},
      { pooling: 'cls' },
      { pooling: 'max' },
      { include_special_tokens: true },
      { pooling: 'max', include_special_tokens: true },
    ];
    for (const seq of SEQS) {
      for (const options of variants) {
        const { py, onnx } = await both('predict', { sequence: seq, task_type: 'embedding', options });
        assert.equal(onnx.embedding.length, onnx.dimension);
        assert.equal(onnx.pooling, py.pooling);
      }
    }
    t.diagnostic(`embeddings: ${agree}`);
  });

  it('promoter probabilities are equal', async (t) => {
    for (const seq of SEQS) {
      const { onnx } = await both('predict', { sequence: seq, task_type: 'promoter_prediction' });
      assert.ok(onnx.prediction >= 0 && onnx.prediction <= 1);
      assert.ok(Math.abs(onnx.details.probabilities[0] + onnx.details.probabilities[1] - 1) < 1e-9);
    }
    await both('predict/batch', { sequences: SEQS, task_type: 'promoter_prediction' });
    t.diagnostic(`after promoter: ${agree}`);
  });

  it('a padded batch answers as one by one, and as the Python batch', async () => {
    for (const options of [{}, { pooling: 'max' }, { pooling: 'cls' }]) {
      const { onnx } = await both('predict/batch', { sequences: SEQS, task_type: 'embedding', options });
      assert.equal(onnx.successful, SEQS.length);
      for (const [i, seq] of SEQS.entries()) {
        const single = await h.post('/models/dnabert2-onnx/predict', {
          sequence: seq,
          task_type: 'embedding',
          options,
        });
        agree.same(answer(single.body.data).embedding, onnx.predictions[i].embedding, `batch item ${i} vs single`);
      }
    }
  });

  it('concurrent requests (batched when they meet) keep their own options and errors', async () => {
    const bodies = [
      { sequence: SEQS[1], task_type: 'embedding', options: { pooling: 'max' } },
      { sequence: SEQS[2], task_type: 'embedding', options: { pooling: 'median' } },
      { sequence: LONG, task_type: 'embedding', options: { truncation: false } },
      { sequence: SEQS[4], task_type: 'embedding', options: { return_tokens: true } },
    ];
    const answers = await Promise.all(bodies.map((b) => both('predict', b)));
    assert.deepEqual(
      answers.map((a) => a.status),
      [200, 400, 400, 200],
    );
    assert.equal(answers[1]!.onnx.message, answers[1]!.py.message);
    assert.equal(answers[2]!.onnx.error.code, 'SEQUENCE_TOO_LONG');
  });

  it('truncates long sequences exactly as the adapter, or refuses them alike', async () => {
    const { py, onnx } = await both('predict', {
      sequence: LONG,
      task_type: 'embedding',
      options: { return_tokens: true },
    });
    assert.equal(py.truncated, true);
    assert.equal(onnx.num_tokens, 512);
    assert.deepEqual(onnx.tokens, py.tokens);
    await both('predict', { sequence: LONG, task_type: 'promoter_prediction' });
    const refused = await both('predict', { sequence: LONG, task_type: 'embedding', options: { truncation: false } });
    assert.equal(refused.status, 400);
    assert.equal(refused.onnx.error.code, 'SEQUENCE_TOO_LONG');
    assert.equal(refused.onnx.message, refused.py.message);
  });

  it('rejects bad options with the same code and message', async () => {
    for (const options of [
      { pooling: 'median' },
      { return_tokens: 'yes' },
      { include_special_tokens: 1 },
      { truncation: null },
    ]) {
      const { status, py, onnx } = await both('predict', { sequence: 'ACGT', task_type: 'embedding', options });
      assert.equal(status, 400, JSON.stringify(options));
      assert.equal(onnx.error.code, 'INVALID_REQUEST');
      assert.equal(onnx.message, py.message);
    }
  });

  it('an export whose model.onnx is missing answers MODEL_NOT_LOADED naming the file', async () => {
    const partial = join(root, 'partial');
    cpSync(onnxDir, partial, { recursive: true });
    rmSync(join(partial, 'model.onnx'));
    const hp = await startGateway(['dnabert2-onnx'], {
      model_env: { 'dnabert2-onnx': { DNABERT2_ONNX_PATH: partial } },
    });
    try {
      const r = await hp.post('/models/dnabert2-onnx/predict', { sequence: 'ACGT', task_type: 'embedding' });
      assert.equal(r.status, 503, JSON.stringify(r.body));
      assert.equal(r.body.error.code, 'MODEL_NOT_LOADED');
      assert.ok(r.body.message.includes(partial), r.body.message);
      assert.match(r.body.message, /missing: model\.onnx/);
    } finally {
      await hp.close();
    }
  });

  describe('a masked-LM checkpoint (no classification head) with an 8-token cap', () => {
    let hh: Harness;
    before(async () => {
      hh = await startGateway(
        ['dnabert2', 'dnabert2-onnx'],
        envFor(headlessCkpt, headlessOnnx, { DNABERT2_MAX_TOKENS: '8' }),
      );
    });
    after(async () => hh?.close());

    it('the export has no logits: promoter_prediction answers MODEL_NOT_LOADED on both', async () => {
      const { status, onnx } = await both('predict', { sequence: SEQS[0], task_type: 'promoter_prediction' }, hh);
      assert.equal(status, 503);
      assert.equal(onnx.error.code, 'MODEL_NOT_LOADED');
      assert.match(onnx.message, /fine-tuned/);
      assert.ok(onnx.message.includes(headlessOnnx), onnx.message);
    });

    it('DNABERT2_MAX_TOKENS cuts both at the same token, [SEP] kept', async (t) => {
      for (const options of [{ return_tokens: true }, { pooling: 'max' }, { include_special_tokens: true }]) {
        const { py, onnx } = await both(
          'predict',
          { sequence: 'GATTACA'.repeat(30), task_type: 'embedding', options },
          hh,
        );
        assert.equal(py.truncated, true);
        assert.equal(onnx.num_tokens, 8);
        if (onnx.tokens) assert.equal(onnx.tokens.at(-1), '[SEP]');
      }
      await both('predict/batch', { sequences: ['GATTACA'.repeat(30), 'ACG', SEQS[0]], task_type: 'embedding' }, hh);
      t.diagnostic(`all comparisons: ${agree}`);
    });
  });
});
