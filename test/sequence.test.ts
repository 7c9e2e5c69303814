// Sequence validation rules shared by every surface.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IsoError } from '../src/errors.js';
import { z } from 'zod';
import { parseFasta, parseSequences } from '../src/validation/fasta.js';
import {
  ALPHABETS,
  AMBIGUOUS_LETTERS,
  countAmbiguous,
  detectSequenceType,
  looksNucleic,
  normaliseSequence,
  parseSequenceType,
  taskRule,
  validateSequence,
} from '../src/validation/sequence.js';
import { describeZod } from '../src/validation/zod-message.js';

const dna = { types: ['DNA'] as const, maxLength: 10 };
const dna20 = { types: ['DNA'] as const, maxLength: 20 };

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof IsoError);
    return e.code;
  }
  return 'none';
}

describe('sequence validation', () => {
  it('accepts IUPAC letters in any case and strips whitespace', () => {
    assert.deepEqual(validateSequence('ac gt\nRYn', dna), { sequence: 'ACGTRYN', type: 'DNA' });
  });

  it('rejects characters outside the alphabet with their position', () => {
    assert.equal(
      codeOf(() => validateSequence('ACGU', dna)),
      'INVALID_SEQUENCE',
    );
    assert.equal(
      codeOf(() => validateSequence('AC-T', dna)),
      'INVALID_SEQUENCE',
    );
    assert.equal(
      codeOf(() => validateSequence('ACGTé', dna)),
      'INVALID_SEQUENCE',
    );
    assert.equal(
      codeOf(() => validateSequence('', dna)),
      'INVALID_SEQUENCE',
    );
    assert.equal(
      codeOf(() => validateSequence(5, dna)),
      'INVALID_REQUEST',
    );
  });

  it('enforces the length limit after normalisation', () => {
    assert.equal(
      codeOf(() => validateSequence('A'.repeat(11), dna)),
      'SEQUENCE_TOO_LONG',
    );
    assert.equal(validateSequence('A'.repeat(10) + '  \n', dna).sequence.length, 10);
  });

  it('picks the first accepted type the sequence fits, or the declared one', () => {
    const both = { types: ['DNA', 'RNA', 'protein'] as const, maxLength: 100 };
    assert.equal(validateSequence('ACGU', both).type, 'RNA');
    // M, K and V are IUPAC nucleotide codes too, but composition says peptide (issue 23).
    assert.equal(validateSequence('MKV', both).type, 'protein');
    assert.equal(validateSequence('MKF', both).type, 'protein');
    assert.equal(validateSequence('ACG', both, 'protein').type, 'protein');
    assert.equal(
      codeOf(() => validateSequence('ACG', dna, 'protein')),
      'INVALID_SEQUENCE',
    );
    assert.equal(detectSequenceType('ACGT'), 'DNA');
    assert.equal(detectSequenceType('MKWVTFISLL'), 'protein');
    assert.equal(detectSequenceType('12'), null);
  });

  it('reads the type by composition: peptides of IUPAC letters are protein, DNA with ambiguity codes stays DNA', () => {
    // Every letter of these is a valid IUPAC nucleotide code; a validity check alone called them DNA.
    for (const peptide of ['MKWVTHSRGAD', 'MAAKW', 'MKV', 'HHHHHH', 'KRKRKRDDS']) {
      assert.equal(detectSequenceType(peptide), 'protein', peptide);
      assert.ok(!looksNucleic(peptide), peptide);
    }
    for (const [seq, type] of [
      ['ACGTNNACGT', 'DNA'],
      ['ATGCRYN', 'DNA'],
      ['ACGTRYACGR', 'DNA'],
      ['ACGUUGCA', 'RNA'],
      ['NNNNACGU', 'RNA'],
      ['ACT', 'DNA'],
    ] as const) {
      assert.equal(detectSequenceType(seq), type, seq);
    }
    // More than half A/C/G/T/U/N is nucleic: exactly half is not.
    assert.equal(detectSequenceType('ACKK'), 'protein');
    assert.equal(detectSequenceType('ACGKK'), 'DNA');
    const all = { types: ['DNA', 'RNA', 'protein'] as const, maxLength: 100 };
    assert.equal(validateSequence('MKWVTHSRGAD', all).type, 'protein');
    assert.equal(validateSequence('mkwvthsrgad', { ...all, types: ['protein', 'DNA'] as const }).type, 'protein');
    // A task that takes only DNA still takes the same letters as DNA (nothing to choose between).
    assert.equal(validateSequence('MKWVTHSRGAD', dna20).type, 'DNA');
    // Nucleic by composition is tried as nucleic first even when the manifest lists protein first.
    assert.equal(validateSequence('ACGTACGTN', { types: ['protein', 'DNA'] as const, maxLength: 100 }).type, 'DNA');
    // A declared type still wins.
    assert.equal(validateSequence('MKWVTHSRGAD', all, 'DNA').type, 'DNA');
  });

  it('INVALID_SEQUENCE names a letter no accepted type has, and its alphabet lists U when RNA is accepted', () => {
    const errorOf = (fn: () => unknown): IsoError => {
      try {
        fn();
      } catch (e) {
        assert.ok(e instanceof IsoError);
        return e;
      }
      assert.fail('expected an error');
    };
    const nucleic = { types: ['DNA', 'RNA'] as const, maxLength: 100 };
    const e = errorOf(() => validateSequence('ACGUX', nucleic));
    assert.equal(e.code, 'INVALID_SEQUENCE');
    assert.match(
      e.message,
      /not a valid DNA or RNA sequence: character 'X' at position 5/,
      'U is RNA, not the culprit',
    );
    const details = e.details as { alphabet: string; accepted_types: string[]; position: number };
    assert.ok(details.alphabet.includes('U') && details.alphabet.includes('T'), details.alphabet);
    assert.equal(details.position, 5);
    assert.equal(
      (errorOf(() => validateSequence('ACGX', dna)).details as { alphabet: string }).alphabet.includes('U'),
      false,
      'DNA only: no U',
    );
    // T beside U: every letter is accepted, but by no single type.
    const mixed = errorOf(() => validateSequence('ACTU', nucleic));
    assert.match(mixed.message, /mixes their letters \(character 'U' at position 4 is not DNA\)/);
  });
});

// The IUPAC tables, written out here from the nomenclature (IUPAC-IUB 1970/1984), not copied from
// src/validation/sequence.ts: a letter added to or dropped from an alphabet there fails below.
const IUPAC_NUCLEOTIDES: Record<string, string> = {
  A: 'A',
  C: 'C',
  G: 'G',
  T: 'T',
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
const IUPAC_AMINO_ACIDS: Record<string, string> = {
  A: 'Ala',
  R: 'Arg',
  N: 'Asn',
  D: 'Asp',
  C: 'Cys',
  Q: 'Gln',
  E: 'Glu',
  G: 'Gly',
  H: 'His',
  I: 'Ile',
  L: 'Leu',
  K: 'Lys',
  M: 'Met',
  F: 'Phe',
  P: 'Pro',
  S: 'Ser',
  T: 'Thr',
  W: 'Trp',
  Y: 'Tyr',
  V: 'Val',
  U: 'Sec',
  O: 'Pyl',
  B: 'Asx (D or N)',
  Z: 'Glx (E or Q)',
  J: 'Xle (I or L)',
  X: 'any',
};
/** Per type: the accepted upper-case letters and, among them, those that name no single residue. */
const EXPECTED: Record<'DNA' | 'RNA' | 'protein', { letters: Set<string>; ambiguous: Set<string> }> = {
  DNA: {
    letters: new Set(Object.keys(IUPAC_NUCLEOTIDES)),
    ambiguous: new Set(Object.keys(IUPAC_NUCLEOTIDES).filter((k) => IUPAC_NUCLEOTIDES[k]!.length > 1)),
  },
  // RNA: the same codes with uracil for thymine (T is not an RNA letter).
  RNA: {
    letters: new Set(Object.keys(IUPAC_NUCLEOTIDES).map((k) => (k === 'T' ? 'U' : k))),
    ambiguous: new Set(Object.keys(IUPAC_NUCLEOTIDES).filter((k) => IUPAC_NUCLEOTIDES[k]!.length > 1)),
  },
  protein: { letters: new Set(Object.keys(IUPAC_AMINO_ACIDS)), ambiguous: new Set(['B', 'Z', 'J', 'X']) },
};
const TYPES = ['DNA', 'RNA', 'protein'] as const;

describe('every ASCII character against every alphabet', () => {
  const ascii = Array.from({ length: 128 }, (_, c) => String.fromCharCode(c));
  const isWhitespace = (ch: string): boolean => /\s/.test(ch);

  it('the tables above have the sizes IUPAC gives them', () => {
    assert.equal(EXPECTED.DNA.letters.size, 15);
    assert.equal(EXPECTED.RNA.letters.size, 15);
    assert.equal(EXPECTED.protein.letters.size, 26);
    assert.equal(EXPECTED.DNA.ambiguous.size, 11);
    assert.deepEqual(
      [...EXPECTED.protein.letters].filter((l) => !/[A-Z]/.test(l)),
      [],
    );
  });

  for (const type of TYPES) {
    it(`${type}: exactly the IUPAC letters, in either case, are accepted; whitespace is dropped; every other character is refused at its position`, () => {
      const rule = { types: [type], maxLength: 10 };
      const accepted: string[] = [];
      for (const ch of ascii) {
        // Between two letters every alphabet has, so the character under test is the only question.
        const raw = `A${ch}A`;
        const expectOk = isWhitespace(ch) || EXPECTED[type].letters.has(ch.toUpperCase());
        let got: { sequence: string; type: string } | IsoError;
        try {
          got = validateSequence(raw, rule);
        } catch (e) {
          assert.ok(e instanceof IsoError, `char ${ch.charCodeAt(0)}: ${String(e)}`);
          got = e;
        }
        if (expectOk) {
          assert.ok(
            !(got instanceof IsoError),
            `${type} accepts char code ${ch.charCodeAt(0)} (${JSON.stringify(ch)}): ${got instanceof IsoError ? got.message : ''}`,
          );
          assert.deepEqual(got, { sequence: isWhitespace(ch) ? 'AA' : `A${ch.toUpperCase()}A`, type });
          if (!isWhitespace(ch) && ch === ch.toUpperCase()) accepted.push(ch);
        } else {
          assert.ok(got instanceof IsoError, `${type} refuses char code ${ch.charCodeAt(0)} (${JSON.stringify(ch)})`);
          assert.equal(got.code, 'INVALID_SEQUENCE');
          // Reported as normalised: a lower-case letter by its upper case.
          const shown = ch.toUpperCase();
          assert.deepEqual(got.details, {
            position: 2,
            character: shown,
            accepted_types: [type],
            alphabet: ALPHABETS[type],
          });
          assert.equal(got.message, `sequence is not a valid ${type} sequence: character '${shown}' at position 2`);
        }
      }
      assert.deepEqual(accepted.sort(), [...EXPECTED[type].letters].sort());
      assert.deepEqual(
        [...ALPHABETS[type]].sort(),
        [...EXPECTED[type].letters].sort(),
        'the published alphabet (error details) is the same set',
      );
    });

    it(`${type}: the ambiguous letters are exactly those naming more than one residue`, () => {
      for (const ch of ascii) {
        const upper = ch.toUpperCase();
        if (!EXPECTED[type].letters.has(upper) || ch !== upper) continue;
        assert.equal(countAmbiguous(ch.repeat(3), type), EXPECTED[type].ambiguous.has(ch) ? 3 : 0, `${type} ${ch}`);
      }
      assert.deepEqual([...AMBIGUOUS_LETTERS[type]].sort(), [...EXPECTED[type].ambiguous].sort());
    });
  }

  it('detectSequenceType: mostly A/C/G/T/U/N tries DNA, RNA, then protein; otherwise protein first; for every ASCII letter', () => {
    // Composition decides the order (issue 23): more than half A, C, G, T, U or N is nucleic acid.
    const order = (s: string): readonly ('DNA' | 'RNA' | 'protein')[] =>
      [...s].filter((c) => 'ACGTUN'.includes(c)).length * 2 > s.length ? TYPES : (['protein', 'DNA', 'RNA'] as const);
    const expectedOf = (s: string) => order(s).find((t) => [...s].every((c) => EXPECTED[t].letters.has(c))) ?? null;
    for (const ch of ascii) {
      assert.equal(detectSequenceType(ch), expectedOf(ch), `char code ${ch.charCodeAt(0)}`);
      assert.equal(detectSequenceType(`ACG${ch}`), expectedOf(`ACG${ch}`), `ACG + code ${ch.charCodeAt(0)}`);
    }
    // Spot checks of the rule itself: B is a DNA code, but alone it reads as protein; ACGB is DNA.
    assert.equal(detectSequenceType('B'), 'protein');
    assert.equal(detectSequenceType('ACGB'), 'DNA');
    assert.equal(detectSequenceType('U'), 'RNA');
  });

  it('characters past ASCII are refused, even those whose upper case is an ASCII letter', () => {
    // ſ (long s) upper-cases to S, ı (dotless i) to I, ﬀ to FF: none is an IUPAC letter.
    for (const ch of ['é', 'ſ', 'ı', 'ﬀ', 'Ａ', '\u212a', '\u{1F9EC}']) {
      for (const type of TYPES) {
        let err: unknown;
        try {
          validateSequence(`A${ch}A`, { types: [type], maxLength: 10 });
        } catch (e) {
          err = e;
        }
        assert.ok(err instanceof IsoError, `${type} refuses ${JSON.stringify(ch)}`);
        assert.equal(err.code, 'INVALID_SEQUENCE');
        assert.equal((err.details as { position: number }).position, 2);
        assert.equal(
          (err.details as { character: string }).character,
          ch.length === 2 && ch.codePointAt(0)! > 0xffff ? ch[0] : ch,
        );
      }
    }
  });

  it('normalises by dropping whitespace and upper-casing ASCII letters only', () => {
    assert.equal(normaliseSequence(' a c\tg\r\nt\u00a0n '), 'ACGTN');
    assert.equal(normaliseSequence('acgtſ'), 'ACGTſ');
  });
});

describe('sequence rules', () => {
  it("a task rule carries the task's types, lengths and ambiguity limit", () => {
    const task = {
      name: 't',
      sequence_types: ['DNA'],
      max_length: 50,
      min_length: 3,
      max_ambiguous_fraction: 0.25,
    } as unknown as Parameters<typeof taskRule>[0];
    assert.deepEqual(taskRule(task), { types: ['DNA'], maxLength: 50, minLength: 3, maxAmbiguousFraction: 0.25 });
  });

  it('enforces the minimum length with its own message and details', () => {
    const rule = { types: ['DNA'] as const, maxLength: 10, minLength: 3 };
    assert.equal(validateSequence('ACG', rule).sequence, 'ACG');
    let err: unknown;
    try {
      validateSequence('AC', rule, undefined, 'sequences[2]');
    } catch (e) {
      err = e;
    }
    assert.ok(err instanceof IsoError);
    assert.equal(err.code, 'INVALID_SEQUENCE');
    assert.equal(err.message, 'sequences[2] has 2 residues; this task needs at least 3');
    assert.deepEqual(err.details, { length: 2, min_length: 3 });
  });

  it('names the limit when too long, and the field in every message', () => {
    try {
      validateSequence('ACGTA', { types: ['DNA'], maxLength: 4 }, undefined, 'input');
      assert.fail('expected SEQUENCE_TOO_LONG');
    } catch (e) {
      assert.ok(e instanceof IsoError);
      assert.equal(e.message, 'input has 5 residues; the limit is 4');
      assert.deepEqual(e.details, { length: 5, max_length: 4 });
    }
    assert.throws(() => validateSequence('', { types: ['DNA'], maxLength: 4 }, undefined, 'input'), /input is empty/);
    assert.throws(
      () => validateSequence(null, { types: ['DNA'], maxLength: 4 }, undefined, 'input'),
      /input must be a string/,
    );
    assert.throws(
      () => validateSequence('ACG', { types: ['DNA', 'RNA'], maxLength: 4 }, 'protein'),
      /sequence type protein is not accepted here; accepted: DNA, RNA/,
    );
  });

  it('names every accepted type and their letters when none fits', () => {
    try {
      validateSequence('AC1', { types: ['RNA', 'protein'], maxLength: 10 });
      assert.fail('expected INVALID_SEQUENCE');
    } catch (e) {
      assert.ok(e instanceof IsoError);
      assert.equal(e.message, "sequence is not a valid RNA or protein sequence: character '1' at position 3");
      assert.deepEqual(e.details, {
        position: 3,
        character: '1',
        accepted_types: ['RNA', 'protein'],
        alphabet: [...new Set([...ALPHABETS.RNA, ...ALPHABETS.protein])].join(''),
      });
    }
  });

  it('parses a sequence_type in any case, and refuses others by name', () => {
    assert.equal(parseSequenceType(undefined), undefined);
    assert.equal(parseSequenceType(null), undefined);
    assert.equal(parseSequenceType('dna'), 'DNA');
    assert.equal(parseSequenceType('Rna'), 'RNA');
    assert.equal(parseSequenceType('PROTEIN'), 'protein');
    assert.throws(
      () => parseSequenceType(3),
      (e: unknown) =>
        e instanceof IsoError && e.code === 'INVALID_REQUEST' && e.message === 'sequence_type must be a string',
    );
    assert.throws(
      () => parseSequenceType('peptide' + 'x'.repeat(100)),
      (e: unknown) =>
        e instanceof IsoError &&
        e.code === 'INVALID_REQUEST' &&
        e.message === `unknown sequence_type "${('peptide' + 'x'.repeat(100)).slice(0, 40)}"; use DNA, RNA or protein`,
    );
  });
});

describe('low-information sequences', () => {
  const rule = (maxAmbiguousFraction?: number) => ({
    types: ['DNA', 'RNA'] as const,
    maxLength: 100,
    maxAmbiguousFraction,
  });
  const proteinRule = { types: ['protein'] as const, maxLength: 100, maxAmbiguousFraction: 0.5 };
  const errorOf = (fn: () => unknown): IsoError => {
    try {
      fn();
    } catch (e) {
      assert.ok(e instanceof IsoError);
      return e;
    }
    assert.fail('expected an error');
  };

  it('counts the letters that name no single residue, per type', () => {
    assert.equal(countAmbiguous('ACGTNRYSWKMBDHV', 'DNA'), 11);
    assert.equal(countAmbiguous('ACGUN', 'RNA'), 1);
    assert.equal(countAmbiguous('MKXBZJUO', 'protein'), 4, 'X, B, Z, J; U and O are real residues');
  });

  it('refuses a sequence past the task limit with LOW_INFORMATION_SEQUENCE naming the fraction and the limit', () => {
    const e = errorOf(() => validateSequence('NNNNNNNNNN', rule(0.1)));
    assert.equal(e.code, 'LOW_INFORMATION_SEQUENCE');
    assert.equal(e.status, 400);
    assert.match(e.message, /sequence is 100% ambiguous letters \(10 of 10.*at most 10%/);
    assert.deepEqual(e.details, {
      ambiguous: 10,
      length: 10,
      ambiguous_fraction: 1,
      max_ambiguous_fraction: 0.1,
      ambiguous_letters: 'NRYSWKMBDHV',
    });
    assert.equal(
      errorOf(() => validateSequence('MKXXXXW', proteinRule)).code,
      'LOW_INFORMATION_SEQUENCE',
      'protein X counts',
    );
    assert.equal(
      errorOf(() => validateSequence('ACGTRYACGR', rule(0.2))).code,
      'LOW_INFORMATION_SEQUENCE',
      'R, Y count too',
    );
  });

  it('accepts up to the limit exactly, and everything with limit 1 or none', () => {
    assert.equal(validateSequence('ACGTNACGTN', rule(0.2)).sequence, 'ACGTNACGTN');
    assert.equal(validateSequence('NNNN', rule(1)).type, 'DNA');
    assert.equal(validateSequence('NNNN', rule()).type, 'DNA');
    assert.equal(validateSequence('ACGU', rule(0)).type, 'RNA', 'U is a real base in RNA');
  });

  it('checks the type the sequence was read as, after the alphabet and length checks', () => {
    assert.equal(errorOf(() => validateSequence('NNNN-', rule(0.1))).code, 'INVALID_SEQUENCE');
    assert.equal(errorOf(() => validateSequence('N'.repeat(101), rule(0.1))).code, 'SEQUENCE_TOO_LONG');
    // Read as protein, N is asparagine: nothing ambiguous.
    assert.equal(validateSequence('NNNN', proteinRule).type, 'protein');
  });

  it('reads a sequence as the first accepted type it is informative as: MKV is a peptide, not ambiguous DNA', () => {
    const dnaOrProtein = { types: ['DNA', 'protein'] as const, maxLength: 100, maxAmbiguousFraction: 0.5 };
    assert.equal(validateSequence('MKV', dnaOrProtein).type, 'protein');
    assert.equal(validateSequence('ACGTN', dnaOrProtein).type, 'DNA');
    assert.equal(
      errorOf(() => validateSequence('MKV', dnaOrProtein, 'DNA')).code,
      'LOW_INFORMATION_SEQUENCE',
      'unless DNA is declared',
    );
    const e = errorOf(() => validateSequence('NNNN', { ...dnaOrProtein, types: ['DNA', 'RNA'] as const }));
    assert.match(e.message, /100% ambiguous/);
    assert.equal(e.details && (e.details as { ambiguous_letters: string }).ambiguous_letters, 'NRYSWKMBDHV');
  });
});

describe('FASTA', () => {
  it('reads multi-line records and plain lists', () => {
    const recs = parseFasta('>s1 first one\nACGT\nAC\n\n>s2\nGG\n');
    assert.deepEqual(recs, [
      { id: 's1', description: 'first one', sequence: 'ACGTAC' },
      { id: 's2', description: '', sequence: 'GG' },
    ]);
    assert.deepEqual(
      parseSequences('ACGT\n# comment\nGGCC\n').map((r) => r.sequence),
      ['ACGT', 'GGCC'],
    );
    assert.throws(() => parseFasta('ACGT\n>s1\nAC'), /before the first/);
  });

  it('skips blank and ";" comment lines, trims headers and lines, drops whitespace inside sequence lines', () => {
    const text =
      '\r\n\n; an old-style comment\r\n  > s1   first  one  \r\n  AC GT\tAA \r\n;another\n\n>s2\n>s3\tdesc\nGG\n';
    assert.deepEqual(parseFasta(text), [
      { id: 's1', description: 'first  one', sequence: 'ACGTAA' },
      { id: 's2', description: '', sequence: '' },
      { id: 's3', description: 'desc', sequence: 'GG' },
    ]);
    assert.deepEqual(parseFasta(''), []);
    assert.deepEqual(parseFasta('; only a comment\n\n'), []);
  });

  it('parseSequences reads FASTA when the text starts with ">" (after blank lines), else one sequence per line', () => {
    assert.deepEqual(parseSequences('\n  \n>a x\nAC\nGT\n'), [{ id: 'a', description: 'x', sequence: 'ACGT' }]);
    assert.deepEqual(parseSequences('  ACGT  \r\n\n# a comment\n GGCC\n'), [
      { id: 'seq1', description: '', sequence: 'ACGT' },
      { id: 'seq2', description: '', sequence: 'GGCC' },
    ]);
    assert.deepEqual(
      parseSequences('ACGT>\n'),
      [{ id: 'seq1', description: '', sequence: 'ACGT>' }],
      'a ">" later on is not a header',
    );
  });
});

describe('schema error wording', () => {
  it('describeZod names each issue\'s field path, dotted, and joins issues with "; "', () => {
    const schema = z.object({ inputs: z.array(z.object({ sequence: z.string() })), top_k: z.number() });
    const r = schema.safeParse({ inputs: [{ sequence: 1 }], top_k: 'x' });
    assert.ok(!r.success);
    assert.equal(
      describeZod(r.error),
      'inputs.0.sequence: Expected string, received number; top_k: Expected number, received string',
    );
    const root = z.string().safeParse(3);
    assert.ok(!root.success);
    assert.equal(
      describeZod(root.error),
      'Expected string, received number',
      'an issue about the whole value is its bare message',
    );
  });
});
