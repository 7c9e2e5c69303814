// The codon-transformer package through a real gateway: without weights it is needs_weights and
// answers MODEL_NOT_LOADED naming the path and `isomodel pull --for codon-transformer`; with a tiny
// RANDOM checkpoint in the real on-disk layout (written by its own tool) its DNA equals that of an
// independent naive float64 BigBird (tools/make_tiny_checkpoint.py --reference), translates back
// to the protein (checked by codon-verifier), follows the organism (token types), is deterministic,
// and runs through `isomodel batch`. Needs /usr/bin/python3 with torch.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PACKAGE_ROOT } from '../src/paths.js';
import { digest } from '../src/security/keys.js';
import { startGateway, workerTmpDir, type Harness } from './helpers.js';
import { startMockHub, type MockHub } from './mock-hub.js';
import { requirePythonModules } from './python-modules.js';
import { runPythonBatch } from './twin-compare.js';

const PYTHON = '/usr/bin/python3';
const TOOL = join(PACKAGE_ROOT, 'models', 'codon-transformer', 'tools', 'make_tiny_checkpoint.py');
const PROTEINS = ['MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ', 'MSW', 'MCDEFGHIKLMNPQRSTVWY', 'M'];
const ECOLI = 51; // "Escherichia coli general" in CodonTransformer's ORGANISM2ID
const HUMAN = 59; // "Homo sapiens"
const STANDARD: Record<string, string> = {};
{
  const bases = 'TCAG';
  const aa = 'FFLLSSSSYY**CC*WLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG';
  for (let i = 0; i < 64; i++) STANDARD[bases[i >> 4]! + bases[(i >> 2) & 3]! + bases[i & 3]!] = aa[i]!;
}
const translate = (dna: string): string => (dna.match(/.{3}/g) ?? []).map((c) => STANDARD[c] ?? '?').join('');

/** Fails (never skips) when torch is missing: CI must install it. */
function requireTorch(): void {
  requirePythonModules(PYTHON, ['torch'], 'install it with `apt-get install -y python3-torch`');
}

type Reference = { ids: number[]; dna: string }[];

/** The tool's --reference arguments: the naive DNA of each protein for one organism. */
const referenceRun = (dir: string, organism: number, proteins: string[]): string[] => [
  TOOL,
  '--reference',
  dir,
  String(organism),
  ...proteins,
];

function cli(args: string[], cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(PACKAGE_ROOT, 'bin', 'isomodel.js'), ...args], {
      cwd,
      env: { PATH: process.env.PATH, HOME: process.env.HOME },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

const envFor = (dir: string) => ({
  model_env: { 'codon-transformer': { CODON_TRANSFORMER_MODEL_PATH: dir, CODON_TRANSFORMER_TORCH_THREADS: '1' } },
});

describe('codon-transformer without weights', () => {
  let h: Harness;
  before(async () => {
    h = await startGateway(['codon-transformer'], {
      model_env: { 'codon-transformer': { CODON_TRANSFORMER_MODEL_PATH: '/nonexistent/ct' } },
    });
  });
  after(async () => h?.close());

  it('answers 503 MODEL_NOT_LOADED naming the path, the variable and isomodel pull', async () => {
    const r = await h.post('/models/codon-transformer/predict', {
      sequence: 'MKTAYIAKQ',
      task_type: 'optimize',
      options: { organism: 'human' },
    });
    assert.equal(r.status, 503, JSON.stringify(r.body));
    assert.equal(r.body.error.code, 'MODEL_NOT_LOADED');
    assert.match(r.body.message, /CodonTransformer weights not found/);
    assert.match(r.body.message, /\/nonexistent\/ct/);
    assert.match(r.body.message, /CODON_TRANSFORMER_MODEL_PATH/);
    assert.match(r.body.message, /isomodel pull --for codon-transformer/);
  });

  it('is needs_weights, not failed, and does not hold /health/ready hostage', async () => {
    assert.equal((await h.get('/health/ready')).status, 200);
    const d = await h.get('/health/detailed');
    assert.equal(d.body.data.models.find((x: any) => x.name === 'codon-transformer').status, 'needs_weights');
    const info = await h.get('/models/codon-transformer/model/info');
    assert.deepEqual(info.body.data.tasks, ['optimize']);
    assert.equal(h.gw.registry.weights('codon-transformer')?.source, 'hf:adibvafa/CodonTransformer');
  });
});

describe('codon-transformer with a tiny random checkpoint', () => {
  let root: string;
  let binDir: string;
  let stDir: string;
  let h: Harness;
  let hs: Harness;
  /** The naive reference's answers for PROTEINS from binDir, by organism id. */
  const refs = new Map<number, Reference>();
  const work = workerTmpDir('isomodel-ct-work-');

  before(async () => {
    requireTorch();
    root = workerTmpDir('isomodel-ct-');
    binDir = join(root, 'bin');
    stDir = join(root, 'st');
    // One Python process for the checkpoints and the references (torch loads once).
    const out = runPythonBatch([
      [TOOL, binDir, '--format', 'bin', '--seed', '7'],
      [TOOL, stDir, '--format', 'safetensors', '--seed', '7'],
      referenceRun(binDir, ECOLI, PROTEINS),
      referenceRun(binDir, HUMAN, PROTEINS),
    ]);
    refs.set(ECOLI, JSON.parse(out[2]!) as Reference);
    refs.set(HUMAN, JSON.parse(out[3]!) as Reference);
    h = await startGateway(['codon-transformer', 'codon', 'codon-verifier'], envFor(binDir));
  });
  after(async () => {
    await h?.close();
    await hs?.close();
    if (root) rmSync(root, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  });

  const optimize = (sequence: string, options: Record<string, unknown> = {}) =>
    h.post('/models/codon-transformer/predict', { sequence, task_type: 'optimize', options });

  it('loads the checkpoint (pytorch_model.bin) and reports ready', async () => {
    const d = await h.get('/health/detailed');
    assert.equal(d.body.data.models.find((x: any) => x.name === 'codon-transformer').status, 'ready');
  });

  it('gives the DNA of the naive reference for each organism, and the organism (token type) matters', async () => {
    for (const [organism, id] of [
      ['Escherichia coli general', ECOLI],
      ['human', HUMAN],
    ] as const) {
      const ref = refs.get(id)!;
      for (const [i, p] of PROTEINS.entries()) {
        const r = await optimize(p, { organism });
        assert.equal(r.status, 200, JSON.stringify(r.body));
        assert.equal(r.body.data.organism_id, id);
        assert.equal(r.body.data.sequence, ref[i]!.dna, `${p} for organism ${id}`);
        assert.equal(r.body.data.num_tokens, ref[i]!.ids.length);
      }
    }
    const ecoli = await optimize(PROTEINS[0]!, { organism: ECOLI });
    const human = await optimize(PROTEINS[0]!, { organism: 'Homo sapiens' });
    assert.equal(ecoli.body.data.organism, 'Escherichia coli general');
    assert.equal(human.body.data.organism, 'Homo sapiens');
    assert.notEqual(
      ecoli.body.data.log_likelihood,
      human.body.data.log_likelihood,
      'a different token type changes the logits',
    );
  });

  it('the DNA uses only valid codons, ends with a stop and translates back (codon-verifier agrees)', async () => {
    for (const p of PROTEINS) {
      const r = await optimize(p, { organism: 'yeast' });
      const dna: string = r.body.data.sequence;
      assert.match(dna, /^([ACGT]{3})+$/);
      assert.equal(dna.length, 3 * (p.length + 1));
      assert.equal(translate(dna), `${p}*`);
      assert.equal(r.body.data.protein, `${p}*`);
      assert.equal(r.body.data.confidence_scores.length, p.length + 1);
      for (const s of r.body.data.confidence_scores) assert.ok(s > 0 && s <= 1);
      const v = await h.post('/models/codon-verifier/predict', {
        sequence: dna,
        task_type: 'verify',
        options: { organism: 'yeast', protein: p },
      });
      assert.equal(v.status, 200, JSON.stringify(v.body));
      assert.equal(v.body.data.checks.protein_match.pass, true, JSON.stringify(v.body.data.checks.protein_match));
      assert.equal(v.body.data.checks.internal_stops.pass, true);
    }
  });

  it('is deterministic by default; sampling is reproducible from its seed and still translates back', async () => {
    const a = await optimize(PROTEINS[0]!, { organism: 'human' });
    const b = await optimize(PROTEINS[0]!, { organism: 'human' });
    for (const k of ['sequence', 'log_likelihood', 'confidence_scores', 'decoding'])
      assert.deepEqual(a.body.data[k], b.body.data[k], k);
    const s1 = await optimize(PROTEINS[0]!, {
      organism: 'human',
      deterministic: false,
      temperature: 5,
      top_p: 1,
      seed: 11,
    });
    const s2 = await optimize(PROTEINS[0]!, {
      organism: 'human',
      deterministic: false,
      temperature: 5,
      top_p: 1,
      seed: 11,
    });
    assert.equal(s1.status, 200, JSON.stringify(s1.body));
    assert.equal(s1.body.data.sequence, s2.body.data.sequence);
    assert.equal(s1.body.data.seed, 11);
    assert.equal(s1.body.data.decoding, 'sampling');
    assert.equal(translate(s1.body.data.sequence), `${PROTEINS[0]}*`);
    const others = await Promise.all(
      [12, 13, 14, 15].map((seed) =>
        optimize(PROTEINS[0]!, { organism: 'human', deterministic: false, temperature: 5, top_p: 1, seed }),
      ),
    );
    assert.ok(
      others.some((o) => o.body.data.sequence !== s1.body.data.sequence),
      'a hot temperature gives other codons for other seeds',
    );
  });

  it('maps ambiguous residues as CodonTransformer does and refuses bad input with stable codes', async () => {
    const x = await optimize('MKXBWW', { organism: 'human' });
    assert.equal(x.status, 200, JSON.stringify(x.body));
    assert.equal(x.body.data.protein, 'MKANWW*');
    assert.equal(x.body.data.substituted_residues, 2);
    const org = await optimize('MKT', { organism: 'Martian' });
    assert.equal(org.status, 400);
    assert.equal(org.body.error.code, 'INVALID_REQUEST');
    assert.match(org.body.message, /unknown organism/);
    const id = await optimize('MKT', { organism: 164 });
    assert.equal(id.body.error.code, 'INVALID_REQUEST');
    const temp = await optimize('MKT', { deterministic: false, temperature: 0 });
    assert.equal(temp.body.error.code, 'INVALID_REQUEST');
    const long = await optimize('M'.repeat(2046));
    assert.equal(long.body.error.code, 'SEQUENCE_TOO_LONG');
    const ok = await optimize('M'.repeat(300), { organism: 'ecoli' });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
  });

  it('a batch of items gives what each item gives alone (padding does not leak)', async () => {
    const r = await h.post('/models/codon-transformer/predict/batch', {
      sequences: PROTEINS,
      task_type: 'optimize',
      options: { organism: 'human' },
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const ref = refs.get(HUMAN)!;
    assert.equal(r.body.data.successful, PROTEINS.length);
    PROTEINS.forEach((p, i) => assert.equal(r.body.data.predictions[i].sequence, ref[i]!.dna, p));
  });

  it('isomodel batch --service codon-transformer: the seed exchange files, outputs equal to direct calls', async () => {
    const inDir = join(work, 'data', 'input');
    mkdirSync(inDir, { recursive: true });
    PROTEINS.forEach((p, i) =>
      writeFileSync(
        join(inDir, `p${i}.json`),
        JSON.stringify({
          task: 'optimize',
          input: { sequence: p, organism: i % 2 ? 'human' : 'ecoli' },
          metadata: { request_id: `p${i}` },
        }),
      ),
    );
    const r = await cli(
      [
        '--models-dir',
        h.modelsDir,
        '--state-dir',
        join(work, 'state'),
        'batch',
        '--service',
        'codon-transformer',
        '--input-dir',
        inDir,
        '--workers',
        '2',
        '--url',
        h.url,
      ],
      work,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      new RegExp(`^Total files:\\s+${PROTEINS.length}\\nSuccessful:\\s+${PROTEINS.length}\\n`, 'm'),
    );
    const outDir = join(work, 'data', 'output');
    assert.equal(readdirSync(outDir).length, PROTEINS.length);
    for (const [i, p] of PROTEINS.entries()) {
      const out = JSON.parse(readFileSync(join(outDir, `p${i}.json`), 'utf8'));
      assert.equal(out.status, 'success');
      assert.equal(out.metadata.service, 'codon-transformer');
      const direct = await optimize(p, { organism: i % 2 ? 'human' : 'ecoli' });
      assert.equal(out.output.sequence, direct.body.data.sequence);
      assert.equal(out.output.organism_id, i % 2 ? HUMAN : ECOLI);
    }
  });

  it('model.safetensors without the tied tensors (as transformers writes it) gives the same DNA', async () => {
    hs = await startGateway(['codon-transformer'], envFor(stDir));
    for (const p of PROTEINS) {
      const [a, b] = await Promise.all([
        optimize(p, { organism: 'human' }),
        hs.post('/models/codon-transformer/predict', {
          sequence: p,
          task_type: 'optimize',
          options: { organism: 'human' },
        }),
      ]);
      assert.equal(b.status, 200, JSON.stringify(b.body));
      assert.equal(b.body.data.sequence, a.body.data.sequence);
      assert.ok(Math.abs(b.body.data.log_likelihood - a.body.data.log_likelihood) < 1e-3);
    }
  });
});

describe('codon-transformer weights pulled from the hub (its manifest source, hf:adibvafa/CodonTransformer)', () => {
  const ADMIN = 'iso_test_admin_secret_codontf_0001';
  const auth = { keys: [{ name: 'ops', sha256: digest(ADMIN), scopes: ['admin' as const, 'predict' as const] }] };
  const headers = { authorization: `Bearer ${ADMIN}` };
  let hub: MockHub;
  let h: Harness;
  let ckpt: string;
  let hubRef: Reference;

  before(async () => {
    requireTorch();
    ckpt = workerTmpDir('isomodel-ct-hub-');
    const out = runPythonBatch([
      [TOOL, ckpt, '--format', 'safetensors', '--seed', '21'],
      referenceRun(ckpt, HUMAN, [PROTEINS[0]!]),
    ]);
    hubRef = JSON.parse(out[1]!) as Reference;
    const files = readdirSync(ckpt).map((n) => ({
      path: n,
      data: readFileSync(join(ckpt, n)),
      lfs: n.endsWith('.safetensors'),
    }));
    hub = await startMockHub([{ repo: 'adibvafa/CodonTransformer', files }]);
    h = await startGateway(['codon-transformer'], {
      auth,
      pull: { hf_endpoint: hub.url },
      model_env: { 'codon-transformer': { CODON_TRANSFORMER_TORCH_THREADS: '1' } },
    });
  });
  after(async () => {
    await h?.close();
    await hub?.close();
    if (ckpt) rmSync(ckpt, { recursive: true, force: true });
  });

  it('is needs_weights, then POST /api/models/download fetches the checkpoint and the model serves it', async () => {
    assert.equal(h.gw.registry.status('codon-transformer'), 'needs_weights');
    const r = await h.post('/api/models/download', { model_id: 'codon-transformer' }, headers);
    assert.equal(r.status, 201, JSON.stringify(r.body));
    assert.equal(r.body.data.env, 'CODON_TRANSFORMER_MODEL_PATH');
    assert.equal(r.body.data.status, 'ready', r.body.data.last_error);
    const p = await h.post(
      '/models/codon-transformer/predict',
      { sequence: PROTEINS[0], task_type: 'optimize', options: { organism: 'human' } },
      headers,
    );
    assert.equal(p.status, 200, JSON.stringify(p.body));
    assert.equal(p.body.data.sequence, hubRef[0]!.dna);
  });
});
