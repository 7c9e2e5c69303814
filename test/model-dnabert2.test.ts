// The dnabert2 package through a real gateway: without weights it fails to load politely;
// with a tiny RANDOM checkpoint written by its own tool (the real on-disk format) it must
// match an independent naive float64 implementation of DNABERT-2 (tools/make_tiny_checkpoint.py
// --reference), through both weight formats. Needs /usr/bin/python3 with torch.
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PACKAGE_ROOT } from '../src/paths.js';
import { startGateway, workerTmpDir, type Harness } from './helpers.js';
import { requirePythonModules } from './python-modules.js';
import { runPythonBatch } from './twin-compare.js';

const PYTHON = '/usr/bin/python3';
const TOOL = join(PACKAGE_ROOT, 'models', 'dnabert2', 'tools', 'make_tiny_checkpoint.py');
const TOL = 1e-5;
const SEQS = ['ACGTTATAATGGGCGGNNACGT', 'TTGACAATTATAATGCCAATACGT', 'GATTACA'.repeat(12), 'A', 'CCAATGGGCGGTATAAT'];
/** Longer than the 8-token cap of the headless checkpoint's gateway. */
const LONG = 'GATTACA'.repeat(30);

interface Reference {
  tokens: string[];
  mean: number[];
  cls: number[];
  max: number[];
  mean_all: number[];
  probabilities?: number[];
}

/** Fails (never skips) when torch is missing: CI must install it. */
function requireTorch(): void {
  requirePythonModules(PYTHON, ['torch', 'numpy'], 'install it with `apt-get install -y python3-torch python3-numpy`');
}

function maxDiff(a: number[], b: number[]): number {
  assert.equal(a.length, b.length, 'vector lengths differ');
  return a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);
}

function assertClose(a: number[], b: number[], what: string): void {
  const d = maxDiff(a, b);
  assert.ok(d <= TOL, `${what}: max difference ${d} > ${TOL}`);
}

function envFor(
  dir: string,
  extra: Record<string, string> = {},
): { model_env: Record<string, Record<string, string>> } {
  return { model_env: { dnabert2: { DNABERT2_MODEL_PATH: dir, DNABERT2_TORCH_THREADS: '1', ...extra } } };
}

describe('dnabert2 without weights', () => {
  let h: Harness;
  before(async () => {
    h = await startGateway(['dnabert2'], { model_env: { dnabert2: { DNABERT2_MODEL_PATH: '/nonexistent' } } });
  });
  after(async () => h.close());

  it('answers 503 MODEL_NOT_LOADED naming the path and how to fix it', async () => {
    for (const task of ['embedding', 'promoter_prediction']) {
      const r = await h.post('/models/dnabert2/predict', { sequence: 'ACGTACGT', task_type: task });
      assert.equal(r.status, 503, JSON.stringify(r.body));
      assert.equal(r.body.error.code, 'MODEL_NOT_LOADED');
      assert.match(r.body.message, /DNABERT-2 weights not found/);
      assert.match(r.body.message, /\/nonexistent/);
      assert.match(r.body.message, /DNABERT2_MODEL_PATH/);
      assert.match(r.body.message, /pytorch_model\.bin \(or model\.safetensors\)/);
    }
  });

  it('does not hold /health/ready hostage (required: false) and reports the reason', async () => {
    const ready = await h.get('/health/ready');
    assert.equal(ready.status, 200, JSON.stringify(ready.body));
    const d = await h.get('/health/detailed');
    const m = d.body.data.models.find((x: any) => x.name === 'dnabert2');
    assert.equal(m.status, 'needs_weights');
    const info = await h.get('/models/dnabert2/model/info');
    assert.equal(info.body.data.license, 'Apache-2.0 (original model and code, MAGICS-LAB/DNABERT_2)');
    assert.deepEqual(info.body.data.tasks, ['embedding', 'promoter_prediction']);
  });
});

describe('dnabert2 with a tiny random checkpoint', () => {
  let root: string;
  let binDir: string;
  let stDir: string;
  let headlessDir: string;
  let hidden: number;
  let ref: Reference[];
  let headlessRef: Reference[];
  let h: Harness;

  before(async () => {
    requireTorch();
    root = workerTmpDir('isomodel-dnabert2-');
    binDir = join(root, 'bin');
    stDir = join(root, 'safetensors');
    headlessDir = join(root, 'headless');
    // One Python process for every checkpoint and reference of the file (torch loads once).
    const out = runPythonBatch([
      [TOOL, binDir, '--format', 'bin', '--seed', '7'],
      [TOOL, stDir, '--format', 'safetensors', '--seed', '7'],
      [TOOL, headlessDir, '--format', 'safetensors', '--seed', '11', '--no-classifier'],
      [TOOL, '--reference', binDir, ...SEQS],
      [TOOL, '--reference', headlessDir, '--max-tokens', '8', SEQS[0]!, LONG],
    ]);
    hidden = (JSON.parse(readFileSync(join(binDir, 'config.json'), 'utf8')) as { hidden_size: number }).hidden_size;
    ref = JSON.parse(out[3]!) as Reference[];
    headlessRef = JSON.parse(out[4]!) as Reference[];
    h = await startGateway(['dnabert2'], envFor(binDir));
  });
  after(async () => {
    await h?.close();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  const embed = (seq: string, options: Record<string, unknown> = {}) =>
    h.post('/models/dnabert2/predict', { sequence: seq, task_type: 'embedding', options });

  it('loads from pytorch_model.bin and reports ready', async () => {
    const d = await h.get('/health/detailed');
    assert.equal(d.body.data.models.find((x: any) => x.name === 'dnabert2').status, 'ready');
  });

  it('tokenises exactly as the naive BPE reference', async () => {
    for (const [i, seq] of SEQS.entries()) {
      const r = await embed(seq, { return_tokens: true });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.deepEqual(r.body.data.tokens, ref[i]!.tokens, seq);
      assert.equal(r.body.data.num_tokens, ref[i]!.tokens.length);
      assert.equal(r.body.data.truncated, false);
    }
    assert.ok(ref[0]!.tokens.includes('[UNK]'), 'N is outside the tiny vocabulary: [UNK] expected');
    assert.equal(ref[0]!.tokens[0], '[CLS]');
    assert.equal(ref[0]!.tokens.at(-1), '[SEP]');
  });

  it('embeddings have the configured dimension and equal the reference (mean, cls, max, with specials)', async () => {
    for (const [i, seq] of SEQS.entries()) {
      const r = await embed(seq);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.data.dimension, hidden);
      assert.equal(r.body.data.embedding.length, hidden);
      assert.equal(r.body.data.pooling, 'mean');
      assertClose(r.body.data.embedding, ref[i]!.mean, `mean ${seq}`);
      for (const pooling of ['cls', 'max'] as const) {
        const p = await embed(seq, { pooling });
        assertClose(p.body.data.embedding, ref[i]![pooling], `${pooling} ${seq}`);
      }
      const all = await embed(seq, { include_special_tokens: true });
      assertClose(all.body.data.embedding, ref[i]!.mean_all, `mean over all tokens ${seq}`);
    }
  });

  it('is deterministic; batch results equal single results; different sequences differ', async () => {
    const a = await embed(SEQS[1]!);
    const b = await embed(SEQS[1]!);
    assert.deepEqual(a.body.data.embedding, b.body.data.embedding);
    const batch = await h.post('/models/dnabert2/predict/batch', { sequences: SEQS, task_type: 'embedding' });
    assert.equal(batch.status, 200, JSON.stringify(batch.body));
    assert.equal(batch.body.data.successful, SEQS.length);
    const singles = await Promise.all(SEQS.map((s) => embed(s)));
    batch.body.data.predictions.forEach((p: any, i: number) =>
      assertClose(p.embedding, singles[i]!.body.data.embedding, `batch item ${i}`),
    );
    for (let i = 0; i < SEQS.length; i++) {
      for (let j = i + 1; j < SEQS.length; j++) {
        assert.ok(
          maxDiff(singles[i]!.body.data.embedding, singles[j]!.body.data.embedding) > 1e-3,
          `${i} and ${j} embed alike`,
        );
      }
    }
  });

  it('promoter_prediction: probabilities in [0, 1] equal to the reference head', async () => {
    const r = await h.post('/models/dnabert2/predict/batch', { sequences: SEQS, task_type: 'promoter_prediction' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    r.body.data.predictions.forEach((p: any, i: number) => {
      const probs = ref[i]!.probabilities!;
      assert.ok(p.prediction >= 0 && p.prediction <= 1);
      assert.ok(Math.abs(p.prediction - probs[1]!) <= TOL, `P(promoter) ${p.prediction} vs reference ${probs[1]}`);
      assert.ok(Math.abs(p.confidence - Math.max(...probs)) <= TOL);
      assert.equal(p.details.class, probs[1]! > probs[0]! ? 'promoter' : 'non_promoter');
      assert.ok(Math.abs(p.details.probability - p.confidence) <= 1e-12);
      assertClose(p.details.probabilities, probs, `probabilities ${i}`);
    });
    const single = await h.post('/models/dnabert2/predict', { sequence: SEQS[2], task_type: 'promoter_prediction' });
    assert.equal(single.status, 200);
    assert.ok(Math.abs(single.body.data.prediction - ref[2]!.probabilities![1]!) <= TOL);
  });

  it('rejects bad options per item', async () => {
    const r = await embed('ACGT', { pooling: 'median' });
    assert.equal(r.status, 400);
    assert.equal(r.body.error.code, 'INVALID_REQUEST');
    assert.match(r.body.message, /pooling/);
  });

  describe('from model.safetensors', () => {
    let hs: Harness;
    before(async () => {
      hs = await startGateway(['dnabert2'], envFor(stDir));
    });
    after(async () => hs?.close());

    it('gives the same numbers as the reference computed from the .bin of the same seed', async () => {
      const e = await hs.post('/models/dnabert2/predict/batch', { sequences: SEQS, task_type: 'embedding' });
      assert.equal(e.status, 200, JSON.stringify(e.body));
      e.body.data.predictions.forEach((p: any, i: number) =>
        assertClose(p.embedding, ref[i]!.mean, `safetensors mean ${i}`),
      );
      const p = await hs.post('/models/dnabert2/predict', { sequence: SEQS[0], task_type: 'promoter_prediction' });
      assert.ok(Math.abs(p.body.data.prediction - ref[0]!.probabilities![1]!) <= TOL);
    });
  });

  describe('without a classification head, with a token cap', () => {
    let hh: Harness;
    before(async () => {
      hh = await startGateway(['dnabert2'], envFor(headlessDir, { DNABERT2_MAX_TOKENS: '8' }));
    });
    after(async () => hh?.close());

    it('serves embeddings from a masked-LM checkpoint (its cls.* head ignored)', async () => {
      const r = await hh.post('/models/dnabert2/predict', { sequence: SEQS[0], task_type: 'embedding' });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.data.dimension, hidden);
      assertClose(r.body.data.embedding, headlessRef[0]!.mean, 'headless mean');
    });

    it('promoter_prediction answers MODEL_NOT_LOADED explaining a fine-tuned checkpoint is needed', async () => {
      const r = await hh.post('/models/dnabert2/predict', { sequence: SEQS[0], task_type: 'promoter_prediction' });
      assert.equal(r.status, 503, JSON.stringify(r.body));
      assert.equal(r.body.error.code, 'MODEL_NOT_LOADED');
      assert.match(r.body.message, /fine-tuned/);
      assert.match(r.body.message, /classifier\.weight/);
    });

    it('truncates to DNABERT2_MAX_TOKENS, or refuses with truncation: false', async () => {
      const r = await hh.post('/models/dnabert2/predict', {
        sequence: LONG,
        task_type: 'embedding',
        options: { return_tokens: true },
      });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.data.truncated, true);
      assert.equal(r.body.data.num_tokens, 8);
      assert.deepEqual(r.body.data.tokens, headlessRef[1]!.tokens);
      assert.equal(r.body.data.tokens.at(-1), '[SEP]');
      assertClose(r.body.data.embedding, headlessRef[1]!.mean, 'truncated mean');
      const refused = await hh.post('/models/dnabert2/predict', {
        sequence: LONG,
        task_type: 'embedding',
        options: { truncation: false },
      });
      assert.equal(refused.status, 400);
      assert.equal(refused.body.error.code, 'SEQUENCE_TOO_LONG');
    });
  });
});
