// `isomodel init --type T`: for every input type and both runtimes, the scaffolded package loads in
// a real gateway and answers a real request of its type with what its code computes; the chat
// scaffolds stream through the native SSE route.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { INIT_TYPES, exampleCommand, initPackage, type Runtime } from '../src/cli/init.js';
import type { InputType } from '../src/manifest/schema.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import { startGateway, waitFor, workerTmpDir, type Harness } from './helpers.js';
import { makePng, makeWav } from './media.js';

const RUNTIMES: Runtime[] = ['python', 'node'];
const png = makePng(6, 4, (x) => [x * 40, 0, 0]);
const wav = makeWav(0.5); // 440 Hz sine of amplitude 8000: RMS 8000/sqrt(2)/32768

/** One request per type and what its answer must hold. */
const CASES: Record<InputType, { body: Record<string, unknown>; check: (data: any) => void }> = {
  sequence: {
    body: { sequence: 'ACGTA' },
    check: (d) => assert.deepEqual([d.length, d.counts], [5, { A: 2, C: 1, G: 1, T: 1 }]),
  },
  text: {
    body: { input: 'two words\nand more' },
    check: (d) => assert.deepEqual([d.characters, d.words, d.lines], [18, 4, 2]),
  },
  json: {
    body: { input: { values: [1, 2, 3.5], label: 'x' } },
    check: (d) => assert.deepEqual([d.count, d.sum, d.mean, d.label], [3, 6.5, 6.5 / 3, 'x']),
  },
  tensor: {
    body: {
      input: {
        x: [
          [1, 2, 3],
          [4, 5, 6],
        ],
      },
    },
    check: (d) =>
      assert.deepEqual(
        [d.shape, d.row_sums],
        [
          [2, 3],
          [6, 15],
        ],
      ),
  },
  image: {
    body: { input: png.toString('base64') },
    check: (d) =>
      assert.deepEqual([d.format, d.width, d.height, d.bytes, d.sha256.length], ['png', 6, 4, png.length, 64]),
  },
  audio: {
    body: { input: wav.toString('base64') },
    check: (d) => {
      assert.deepEqual([d.sample_rate, d.channels, d.duration_s], [8000, 1, 0.5]);
      assert.ok(Math.abs(d.rms - 8000 / Math.SQRT2 / 32768) < 0.002, `rms ${d.rms}`);
    },
  },
  chat: {
    body: {
      input: {
        messages: [
          { role: 'system', content: 'be brief' },
          { role: 'user', content: 'hello there' },
        ],
      },
    },
    check: (d) => assert.equal(d.text, 'You said: hello there'),
  },
};

/** Sends what a printed `curl … -d '<json>'` or `curl … -H 'content-type: T' --data-binary @file` line would (the file made here). */
async function tryPrinted(base: string, command: string): Promise<{ status: number; body: any }> {
  const url = /curl -s (\S+)/.exec(command)![1]!;
  assert.ok(url.startsWith(base), command);
  const json = /-d '(.*)'$/.exec(command);
  const media = /content-type: ([^']+)' --data-binary @(\S+)$/.exec(command);
  assert.ok(json || media, `unexpected command: ${command}`);
  const res = json
    ? await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: json[1] })
    : await fetch(url, {
        method: 'POST',
        headers: { 'content-type': media![1]! },
        body: media![1]!.startsWith('image/') ? png : wav,
      });
  return { status: res.status, body: await res.json() };
}

describe('isomodel init --type: a working package of every input type', () => {
  let h: Harness;
  before(async () => {
    h = await startGateway([]);
    for (const type of INIT_TYPES)
      for (const runtime of RUNTIMES) initPackage(`${type}-${runtime}`, runtime, h.modelsDir, type);
    const r = await h.post('/v1/models/reload');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.deepEqual(r.body.data.errors ?? [], []);
    await waitFor(() => h.gw.registry.names().every((n) => h.gw.registry.status(n) !== 'loading'), 120_000, 50);
  });
  after(async () => h.close());

  for (const type of INIT_TYPES) {
    for (const runtime of RUNTIMES) {
      it(`${type} (${runtime}) loads and predicts`, async () => {
        const name = `${type}-${runtime}`;
        assert.equal(h.gw.registry.status(name), 'ready', h.gw.registry.lastError(name) ?? '');
        const r = await h.post(`/models/${name}/predict`, CASES[type].body);
        assert.equal(r.status, 200, JSON.stringify(r.body));
        CASES[type].check(r.body.data);
        const info = await h.get(`/models/${name}/info`);
        assert.equal(info.status, 200);
        assert.match(JSON.stringify(info.body.data), new RegExp(`"input_type":"${type}"|"sequence_types"`));
        // The request `init` prints to try the package is one the package answers.
        const tried = await tryPrinted(h.url, exampleCommand(name, type, h.url));
        assert.equal(tried.status, 200, `${exampleCommand(name, type, h.url)}: ${JSON.stringify(tried.body)}`);
      });
    }
  }

  it('the chat scaffolds stream word by word through the native SSE route', async () => {
    for (const runtime of RUNTIMES) {
      const res = await fetch(`${h.url}/models/chat-${runtime}/predict`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
        body: JSON.stringify(CASES.chat.body),
      });
      assert.equal(res.status, 200);
      const text = await res.text();
      const chunks = [...text.matchAll(/event: chunk\ndata: (.*)\n/g)].map((m) => JSON.parse(m[1]!).data.text);
      assert.deepEqual(chunks, ['You', ' said:', ' hello', ' there'], runtime);
      assert.match(text, /event: result\ndata: .*"text":"You said: hello there"/);
    }
  });

  it('bad input of each type is refused by the gateway before the model sees it', async () => {
    const bad: [string, Record<string, unknown>, string][] = [
      ['json-python', { input: { values: [] } }, 'INVALID_INPUT'],
      ['json-node', { input: { values: [1], extra: true } }, 'INVALID_INPUT'],
      ['tensor-python', { input: { x: [1, 2] } }, 'INVALID_INPUT'],
      ['image-node', { input: png.subarray(0, 40).toString('base64') }, 'UNSUPPORTED_MEDIA_TYPE'],
      ['audio-python', { input: png.toString('base64') }, 'UNSUPPORTED_MEDIA_TYPE'],
      ['chat-node', { input: { messages: [{ role: 'robot', content: 'x' }] } }, 'INVALID_INPUT'],
      ['text-node', { input: '' }, 'INVALID_INPUT'],
    ];
    for (const [name, body, code] of bad) {
      const r = await h.post(`/models/${name}/predict`, body);
      assert.equal(r.body.error?.code, code, `${name}: ${JSON.stringify(r.body)}`);
    }
    // A chat without a user message reaches the model, which says so (an item error, 400).
    const noUser = await h.post('/models/chat-python/predict', {
      input: { messages: [{ role: 'system', content: 'x' }] },
    });
    assert.deepEqual([noUser.status, noUser.body.error.code], [400, 'INVALID_INPUT']);
  });
});

describe('isomodel init --type from the command line', () => {
  it('writes the package of the type asked for and names a request to try; refuses unknown types', async () => {
    const run = promisify(execFile);
    const work = workerTmpDir('isomodel-init-');
    const bin = join(PACKAGE_ROOT, 'bin', 'isomodel.js');
    const out = await run(process.execPath, [
      bin,
      '--models-dir',
      work,
      'init',
      'pics',
      '--runtime',
      'node',
      '--type',
      'image',
    ]);
    assert.match(out.stdout, /created .*pics/);
    assert.match(
      out.stdout,
      /try: curl -s http:\/\/127\.0\.0\.1:8000\/models\/pics\/predict -H 'content-type: image\/png' --data-binary @picture\.png\n/,
    );
    assert.match(readFileSync(join(work, 'pics', 'model.yaml'), 'utf8'), /input_type: image/);
    assert.ok(existsSync(join(work, 'pics', 'index.mjs')));
    await assert.rejects(
      run(process.execPath, [bin, '--models-dir', work, 'init', 'x', '--type', 'video']),
      /unknown input type "video": use one of sequence, text, json, tensor, image, audio, chat/,
    );
  });
});
