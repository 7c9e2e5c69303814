// Sequence checks shared by every surface: IUPAC alphabets per sequence type, length limits.
import { IsoError } from '../errors.js';
import type { SequenceType } from '../manifest/schema.js';

const NUCLEOTIDE_AMBIGUITY = 'NRYSWKMBDHV';
export const ALPHABETS: Record<SequenceType, string> = {
  DNA: 'ACGT' + NUCLEOTIDE_AMBIGUITY,
  RNA: 'ACGU' + NUCLEOTIDE_AMBIGUITY,
  // 20 standard residues, then B/Z/J (ambiguous), X (unknown), U (selenocysteine), O (pyrrolysine).
  protein: 'ACDEFGHIKLMNPQRSTVWY' + 'BZJXUO',
};

/** Per type, a table indexed by char code (1 = allowed): no per-character string or hash lookup. */
const ALPHABET_TABLES = Object.fromEntries(
  Object.entries(ALPHABETS).map(([k, v]) => {
    const table = new Uint8Array(128);
    for (const ch of v) table[ch.charCodeAt(0)] = 1;
    return [k, table];
  }),
) as Record<SequenceType, Uint8Array>;

/** Upper-cases and removes whitespace (sequences pasted from FASTA files carry line breaks). */
export function normaliseSequence(raw: string): string {
  return raw.replace(/\s+/g, '').toUpperCase();
}

function firstInvalid(seq: string, type: SequenceType): number {
  const table = ALPHABET_TABLES[type];
  for (let i = 0; i < seq.length; i++) {
    const c = seq.charCodeAt(i);
    if (c >= 128 || table[c] !== 1) return i;
  }
  return -1;
}

/** The most specific type the sequence is valid as: nucleotides win over protein. */
export function detectSequenceType(seq: string): SequenceType | null {
  if (firstInvalid(seq, 'DNA') === -1) return 'DNA';
  if (firstInvalid(seq, 'RNA') === -1) return 'RNA';
  if (firstInvalid(seq, 'protein') === -1) return 'protein';
  return null;
}

export interface SequenceRule {
  types: readonly SequenceType[];
  maxLength: number;
  minLength?: number;
}

export interface ValidSequence {
  sequence: string;
  type: SequenceType;
}

/**
 * Validates one sequence against a task's rule. `declared` (from the request) narrows the
 * accepted types; otherwise the first accepted type the sequence is valid as wins.
 */
export function validateSequence(raw: unknown, rule: SequenceRule, declared?: SequenceType, field = 'sequence'): ValidSequence {
  if (typeof raw !== 'string') throw new IsoError('INVALID_REQUEST', `${field} must be a string`);
  const sequence = normaliseSequence(raw);
  if (sequence.length === 0) throw new IsoError('INVALID_SEQUENCE', `${field} is empty`);
  if (sequence.length > rule.maxLength) {
    throw new IsoError('SEQUENCE_TOO_LONG', `${field} has ${sequence.length} residues; the limit is ${rule.maxLength}`, {
      length: sequence.length,
      max_length: rule.maxLength,
    });
  }
  if (rule.minLength !== undefined && sequence.length < rule.minLength) {
    throw new IsoError('INVALID_SEQUENCE', `${field} has ${sequence.length} residues; this task needs at least ${rule.minLength}`, {
      length: sequence.length,
      min_length: rule.minLength,
    });
  }
  const candidates = declared ? rule.types.filter((t) => t === declared) : rule.types;
  if (declared && candidates.length === 0) {
    throw new IsoError('INVALID_SEQUENCE', `sequence type ${declared} is not accepted here; accepted: ${rule.types.join(', ')}`);
  }
  for (const type of candidates) if (firstInvalid(sequence, type) === -1) return { sequence, type };
  const type = candidates[0]!;
  const at = firstInvalid(sequence, type);
  const ch = sequence[at]!;
  throw new IsoError(
    'INVALID_SEQUENCE',
    `${field} is not a valid ${candidates.join(' or ')} sequence: character '${ch}' at position ${at + 1}`,
    { position: at + 1, character: ch, accepted_types: candidates, alphabet: ALPHABETS[type] },
  );
}

export function parseSequenceType(v: unknown): SequenceType | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new IsoError('INVALID_REQUEST', 'sequence_type must be a string');
  const t = (['DNA', 'RNA', 'protein'] as const).find((x) => x.toLowerCase() === v.toLowerCase());
  if (!t) throw new IsoError('INVALID_REQUEST', `unknown sequence_type "${v.slice(0, 40)}"; use DNA, RNA or protein`);
  return t;
}
