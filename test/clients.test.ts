// The client libraries against a real gateway: the TypeScript IsomodelClient (src/client, published
// as @isomodel/client from clients/typescript) and the standard-library Python client: sequences,
// inputs of every type (test/fixtures/models/typed-node answers with what it received) with their
// bad input and error codes, bytes helpers, and jobs of typed records.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import {
  CLIENT_ERROR_CODES,
  IsomodelClient,
  IsomodelError,
  isTyped,
  mediaFile,
  mediaInput,
  SERVER_ERROR_CODES,
  toBase64,
  type TypedBatchPrediction,
  type TypedPrediction,
} from '../src/client/index.js';
import { ERROR_STATUS } from '../src/errors.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import { startGateway, type Harness } from './helpers.js';
import { makePng, makeWav } from './media.js';

const run = promisify(execFile);
const PY_CLIENT_DIR = join(PACKAGE_ROOT, 'clients', 'python');
const PYTHON = process.env.ISOMODEL_PYTHON ?? 'python3';
const MEDIA = join(PACKAGE_ROOT, 'test', 'fixtures', 'media');

async function rejectsWith(p: Promise<unknown>, code: string, status: number): Promise<IsomodelError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof IsomodelError, `not an IsomodelError: ${String(e)}`);
    assert.equal(e.code, code, `${e.code}: ${e.message}`);
    assert.equal(e.status, status);
    return e;
  }
  assert.fail(`expected ${code}`);
}

describe('clients', () => {
  let h: Harness;
  before(async () => {
    h = await startGateway(['gc-scanner', 'revcomp'], { default_model: 'revcomp' });
  });
  after(async () => h.close());

  describe('TypeScript IsomodelClient', () => {
    let c: IsomodelClient;
    before(() => {
      c = new IsomodelClient(h.url + '/');
    });

    it('reads health, models and model info', async () => {
      const health = await c.health();
      assert.equal(health.status, 'healthy');
      assert.equal(health.model, 'revcomp');
      assert.equal((await c.health('gc-scanner')).model, 'gc-scanner');
      const { models } = await c.models();
      assert.deepEqual(
        models.map((m) => `${m.name}:${m.status}`),
        ['gc-scanner:ready', 'revcomp:ready'],
      );
      const info = await c.modelInfo('gc-scanner');
      assert.deepEqual(info.tasks, ['gc_content', 'motif_scan']);
      assert.equal(info.max_sequence_length, 5120);
    });

    it('predicts one sequence with typed output', async () => {
      const r = await c.predict<{ reverse_complement: string }>('revcomp', 'atgcRYN');
      assert.equal(r.reverse_complement, 'NRYGCAT');
      assert.equal(r.model, 'revcomp');
      assert.equal(r.sequence_length, 7);
      const g = await c.predict<{ gc_content: number; windows: number[] }>('gc-scanner', 'ATGCGCTATAAT', {
        task: 'gc_content',
        options: { window: 6 },
      });
      assert.ok(Math.abs(g.gc_content - 1 / 3) < 1e-12);
      assert.deepEqual(g.windows, [4 / 6, 0]);
      assert.equal(g.task_type, 'gc_content');
    });

    it('predicts a batch in input order', async () => {
      const b = await c.predictBatch<{ gc_content: number }>('gc-scanner', ['GGGG', 'ATAT', 'GCAT'], {
        task: 'gc_content',
      });
      assert.equal(b.total_sequences, 3);
      assert.equal(b.failed, 0);
      assert.deepEqual(
        b.predictions.map((p) => (p.error ? null : p.gc_content)),
        [1, 0, 0.5],
      );
    });

    it('maps error envelopes to IsomodelError(code, status, message, details)', async () => {
      const bad = await rejectsWith(c.predict('gc-scanner', 'ACGTJ', { task: 'gc_content' }), 'INVALID_SEQUENCE', 400);
      assert.deepEqual((bad.details as { position: number }).position, 5);
      assert.match(bad.message, /position 5/);
      assert.equal(typeof bad.requestId, 'string');
      await rejectsWith(c.modelInfo('nope'), 'MODEL_NOT_FOUND', 404);
      await rejectsWith(c.predict('nope', 'ACGT'), 'MODEL_NOT_FOUND', 404);
      await rejectsWith(c.predict('gc-scanner', 'ACGT', { task: 'folding' }), 'INVALID_REQUEST', 400);
      await rejectsWith(c.predict('revcomp', 'A'.repeat(5121)), 'SEQUENCE_TOO_LONG', 400);
      await rejectsWith(c.predictBatch('revcomp', []), 'INVALID_REQUEST', 400);
      const down = new IsomodelClient('http://127.0.0.1:9', { timeoutMs: 5000 });
      await rejectsWith(down.health(), 'NETWORK_ERROR', 0);
    });

    it('unloads, loads and reloads', async () => {
      const u = await c.unload('revcomp');
      assert.equal(u.status, 'unloaded');
      await rejectsWith(c.predict('revcomp', 'ACGT'), 'MODEL_NOT_LOADED', 503);
      const l = await c.load('revcomp');
      assert.equal(l.status, 'ready');
      assert.equal(typeof l.load_time_ms, 'number');
      const r = await c.reload();
      assert.deepEqual(r.unchanged.sort(), ['gc-scanner', 'revcomp']);
      assert.equal(
        (await c.predict<{ reverse_complement: string }>('revcomp', 'GATTACA')).reverse_complement,
        'TGTAATC',
      );
    });
  });

  describe('Python isomodel_client', () => {
    it('predicts, batches, manages and raises IsomodelError', async () => {
      const script = `
import json, sys
sys.path.insert(0, ${JSON.stringify(PY_CLIENT_DIR)})
from isomodel_client import IsomodelClient, IsomodelError
c = IsomodelClient(sys.argv[1])
out = {}
out["health"] = c.health()["status"]
out["models"] = [m["name"] for m in c.models()["models"]]
out["info_tasks"] = c.model_info("gc-scanner")["tasks"]
out["rc"] = c.predict("revcomp", "atgcRYN")["reverse_complement"]
out["gc"] = c.predict("gc-scanner", "ATGCGCTATAAT", task="gc_content", options={"window": 6})
out["batch"] = [p["gc_content"] for p in c.predict_batch("gc-scanner", ["GGGG", "ATAT", "GCAT"], task="gc_content")["predictions"]]
errors = {}
for label, fn in [
    ("bad", lambda: c.predict("gc-scanner", "ACGTJ", task="gc_content")),
    ("missing", lambda: c.model_info("nope")),
    ("no_task", lambda: c.predict("gc-scanner", "ACGT", task="folding")),
    ("down", lambda: IsomodelClient("http://127.0.0.1:9", timeout=5).health()),
]:
    try:
        fn()
        errors[label] = None
    except IsomodelError as e:
        errors[label] = {"code": e.code, "status": e.status, "message": e.message, "details": e.details, "request_id": e.request_id}
out["errors"] = errors
out["unload"] = c.unload("revcomp")["status"]
try:
    c.predict("revcomp", "ACGT")
except IsomodelError as e:
    out["unloaded_code"] = e.code
out["load"] = c.load("revcomp")["status"]
out["reload_unchanged"] = sorted(c.reload()["unchanged"])
print(json.dumps(out))
`;
      const { stdout } = await run(PYTHON, ['-c', script, h.url], { timeout: 60_000 });
      const out = JSON.parse(stdout);
      assert.equal(out.health, 'healthy');
      assert.deepEqual(out.models, ['gc-scanner', 'revcomp']);
      assert.deepEqual(out.info_tasks, ['gc_content', 'motif_scan']);
      assert.equal(out.rc, 'NRYGCAT');
      assert.ok(Math.abs(out.gc.gc_content - 1 / 3) < 1e-12);
      assert.deepEqual(out.gc.windows, [4 / 6, 0]);
      assert.equal(out.gc.model, 'gc-scanner');
      assert.deepEqual(out.batch, [1, 0, 0.5]);
      assert.equal(out.errors.bad.code, 'INVALID_SEQUENCE');
      assert.equal(out.errors.bad.status, 400);
      assert.equal(out.errors.bad.details.position, 5);
      assert.equal(typeof out.errors.bad.request_id, 'string');
      assert.deepEqual([out.errors.missing.code, out.errors.missing.status], ['MODEL_NOT_FOUND', 404]);
      assert.deepEqual([out.errors.no_task.code, out.errors.no_task.status], ['INVALID_REQUEST', 400]);
      assert.deepEqual([out.errors.down.code, out.errors.down.status], ['NETWORK_ERROR', 0]);
      assert.equal(out.unload, 'unloaded');
      assert.equal(out.unloaded_code, 'MODEL_NOT_LOADED');
      assert.equal(out.load, 'ready');
      assert.deepEqual(out.reload_unchanged, ['gc-scanner', 'revcomp']);
    });

    it('has a command line (predict, errors on stderr with exit status 1)', async () => {
      const cli = join(PY_CLIENT_DIR, 'isomodel_client.py');
      const { stdout } = await run(PYTHON, [
        cli,
        '--url',
        h.url,
        'predict',
        'gc-scanner',
        'GGCC',
        'ATAT',
        '--task',
        'gc_content',
      ]);
      const batch = JSON.parse(stdout);
      assert.deepEqual(
        batch.predictions.map((p: any) => p.gc_content),
        [1, 0],
      );
      const one = JSON.parse((await run(PYTHON, [cli, '--url', h.url, 'predict', 'revcomp', 'AACG'])).stdout);
      assert.equal(one.reverse_complement, 'CGTT');
      await assert.rejects(run(PYTHON, [cli, '--url', h.url, 'info', 'nope']), (e: any) => {
        assert.equal(e.code, 1);
        assert.equal(JSON.parse(e.stderr).error.code, 'MODEL_NOT_FOUND');
        return true;
      });
    });
  });
});

describe('clients against a gateway with API keys', () => {
  const KEY = 'test-predict-key-0123456789';
  let h: Harness;
  before(async () => {
    h = await startGateway(['revcomp'], {
      auth: { keys: [{ name: 'tester', sha256: createHash('sha256').update(KEY).digest('hex'), scopes: ['predict'] }] },
    });
  });
  after(async () => h.close());

  it('TypeScript: apiKey is sent as a bearer token; no key is UNAUTHORIZED, an admin call FORBIDDEN', async () => {
    await rejectsWith(new IsomodelClient(h.url).predict('revcomp', 'ACGT'), 'UNAUTHORIZED', 401);
    const c = new IsomodelClient(h.url, { apiKey: KEY });
    assert.equal((await c.predict<{ reverse_complement: string }>('revcomp', 'AACG')).reverse_complement, 'CGTT');
    await rejectsWith(c.unload('revcomp'), 'FORBIDDEN', 403);
  });

  it('Python: api_key is sent as a bearer token', async () => {
    const script = `
import json, sys
sys.path.insert(0, ${JSON.stringify(PY_CLIENT_DIR)})
from isomodel_client import IsomodelClient, IsomodelError
out = {}
try:
    IsomodelClient(sys.argv[1]).predict("revcomp", "ACGT")
except IsomodelError as e:
    out["anonymous"] = [e.code, e.status]
out["rc"] = IsomodelClient(sys.argv[1], api_key=sys.argv[2]).predict("revcomp", "AACG")["reverse_complement"]
print(json.dumps(out))
`;
    const out = JSON.parse((await run(PYTHON, ['-c', script, h.url, KEY])).stdout);
    assert.deepEqual(out.anonymous, ['UNAUTHORIZED', 401]);
    assert.equal(out.rc, 'CGTT');
  });
});

describe('clients with inputs of every type', () => {
  let h: Harness;
  let dir: string;
  const png = makePng(20, 10, (x) => [x * 10, 0, 0]);
  const wav = makeWav(1.5);
  const badWav = Buffer.from(wav);
  badWav.write('JUNK', 12, 'latin1'); // the fmt chunk renamed
  const CHAT = {
    messages: [
      { role: 'system' as const, content: 'be brief' },
      { role: 'user' as const, content: 'hi there' },
    ],
  };
  before(async () => {
    h = await startGateway(['typed-node', 'revcomp']);
    dir = mkdtempSync(join(tmpdir(), 'isomodel-client-media-'));
    writeFileSync(join(dir, 'red.png'), png);
    writeFileSync(join(dir, 'small.png'), makePng(8, 4));
    writeFileSync(join(dir, 'tone.wav'), wav);
    writeFileSync(join(dir, 'cut.png'), png.subarray(0, png.length - 20));
    writeFileSync(join(dir, 'bad.wav'), badWav);
  });
  after(async () => {
    await h.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('the error-code lists hold every code the gateway gives', () => {
    for (const code of Object.keys(ERROR_STATUS))
      assert.ok((SERVER_ERROR_CODES as readonly string[]).includes(code), `${code} missing from the TypeScript client`);
    for (const code of [
      'INVALID_INPUT',
      'INPUT_TOO_LONG',
      'UNSUPPORTED_MEDIA_TYPE',
      'LOW_INFORMATION_SEQUENCE',
      'QUOTA_EXCEEDED',
      'STORAGE_UNAVAILABLE',
    ])
      assert.ok((SERVER_ERROR_CODES as readonly string[]).includes(code));
    assert.deepEqual([...CLIENT_ERROR_CODES], ['NETWORK_ERROR', 'TIMEOUT', 'CANCELLED', 'INVALID_RESPONSE']);
  });

  it('toBase64 matches Buffer for every padding', () => {
    for (let n = 0; n < 70; n++) {
      const b = Buffer.from(Array.from({ length: n }, (_, i) => (i * 37 + n) & 255));
      assert.equal(toBase64(b), b.toString('base64'), `${n} bytes`);
    }
  });

  describe('TypeScript', () => {
    let c: IsomodelClient;
    before(() => {
      c = new IsomodelClient(h.url);
    });

    it('predict(model, {input, task}) for text, JSON, tensors, images, audio and chat', async () => {
      const text = (await c.predict<{ words: number }>('typed-node', {
        input: 'hello big world',
        task: 'words',
      })) as TypedPrediction<{ words: number }>;
      assert.deepEqual([text.words, text.input_type, text.input_size, text.task_type], [3, 'text', 15, 'words']);
      assert.equal(
        (await c.predict<{ words: number }>('typed-node', { sequence: 'two words' })).words,
        2,
        'the default task, text as sequence',
      );
      const json = await c.predict<{ symptoms: number; age: number }>('typed-node', {
        task: 'patient',
        input: { symptoms: ['头痛', '乏力'], patient_info: { age: 35 } },
        options: { temperature: 0.7 },
      });
      assert.deepEqual([json.symptoms, json.age], [2, 35]);
      const sums = await c.predict<{ sums: number[] }>('typed-node', {
        task: 'add',
        input: {
          a: [
            [1, 2],
            [3, 4],
          ],
          b: { datatype: 'INT32', shape: [2], data: [10, 20] },
        },
      });
      assert.deepEqual(sums.sums, [33, 37]);
      const img = await c.predict<{ width: number; height: number; decoded_bytes: number }>('typed-node', {
        task: 'look',
        input: mediaInput(png, 'png'),
      });
      assert.deepEqual([img.width, img.height, img.decoded_bytes], [20, 10, png.length]);
      const fromFile = await c.predict<{ width: number }>('typed-node', {
        task: 'look',
        input: await mediaFile(join(dir, 'red.png')),
      });
      assert.equal(fromFile.width, 20);
      const ab = new Uint8Array(png).buffer;
      assert.equal(
        (await c.predict<{ height: number }>('typed-node', { task: 'look', input: mediaInput(ab) })).height,
        10,
        'an ArrayBuffer, format sniffed',
      );
      const audio = await c.predict<{ duration_s: number; sample_rate: number }>('typed-node', {
        task: 'listen',
        input: await mediaFile(join(dir, 'tone.wav')),
      });
      assert.deepEqual([audio.duration_s, audio.sample_rate], [1.5, 8000]);
      const chat = await c.predict<{ text: string }>('typed-node', { task: 'chat', input: CHAT });
      assert.equal(chat.text, 'you said: hi there');
      // Sequences as before, either way.
      const rc = await c.predict<{ reverse_complement: string }>('revcomp', { sequence: 'AACG' });
      // isTyped tells a sequence task's answer from another type's (a text task takes {sequence} too).
      assert.ok(!isTyped(rc));
      assert.deepEqual([rc.reverse_complement, rc.sequence_length, rc.sequence_type], ['CGTT', 4, 'DNA']);
      assert.equal((await c.predict<{ reverse_complement: string }>('revcomp', 'AACG')).reverse_complement, 'CGTT');
      assert.deepEqual(
        [isTyped(chat), isTyped(img), isTyped(await c.predict('typed-node', { sequence: 'two words' }))],
        [true, true, true],
      );
    });

    it('predictMedia sends bytes as multipart or as the raw body: a path, bytes, an ArrayBuffer or a Blob', async () => {
      const seen: { type: string; url: string }[] = [];
      // The client's fetch, watched: what each call sent as its content type and URL.
      const spy = new IsomodelClient(h.url, {
        fetch: (url, init) => {
          seen.push({
            type: String((init?.headers as Record<string, string>)['content-type'] ?? '(set by fetch)'),
            url: String(url),
          });
          return fetch(url, init);
        },
      });
      const one = await spy.predictMedia<{ width: number; format: string }>('typed-node', join(dir, 'red.png'), {
        task: 'look',
      });
      assert.deepEqual([one.width, one.format, one.input_type], [20, 'png', 'image']);
      const raw = await spy.predictMedia<{ width: number; decoded_bytes: number }>('typed-node', join(dir, 'red.png'), {
        task: 'look',
        upload: 'raw',
      });
      assert.deepEqual([raw.width, raw.decoded_bytes], [20, png.length]);
      const jpeg = await spy.predictMedia<{ format: string }>('typed-node', readFileSync(join(MEDIA, 'red-box.jpg')), {
        task: 'look',
        format: 'jpeg',
        upload: 'raw',
      });
      assert.equal(jpeg.format, 'jpeg');
      const blob = await spy.predictMedia<{ height: number }>(
        'typed-node',
        new Blob([makePng(8, 4)], { type: 'image/png' }),
        { task: 'look', upload: 'raw' },
      );
      assert.equal(blob.height, 4);
      const ab = await spy.predictMedia<{ width: number }>('typed-node', new Uint8Array(png).buffer, { task: 'look' });
      assert.equal(ab.width, 20, 'an ArrayBuffer with no format: the gateway sniffs it');
      const tone = await spy.predictMedia<{ duration_s: number; sample_rate: number }>(
        'typed-node',
        join(dir, 'tone.wav'),
        { task: 'listen', upload: 'raw', timeoutMs: 30_000 },
      );
      assert.deepEqual([tone.duration_s, tone.sample_rate, tone.input_type], [1.5, 8000, 'audio']);
      assert.deepEqual(
        seen.map((s) => [s.type.startsWith('multipart/') ? 'multipart' : s.type, new URL(s.url).search]),
        [
          ['(set by fetch)', ''],
          ['image/png', '?task_type=look'],
          ['image/jpeg', '?task_type=look'],
          ['image/png', '?task_type=look'],
          ['(set by fetch)', ''],
          ['audio/wav', '?task_type=listen&timeout_ms=30000'],
        ],
      );
      // Bytes of no known type asked for raw go as multipart, and the gateway names them.
      const unknown = await rejectsWith(
        c.predictMedia('typed-node', Buffer.from('plain text, not a picture'), { task: 'look', upload: 'raw' }),
        'UNSUPPORTED_MEDIA_TYPE',
        415,
      );
      assert.match(unknown.message, /^input: /);
      const batch = await c.predictMediaBatch<{ format: string; width: number }>(
        'typed-node',
        [join(dir, 'red.png'), join(MEDIA, 'red-box.jpg'), readFileSync(join(MEDIA, 'red-box.gif'))],
        { task: 'look' },
      );
      assert.deepEqual([batch.total_sequences, batch.successful], [3, 3]);
      assert.deepEqual(
        batch.predictions.map((p) => [p.index, p.error ? p.error.code : p.format]),
        [
          [0, 'png'],
          [1, 'jpeg'],
          [2, 'gif'],
        ],
      );
    });

    it("predictMedia: bad bytes and bad fields are the gateway's error codes, raw or multipart", async () => {
      for (const upload of ['multipart', 'raw'] as const) {
        const cut = await rejectsWith(
          c.predictMedia('typed-node', join(dir, 'cut.png'), { task: 'look', upload }),
          'UNSUPPORTED_MEDIA_TYPE',
          415,
        );
        assert.match(cut.message, /truncated PNG/);
        const liar = await rejectsWith(
          c.predictMedia('typed-node', png, { task: 'look', format: 'gif', upload }),
          'UNSUPPORTED_MEDIA_TYPE',
          415,
        );
        assert.match(liar.message, /sent as image\/gif, but the bytes are png/);
        await rejectsWith(
          c.predictMedia('typed-node', join(dir, 'bad.wav'), { task: 'listen', upload }),
          'UNSUPPORTED_MEDIA_TYPE',
          415,
        );
        await rejectsWith(
          c.predictMedia('typed-node', join(dir, 'tone.wav'), { task: 'look', upload }),
          'UNSUPPORTED_MEDIA_TYPE',
          415,
        );
        const big = await rejectsWith(
          c.predictMedia('typed-node', makePng(1001, 1000), { task: 'look', format: 'png', upload }),
          'PAYLOAD_TOO_LARGE',
          413,
        );
        assert.match(big.message, /the limit is 1000000 pixels/);
        // The fields travel too (form fields, or the query of a raw body): a bad one is refused.
        await rejectsWith(
          c.predictMedia('typed-node', png, { task: 'look', format: 'png', upload, priority: 11 }),
          'INVALID_REQUEST',
          400,
        );
        await rejectsWith(
          c.predictMedia('typed-node', png, { task: 'no_such_task', format: 'png', upload }),
          'INVALID_REQUEST',
          400,
        );
      }
      const e = await rejectsWith(
        c.predictMediaBatch('typed-node', [png, join(dir, 'cut.png')], { task: 'look' }),
        'UNSUPPORTED_MEDIA_TYPE',
        415,
      );
      assert.equal((e.details as { index: number }).index, 1);
      // A missing file is the file system's error, before any request.
      await assert.rejects(c.predictMedia('typed-node', join(dir, 'no-such-file.png'), { task: 'look' }), {
        code: 'ENOENT',
      });
      // input and sequence both given: the gateway's answer, not a guess.
      await rejectsWith(c.predict('typed-node', { input: 'a', sequence: 'b', task: 'words' }), 'INVALID_REQUEST', 400);
    });

    it('bad input of each type is an IsomodelError with its code and status', async () => {
      const cases: [unknown, string, string, number, RegExp][] = [
        ['not base64!', 'look', 'INVALID_INPUT', 400, /not valid base64/],
        [await mediaFile(join(dir, 'cut.png')), 'look', 'UNSUPPORTED_MEDIA_TYPE', 415, /truncated PNG/],
        [mediaInput(png, 'jpeg'), 'look', 'UNSUPPORTED_MEDIA_TYPE', 415, /sent as image\/jpeg, but the bytes are png/],
        [mediaInput(makePng(1001, 1000)), 'look', 'PAYLOAD_TOO_LARGE', 413, /pixels; the limit is 1000000/],
        [mediaInput(Buffer.alloc(150_000, 1)), 'look', 'PAYLOAD_TOO_LARGE', 413, /the limit is 100000/],
        [await mediaFile(join(dir, 'bad.wav')), 'listen', 'UNSUPPORTED_MEDIA_TYPE', 415, /before the fmt chunk/],
        [{ patient_info: { age: 35 } }, 'patient', 'INVALID_INPUT', 400, /missing the required property "symptoms"/],
        ['x'.repeat(201), 'words', 'INPUT_TOO_LONG', 400, /201 characters; the limit is 200/],
        [{ a: [[1, 2, 3]], b: [0, 0] }, 'add', 'INVALID_INPUT', 400, /shape \[1, 3\]/],
        [[{ role: 'wizard', content: 'x' }], 'chat', 'INVALID_INPUT', 400, /role must be one of/],
      ];
      for (const [input, task, code, status, message] of cases) {
        const e = await rejectsWith(c.predict('typed-node', { task, input }), code, status);
        assert.match(e.message, message);
      }
    });

    it('predictBatch(model, {inputs}): items by index; a bad input refuses the batch and names its index', async () => {
      const b = (await c.predictBatch<{ width: number }>('typed-node', {
        task: 'look',
        inputs: [mediaInput(png), await mediaFile(join(dir, 'small.png'))],
      })) as TypedBatchPrediction<{ width: number }>;
      assert.deepEqual([b.total_sequences, b.successful, b.failed], [2, 2, 0]);
      assert.deepEqual(
        b.predictions.map((p) => [p.index, p.error ? p.error.code : p.width]),
        [
          [0, 20],
          [1, 8],
        ],
      );
      assert.ok(!JSON.stringify(b).includes(png.toString('base64').slice(0, 40)), 'no image echoed');
      const e = await rejectsWith(
        c.predictBatch('typed-node', {
          task: 'look',
          inputs: [mediaInput(png), await mediaFile(join(dir, 'cut.png'))],
        }),
        'UNSUPPORTED_MEDIA_TYPE',
        415,
      );
      assert.equal((e.details as { index: number }).index, 1);
      assert.match(e.message, /^inputs\[1\]: truncated PNG/);
    });

    it('jobs of typed records: submit, wait, results in order with per-record errors, list, cancel', async () => {
      const job = await c.submitJob(
        {
          model: 'typed-node',
          records: [
            { id: 'text', task: 'words', input: 'one two three', parameters: { k: 1 } },
            { id: 'img', task: 'look', input: mediaInput(png) },
            { id: 'cut', task: 'look', input: await mediaFile(join(dir, 'cut.png')) },
            { id: 'json', task: 'patient', input: { symptoms: ['a'] } },
            // An input that looks like the exchange wrapper reaches the model as it is (and fails as an object is not text).
            { id: 'wrapper-like', task: 'words', input: { input: 'hello' } },
            { id: 'chat', task: 'chat', input: CHAT.messages },
            'plain text for the default task',
          ],
          name: 'typed',
        },
        { idempotencyKey: 'typed-job-1' },
      );
      assert.deepEqual([job.total, job.name], [7, 'typed']);
      const final = await c.waitForJob(job.id, { timeoutMs: 60_000 });
      assert.deepEqual([final.status, final.successful, final.failed], ['succeeded', 5, 2]);
      const results = await c.jobResults<Record<string, unknown>>(job.id);
      assert.deepEqual(
        results.map((r) => [r.metadata.request_id, r.status, r.error?.code ?? null]),
        [
          ['text', 'success', null],
          ['img', 'success', null],
          ['cut', 'error', 'UNSUPPORTED_MEDIA_TYPE'],
          ['json', 'success', null],
          ['wrapper-like', 'error', 'INVALID_INPUT'],
          ['chat', 'success', null],
          ['seq7', 'success', null],
        ],
      );
      assert.deepEqual([results[0]!.output!.words, results[1]!.output!.width, results[6]!.output!.words], [3, 20, 6]);
      assert.equal((await c.jobResults(job.id, { from: 5, follow: false })).length, 2);
      assert.ok((await c.jobs({ model: 'typed-node' })).jobs.some((j) => j.id === job.id));
      // The Idempotency-Key is sent: reused with another body, it is a conflict.
      await rejectsWith(
        c.submitJob({ model: 'typed-node', records: ['x'] }, { idempotencyKey: 'typed-job-1' }),
        'IDEMPOTENCY_CONFLICT',
        409,
      );
      assert.equal((await c.cancelJob(job.id)).status, 'succeeded');
      await rejectsWith(c.job('no-such-job'), 'NOT_FOUND', 404);
      await rejectsWith(c.jobResults('no-such-job'), 'NOT_FOUND', 404);
    });
  });

  describe('Python', () => {
    it('predicts every type (input=, media_input from a path or bytes), raises each bad input, runs typed jobs', async () => {
      const script = `
import json, sys
sys.path.insert(0, ${JSON.stringify(PY_CLIENT_DIR)})
from isomodel_client import IsomodelClient, IsomodelError, ERROR_CODES, media_input
url, d, server_codes, media = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4]
c = IsomodelClient(url)
out = {"missing_codes": [x for x in server_codes if x not in ERROR_CODES]}
out["text"] = c.predict("typed-node", input="hello big world", task="words")
out["default_task"] = c.predict("typed-node", "two words")["words"]
out["json"] = c.predict("typed-node", input={"symptoms": ["a", "b"], "patient_info": {"age": 35}}, task="patient")
out["tensor"] = c.predict("typed-node", input={"a": [[1, 2], [3, 4]], "b": [10, 20]}, task="add")["sums"]
out["image_path"] = c.predict("typed-node", input=media_input(d + "/red.png"), task="look")
out["image_bytes"] = c.predict("typed-node", input=media_input(open(d + "/red.png", "rb").read()), task="look")["width"]
out["audio"] = c.predict("typed-node", input=media_input(d + "/tone.wav"), task="listen")["duration_s"]
out["chat"] = c.predict("typed-node", input=[{"role": "user", "content": "hi there"}], task="chat")["text"]
out["batch"] = [[p["index"], p["width"]] for p in c.predict_batch("typed-node", inputs=[media_input(d + "/red.png"), media_input(d + "/small.png")], task="look")["predictions"]]
try:
    c.predict_batch("typed-node", inputs=[media_input(d + "/red.png"), media_input(d + "/cut.png")], task="look")
except IsomodelError as e:
    out["batch_error"] = [e.code, e.status, e.details.get("index")]
out["rc"] = c.predict("revcomp", "AACG")
# What each media call sent: its query and content type.
sent, exchange = [], c._exchange
def spy(method, path, body=None, extra_headers=None):
    sent.append([path.partition("?")[2], getattr(body, "content_type", "application/json").split(";")[0]])
    return exchange(method, path, body, extra_headers)
c._exchange = spy
out["media_multipart"] = c.predict_media("typed-node", d + "/red.png", task="look")
out["media_raw"] = c.predict_media("typed-node", d + "/tone.wav", task="listen", upload="raw", timeout_ms=30000)
out["media_bytes_raw"] = c.predict_media("typed-node", open(d + "/red.png", "rb").read(), task="look", format="png", upload="raw")["width"]
c._exchange = exchange
out["media_sent"] = sent
out["media_batch"] = [[p["index"], p["format"]] for p in c.predict_media_batch("typed-node", [d + "/red.png", media + "/red-box.jpg", open(media + "/red-box.gif", "rb").read()], task="look")["predictions"]]
media_errors = {}
for upload in ("multipart", "raw"):
    for label, task, source, fmt, extra in [
        ("truncated", "look", d + "/cut.png", None, {}),
        ("liar", "look", open(d + "/red.png", "rb").read(), "gif", {}),
        ("wav_header", "listen", d + "/bad.wav", None, {}),
        ("unknown", "look", b"plain text, not a picture", None, {}),
        ("priority", "look", d + "/red.png", None, {"priority": 11}),
    ]:
        try:
            c.predict_media("typed-node", source, task=task, format=fmt, upload=upload, **extra)
            media_errors[upload + ":" + label] = None
        except IsomodelError as e:
            media_errors[upload + ":" + label] = [e.code, e.status]
try:
    c.predict_media_batch("typed-node", [d + "/red.png", d + "/cut.png"], task="look")
except IsomodelError as e:
    media_errors["batch"] = [e.code, e.status, e.details.get("index")]
out["media_errors"] = media_errors
try:
    c.predict("typed-node", "b", input="a", task="words")
except IsomodelError as e:
    out["both"] = [e.code, e.status]
errors = {}
for label, task, value in [
    ("base64", "look", "not base64!"),
    ("truncated", "look", media_input(d + "/cut.png")),
    ("big", "look", media_input(b"\x01" * 150000)),
    ("wav_header", "listen", media_input(d + "/bad.wav")),
    ("schema", "patient", {"patient_info": {"age": 35}}),
    ("too_long", "words", "x" * 201),
]:
    try:
        c.predict("typed-node", input=value, task=task)
        errors[label] = None
    except IsomodelError as e:
        errors[label] = [e.code, e.status]
out["errors"] = errors
job = c.submit_job("typed-node", records=[
    {"id": "t", "task": "words", "input": "one two three"},
    {"id": "img", "task": "look", "input": media_input(d + "/red.png")},
    {"id": "bad", "task": "listen", "input": media_input(d + "/bad.wav")},
    {"id": "wrapper-like", "task": "words", "input": {"input": "hello"}},
    "plain text",
], name="py-typed")
out["job"] = c.wait_job(job["id"], timeout=60)
out["results"] = [[r["metadata"]["request_id"], r["status"], (r.get("error") or {}).get("code")] for r in c.job_results(job["id"])]
out["listed"] = any(j["id"] == job["id"] for j in c.jobs(model="typed-node")["jobs"])
print(json.dumps(out))
`;
      const { stdout } = await run(
        PYTHON,
        ['-c', script, h.url, dir, JSON.stringify(Object.keys(ERROR_STATUS)), MEDIA],
        { timeout: 120_000 },
      );
      const out = JSON.parse(stdout);
      assert.deepEqual(out.missing_codes, []);
      assert.deepEqual([out.text.words, out.text.input_type, out.text.input_size], [3, 'text', 15]);
      assert.equal(out.default_task, 2);
      assert.deepEqual([out.json.symptoms, out.json.age], [2, 35]);
      assert.deepEqual(out.tensor, [33, 37]);
      assert.deepEqual(
        [out.image_path.format, out.image_path.width, out.image_path.height, out.image_path.decoded_bytes],
        ['png', 20, 10, png.length],
      );
      assert.equal(out.image_bytes, 20);
      assert.equal(out.audio, 1.5);
      assert.equal(out.chat, 'you said: hi there');
      assert.deepEqual(out.batch, [
        [0, 20],
        [1, 8],
      ]);
      assert.deepEqual(out.batch_error, ['UNSUPPORTED_MEDIA_TYPE', 415, 1]);
      assert.deepEqual([out.rc.reverse_complement, out.rc.sequence_length], ['CGTT', 4]);
      assert.deepEqual(
        [out.media_multipart.width, out.media_multipart.format, out.media_multipart.input_type],
        [20, 'png', 'image'],
      );
      assert.deepEqual(
        [out.media_raw.duration_s, out.media_raw.sample_rate, out.media_raw.input_type],
        [1.5, 8000, 'audio'],
      );
      assert.equal(out.media_bytes_raw, 20);
      assert.deepEqual(out.media_sent, [
        ['', 'multipart/form-data'],
        ['task_type=listen&timeout_ms=30000', 'audio/wav'],
        ['task_type=look', 'image/png'],
      ]);
      assert.deepEqual(out.media_batch, [
        [0, 'png'],
        [1, 'jpeg'],
        [2, 'gif'],
      ]);
      const want: Record<string, unknown> = { batch: ['UNSUPPORTED_MEDIA_TYPE', 415, 1] };
      for (const upload of ['multipart', 'raw']) {
        Object.assign(want, {
          [`${upload}:truncated`]: ['UNSUPPORTED_MEDIA_TYPE', 415],
          [`${upload}:liar`]: ['UNSUPPORTED_MEDIA_TYPE', 415],
          [`${upload}:wav_header`]: ['UNSUPPORTED_MEDIA_TYPE', 415],
          [`${upload}:unknown`]: ['UNSUPPORTED_MEDIA_TYPE', 415],
          [`${upload}:priority`]: ['INVALID_REQUEST', 400],
        });
      }
      assert.deepEqual(out.media_errors, want);
      assert.deepEqual(out.both, ['INVALID_REQUEST', 400]);
      assert.deepEqual(out.errors, {
        base64: ['INVALID_INPUT', 400],
        truncated: ['UNSUPPORTED_MEDIA_TYPE', 415],
        big: ['PAYLOAD_TOO_LARGE', 413],
        wav_header: ['UNSUPPORTED_MEDIA_TYPE', 415],
        schema: ['INVALID_INPUT', 400],
        too_long: ['INPUT_TOO_LONG', 400],
      });
      assert.deepEqual([out.job.status, out.job.total, out.job.failed], ['succeeded', 5, 2]);
      assert.deepEqual(out.results, [
        ['t', 'success', null],
        ['img', 'success', null],
        ['bad', 'error', 'UNSUPPORTED_MEDIA_TYPE'],
        ['wrapper-like', 'error', 'INVALID_INPUT'],
        ['seq5', 'success', null],
      ]);
      assert.equal(out.listed, true);
    });

    it('has --input and --file on its command line', async () => {
      const cli = join(PY_CLIENT_DIR, 'isomodel_client.py');
      const json = JSON.parse(
        (
          await run(PYTHON, [
            cli,
            '--url',
            h.url,
            'predict',
            'typed-node',
            '--task',
            'patient',
            '--input',
            '{"symptoms": ["a"]}',
          ])
        ).stdout,
      );
      assert.equal(json.symptoms, 1);
      const one = JSON.parse(
        (
          await run(PYTHON, [
            cli,
            '--url',
            h.url,
            'predict',
            'typed-node',
            '--task',
            'look',
            '--file',
            join(dir, 'red.png'),
          ])
        ).stdout,
      );
      assert.deepEqual([one.width, one.input_type], [20, 'image']);
      const two = JSON.parse(
        (
          await run(PYTHON, [
            cli,
            '--url',
            h.url,
            'predict',
            'typed-node',
            '--task',
            'look',
            '--file',
            join(dir, 'red.png'),
            '--file',
            join(dir, 'small.png'),
          ])
        ).stdout,
      );
      assert.deepEqual(
        two.predictions.map((p: any) => [p.index, p.width]),
        [
          [0, 20],
          [1, 8],
        ],
      );
      for (const upload of ['multipart', 'raw']) {
        const sent = JSON.parse(
          (
            await run(PYTHON, [
              cli,
              '--url',
              h.url,
              'predict',
              'typed-node',
              '--task',
              'listen',
              '--upload',
              upload,
              '--file',
              join(dir, 'tone.wav'),
            ])
          ).stdout,
        );
        assert.deepEqual([sent.duration_s, sent.input_type], [1.5, 'audio'], upload);
      }
      const many = JSON.parse(
        (
          await run(PYTHON, [
            cli,
            '--url',
            h.url,
            'predict',
            'typed-node',
            '--task',
            'look',
            '--upload',
            'multipart',
            '--file',
            join(dir, 'red.png'),
            '--file',
            join(dir, 'small.png'),
          ])
        ).stdout,
      );
      assert.deepEqual(
        many.predictions.map((p: any) => [p.index, p.width]),
        [
          [0, 20],
          [1, 8],
        ],
      );
      await assert.rejects(
        run(PYTHON, [
          cli,
          '--url',
          h.url,
          'predict',
          'typed-node',
          '--task',
          'listen',
          '--upload',
          'raw',
          '--file',
          join(dir, 'bad.wav'),
        ]),
        (e: any) => {
          assert.equal(e.code, 1);
          assert.equal(JSON.parse(e.stderr).error.code, 'UNSUPPORTED_MEDIA_TYPE');
          return true;
        },
      );
      await assert.rejects(
        run(PYTHON, [cli, '--url', h.url, 'predict', 'typed-node', '--task', 'listen', '--file', join(dir, 'bad.wav')]),
        (e: any) => {
          assert.equal(e.code, 1);
          assert.equal(JSON.parse(e.stderr).error.code, 'UNSUPPORTED_MEDIA_TYPE');
          return true;
        },
      );
    });
  });
});
