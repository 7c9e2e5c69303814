// The built-in `codon` model through a real gateway, checked against EMBOSS 6.6.0 (`cai`, `cusp`)
// and Biopython (GC123, CodonAdaptationIndex). Those tools are required: CI installs them with
// `apt-get install -y emboss python3-biopython`, and this suite fails (it does not skip) without them.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BUILTIN_MODELS_DIR, PACKAGE_ROOT } from '../src/paths.js';
import { startGateway, type Harness } from './helpers.js';
import { mulberry32 } from '../src/util/prng.js';

const ORGANISMS = ['ecoli', 'human', 'yeast'] as const;
type Organism = (typeof ORGANISMS)[number];
const BIOPYTHON = '/usr/bin/python3';
const EMBOSS_CODON_DIRS = ['/usr/share/EMBOSS/data/CODONS', '/usr/local/share/EMBOSS/data/CODONS'];

// --- an independent standard genetic code (NCBI table 1) -------------------------------
const BASES = 'TCAG';
const CODE = 'FFLLSSSSYY**CC*WLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG';
const GENETIC_CODE = new Map<string, string>();
for (let i = 0; i < 64; i++) GENETIC_CODE.set(BASES[i >> 4]! + BASES[(i >> 2) & 3]! + BASES[i & 3]!, CODE[i]!);
const SENSE = [...GENETIC_CODE].filter(([, aa]) => aa !== '*').map(([c]) => c);
const STOPS = [...GENETIC_CODE].filter(([, aa]) => aa === '*').map(([c]) => c);
const IUPAC: Record<string, string> = {
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

function translate(dna: string): string {
  assert.equal(dna.length % 3, 0, `not whole codons: ${dna.length} bases`);
  let protein = '';
  for (let i = 0; i < dna.length; i += 3) {
    const aa = GENETIC_CODE.get(dna.slice(i, i + 3));
    assert.ok(aa, `not a concrete codon: ${dna.slice(i, i + 3)}`);
    protein += aa;
  }
  return protein;
}

function reverseComplement(dna: string): string {
  const comp: Record<string, string> = { A: 'T', C: 'G', G: 'C', T: 'A' };
  return [...dna]
    .reverse()
    .map((b) => comp[b]!)
    .join('');
}

/** Every (overlapping) position where an IUPAC motif matches a concrete DNA string. */
function motifHits(dna: string, motif: string): number[] {
  const hits: number[] = [];
  for (let i = 0; i + motif.length <= dna.length; i++) {
    if ([...motif].every((m, k) => IUPAC[m]!.includes(dna[i + k]!))) hits.push(i);
  }
  return hits;
}

// --- seeded sequences -------------------------------------------------------------------
const rand = mulberry32(20240607);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
const randInt = (lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1));

interface TableRow {
  amino_acid: string;
  fraction: number;
  per_thousand: number;
  count: number;
}
interface TableJson {
  organism: string;
  species: string;
  source: { file: string; sha256: string; emboss_version: string; release: string };
  codons: Record<string, TableRow>;
}
const TABLES = Object.fromEntries(
  ORGANISMS.map((o) => [
    o,
    JSON.parse(readFileSync(join(BUILTIN_MODELS_DIR, 'codon', 'data', `${o}.json`), 'utf8')) as TableJson,
  ]),
) as Record<Organism, TableJson>;

/** Uniformly random sense codons between ATG and a stop: 50..400 codons, no internal stop. */
function randomCds(): string {
  const n = randInt(50, 400);
  let s = 'ATG';
  for (let i = 2; i < n; i++) s += pick(SENSE);
  return s + pick(STOPS);
}

/** Codons drawn with the organism's own usage frequencies: CAI values like real genes. */
function realisticCds(organism: Organism): string {
  const rows = Object.entries(TABLES[organism].codons);
  const sense = rows.filter(([, r]) => r.amino_acid !== '*');
  const stops = rows.filter(([, r]) => r.amino_acid === '*');
  const draw = (pool: [string, TableRow][]): string => {
    const total = pool.reduce((a, [, r]) => a + r.count, 0);
    let x = rand() * total;
    for (const [c, r] of pool) if ((x -= r.count) < 0) return c;
    return pool[pool.length - 1]![0];
  };
  const n = randInt(120, 400);
  let s = 'ATG';
  for (let i = 2; i < n; i++) s += draw(sense);
  return s + draw(stops);
}

/** A CDS with ~3 % of its bases replaced by IUPAC ambiguity codes (the codons holding them are skipped). */
function withAmbiguity(cds: string): string {
  return [...cds].map((b) => (rand() < 0.03 ? pick([...'NRYSWKMBDHV']) : b)).join('');
}

const RANDOM = Array.from({ length: 30 }, randomCds);
const REALISTIC = ORGANISMS.flatMap((o) => [realisticCds(o), realisticCds(o), realisticCds(o)]);
const EDGE = [
  'ATGGCTGCAAAATGGTAAGC', // trailing partial codon
  'ATGTAGTGATAAGCCGCAAAG', // internal stop codons
  'ATGTGGTGGATGTAA', // only single-codon amino acids and a stop
  'ATGNNNGCTRYAAAGTAA', // ambiguity codes
  withAmbiguity(randomCds()),
  withAmbiguity(realisticCds('human')),
  randomCds().slice(0, -1), // stop codon cut short
];
const ALL = [...RANDOM, ...REALISTIC, ...EDGE];
const CLEAN = [...RANDOM, ...REALISTIC]; // A/C/G/T only, whole codons
const isClean = (s: string): boolean => /^[ACGT]*$/.test(s) && s.length % 3 === 0;
const wholeCodons = (s: string): string[] => s.slice(0, s.length - (s.length % 3)).match(/.{3}/g) ?? [];
const ambiguousCodons = (s: string): number => wholeCodons(s).filter((c) => !GENETIC_CODE.has(c)).length;
/**
 * The sequence without its codons that hold an ambiguity letter (frame kept, trailing bases kept):
 * what EMBOSS must see to give the value the model gives, since EMBOSS itself would read NNN as AAA.
 */
const withoutAmbiguousCodons = (s: string): string =>
  wholeCodons(s)
    .filter((c) => GENETIC_CODE.has(c))
    .join('') + s.slice(s.length - (s.length % 3));

// --- external tools ---------------------------------------------------------------------
function requireTool(cmd: string, args: string[], install: string): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    throw new Error(
      `${cmd} is required by the codon model tests and is not usable (${r.error?.message ?? r.stderr.trim()}): ` +
        `install it with \`${install}\` (CI does this)`,
    );
  }
}

function run(cmd: string, args: string[], input?: string): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input, maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

function fasta(seqs: string[]): string {
  return seqs.map((s, i) => `>s${i}\n${s.match(/.{1,60}/g)!.join('\n')}\n`).join('');
}

describe('codon model against EMBOSS and Biopython', () => {
  let h: Harness;
  let work: string;
  let codonsDir: string;
  let seq = 0;

  before(async () => {
    requireTool('cai', ['-version'], 'apt-get install -y emboss');
    requireTool('cusp', ['-version'], 'apt-get install -y emboss');
    requireTool(
      BIOPYTHON,
      ['-c', 'from Bio.SeqUtils import GC123, CodonAdaptationIndex'],
      'apt-get install -y python3-biopython',
    );
    const dir = EMBOSS_CODON_DIRS.find((d) => existsSync(join(d, 'Eecoli.cut')));
    if (!dir)
      throw new Error(
        `EMBOSS codon tables not found in ${EMBOSS_CODON_DIRS.join(' or ')}: install them with \`apt-get install -y emboss\``,
      );
    codonsDir = dir;
    work = mkdtempSync(join(tmpdir(), 'isomodel-codon-'));
    chmodSync(work, 0o755); // a models dir in here: workers (nobody, as root) must reach it
    h = await startGateway(['codon']);
  });
  after(async () => {
    await h?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  const writeFasta = (seqs: string[]): string => {
    const path = join(work, `q${seq++}.fa`);
    writeFileSync(path, fasta(seqs));
    return path;
  };

  /** EMBOSS cai for each sequence: the printed string ("0.807", or "-nan"). */
  const embossCai = (seqs: string[], organism: Organism): string[] => {
    const out = run('cai', [
      '-seqall',
      writeFasta(seqs),
      '-cfile',
      join(codonsDir, TABLES[organism].source.file),
      '-outfile',
      'stdout',
      '-auto',
    ]);
    const values = [...out.matchAll(/^Sequence: s(\d+) CAI: (\S+)$/gm)].map((m) => m[2]!);
    assert.equal(values.length, seqs.length, out);
    return values;
  };

  const batch = async (task: string, sequences: string[], options: Record<string, unknown> = {}): Promise<any[]> => {
    const r = await h.post('/models/codon/predict/batch', { sequences, task_type: task, options });
    assert.equal(r.status, 200, JSON.stringify(r.body).slice(0, 2000));
    return r.body.data.predictions;
  };

  it('serves the four tasks', async () => {
    const r = await h.get('/models/codon/model/info');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.data.tasks, ['codon_adaptation_index', 'gc_content', 'codon_usage', 'codon_optimize']);
  });

  it('bundles the EMBOSS codon usage tables unchanged', () => {
    for (const organism of ORGANISMS) {
      const table = TABLES[organism];
      const text = readFileSync(join(codonsDir, table.source.file), 'utf8');
      const rows: Record<string, TableRow> = {};
      for (const line of text.split('\n')) {
        const f = line.trim().split(/\s+/);
        if (line.startsWith('#') || f.length !== 5) continue;
        rows[f[0]!] = { amino_acid: f[1]!, fraction: Number(f[2]), per_thousand: Number(f[3]), count: Number(f[4]) };
      }
      assert.deepEqual(table.codons, rows, `${organism}.json differs from ${codonsDir}/${table.source.file}`);
      for (const [codon, row] of Object.entries(rows)) assert.equal(row.amino_acid, GENETIC_CODE.get(codon), codon);
    }
  });

  it('codon_adaptation_index equals EMBOSS cai for every organism (ambiguous codons skipped, never read as real ones)', async (t) => {
    let compared = 0;
    let sameText = 0;
    let maxDiff = 0;
    const cases = [...ALL, 'AT']; // "AT": no complete codon (EMBOSS prints -nan)
    for (const organism of ORGANISMS) {
      const ours = await batch('codon_adaptation_index', cases, { organism });
      const theirs = embossCai(cases.map(withoutAmbiguousCodons), organism);
      cases.forEach((s, i) => {
        const o = ours[i];
        const ambiguous = ambiguousCodons(s);
        assert.equal(o.organism, organism);
        assert.equal(o.method, 'emboss');
        assert.equal(
          o.codons_used,
          Math.floor(s.length / 3) - ambiguous,
          'EMBOSS counts every complete concrete codon',
        );
        assert.equal(o.codons_skipped, ambiguous);
        assert.equal(o.skipped_by_reason.ambiguous, ambiguous);
        assert.equal(o.trailing_bases, s.length % 3);
        assert.equal(o.ambiguous_codons, ambiguous);
        if (/nan/i.test(theirs[i]!)) {
          assert.equal(o.cai, null, `${organism} s${i}`);
          return;
        }
        const diff = Math.abs(o.cai - Number(theirs[i]));
        assert.ok(diff <= 0.0005 + 1e-12, `${organism} s${i}: ours ${o.cai}, EMBOSS ${theirs[i]}`);
        if (Math.fround(o.cai).toFixed(3) === theirs[i]) sameText++;
        maxDiff = Math.max(maxDiff, diff);
        compared++;
      });
    }
    t.diagnostic(
      `cai: ${compared} values (3 organisms); identical when printed with %.3f: ${sameText}; max |ours - EMBOSS| = ${maxDiff.toFixed(6)}`,
    );
    assert.equal(sameText, compared, 'every value prints as EMBOSS prints it');
  });

  it('codon_adaptation_index method sharp_li equals Biopython CodonAdaptationIndex', async (t) => {
    const jobs = ORGANISMS.map((organism) => {
      // Independent weights: w = count / largest count among synonymous sense codons (0 -> 0.5).
      const rows = TABLES[organism].codons;
      const weights: Record<string, number> = {};
      for (const [codon, row] of Object.entries(rows)) {
        if (row.amino_acid === '*') continue;
        const top = Math.max(
          ...Object.values(rows)
            .filter((r) => r.amino_acid === row.amino_acid)
            .map((r) => r.count || 0.5),
        );
        weights[codon] = (row.count || 0.5) / top;
      }
      return { organism, weights, sequences: CLEAN };
    });
    const ref = JSON.parse(
      run(
        BIOPYTHON,
        [join(PACKAGE_ROOT, 'test', 'fixtures', 'codon_biopython.py')],
        JSON.stringify({ sequences: [], cai: jobs }),
      ),
    );
    let maxRel = 0;
    for (const [k, organism] of ORGANISMS.entries()) {
      const ours = await batch('codon_adaptation_index', CLEAN, { organism, method: 'sharp_li' });
      CLEAN.forEach((s, i) => {
        const o = ours[i];
        const codons = s.match(/.{3}/g)!;
        assert.equal(o.skipped_by_reason.stop, codons.filter((c) => GENETIC_CODE.get(c) === '*').length);
        assert.equal(o.skipped_by_reason.single_codon, codons.filter((c) => c === 'ATG' || c === 'TGG').length);
        assert.equal(o.codons_used + o.codons_skipped, codons.length);
        const rel = Math.abs(o.cai - ref.cai[k][i]) / ref.cai[k][i];
        assert.ok(rel < 1e-12, `${organism} s${i}: ours ${o.cai}, Biopython ${ref.cai[k][i]}`);
        maxRel = Math.max(maxRel, rel);
      });
    }
    t.diagnostic(
      `sharp_li vs Biopython ${CLEAN.length} x 3 organisms: max relative difference ${maxRel.toExponential(2)}`,
    );
  });

  it('codon_usage equals EMBOSS cusp (counts, frequency per thousand, fraction) and gc_content its GC lines', async (t) => {
    const cases = ALL;
    const ours = await batch('codon_usage', cases);
    const gc = await batch('gc_content', cases);
    let maxDiff = 0;
    let gcCompared = 0;
    cases.forEach((s, i) => {
      const out = run('cusp', ['-sequence', writeFasta([withoutAmbiguousCodons(s)]), '-outfile', 'stdout', '-auto']);
      const rows = [...out.matchAll(/^([ACGT]{3})\s+(\S)\s+(\S+)\s+(\S+)\s+(\d+)$/gm)];
      assert.equal(rows.length, 64, out);
      const o = ours[i];
      assert.deepEqual(
        Object.keys(o.codons),
        rows.map((r) => r[1]),
        'cusp codon order',
      );
      let total = 0;
      for (const [, codon, aa, fraction, perThousand, count] of rows) {
        const c = o.codons[codon!];
        assert.equal(c.amino_acid, aa, codon);
        assert.equal(c.count, Number(count), `s${i} ${codon} count`);
        for (const [mine, printed] of [
          [c.fraction, fraction],
          [c.per_thousand, perThousand],
        ] as const) {
          const d = Math.abs(mine - Number(printed));
          assert.ok(d <= 0.0005 + 1e-9, `s${i} ${codon}: ours ${mine}, cusp ${printed}`);
          maxDiff = Math.max(maxDiff, d);
        }
        const synonyms = [...GENETIC_CODE.values()].filter((x) => x === aa).length;
        assert.ok(Math.abs(c.rscu - c.fraction * synonyms) < 1e-12);
        total += Number(count);
      }
      assert.equal(o.total_codons, total);
      assert.equal(o.ambiguous_codons, ambiguousCodons(s));
      assert.equal(o.codons_skipped, ambiguousCodons(s));
      if (isClean(s)) {
        // For whole A/C/G/T codons cusp's "#Coding GC" lines are the same quantities as gc_content.
        const lines = ['Coding GC', '1st letter GC', '2nd letter GC', '3rd letter GC'].map((label) =>
          Number(new RegExp(`^#${label}\\s+([0-9.]+)%$`, 'm').exec(out)![1]),
        );
        const mine = [gc[i].gc_content, gc[i].gc1, gc[i].gc2, gc[i].gc3];
        lines.forEach((pct, k) =>
          assert.ok(Math.abs(mine[k] * 100 - pct) <= 0.005 + 1e-9, `s${i} GC line ${k}: ${mine[k]} vs ${pct}%`),
        );
        gcCompared++;
      }
    });
    t.diagnostic(
      `cusp: ${cases.length} sequences x 64 codons; counts identical; max |fraction or per-thousand diff| = ${maxDiff.toFixed(6)} (cusp prints 3 decimals); GC lines compared for ${gcCompared}`,
    );
  });

  it('never reads a codon with an ambiguity letter as a real codon: NNN is skipped and counted, not AAA', async () => {
    for (const options of [{}, { ambiguous: 'skip' }]) {
      const [o] = await batch('codon_usage', ['ATGNNNGCTRYAAAGTAAG'], options);
      assert.equal(o.total_codons, 4);
      assert.equal(o.ambiguous_codons, 2);
      assert.equal(o.codons_skipped, 2);
      assert.equal(o.ambiguous_handling, 'skip');
      assert.equal(o.trailing_bases, 1);
      assert.equal(o.codons.AAA.count, 0);
      assert.equal(o.amino_acids.K, 1, 'only the real AAG');
      assert.equal(o.codons.GCT.fraction, 1);
    }
    // The CAI of ATG CTA NNN TAA is that of ATG CTA TAA, not that of ATG CTA AAA TAA (EMBOSS's reading).
    const [amb, without, asAaa] = await batch('codon_adaptation_index', ['ATGCTANNNTAA', 'ATGCTATAA', 'ATGCTAAAATAA']);
    assert.equal(amb.codons_used, 3);
    assert.equal(amb.skipped_by_reason.ambiguous, 1);
    assert.equal(amb.cai, without.cai);
    assert.notEqual(amb.cai, asAaa.cai);
    const [sl] = await batch('codon_adaptation_index', ['ATGGCTNNNGCAGCGTAA'], { method: 'sharp_li' });
    assert.equal(sl.skipped_by_reason.ambiguous, 1);
    assert.equal(sl.codons_used, 3);
    // Mostly N: no information, a clear 400 naming the fraction and the limit (codon_optimize judges
    // ambiguous codons itself: NNN can be any amino acid, INVALID_SEQUENCE).
    const opt = await h.post('/models/codon/predict', {
      task_type: 'codon_optimize',
      sequence: 'ATG' + 'N'.repeat(57),
    });
    assert.equal(opt.body.error.code, 'INVALID_SEQUENCE');
    for (const task of ['codon_adaptation_index', 'codon_usage', 'gc_content']) {
      const r = await h.post('/models/codon/predict', { task_type: task, sequence: 'ATG' + 'N'.repeat(57) });
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.equal(r.body.error.code, 'LOW_INFORMATION_SEQUENCE');
      assert.match(r.body.message, /95% ambiguous.*at most 50%/);
      assert.equal(r.body.error.details.max_ambiguous_fraction, 0.5);
    }
  });

  it('gc_content equals Biopython GC123', async (t) => {
    const cases = [...ALL, 'ACTGTN', 'GGGCCCAT'];
    const ours = await batch('gc_content', cases);
    const ref = JSON.parse(
      run(
        BIOPYTHON,
        [join(PACKAGE_ROOT, 'test', 'fixtures', 'codon_biopython.py')],
        JSON.stringify({ sequences: cases, cai: [] }),
      ),
    );
    let maxDiff = 0;
    cases.forEach((s, i) => {
      const o = ours[i];
      const mine = [o.gc_content, o.gc1, o.gc2, o.gc3];
      (ref.gc123[i] as number[]).forEach((pct, k) => {
        if (mine[k] === null) return assert.equal(pct, 0, `s${i}: GC123 gives 0 where no base was counted`);
        const d = Math.abs(mine[k] * 100 - pct);
        assert.ok(d < 1e-9, `s${i} [${k}]: ours ${mine[k]}, GC123 ${pct}`);
        maxDiff = Math.max(maxDiff, d);
      });
      assert.equal(o.length, s.length);
    });
    assert.deepEqual(ours.at(-2), {
      sequence: 'ACTGTN',
      gc_content: 0.4,
      gc1: 0.5,
      gc2: 0.5,
      gc3: 0,
      length: 6,
      bases_counted: 5,
      trailing_bases: 0,
    });
    t.diagnostic(`GC123: ${cases.length} sequences, max |diff| ${maxDiff.toExponential(2)} percentage points`);
  });

  it('codon_optimize keeps the protein and raises the CAI (judged by EMBOSS) for DNA input', async (t) => {
    const inputs = CLEAN;
    let lowest = Infinity;
    for (const organism of ORGANISMS) {
      const ours = await batch('codon_optimize', inputs, { organism });
      const before = embossCai(inputs, organism);
      const afterCai = embossCai(
        ours.map((o) => o.sequence),
        organism,
      );
      inputs.forEach((s, i) => {
        const o = ours[i];
        assert.match(o.sequence, /^[ACGT]+$/);
        assert.equal(o.input_type, 'dna');
        assert.equal(translate(o.sequence), translate(s), `${organism} s${i}: same protein`);
        assert.equal(o.protein, translate(s));
        assert.ok(Math.abs(o.input_cai - Number(before[i])) <= 0.0005 + 1e-12);
        assert.ok(Math.abs(o.cai - Number(afterCai[i])) <= 0.0005 + 1e-12);
        assert.ok(
          Number(afterCai[i]) > Number(before[i]),
          `${organism} s${i}: EMBOSS CAI ${before[i]} -> ${afterCai[i]}`,
        );
        assert.equal(o.cai, 1, 'without constraints every codon is the most used one');
        assert.equal(
          o.codons_changed,
          s.match(/.{3}/g)!.filter((c, k) => c !== o.sequence.slice(3 * k, 3 * k + 3)).length,
        );
        lowest = Math.min(lowest, Number(afterCai[i]) - Number(before[i]));
      });
    }
    t.diagnostic(`optimised ${inputs.length} x 3; smallest EMBOSS CAI gain ${lowest.toFixed(3)}`);
  });

  it('codon_optimize avoids motifs on both strands and long homopolymers, exactly', async (t) => {
    const avoid = ['GAATTC', 'GGATCC', 'AAGCTT', 'GGTCTC', 'GCGGCCGC', 'CACNNNGTG', 'CATATG'];
    const maxRun = 4;
    const inputs = CLEAN;
    const ours = await batch('codon_optimize', inputs, { organism: 'ecoli', avoid, max_homopolymer: maxRun });
    const before = embossCai(inputs, 'ecoli');
    const afterCai = embossCai(
      ours.map((o) => o.sequence),
      'ecoli',
    );
    let inputHits = 0;
    inputs.forEach((s, i) => {
      const o = ours[i];
      assert.equal(translate(o.sequence), translate(s), `s${i}: same protein`);
      for (const m of avoid) {
        inputHits += motifHits(s, m).length;
        assert.deepEqual(motifHits(o.sequence, m), [], `s${i}: ${m} present`);
        assert.deepEqual(motifHits(reverseComplement(o.sequence), m), [], `s${i}: ${m} on the other strand`);
      }
      assert.doesNotMatch(
        o.sequence,
        new RegExp(`A{${maxRun + 1}}|C{${maxRun + 1}}|G{${maxRun + 1}}|T{${maxRun + 1}}`),
        `s${i}: homopolymer`,
      );
      assert.deepEqual(o.constraints, { avoid, both_strands: true, max_homopolymer: maxRun });
      assert.ok(Number(afterCai[i]) > Number(before[i]), `s${i}: EMBOSS CAI ${before[i]} -> ${afterCai[i]}`);
    });
    t.diagnostic(`${inputs.length} sequences; the inputs held ${inputHits} motif occurrences, the outputs none`);
  });

  it('codon_optimize back-translates proteins', async () => {
    const aas = 'ACDEFGHIKLMNPQRSTVWY';
    const proteins = Array.from(
      { length: 10 },
      () => 'M' + Array.from({ length: randInt(30, 300) }, () => pick([...aas])).join('') + 'LE',
    );
    for (const organism of ORGANISMS) {
      const ours = await batch('codon_optimize', proteins, { organism, avoid: ['GGTCTC'], max_homopolymer: 5 });
      proteins.forEach((p, i) => {
        assert.equal(ours[i].input_type, 'protein');
        assert.equal(translate(ours[i].sequence), p);
        assert.equal(ours[i].protein, p);
        assert.equal(ours[i].input_cai, undefined);
        assert.deepEqual(motifHits(ours[i].sequence, 'GGTCTC'), []);
        assert.deepEqual(motifHits(ours[i].sequence, 'GAGACC'), []);
      });
    }
    // A peptide made of DNA letters needs input_type protein.
    const r = await h.post('/models/codon/predict', {
      sequence: 'MKV',
      task_type: 'codon_optimize',
      options: { input_type: 'protein' },
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(translate(r.body.data.sequence), 'MKV');
  });

  it('codon_optimize finds the best constrained sequence (checked by exhaustive search)', async (t) => {
    // EMBOSS-style w, computed here independently: per-thousand / largest of the synonymous group.
    const rows = TABLES.yeast.codons;
    const w = new Map(
      Object.entries(rows).map(([c, r]) => [
        c,
        r.per_thousand /
          Math.max(
            ...Object.values(rows)
              .filter((x) => x.amino_acid === r.amino_acid)
              .map((x) => x.per_thousand),
          ),
      ]),
    );
    const synonyms = (aa: string): string[] => [...GENETIC_CODE].filter(([, x]) => x === aa).map(([c]) => c);
    let feasible = 0;
    let infeasible = 0;
    for (let k = 0; k < 60; k++) {
      const protein = Array.from({ length: randInt(1, 5) }, () => pick([...'ACDEFGHIKLMNPQRSTVWY'])).join('');
      const avoid = Array.from({ length: randInt(0, 3) }, () =>
        Array.from({ length: randInt(2, 5) }, () => pick([...'ACGTACGTN'])).join(''),
      );
      const maxRun = pick([2, 3, 4]);
      const bad = (dna: string): boolean =>
        avoid.some((m) => motifHits(dna, m).length > 0 || motifHits(reverseComplement(dna), m).length > 0) ||
        new RegExp(`(.)\\1{${maxRun}}`).test(dna);
      let best = -Infinity;
      const search = (i: number, dna: string, score: number): void => {
        if (i === protein.length) {
          if (!bad(dna)) best = Math.max(best, score);
          return;
        }
        for (const c of synonyms(protein[i]!)) search(i + 1, dna + c, score + Math.log(w.get(c)!));
      };
      search(0, '', 0);
      const r = await h.post('/models/codon/predict', {
        sequence: protein,
        task_type: 'codon_optimize',
        options: { organism: 'yeast', input_type: 'protein', avoid, max_homopolymer: maxRun },
      });
      const label = `${protein} avoid ${avoid.join(',')} max run ${maxRun}`;
      if (best === -Infinity) {
        assert.equal(r.status, 400, label);
        assert.equal(r.body.error.code, 'INVALID_REQUEST', label);
        infeasible++;
        continue;
      }
      assert.equal(r.status, 200, `${label}: ${JSON.stringify(r.body)}`);
      assert.equal(translate(r.body.data.sequence), protein, label);
      assert.ok(!bad(r.body.data.sequence), `${label}: ${r.body.data.sequence} breaks a constraint`);
      assert.ok(Math.abs(Math.log(r.body.data.cai) * protein.length - best) < 1e-9, `${label}: not the best sequence`);
      feasible++;
    }
    t.diagnostic(`exhaustive check: ${feasible} optimal, ${infeasible} correctly reported impossible`);
  });

  it('handles codons whose reference frequency is 0 as EMBOSS and Sharp & Li do', async (t) => {
    // The bundled tables have no such codon, so a copy of the package gets an E. coli table with
    // four codons zeroed (GCG, and CTG = the most used Leu codon, TAG, AGG), and EMBOSS reads the same table.
    const zeroed = new Set(['GCG', 'CTG', 'TAG', 'AGG']);
    const table: TableJson = structuredClone(TABLES.ecoli);
    for (const c of zeroed) table.codons[c] = { ...table.codons[c]!, fraction: 0, per_thousand: 0, count: 0 };
    const modelsDir = join(work, 'models');
    cpSync(join(BUILTIN_MODELS_DIR, 'codon'), join(modelsDir, 'codon'), { recursive: true });
    writeFileSync(join(modelsDir, 'codon', 'data', 'ecoli.json'), JSON.stringify(table));
    const cut = join(work, 'zeroed.cut');
    const rows = Object.entries(table.codons).map(
      ([c, r]) => `${c}    ${r.amino_acid}  ${r.fraction.toFixed(3)}  ${r.per_thousand.toFixed(3)}  ${r.count}`,
    );
    writeFileSync(cut, ['#Species: test', '', '#Codon AA Fraction Frequency Number', ...rows, ''].join('\n'));
    const seqs = ['ATGGCGCTGCTGTAG', 'GCGGCG', 'ATGGCACTTAGGTAA', ...RANDOM.slice(0, 10)];
    const g = await startGateway([], { models_dir: modelsDir });
    try {
      const r = await g.post('/models/codon/predict/batch', { sequences: seqs, task_type: 'codon_adaptation_index' });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const out = run('cai', ['-seqall', writeFasta(seqs), '-cfile', cut, '-outfile', 'stdout', '-auto']);
      const theirs = [...out.matchAll(/CAI: (\S+)$/gm)].map((m) => Number(m[1]));
      seqs.forEach((s, i) => {
        const o = r.body.data.predictions[i];
        assert.ok(Math.abs(o.cai - theirs[i]!) <= 0.0005 + 1e-12, `s${i}: ours ${o.cai}, EMBOSS ${theirs[i]}`);
        const zeros = s.match(/.{3}/g)!.filter((c) => zeroed.has(c)).length;
        assert.equal(o.zero_weight_codons, zeros);
        assert.equal(o.codons_used, s.length / 3, 'a w = 0 codon stays in the denominator');
      });
      // EMBOSS adds nothing for a w = 0 codon, as if its w were 1: GCGGCG scores 1.
      assert.equal(r.body.data.predictions[1].cai, 1);
      // Sharp & Li (and Biopython): a codon absent from the reference counts 0.5.
      const sl = await g.post('/models/codon/predict', {
        sequence: 'GCGGCT',
        task_type: 'codon_adaptation_index',
        options: { method: 'sharp_li' },
      });
      assert.ok(
        Math.abs(sl.body.data.cai - Math.sqrt((0.5 / 40761) * (24549 / 40761))) < 1e-15,
        JSON.stringify(sl.body),
      );
      t.diagnostic(
        `EMBOSS cai with a zeroed table: ${theirs.slice(0, 3).join(', ')}; ours ${r.body.data.predictions
          .slice(0, 3)
          .map((p: any) => p.cai.toFixed(3))
          .join(', ')}`,
      );
    } finally {
      await g.close();
    }
  });

  it('reports bad input and impossible constraints', async () => {
    const cases: [string, Record<string, unknown>, string, RegExp][] = [
      ['codon_optimize', { sequence: 'MKXLE' }, 'INVALID_SEQUENCE', /X.*position 3/],
      ['codon_optimize', { sequence: 'ATGAAAT' }, 'INVALID_SEQUENCE', /multiple of 3/],
      ['codon_optimize', { sequence: 'ATGNNNTAA' }, 'INVALID_SEQUENCE', /ambiguous/],
      ['codon_optimize', { sequence: 'MWLE', options: { avoid: ['ATG'] } }, 'INVALID_REQUEST', /no coding sequence/],
      ['codon_optimize', { sequence: 'MWLE', options: { avoid: 'GAATTC' } }, 'INVALID_REQUEST', /avoid/],
      ['codon_optimize', { sequence: 'MWLE', options: { avoid: ['GAXTTC'] } }, 'INVALID_REQUEST', /invalid motif/],
      ['codon_optimize', { sequence: 'MWLE', options: { max_homopolymer: 0 } }, 'INVALID_REQUEST', /max_homopolymer/],
      ['codon_adaptation_index', { sequence: 'ATGAAA', options: { organism: 'mouse' } }, 'INVALID_REQUEST', /organism/],
      ['codon_adaptation_index', { sequence: 'ATGAAA', options: { method: 'x' } }, 'INVALID_REQUEST', /method/],
      ['codon_usage', { sequence: 'ATGAAA', options: { ambiguous: 'x' } }, 'INVALID_REQUEST', /ambiguous/],
      [
        'codon_usage',
        { sequence: 'ATGAAA', options: { ambiguous: 'emboss' } },
        'INVALID_REQUEST',
        /never read as a concrete codon/,
      ],
    ];
    for (const [task, body, code, message] of cases) {
      const r = await h.post('/models/codon/predict', { task_type: task, ...body });
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.equal(r.body.error.code, code, JSON.stringify(r.body));
      assert.match(r.body.message, message);
    }
  });
});
