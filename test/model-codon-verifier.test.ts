// The built-in `codon-verifier` model through a real gateway, checked against Biopython 1.80
// (translation, GC, the REBASE sites of Bio.Restriction), EMBOSS 6.6.0 (`cai`, `geecee`), brute
// force (homopolymers, repeats) and hand-made sequences that fail one check each. EMBOSS `restrict`
// is not used: Debian's emboss-data ships no REBASE enzyme file (`restrict` stops with "Cannot
// locate enzyme file. Run REBASEEXTRACT"), so Biopython's REBASE copy is the reference for sites.
// CI installs the tools (`apt-get install -y emboss python3-biopython`); this suite fails without them.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PACKAGE_ROOT } from '../src/paths.js';
import { mulberry32 } from '../src/util/prng.js';
import { startGateway, type Harness } from './helpers.js';

const BIOPYTHON = '/usr/bin/python3';
const CODON_DIRS = ['/usr/share/EMBOSS/data/CODONS', '/usr/local/share/EMBOSS/data/CODONS'];
const TABLE_FILES = { ecoli: 'Eecoli.cut', human: 'Ehuman.cut', yeast: 'Eyeast.cut' } as const;
type Organism = keyof typeof TABLE_FILES;

const BASES = 'TCAG';
const CODE = 'FFLLSSSSYY**CC*WLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG';
const GENETIC_CODE = new Map<string, string>();
for (let i = 0; i < 64; i++) GENETIC_CODE.set(BASES[i >> 4]! + BASES[(i >> 2) & 3]! + BASES[i & 3]!, CODE[i]!);
const SENSE = [...GENETIC_CODE].filter(([, aa]) => aa !== '*').map(([c]) => c);
const STOPS = ['TAA', 'TAG', 'TGA'];
const BUILT_IN = [
  'AatII',
  'AflII',
  'AgeI',
  'ApaI',
  'AscI',
  'AvrII',
  'BamHI',
  'BbsI',
  'BglII',
  'BsaI',
  'BsmBI',
  'BspHI',
  'ClaI',
  'EcoRI',
  'EcoRV',
  'FseI',
  'HindIII',
  'KpnI',
  'MluI',
  'NcoI',
  'NdeI',
  'NheI',
  'NotI',
  'NsiI',
  'PacI',
  'PmeI',
  'PstI',
  'SacI',
  'SalI',
  'SapI',
  'SbfI',
  'SfiI',
  'SmaI',
  'SpeI',
  'SphI',
  'XbaI',
  'XhoI',
];

const rand = mulberry32(20261202);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
const randInt = (lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1));
const randomDna = (n: number): string => Array.from({ length: n }, () => pick([...'ACGT'])).join('');
function randomCds(min = 50, max = 400): string {
  const n = randInt(min, max);
  let s = 'ATG';
  for (let i = 2; i < n; i++) s += pick(SENSE);
  return s + pick(STOPS);
}

/** Longest string occurring at least twice (occurrences may overlap), by brute force. */
function bruteLongestRepeat(s: string): number {
  let best = 0;
  for (let d = 1; d < s.length; d++) {
    let run = 0;
    for (let i = 0; i + d < s.length; i++) {
      run = s[i] === s[i + d] ? run + 1 : 0;
      if (run > best) best = run;
    }
  }
  return best;
}
function bruteLongestRun(s: string): number {
  let best = 0;
  let run = 0;
  for (let i = 0; i < s.length; i++) {
    run = i > 0 && s[i] === s[i - 1] ? run + 1 : 1;
    best = Math.max(best, run);
  }
  return best;
}

function run(cmd: string, args: string[], input?: string): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input, maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}
function requireTool(cmd: string, args: string[], install: string): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error || r.status !== 0)
    throw new Error(
      `${cmd} is required by the codon-verifier tests (${r.error?.message ?? r.stderr.trim()}): install it with \`${install}\` (CI does)`,
    );
}

describe('codon-verifier model against Biopython, EMBOSS and hand-made failures', () => {
  let h: Harness;
  let work: string;
  let codonsDir: string;
  let n = 0;

  before(async () => {
    requireTool('cai', ['-version'], 'apt-get install -y emboss');
    requireTool('geecee', ['-version'], 'apt-get install -y emboss');
    requireTool(
      BIOPYTHON,
      ['-c', 'from Bio.SeqUtils import gc_fraction; from Bio import Restriction'],
      'apt-get install -y python3-biopython',
    );
    codonsDir = CODON_DIRS.find((d) => existsSync(join(d, 'Eecoli.cut')))!;
    assert.ok(codonsDir, 'EMBOSS codon tables (apt-get install -y emboss)');
    work = mkdtempSync(join(tmpdir(), 'isomodel-verifier-'));
    chmodSync(work, 0o755);
    h = await startGateway(['codon', 'codon-verifier']);
  });
  after(async () => {
    await h?.close();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  const fastaFile = (seqs: string[]): string => {
    const path = join(work, `q${n++}.fa`);
    writeFileSync(path, seqs.map((s, i) => `>s${i}\n${s.match(/.{1,60}/g)!.join('\n')}\n`).join(''));
    return path;
  };
  const verify = async (sequence: string, options: Record<string, unknown> = {}): Promise<any> => {
    const r = await h.post('/models/codon-verifier/predict', { sequence, task_type: 'verify', options });
    assert.equal(r.status, 200, JSON.stringify(r.body).slice(0, 2000));
    return r.body.data;
  };
  const verifyBatch = async (sequences: string[], options: Record<string, unknown> = {}): Promise<any[]> => {
    const r = await h.post('/models/codon-verifier/predict/batch', { sequences, task_type: 'verify', options });
    assert.equal(r.status, 200, JSON.stringify(r.body).slice(0, 2000));
    return r.body.data.predictions;
  };
  /** The sequence fails exactly the named checks. */
  const failsOnly = (o: any, names: string[]): void => {
    assert.equal(o.verdict, names.length ? 'fail' : 'pass', JSON.stringify(o.failed));
    assert.deepEqual([...o.failed].sort(), [...names].sort(), JSON.stringify(o.checks, null, 1).slice(0, 3000));
    for (const name of names) assert.equal(o.checks[name].pass, false, name);
  };

  it('serves verify, next to the codon model whose tables it uses', async () => {
    const r = await h.get('/models/codon-verifier/model/info');
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.data.tasks, ['verify']);
  });

  it('translation, GC, GC windows and restriction sites equal Biopython (REBASE sites of Bio.Restriction)', async (t) => {
    const planted = Array.from({ length: 6 }, () => {
      // Random CDSs with sites of the built-in enzymes planted on either strand.
      const cds = randomCds(100, 200);
      const at = 3 * randInt(2, 60);
      const site = pick(['GAATTC', 'GGTCTC', 'GAGACC', 'GCGGCCGC', 'GGCCAAAAAGGCC', 'GCTCTTC', 'GAAGAG', 'CGTCTC']);
      return cds.slice(0, at) + site + cds.slice(at);
    });
    const cases = [...Array.from({ length: 24 }, () => randomCds()), ...planted, randomDna(37), randomDna(500)];
    const window = 40;
    const ref = JSON.parse(
      run(
        BIOPYTHON,
        [join(PACKAGE_ROOT, 'test', 'fixtures', 'verifier_biopython.py')],
        JSON.stringify({ sequences: cases, window, enzymes: BUILT_IN }),
      ),
    );
    const ours = await verifyBatch(cases, { enzymes: BUILT_IN, gc_window: window });
    let sites = 0;
    cases.forEach((s, i) => {
      const o = ours[i];
      assert.equal(o.protein, ref.translation[i], `s${i} translation`);
      assert.ok(
        Math.abs(o.checks.gc_content.value - ref.gc[i]) < 1e-12,
        `s${i} GC ${o.checks.gc_content.value} vs ${ref.gc[i]}`,
      );
      assert.ok(Math.abs(o.checks.gc_window.value.min - ref.window[i][0]) < 1e-12, `s${i} window min`);
      assert.ok(Math.abs(o.checks.gc_window.value.max - ref.window[i][1]) < 1e-12, `s${i} window max`);
      assert.equal(o.checks.gc_window.windows, s.length - Math.min(window, s.length) + 1);
      const mine = o.checks.restriction_sites.sites.map((x: any) => [x.enzyme, x.position, x.strand]);
      assert.equal(o.checks.restriction_sites.value, ref.sites[i].length, `s${i} site count`);
      assert.deepEqual(mine, ref.sites[i].slice(0, 50), `s${i} sites`);
      assert.equal(o.checks.restriction_sites.pass, ref.sites[i].length === 0);
      sites += ref.sites[i].length;
      for (const x of o.checks.restriction_sites.sites)
        assert.equal(x.site, ref.rebase_sites[x.enzyme], `${x.enzyme} site`);
    });
    assert.ok(sites >= planted.length, 'the planted sites were found');
    t.diagnostic(
      `${cases.length} sequences: translation, GC and ${window}-bp window GC identical to Biopython; ${sites} restriction sites identical to Bio.Restriction`,
    );
  });

  it("built-in enzyme sites are REBASE's (as Biopython ships it)", async () => {
    const ref = JSON.parse(
      run(
        BIOPYTHON,
        [join(PACKAGE_ROOT, 'test', 'fixtures', 'verifier_biopython.py')],
        JSON.stringify({ sequences: [], window: 10, enzymes: BUILT_IN }),
      ),
    );
    // Each built-in site, planted alone, is found under its name.
    for (const name of BUILT_IN) {
      const site = ref.rebase_sites[name].replace(/N/g, 'A');
      const o = await verify('ATG' + site + 'TAA', { enzymes: [name] });
      assert.ok(o.checks.restriction_sites.value >= 1, name);
      assert.equal(o.checks.restriction_sites.sites[0].site, ref.rebase_sites[name], name);
    }
  });

  it('cai equals EMBOSS cai and gc_content EMBOSS geecee, for each organism', async (t) => {
    const cases = Array.from({ length: 12 }, () => randomCds());
    for (const organism of Object.keys(TABLE_FILES) as Organism[]) {
      const out = run('cai', [
        '-seqall',
        fastaFile(cases),
        '-cfile',
        join(codonsDir, TABLE_FILES[organism]),
        '-outfile',
        'stdout',
        '-auto',
      ]);
      const theirs = [...out.matchAll(/^Sequence: s(\d+) CAI: (\S+)$/gm)].map((m) => Number(m[2]));
      assert.equal(theirs.length, cases.length, out);
      const ours = await verifyBatch(cases, { organism });
      ours.forEach((o, i) => {
        assert.equal(o.checks.cai.organism, organism);
        assert.equal(o.checks.cai.value.toFixed(3), theirs[i]!.toFixed(3), `${organism} s${i}`);
        assert.equal(o.checks.cai.pass, o.checks.cai.value >= 0.5);
      });
    }
    const gc = run('geecee', ['-sequence', fastaFile(cases), '-outfile', 'stdout', '-auto']);
    const printed = [...gc.matchAll(/^s(\d+)\s+([0-9.]+)$/gm)].map((m) => Number(m[2]));
    assert.equal(printed.length, cases.length, gc);
    const ours = await verifyBatch(cases);
    ours.forEach((o, i) =>
      assert.ok(Math.abs(o.checks.gc_content.value - printed[i]!) <= 0.005 + 1e-9, `s${i} geecee`),
    );
    t.diagnostic(`cai: ${cases.length} x 3 organisms equal to EMBOSS at 3 decimals; GC within geecee's 2 decimals`);
  });

  it('homopolymer and direct_repeat equal brute force', async () => {
    const cases = Array.from({ length: 20 }, () => {
      let s = randomDna(randInt(30, 400));
      if (rand() < 0.5) {
        const r = randomDna(randInt(5, 40));
        const at = randInt(0, s.length);
        s = s.slice(0, at) + r + s.slice(at);
      }
      if (rand() < 0.5) s = s.slice(0, 10) + pick([...'ACGT']).repeat(randInt(4, 15)) + s.slice(10);
      return s;
    });
    cases.push('ACACACACACAC', 'AAAAAAAAAA', 'ACGT');
    const ours = await verifyBatch(cases);
    cases.forEach((s, i) => {
      const o = ours[i];
      const rep = bruteLongestRepeat(s);
      assert.equal(o.checks.direct_repeat.value, rep, `s${i} repeat`);
      assert.equal(o.checks.direct_repeat.pass, rep <= 20);
      if (rep > 0) {
        const [p1, p2] = o.checks.direct_repeat.positions;
        assert.ok(p1 < p2);
        assert.equal(
          s.slice(p1 - 1, p1 - 1 + rep),
          s.slice(p2 - 1, p2 - 1 + rep),
          'the two positions hold the same string',
        );
      }
      const runLen = bruteLongestRun(s);
      assert.equal(o.checks.homopolymer.value, runLen, `s${i} run`);
      assert.equal(o.checks.homopolymer.pass, runLen <= 8);
      const base = o.checks.homopolymer.base;
      assert.equal(
        s.slice(o.checks.homopolymer.position - 1, o.checks.homopolymer.position - 1 + runLen),
        base.repeat(runLen),
      );
    });
  });

  it('bounded work for hostile options: 100 one-letter sites on 30 000 bases count every hit but list 50', async () => {
    const long = randomDna(30_000);
    const enzymes = Array.from({ length: 100 }, (_, i) => ({ name: `e${i}`, site: 'A' }));
    const o = await verify(long, { enzymes, max_homopolymer: 1 });
    const at = [...long].filter((b) => b === 'A' || b === 'T').length; // A on +, its complement T on -
    assert.equal(o.checks.restriction_sites.value, 100 * at);
    assert.equal(o.checks.restriction_sites.by_enzyme.e7, at);
    assert.equal(o.checks.restriction_sites.sites.length, 50);
    const first = long.search(/[AT]/) + 1;
    assert.deepEqual(
      o.checks.restriction_sites.sites.slice(0, 2).map((x: any) => [x.enzyme, x.position]),
      [
        ['e0', first],
        ['e1', first],
      ],
      'sorted by position, then enzyme',
    );
    assert.equal(o.checks.homopolymer.runs.length, 50);
    assert.equal(o.checks.homopolymer.runs_over, (long.match(/A{2,}|C{2,}|G{2,}|T{2,}/g) ?? []).length);
    assert.equal((await verify('ATGTAA')).checks.start_codon.pass, true, 'the worker is still there');
  });

  describe('hand-made sequences, each failing one check', () => {
    // A clean CDS: the codon model's optimisation of a protein for E. coli, without the default
    // enzymes' sites; everything passes on it, so each mutation below fails only its own check.
    const protein =
      'MSKGEELFTGVVPILVELDGDVNGHKFSVSGEGEGDATYGKLTLKFICTTGKLPVPWPTLVTTLTYGVQCFSRYPDHMKQHDFFKSAMPEGYVQERTIFFKDDGNYKTRAEVKFEGDTLVNRIELKGIDFKEDGNILGHKLEYNYNSHNVYIMADKQKNGIKVNFKIRHNIEDGSVQLADHYQQNTPIGDGPVLLPDNHYLSTQSALSKDPNEKRDHMVLLEFVTAAGITHGMDELYK';
    let good = '';
    before(async () => {
      const r = await h.post('/models/codon/predict', {
        sequence: protein,
        task_type: 'codon_optimize',
        options: {
          organism: 'ecoli',
          input_type: 'protein',
          avoid: ['GAATTC', 'GGATCC', 'AAGCTT', 'CTCGAG', 'TCTAGA', 'GCGGCCGC', 'GGTCTC', 'CGTCTC'],
          max_homopolymer: 6,
        },
      });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      good = r.body.data.sequence + 'TAA';
    });
    const mutate = (at: number, text: string, cut = text.length): string =>
      good.slice(0, at) + text + good.slice(at + cut);

    it('a clean optimised CDS passes every check, and its protein matches', async () => {
      const o = await verify(good, { protein });
      failsOnly(o, []);
      assert.equal(o.checks.protein_match.value, true);
      assert.equal(o.checks.protein_match.pass, true);
      assert.ok(o.checks.cai.value > 0.9);
      const without = await verify(good);
      assert.equal(without.checks.protein_match.pass, null, 'no protein: not applicable, not a pass');
      assert.equal(without.verdict, 'pass');
    });
    it('length not a multiple of 3 (and so no stop at the end of the frame)', async () => {
      const o = await verify(good.slice(0, -1));
      assert.equal(o.checks.length_multiple_of_3.value, 2);
      failsOnly(o, ['length_multiple_of_3', 'stop_codon']);
    });
    it('no start codon; alternative starts allowed by option', async () => {
      failsOnly(await verify('GTG' + good.slice(3)), ['start_codon']);
      const ok = await verify('GTG' + good.slice(3), { start_codons: ['ATG', 'GTG'], min_cai: 0 });
      assert.equal(ok.checks.start_codon.pass, true);
    });
    it('no stop codon at the end', async () => {
      const o = await verify(good.slice(0, -3) + 'GCG');
      failsOnly(o, ['stop_codon']);
      assert.equal(o.checks.stop_codon.value, 'GCG');
    });
    it('an internal stop codon, at its codon number', async () => {
      const o = await verify(mutate(30, 'TGA'), { protein });
      failsOnly(o, ['internal_stops', 'protein_match']);
      assert.deepEqual(o.checks.internal_stops.codons, [11]);
      assert.equal(o.checks.protein_match.first_difference.residue, 11);
      assert.equal(o.checks.protein_match.first_difference.translated, '*');
    });
    it('a translation that differs from the given protein', async () => {
      const o = await verify(good, { protein: protein.slice(0, 100) + 'W' + protein.slice(101) });
      failsOnly(o, ['protein_match']);
      assert.deepEqual(o.checks.protein_match.first_difference, {
        residue: 101,
        translated: protein[100],
        expected: 'W',
      });
      failsOnly(await verify(good, { protein: protein.slice(0, -1) }), ['protein_match']);
    });
    it('overall GC out of bounds', async () => {
      const gc = (await verify(good)).checks.gc_content.value;
      const o = await verify(good, { gc_min: gc + 0.01 });
      failsOnly(o, ['gc_content']);
      assert.deepEqual(o.checks.gc_content.bound, { min: gc + 0.01, max: 0.7 });
      failsOnly(await verify(good, { gc_max: gc - 0.01 }), ['gc_content']);
    });
    it('a GC-rich window', async () => {
      const o = await verify(mutate(300, 'GGCGCCGGGCCGCGCGGCCGCGGCGCCGGGCGCCGCGCGGCGCGCCGCGCCGG'));
      assert.ok(o.failed.includes('gc_window'));
      assert.ok(o.checks.gc_window.value.max > 0.8);
      assert.ok(o.checks.gc_window.windows_outside > 0);
      assert.ok(o.checks.gc_window.outside.every((w: any) => w.gc > 0.8 && w.start >= 250 && w.start <= 360));
    });
    it('a homopolymer run', async () => {
      const o = await verify(mutate(150, 'AAAAAAAAAAAA'));
      assert.ok(o.failed.includes('homopolymer'));
      assert.ok(o.checks.homopolymer.value >= 12);
      assert.equal(o.checks.homopolymer.base, 'A');
    });
    it('a direct repeat', async () => {
      const o = await verify(good + good.slice(100, 130));
      assert.ok(o.failed.includes('direct_repeat'));
      assert.ok(o.checks.direct_repeat.value >= 30);
      assert.deepEqual(o.checks.direct_repeat.positions.slice(0, 1), [101]);
    });
    it('restriction sites on both strands, built-in and custom enzymes', async () => {
      const o = await verify(mutate(99, 'GAATTC', 0).slice(0, 200) + 'GAGACC' + good.slice(200));
      assert.ok(o.failed.includes('restriction_sites'));
      const found = o.checks.restriction_sites.sites.map((s: any) => `${s.enzyme}${s.strand}${s.position}`);
      assert.ok(found.includes('EcoRI+100'), found.join(' '));
      assert.ok(found.includes('BsaI-201'), found.join(' '));
      assert.equal(o.checks.restriction_sites.by_enzyme.BamHI, 0);
      const custom = await verify(good, {
        enzymes: [{ name: 'Mine', site: good.slice(60, 64) + 'N' + good.slice(65, 70) }],
      });
      assert.equal(custom.checks.restriction_sites.by_enzyme.Mine, 1);
      failsOnly(custom, ['restriction_sites']);
      failsOnly(await verify(mutate(99, 'GAATTC', 0), { enzymes: [] }), []); // no enzymes: nothing to find
    });
    it('a low CAI, and ambiguous bases', async () => {
      // The least used E. coli codon for each residue: same protein, CAI far below the bound.
      const worst: Record<string, string> = {
        A: 'GCA',
        R: 'AGG',
        N: 'AAT',
        D: 'GAT',
        C: 'TGT',
        Q: 'CAA',
        E: 'GAG',
        G: 'GGA',
        H: 'CAT',
        I: 'ATA',
        L: 'CTA',
        K: 'AAG',
        M: 'ATG',
        F: 'TTT',
        P: 'CCT',
        S: 'TCC',
        T: 'ACA',
        W: 'TGG',
        Y: 'TAT',
        V: 'GTA',
      };
      const bad = [...protein].map((aa) => worst[aa]).join('') + 'TAA';
      const o = await verify(bad, { protein, max_repeat: 40, max_homopolymer: 20, gc_min: 0, gc_window_min: 0 });
      assert.ok(o.checks.cai.value < 0.5, String(o.checks.cai.value));
      assert.ok(o.failed.includes('cai'));
      assert.equal(o.checks.protein_match.pass, true);
      const amb = await verify(mutate(45, 'N', 1));
      failsOnly(amb, ['ambiguous_bases']);
      assert.deepEqual(amb.checks.ambiguous_bases.positions, [46]);
    });
    it('bad options are 400 INVALID_REQUEST with the reason', async () => {
      for (const [options, why] of [
        [{ enzymes: ['NoSuchI'] }, /unknown enzyme/],
        [{ gc_min: 0.8, gc_max: 0.2 }, /must not be above/],
        [{ protein: 'MKB' }, /20 standard amino acids/],
        [{ enzymes: [{ name: 'x', site: 'GAXTC' }] }, /IUPAC/],
        [{ gc_window: 5 }, /gc_window/],
        [{ organism: 'mouse' }, /organism/],
      ] as const) {
        const r = await h.post('/models/codon-verifier/predict', { sequence: good, task_type: 'verify', options });
        assert.equal(r.status, 400, JSON.stringify(r.body));
        assert.equal(r.body.error.code, 'INVALID_REQUEST');
        assert.match(r.body.message, why);
      }
    });
  });
});

describe('codon-verifier without the codon package beside it', () => {
  let h: Harness;
  before(async () => {
    h = await startGateway(['codon-verifier']);
  });
  after(async () => h?.close());

  it('answers 503 MODEL_NOT_LOADED naming the codon model file it needs', async () => {
    const r = await h.post('/models/codon-verifier/predict', { sequence: 'ATGTAA', task_type: 'verify' });
    assert.equal(r.status, 503, JSON.stringify(r.body));
    assert.equal(r.body.error.code, 'MODEL_NOT_LOADED');
    assert.match(r.body.message, /codon\/model\.py/);
    assert.match(r.body.message, /ISOMODEL_CODON_DIR/);
  });
});
