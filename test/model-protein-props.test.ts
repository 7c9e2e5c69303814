// The built-in protein-props model through a real gateway, checked against Biopython itself:
// every property of every sequence must agree with Bio.SeqUtils.ProtParam to 1e-6 relative
// (1e-9 absolute near zero). The reference runs once, under Debian's /usr/bin/python3 with
// python3-biopython (CI installs it; the suite fails, never skips, without it).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PACKAGE_ROOT } from '../src/paths.js';
import { startGateway, type Harness } from './helpers.js';
import { mulberry32 } from '../src/util/prng.js';

const BIOPYTHON_PYTHON = process.env.ISOMODEL_TEST_BIOPYTHON ?? '/usr/bin/python3';
const REFERENCE_SCRIPT = join(PACKAGE_ROOT, 'test', 'fixtures', 'protparam_reference.py');
const STANDARD = 'ACDEFGHIKLMNPQRSTVWY';
const BATCH_ROUTE = '/models/protein-props/predict/batch';
const SINGLE_ROUTE = '/models/protein-props/predict';
const MAX_PER_REQUEST = 100;
const REL_TOL = 1e-6;
const ABS_TOL = 1e-9;
const PH_VALUES = [0, 3.5, 10.25, 14];

const rand = mulberry32(20240611);
const randInt = (lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1));
const randomProtein = (length: number, alphabet = STANDARD): string =>
  Array.from({ length }, () => alphabet[randInt(0, alphabet.length - 1)]!).join('');

// 300 random sequences over the 20 standard amino acids, lengths 1..400.
const RANDOM = Array.from({ length: 300 }, () => randomProtein(randInt(1, 400)));
// Biopython's ProtParam doctest protein (MW 17103.16, pI 7.72, instability 41.98).
const DOCTEST =
  'MAEGEITTFTALTEKFNLPPGNYKKPKLLYCSNGGHFLRILPDGTVDGTRDRSDQHIQLQLSAESVGEVYIKSTETGQYLAMDTSGLLYGSQTPSEECLFLERLEENHYNTYTSKKHAEKNWFVGLKKNGSCKRGPRTHYGQKAILFLPLPV';
const EDGE = [
  ...STANDARD.split(''), // every single residue (N-/C-terminal pK special cases included)
  'K'.repeat(60), // all one residue: basic
  'D'.repeat(37), // all one residue: acidic
  'W'.repeat(400), // all one residue: aromatic
  'C'.repeat(7), // odd number of cysteines: (7 // 2) cystines
  'AGILMFPSTVWNQ'.repeat(9), // no charged residues (no K R H D E C Y)
  randomProtein(250).toLowerCase(), // lowercase input
  'mKtAyIaKqR', // mixed case
  randomProtein(5120), // the task's maximum length
  'PETER',
  DOCTEST,
];
const STANDARD_SEQUENCES = [...RANDOM, ...EDGE];
// U (selenocysteine) and O (pyrrolysine): handled as Biopython does, null where it raises.
const U_O_SEQUENCES = [
  'MKUW',
  'U',
  'O',
  'MOK',
  'UU',
  'AU',
  'UA',
  ...Array.from({ length: 8 }, () => randomProtein(randInt(2, 120), STANDARD + 'UO')),
];
const PH_SEQUENCES = RANDOM.slice(0, 30);
// Ambiguous letters: [sequence, first ambiguous letter, its 1-based position].
const AMBIGUOUS_CASES: [string, string, number][] = [
  ['ACDB', 'B', 4],
  ['MKZ', 'Z', 3],
  ['JMK', 'J', 1],
  ['MKXWXB', 'X', 3],
  ['MUX', 'X', 3],
];

interface RefItem {
  sequence: string;
  ph: number;
}

function run(command: string, args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(command, args, { maxBuffer: 256 * 1024 * 1024, timeout: 120_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${command} ${args.join(' ')} failed: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
    child.stdin?.end(input ?? '');
  });
}

/** Biopython's values for every item, from ONE run of the reference script. */
async function biopythonReference(items: RefItem[]): Promise<{ version: string; results: any[] }> {
  try {
    await run(BIOPYTHON_PYTHON, ['-c', 'import Bio.SeqUtils.ProtParam']);
  } catch (e) {
    throw new Error(
      `Biopython is not importable by ${BIOPYTHON_PYTHON}, and the protein-props tests need it as their reference. ` +
        `Install it with: apt-get install -y python3-biopython  (CI installs it; these tests fail rather than skip).\n${(e as Error).message}`,
    );
  }
  const out = JSON.parse(await run(BIOPYTHON_PYTHON, [REFERENCE_SCRIPT], JSON.stringify({ items })));
  assert.equal(out.results.length, items.length);
  return { version: out.biopython, results: out.results };
}

function chunks<T>(list: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < list.length; i += size) out.push(list.slice(i, i + size));
  return out;
}

/** Worst relative difference seen per property (absolute where the reference is 0). */
class Agreement {
  readonly worst = new Map<string, number>();
  compared = 0;

  check(label: string, property: string, got: unknown, want: unknown): void {
    if (want === null) {
      assert.equal(got, null, `${label}: ${property} should be null (Biopython raises), got ${JSON.stringify(got)}`);
      return;
    }
    if (typeof want === 'number') {
      assert.equal(typeof got, 'number', `${label}: ${property} is ${JSON.stringify(got)}, Biopython says ${want}`);
      const diff = Math.abs((got as number) - want);
      const rel = want === 0 ? diff : diff / Math.abs(want);
      assert.ok(
        diff <= REL_TOL * Math.abs(want) || diff <= ABS_TOL,
        `${label}: ${property} = ${String(got)}, Biopython ${want} (relative difference ${rel})`,
      );
      const key = property.startsWith('amino_acid_percent.') ? 'amino_acid_percent' : property;
      this.worst.set(key, Math.max(this.worst.get(key) ?? 0, rel));
      this.compared++;
      return;
    }
    assert.ok(want !== null && typeof want === 'object', `${label}: unexpected reference value for ${property}`);
    assert.ok(
      got !== null && typeof got === 'object',
      `${label}: ${property} is ${JSON.stringify(got)}, expected an object`,
    );
    assert.deepEqual(
      Object.keys(got as object).sort(),
      Object.keys(want as object).sort(),
      `${label}: keys of ${property}`,
    );
    for (const [k, v] of Object.entries(want as Record<string, unknown>))
      this.check(label, `${property}.${k}`, (got as Record<string, unknown>)[k], v);
  }

  /** Compares one model output with one reference result, property by property. */
  item(label: string, got: any, want: any): void {
    for (const [property, value] of Object.entries(want as Record<string, unknown>)) {
      if (property === 'errors') continue;
      this.check(label, property, got[property], value);
    }
  }

  table(): string[] {
    return [...this.worst.entries()].map(([k, v]) => `  ${k}: ${v.toExponential(2)}`);
  }
}

describe('protein-props model (Biopython ProtParam reference)', () => {
  let h: Harness | undefined;
  let reference: { version: string; results: any[] } | undefined;
  let referenceError: Error | undefined;
  /** Biopython's results; every test that needs them fails with the install hint when it is missing. */
  const ref = (): { version: string; results: any[] } => {
    if (referenceError) throw referenceError;
    assert.ok(reference, 'reference not computed');
    return reference;
  };
  // All reference items, for one Biopython run: standard sequences, U/O and ambiguous ones at pH 7, then PH_SEQUENCES at each PH_VALUES.
  const groups = {
    standard: STANDARD_SEQUENCES.map((sequence) => ({ sequence, ph: 7.0 })),
    uo: U_O_SEQUENCES.map((sequence) => ({ sequence, ph: 7.0 })),
    ambiguous: AMBIGUOUS_CASES.map(([sequence]) => ({ sequence, ph: 7.0 })),
    ph: PH_VALUES.flatMap((ph) => PH_SEQUENCES.map((sequence) => ({ sequence, ph }))),
  };
  const order = ['standard', 'uo', 'ambiguous', 'ph'] as const;
  const refItems: RefItem[] = order.flatMap((g) => groups[g]);
  const refFor = (group: (typeof order)[number], i: number, phIndex = 0): any => {
    let offset = 0;
    for (const g of order.slice(0, order.indexOf(group))) offset += groups[g].length;
    return ref().results[offset + (group === 'ph' ? phIndex * PH_SEQUENCES.length : 0) + i];
  };

  const predictBatch = async (sequences: string[], options: Record<string, unknown> = {}): Promise<any[]> => {
    const responses = await Promise.all(
      chunks(sequences, MAX_PER_REQUEST).map((part) => h!.post(BATCH_ROUTE, { sequences: part, options })),
    );
    return responses.flatMap((r) => {
      assert.equal(r.status, 200, JSON.stringify(r.body).slice(0, 2000));
      assert.equal(r.body.success, true);
      return r.body.data.predictions as any[];
    });
  };

  before(async () => {
    try {
      reference = await biopythonReference(refItems);
    } catch (e) {
      referenceError = e as Error;
    }
    h = await startGateway(['protein-props']);
  });
  after(async () => {
    await h?.close();
  });

  it('Biopython (apt-get install -y python3-biopython) is there, 1.80 or later, and computes every standard-sequence property', () => {
    const { version } = ref();
    const [major, minor] = version.split('.').map(Number);
    assert.ok(major! > 1 || (major === 1 && minor! >= 80), `Biopython ${version}; the model reproduces 1.80`);
    STANDARD_SEQUENCES.forEach((s, i) => assert.deepEqual(refFor('standard', i).errors, {}, s.slice(0, 40)));
  });

  it('agrees with Biopython on every property of 300 random sequences and the edge cases', async (t) => {
    const predictions = await predictBatch(STANDARD_SEQUENCES);
    assert.equal(predictions.length, STANDARD_SEQUENCES.length);
    const agreement = new Agreement();
    predictions.forEach((p, i) => {
      const raw = STANDARD_SEQUENCES[i]!;
      const label = `sequence ${i} (${raw.slice(0, 30)}${raw.length > 30 ? '…' : ''}, length ${raw.length})`;
      assert.equal(p.error, undefined, `${label}: ${JSON.stringify(p.error)}`);
      assert.equal(p.sequence, raw.toUpperCase());
      assert.equal(p.ph, 7);
      assert.equal(p.warnings, undefined, label);
      agreement.item(label, p, refFor('standard', i));
    });
    // 8 scalars (two masses, pI, charge, gravy, instability, aromaticity, length) + 2 extinction
    // coefficients + 3 structure fractions + 20 composition fractions per sequence.
    assert.equal(agreement.compared, STANDARD_SEQUENCES.length * 33);
    t.diagnostic(
      `Biopython ${ref().version}; max relative difference per property over ${predictions.length} sequences:`,
    );
    for (const line of agreement.table()) t.diagnostic(line);
    // Spot-check against Biopython's own doctest values.
    const doctest = predictions[STANDARD_SEQUENCES.indexOf(DOCTEST)];
    assert.equal(doctest.molecular_weight.toFixed(2), '17103.16');
    assert.equal(doctest.isoelectric_point.toFixed(2), '7.72');
    assert.equal(doctest.instability_index.toFixed(2), '41.98');
    assert.deepEqual(doctest.extinction_coefficients, { reduced: 17420, oxidized: 17545 });
  });

  it('option ph changes charge_at_ph, as Biopython computes it', async () => {
    const atSeven = await predictBatch(PH_SEQUENCES);
    const agreement = new Agreement();
    for (const [phIndex, ph] of PH_VALUES.entries()) {
      const predictions = await predictBatch(PH_SEQUENCES, { ph });
      predictions.forEach((p, i) => {
        assert.equal(p.ph, ph);
        agreement.check(
          `pH ${ph}, sequence ${i}`,
          'charge_at_ph',
          p.charge_at_ph,
          refFor('ph', i, phIndex).charge_at_ph,
        );
        assert.notEqual(p.charge_at_ph, atSeven[i].charge_at_ph, `pH ${ph} changes the charge of sequence ${i}`);
        // Everything else does not depend on the pH.
        assert.equal(p.isoelectric_point, atSeven[i].isoelectric_point);
        assert.equal(p.molecular_weight, atSeven[i].molecular_weight);
      });
    }
    // Acidic pH makes proteins positive, basic pH negative.
    const [low, high] = await Promise.all([
      predictBatch(PH_SEQUENCES, { ph: 0 }),
      predictBatch(PH_SEQUENCES, { ph: 14 }),
    ]);
    low.forEach((p) => assert.ok(p.charge_at_ph > 0));
    high.forEach((p) => assert.ok(p.charge_at_ph < 0));
  });

  it('rejects an invalid ph with INVALID_REQUEST', async () => {
    for (const ph of [-0.5, 14.01, 'seven', true, null, [7]]) {
      const r = await h!.post(SINGLE_ROUTE, { sequence: 'PETER', options: { ph } });
      assert.equal(r.status, 400, JSON.stringify(ph));
      assert.equal(r.body.error.code, 'INVALID_REQUEST');
      assert.match(r.body.message, /option ph must be a number from 0 to 14/);
    }
  });

  it('single /predict works and matches the batch output', async () => {
    const [batch] = await predictBatch(['PETER']);
    const r = await h!.post(SINGLE_ROUTE, { sequence: 'peter' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.success, true);
    const d = r.body.data;
    assert.equal(d.model, 'protein-props');
    assert.equal(d.version, '1.0.0');
    assert.equal(d.task_type, 'property_prediction');
    assert.equal(d.sequence_type, 'protein');
    assert.equal(d.sequence_length, 5);
    const { sequence: _s, ...fromBatch } = batch;
    for (const [k, v] of Object.entries(fromBatch)) assert.deepEqual(d[k], v, k);
    new Agreement().item('PETER', d, refFor('standard', STANDARD_SEQUENCES.indexOf('PETER')));
    assert.equal(d.length, 5);
    assert.equal(d.isoelectric_point.toFixed(2), '4.53');
  });

  it('is deterministic: the same input gives identical output', async () => {
    const input = STANDARD_SEQUENCES.slice(0, 150);
    const [first, second] = await Promise.all([predictBatch(input), predictBatch(input)]);
    assert.deepEqual(second, first);
    const third = await predictBatch(input);
    assert.deepEqual(third, first);
  });

  it('ambiguous residues B, Z, J, X fail their sequence with INVALID_SEQUENCE, letter and position', async () => {
    const single = await h!.post(SINGLE_ROUTE, { sequence: 'mkxw' });
    assert.equal(single.status, 400);
    assert.equal(single.body.error.code, 'INVALID_SEQUENCE');
    assert.match(single.body.message, /ambiguous residue X \(any amino acid\) at position 3/);

    const cases = AMBIGUOUS_CASES;
    const r = await h!.post(BATCH_ROUTE, { sequences: [...cases.map((c) => c[0]), 'PETER'] });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.data.failed, cases.length);
    assert.equal(r.body.data.successful, 1);
    cases.forEach(([seq, letter, position], i) => {
      const p = r.body.data.predictions[i];
      assert.equal(p.sequence, seq);
      assert.equal(p.error.code, 'INVALID_SEQUENCE', seq);
      assert.match(p.error.message, new RegExp(`ambiguous residue ${letter} \\(.*\\) at position ${position}:`), seq);
      assert.equal(p.molecular_weight, undefined);
    });
    assert.equal(r.body.data.predictions[cases.length].length, 5);

    // Biopython agrees these cannot be weighed.
    cases.forEach(([seq], i) =>
      assert.match(refFor('ambiguous', i).errors.molecular_weight, /not a valid unambiguous letter/, seq),
    );
  });

  it('U and O are handled as Biopython does: values where it has them, null with a warning where it raises', async () => {
    const predictions = await predictBatch(U_O_SEQUENCES);
    const agreement = new Agreement();
    predictions.forEach((p, i) => {
      const seq = U_O_SEQUENCES[i]!;
      const want = refFor('uo', i);
      assert.equal(p.error, undefined, `${seq}: ${JSON.stringify(p.error)}`);
      agreement.item(seq, p, want);
      // Biopython weighs U and O, counts them in the length but not in the composition.
      assert.equal(typeof p.molecular_weight, 'number');
      assert.equal(p.length, seq.length);
      const nulls = ['gravy', 'instability_index'].filter((k) => p[k] === null);
      assert.deepEqual(nulls.sort(), Object.keys(want.errors).sort(), seq);
      if (nulls.length) {
        assert.equal(p.warnings.length, nulls.length, seq);
        nulls.forEach((k, j) =>
          assert.match(p.warnings[j], new RegExp(`^${k} is null: .*(selenocysteine|pyrrolysine)`)),
        );
      } else assert.equal(p.warnings, undefined);
    });
    assert.equal(predictions[0].gravy, null); // MKUW
    assert.equal(predictions[1].instability_index, 0); // a single U: no dipeptide, Biopython gives 0.0
  });
});
