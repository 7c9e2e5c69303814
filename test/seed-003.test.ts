// Seed 003 (../shared/spec/003_*.txt, docs/seed-003.md): three services exchanging JSON files:
// Evo2 (here dna-lm, the same tasks), CodonTransformer (here codon's codon_optimize) and Codon
// Verifier (codon-verifier). Its commands as a user runs them (child processes of bin/isomodel.js)
// against a real gateway: `batch --service … --input-dir data/input --workers N` with the seed's
// exchange files ({"task": "analyze", …} and the shipped example_task.json), the seed's summary,
// and `pipeline run` with the seed's default pipeline generate → optimise → verify.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { DEFAULT_PIPELINE } from '../src/jobs/default-pipeline.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import { startGateway, workerTmpDir, type Harness } from './helpers.js';

const EXAMPLE = join(PACKAGE_ROOT, 'examples', 'seed-003', 'data', 'input', 'example_task.json');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}
function cli(args: string[], cwd: string): Promise<Run> {
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

describe("seed 003's services, batch and pipeline through a real gateway", () => {
  let h: Harness;
  const work = workerTmpDir('isomodel-seed3-');
  before(async () => {
    h = await startGateway(['dna-lm', 'codon', 'codon-verifier']);
  });
  after(async () => h?.close());
  const g = (): string[] => ['--models-dir', h.modelsDir, '--state-dir', join(work, 'cli-state')];

  it("ships the seed's example_task.json as the seed wrote it", () => {
    assert.deepEqual(JSON.parse(readFileSync(EXAMPLE, 'utf8')), {
      task: 'generate_sequence',
      input: { sequence: 'ATGCGATCG', organism: 'human' },
      metadata: { request_id: 'task_001' },
    });
  });

  it('batch --service dna-lm --input-dir data/input: analyze records and the example, outputs in data/output, the seed summary', async () => {
    const inDir = join(work, 'a', 'data', 'input');
    mkdirSync(inDir, { recursive: true });
    const seqs = Array.from({ length: 6 }, (_, i) => 'ATGCGTACGTTAGC'.repeat(i + 1));
    seqs.forEach((s, i) =>
      writeFileSync(join(inDir, `task_${i + 1}.json`), JSON.stringify({ task: 'analyze', input: { sequence: s } })),
    );
    writeFileSync(join(inDir, 'example_task.json'), readFileSync(EXAMPLE));
    const r = await cli(
      [...g(), 'batch', '--service', 'dna-lm', '--input-dir', inDir, '--workers', '2', '--url', h.url],
      work,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /gateway http:\/\/127\.0\.0\.1/, 'ran as a job on the gateway');
    assert.match(
      r.stdout,
      /^Total files:\s+7\nSuccessful:\s+7\nFailed:\s+0\nAverage time:\s+\d+\.\d{3}s per file.*\nTotal time:\s+\d+\.\d{2}s\n/m,
    );
    const outDir = join(work, 'a', 'data', 'output');
    assert.deepEqual(
      readdirSync(outDir).sort(),
      ['example_task.json', ...seqs.map((_, i) => `task_${i + 1}.json`)].sort(),
    );
    for (const [i, s] of seqs.entries()) {
      const out = JSON.parse(readFileSync(join(outDir, `task_${i + 1}.json`), 'utf8'));
      assert.equal(out.task, 'analyze');
      assert.equal(out.status, 'success');
      assert.equal(out.metadata.service, 'dna-lm');
      const direct = await h.post('/models/dna-lm/predict', { sequence: s, task_type: 'analyze' });
      assert.deepEqual(out.output.log_likelihoods, direct.body.data.log_likelihoods);
      assert.equal(out.output.sequence_score, direct.body.data.sequence_score);
    }
    const gen = JSON.parse(readFileSync(join(outDir, 'example_task.json'), 'utf8'));
    assert.equal(gen.task, 'generate_sequence');
    assert.equal(gen.status, 'success');
    assert.equal(gen.metadata.request_id, 'task_001');
    assert.ok(gen.output.generated_sequence.startsWith('ATGCGATCG'));
    assert.equal(gen.output.continuation.length, 100);
  });

  it('batch --service codon-verifier: verify records with their organism and protein', async () => {
    const inDir = join(work, 'v', 'input');
    mkdirSync(inDir, { recursive: true });
    writeFileSync(
      join(inDir, 'good.json'),
      JSON.stringify({
        task: 'verify',
        input: { sequence: 'ATGGCTGCAAAATGGTAA', organism: 'yeast', parameters: { protein: 'MAAKW' } },
        metadata: { request_id: 'good' },
      }),
    );
    writeFileSync(
      join(inDir, 'bad.json'),
      JSON.stringify({
        task: 'verify',
        input: { sequence: 'ATGTAAGCTGCAAAATGG', organism: 'human' },
        metadata: { request_id: 'bad' },
      }),
    );
    const r = await cli([...g(), 'batch', '--service', 'codon-verifier', '--input-dir', inDir, '--url', h.url], work);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Total files:\s+2\nSuccessful:\s+2\n/m, 'a failing verdict is a successful verification');
    const good = JSON.parse(readFileSync(join(work, 'v', 'output', 'good.json'), 'utf8'));
    assert.equal(good.output.verdict, 'pass');
    assert.equal(good.output.organism, 'yeast');
    assert.equal(good.output.checks.protein_match.pass, true);
    const bad = JSON.parse(readFileSync(join(work, 'v', 'output', 'bad.json'), 'utf8'));
    assert.equal(bad.output.verdict, 'fail');
    assert.deepEqual(bad.output.failed, ['stop_codon', 'internal_stops']);
    assert.equal(bad.output.checks.cai.organism, 'human');
  });

  it("pipeline run without a file runs the seed's default pipeline generate → optimise → verify", async () => {
    const out = join(work, 'pipeline.jsonl');
    const r = await cli([...g(), 'pipeline', 'run', '--input', EXAMPLE, '--output', out, '--url', h.url], work);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /pipeline generate-optimize-verify/);
    const [rec] = readFileSync(out, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.equal(rec.status, 'success', JSON.stringify(rec.error));
    assert.equal(rec.task, 'pipeline:generate-optimize-verify');
    assert.equal(rec.metadata.request_id, 'task_001');
    const { generate, optimize, verify } = rec.output;
    assert.equal(generate.length, 300);
    assert.ok(generate.sequence.startsWith('ATGCGATCG'));
    assert.equal(optimize.organism, 'human', "the record's organism reaches the steps that take one");
    assert.equal(optimize.input_type, 'dna');
    assert.equal(optimize.sequence.length, 300);
    assert.equal(verify.organism, 'human');
    assert.equal(verify.checks.restriction_sites.value, 0, 'optimise kept out the sites verify looks for');
    assert.ok(verify.checks.homopolymer.value <= 8);
    assert.equal(verify.protein, optimize.protein);
    // The verdict is the verifier's own on that sequence.
    const direct = await h.post('/models/codon-verifier/predict', {
      sequence: optimize.sequence,
      task_type: 'verify',
      options: { organism: 'human' },
    });
    assert.deepEqual(verify.failed, direct.body.data.failed);
    assert.equal(verify.checks.internal_stops.value, (optimize.protein.slice(0, -1).match(/\*/g) ?? []).length);
  });

  it('pipeline validate without a file describes the default pipeline; the example file is the same pipeline', async () => {
    const r = await cli([...g(), 'pipeline', 'validate'], work);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stdout,
      /pipeline generate-optimize-verify \(version 1\.0\.0\) is valid:\n1\. generate: dna-lm\/generate_sequence on input\.sequence.*\n2\. optimize: codon\/codon_optimize on generate\.sequence.*\n3\. verify: codon-verifier\/verify on optimize\.sequence \[organism<-optimize\.organism\]/,
    );
    const file = parseYaml(
      readFileSync(join(PACKAGE_ROOT, 'examples', 'pipelines', 'generate-optimize-verify.yaml'), 'utf8'),
    );
    assert.deepEqual(file, DEFAULT_PIPELINE);
  });
});
