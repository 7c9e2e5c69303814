// Sequence validation rules shared by every surface.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IsoError } from '../src/errors.js';
import { parseFasta, parseSequences } from '../src/validation/fasta.js';
import { countAmbiguous, detectSequenceType, looksNucleic, validateSequence } from '../src/validation/sequence.js';

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
    assert.equal(codeOf(() => validateSequence('ACGU', dna)), 'INVALID_SEQUENCE');
    assert.equal(codeOf(() => validateSequence('AC-T', dna)), 'INVALID_SEQUENCE');
    assert.equal(codeOf(() => validateSequence('ACGTé', dna)), 'INVALID_SEQUENCE');
    assert.equal(codeOf(() => validateSequence('', dna)), 'INVALID_SEQUENCE');
    assert.equal(codeOf(() => validateSequence(5, dna)), 'INVALID_REQUEST');
  });

  it('enforces the length limit after normalisation', () => {
    assert.equal(codeOf(() => validateSequence('A'.repeat(11), dna)), 'SEQUENCE_TOO_LONG');
    assert.equal(validateSequence('A'.repeat(10) + '  \n', dna).sequence.length, 10);
  });

  it('picks the first accepted type the sequence fits, or the declared one', () => {
    const both = { types: ['DNA', 'RNA', 'protein'] as const, maxLength: 100 };
    assert.equal(validateSequence('ACGU', both).type, 'RNA');
    // M, K and V are IUPAC nucleotide codes too, but composition says peptide (issue 23).
    assert.equal(validateSequence('MKV', both).type, 'protein');
    assert.equal(validateSequence('MKF', both).type, 'protein');
    assert.equal(validateSequence('ACG', both, 'protein').type, 'protein');
    assert.equal(codeOf(() => validateSequence('ACG', dna, 'protein')), 'INVALID_SEQUENCE');
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
    for (const [seq, type] of [['ACGTNNACGT', 'DNA'], ['ATGCRYN', 'DNA'], ['ACGTRYACGR', 'DNA'], ['ACGUUGCA', 'RNA'], ['NNNNACGU', 'RNA'], ['ACT', 'DNA']] as const) {
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

  it("INVALID_SEQUENCE names a letter no accepted type has, and its alphabet lists U when RNA is accepted", () => {
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
    assert.match(e.message, /not a valid DNA or RNA sequence: character 'X' at position 5/, 'U is RNA, not the culprit');
    const details = e.details as { alphabet: string; accepted_types: string[]; position: number };
    assert.ok(details.alphabet.includes('U') && details.alphabet.includes('T'), details.alphabet);
    assert.equal(details.position, 5);
    assert.equal((errorOf(() => validateSequence('ACGX', dna)).details as { alphabet: string }).alphabet.includes('U'), false, 'DNA only: no U');
    // T beside U: every letter is accepted, but by no single type.
    const mixed = errorOf(() => validateSequence('ACTU', nucleic));
    assert.match(mixed.message, /mixes their letters \(character 'U' at position 4 is not DNA\)/);
  });
});

describe('low-information sequences', () => {
  const rule = (maxAmbiguousFraction?: number) => ({ types: ['DNA', 'RNA'] as const, maxLength: 100, maxAmbiguousFraction });
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
    assert.deepEqual(e.details, { ambiguous: 10, length: 10, ambiguous_fraction: 1, max_ambiguous_fraction: 0.1, ambiguous_letters: 'NRYSWKMBDHV' });
    assert.equal(errorOf(() => validateSequence('MKXXXXW', proteinRule)).code, 'LOW_INFORMATION_SEQUENCE', 'protein X counts');
    assert.equal(errorOf(() => validateSequence('ACGTRYACGR', rule(0.2))).code, 'LOW_INFORMATION_SEQUENCE', 'R, Y count too');
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
    assert.equal(errorOf(() => validateSequence('MKV', dnaOrProtein, 'DNA')).code, 'LOW_INFORMATION_SEQUENCE', 'unless DNA is declared');
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
    assert.deepEqual(parseSequences('ACGT\n# comment\nGGCC\n').map((r) => r.sequence), ['ACGT', 'GGCC']);
    assert.throws(() => parseFasta('ACGT\n>s1\nAC'), /before the first/);
  });
});
