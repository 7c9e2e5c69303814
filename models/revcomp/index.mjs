// Reverse complement with IUPAC ambiguity codes: each code maps to the code of the
// complementary base set (R = A/G <-> Y = C/T, K <-> M, B <-> V, D <-> H; S, W, N are self-complementary).
const COMPLEMENT = {
  A: 'T',
  C: 'G',
  G: 'C',
  T: 'A',
  U: 'A',
  R: 'Y',
  Y: 'R',
  S: 'S',
  W: 'W',
  K: 'M',
  M: 'K',
  B: 'V',
  V: 'B',
  D: 'H',
  H: 'D',
  N: 'N',
};

function reverseComplement(seq) {
  const rna = seq.includes('U');
  let out = '';
  for (let i = seq.length - 1; i >= 0; i--) {
    const c = COMPLEMENT[seq[i]];
    if (c === undefined) throw new Error(`not a nucleotide: ${seq[i]}`);
    out += rna && c === 'T' ? 'U' : c;
  }
  return out;
}

function gcContent(seq) {
  let gc = 0;
  let acgtu = 0;
  for (const ch of seq) {
    if (ch === 'G' || ch === 'C') gc++;
    if ('ACGTU'.includes(ch)) acgtu++;
  }
  return acgtu ? gc / acgtu : null;
}

function one(item) {
  const rc = reverseComplement(item.sequence);
  return { reverse_complement: rc, length: rc.length, gc_content: gcContent(item.sequence) };
}

export function predict(batch) {
  return batch.map((item) => {
    try {
      return one(item);
    } catch (e) {
      return { error: { code: 'INVALID_SEQUENCE', message: e.message } };
    }
  });
}

/** Streams each reverse complement in chunks of options.chunk_size bases. */
export function stream(batch, _task, emit) {
  const outputs = predict(batch);
  outputs.forEach((out, index) => {
    if (out.error) return;
    const size = Math.max(1, Number(batch[index].options.chunk_size) || 60);
    for (let i = 0; i < out.reverse_complement.length; i += size)
      emit(index, { text: out.reverse_complement.slice(i, i + size) });
  });
  return outputs;
}
