// The built-in `dna-lm` model through a real gateway: analyze against an independent reading of
// its counts (data/model.json), generation (seeded, streamed over SSE, temperature, lengths), bad
// options, and training/train_dna_lm.py reproducing the shipped files byte for byte (skipped, with
// the reason, where ../shared/data is not there).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { BUILTIN_MODELS_DIR, PACKAGE_ROOT } from '../src/paths.js';
import { mulberry32 } from '../src/util/prng.js';
import { startGateway, type Harness } from './helpers.js';

const PKG = join(BUILTIN_MODELS_DIR, 'dna-lm');
const DATA_DIR = join(dirname(PACKAGE_ROOT), 'shared', 'data');
const run = promisify(execFile);

interface LmFile {
  order: number;
  alpha: number;
  counts: Record<string, number[]>[];
}
const LM = JSON.parse(readFileSync(join(PKG, 'data', 'model.json'), 'utf8')) as LmFile;
const IUPAC: Record<string, string> = {
  A: 'A',
  C: 'C',
  G: 'G',
  T: 'T',
  R: 'AG',
  Y: 'CT',
  S: 'CG',
  W: 'AT',
  K: 'GT',
  M: 'AC',
  B: 'CGT',
  D: 'AGT',
  H: 'ACT',
  V: 'ACG',
  N: 'ACGT',
};

/** P(next base) after a context, straight from the counts and the smoothing formula. */
function probs(context: string): number[] {
  const j = Math.min(context.length, LM.order);
  const row = LM.counts[j]![context.slice(context.length - j)] ?? [0, 0, 0, 0];
  const total = row.reduce((a, b) => a + b, 0) + 4 * LM.alpha;
  return row.map((n) => (n + LM.alpha) / total);
}
/** Per-base log-likelihoods; an ambiguity letter scores its set and restarts the context. */
function reference(seq: string): number[] {
  let ctx = '';
  return [...seq].map((ch) => {
    const p = probs(ctx);
    const ll = Math.log([...IUPAC[ch]!].reduce((a, b) => a + p['ACGT'.indexOf(b)]!, 0));
    ctx = IUPAC[ch]!.length === 1 ? (ctx + ch).slice(-LM.order) : '';
    return ll;
  });
}

interface SseEvent {
  event: string;
  data: any;
}
async function sse(url: string, body: unknown): Promise<SseEvent[]> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/);
  const text = await res.text();
  return text
    .split('\n\n')
    .filter((b) => b.trim())
    .map((block) => {
      const event = /^event: (.*)$/m.exec(block)![1]!;
      const data = JSON.parse(/^data: (.*)$/m.exec(block)![1]!);
      return { event, data };
    });
}

describe('dna-lm model', () => {
  let h: Harness;
  before(async () => {
    h = await startGateway(['dna-lm']);
  });
  after(async () => h?.close());

  const predict = async (sequence: string, task: string, options: Record<string, unknown> = {}): Promise<any> => {
    const r = await h.post('/models/dna-lm/predict', { sequence, task_type: task, options });
    assert.equal(r.status, 200, JSON.stringify(r.body).slice(0, 1000));
    return r.body.data;
  };

  it('serves generate_sequence and analyze', async () => {
    const r = await h.get('/models/dna-lm/model/info');
    assert.deepEqual(r.body.data.tasks, ['generate_sequence', 'analyze']);
  });

  it('analyze gives the per-position log-likelihoods of the shipped counts, and their mean as the score', async () => {
    const rand = mulberry32(77);
    const cases = [
      ...Array.from({ length: 10 }, () =>
        Array.from({ length: 20 + Math.floor(rand() * 300) }, () => 'ACGT'[Math.floor(rand() * 4)]).join(''),
      ),
      'A',
      'ACGTNNACGTRYACGT',
      'TTGACAATTAATCATCGAACTAGTTAACTAGTACGCAAGTTCACGTAAAAAGGGTAT',
    ];
    const r = await h.post('/models/dna-lm/predict/batch', { sequences: cases, task_type: 'analyze' });
    assert.equal(r.status, 200, JSON.stringify(r.body).slice(0, 500));
    r.body.data.predictions.forEach((o: any, i: number) => {
      const ref = reference(cases[i]!);
      assert.equal(o.log_likelihoods.length, cases[i]!.length);
      o.log_likelihoods.forEach((x: number, k: number) =>
        assert.ok(Math.abs(x - ref[k]!) < 1e-12, `s${i}[${k}]: ${x} vs ${ref[k]}`),
      );
      const mean = ref.reduce((a, b) => a + b, 0) / ref.length;
      assert.ok(Math.abs(o.sequence_score - mean) < 1e-12);
      assert.ok(Math.abs(o.perplexity - Math.exp(-mean)) < 1e-9);
      assert.ok(Math.abs(o.bits_per_base - -mean / Math.LN2) < 1e-12);
      assert.equal(o.order, LM.order);
    });
    const n = r.body.data.predictions[11].log_likelihoods;
    assert.ok(Math.abs(n[4]) < 1e-12, 'N stands for every base: probability 1');
  });

  it('generate_sequence: the prompt continued, reproducible from its seed, with honest confidence scores', async () => {
    const a = await predict('ATGCGATCG', 'generate_sequence', { length: 200, seed: 12345 });
    const b = await predict('ATGCGATCG', 'generate_sequence', { length: 200, seed: 12345 });
    const { processing_time: _ta, ...aOut } = a;
    const { processing_time: _tb, ...bOut } = b;
    assert.deepEqual(aOut, bOut);
    assert.equal(a.seed, 12345);
    assert.equal(a.sequence, a.generated_sequence);
    assert.ok(a.sequence.startsWith('ATGCGATCG'));
    assert.equal(a.continuation.length, 200);
    assert.equal(a.sequence, 'ATGCGATCG' + a.continuation);
    assert.match(a.continuation, /^[ACGT]+$/);
    let ctx = 'ATGCGATCG'.slice(-LM.order);
    let ll = 0;
    [...a.continuation].forEach((base: string, k: number) => {
      const p = probs(ctx)['ACGT'.indexOf(base)]!;
      assert.ok(Math.abs(a.confidence_scores[k] - p) < 1e-12, `base ${k}`);
      ll += Math.log(p);
      ctx = (ctx + base).slice(-LM.order);
    });
    assert.ok(Math.abs(a.log_likelihood - ll) < 1e-9);
    const c = await predict('ATGCGATCG', 'generate_sequence', { length: 200, seed: 54321 });
    assert.notEqual(c.continuation, a.continuation);
    const unseeded = await predict('ATG', 'generate_sequence', { length: 10 });
    assert.ok(Number.isInteger(unseeded.seed));
    assert.equal(
      (await predict('ATG', 'generate_sequence', { length: 10, seed: unseeded.seed })).continuation,
      unseeded.continuation,
    );
    const whole = await predict('ATGCG', 'generate_sequence', { total_length: 300, length: 5, seed: 1 });
    assert.equal(whole.length, 300);
    assert.equal((await predict('ATGCG', 'generate_sequence', { length: 0 })).sequence, 'ATGCG');
  });

  it('a low temperature follows the most likely base', async () => {
    const g = await predict('ACGTTGCA', 'generate_sequence', { length: 2000, seed: 3, temperature: 0.05 });
    let ctx = 'ACGTTGCA'.slice(-LM.order);
    let argmax = 0;
    for (const base of g.continuation as string) {
      const p = probs(ctx);
      if (p.indexOf(Math.max(...p)) === 'ACGT'.indexOf(base)) argmax++;
      ctx = (ctx + base).slice(-LM.order);
    }
    assert.ok(argmax / 2000 > 0.9, `${argmax} of 2000 bases were the most likely one`);
    const hot = await predict('ACGTTGCA', 'generate_sequence', { length: 2000, seed: 3, temperature: 1 });
    assert.ok(hot.mean_log_likelihood < g.mean_log_likelihood, 'sampling at temperature 1 picks less likely bases');
  });

  it('streams the continuation as SSE text chunks, then the final output', async () => {
    const events = await sse(`${h.url}/models/dna-lm/predict`, {
      sequence: 'ATGCGATCG',
      task_type: 'generate_sequence',
      stream: true,
      options: { length: 95, seed: 9, chunk_size: 20 },
    });
    const chunks = events.filter((e) => e.event === 'chunk');
    assert.deepEqual(
      chunks.map((c) => c.data.data.text.length),
      [20, 20, 20, 20, 15],
    );
    const result = events.find((e) => e.event === 'result')!;
    assert.equal(chunks.map((c) => c.data.data.text).join(''), result.data.data.continuation);
    assert.equal(
      result.data.data.continuation,
      (await predict('ATGCGATCG', 'generate_sequence', { length: 95, seed: 9 })).continuation,
      'streamed or not: the same bases',
    );
  });

  it('analyze takes up to 100 000 bases, and refuses more', async () => {
    const long = 'ACGTTGCAGGCTAACGTA'.repeat(5556).slice(0, 100_000);
    const o = await predict(long, 'analyze');
    assert.equal(o.log_likelihoods.length, 100_000);
    const r = await h.post('/models/dna-lm/predict', { sequence: long + 'A', task_type: 'analyze' });
    assert.equal(r.status, 400, JSON.stringify(r.body).slice(0, 300));
  });

  it('bad options are 400 INVALID_REQUEST', async () => {
    for (const [options, why] of [
      [{ length: 10001 }, /length/],
      [{ temperature: 0 }, /temperature/],
      [{ seed: -1 }, /seed/],
      [{ total_length: 2 }, /total_length/],
      [{ chunk_size: 0 }, /chunk_size/],
    ] as const) {
      const r = await h.post('/models/dna-lm/predict', { sequence: 'ATGCG', task_type: 'generate_sequence', options });
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.equal(r.body.error.code, 'INVALID_REQUEST');
      assert.match(r.body.message, why);
    }
  });
});

describe('dna-lm training', () => {
  const data = join(DATA_DIR, 'statlog_splice_train.tsv');
  const skip = existsSync(data) ? false : `training data not found at ${DATA_DIR}`;
  it(
    'training/train_dna_lm.py writes the shipped model.json and training_report.json byte for byte',
    { skip },
    async () => {
      const out = mkdtempSync(join(tmpdir(), 'isomodel-train-dna-lm-'));
      try {
        await run(
          '/usr/bin/python3',
          [join(PACKAGE_ROOT, 'training', 'train_dna_lm.py'), '--data', DATA_DIR, '--out', out],
          { timeout: 300_000 },
        );
        assert.equal(
          readFileSync(join(out, 'data', 'model.json'), 'utf8'),
          readFileSync(join(PKG, 'data', 'model.json'), 'utf8'),
        );
        assert.equal(
          readFileSync(join(out, 'training_report.json'), 'utf8'),
          readFileSync(join(PKG, 'training_report.json'), 'utf8'),
        );
        const report = JSON.parse(readFileSync(join(PKG, 'training_report.json'), 'utf8'));
        assert.equal(report.chosen.order, LM.order);
        assert.ok(
          report.perplexity_per_base.test < 4 && report.perplexity_per_base.test > 3,
          'weak, and the card says so',
        );
      } finally {
        rmSync(out, { recursive: true, force: true });
      }
    },
  );
});
