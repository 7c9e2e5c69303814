// dna-embed through the gateway: deterministic, strand-independent, and faithful to the
// k-mer spectra it projects.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startGateway, type Harness } from './helpers.js';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}
const randomDna = (n: number, r: () => number): string =>
  Array.from({ length: n }, () => 'ACGT'[Math.floor(r() * 4)]).join('');
const revcomp = (s: string): string =>
  s
    .split('')
    .reverse()
    .map((c) => ({ A: 'T', C: 'G', G: 'C', T: 'A' })[c])
    .join('');

/** Exact canonical spectrum cosine, computed independently of the model. */
function spectrumCosine(a: string, b: string, sizes = [3, 4, 5, 6]): number {
  const blocks = (s: string) =>
    sizes.map((k) => {
      const m = new Map<string, number>();
      for (let i = 0; i + k <= s.length; i++) {
        const w = s.slice(i, i + k);
        const c = [w, revcomp(w)].sort()[0]!;
        m.set(c, (m.get(c) ?? 0) + 1);
      }
      const norm = Math.sqrt([...m.values()].reduce((x, v) => x + v * v, 0));
      return new Map([...m].map(([key, v]) => [key, v / norm / Math.sqrt(sizes.length)]));
    });
  const A = blocks(a);
  const B = blocks(b);
  let dot = 0;
  A.forEach((block, i) => block.forEach((v, key) => (dot += v * (B[i]!.get(key) ?? 0))));
  return dot;
}
const cosine = (x: number[], y: number[]): number => x.reduce((s, v, i) => s + v * y[i]!, 0);

describe('dna-embed model', () => {
  let h: Harness;
  before(async () => {
    h = await startGateway(['dna-embed']);
  });
  after(async () => h.close());

  const embed = async (sequences: string[], options: Record<string, unknown> = {}) => {
    const r = await h.post('/models/dna-embed/predict/batch', { sequences, options });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body.data.predictions.map((p: any) => p.embedding as number[]);
  };

  it('returns unit vectors of the requested dimension, deterministically', async () => {
    const [a] = await embed(['ATGCGTACGTAGCTAGCTAGCTAGC']);
    assert.equal(a.length, 256);
    assert.ok(Math.abs(cosine(a, a) - 1) < 1e-9);
    const [b] = await embed(['ATGCGTACGTAGCTAGCTAGCTAGC'], { embedding_dimension: 64 });
    assert.equal(b.length, 64);
    const single = await h.post('/models/dna-embed/predict', { sequence: 'ATGCGTACGTAGCTAGCTAGCTAGC' });
    assert.deepEqual(single.body.data.embedding, a);
  });

  it('is strand-independent with canonical k-mers, and RNA reads as DNA', async () => {
    const r = rng(7);
    const s = randomDna(300, r);
    const [x, y, z] = await embed([s, revcomp(s), s.replaceAll('T', 'U')]);
    assert.ok(Math.abs(cosine(x, y) - 1) < 1e-9);
    assert.deepEqual(x, z);
  });

  it('embedding similarity tracks the exact spectrum similarity', async () => {
    const r = rng(42);
    const base = randomDna(600, r);
    // Pairs from identical-ish to unrelated: mutate a growing fraction of positions.
    const variants = [0.02, 0.1, 0.3, 0.6, 1].map((rate) =>
      base
        .split('')
        .map((c) => (r() < rate ? 'ACGT'[Math.floor(r() * 4)] : c))
        .join(''),
    );
    const [e0, ...ev] = await embed([base, ...variants], { embedding_dimension: 1024 });
    const errors = variants.map((v, i) => Math.abs(cosine(e0, ev[i]) - spectrumCosine(base, v)));
    assert.ok(Math.max(...errors) < 0.1, `errors ${errors}`);
    const sims = ev.map((e: number[]) => cosine(e0, e));
    assert.ok(sims[0] > sims[2] && sims[2] > sims[4], `similarity falls with mutation rate: ${sims}`);
  });

  it('rejects bad options and all-ambiguous sequences per item', async () => {
    const bad = await h.post('/models/dna-embed/predict', {
      sequence: 'ACGTACGT',
      options: { embedding_dimension: 5000 },
    });
    assert.equal(bad.body.error.code, 'INVALID_REQUEST');
    const amb = await h.post('/models/dna-embed/predict/batch', { sequences: ['NNNNNNNN', 'ACGTACGTAC'] });
    assert.equal(amb.status, 200);
    assert.equal(amb.body.data.predictions[0].error.code, 'INVALID_SEQUENCE');
    assert.equal(amb.body.data.predictions[1].dimension, 256);
  });
});
