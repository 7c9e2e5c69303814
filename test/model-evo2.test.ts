// The evo2 package through a real gateway: without weights it is needs_weights and answers
// MODEL_NOT_LOADED naming the path and `isomodel pull --for evo2`; with a tiny RANDOM checkpoint of
// Evo 2's block structure (hcs, hcm, hcl, attention, hcs; vortex key names, written by its own tool)
// its log-likelihoods and greedy continuation equal those of an independent naive float64
// implementation (tools/make_tiny_checkpoint.py --reference); dna-lm's output fields; streaming; the
// seed's `isomodel batch` files; and seed 003's pipeline with evo2 in dna-lm's place.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify as toYaml } from 'yaml';
import { DEFAULT_PIPELINE } from '../src/jobs/default-pipeline.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import { startGateway, workerTmpDir, type Harness } from './helpers.js';
import { readEvents } from './sse.js';
import { requirePythonModules } from './python-modules.js';
import { runPythonBatch } from './twin-compare.js';

const PYTHON = '/usr/bin/python3';
const TOOL = join(PACKAGE_ROOT, 'models', 'evo2', 'tools', 'make_tiny_checkpoint.py');
const EXAMPLE = join(PACKAGE_ROOT, 'examples', 'seed-003', 'data', 'input', 'example_task.json');
const SEQS = ['ACGTTGCAAGGCTTAC', 'ATGCGATCGNNATTTAGGC', 'GGGGCCCCAAAATTTTGATC'];
const TOL = 1e-4;

function requireTorch(): void {
  requirePythonModules(PYTHON, ['torch', 'yaml'], 'apt-get install -y python3-torch python3-yaml');
}

/** Writes a tiny checkpoint (the tool's arguments, its folder first) and returns the naive
 * reference's JSON for SEQS from it, both from one Python process (torch loads once). */
function makeWithReference(args: [string, ...string[]]): string {
  return runPythonBatch([
    [TOOL, ...args],
    [TOOL, '--reference', args[0], ...SEQS],
  ])[1]!;
}

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

describe('evo2 without weights', () => {
  let h: Harness;
  before(async () => {
    h = await startGateway(['evo2'], { model_env: { evo2: { EVO2_MODEL_PATH: '/nonexistent/evo2' } } });
  });
  after(async () => h?.close());

  it('answers 503 MODEL_NOT_LOADED naming the path, the variable and isomodel pull; needs_weights', async () => {
    for (const task of ['analyze', 'generate_sequence']) {
      const r = await h.post('/models/evo2/predict', { sequence: 'ACGTACGT', task_type: task });
      assert.equal(r.status, 503, JSON.stringify(r.body));
      assert.equal(r.body.error.code, 'MODEL_NOT_LOADED');
      assert.match(r.body.message, /Evo 2 weights not found/);
      assert.match(r.body.message, /\/nonexistent\/evo2/);
      assert.match(r.body.message, /EVO2_MODEL_PATH/);
      assert.match(r.body.message, /isomodel pull --for evo2/);
    }
    assert.equal((await h.get('/health/ready')).status, 200);
    const d = await h.get('/health/detailed');
    assert.equal(d.body.data.models.find((x: any) => x.name === 'evo2').status, 'needs_weights');
    assert.equal(h.gw.registry.weights('evo2')?.source, 'hf:arcinstitute/evo2_1b_base');
  });
});

describe('evo2 with a tiny random checkpoint of the same block structure', () => {
  let root: string;
  let ckpt: string;
  let h: Harness;
  let ref: { log_likelihoods: number[]; greedy: string }[];
  const work = workerTmpDir('isomodel-evo2-work-');

  before(async () => {
    requireTorch();
    root = workerTmpDir('isomodel-evo2-');
    ckpt = join(root, 'evo2');
    ref = JSON.parse(makeWithReference([ckpt, '--seed', '3'])) as typeof ref;
    h = await startGateway(['evo2', 'codon', 'codon-verifier'], {
      model_env: { evo2: { EVO2_MODEL_PATH: ckpt, EVO2_TORCH_THREADS: '1' } },
    });
  });
  after(async () => {
    await h?.close();
    if (root) rmSync(root, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  });

  const predict = (sequence: string, task: string, options: Record<string, unknown> = {}) =>
    h.post('/models/evo2/predict', { sequence, task_type: task, options });

  it('loads the vortex-layout checkpoint (yml config, .pt with per-head Wqkv and TE _extra_state) and reports ready', async () => {
    const d = await h.get('/health/detailed');
    assert.equal(d.body.data.models.find((x: any) => x.name === 'evo2').status, 'ready');
  });

  it("analyze: the naive reference's per-base log-likelihoods, and dna-lm's output fields", async () => {
    for (const [i, s] of SEQS.entries()) {
      const r = await predict(s, 'analyze');
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const out = r.body.data;
      assert.equal(out.log_likelihoods.length, s.length - 1);
      const diff = out.log_likelihoods.reduce(
        (m: number, x: number, j: number) => Math.max(m, Math.abs(x - ref[i]!.log_likelihoods[j]!)),
        0,
      );
      assert.ok(diff <= TOL, `${s}: max difference ${diff}`);
      const total = ref[i]!.log_likelihoods.reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(out.total_log_likelihood - total) < 1e-3);
      assert.ok(Math.abs(out.sequence_score - total / (s.length - 1)) < 1e-4);
      assert.ok(Math.abs(out.perplexity - Math.exp(-out.sequence_score)) < 1e-9 * out.perplexity);
      for (const k of [
        'log_likelihoods',
        'total_log_likelihood',
        'sequence_score',
        'perplexity',
        'bits_per_base',
        'length',
      ])
        assert.ok(k in out, k);
      assert.equal(out.length, s.length);
    }
    const one = await predict('A', 'analyze');
    assert.equal(one.body.error.code, 'INVALID_SEQUENCE');
  });

  it("generate_sequence: top_k 1 is the reference's greedy continuation; seeded sampling reproducible; dna-lm's fields", async () => {
    for (const [i, s] of SEQS.entries()) {
      const r = await predict(s, 'generate_sequence', { length: 12, top_k: 1 });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.data.continuation, ref[i]!.greedy, s);
      assert.equal(r.body.data.generated_sequence, s + ref[i]!.greedy);
    }
    const a = await predict('ATGCGATCG', 'generate_sequence', { length: 30, seed: 5, temperature: 3 });
    const b = await predict('ATGCGATCG', 'generate_sequence', { length: 30, seed: 5, temperature: 3 });
    assert.equal(a.body.data.continuation, b.body.data.continuation);
    assert.match(a.body.data.continuation, /^[ACGT]{30}$/);
    for (const k of [
      'generated_sequence',
      'sequence',
      'continuation',
      'prompt_length',
      'length',
      'confidence_scores',
      'log_likelihood',
      'mean_log_likelihood',
      'seed',
      'temperature',
    ])
      assert.ok(k in a.body.data, k);
    assert.equal(a.body.data.confidence_scores.length, 30);
    const ll = a.body.data.confidence_scores.reduce((acc: number, p: number) => acc + Math.log(p), 0);
    assert.ok(Math.abs(ll - a.body.data.log_likelihood) < 1e-6);
    const total = await predict('ATGCGATCG', 'generate_sequence', { total_length: 21, seed: 1 });
    assert.equal(total.body.data.length, 21);
    for (const [options, code] of [
      [{ top_k: 5 }, 'INVALID_REQUEST'],
      [{ temperature: 0 }, 'INVALID_REQUEST'],
      [{ length: 2001 }, 'INVALID_REQUEST'],
    ] as const) {
      const bad = await predict('ACGT', 'generate_sequence', options);
      assert.equal(bad.body.error?.code, code, JSON.stringify(options));
    }
  });

  it('streams the continuation as SSE chunks, then the same final output', async () => {
    const res = await fetch(`${h.url}/models/evo2/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        sequence: 'ATGCGATCG',
        task_type: 'generate_sequence',
        stream: true,
        options: { length: 25, seed: 9, chunk_size: 10 },
      }),
    });
    assert.equal(res.status, 200);
    const events = await readEvents(res);
    const chunks = events.filter((e) => e.event === 'chunk').map((e) => JSON.parse(e.data).data.text as string);
    assert.deepEqual(
      chunks.map((c) => c.length),
      [10, 10, 5],
    );
    const result = JSON.parse(events.find((e) => e.event === 'result')!.data);
    assert.equal(chunks.join(''), result.data.continuation);
    assert.equal(
      result.data.continuation,
      (await predict('ATGCGATCG', 'generate_sequence', { length: 25, seed: 9 })).body.data.continuation,
    );
  });

  it("isomodel batch --service evo2 with the seed's exchange files (analyze records and example_task.json)", async () => {
    const inDir = join(work, 'b', 'data', 'input');
    mkdirSync(inDir, { recursive: true });
    SEQS.forEach((s, i) =>
      writeFileSync(join(inDir, `task_${i}.json`), JSON.stringify({ task: 'analyze', input: { sequence: s } })),
    );
    writeFileSync(join(inDir, 'example_task.json'), readFileSync(EXAMPLE));
    const r = await cli(
      [
        '--models-dir',
        h.modelsDir,
        '--state-dir',
        join(work, 'state'),
        'batch',
        '--service',
        'evo2',
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
    assert.match(r.stdout, /^Total files:\s+4\nSuccessful:\s+4\nFailed:\s+0\n/m);
    for (const [i, s] of SEQS.entries()) {
      const out = JSON.parse(readFileSync(join(work, 'b', 'data', 'output', `task_${i}.json`), 'utf8'));
      assert.equal(out.status, 'success');
      assert.equal(out.metadata.service, 'evo2');
      assert.deepEqual(out.output.log_likelihoods, (await predict(s, 'analyze')).body.data.log_likelihoods);
    }
    const gen = JSON.parse(readFileSync(join(work, 'b', 'data', 'output', 'example_task.json'), 'utf8'));
    assert.equal(gen.status, 'success');
    assert.equal(gen.metadata.request_id, 'task_001');
    assert.ok(gen.output.generated_sequence.startsWith('ATGCGATCG'));
    assert.equal(gen.output.continuation.length, 100);
  });

  it("seed 003's pipeline runs with evo2 in dna-lm's place (generate -> optimise -> verify)", async () => {
    const file = join(work, 'evo2-pipeline.yaml');
    const def = structuredClone(DEFAULT_PIPELINE) as {
      steps: { name: string; model: string; options?: Record<string, unknown> }[];
    };
    def.steps[0]!.model = 'evo2';
    def.steps[0]!.options = { total_length: 60, seed: 4 };
    writeFileSync(file, toYaml(def));
    const out = join(work, 'pipeline.jsonl');
    const r = await cli(
      [
        '--models-dir',
        h.modelsDir,
        '--state-dir',
        join(work, 'state'),
        'pipeline',
        'run',
        file,
        '--input',
        EXAMPLE,
        '--output',
        out,
        '--url',
        h.url,
      ],
      work,
    );
    assert.equal(r.code, 0, r.stderr);
    const [rec] = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(rec.status, 'success', JSON.stringify(rec.error));
    assert.equal(rec.output.generate.length, 60);
    assert.ok(rec.output.generate.sequence.startsWith('ATGCGATCG'));
    assert.equal(rec.output.optimize.sequence.length, 60);
    assert.equal(rec.output.verify.organism, 'human');
  });
});

describe("evo2 with vortex's other conventions (column-split hyena, biases, GELU everywhere, interpolated rotary)", () => {
  let root: string;
  let h: Harness;
  let ref: { log_likelihoods: number[]; greedy: string }[];

  before(async () => {
    requireTorch();
    root = workerTmpDir('isomodel-evo2-alt-');
    const ckpt = join(root, 'alt');
    ref = JSON.parse(makeWithReference([ckpt, '--seed', '8', '--variant', 'alt'])) as typeof ref;
    h = await startGateway(['evo2'], { model_env: { evo2: { EVO2_MODEL_PATH: ckpt, EVO2_TORCH_THREADS: '1' } } });
  });
  after(async () => {
    await h?.close();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('analyze and greedy generation equal the naive reference', async () => {
    for (const [i, s] of SEQS.entries()) {
      const a = await h.post('/models/evo2/predict', { sequence: s, task_type: 'analyze' });
      assert.equal(a.status, 200, JSON.stringify(a.body));
      const diff = a.body.data.log_likelihoods.reduce(
        (m: number, x: number, j: number) => Math.max(m, Math.abs(x - ref[i]!.log_likelihoods[j]!)),
        0,
      );
      assert.ok(diff <= TOL, `${s}: max difference ${diff}`);
      const g = await h.post('/models/evo2/predict', {
        sequence: s,
        task_type: 'generate_sequence',
        options: { length: 12, top_k: 1 },
      });
      assert.equal(g.body.data.continuation, ref[i]!.greedy, s);
    }
  });
});
