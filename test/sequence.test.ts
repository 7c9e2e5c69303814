// Sequence validation rules shared by every surface.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { IsoError } from '../src/errors.js';
import { parseFasta, parseSequences } from '../src/validation/fasta.js';
import { detectSequenceType, validateSequence } from '../src/validation/sequence.js';

const dna = { types: ['DNA'] as const, maxLength: 10 };

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
    assert.equal(validateSequence('MKV', both).type, 'DNA', 'M, K and V are IUPAC nucleotide codes too');
    assert.equal(validateSequence('MKF', both).type, 'protein');
    assert.equal(validateSequence('ACG', both, 'protein').type, 'protein');
    assert.equal(codeOf(() => validateSequence('ACG', dna, 'protein')), 'INVALID_SEQUENCE');
    assert.equal(detectSequenceType('ACGT'), 'DNA');
    assert.equal(detectSequenceType('MKWVTFISLL'), 'protein');
    assert.equal(detectSequenceType('12'), null);
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
