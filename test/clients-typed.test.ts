// The client libraries with inputs of every type (docs/models.md) against a real gateway and the
// typed-node fixture (which answers with what it received): predictInput / predictInputs and
// mediaInput in TypeScript, predict_input / predict_inputs and media_input in Python. A bad input
// is the gateway's error with its code (in a batch: the whole request, naming the input).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { IsomodelClient, IsomodelError, mediaInput } from '../src/client/index.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import { startGateway, workerTmpDir, type Harness } from './helpers.js';
import { makePng, makeWav } from './media.js';

const run = promisify(execFile);
const PYTHON = process.env.ISOMODEL_PYTHON ?? 'python3';
const png = makePng(12, 7, (x) => [x * 20, 0, 0]);
const wav = makeWav(0.5);
const CHAT = { messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hi there' }] };

describe('clients with typed inputs', () => {
  let h: Harness;
  before(async () => {
    h = await startGateway(['typed-node']);
    assert.equal(h.gw.registry.status('typed-node'), 'ready', h.gw.registry.lastError('typed-node') ?? '');
  });
  after(async () => h.close());

  it('TypeScript: predictInput carries text, JSON, tensors, images, audio and chat; predictInputs answers per index', async () => {
    const c = new IsomodelClient(h.url);
    const text = await c.predictInput<{ words: number; upper: string }>('typed-node', 'hello big world', { task: 'words' });
    assert.deepEqual([text.words, text.upper, text.input_type, text.input_size, text.task_type], [3, 'HELLO BIG WORLD', 'text', 15, 'words']);
    const json = await c.predictInput<{ symptoms: number; age: number }>('typed-node', { symptoms: ['头痛', '乏力'], patient_info: { age: 35 } }, { task: 'patient' });
    assert.deepEqual([json.symptoms, json.age, json.input_type], [2, 35, 'json']);
    const tensor = await c.predictInput<{ sums: number[] }>('typed-node', { a: [[1, 2], [3, 4]], b: [10, 20] }, { task: 'add' });
    assert.deepEqual(tensor.sums, [33, 37]);
    // Bytes as mediaInput: what the worker decodes is the file, byte for byte.
    const image = await c.predictInput<{ format: string; width: number; decoded_bytes: number; first_byte: number }>('typed-node', mediaInput(png, 'png'), { task: 'look' });
    assert.deepEqual([image.format, image.width, image.decoded_bytes, image.first_byte], ['png', 12, png.length, png[0]]);
    const audio = await c.predictInput<{ format: string; sample_rate: number; duration_s: number; decoded_bytes: number }>('typed-node', mediaInput(wav), { task: 'listen' });
    assert.deepEqual([audio.format, audio.sample_rate, audio.duration_s, audio.decoded_bytes], ['wav', 8000, 0.5, wav.length]);
    const chat = await c.predictInput<{ text: string; roles: string[] }>('typed-node', CHAT, { task: 'chat' });
    assert.deepEqual([chat.text, chat.roles], ['you said: hi there', ['system', 'user']]);

    const many = await c.predictInputs<{ words: number }>('typed-node', ['a b', 'x', 'c d e'], { task: 'words' });
    assert.deepEqual([many.total_sequences, many.successful, many.failed], [3, 3, 0]);
    assert.deepEqual(
      many.predictions.map((p) => [p.index, p.error ? p.error.code : p.words]),
      [
        [0, 2],
        [1, 1],
        [2, 3],
      ],
    );
    // The gateway checks every input before any runs: one it refuses fails the request, naming it.
    await assert.rejects(
      c.predictInputs('typed-node', ['a b', 'x'.repeat(201)], { task: 'words' }),
      (e: unknown) => e instanceof IsomodelError && e.code === 'INPUT_TOO_LONG' && e.status === 400 && /inputs\[1\]/.test(e.message),
    );
    // A file that is not what the task takes: the gateway's code and status.
    const gif = Buffer.from('R0lGODdhAQABAIAAAP///////ywAAAAAAQABAAACAkQBADs=', 'base64');
    await assert.rejects(c.predictInput('typed-node', mediaInput(png.subarray(0, 30)), { task: 'look' }), (e: unknown) => e instanceof IsomodelError && e.code === 'UNSUPPORTED_MEDIA_TYPE' && e.status === 415);
    await assert.rejects(c.predictInput('typed-node', mediaInput(gif), { task: 'listen' }), (e: unknown) => e instanceof IsomodelError && e.code === 'UNSUPPORTED_MEDIA_TYPE');
    await assert.rejects(c.predictInput('typed-node', { symptoms: [] }, { task: 'patient' }), (e: unknown) => e instanceof IsomodelError && e.code === 'INVALID_INPUT' && e.status === 400);
  });

  it('TypeScript: mediaInput encodes large files whole', () => {
    const big = new Uint8Array(200_000).map((_, i) => (i * 7919) % 256);
    assert.equal(mediaInput(big).data, Buffer.from(big).toString('base64'));
    assert.deepEqual(mediaInput(new Uint8Array(0), 'wav'), { data: '', format: 'wav' });
  });

  it('Python: predict_input, predict_inputs and media_input (bytes or a path)', async () => {
    const dir = workerTmpDir('isomodel-client-typed-');
    const pngPath = join(dir, 'picture.png');
    writeFileSync(pngPath, png);
    const script = `
import json, sys
sys.path.insert(0, ${JSON.stringify(join(PACKAGE_ROOT, 'clients', 'python'))})
from isomodel_client import IsomodelClient, IsomodelError, media_input
c = IsomodelClient(sys.argv[1])
out = {}
t = c.predict_input("typed-node", "hello big world", task="words")
out["text"] = [t["words"], t["input_type"], t["input_size"]]
out["json"] = c.predict_input("typed-node", {"symptoms": ["a", "b", "c"]}, task="patient")["symptoms"]
out["tensor"] = c.predict_input("typed-node", {"a": [[1, 2]], "b": [3, 4]}, task="add")["sums"]
im = c.predict_input("typed-node", media_input(sys.argv[2], "png"), task="look")
out["image"] = [im["format"], im["width"], im["height"], im["decoded_bytes"]]
with open(sys.argv[2], "rb") as fh:
    out["image_bytes"] = c.predict_input("typed-node", media_input(fh.read()), task="look")["decoded_bytes"]
out["chat"] = c.predict_input("typed-node", ${JSON.stringify(CHAT)}, task="chat")["text"]
b = c.predict_inputs("typed-node", ["a b", "c d e"], task="words")
out["batch"] = [[p["index"], p["words"]] for p in b["predictions"]]
for label, fn in [("bad", lambda: c.predict_input("typed-node", "not base64!", task="look")),
                  ("too_long", lambda: c.predict_inputs("typed-node", ["a b", "x" * 201], task="words"))]:
    try:
        fn()
        out[label] = None
    except IsomodelError as e:
        out[label] = [e.code, e.status, "inputs[1]" in e.message if label == "too_long" else None]
print(json.dumps(out))
`;
    const { stdout } = await run(PYTHON, ['-c', script, h.url, pngPath], { timeout: 60_000 });
    const out = JSON.parse(stdout);
    assert.deepEqual(out, {
      text: [3, 'text', 15],
      json: 3,
      tensor: [10],
      image: ['png', 12, 7, png.length],
      image_bytes: png.length,
      chat: 'you said: hi there',
      batch: [
        [0, 2],
        [1, 3],
      ],
      bad: ['INVALID_INPUT', 400, null],
      too_long: ['INPUT_TOO_LONG', 400, true],
    });
  });
});
