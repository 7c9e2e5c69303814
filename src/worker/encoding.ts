// Sequence encodings for model pipelines (ONNX pre-processing and Node models), exported to
// model packages as `isomodel/encoding`.

/** IUPAC nucleotide codes as the set of bases they stand for, in channel order A, C, G, T. */
const IUPAC_BASES: Record<string, string> = {
  A: 'A',
  C: 'C',
  G: 'G',
  T: 'T',
  U: 'T',
  R: 'AG',
  Y: 'CT',
  S: 'CG',
  W: 'AT',
  K: 'GT',
  M: 'AC',
  B: 'CGT',
  D: 'AGT',
  H: 'ACT',
  V: 'ACG',
  N: 'ACGT',
};
const CHANNEL: Record<string, number> = { A: 0, C: 1, G: 2, T: 3 };

/** The [A, C, G, T] weights of one letter: an ambiguity code splits its weight evenly. */
export function baseWeights(letter: string): [number, number, number, number] {
  const bases = IUPAC_BASES[letter];
  if (!bases) throw new Error(`not a nucleotide code: ${letter}`);
  const w: [number, number, number, number] = [0, 0, 0, 0];
  for (const b of bases) w[CHANNEL[b]!] = 1 / bases.length;
  return w;
}

/** Row-major float32 tensor [batch, length, 4] of exactly `length`-long sequences. */
export function oneHot(sequences: string[], length: number): Float32Array {
  const out = new Float32Array(sequences.length * length * 4);
  sequences.forEach((seq, i) => {
    if (seq.length !== length)
      throw new Error(`sequence ${i} has ${seq.length} bases; this model takes exactly ${length}`);
    for (let j = 0; j < length; j++) out.set(baseWeights(seq[j]!), (i * length + j) * 4);
  });
  return out;
}
