// k-mer spectrum embedding with a fixed, seeded Gaussian random projection.
//
// Features: for each k in kmer_sizes, the frequency of every k-mer over A/C/G/T (windows with
// other letters are skipped; U counts as T), canonical by default (a k-mer and its reverse
// complement share one feature). Each k block is L2-normalised and the blocks are weighted
// equally. The projection matrix R (F x D, entries N(0, 1/D)) comes from a fixed-seed PRNG, so
// embeddings are identical everywhere; by Johnson-Lindenstrauss, dot products of embeddings
// approximate dot products of spectra, with error shrinking as 1/sqrt(D).
const SEED = 20231120;
const CODE = { A: 0, C: 1, G: 2, T: 3, U: 3 };
const DEFAULT_SIZES = [3, 4, 5, 6];

// mulberry32: a small, well-known 32-bit PRNG; plus Box-Muller for normal deviates.
function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Row f of the projection for k-mer size k: generated per (k, dimension), cached. */
const projections = new Map();
function projection(k, dim) {
  const key = `${k}:${dim}`;
  let p = projections.get(key);
  if (!p) {
    const rows = 4 ** k;
    p = new Float64Array(rows * dim);
    const rand = mulberry32(SEED ^ (k * 0x9e3779b1) ^ (dim * 0x85ebca6b));
    const scale = 1 / Math.sqrt(dim);
    for (let i = 0; i < p.length; i += 2) {
      const u = rand() || Number.MIN_VALUE;
      const v = rand();
      const r = Math.sqrt(-2 * Math.log(u));
      p[i] = r * Math.cos(2 * Math.PI * v) * scale;
      if (i + 1 < p.length) p[i + 1] = r * Math.sin(2 * Math.PI * v) * scale;
    }
    projections.set(key, p);
  }
  return p;
}

function reverseComplementIndex(index, k) {
  let rc = 0;
  for (let i = 0; i < k; i++) {
    rc = rc * 4 + (3 - (index & 3));
    index >>= 2;
  }
  return rc;
}

/** Sparse k-mer frequency vector: Map(index -> frequency). */
function spectrum(seq, k, canonical) {
  const counts = new Map();
  const mask = 4 ** k;
  let index = 0;
  let valid = 0;
  let total = 0;
  for (const ch of seq) {
    const c = CODE[ch];
    if (c === undefined) {
      valid = 0;
      index = 0;
      continue;
    }
    index = (index * 4 + c) % mask;
    if (++valid < k) continue;
    const key = canonical ? Math.min(index, reverseComplementIndex(index, k)) : index;
    counts.set(key, (counts.get(key) ?? 0) + 1);
    total++;
  }
  return { counts, total };
}

function parseOptions(options) {
  const dim = options.embedding_dimension ?? 256;
  if (!Number.isInteger(dim) || dim < 8 || dim > 1024)
    throw new Error('embedding_dimension must be an integer from 8 to 1024');
  const sizes = options.kmer_sizes ?? DEFAULT_SIZES;
  if (!Array.isArray(sizes) || sizes.length === 0 || !sizes.every((k) => Number.isInteger(k) && k >= 1 && k <= 6)) {
    throw new Error('kmer_sizes must be a non-empty list of integers from 1 to 6');
  }
  return {
    dim,
    sizes: [...new Set(sizes)].sort(),
    canonical: options.canonical !== false,
    normalize: options.normalize !== false,
  };
}

export function embed(sequence, options = {}) {
  const { dim, sizes, canonical, normalize } = parseOptions(options);
  const out = new Float64Array(dim);
  let counted = 0;
  const blockWeight = 1 / Math.sqrt(sizes.length);
  for (const k of sizes) {
    const { counts, total } = spectrum(sequence, k, canonical);
    counted += total;
    if (total === 0) continue;
    let norm = 0;
    for (const n of counts.values()) norm += n * n;
    norm = Math.sqrt(norm);
    const p = projection(k, dim);
    for (const [f, n] of counts) {
      const w = (n / norm) * blockWeight;
      const row = f * dim;
      for (let d = 0; d < dim; d++) out[d] += w * p[row + d];
    }
  }
  if (counted === 0) throw new Error('no k-mer without ambiguity codes: the sequence is too short or all ambiguous');
  if (normalize) {
    let n = 0;
    for (const v of out) n += v * v;
    n = Math.sqrt(n) || 1;
    for (let d = 0; d < dim; d++) out[d] /= n;
  }
  return { embedding: Array.from(out), dimension: dim, kmer_sizes: sizes, canonical, kmers_counted: counted };
}

export function predict(batch) {
  return batch.map((item) => {
    try {
      return embed(item.sequence, item.options);
    } catch (e) {
      const code = /embedding_dimension|kmer_sizes/.test(e.message) ? 'INVALID_REQUEST' : 'INVALID_SEQUENCE';
      return { error: { code, message: e.message } };
    }
  });
}
