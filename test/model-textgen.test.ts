// models/textgen through a real gateway and its real Node worker: held-out perplexity (the
// training report's figure, and a bound), deterministic generation given a seed (the answers the
// training script recorded), streaming word by word through the native SSE route (Accept:
// text/event-stream) for the text and chat tasks, bounded options, and a client that leaves
// mid-stream. Also: retraining writes the shipped files byte for byte (where fortunes-min is installed).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { BUILTIN_MODELS_DIR, PACKAGE_ROOT } from '../src/paths.js';
import { startGateway, type Harness } from './helpers.js';
import { readEvents as readSse, type SseEvent } from './sse.js';

const PKG = join(BUILTIN_MODELS_DIR, 'textgen');
const REPORT = JSON.parse(readFileSync(join(PKG, 'training_report.json'), 'utf8'));

/** The events of a text/event-stream body, each data parsed as JSON; leaves once `enough` says so. */
async function readEvents(
  res: Response,
  enough?: (e: { event: string | undefined; data: any }[]) => boolean,
): Promise<{ event: string | undefined; data: any }[]> {
  const parsed = (events: SseEvent[]) => events.map((e) => ({ event: e.event, data: JSON.parse(e.data) }));
  return parsed(await readSse(res, enough && ((events) => enough(parsed(events))), { cancel: true }));
}

describe('textgen model', () => {
  let h: Harness;
  const predict = (body: Record<string, unknown>) => h.post('/models/textgen/predict', body);
  const sse = (body: Record<string, unknown>, signal?: AbortSignal) =>
    fetch(`${h.url}/models/textgen/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
      body: JSON.stringify(body),
      signal,
    });

  before(async () => {
    h = await startGateway(['textgen']);
    assert.equal(h.gw.registry.status('textgen'), 'ready', h.gw.registry.lastError('textgen') ?? '');
  });
  after(async () => h.close());

  it('held-out fortunes: the perplexity of the training report, and below 6 per character (uniform: 99)', async (t) => {
    const fortunes = readFileSync(join(PKG, 'eval', 'test_fortunes.txt'), 'utf8')
      .replace(/\n$/, '')
      .split('\n%\n');
    assert.equal(fortunes.length, REPORT.test.documents);
    const r = await h.post('/models/textgen/predict/batch', {
      task_type: 'perplexity',
      inputs: fortunes,
      options: { as_fortune: true },
    });
    assert.equal(r.status, 200, JSON.stringify(r.body).slice(0, 400));
    let nats = 0;
    let chars = 0;
    for (const p of r.body.data.predictions) {
      nats += p.log_prob;
      chars += p.chars;
    }
    const bits = -nats / Math.LN2 / chars;
    t.diagnostic(
      `held-out: ${bits.toFixed(4)} bits per character, perplexity ${(2 ** bits).toFixed(3)}, ${chars} characters in ${fortunes.length} fortunes`,
    );
    assert.equal(chars, REPORT.test.symbols);
    assert.ok(Math.abs(nats - REPORT.test.log_prob_nats) < 1e-4, `${nats} vs ${REPORT.test.log_prob_nats}`);
    assert.ok(2 ** bits < 6, `perplexity ${2 ** bits}`);
    // Scoring without the end of the fortune: fewer symbols, and text the model knows scores better than noise.
    const one = await predict({ task_type: 'perplexity', input: 'A fool and his money are soon parted.' });
    const noise = await predict({ task_type: 'perplexity', input: 'qzx vvk jjw pqq xzq kkv wqz' });
    assert.equal(one.body.data.chars, 37);
    assert.ok(
      one.body.data.perplexity < noise.body.data.perplexity / 3,
      `${one.body.data.perplexity} vs ${noise.body.data.perplexity}`,
    );
  });

  it('generation is deterministic given seed, temperature and max_tokens (the recorded answers)', async () => {
    const { vectors } = JSON.parse(readFileSync(join(PKG, 'test_vectors.json'), 'utf8'));
    for (const v of vectors) {
      const r = await predict({ task_type: v.task, input: v.prompt, options: v.options });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.deepEqual(
        [r.body.data.text, r.body.data.finish_reason, r.body.data.usage.completion_tokens],
        [v.output.text, v.output.finish_reason, v.output.tokens],
      );
      assert.equal(r.body.data.seed, v.options.seed);
      assert.equal(r.body.data.usage.prompt_tokens, v.prompt.length);
    }
    const a = await predict({ input: 'The ', options: { seed: 11, max_tokens: 80 } });
    const b = await predict({ input: 'The ', options: { seed: 12, max_tokens: 80 } });
    assert.notEqual(a.body.data.text, b.body.data.text);
    // Without a seed one is drawn and returned: passing it back replays the text.
    const free = await predict({ input: 'The ', options: { max_tokens: 60 } });
    assert.ok(Number.isInteger(free.body.data.seed));
    const replay = await predict({ input: 'The ', options: { max_tokens: 60, seed: free.body.data.seed } });
    assert.equal(replay.body.data.text, free.body.data.text);
    // Temperature 0 takes the most likely character: the seed does not matter.
    const g1 = await predict({ input: 'Q: ', options: { temperature: 0, seed: 1, max_tokens: 50 } });
    const g2 = await predict({ input: 'Q: ', options: { temperature: 0, seed: 2, max_tokens: 50 } });
    assert.equal(g1.body.data.text, g2.body.data.text);
  });

  it('bounded: max_tokens caps the characters; bad options are refused with INVALID_REQUEST', async () => {
    for (const n of [1, 7, 40]) {
      const r = await predict({ input: 'A ', options: { seed: 3, max_tokens: n } });
      assert.ok(r.body.data.usage.completion_tokens <= n && r.body.data.text.length <= n, JSON.stringify(r.body.data));
    }
    const long = await predict({ input: 'A ', options: { seed: 3, max_tokens: 2000, temperature: 1 } });
    assert.ok(['stop', 'length'].includes(long.body.data.finish_reason));
    assert.ok(long.body.data.usage.completion_tokens <= 2000);
    for (const options of [
      { temperature: 2.5 },
      { temperature: -0.1 },
      { temperature: '1' },
      { max_tokens: 2001 },
      { max_tokens: 0 },
      { max_tokens: 1.5 },
      { seed: -1 },
      { seed: 2 ** 32 },
      { seed: 'x' },
    ]) {
      const r = await predict({ input: 'A ', options });
      assert.deepEqual([r.status, r.body.error?.code], [400, 'INVALID_REQUEST'], JSON.stringify(options));
    }
    const tooLong = await predict({ input: 'x'.repeat(2001) });
    assert.deepEqual([tooLong.status, tooLong.body.error.code], [400, 'INPUT_TOO_LONG']);
  });

  it('streams word by word through the native SSE route; the chunks make the final text, as without streaming', async () => {
    const body = { input: 'A man ', options: { seed: 6, max_tokens: 300, temperature: 0.8 } }; // runs to max_tokens
    const res = await sse(body);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    const events = await readEvents(res);
    const chunks = events.filter((e) => e.event === 'chunk');
    assert.ok(chunks.length >= 20, `${chunks.length} chunks`);
    for (const c of chunks) {
      assert.equal(c.data.index, 0);
      assert.match(c.data.data.text, /^[^\s]*\s?$/, 'a chunk is one word and the whitespace after it');
      assert.ok(c.data.data.text.length > 0);
    }
    const last = events.at(-1)!;
    assert.equal(last.event, 'result');
    assert.equal(last.data.data.finish_reason, 'length');
    assert.deepEqual(
      chunks.map((c) => c.data.data.text),
      last.data.data.text.split(/(?<=\s)/),
      'one chunk per word, in order',
    );
    const plain = await predict(body);
    assert.equal(plain.body.data.text, last.data.data.text);
    assert.equal(plain.body.data.finish_reason, last.data.data.finish_reason);
  });

  it('chat: answers the last user message, streamed too; a conversation without one is refused', async () => {
    const messages = [
      { role: 'system', content: 'You are a fortune cookie.' },
      { role: 'user', content: 'What is the meaning of life?' },
      { role: 'assistant', content: '42' },
      { role: 'user', content: 'Tell me a riddle.' },
    ];
    const r = await predict({ task_type: 'chat', input: { messages }, options: { seed: 9, max_tokens: 200 } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.data.input_type, 'chat');
    assert.ok(r.body.data.text.length > 0);
    assert.equal(r.body.data.usage.prompt_tokens, 'Tell me a riddle.'.length);
    // Only the last user message steers it: the same message alone gives the same reply.
    const alone = await predict({
      task_type: 'chat',
      input: { messages: [{ role: 'user', content: 'Tell me a riddle.' }] },
      options: { seed: 9, max_tokens: 200 },
    });
    assert.equal(alone.body.data.text, r.body.data.text);
    const events = await readEvents(
      await sse({ task_type: 'chat', input: { messages }, options: { seed: 9, max_tokens: 200 } }),
    );
    assert.equal(
      events
        .filter((e) => e.event === 'chunk')
        .map((e) => e.data.data.text)
        .join(''),
      r.body.data.text,
    );
    const none = await predict({ task_type: 'chat', input: { messages: [{ role: 'system', content: 'hi' }] } });
    assert.deepEqual([none.status, none.body.error.code], [400, 'INVALID_INPUT']);
    assert.match(none.body.message, /no user message/);
  });

  it('a client that leaves mid-stream does not stop the model serving others', async () => {
    const ac = new AbortController();
    const res = await sse({ input: 'A ', options: { seed: 1, max_tokens: 2000, temperature: 1.5 } }, ac.signal);
    await readEvents(res, (e) => e.length >= 2).catch(() => []);
    ac.abort();
    const r = await predict({ input: 'The ', options: { seed: 2, max_tokens: 20 } });
    assert.equal(r.status, 200);
    assert.ok(r.body.data.text.length > 0);
  });
});

// The training script rebuilds everything the package ships from fortunes-min: the files must be
// the shipped ones byte for byte (the report included: its figures are the card's).
const missingFortunes = REPORT.data.sources.map((s: { file: string }) => s.file).filter((f: string) => !existsSync(f));

describe('textgen training', () => {
  it(
    'a retrain writes the shipped corpus, model, test fortunes, vectors and report, byte for byte',
    {
      skip: missingFortunes.length
        ? `fortunes-min not installed (apt-get install fortunes-min): ${missingFortunes.join(', ')}`
        : false,
      timeout: 600_000,
    },
    async (t) => {
      for (const s of REPORT.data.sources) {
        assert.equal(
          createHash('sha256').update(readFileSync(s.file)).digest('hex'),
          s.sha256,
          `${s.file} is not the file the shipped model was trained on`,
        );
      }
      const out = mkdtempSync(join(tmpdir(), 'isomodel-train-textgen-'));
      try {
        const started = Date.now();
        await promisify(execFile)(
          process.execPath,
          [join(PACKAGE_ROOT, 'training', 'train_textgen.mjs'), '--out', out],
          { timeout: 600_000, maxBuffer: 16 * 1024 * 1024 },
        );
        t.diagnostic(`train_textgen.mjs: ${((Date.now() - started) / 1000).toFixed(0)} s`);
        for (const f of ['data/corpus.txt', 'data/model.json', 'eval/test_fortunes.txt', 'test_vectors.json']) {
          assert.equal(readFileSync(join(out, f), 'utf8'), readFileSync(join(PKG, f), 'utf8'), f);
        }
        // The report records the Node version that wrote it; everything else must match.
        const report = JSON.parse(readFileSync(join(out, 'training_report.json'), 'utf8'));
        assert.deepEqual({ ...report, node: undefined }, { ...REPORT, node: undefined });
      } finally {
        rmSync(out, { recursive: true, force: true });
      }
    },
  );
});
