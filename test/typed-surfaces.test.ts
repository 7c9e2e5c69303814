// Typed inputs (issue 15) on every surface but the native API (test/inputs.test.ts): Open
// Inference Protocol v2, the OpenAI-compatible routes (through the official `openai` client), MCP
// (through the SDK's own Client over Streamable HTTP) and the Agent API. One real gateway with
// test/fixtures/models/typed-node (one task per input type; it answers with what it received),
// text-node (text generation, text embeddings, a text classifier, a chat task) and revcomp, plus
// classifiers written by the test that share a task name across input types and limits. For
// each surface and each type it carries: a good request, and the bad inputs (broken base64, a
// truncated PNG, a WAV with a wrong header, JSON failing its schema, an image over the limit)
// answered 4xx with a stable code in that surface's own error shape.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import OpenAI, { APIError } from 'openai';
import { PACKAGE_ROOT } from '../src/paths.js';
import { startGateway, type Harness, type Res } from './helpers.js';
import { makePng, makeWav } from './media.js';

const JPEG = readFileSync(join(PACKAGE_ROOT, 'test', 'fixtures', 'media', 'red-box.jpg'));
const PNG = makePng(20, 10, (x) => [x * 10, 0, 0]);
const TRUNCATED_PNG = PNG.subarray(0, PNG.length - 20);
const WAV = makeWav(1.5);
const BAD_HEADER_WAV = ((): Buffer => {
  const b = Buffer.from(WAV);
  b.write('JUNK', 12, 'latin1'); // the fmt chunk renamed
  return b;
})();
const BIG_PNG = makePng(1001, 1000); // over typed-node look's max_pixels (1,000,000)
const MAX_BATCH = 8;

/** The classifiers the Agent API tests choose among: one task name, several input types and limits. */
function writeClassifier(modelsDir: string, name: string, task: string): void {
  const dir = join(modelsDir, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, 'model.yaml'),
    `name: ${name}\nversion: 1.0.0\ndescription: test classifier ${name}\nruntime: node\nentry: index.mjs\ntasks:\n${task}`,
  );
  writeFileSync(
    join(dir, 'index.mjs'),
    `export function predict(batch) {\n  return batch.map((i) => ({ model: ${JSON.stringify(name)}, got: i.sequence ?? i.input }));\n}\n`,
  );
}

let h: Harness;

before(async () => {
  h = await startGateway(['typed-node', 'text-node', 'revcomp'], { max_batch_sequences: MAX_BATCH });
  writeClassifier(h.modelsDir, 'agent-text-short', '  - name: classify\n    input_type: text\n    max_length: 20\n');
  writeClassifier(h.modelsDir, 'agent-text-long', '  - name: classify\n    input_type: text\n    max_length: 200\n');
  writeClassifier(
    h.modelsDir,
    'agent-dna-short',
    '  - name: classify\n    sequence_types: [DNA]\n    max_length: 10\n',
  );
  writeClassifier(
    h.modelsDir,
    'agent-dna-long',
    '  - name: classify\n    sequence_types: [DNA]\n    max_length: 100\n',
  );
  writeClassifier(
    h.modelsDir,
    'agent-protein',
    '  - name: classify\n    sequence_types: [protein]\n    max_length: 100\n',
  );
  const r = await h.post('/v1/models/reload', {});
  assert.equal(r.status, 200, JSON.stringify(r.body));
  for (const n of h.gw.registry.names())
    assert.equal(h.gw.registry.status(n), 'ready', `${n}: ${h.gw.registry.lastError(n) ?? ''}`);
});
after(async () => h?.close());

// ---------------------------------------------------------------------------------------------

describe('Open Inference Protocol v2: typed inputs', () => {
  const infer = (body: Record<string, unknown>, model = 'typed-node') => h.post(`/v2/models/${model}/infer`, body);
  const bytes = (name: string, data: unknown[], contentType?: string) => ({
    name,
    datatype: 'BYTES',
    shape: [data.length],
    data,
    ...(contentType && { parameters: { content_type: contentType } }),
  });
  const task = (task_type: string, ...inputs: unknown[]) => ({ inputs, parameters: { task_type } });
  const out = (r: Res<any>, name: string) => {
    const t = r.body.outputs.find((o: any) => o.name === name);
    assert.ok(t, `output ${name} in ${JSON.stringify(r.body).slice(0, 400)}`);
    return t;
  };
  /** The protocol's error: {error} only, its text starting with the stable code. */
  const expectError = async (
    body: Record<string, unknown>,
    status: number,
    code: string,
    message?: RegExp,
    model = 'typed-node',
  ) => {
    const r = await infer(body, model);
    assert.equal(r.status, status, JSON.stringify(r.body).slice(0, 400));
    assert.deepEqual(Object.keys(r.body), ['error']);
    assert.equal(typeof r.body.error, 'string');
    assert.ok(r.body.error.startsWith(`${code}: `), r.body.error);
    if (message) assert.match(r.body.error, message);
  };

  it("lists each task's real inputs in the model metadata", async () => {
    const r = await h.get('/v2/models/typed-node');
    assert.equal(r.status, 200);
    const byName = Object.fromEntries(r.body.inputs.map((i: any) => [i.name, i]));
    assert.deepEqual(Object.keys(byName).sort(), ['a', 'audio', 'b', 'image', 'json', 'messages', 'text']);
    assert.deepEqual(byName.text, {
      name: 'text',
      datatype: 'BYTES',
      shape: [-1],
      parameters: { content_type: 'str', task_types: ['words'] },
    });
    assert.deepEqual(byName.json.parameters, { content_type: 'json', task_types: ['patient'] });
    assert.deepEqual(byName.a, {
      name: 'a',
      datatype: 'FP32',
      shape: [-1, -1, 2],
      parameters: { task_types: ['add'] },
    });
    assert.deepEqual(byName.b, { name: 'b', datatype: 'INT32', shape: [-1, 2], parameters: { task_types: ['add'] } });
    assert.deepEqual(byName.image.parameters, {
      content_type: 'base64',
      formats: ['png', 'jpeg', 'gif'],
      task_types: ['look'],
    });
    assert.deepEqual(byName.audio.parameters, { content_type: 'base64', formats: ['wav'], task_types: ['listen'] });
    assert.deepEqual(byName.messages.parameters, { content_type: 'json', task_types: ['chat'] });
    assert.equal(r.body.parameters.input_types.add, 'tensor');
    // A sequence model still shows its one input, as before.
    assert.deepEqual((await h.get('/v2/models/revcomp')).body.inputs, [
      { name: 'sequences', datatype: 'BYTES', shape: [-1] },
    ]);
  });

  it('text: a BYTES tensor of strings; over-long, NUL and the wrong content_type refused', async () => {
    const r = await infer(task('words', bytes('text', ['hello big world', 'one'])));
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(out(r, 'words'), { name: 'words', datatype: 'FP64', shape: [2], data: [3, 1] });
    assert.deepEqual(out(r, 'upper').data, ['HELLO BIG WORLD', 'ONE']);
    // The default task is words (default_task): no parameters needed.
    assert.equal((await infer({ inputs: [bytes('text', ['a b'], 'str')] })).body.parameters.task_type, 'words');
    await expectError(
      task('words', bytes('text', ['ok', 'x'.repeat(201)])),
      400,
      'INPUT_TOO_LONG',
      /text\[1\] has 201 characters; the limit is 200/,
    );
    await expectError(task('words', bytes('text', ['a\u0000b'])), 400, 'INVALID_INPUT', /NUL/);
    await expectError(task('words', bytes('text', [5])), 400, 'INVALID_INPUT', /must be a string/);
    await expectError(task('words', bytes('text', ['x'], 'json')), 400, 'INVALID_INPUT', /content_type "json".*"str"/);
    await expectError(
      task('words', { name: 'text', datatype: 'FP32', shape: [1], data: [1] }),
      400,
      'INVALID_REQUEST',
      /datatype BYTES/,
    );
  });

  it('json: BYTES elements of JSON text, checked against the task schema', async () => {
    const good = { symptoms: ['头痛', '乏力'], patient_info: { age: 35 } };
    const r = await infer(
      task('patient', bytes('json', [JSON.stringify(good), JSON.stringify({ symptoms: ['x'] })], 'json')),
    );
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(out(r, 'symptoms').data, [2, 1]);
    assert.deepEqual(out(r, 'age').data, ['35', 'null'], 'a number beside null travels as JSON text');
    await expectError(
      task('patient', bytes('json', [JSON.stringify({ patient_info: { age: 3 } })], 'json')),
      400,
      'INVALID_INPUT',
      /json\[0\] does not match the task's JSON Schema: .*missing the required property "symptoms"/,
    );
    await expectError(
      task('patient', bytes('json', [JSON.stringify({ symptoms: ['a'], patient_info: { age: -1 } })])),
      400,
      'INVALID_INPUT',
      /\/patient_info\/age must be >= 0/,
    );
    await expectError(
      task('patient', bytes('json', ['{"symptoms": ['], 'json')),
      400,
      'INVALID_INPUT',
      /json\[0\] is not JSON text/,
    );
    await expectError(
      task('patient', bytes('json', [JSON.stringify({ symptoms: ['x'.repeat(3000)] })], 'json')),
      413,
      'PAYLOAD_TOO_LARGE',
      /the limit is 2048/,
    );
    await expectError(task('patient', bytes('json', ['{}'], 'str')), 400, 'INVALID_INPUT', /content_type "str"/);
  });

  it('tensor: the declared named tensors with the batch dimension first; shapes, datatypes and batches checked', async () => {
    // Two items: a is [n, rows, 2] (rows any size, here 2), b is [n, 2].
    const a = { name: 'a', datatype: 'FP32', shape: [2, 2, 2], data: [1, 2, 3, 4, 5, 6, 7, 8] };
    const b = {
      name: 'b',
      datatype: 'INT32',
      shape: [2, 2],
      data: [
        [10, 20],
        [0, 1],
      ],
    };
    const r = await infer(task('add', a, b));
    assert.equal(r.status, 200, JSON.stringify(r.body));
    // Item 0: rows (1,2) and (3,4) plus 10+20; item 1: rows (5,6) and (7,8) plus 0+1.
    assert.deepEqual(out(r, 'sums'), { name: 'sums', datatype: 'FP32', shape: [2, 2], data: [33, 37, 12, 16] });
    assert.deepEqual(out(r, 'a_shape').data, [2, 2, 2, 2]);
    assert.deepEqual(out(r, 'b_datatype').data, ['INT32', 'INT32']);
    await expectError(
      task('add', { ...a, shape: [4, 2], data: [1, 2, 3, 4, 5, 6, 7, 8] }, b),
      400,
      'INVALID_INPUT',
      /input "a" has shape \[4, 2\]; task add takes \[n, -1, 2\] \(the first dimension is the batch/,
    );
    await expectError(
      task('add', a, { ...b, shape: [1, 2], data: [1, 2] }),
      400,
      'INVALID_INPUT',
      /disagree on the batch size.*"a" has 2, "b" has 1/,
    );
    await expectError(
      task('add', a, { ...b, datatype: 'FP64' }),
      400,
      'INVALID_INPUT',
      /batch\[0\]\.b\.datatype is "FP64"; this task's tensor "b" is INT32/,
    );
    await expectError(
      task('add', a, { ...b, data: [10, 20, 0.5, 1] }),
      400,
      'INVALID_INPUT',
      /batch\[1\]\.b element 0 is 0\.5; a INT32 tensor holds integers/,
    );
    await expectError(task('add', a), 400, 'INVALID_INPUT', /missing the tensor "b"/);
    await expectError(
      task('add', a, b, { name: 'c', datatype: 'FP32', shape: [2, 1], data: [1, 2] }),
      400,
      'INVALID_INPUT',
      /unexpected input "c": task add takes the tensors a, b/,
    );
    await expectError(
      task('add', { ...a, data: [1, 2, 3] }, b),
      400,
      'INVALID_INPUT',
      /holds 8 elements but data has 3/,
    );
    await expectError(
      task(
        'add',
        { ...a, shape: [MAX_BATCH + 1, 1, 2], data: Array(2 * (MAX_BATCH + 1)).fill(0) },
        { ...b, shape: [MAX_BATCH + 1, 2], data: Array(2 * (MAX_BATCH + 1)).fill(0) },
      ),
      400,
      'INVALID_REQUEST',
      /at most 8 items per request/,
    );
  });

  it('image: BYTES of base64 (content_type base64 or the media type); broken base64, a truncated PNG, a mislabelled file and one over the limit refused', async () => {
    const r = await infer(task('look', bytes('image', [PNG.toString('base64'), JPEG.toString('base64')], 'base64')));
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(out(r, 'format').data, ['png', 'jpeg']);
    assert.deepEqual(out(r, 'width').data, [20, 32]);
    assert.deepEqual(out(r, 'decoded_bytes').data, [PNG.length, JPEG.length]);
    const typed = await infer(task('look', bytes('image', [PNG.toString('base64')], 'image/png')));
    assert.deepEqual(out(typed, 'height').data, [10]);
    const dataUrl = await infer(task('look', bytes('image', [`data:image/jpeg;base64,${JPEG.toString('base64')}`])));
    assert.deepEqual(out(dataUrl, 'format').data, ['jpeg']);
    await expectError(
      task('look', bytes('image', ['not base64!'], 'base64')),
      400,
      'INVALID_INPUT',
      /image\[0\] is not valid base64/,
    );
    await expectError(
      task('look', bytes('image', [TRUNCATED_PNG.toString('base64')], 'base64')),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
      /truncated PNG/,
    );
    await expectError(
      task('look', bytes('image', [JPEG.toString('base64')], 'image/png')),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
      /sent as image\/png, but the bytes are jpeg/,
    );
    await expectError(
      task('look', bytes('image', [BIG_PNG.toString('base64')], 'base64')),
      413,
      'PAYLOAD_TOO_LARGE',
      /pixels; the limit is 1000000/,
    );
    await expectError(
      task('look', bytes('image', [Buffer.alloc(150_000, 1).toString('base64')])),
      413,
      'PAYLOAD_TOO_LARGE',
      /the limit is 100000/,
    );
    await expectError(task('look', bytes('image', ['aGk='], 'str')), 400, 'INVALID_INPUT', /"base64" or a media type/);
  });

  it('audio: WAV as base64; a wrong header and over-long audio refused', async () => {
    const r = await infer(task('listen', bytes('audio', [WAV.toString('base64')], 'audio/wav')));
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual([out(r, 'duration_s').data, out(r, 'sample_rate').data], [[1.5], [8000]]);
    await expectError(
      task('listen', bytes('audio', [BAD_HEADER_WAV.toString('base64')], 'base64')),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
      /before the fmt chunk/,
    );
    await expectError(
      task('listen', bytes('audio', [makeWav(6).toString('base64')], 'base64')),
      413,
      'PAYLOAD_TOO_LARGE',
      /lasts 6\.0 s/,
    );
    await expectError(
      task('listen', bytes('audio', [PNG.toString('base64')], 'base64')),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
      /png image, not audio/,
    );
  });

  it('chat: BYTES elements of JSON conversations', async () => {
    const conv = {
      messages: [
        { role: 'system', content: 'be brief' },
        { role: 'user', content: 'hi there' },
      ],
    };
    const r = await infer(
      task('chat', bytes('messages', [JSON.stringify(conv), JSON.stringify([{ role: 'user', content: 'x' }])], 'json')),
    );
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(out(r, 'text').data, ['you said: hi there', 'you said: x']);
    await expectError(
      task('chat', bytes('messages', [JSON.stringify([{ role: 'wizard', content: 'x' }])], 'json')),
      400,
      'INVALID_INPUT',
      /role must be one of/,
    );
    await expectError(
      task('chat', bytes('messages', [JSON.stringify(Array(11).fill({ role: 'user', content: 'x' }))], 'json')),
      400,
      'INPUT_TOO_LONG',
      /11 messages/,
    );
  });

  it('sequences are answered as before; errors carry their code too', async () => {
    const r = await infer({ inputs: [bytes('sequences', ['ACGT'])] }, 'revcomp');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(out(r, 'reverse_complement').data, ['ACGT']);
    await expectError(
      { inputs: [bytes('sequences', ['ACXT'])] },
      400,
      'INVALID_SEQUENCE',
      /character 'X' at position 3/,
      'revcomp',
    );
    await expectError(
      { inputs: [bytes('sequences', ['A'.repeat(5121)])] },
      400,
      'SEQUENCE_TOO_LONG',
      undefined,
      'revcomp',
    );
    await expectError({ inputs: [bytes('sequences', ['ACGT'])] }, 404, 'MODEL_NOT_FOUND', /nope/, 'nope');
  });
});

// ---------------------------------------------------------------------------------------------

describe('OpenAI-compatible API: chat, text and completions', () => {
  let client: OpenAI;
  before(() => {
    client = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: 'not-checked', maxRetries: 0 });
  });
  const apiError = async (p: Promise<unknown>): Promise<APIError> => {
    try {
      await p;
    } catch (e) {
      assert.ok(e instanceof APIError, `expected an APIError, got ${String(e)}`);
      return e;
    }
    assert.fail('expected the call to fail');
  };
  const expectApiError = async (
    p: Promise<unknown>,
    status: number,
    code: string,
    param?: string | null,
    message?: RegExp,
  ): Promise<APIError> => {
    const e = await apiError(p);
    assert.equal(e.status, status, e.message);
    assert.equal(e.code, code, e.message);
    assert.equal(e.type, status >= 500 ? 'server_error' : 'invalid_request_error');
    if (param !== undefined) assert.equal(e.param, param);
    if (message) assert.match(e.message, message);
    return e;
  };

  it('chat completions pass a chat task the whole conversation; sampling parameters become options', async () => {
    const messages = [
      { role: 'system' as const, content: 'be brief' },
      { role: 'user' as const, content: 'hello' },
      { role: 'assistant' as const, content: 'hi' },
      { role: 'user' as const, content: [{ type: 'text' as const, text: 'how are you' }] },
    ];
    // text-node's default task is complete (text): the chat route picks its chat task, which
    // answers "<n> messages; last: <text>" cut at max_tokens words and before a stop word.
    const res = await client.chat.completions.create({ model: 'text-node', messages, temperature: 0.5 });
    assert.equal(res.choices[0]!.message.content, '4 messages; last: how are you');
    assert.equal(res.choices[0]!.finish_reason, 'stop');
    const chars = 'be brief'.length + 'hello'.length + 'hi'.length + 'how are you'.length;
    const content = res.choices[0]!.message.content!;
    assert.deepEqual(res.usage, {
      prompt_tokens: chars,
      completion_tokens: content.length,
      total_tokens: chars + content.length,
    });
    // max_tokens, stop (a string or a list) reach the model as options; the model's finish_reason comes back.
    const cut = await client.chat.completions.create({ model: 'text-node', messages, max_tokens: 2 });
    assert.deepEqual([cut.choices[0]!.message.content, cut.choices[0]!.finish_reason], ['4 messages;', 'length']);
    const stopped = await client.chat.completions.create({ model: 'text-node:chat', messages, stop: 'last:' });
    assert.deepEqual([stopped.choices[0]!.message.content, stopped.choices[0]!.finish_reason], ['4 messages;', 'stop']);
    // max_completion_tokens is read as max_tokens; the native `options` win over both.
    const newer = await client.chat.completions.create({ model: 'text-node', messages, max_completion_tokens: 3 });
    assert.equal(newer.choices[0]!.message.content, '4 messages; last:');
    const native = await h.post('/v1/chat/completions', {
      model: 'text-node',
      messages,
      max_tokens: 3,
      options: { max_tokens: 1 },
    });
    assert.equal(native.body.choices[0].message.content, '4');
  });

  it('chat completions stream a chat task: the deltas are the worker stream chunks', async () => {
    const stream = await client.chat.completions.create({
      model: 'typed-node:chat',
      messages: [{ role: 'user', content: 'a b c' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const deltas: string[] = [];
    let usage: unknown = null;
    let finish: string | null = null;
    for await (const c of stream) {
      if (c.usage) usage = c.usage;
      const ch = c.choices[0];
      if (ch?.delta.content) deltas.push(ch.delta.content);
      if (ch?.finish_reason) finish = ch.finish_reason;
    }
    assert.deepEqual(deltas, ['you', ' said:', ' a', ' b', ' c']);
    assert.equal(finish, 'stop');
    assert.deepEqual(usage, {
      prompt_tokens: 5,
      completion_tokens: 'you said: a b c'.length,
      total_tokens: 5 + 'you said: a b c'.length,
    });
  });

  it('chat completions take a text task the last user message; other input types are refused', async () => {
    const r = await client.chat.completions.create({
      model: 'text-node:question',
      messages: [
        { role: 'system', content: 'ignored' },
        { role: 'user', content: 'is it?' },
      ],
    });
    assert.deepEqual(JSON.parse(r.choices[0]!.message.content!), { label: 'question' });
    await expectApiError(
      client.chat.completions.create({ model: 'typed-node:look', messages: [{ role: 'user', content: 'x' }] }),
      400,
      'invalid_request',
      'model',
      /takes chat or text or sequence input; task look takes image/,
    );
  });

  it('chat completions: malformed conversations answer 4xx with the input codes', async () => {
    await expectApiError(
      client.chat.completions.create({
        model: 'typed-node:chat',
        messages: Array(11).fill({ role: 'user', content: 'x' }),
      }),
      400,
      'input_too_long',
      'messages',
      /11 messages; the limit is 10/,
    );
    await expectApiError(
      client.chat.completions.create({
        model: 'typed-node:chat',
        messages: [{ role: 'user', content: 'x'.repeat(501) }],
        stream: true,
      }),
      400,
      'input_too_long',
      'messages',
    );
    await expectApiError(
      client.chat.completions.create({
        model: 'typed-node:chat',
        messages: [
          {
            role: 'user',
            content: [{ type: 'image_url', image_url: { url: `data:image/png;base64,${PNG.toString('base64')}` } }],
          },
        ],
      }),
      400,
      'invalid_input',
      'messages',
      /only text parts/,
    );
    const wizard = await h.post('/v1/chat/completions', {
      model: 'typed-node:chat',
      messages: [{ role: 'wizard', content: 'x' }],
    });
    assert.deepEqual(
      [wizard.status, wizard.body.error.code, wizard.body.error.param],
      [400, 'invalid_input', 'messages'],
    );
    await expectApiError(
      client.chat.completions.create({
        model: 'text-node:chat',
        messages: [{ role: 'user', content: 'x' }],
        temperature: 5,
      }),
      400,
      'invalid_request',
      'temperature',
    );
  });

  it('completions generate text for a prompt or a list of prompts, with max_tokens and stop', async () => {
    const one = await client.completions.create({ model: 'text-node', prompt: 'hello big world' });
    assert.equal(one.object, 'text_completion');
    assert.equal(one.model, 'text-node');
    assert.match(one.id, /^cmpl-/);
    assert.deepEqual(one.choices, [{ text: 'WORLD BIG HELLO', index: 0, logprobs: null, finish_reason: 'stop' }]);
    assert.deepEqual(one.usage, { prompt_tokens: 15, completion_tokens: 15, total_tokens: 30 });
    const many = await client.completions.create({
      model: 'text-node:complete',
      prompt: ['a b c', 'dé f'],
      max_tokens: 2,
    });
    assert.deepEqual(
      many.choices.map((c) => [c.index, c.text, c.finish_reason]),
      [
        [0, 'C B', 'length'],
        [1, 'F DÉ', 'stop'],
      ],
    );
    const stopped = await client.completions.create({ model: 'text-node', prompt: 'one two three', stop: ['TWO'] });
    assert.equal(stopped.choices[0]!.text, 'THREE');
  });

  it('completions stream: text_completion chunks per prompt (choice index), usage, [DONE]', async () => {
    const stream = await client.completions.create({
      model: 'text-node',
      prompt: ['a b', 'c d e'],
      stream: true,
      stream_options: { include_usage: true },
    });
    const texts = ['', ''];
    const finish: (string | null)[] = [null, null];
    let usage: any = null;
    let chunks = 0;
    for await (const c of stream) {
      assert.equal(c.object, 'text_completion');
      if (c.usage) usage = c.usage;
      for (const ch of c.choices) {
        chunks++;
        texts[ch.index] += ch.text;
        if (ch.finish_reason) finish[ch.index] = ch.finish_reason;
      }
    }
    assert.deepEqual(texts, ['B A', 'E D C']);
    assert.deepEqual(finish, ['stop', 'stop']);
    assert.equal(chunks, 2 + 3 + 2, 'one chunk per word, then one finish chunk per prompt');
    assert.deepEqual(usage, { prompt_tokens: 3 + 5, completion_tokens: 3 + 5, total_tokens: 16 });
    // On the wire: data lines, ending with [DONE].
    const res = await fetch(`${h.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'text-node', prompt: 'x y', stream: true }),
    });
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    assert.ok((await res.text()).endsWith('data: [DONE]\n\n'));
  });

  it('completions: bad prompts and models that do not generate text answer 4xx', async () => {
    await expectApiError(
      client.completions.create({ model: 'text-node', prompt: 'x '.repeat(60) }),
      400,
      'input_too_long',
      'prompt',
      /prompt has 120 characters; the limit is 100/,
    );
    const listed = await expectApiError(
      client.completions.create({ model: 'text-node', prompt: ['ok', 'a\u0000b'] }),
      400,
      'invalid_input',
      'prompt',
      /prompt\[1\] contains a NUL/,
    );
    assert.ok(listed);
    await expectApiError(
      client.completions.create({ model: 'text-node', prompt: [1, 2, 3] }),
      400,
      'invalid_request',
      'prompt',
      /token arrays are not supported/,
    );
    await expectApiError(
      client.completions.create({ model: 'text-node', prompt: '' }),
      400,
      'invalid_input',
      'prompt',
      /empty/,
    );
    await expectApiError(
      client.completions.create({ model: 'text-node:question', prompt: 'x' }),
      400,
      'invalid_request',
      'model',
      /does not generate text/,
    );
    await expectApiError(
      client.completions.create({ model: 'typed-node', prompt: 'x' }),
      400,
      'invalid_request',
      'model',
      /no text-generation task/,
    );
    await expectApiError(
      client.completions.create({ model: 'typed-node:patient', prompt: 'x' }),
      400,
      'invalid_request',
      'model',
      /takes text input; task patient takes json/,
    );
    await expectApiError(
      client.completions.create({ model: 'revcomp', prompt: 'ACGT' }),
      400,
      'invalid_request',
      'model',
    );
    await expectApiError(client.completions.create({ model: 'nope', prompt: 'x' }), 404, 'model_not_found', 'model');
    await expectApiError(
      client.completions.create({ model: 'text-node', prompt: 'x', n: 2 }),
      400,
      'invalid_request',
      'n',
    );
    await expectApiError(
      client.completions.create({ model: 'text-node', prompt: Array(MAX_BATCH + 1).fill('x') }),
      400,
      'invalid_request',
      'prompt',
      /at most 8 prompts per request/,
    );
    const missing = await h.post('/v1/completions', { model: 'text-node' });
    assert.deepEqual(
      [missing.status, missing.body.error.code, missing.body.error.param],
      [400, 'invalid_request', 'prompt'],
    );
  });

  it('embeddings take text tasks as well as sequences', async () => {
    const res = await client.embeddings.create({
      model: 'text-node',
      input: ['is it?', 'a b c'],
      encoding_format: 'float',
    });
    assert.deepEqual(
      res.data.map((d) => d.embedding),
      [
        [6, 2, 2, 1],
        [5, 3, 1, 0],
      ],
    );
    assert.deepEqual(res.usage, { prompt_tokens: 11, total_tokens: 11 });
    // Sequences as before.
    const dna = await h.post('/v1/embeddings', { model: 'revcomp', input: 'ACGT' });
    assert.equal(dna.status, 400, 'revcomp has no embedding task');
    await expectApiError(
      client.embeddings.create({ model: 'text-node', input: ['ok', 'x'.repeat(101)] }),
      400,
      'input_too_long',
      'input',
      /input\[1\] has 101 characters/,
    );
    await expectApiError(client.embeddings.create({ model: 'text-node', input: '' }), 400, 'invalid_input', 'input');
    await expectApiError(
      client.embeddings.create({ model: 'typed-node:look', input: PNG.toString('base64') }),
      400,
      'invalid_request',
      'model',
      /takes sequence or text input; task look takes image/,
    );
  });
});

// ---------------------------------------------------------------------------------------------

describe('MCP: typed task tools', () => {
  let client: Client;
  before(async () => {
    client = new Client({ name: 'typed-test', version: '1.0.0' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${h.url}/mcp`)));
  });
  after(async () => client?.close().catch(() => undefined));

  const call = async (name: string, args: Record<string, unknown>): Promise<CallToolResult> =>
    (await client.callTool({ name, arguments: args })) as CallToolResult;
  const ok = (r: CallToolResult): any => {
    assert.ok(!r.isError, `tool error: ${JSON.stringify(r.content).slice(0, 400)}`);
    return r.structuredContent;
  };
  const expectError = (r: CallToolResult, status: number, code: string, message?: RegExp): any => {
    assert.equal(r.isError, true, JSON.stringify(r.content).slice(0, 300));
    const body = JSON.parse((r.content[0] as { text: string }).text);
    assert.deepEqual(r.structuredContent, body);
    assert.equal(body.error.code, code, JSON.stringify(body));
    assert.equal(body.error.status, status);
    if (message) assert.match(body.error.message, message);
    return body.error;
  };

  it('lists one tool per task with the input schema of its type, from the manifest', async () => {
    const { tools } = await client.listTools();
    const schema = (n: string): any => tools.find((t) => t.name === n)!.inputSchema;
    for (const n of ['words', 'patient', 'add', 'look', 'listen', 'chat']) {
      const s = schema(`typed-node__${n}`);
      assert.deepEqual(s.required, ['inputs'], n);
      assert.equal(s.additionalProperties, false);
      assert.equal(s.properties.inputs.maxItems, MAX_BATCH);
      assert.equal(s.properties.sequences, undefined);
    }
    assert.deepEqual(schema('typed-node__words').properties.inputs.items, {
      type: 'string',
      minLength: 1,
      maxLength: 200,
      description: 'Text, 1 to 200 characters.',
    });
    // json: the task's own JSON Schema.
    const patient = schema('typed-node__patient').properties.inputs.items;
    assert.deepEqual(patient.required, ['symptoms']);
    assert.deepEqual(patient.properties.patient_info.properties.gender.enum, ['female', 'male', 'other']);
    const add = schema('typed-node__add').properties.inputs.items;
    assert.deepEqual(add.required, ['a', 'b']);
    assert.match(add.properties.a.description, /FP32 tensor of shape \[-1, 2\]/);
    const look = schema('typed-node__look').properties.inputs.items;
    assert.equal(look.anyOf[0].contentEncoding, 'base64');
    assert.deepEqual(look.anyOf[1].properties.format.enum, ['png', 'jpeg', 'gif']);
    assert.match(look.description, /at most 100000 bytes and 1000000 pixels/);
    assert.deepEqual(schema('typed-node__chat').properties.inputs.items.properties.messages.items.required, [
      'role',
      'content',
    ]);
    assert.match(
      tools.find((t) => t.name === 'typed-node__listen')!.description!,
      /audio files \(wav\) as base64, at most 200000 bytes and 5 s/,
    );
    // analyze_sequences offers sequence tasks only.
    assert.ok(!schema('analyze_sequences').properties.task_type.enum.includes('words'));
    // The sequence tools are unchanged.
    assert.deepEqual(schema('revcomp__reverse_complement').required, ['sequences']);
  });

  it('runs text, JSON and tensor tools; bad JSON and tensors answer INVALID_INPUT', async () => {
    const w = ok(await call('typed-node__words', { inputs: ['a b', 'c'] }));
    assert.equal(w.input_type, 'text');
    assert.deepEqual(
      w.predictions.map((p: any) => [p.index, p.words]),
      [
        [0, 2],
        [1, 1],
      ],
    );
    assert.equal(
      ok(await call('typed-node__words', { inputs: 'one two three' })).predictions[0].words,
      3,
      'a lone input is a batch of one',
    );
    expectError(await call('typed-node__words', { inputs: ['x'.repeat(201)] }), 400, 'INPUT_TOO_LONG');
    const p = ok(await call('typed-node__patient', { inputs: [{ symptoms: ['a', 'b'], patient_info: { age: 40 } }] }));
    assert.deepEqual([p.predictions[0].symptoms, p.predictions[0].age], [2, 40]);
    const bad = expectError(
      await call('typed-node__patient', { inputs: [{ symptoms: ['a'] }, { patient_info: {} }] }),
      400,
      'INVALID_INPUT',
      /inputs\[1\] does not match the task's JSON Schema/,
    );
    assert.equal(bad.details.index, 1);
    const t = ok(await call('typed-node__add', { inputs: [{ a: [[1, 2]], b: [3, 4] }] }));
    assert.deepEqual(t.predictions[0].sums, [10]);
    expectError(
      await call('typed-node__add', { inputs: [{ a: [[1, 2, 3]], b: [3, 4] }] }),
      400,
      'INVALID_INPUT',
      /needs \[-1, 2\]/,
    );
    expectError(
      await call('typed-node__words', { sequences: ['ACGT'] }),
      400,
      'INVALID_REQUEST',
      /unknown argument sequences/,
    );
  });

  it('runs image and audio tools on base64; broken base64, truncated PNG, wrong WAV header and an image over the limit refused', async () => {
    const img = ok(
      await call('typed-node__look', {
        inputs: [PNG.toString('base64'), { data: JPEG.toString('base64'), format: 'jpeg' }],
      }),
    );
    assert.deepEqual(
      img.predictions.map((x: any) => [x.format, x.width, x.height]),
      [
        ['png', 20, 10],
        ['jpeg', 32, 24],
      ],
    );
    assert.ok(!JSON.stringify(img).includes(PNG.toString('base64').slice(0, 40)), 'the image is not echoed');
    expectError(
      await call('typed-node__look', { inputs: ['%%%not base64'] }),
      400,
      'INVALID_INPUT',
      /not valid base64/,
    );
    expectError(
      await call('typed-node__look', { inputs: [TRUNCATED_PNG.toString('base64')] }),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
      /truncated PNG/,
    );
    expectError(
      await call('typed-node__look', { inputs: [BIG_PNG.toString('base64')] }),
      413,
      'PAYLOAD_TOO_LARGE',
      /pixels/,
    );
    const wav = ok(await call('typed-node__listen', { inputs: [WAV.toString('base64')] }));
    assert.equal(wav.predictions[0].duration_s, 1.5);
    expectError(
      await call('typed-node__listen', { inputs: [BAD_HEADER_WAV.toString('base64')] }),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
      /before the fmt chunk/,
    );
  });

  it('runs chat tools; malformed conversations refused', async () => {
    const c = ok(await call('typed-node__chat', { inputs: [{ messages: [{ role: 'user', content: 'hey' }] }] }));
    assert.equal(c.predictions[0].text, 'you said: hey');
    expectError(
      await call('typed-node__chat', { inputs: [{ messages: [{ role: 'wizard', content: 'x' }] }] }),
      400,
      'INVALID_INPUT',
      /role must be one of/,
    );
  });

  it('analyze_sequences does not run a task that takes another input type', async () => {
    const e = expectError(
      await call('analyze_sequences', { sequences: ['ACGT'], task_type: 'words' }),
      404,
      'MODEL_NOT_FOUND',
    );
    assert.deepEqual(e.details.rejected, [
      { model: 'typed-node', reason: 'task words takes text input, not sequences' },
    ]);
  });
});

// ---------------------------------------------------------------------------------------------

describe('Agent API: models that can take the input', () => {
  const post = (path: string, body: unknown) => h.post(`/agent${path}`, body);
  const expectError = (r: Res<any>, status: number, code: string, message?: RegExp): any => {
    assert.equal(r.status, status, JSON.stringify(r.body).slice(0, 600));
    assert.equal(r.body.success, false);
    assert.equal(r.body.error.code, code, JSON.stringify(r.body).slice(0, 600));
    if (message) assert.match(r.body.message, message);
    return r.body.error.details;
  };

  it('best: filters by input type, and says why each other model was left out', async () => {
    const all = await post('/models/best', { task_type: 'classify' });
    assert.equal(all.status, 200, JSON.stringify(all.body));
    assert.equal(all.body.candidates.length, 5);
    const text = await post('/models/best', { task_type: 'classify', input_type: 'text' });
    assert.deepEqual(
      text.body.candidates.map((c: any) => [c.name, c.input_type]),
      [
        ['agent-text-long', 'text'],
        ['agent-text-short', 'text'],
      ],
    );
    assert.deepEqual(text.body.rejected.map((r: any) => [r.model, r.reason]).sort(), [
      ['agent-dna-long', 'task classify takes sequence input, not text'],
      ['agent-dna-short', 'task classify takes sequence input, not text'],
      ['agent-protein', 'task classify takes sequence input, not text'],
    ]);
  });

  it('best: by length limits and alphabet, from the input itself', async () => {
    // 31 characters: too long for agent-text-short (20); the comma is in no sequence alphabet.
    const long = await post('/models/best', { task_type: 'classify', inputs: ['the quick brown fox, jumps over'] });
    assert.equal(long.status, 200, JSON.stringify(long.body));
    assert.equal(long.body.best_model, 'agent-text-long');
    assert.deepEqual(
      long.body.candidates.map((c: any) => c.name),
      ['agent-text-long'],
    );
    const reasons = Object.fromEntries(long.body.rejected.map((r: any) => [r.model, r]));
    assert.deepEqual(
      [reasons['agent-text-short'].code, reasons['agent-text-short'].reason],
      ['INPUT_TOO_LONG', 'inputs[0] has 31 characters; the limit is 20'],
    );
    for (const m of ['agent-dna-short', 'agent-dna-long', 'agent-protein']) {
      assert.deepEqual(
        [reasons[m].code, reasons[m].reason],
        ['INVALID_SEQUENCE', "inputs[0] is not a DNA, RNA or protein sequence: character ',' at position 17"],
        m,
      );
    }
    // DNA of 20 bases: the short DNA model's limit is 10; both text models take it as text too.
    const dna = await post('/models/best', {
      task_type: 'classify',
      input_type: 'sequence',
      sequences: ['ACGT'.repeat(5)],
    });
    assert.equal(dna.body.best_model, 'agent-dna-long');
    assert.deepEqual(
      dna.body.rejected.find((r: any) => r.model === 'agent-dna-short'),
      { model: 'agent-dna-short', reason: 'sequences[0] has 20 residues; the limit is 10', code: 'SEQUENCE_TOO_LONG' },
    );
    assert.match(
      dna.body.rejected.find((r: any) => r.model === 'agent-protein').reason,
      /takes protein sequences, not DNA/,
    );
    // A peptide of IUPAC letters is protein (issue 23): the DNA models are left out.
    const pep = await post('/models/best', {
      task_type: 'classify',
      input_type: 'sequence',
      sequences: ['MKWVTHSRGAD', 'MAAKW'],
    });
    assert.equal(pep.body.best_model, 'agent-protein');
    assert.match(
      pep.body.rejected.find((r: any) => r.model === 'agent-dna-long').reason,
      /takes DNA sequences, not protein/,
    );
  });

  it('analyze: runs the model that can take the input, by type and length', async () => {
    const text = await post('/analyze', {
      task_type: 'classify',
      input_type: 'text',
      inputs: ['the quick brown fox jumps over', 'hi'],
    });
    assert.equal(text.status, 200, JSON.stringify(text.body));
    const { predictions, metadata } = text.body.result;
    assert.deepEqual(
      predictions.map((p: any) => [p.index, p.model, p.got]),
      [
        [0, 'agent-text-long', 'the quick brown fox jumps over'],
        [1, 'agent-text-long', 'hi'],
      ],
    );
    assert.equal(metadata.input_type, 'text');
    assert.equal(metadata.sequence_type, undefined);
    assert.match(metadata.model_choice, /agent-text-long is the only model that runs classify on text input/);
    const seq = await post('/analyze', {
      task_type: 'classify',
      input_type: 'sequence',
      sequences: ['acgtacgtacgtacgt'],
    });
    assert.equal(seq.status, 200, JSON.stringify(seq.body));
    assert.deepEqual(
      [
        seq.body.result.metadata.model_name,
        seq.body.result.metadata.sequence_type,
        seq.body.result.predictions[0].sequence,
      ],
      ['agent-dna-long', 'DNA', 'ACGTACGTACGTACGT'],
    );
  });

  it('analyze: images, JSON and chat go to the model whose task takes them; bad media and JSON answer with their codes', async () => {
    const img = await post('/analyze', { task_type: 'look', inputs: [PNG.toString('base64')] });
    assert.equal(img.status, 200, JSON.stringify(img.body));
    assert.deepEqual(
      [img.body.result.predictions[0].index, img.body.result.predictions[0].width, img.body.result.metadata.input_type],
      [0, 20, 'image'],
    );
    const json = await post('/analyze', { task_type: 'patient', inputs: [{ symptoms: ['a'] }] });
    assert.equal(json.body.result.predictions[0].symptoms, 1);
    const chat = await post('/analyze', {
      task_type: 'chat',
      inputs: [[{ role: 'user', content: 'yo' }]],
      model_name: 'typed-node',
    });
    assert.equal(chat.body.result.predictions[0].text, 'you said: yo');
    let d = expectError(
      await post('/analyze', { task_type: 'look', inputs: [TRUNCATED_PNG.toString('base64')] }),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
      /inputs\[0\]: truncated PNG/,
    );
    assert.deepEqual(
      d.rejected.map((r: any) => r.model),
      ['typed-node'],
    );
    expectError(
      await post('/analyze', { task_type: 'look', inputs: ['@@@@'] }),
      400,
      'INVALID_INPUT',
      /not valid base64/,
    );
    expectError(
      await post('/analyze', { task_type: 'look', inputs: [BIG_PNG.toString('base64')] }),
      413,
      'PAYLOAD_TOO_LARGE',
    );
    expectError(
      await post('/analyze', { task_type: 'listen', inputs: [BAD_HEADER_WAV.toString('base64')] }),
      415,
      'UNSUPPORTED_MEDIA_TYPE',
    );
    d = expectError(
      await post('/analyze', { task_type: 'patient', inputs: [{ symptoms: [] }] }),
      400,
      'INVALID_INPUT',
      /does not match the task's JSON Schema/,
    );
    assert.equal(d.index, 0);
    expectError(
      await post('/analyze', { task_type: 'patient', sequences: ['x'], model_name: 'typed-node' }),
      400,
      'INVALID_REQUEST',
      /send it as inputs/,
    );
  });

  it('says so, with each candidate’s reason, when no model can take the input', async () => {
    // Too long for both text models: the input's own error, every model's reason beside it (the
    // sequence models, left out by input_type, are listed but do not decide the answer).
    let d = expectError(
      await post('/analyze', { task_type: 'classify', input_type: 'text', inputs: ['x'.repeat(300)] }),
      400,
      'INPUT_TOO_LONG',
      /inputs\[0\] has 300 characters; the limit is (200|20) \(and for every other model with task classify that takes this input type\)/,
    );
    assert.deepEqual(d.rejected.map((r: any) => [r.model, r.code]).sort(), [
      ['agent-dna-long', 'MODEL_NOT_FOUND'],
      ['agent-dna-short', 'MODEL_NOT_FOUND'],
      ['agent-protein', 'MODEL_NOT_FOUND'],
      ['agent-text-long', 'INPUT_TOO_LONG'],
      ['agent-text-short', 'INPUT_TOO_LONG'],
    ]);
    // Different reasons: MODEL_NOT_FOUND naming each.
    const r = await post('/models/best', { task_type: 'classify', inputs: [{ not: 'text' }] });
    d = expectError(r, 404, 'MODEL_NOT_FOUND', /no model runs classify for these inputs; /);
    assert.equal(d.rejected.length, 5);
    for (const m of ['agent-text-long', 'agent-text-short', 'agent-dna-long', 'agent-dna-short', 'agent-protein'])
      assert.match(r.body.message, new RegExp(`${m}: `));
    assert.equal(d.rejected.find((x: any) => x.model === 'agent-text-long').code, 'INVALID_INPUT');
    assert.equal(d.rejected.find((x: any) => x.model === 'agent-dna-long').code, 'INVALID_REQUEST');
    // Sequences no model takes in that type.
    d = expectError(
      await post('/analyze', { task_type: 'reverse_complement', sequences: ['MKWVTHSRGAD'] }),
      404,
      'MODEL_NOT_FOUND',
      /no model runs reverse_complement on protein sequences/,
    );
    assert.deepEqual(d.rejected, [
      {
        model: 'revcomp',
        reason: 'task reverse_complement takes DNA/RNA sequences, not protein',
        code: 'MODEL_NOT_FOUND',
      },
    ]);
  });
});
