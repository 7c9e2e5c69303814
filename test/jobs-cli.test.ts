// `isomodel batch` and `isomodel pipeline run` as a user runs them (child processes): offline
// with N replicas, through a running gateway, folders of exchange files, CSV, and the summary.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseDelimited } from '../src/jobs/formats.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import { makeModelsDir, startGateway, workerTmpDir, type Harness } from './helpers.js';

const COMP: Record<string, string> = { A: 'T', C: 'G', G: 'C', T: 'A' };
const rc = (s: string): string =>
  s
    .split('')
    .reverse()
    .map((c) => COMP[c])
    .join('');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], cwd: string, env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(PACKAGE_ROOT, 'bin', 'isomodel.js'), ...args], {
      cwd,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ISOMODEL_URL: 'http://127.0.0.1:9', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

function jsonl(text: string): any[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l));
}

describe('isomodel batch / pipeline run', () => {
  const modelsDir = makeModelsDir(['revcomp', 'gc-scanner', 'slow-node']);
  const work = workerTmpDir('isomodel-batch-cli-'); // the state's work dir is in here: workers (nobody, as root) pass through
  const state = join(work, 'state');
  const g = ['--models-dir', modelsDir, '--state-dir', state];
  const seqs = Array.from({ length: 300 }, (_, i) => 'ACGTTGCAAC'.slice(i % 7) + 'GGATC'.slice(0, 1 + (i % 5)));
  seqs[5] = 'ACGTJJ';
  const fasta = join(work, 'seqs.fasta');
  writeFileSync(fasta, seqs.map((s, i) => `>r${i} sample ${i}\n${s}\n`).join(''));

  after(() => {
    rmSync(modelsDir, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  });

  it('runs a FASTA file offline into JSONL, in order, with progress lines and the summary', async () => {
    const out = join(work, 'out.jsonl');
    const r = await cli(
      [...g, 'batch', fasta, '--model', 'revcomp', '--offline', '--workers', '2', '--output', out],
      work,
    );
    assert.equal(r.code, 0, r.stderr);
    const recs = jsonl(readFileSync(out, 'utf8'));
    assert.equal(recs.length, seqs.length);
    recs.forEach((rec, i) => {
      assert.equal(rec.metadata.index, i);
      assert.equal(rec.metadata.request_id, `r${i}`);
      if (i === 5) assert.equal(rec.error.code, 'INVALID_SEQUENCE');
      else assert.equal(rec.output.reverse_complement, rc(seqs[i]!));
    });
    assert.match(r.stderr, /300 sequences → revcomp \(offline/);
    assert.match(r.stderr, /progress: 300\/300 \(100\.0%\) done=299 failed=1 rate=[\d.]+\/s eta=/);
    assert.match(r.stdout, /Total:\s+300\nSuccessful:\s+299\nFailed:\s+1\nAverage time:\s+[\d.]+ ms/);
    assert.match(r.stdout, /Total time:\s+[\d.]+ s/);
  });

  it('starts N replicas offline (--workers 2 → two worker processes share the work)', async () => {
    const input = join(work, 'slow.txt');
    writeFileSync(input, Array.from({ length: 64 }, () => 'ACGT').join('\n'));
    const r = await cli(
      [...g, 'batch', input, '-m', 'slow-node', '--offline', '-w', '2', '--chunk-size', '4', '-o', 'delay_ms=20', '-q'],
      work,
    );
    assert.equal(r.code, 0, r.stderr);
    const recs = jsonl(r.stdout);
    assert.equal(recs.length, 64);
    assert.equal(new Set(recs.map((x) => x.output.pid)).size, 2);
    assert.equal(r.stderr, '', 'quiet');
  });

  it('writes CSV when the output file ends in .csv', async () => {
    const out = join(work, 'out.csv');
    const r = await cli(
      [...g, 'batch', fasta, '--model', 'gc-scanner', '--task', 'gc_content', '--offline', '--output', out, '-q'],
      work,
    );
    assert.equal(r.code, 0, r.stderr);
    const rows = parseDelimited(readFileSync(out, 'utf8'), ',');
    assert.equal(rows.length, seqs.length + 1);
    assert.deepEqual(rows[0]!.slice(0, 4), ['index', 'request_id', 'task', 'status']);
    assert.ok(rows[0]!.includes('gc_content'));
    assert.deepEqual(rows[6]!.slice(0, 4), ['5', 'r5', 'gc_content', 'error']);
  });

  it('processes a folder of exchange files into a folder of outputs', async () => {
    const inDir = join(work, 'in');
    const outDir = join(work, 'out');
    mkdirSync(inDir);
    writeFileSync(
      join(inDir, 'task_001.json'),
      JSON.stringify({
        task: 'gc_content',
        input: { sequence: 'GGGGAAAA', parameters: { window: 4 } },
        metadata: { request_id: 'task_001' },
      }),
    );
    writeFileSync(
      join(inDir, 'task_002.json'),
      JSON.stringify({
        task: 'motif_scan',
        input: { sequences: ['TTGACAATTATAATG', 'ACGTJ'] },
        metadata: { request_id: 'task_002' },
      }),
    );
    writeFileSync(join(inDir, 'more.jsonl'), '{"id":"m1","sequence":"GC"}\n{"id":"m2","sequence":"AT"}\n');
    writeFileSync(join(inDir, 'table.csv'), 'id,sequence\nt1,GGCC\n');
    writeFileSync(join(inDir, 'notes.md'), 'not an input');
    const r = await cli(
      [
        ...g,
        'batch',
        '--model',
        'gc-scanner',
        '--task',
        'gc_content',
        '--input-dir',
        inDir,
        '--output-dir',
        outDir,
        '--offline',
        '--workers',
        '1',
      ],
      work,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(readdirSync(outDir).sort(), ['more.jsonl', 'table.jsonl', 'task_001.json', 'task_002.json']);
    const one = JSON.parse(readFileSync(join(outDir, 'task_001.json'), 'utf8'));
    assert.deepEqual(Object.keys(one), ['task', 'status', 'output', 'metadata']);
    assert.equal(one.task, 'gc_content');
    assert.equal(one.status, 'success');
    assert.deepEqual(one.output.windows, [1, 0]);
    assert.deepEqual(Object.keys(one.metadata).sort(), ['processing_time_ms', 'request_id', 'service', 'version']);
    assert.equal(one.metadata.request_id, 'task_001');
    assert.equal(one.metadata.service, 'gc-scanner');
    const two = JSON.parse(readFileSync(join(outDir, 'task_002.json'), 'utf8'));
    assert.equal(two.task, 'motif_scan');
    assert.equal(two.status, 'error');
    assert.equal(two.error.code, 'PARTIAL_FAILURE');
    assert.equal(two.output.results[0].output.count, 3);
    assert.equal(two.output.results[1].error.code, 'INVALID_SEQUENCE');
    const more = jsonl(readFileSync(join(outDir, 'more.jsonl'), 'utf8'));
    assert.deepEqual(
      more.map((x) => [x.metadata.request_id, x.output.gc_content]),
      [
        ['m1', 1],
        ['m2', 0],
      ],
    );
    assert.match(r.stderr, /skipping notes\.md/);
    assert.match(r.stdout, /^Total files:\s+4\nSuccessful:\s+3\nFailed:\s+1\nAverage time:\s+[\d.]+s per file/m);
    assert.match(r.stdout, /Records:\s+6 \(5 successful, 1 failed\)/);
  });

  it('takes --service for --model, and the seed layout data/input → data/output, with the seed summary', async () => {
    const data = join(work, 'seed3', 'data');
    const inDir = join(data, 'input');
    mkdirSync(inDir, { recursive: true });
    for (let i = 1; i <= 5; i++)
      writeFileSync(
        join(inDir, `task_${i}.json`),
        JSON.stringify({ task: 'gc_content', input: { sequence: 'GGCA'.repeat(i) } }),
      );
    const r = await cli(
      [...g, 'batch', '--service', 'gc-scanner', '--input-dir', inDir, '--workers', '2', '--offline'],
      work,
    );
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(readdirSync(join(data, 'output')).sort(), [
      'task_1.json',
      'task_2.json',
      'task_3.json',
      'task_4.json',
      'task_5.json',
    ]);
    const three = JSON.parse(readFileSync(join(data, 'output', 'task_3.json'), 'utf8'));
    assert.equal(three.status, 'success');
    assert.equal(three.metadata.service, 'gc-scanner');
    assert.equal(three.output.gc_content, 0.75);
    assert.match(
      r.stdout,
      /^Total files:\s+5\nSuccessful:\s+5\nFailed:\s+0\nAverage time:\s+\d+\.\d{3}s per file .*\nTotal time:\s+\d+\.\d{2}s\n/m,
    );
    const both = await cli(
      [...g, 'batch', '--service', 'gc-scanner', '--model', 'revcomp', '--input-dir', inDir, '--offline'],
      work,
    );
    assert.equal(both.code, 1);
    assert.match(both.stderr, /--service is another name for --model/);
    const none = await cli([...g, 'batch', '--input-dir', inDir, '--offline'], work);
    assert.equal(none.code, 1);
    assert.match(none.stderr, /--model \(or --service\) is required/);
    const noOut = await cli(
      [...g, 'batch', '--service', 'gc-scanner', '--input-dir', join(work, 'in'), '--offline'],
      work,
    );
    assert.equal(noOut.code, 1);
    assert.match(noOut.stderr, /--input-dir needs --output-dir/);
  });

  it('runs a pipeline file offline', async () => {
    const r = await cli(
      [
        ...g,
        'pipeline',
        'run',
        join(PACKAGE_ROOT, 'examples', 'pipelines', 'revcomp-gc.yaml'),
        '--input',
        fasta,
        '--offline',
        '-q',
      ],
      work,
    );
    assert.equal(r.code, 0, r.stderr);
    const recs = jsonl(r.stdout);
    assert.equal(recs.length, seqs.length);
    assert.equal(recs[0].task, 'pipeline:revcomp-gc');
    assert.equal(recs[0].output.rc.reverse_complement, rc(seqs[0]!));
    assert.equal(recs[0].output.gc.length, seqs[0]!.length);
    assert.ok('count' in recs[0].output.boxes);
    assert.equal(recs[5].error.step, 'rc');
    const v = await cli(
      [...g, 'pipeline', 'validate', join(PACKAGE_ROOT, 'examples', 'pipelines', 'revcomp-gc.yaml')],
      work,
    );
    assert.equal(v.code, 0, v.stderr);
    assert.match(
      v.stdout,
      /pipeline revcomp-gc \(version 1\.0\.0\) is valid:\n1\. rc: revcomp\/reverse_complement on input\.sequence/,
    );
  });

  it('reports input problems clearly', async () => {
    const bad = join(work, 'bad.jsonl');
    writeFileSync(bad, '{"sequence":"AC"}\nnope\n');
    const r = await cli([...g, 'batch', bad, '--model', 'revcomp', '--offline'], work);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /bad\.jsonl line 2: not valid JSON/);
    const m = await cli([...g, 'batch', fasta, '--model', 'nope', '--offline'], work);
    assert.equal(m.code, 1);
    assert.match(m.stderr, /no model named "nope"/);
  });

  describe('through a running gateway', () => {
    let h: Harness;
    before(async () => {
      h = await startGateway(['revcomp']);
    });
    after(async () => h.close());

    it('submits a durable job and streams its results back', async () => {
      const out = join(work, 'server.jsonl');
      const r = await cli(
        [...g, 'batch', fasta, '--model', 'revcomp', '--url', h.url, '--output', out, '--workers', '2'],
        work,
      );
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, new RegExp(`gateway ${h.url.replace(/[.]/g, '\\.')}`));
      const id = /job ([0-9a-f-]{36})/.exec(r.stderr)![1]!;
      const recs = jsonl(readFileSync(out, 'utf8'));
      assert.equal(recs.length, seqs.length);
      recs.forEach((rec, i) => assert.equal(rec.metadata.index, i));
      assert.equal(recs[1].output.reverse_complement, rc(seqs[1]!));
      const job = (await h.get(`/v1/jobs/${id}`)).body.data;
      assert.deepEqual(
        [job.status, job.total, job.failed, job.workers, job.name],
        ['succeeded', 300, 1, 2, 'seqs.fasta'],
      );
      assert.match(r.stdout, /Total:\s+300\nSuccessful:\s+299\nFailed:\s+1/);
    });
  });

  describe('through a gateway with API keys', () => {
    let h: Harness;
    before(async () => {
      h = await startGateway(['revcomp']);
    });
    after(async () => h.close());

    it('sends ISOMODEL_API_KEY: the job belongs to that key, another key cannot see it', async () => {
      const mine = h.gw.keys.create('cli-user', ['predict']);
      const other = h.gw.keys.create('someone-else', ['predict']);
      const out = join(work, 'keyed.jsonl');
      const denied = await cli(
        [...g, 'batch', fasta, '--model', 'revcomp', '--url', h.url, '--output', out, '-q'],
        work,
      );
      assert.equal(denied.code, 1);
      assert.match(denied.stderr, /UNAUTHORIZED/);
      const r = await cli([...g, 'batch', fasta, '--model', 'revcomp', '--url', h.url, '--output', out], work, {
        ISOMODEL_API_KEY: mine.key,
      });
      assert.equal(r.code, 0, r.stderr);
      assert.equal(jsonl(readFileSync(out, 'utf8')).length, seqs.length);
      const id = /job ([0-9a-f-]{36})/.exec(r.stderr)![1]!;
      assert.equal(
        (await h.get(`/v1/jobs/${id}`, { authorization: `Bearer ${mine.key}` })).body.data.status,
        'succeeded',
      );
      assert.equal((await h.get(`/v1/jobs/${id}`, { authorization: `Bearer ${other.key}` })).status, 404);
    });
  });
});
