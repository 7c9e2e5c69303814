// Typed inputs (issue 15) on the native API, through a real gateway and a real worker
// (test/fixtures/models/typed-node answers with what it received): text, JSON checked by its
// schema, OIP-style tensors, images and audio (base64 JSON, data: URLs, raw bodies, multipart),
// chat; and each type's bad input answered 4xx with a stable code. Sequences are unchanged
// (test/api.test.ts).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { inspectAudio, inspectImage, sniffFormat } from '../src/validation/inputs/media.js';
import { decodeBase64 } from '../src/validation/inputs/base64.js';
import { manifestSchema } from '../src/manifest/schema.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import { request, startGateway, type Harness } from './helpers.js';
import { makePng, makeWav } from './media.js';

const MEDIA = join(PACKAGE_ROOT, 'test', 'fixtures', 'media');
const JPEG = readFileSync(join(MEDIA, 'red-box.jpg'));
const GIF = readFileSync(join(MEDIA, 'red-box.gif'));

describe('media checks (unit)', () => {
  it('sniff formats from bytes and read sizes; refuse truncated or mislabelled files', () => {
    const png = makePng(7, 5);
    assert.deepEqual(inspectImage(png), { format: 'png', width: 7, height: 5 });
    assert.deepEqual(inspectImage(JPEG), { format: 'jpeg', width: 32, height: 24 });
    assert.deepEqual(inspectImage(GIF), { format: 'gif', width: 32, height: 24 });
    assert.throws(() => inspectImage(png.subarray(0, png.length - 13)), /truncated PNG/);
    assert.throws(() => inspectImage(png.subarray(0, 30)), /truncated PNG/);
    assert.throws(() => inspectImage(JPEG.subarray(0, JPEG.length - 40)), /truncated JPEG/);
    assert.throws(() => inspectImage(Buffer.from('hello world')), /not a PNG, JPEG/);
    const wav = makeWav(0.5);
    assert.deepEqual(inspectAudio(wav), {
      format: 'wav',
      sample_rate: 8000,
      channels: 1,
      bits_per_sample: 16,
      duration_s: 0.5,
    });
    const badHeader = Buffer.from(wav);
    badHeader.write('JUNK', 12, 'latin1'); // the fmt chunk renamed
    assert.throws(() => inspectAudio(badHeader), /data chunk before the fmt chunk/);
    badHeader.write('WAVX', 8, 'latin1');
    assert.throws(() => inspectAudio(badHeader), /not WAV, FLAC/);
    assert.throws(() => inspectAudio(wav.subarray(0, 100)), /truncated WAV/);
    assert.throws(() => inspectAudio(png), /a png image, not audio/);
    assert.equal(sniffFormat(Buffer.from('fLaC')), 'flac');
  });

  it('base64 is strict', () => {
    assert.deepEqual(decodeBase64('aGk=', 'x'), Buffer.from('hi'));
    assert.deepEqual(decodeBase64('aG k=\n', 'x'), Buffer.from('hi'));
    assert.deepEqual(decodeBase64('-_8', 'x'), Buffer.from([0xfb, 0xff]));
    assert.throws(() => decodeBase64('aGk', 'x'), /multiple of 4/);
    assert.throws(() => decodeBase64('aG*k', 'x'), /character "\*" at position 3/);
    assert.throws(() => decodeBase64('', 'x'), /empty/);
  });

  it('manifests: type fields belong to their type, json needs a valid schema, tensors need specs', () => {
    const base = { name: 'm', version: '1', runtime: 'node', entry: 'x.mjs' };
    const issues = (task: Record<string, unknown>): string => {
      const r = manifestSchema.safeParse({ ...base, tasks: [{ name: 't', ...task }] });
      return r.success ? '' : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    };
    assert.equal(issues({ sequence_types: ['DNA'] }), '');
    assert.match(issues({}), /sequence_types: required for input_type sequence/);
    assert.match(
      issues({ input_type: 'text', sequence_types: ['DNA'] }),
      /sequence_types applies to input_type sequence, not text/,
    );
    assert.match(issues({ input_type: 'json' }), /needs a JSON Schema/);
    assert.match(issues({ input_type: 'json', schema: { type: 'nonsense' } }), /not a valid JSON Schema/);
    assert.match(issues({ input_type: 'tensor' }), /needs its tensors/);
    assert.match(issues({ input_type: 'image', formats: ['tiff'] }), /tiff is not one of png, jpeg/);
    assert.match(issues({ input_type: 'audio', max_pixels: 10 }), /max_pixels applies to input_type image/);
    const ok = manifestSchema.parse({ ...base, tasks: [{ name: 't', input_type: 'image' }] });
    assert.deepEqual(
      [ok.tasks[0]!.formats, ok.tasks[0]!.max_bytes, ok.tasks[0]!.sequence_types],
      [['png', 'jpeg'], 5 * 1024 * 1024, []],
    );
    assert.deepEqual(
      manifestSchema
        .safeParse({ ...base, default_task: 'nope', tasks: [{ name: 't', input_type: 'text' }] })
        .error?.issues.map((i) => i.message),
      ['no task "nope"'],
    );
  });
});

describe('typed inputs on the native API', () => {
  let h: Harness;
  const predict = (task: string, body: Record<string, unknown>) =>
    h.post('/models/typed-node/predict', { task_type: task, ...body });
  const expectError = async (
    task: string,
    body: Record<string, unknown>,
    status: number,
    code: string,
    message?: RegExp,
  ) => {
    const r = await predict(task, body);
    assert.equal(r.status, status, `${task} ${JSON.stringify(body).slice(0, 120)} -> ${JSON.stringify(r.body)}`);
    assert.equal(r.body.success, false);
    assert.equal(r.body.error.code, code);
    if (message) assert.match(r.body.message, message);
    return r;
  };

  before(async () => {
    h = await startGateway(['typed-node', 'revcomp']);
    assert.equal(h.gw.registry.status('typed-node'), 'ready', h.gw.registry.lastError('typed-node') ?? '');
  });
  after(async () => h.close());

  it('text: input or sequence, the default task, batches; over-long, NUL and non-strings refused', async () => {
    const r = await h.post('/models/typed-node/predict', { input: 'hello big world' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(
      [r.body.data.words, r.body.data.upper, r.body.data.task_type, r.body.data.input_type, r.body.data.input_size],
      [3, 'HELLO BIG WORLD', 'words', 'text', 15],
    );
    // Seed 001 sends plain text as `sequence` too.
    assert.equal((await predict('words', { sequence: 'héllo 🧬' })).body.data.words, 2);
    const b = await h.post('/models/typed-node/predict/batch', { task_type: 'words', inputs: ['a b', 'c'] });
    assert.deepEqual(
      b.body.data.predictions.map((p: any) => [p.index, p.words, p.batch_size]),
      [
        [0, 2, 2],
        [1, 1, 2],
      ],
    );
    await expectError('words', { input: 'x'.repeat(201) }, 400, 'INPUT_TOO_LONG', /201 characters; the limit is 200/);
    assert.equal((await predict('words', { input: '🧬'.repeat(200) })).status, 200, '200 characters, 400 UTF-16 units');
    await expectError('words', { input: 'a\u0000b' }, 400, 'INVALID_INPUT', /NUL/);
    await expectError('words', { input: 42 }, 400, 'INVALID_INPUT', /must be a string/);
    await expectError('words', { input: '' }, 400, 'INVALID_INPUT', /empty/);
    const batchErr = await h.post('/models/typed-node/predict/batch', { task_type: 'words', inputs: ['ok', 7] });
    assert.deepEqual(
      [batchErr.status, batchErr.body.error.code, batchErr.body.error.details.index],
      [400, 'INVALID_INPUT', 1],
    );
  });

  it('json: validated against the task schema (seed 002 shape); failures name the path', async () => {
    const ok = await predict('patient', {
      input: { symptoms: ['头痛', '乏力', '食欲不振'], patient_info: { age: 35, gender: 'female' } },
    });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.deepEqual([ok.body.data.symptoms, ok.body.data.age], [3, 35]);
    await expectError(
      'patient',
      { input: { patient_info: { age: 35 } } },
      400,
      'INVALID_INPUT',
      /missing the required property "symptoms"/,
    );
    await expectError(
      'patient',
      { input: { symptoms: ['a'], patient_info: { age: -1 } } },
      400,
      'INVALID_INPUT',
      /\/patient_info\/age must be >= 0/,
    );
    await expectError(
      'patient',
      { input: { symptoms: ['a'], extra: 1 } },
      400,
      'INVALID_INPUT',
      /"extra", which the schema does not allow/,
    );
    await expectError(
      'patient',
      { input: { symptoms: ['a'], patient_info: { gender: 'x' } } },
      400,
      'INVALID_INPUT',
      /must be one of/,
    );
    await expectError(
      'patient',
      { input: { symptoms: ['x'.repeat(3000)] } },
      413,
      'PAYLOAD_TOO_LARGE',
      /the limit is 2048/,
    );
    await expectError('patient', { sequence: 'ACGT' }, 400, 'INVALID_REQUEST', /takes json input: send it as input/);
  });

  it('tensor: named tensors with datatypes and shapes, nested or flat data', async () => {
    const ok = await predict('add', {
      input: {
        a: [
          [1, 2],
          [3, 4],
          [5, 6],
        ],
        b: { datatype: 'INT32', shape: [2], data: [10, 20] },
      },
    });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.deepEqual(
      [ok.body.data.sums, ok.body.data.a_shape, ok.body.data.b_datatype],
      [[33, 37, 41], [3, 2], 'INT32'],
    );
    const flat = await predict('add', { input: { a: { shape: [1, 2], data: [1, 1] }, b: [0, 0] } });
    assert.deepEqual(flat.body.data.sums, [2]);
    await expectError(
      'add',
      { input: { a: [[1, 2, 3]], b: [0, 0] } },
      400,
      'INVALID_INPUT',
      /shape \[1, 3\].*needs \[-1, 2\]/,
    );
    await expectError(
      'add',
      { input: { a: [[1, 2]], b: [0.5, 0] } },
      400,
      'INVALID_INPUT',
      /INT32 tensor holds integers/,
    );
    await expectError('add', { input: { a: [[1, 2], [3]], b: [0, 0] } }, 400, 'INVALID_INPUT', /ragged/);
    await expectError('add', { input: { a: [[1, 2]] } }, 400, 'INVALID_INPUT', /missing the tensor "b"/);
    await expectError('add', { input: { a: [[1, 2]], b: [0, 0], c: [1] } }, 400, 'INVALID_INPUT', /unknown tensor "c"/);
    await expectError(
      'add',
      { input: { a: { shape: [2, 2], data: [1, 2, 3] }, b: [0, 0] } },
      400,
      'INVALID_INPUT',
      /holds 4 elements, data has 3/,
    );
    await expectError(
      'add',
      { input: { a: [[1, 2]], b: { datatype: 'FP64', data: [0, 0] } } },
      400,
      'INVALID_INPUT',
      /datatype is "FP64"/,
    );
  });

  it('image: base64, data: URL, {data, format}, raw body and multipart all arrive the same', async () => {
    const png = makePng(20, 10, (x) => [x * 10, 0, 0]);
    const want = {
      format: 'png',
      media_type: 'image/png',
      width: 20,
      height: 10,
      bytes: png.length,
      decoded_bytes: png.length,
      first_byte: 0x89,
    };
    const check = (r: any) => {
      assert.equal(r.status, 200, JSON.stringify(r.body));
      for (const [k, v] of Object.entries(want)) assert.equal(r.body.data[k], v, k);
    };
    check(await predict('look', { input: png.toString('base64') }));
    check(await predict('look', { input: `data:image/png;base64,${png.toString('base64')}` }));
    check(await predict('look', { input: { data: png.toString('base64'), format: 'png' } }));
    check(await predict('look', { input: { data: png.toString('base64url') } }));
    const raw = await fetch(`${h.url}/models/typed-node/predict?task_type=look`, {
      method: 'POST',
      headers: { 'content-type': 'image/png' },
      body: png,
    });
    check({ status: raw.status, body: await raw.json() });
    const form = new FormData();
    form.set('task_type', 'look');
    form.set('file', new Blob([png], { type: 'image/png' }), 'x.png');
    const mp = await fetch(`${h.url}/models/typed-node/predict`, { method: 'POST', body: form });
    check({ status: mp.status, body: await mp.json() });
    // A batch of files: JPEG and GIF, as multipart.
    const many = new FormData();
    many.set('task_type', 'look');
    many.append('file', new Blob([JPEG], { type: 'image/jpeg' }), 'a.jpg');
    many.append('file', new Blob([GIF], { type: 'image/gif' }), 'b.gif');
    const mb = await fetch(`${h.url}/models/typed-node/predict/batch`, { method: 'POST', body: many });
    const mbBody: any = await mb.json();
    assert.equal(mb.status, 200, JSON.stringify(mbBody));
    assert.deepEqual(
      mbBody.data.predictions.map((p: any) => [p.index, p.format, p.width, p.height]),
      [
        [0, 'jpeg', 32, 24],
        [1, 'gif', 32, 24],
      ],
    );
    assert.ok(!JSON.stringify(mbBody).includes(JPEG.toString('base64').slice(0, 40)), 'the image is not echoed back');
  });

  it('image: broken base64, truncated PNG, wrong format, a mislabelled file, over size or pixels', async () => {
    const png = makePng(20, 10);
    await expectError('look', { input: 'not base64!' }, 400, 'INVALID_INPUT', /not valid base64/);
    await expectError(
      'look',
      { input: png.subarray(0, png.length - 20).toString('base64') },
      415,
      'UNSUPPORTED_MEDIA_TYPE',
      /truncated PNG/,
    );
    await expectError(
      'look',
      { input: Buffer.from('GIF87a').toString('base64') },
      415,
      'UNSUPPORTED_MEDIA_TYPE',
      /truncated GIF|GIF/,
    );
    await expectError(
      'look',
      { input: makeWav(0.1).toString('base64') },
      415,
      'UNSUPPORTED_MEDIA_TYPE',
      /wav audio, not an image/,
    );
    await expectError(
      'look',
      { input: { data: JPEG.toString('base64'), format: 'png' } },
      415,
      'UNSUPPORTED_MEDIA_TYPE',
      /sent as image\/png, but the bytes are jpeg/,
    );
    await expectError(
      'look',
      { input: `data:image/webp;base64,${png.toString('base64')}` },
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    );
    await expectError(
      'look',
      { input: makePng(1001, 1000).toString('base64') },
      413,
      'PAYLOAD_TOO_LARGE',
      /pixels; the limit is 1000000/,
    );
    await expectError(
      'look',
      { input: Buffer.alloc(150_000, 1).toString('base64') },
      413,
      'PAYLOAD_TOO_LARGE',
      /the limit is 100000/,
    );
    // A raw body says it is a PNG and is not.
    const raw = await fetch(`${h.url}/models/typed-node/predict?task_type=look`, {
      method: 'POST',
      headers: { 'content-type': 'image/png' },
      body: JPEG,
    });
    const rawBody: any = await raw.json();
    assert.deepEqual([raw.status, rawBody.error.code], [415, 'UNSUPPORTED_MEDIA_TYPE']);
    // Two files to a single prediction.
    const two = new FormData();
    two.set('task_type', 'look');
    two.append('file', new Blob([png], { type: 'image/png' }));
    two.append('file', new Blob([png], { type: 'image/png' }));
    const t = await fetch(`${h.url}/models/typed-node/predict`, { method: 'POST', body: two });
    assert.deepEqual([t.status, ((await t.json()) as any).error.code], [400, 'INVALID_REQUEST']);
    // An image to a sequence model is just an invalid sequence.
    assert.equal(
      (await h.post('/models/revcomp/predict', { input: png.toString('base64') })).body.error.code,
      'INVALID_SEQUENCE',
    );
  });

  it('audio: WAV with its facts; a wrong header, truncation and over-long audio refused', async () => {
    const wav = makeWav(1.5);
    const ok = await predict('listen', { input: wav.toString('base64') });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.deepEqual(
      [
        ok.body.data.format,
        ok.body.data.sample_rate,
        ok.body.data.channels,
        ok.body.data.duration_s,
        ok.body.data.decoded_bytes,
      ],
      ['wav', 8000, 1, 1.5, wav.length],
    );
    const raw = await fetch(`${h.url}/models/typed-node/predict?task_type=listen`, {
      method: 'POST',
      headers: { 'content-type': 'audio/wav' },
      body: wav,
    });
    assert.equal(((await raw.json()) as any).data.duration_s, 1.5);
    const badHeader = Buffer.from(wav);
    badHeader.write('JUNK', 12, 'latin1');
    await expectError(
      'listen',
      { input: badHeader.toString('base64') },
      415,
      'UNSUPPORTED_MEDIA_TYPE',
      /before the fmt chunk/,
    );
    await expectError(
      'listen',
      { input: wav.subarray(0, 2000).toString('base64') },
      415,
      'UNSUPPORTED_MEDIA_TYPE',
      /truncated WAV/,
    );
    await expectError(
      'listen',
      { input: makeWav(6).toString('base64') },
      413,
      'PAYLOAD_TOO_LARGE',
      /lasts 6\.0 s; the limit is 5 s/,
    );
    await expectError(
      'listen',
      { input: makePng(2, 2).toString('base64') },
      415,
      'UNSUPPORTED_MEDIA_TYPE',
      /png image, not audio/,
    );
  });

  it('chat: OpenAI-style messages, streamed over SSE; malformed conversations refused', async () => {
    const ok = await predict('chat', {
      input: {
        messages: [
          { role: 'system', content: 'be brief' },
          { role: 'user', content: [{ type: 'text', text: 'hi there' }] },
        ],
      },
    });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.deepEqual(
      [ok.body.data.text, ok.body.data.messages, ok.body.data.roles],
      ['you said: hi there', 2, ['system', 'user']],
    );
    const sse = await fetch(`${h.url}/models/typed-node/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify({ task_type: 'chat', input: [{ role: 'user', content: 'a b c' }] }),
    });
    const text = await sse.text();
    const chunks = [...text.matchAll(/event: chunk\ndata: (.*)\n/g)].map((m) => JSON.parse(m[1]!).data.text);
    assert.deepEqual(chunks, ['you', ' said:', ' a', ' b', ' c']);
    await expectError('chat', { input: { messages: [] } }, 400, 'INVALID_INPUT', /no message/);
    await expectError(
      'chat',
      { input: [{ role: 'wizard', content: 'x' }] },
      400,
      'INVALID_INPUT',
      /role must be one of/,
    );
    await expectError(
      'chat',
      { input: [{ role: 'user', content: [{ type: 'image_url', image_url: 'x' }] }] },
      400,
      'INVALID_INPUT',
      /only text parts/,
    );
    await expectError(
      'chat',
      { input: Array(11).fill({ role: 'user', content: 'x' }) },
      400,
      'INPUT_TOO_LONG',
      /11 messages; the limit is 10/,
    );
    await expectError(
      'chat',
      { input: [{ role: 'user', content: 'x'.repeat(501) }] },
      400,
      'INPUT_TOO_LONG',
      /more than 500 characters/,
    );
  });

  it('the request log and metrics count typed predictions like sequences', async () => {
    h.gw.store.flush();
    const rows = h.gw.store.recentRequests(500, 'typed-node');
    assert.ok(rows.some((r) => r.task === 'look' && r.status === 'success'));
    assert.ok(rows.some((r) => r.task === 'patient' && r.status === 'error' && r.error_code === 'INVALID_INPUT'));
    const metrics = await request<string>(`${h.url}/metrics/prometheus`, 'GET');
    assert.match(
      String(metrics.body),
      /isomodel_requests_total\{model="typed-node",version="1\.0\.0",task="add",status="success",code="OK"\} \d+/,
    );
  });
});
