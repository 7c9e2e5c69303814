// The lucaone package through a real gateway: without weights it fails loading with a clear
// message; with a tiny random checkpoint in LucaOne's real on-disk layout (written by the
// package's own tool) its embeddings match a naive float64 reference forward.
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BUILTIN_MODELS_DIR } from '../src/paths.js';
import { startGateway, workerTmpDir, type Harness } from './helpers.js';
import { missingPythonModules } from './python-modules.js';
import { runPythonBatch } from './twin-compare.js';

const PYTHON = '/usr/bin/python3';
const TOOL = join(BUILTIN_MODELS_DIR, 'lucaone', 'tools', 'make_tiny_checkpoint.py');
const TOLERANCE = 1e-5;
const HIDDEN = 32;

const DNA = 'ATGCGTACGTTAGCNA';
const RNA = 'AUGCGUACGUUAGCNA'; // the same molecule as DNA, written as RNA
const PROTEIN = 'MKTLLILTAVVLLQW';

let torchChecked: { problem: string | null } | undefined;

/** Null when /usr/bin/python3 can import torch, else why not (asked once per run). */
function torchProblem(): string | null {
  torchChecked ??= { problem: missingPythonModules(PYTHON, ['torch', 'numpy']) };
  return torchChecked.problem;
}

function requireTorch(): void {
  const problem = torchProblem();
  if (problem)
    assert.fail(
      `${problem}. The lucaone tests need PyTorch for ${PYTHON}: apt-get install -y python3-torch python3-numpy`,
    );
}

interface RefItem {
  sequence: string;
  seq_type: 'gene' | 'prot';
  pooling?: 'cls' | 'mean';
  head?: string;
}

interface RefResult {
  embedding: number[];
  token_type_id: number;
  tokens: number;
  probabilities?: number[];
}

/** Every reference result the suite compares against, computed in one run of the naive forward. */
const REF_ITEMS: Record<string, RefItem> = {
  dna: { sequence: DNA, seq_type: 'gene' },
  rna: { sequence: RNA, seq_type: 'gene' },
  protein: { sequence: PROTEIN, seq_type: 'prot' },
  dnaMean: { sequence: DNA, seq_type: 'gene', pooling: 'mean' },
  proteinMean: { sequence: PROTEIN, seq_type: 'prot', pooling: 'mean' },
  acgtAsProtein: { sequence: 'ACGTACGT', seq_type: 'prot' },
  proteinHead: { sequence: PROTEIN, seq_type: 'prot', head: 'classification' },
};

function assertClose(actual: number[], expected: number[], what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let worst = 0;
  actual.forEach((v, i) => {
    worst = Math.max(worst, Math.abs(v - expected[i]!));
  });
  assert.ok(worst <= TOLERANCE, `${what}: max |difference| ${worst} > ${TOLERANCE}`);
}

describe('lucaone without weights', () => {
  let h: Harness;
  before(async () => {
    h = await startGateway(['lucaone'], { model_env: { lucaone: { LUCAONE_MODEL_PATH: '/nonexistent' } } });
  });
  after(async () => h?.close());

  it('answers 503 MODEL_NOT_LOADED naming the weights path', async () => {
    const r = await h.post('/models/lucaone/predict', { sequence: 'ACGTACGT', task_type: 'embedding' });
    assert.equal(r.status, 503, JSON.stringify(r.body));
    assert.equal(r.body.error.code, 'MODEL_NOT_LOADED');
    assert.match(r.body.message, /LucaOne weights not found/);
    assert.match(r.body.message, /\/nonexistent/);
    assert.match(r.body.message, /LUCAONE_MODEL_PATH/);
  });

  it('keeps /health/ready at 200: lucaone is not required', async () => {
    const ready = await h.get('/health/ready');
    assert.equal(ready.status, 200, JSON.stringify(ready.body));
  });
});

describe('lucaone with a tiny checkpoint in the real layout', () => {
  let h: Harness;
  let weights: string;
  let ref: Record<string, RefResult>;
  const embed = async (sequence: string, options: Record<string, unknown> = {}) =>
    h.post('/models/lucaone/predict', { sequence, task_type: 'embedding', options });

  before(async () => {
    requireTorch();
    weights = workerTmpDir('lucaone-tiny-');
    const names = Object.keys(REF_ITEMS);
    // The checkpoint and every reference from one Python process (torch loads once).
    const out = runPythonBatch([
      [TOOL, 'make', weights, '--hidden', String(HIDDEN), '--head', 'classification'],
      [TOOL, 'reference', '--weights', weights, '--input', JSON.stringify(names.map((n) => REF_ITEMS[n]!))],
    ]);
    const results = JSON.parse(out[1]!) as RefResult[];
    ref = Object.fromEntries(names.map((n, i) => [n, results[i]!]));
    h = await startGateway(['lucaone'], {
      model_env: { lucaone: { LUCAONE_MODEL_PATH: weights, LUCAONE_NUM_THREADS: '1' } },
    });
  });
  after(async () => {
    await h?.close();
    if (weights) rmSync(weights, { recursive: true, force: true });
  });

  it('PyTorch is importable by /usr/bin/python3', () => {
    requireTorch();
  });

  it('embeds DNA, RNA and protein with the model dimension and the right token type, equal to the naive forward', async () => {
    const cases: [string, string, number, RefResult][] = [
      [DNA, 'gene', 0, ref.dna!],
      [RNA, 'gene', 0, ref.rna!],
      [PROTEIN, 'prot', 1, ref.protein!],
    ];
    for (const [seq, seqType, tokenType, expected] of cases) {
      const r = await embed(seq);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const d = r.body.data;
      assert.equal(d.dimension, HIDDEN);
      assert.equal(d.embedding.length, HIDDEN);
      assert.equal(d.pooling, 'cls');
      assert.equal(d.seq_type, seqType, seq);
      assert.equal(d.token_type_id, tokenType, seq);
      assert.equal(d.tokens, seq.length + 2);
      assert.equal(d.truncated, false);
      assert.equal(expected.token_type_id, tokenType);
      assertClose(d.embedding, expected.embedding, `${seqType} ${seq}`);
    }
  });

  it('reads RNA as LucaOne does: U is the same token as T', async () => {
    const [dna, rna] = await Promise.all([embed(DNA), embed(RNA)]);
    assertClose(rna.body.data.embedding, dna.body.data.embedding, 'RNA vs DNA');
  });

  it('mean pooling averages the residues, [CLS] and [SEP] left out', async () => {
    const [dna, prot] = await Promise.all([embed(DNA, { pooling: 'mean' }), embed(PROTEIN, { pooling: 'mean' })]);
    assert.equal(dna.body.data.pooling, 'mean');
    assertClose(dna.body.data.embedding, ref.dnaMean!.embedding, 'mean DNA');
    assertClose(prot.body.data.embedding, ref.proteinMean!.embedding, 'mean protein');
  });

  it('is deterministic', async () => {
    const a = await embed(PROTEIN);
    const b = await embed(PROTEIN);
    assert.deepEqual(a.body.data.embedding, b.body.data.embedding);
  });

  it('gives the same embeddings in a padded batch as one by one', async () => {
    const seqs = [DNA, PROTEIN, 'GGAUCC'];
    const batch = await h.post('/models/lucaone/predict/batch', { sequences: seqs, task_type: 'embedding' });
    assert.equal(batch.status, 200, JSON.stringify(batch.body));
    assert.equal(batch.body.data.successful, seqs.length);
    for (const [i, seq] of seqs.entries()) {
      const single = await embed(seq);
      const p = batch.body.data.predictions[i];
      assert.equal(p.seq_type, single.body.data.seq_type);
      assert.equal(p.token_type_id, single.body.data.token_type_id);
      assertClose(p.embedding, single.body.data.embedding, `batch item ${i}`);
    }
  });

  it('lets option seq_type override the detection', async () => {
    const r = await embed('ACGTACGT', { seq_type: 'protein' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.data.seq_type, 'prot');
    assert.equal(r.body.data.token_type_id, 1);
    assertClose(r.body.data.embedding, ref.acgtAsProtein!.embedding, 'ACGTACGT as protein');
    const bad = await embed('ACGT', { seq_type: 'lipid' });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'INVALID_REQUEST');
  });

  it('accepts only the checkpoint hidden size as embedding_dimension', async () => {
    const bad = await embed(DNA, { embedding_dimension: 768 });
    assert.equal(bad.status, 400, JSON.stringify(bad.body));
    assert.equal(bad.body.error.code, 'INVALID_REQUEST');
    assert.match(bad.body.message, new RegExp(`embedding_dimension must be ${HIDDEN}`));
    const ok = await embed(DNA, { embedding_dimension: HIDDEN });
    assert.equal(ok.status, 200);
    assert.equal(ok.body.data.embedding.length, HIDDEN);
  });

  it('classifies through a LucaOneTasks head found in the weights folder', async () => {
    const r = await h.post('/models/lucaone/predict', { sequence: PROTEIN, task_type: 'classification' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const probs = r.body.data.probabilities as Record<string, number>;
    assert.deepEqual(Object.keys(probs), ['enzyme', 'transporter', 'other']);
    assertClose(Object.values(probs), ref.proteinHead!.probabilities!, 'class probabilities');
    const best = Object.entries(probs).sort((a, b) => b[1] - a[1])[0]!;
    assert.equal(r.body.data.label, best[0]);
  });

  it('answers MODEL_NOT_LOADED for a task whose fine-tuned head is absent, never a made-up number', async () => {
    const r = await h.post('/models/lucaone/predict', { sequence: PROTEIN, task_type: 'property_prediction' });
    assert.equal(r.status, 503, JSON.stringify(r.body));
    assert.equal(r.body.error.code, 'MODEL_NOT_LOADED');
    assert.match(r.body.message, /fine-tuned LucaOneTasks head/);
    assert.match(r.body.message, /heads\/property_prediction/);
  });
});
