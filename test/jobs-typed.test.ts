// Jobs of any input type (issue 15) through a real gateway and real workers: JSONL records
// {"id", "input"} of every type (test/fixtures/models/typed-node answers with what it received),
// CSV with an input column, the exchange format with `inputs`, pipelines that pass one step's
// text to the next; each bad record (broken base64, a truncated PNG, a WAV with a wrong header,
// JSON failing its schema, an image over the limit…) fails alone with its code, and no result
// carries an image's or a recording's bytes back. Then `isomodel batch` / `pipeline run` with
// typed records, offline and through the gateway, and a folder of image and audio files.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PACKAGE_ROOT } from '../src/paths.js';
import { makeModelsDir, startGateway, waitFor, workerTmpDir, type Harness } from './helpers.js';
import { makePng, makeWav } from './media.js';

function lines(text: string): any[] {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l));
}

const png = makePng(20, 10, (x) => [x * 10, 0, 0]);
const wav = makeWav(1.5);
const badHeaderWav = Buffer.from(wav);
badHeaderWav.write('JUNK', 12, 'latin1'); // the fmt chunk renamed
const CHAT = {
  messages: [
    { role: 'system', content: 'be brief' },
    { role: 'user', content: 'hi there' },
  ],
};

/** One record per input type, good and bad, with what each must come back as. */
const CASES: {
  rec: { id: string; task: string; [k: string]: unknown };
  ok?: (o: any) => void;
  code?: string;
  message?: RegExp;
}[] = [
  {
    rec: { id: 'text', task: 'words', input: 'hello big world' },
    ok: (o) => assert.deepEqual([o.words, o.upper], [3, 'HELLO BIG WORLD']),
  },
  { rec: { id: 'text-as-sequence', task: 'words', sequence: 'two words' }, ok: (o) => assert.equal(o.words, 2) },
  {
    rec: { id: 'text-too-long', task: 'words', input: 'x'.repeat(201) },
    code: 'INPUT_TOO_LONG',
    message: /201 characters; the limit is 200/,
  },
  {
    rec: {
      id: 'json',
      task: 'patient',
      input: { symptoms: ['头痛', '乏力'], patient_info: { age: 35 } },
      parameters: { temperature: 0.7 },
    },
    ok: (o) => assert.deepEqual([o.symptoms, o.age], [2, 35]),
  },
  {
    rec: { id: 'json-schema', task: 'patient', input: { patient_info: { age: 35 } } },
    code: 'INVALID_INPUT',
    message: /missing the required property "symptoms"/,
  },
  {
    rec: { id: 'json-as-sequence', task: 'patient', sequence: 'ACGT' },
    code: 'INVALID_REQUEST',
    message: /takes json input: give the record "input"/,
  },
  {
    rec: {
      id: 'tensor',
      task: 'add',
      input: {
        a: [
          [1, 2],
          [3, 4],
        ],
        b: { datatype: 'INT32', shape: [2], data: [10, 20] },
      },
    },
    ok: (o) => assert.deepEqual(o.sums, [33, 37]),
  },
  {
    rec: { id: 'tensor-shape', task: 'add', input: { a: [[1, 2, 3]], b: [0, 0] } },
    code: 'INVALID_INPUT',
    message: /shape \[1, 3\]/,
  },
  {
    rec: { id: 'image', task: 'look', input: png.toString('base64') },
    ok: (o) => assert.deepEqual([o.format, o.width, o.height, o.decoded_bytes], ['png', 20, 10, png.length]),
  },
  {
    rec: { id: 'image-object', task: 'look', input: { data: png.toString('base64'), format: 'png' } },
    ok: (o) => assert.equal(o.width, 20),
  },
  {
    rec: { id: 'image-data-url', task: 'look', input: `data:image/png;base64,${png.toString('base64')}` },
    ok: (o) => assert.equal(o.height, 10),
  },
  {
    rec: { id: 'image-base64', task: 'look', input: 'not base64!' },
    code: 'INVALID_INPUT',
    message: /not valid base64/,
  },
  {
    rec: { id: 'image-truncated', task: 'look', input: png.subarray(0, png.length - 20).toString('base64') },
    code: 'UNSUPPORTED_MEDIA_TYPE',
    message: /truncated PNG/,
  },
  {
    rec: { id: 'image-pixels', task: 'look', input: makePng(1001, 1000).toString('base64') },
    code: 'PAYLOAD_TOO_LARGE',
    message: /pixels; the limit is 1000000/,
  },
  {
    rec: { id: 'image-bytes', task: 'look', input: Buffer.alloc(150_000, 1).toString('base64') },
    code: 'PAYLOAD_TOO_LARGE',
    message: /the limit is 100000/,
  },
  {
    rec: { id: 'audio', task: 'listen', input: wav.toString('base64') },
    ok: (o) =>
      assert.deepEqual([o.format, o.sample_rate, o.duration_s, o.decoded_bytes], ['wav', 8000, 1.5, wav.length]),
  },
  {
    rec: { id: 'audio-header', task: 'listen', input: badHeaderWav.toString('base64') },
    code: 'UNSUPPORTED_MEDIA_TYPE',
    message: /before the fmt chunk/,
  },
  {
    rec: { id: 'chat', task: 'chat', input: CHAT },
    ok: (o) => assert.deepEqual([o.text, o.roles], ['you said: hi there', ['system', 'user']]),
  },
  {
    rec: { id: 'chat-role', task: 'chat', input: [{ role: 'wizard', content: 'x' }] },
    code: 'INVALID_INPUT',
    message: /role must be one of/,
  },
  { rec: { id: 'no-input', task: 'words' }, code: 'INVALID_REQUEST', message: /the record has no input/ },
];

/** Every result matches its case; no result carries media bytes back. */
function checkResults(recs: any[], text: string): void {
  assert.equal(recs.length, CASES.length);
  CASES.forEach((c, i) => {
    const r = recs[i];
    assert.equal(r.metadata.index, i);
    assert.equal(r.metadata.request_id, c.rec.id);
    assert.equal(r.task, c.rec.task);
    if (c.ok) {
      assert.equal(r.status, 'success', `${c.rec.id}: ${JSON.stringify(r.error)}`);
      c.ok(r.output);
    } else {
      assert.equal(r.status, 'error', `${c.rec.id} should fail`);
      assert.equal(r.error.code, c.code, `${c.rec.id}: ${r.error.message}`);
      assert.match(r.error.message, c.message!, c.rec.id);
    }
  });
  for (const bytes of [png, wav, badHeaderWav])
    assert.ok(!text.includes(bytes.toString('base64').slice(8, 60)), 'results never echo media bytes');
}

describe('jobs with typed records', () => {
  let h: Harness;
  before(async () => {
    h = await startGateway(['typed-node', 'revcomp']);
    assert.equal(h.gw.registry.status('typed-node'), 'ready', h.gw.registry.lastError('typed-node') ?? '');
  });
  after(async () => h.close());

  const done = (id: string) =>
    waitFor(async () => {
      const r = await h.get(`/v1/jobs/${id}`);
      return ['succeeded', 'failed', 'cancelled'].includes(r.body.data.status) ? r.body.data : null;
    }, 60_000);
  const results = async (id: string): Promise<{ recs: any[]; text: string }> => {
    const text = await (await fetch(`${h.url}/v1/jobs/${id}/results`)).text();
    return { recs: lines(text), text };
  };

  it('runs a JSONL upload of every input type; each bad record fails alone with its code', async () => {
    const body = CASES.map((c) => JSON.stringify(c.rec)).join('\n') + '\n';
    const r = await h.post('/v1/jobs?model=typed-node&chunk_size=4', body, { 'content-type': 'application/x-ndjson' });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    assert.equal(r.body.data.total, CASES.length);
    const job = await done(r.body.data.id);
    const failures = CASES.filter((c) => !c.ok).length;
    assert.deepEqual([job.status, job.successful, job.failed], ['succeeded', CASES.length - failures, failures]);
    const { recs, text } = await results(job.id);
    checkResults(recs, text);
    // The upload was streamed to the state dir's uploads, and is gone once stored.
    assert.deepEqual(
      readdirSync(join(h.stateDir, 'uploads')).filter((f) => f.endsWith('.upload')),
      [],
    );
    const csv = await fetch(`${h.url}/v1/jobs/${job.id}/results?format=csv`);
    const csvText = await csv.text();
    assert.match(csvText, /^index,request_id,task,status,service,version,processing_time_ms,error_code,error_message,/);
    assert.match(csvText, /\n12,image-truncated,look,error,typed-node,1\.0\.0,[\d.]+,UNSUPPORTED_MEDIA_TYPE,/);
  });

  it('takes the same records inline (sequences list) and as exchange objects with inputs', async () => {
    const inline = await h.post('/v1/jobs', { model: 'typed-node', sequences: CASES.map((c) => c.rec) });
    assert.equal(inline.status, 202, JSON.stringify(inline.body));
    const { recs, text } = await results((await done(inline.body.data.id)).id);
    checkResults(recs, text);

    const inputs = [
      { task: 'words', input: { inputs: ['a b', 'c d e', 7], parameters: { k: 1 } }, metadata: { request_id: 'w' } },
      {
        task: 'patient',
        input: { symptoms: ['失眠', '焦虑'] },
        parameters: { temperature: 0.8 },
        metadata: { request_id: 'p' },
      },
      {
        task: 'look',
        input: { input: { data: png.toString('base64'), format: 'png' } },
        metadata: { request_id: 'img' },
      },
      { task: 'add', input: { input: { a: [[1, 1]], b: [2, 2] } }, metadata: { request_id: 't' } },
    ];
    const x = await h.post('/v1/jobs', { model: 'typed-node', inputs });
    assert.equal(x.status, 202, JSON.stringify(x.body));
    const out = (await results((await done(x.body.data.id)).id)).recs;
    assert.deepEqual(
      out.map((r) => [r.metadata.request_id, r.task, r.status, r.error?.code ?? null]),
      [
        ['w#1', 'words', 'success', null],
        ['w#2', 'words', 'success', null],
        ['w#3', 'words', 'error', 'INVALID_INPUT'],
        ['p', 'patient', 'success', null],
        ['img', 'look', 'success', null],
        ['t', 'add', 'success', null],
      ],
    );
    assert.deepEqual(
      [out[1].output.words, out[3].output.symptoms, out[4].output.width, out[5].output.sums],
      [3, 2, 20, [6]],
    );
  });

  it('reads CSV and TSV with an input column as text; FASTA stays sequences', async () => {
    const csv = await h.post('/v1/jobs?model=typed-node&task=words', 'id,input\nr1,"hello, big world"\nr2,\nr3,one\n', {
      'content-type': 'text/csv',
    });
    assert.equal(csv.status, 202, JSON.stringify(csv.body));
    const c = (await results((await done(csv.body.data.id)).id)).recs;
    assert.deepEqual(
      c.map((r) => [r.metadata.request_id, r.status, r.output?.words ?? r.error.code]),
      [
        ['r1', 'success', 3],
        ['r2', 'error', 'INVALID_INPUT'],
        ['r3', 'success', 1],
      ],
    );
    const tsv = await h.post('/v1/jobs', {
      model: 'typed-node',
      task: 'words',
      format: 'tsv',
      data: 'input\tid\nbonjour tout le monde\tfr\n',
    });
    assert.equal((await results((await done(tsv.body.data.id)).id)).recs[0].output.words, 4);
    // Sequences are as they were: FASTA into a sequence model.
    const fasta = await h.post('/v1/jobs?model=revcomp', '>a\nACGG\n>b\nACGTXX\n', { 'content-type': 'text/x-fasta' });
    const f = (await results((await done(fasta.body.data.id)).id)).recs;
    assert.deepEqual([f[0].output.reverse_complement, f[1].error.code], ['CCGT', 'INVALID_SEQUENCE']);
  });

  it('runs a pipeline over typed records: one step’s text is the next step’s input', async () => {
    const pipeline = {
      name: 'chat-words',
      steps: [
        { name: 'reply', model: 'typed-node', task: 'chat' },
        { name: 'count', model: 'typed-node', task: 'words', input: 'reply.text' },
      ],
    };
    const r = await h.post('/v1/jobs', {
      pipeline,
      sequences: [
        { id: 'ok', input: CHAT },
        { id: 'bad', input: { messages: [] } },
        { id: 'seq', sequence: 'hello' },
      ],
    });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    const recs = (await results((await done(r.body.data.id)).id)).recs;
    assert.deepEqual(
      [recs[0].status, recs[0].output.reply.text, recs[0].output.count.words],
      ['success', 'you said: hi there', 4],
    );
    assert.deepEqual([recs[1].status, recs[1].error.step, recs[1].error.code], ['error', 'reply', 'INVALID_INPUT']);
    assert.deepEqual([recs[2].error.step, recs[2].error.code], ['reply', 'INVALID_REQUEST']);
    assert.match(recs[2].error.message, /takes chat input: give the record "input"/);
    // A step cannot name both.
    const both = await h.post('/v1/jobs', {
      pipeline: { steps: [{ model: 'typed-node', task: 'words', input: 'input.input', sequence: 'input.sequence' }] },
      sequences: ['x'],
    });
    assert.deepEqual([both.status, both.body.error.code], [400, 'INVALID_REQUEST']);
    assert.match(both.body.message, /give sequence or input, not both/);
  });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], cwd: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(PACKAGE_ROOT, 'bin', 'isomodel.js'), ...args], {
      cwd,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, ISOMODEL_URL: 'http://127.0.0.1:9' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('isomodel batch / pipeline run with typed records', () => {
  const modelsDir = makeModelsDir(['typed-node']);
  const work = workerTmpDir('isomodel-typed-cli-');
  const g = ['--models-dir', modelsDir, '--state-dir', join(work, 'state')];
  const input = join(work, 'typed.jsonl');
  writeFileSync(input, CASES.map((c) => JSON.stringify(c.rec)).join('\n') + '\n');
  after(() => {
    rmSync(modelsDir, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  });

  it('runs a JSONL file of every input type offline', async () => {
    const out = join(work, 'offline.jsonl');
    const r = await cli([...g, 'batch', input, '--model', 'typed-node', '--offline', '--output', out], work);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`${CASES.length} records → typed-node \\(offline`));
    const text = readFileSync(out, 'utf8');
    checkResults(lines(text), text);
  });

  it('turns a folder of images and recordings into one result file each', async () => {
    const dir = join(work, 'media-in');
    const outDir = join(work, 'media-out');
    mkdirSync(dir);
    writeFileSync(join(dir, 'red.png'), png);
    writeFileSync(join(dir, 'cut.png'), png.subarray(0, 60));
    writeFileSync(join(dir, 'tone.wav'), wav);
    const r = await cli(
      [
        ...g,
        'batch',
        '--input-dir',
        dir,
        '--output-dir',
        outDir,
        '--model',
        'typed-node',
        '--task',
        'look',
        '--offline',
        '-q',
      ],
      work,
    );
    assert.equal(r.code, 0, r.stderr);
    const red = JSON.parse(readFileSync(join(outDir, 'red.json'), 'utf8'));
    assert.deepEqual(
      [red.status, red.task, red.output.width, red.output.height, red.metadata.request_id],
      ['success', 'look', 20, 10, 'red'],
    );
    const cut = JSON.parse(readFileSync(join(outDir, 'cut.json'), 'utf8'));
    assert.deepEqual([cut.status, cut.error.code], ['error', 'UNSUPPORTED_MEDIA_TYPE']);
    // A recording sent to the image task: refused for what it is.
    const tone = JSON.parse(readFileSync(join(outDir, 'tone.json'), 'utf8'));
    assert.equal(tone.error.code, 'UNSUPPORTED_MEDIA_TYPE');
    assert.match(tone.error.message, /sent as audio\/wav|wav audio, not an image/);
  });

  describe('through a running gateway', () => {
    let h: Harness;
    before(async () => {
      h = await startGateway(['typed-node']);
    });
    after(async () => h.close());

    it('submits typed records as a job, each read back by the gateway as the CLI read it', async () => {
      const out = join(work, 'server.jsonl');
      const r = await cli([...g, 'batch', input, '--model', 'typed-node', '--url', h.url, '--output', out], work);
      assert.equal(r.code, 0, r.stderr);
      const text = readFileSync(out, 'utf8');
      checkResults(lines(text), text);
      // An input wrapped once more ({"input": {"input": value}}) is unwrapped once, as offline.
      const wrapperLike = join(work, 'wrapper-like.jsonl');
      writeFileSync(
        wrapperLike,
        JSON.stringify({ id: 'j', task: 'patient', input: { input: { symptoms: ['a'] } } }) + '\n',
      );
      const w = await cli([...g, 'batch', wrapperLike, '--model', 'typed-node', '--url', h.url, '-q'], work);
      assert.equal(w.code, 0, w.stderr);
      assert.equal(lines(w.stdout)[0].output.symptoms, 1);
    });

    it('runs a pipeline file over typed records', async () => {
      const file = join(work, 'chat-words.yaml');
      writeFileSync(
        file,
        'name: chat-words\nsteps:\n  - {name: reply, model: typed-node, task: chat}\n  - {name: count, model: typed-node, task: words, input: reply.text}\n',
      );
      const recs = join(work, 'chats.jsonl');
      writeFileSync(
        recs,
        [
          { id: 'a', input: CHAT },
          { id: 'b', input: [{ role: 'user', content: 'one two three' }] },
        ]
          .map((x) => JSON.stringify(x))
          .join('\n'),
      );
      const r = await cli([...g, 'pipeline', 'run', file, '--input', recs, '--url', h.url, '-q'], work);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(
        lines(r.stdout).map((x) => x.output.count.words),
        [4, 5],
      );
      const v = await cli([...g, 'pipeline', 'validate', file], work);
      assert.match(
        v.stdout,
        /1\. reply: typed-node\/chat on input\.input\n2\. count: typed-node\/words on reply\.text/,
      );
    });
  });
});
