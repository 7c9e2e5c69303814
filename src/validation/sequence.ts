// Sequence checks shared by every surface: IUPAC alphabets per sequence type, length limits.
import { IsoError } from '../errors.js';
import type { SequenceType, TaskSpec } from '../manifest/schema.js';

const NUCLEOTIDE_AMBIGUITY = 'NRYSWKMBDHV';
export const ALPHABETS: Record<SequenceType, string> = {
  DNA: 'ACGT' + NUCLEOTIDE_AMBIGUITY,
  RNA: 'ACGU' + NUCLEOTIDE_AMBIGUITY,
  // 20 standard residues, then B/Z/J (ambiguous), X (unknown), U (selenocysteine), O (pyrrolysine).
  protein: 'ACDEFGHIKLMNPQRSTVWY' + 'BZJXUO',
};

/** Letters that name no single residue: they carry less (N, X: nothing) than a real base or residue. */
export const AMBIGUOUS_LETTERS: Record<SequenceType, string> = {
  DNA: NUCLEOTIDE_AMBIGUITY,
  RNA: NUCLEOTIDE_AMBIGUITY,
  protein: 'BZJX',
};

/** Per type, a table indexed by char code (1 = allowed): no per-character string or hash lookup. */
const ALPHABET_TABLES = Object.fromEntries(
  Object.entries(ALPHABETS).map(([k, v]) => {
    const table = new Uint8Array(128);
    for (const ch of v) table[ch.charCodeAt(0)] = 1;
    return [k, table];
  }),
) as Record<SequenceType, Uint8Array>;

/**
 * Upper-cases and removes whitespace (sequences pasted from FASTA files carry line breaks). Only
 * ASCII letters are upper-cased: toUpperCase() would turn ſ into S and ı into I, letting
 * characters that are not IUPAC letters through as if they were.
 */
export function normaliseSequence(raw: string): string {
  return raw.replace(/\s+/g, '').replace(/[a-z]+/g, (run) => run.toUpperCase());
}

function firstInvalid(seq: string, type: SequenceType): number {
  const table = ALPHABET_TABLES[type];
  for (let i = 0; i < seq.length; i++) {
    const c = seq.charCodeAt(i);
    if (c >= 128 || table[c] !== 1) return i;
  }
  return -1;
}

/** Letters that are bases in nucleic acids (N: any base); as protein they are a minority of residues. */
const NUCLEIC_LETTERS = new Uint8Array(128);
for (const ch of 'ACGTUN') NUCLEIC_LETTERS[ch.charCodeAt(0)] = 1;

/**
 * Whether residue composition says nucleic acid: more than half the letters are A, C, G, T, U or
 * N. Every IUPAC nucleotide code is also an amino-acid letter, so validity alone would call a
 * peptide such as MKWVTHSRGAD (4 of 11) or MAAKW (2 of 5) DNA; real DNA is mostly bases, with the
 * odd ambiguity code. A peptide made mostly of A/C/G/T/N (GATTACA) still reads as DNA: declare it.
 * An empty sequence counts as nucleic (read as DNA, as before; validation refuses it as empty).
 */
export function looksNucleic(seq: string): boolean {
  if (seq.length === 0) return true;
  let n = 0;
  for (let i = 0; i < seq.length; i++) {
    const c = seq.charCodeAt(i);
    if (c < 128) n += NUCLEIC_LETTERS[c]!;
  }
  return n * 2 > seq.length;
}

/** Candidate types in the order a sequence should be tried: by its composition, then as given. */
function byComposition(seq: string, types: readonly SequenceType[]): readonly SequenceType[] {
  // Only a choice between protein and a nucleic type needs the composition (a hot path: most tasks take one kind).
  const proteins = types.filter((t) => t === 'protein').length;
  if (proteins === 0 || proteins === types.length) return types;
  const nucleic = looksNucleic(seq);
  const rank = (t: SequenceType): number => ((t === 'protein') === nucleic ? 1 : 0);
  return [...types].sort((a, b) => rank(a) - rank(b));
}

/**
 * The type a sequence reads as, or null when it is valid as none: by composition (looksNucleic)
 * nucleic acid (DNA, else RNA) or protein, among the types it is valid as.
 */
export function detectSequenceType(seq: string): SequenceType | null {
  for (const type of byComposition(seq, ['DNA', 'RNA', 'protein'])) if (firstInvalid(seq, type) === -1) return type;
  return null;
}

/** The letters of several types, each once, in order (DNA and RNA: ACGT…V then U). */
export function alphabetOf(types: readonly SequenceType[]): string {
  return [...new Set(types.flatMap((t) => [...ALPHABETS[t]]))].join('');
}

export interface SequenceRule {
  types: readonly SequenceType[];
  maxLength: number;
  minLength?: number;
  /** Largest fraction of AMBIGUOUS_LETTERS accepted; absent = no limit. */
  maxAmbiguousFraction?: number;
}

/** The rule of a manifest task: what every surface (REST, batch, OpenAI, OIP, MCP, agent, jobs) checks. */
export function taskRule(task: TaskSpec): SequenceRule {
  return {
    types: task.sequence_types,
    maxLength: task.max_length,
    minLength: task.min_length,
    maxAmbiguousFraction: task.max_ambiguous_fraction,
  };
}

const AMBIGUOUS_TABLES = Object.fromEntries(
  Object.entries(AMBIGUOUS_LETTERS).map(([k, v]) => {
    const table = new Uint8Array(128);
    for (const ch of v) table[ch.charCodeAt(0)] = 1;
    return [k, table];
  }),
) as Record<SequenceType, Uint8Array>;

/** How many letters of a valid `type` sequence are ambiguous. */
export function countAmbiguous(seq: string, type: SequenceType): number {
  const table = AMBIGUOUS_TABLES[type];
  let n = 0;
  for (let i = 0; i < seq.length; i++) n += table[seq.charCodeAt(i)] ?? 0;
  return n;
}

/** LOW_INFORMATION_SEQUENCE when `seq`, read as `type`, holds more ambiguous letters than the rule allows. */
function informationError(seq: string, type: SequenceType, rule: SequenceRule, field: string): IsoError | null {
  const limit = rule.maxAmbiguousFraction;
  if (limit === undefined || limit >= 1) return null;
  const ambiguous = countAmbiguous(seq, type);
  const fraction = ambiguous / seq.length;
  if (fraction <= limit) return null;
  const pct = (x: number): string => `${Math.round(x * 1000) / 10}%`;
  return new IsoError(
    'LOW_INFORMATION_SEQUENCE',
    `${field} is ${pct(fraction)} ambiguous letters (${ambiguous} of ${seq.length}: ${AMBIGUOUS_LETTERS[type]}); this task accepts at most ${pct(limit)}`,
    {
      ambiguous,
      length: seq.length,
      ambiguous_fraction: fraction,
      max_ambiguous_fraction: limit,
      ambiguous_letters: AMBIGUOUS_LETTERS[type],
    },
  );
}

export interface ValidSequence {
  sequence: string;
  type: SequenceType;
}

/**
 * Validates one sequence against a task's rule. `declared` (from the request) narrows the
 * accepted types; otherwise the first accepted type the sequence is valid as wins, nucleic types
 * first when its composition says nucleic acid, protein first when not (looksNucleic). A sequence
 * with more ambiguous letters than the rule allows under every type it is valid as is
 * LOW_INFORMATION_SEQUENCE (the error describes the first of them).
 */
export function validateSequence(
  raw: unknown,
  rule: SequenceRule,
  declared?: SequenceType,
  field = 'sequence',
): ValidSequence {
  if (typeof raw !== 'string') throw new IsoError('INVALID_REQUEST', `${field} must be a string`);
  const sequence = normaliseSequence(raw);
  if (sequence.length === 0) throw new IsoError('INVALID_SEQUENCE', `${field} is empty`);
  if (sequence.length > rule.maxLength) {
    throw new IsoError(
      'SEQUENCE_TOO_LONG',
      `${field} has ${sequence.length} residues; the limit is ${rule.maxLength}`,
      {
        length: sequence.length,
        max_length: rule.maxLength,
      },
    );
  }
  if (rule.minLength !== undefined && sequence.length < rule.minLength) {
    throw new IsoError(
      'INVALID_SEQUENCE',
      `${field} has ${sequence.length} residues; this task needs at least ${rule.minLength}`,
      {
        length: sequence.length,
        min_length: rule.minLength,
      },
    );
  }
  const accepted = declared ? rule.types.filter((t) => t === declared) : rule.types;
  if (declared && accepted.length === 0) {
    throw new IsoError(
      'INVALID_SEQUENCE',
      `sequence type ${declared} is not accepted here; accepted: ${rule.types.join(', ')}`,
    );
  }
  // Tried in the order its composition suggests (a peptide such as MKWVTHSRGAD is all IUPAC
  // nucleotide codes, but reads as protein first when the task takes protein), and the first it
  // is valid and informative as wins: "MKV" is all ambiguity codes as DNA but a plain peptide.
  const candidates = byComposition(sequence, accepted);
  let uninformative: IsoError | null = null;
  for (const type of candidates) {
    if (firstInvalid(sequence, type) !== -1) continue;
    const err = informationError(sequence, type, rule, field);
    if (!err) return { sequence, type };
    uninformative ??= err;
  }
  if (uninformative) throw uninformative;
  // The error names a letter no accepted type has (U is fine when RNA is accepted); a sequence
  // whose letters are all accepted but not by one type (T beside U) names the first type's misfit.
  const alphabet = alphabetOf(accepted);
  let at = -1;
  for (let i = 0; i < sequence.length && at === -1; i++) if (!alphabet.includes(sequence[i]!)) at = i;
  const mixed = at === -1;
  if (mixed) at = firstInvalid(sequence, accepted[0]!);
  const ch = sequence[at]!;
  throw new IsoError(
    'INVALID_SEQUENCE',
    mixed
      ? `${field} is not a valid ${accepted.join(' or ')} sequence: it mixes their letters (character '${ch}' at position ${at + 1} is not ${accepted[0]})`
      : `${field} is not a valid ${accepted.join(' or ')} sequence: character '${ch}' at position ${at + 1}`,
    { position: at + 1, character: ch, accepted_types: accepted, alphabet },
  );
}

export function parseSequenceType(v: unknown): SequenceType | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new IsoError('INVALID_REQUEST', 'sequence_type must be a string');
  const t = (['DNA', 'RNA', 'protein'] as const).find((x) => x.toLowerCase() === v.toLowerCase());
  if (!t) throw new IsoError('INVALID_REQUEST', `unknown sequence_type "${v.slice(0, 40)}"; use DNA, RNA or protein`);
  return t;
}
