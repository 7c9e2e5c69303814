#!/usr/bin/env node
// Trains and evaluates models/textgen: a character n-gram model (interpolated Kneser-Ney, see
// models/textgen/ngram.mjs) of the fortunes in Debian's fortunes-min package.
//
//   node training/train_textgen.mjs                 # full: order chosen on dev, fit, evaluation
//   node training/train_textgen.mjs --out /tmp/t    # the same, written elsewhere
//
// Data: /usr/share/games/fortunes/{fortunes,literature,riddles} (fortunes-min, BSD licence, see
// models/textgen/data/COPYRIGHT.fortunes-min). Each fortune is one document; overstrikes are
// removed and duplicates dropped. A fortune goes to a split by the sha256 of its text: 10 % test,
// 10 % dev, 80 % train. The dev split chooses the order; the shipped model is fitted on train + dev
// and the test split is scored once, by it. Everything is deterministic: the counts are integers,
// the generator samples in the report use fixed seeds, and floats are rounded in the JSON files.
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { execFileSync } from 'node:child_process';
import {
  ALPHABET,
  advance,
  distribution,
  fit,
  generate,
  logProb,
  normalise,
  probability,
  startContext,
} from '../models/textgen/ngram.mjs';
import { parseCorpus, serialiseCorpus } from '../models/textgen/corpus.mjs';

const ROOT = dirname(dirname(fileURLToPath(import.meta.url)));
const PACKAGE = join(ROOT, 'models', 'textgen');
const FILES = ['fortunes', 'literature', 'riddles'];
const ORDERS = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
const SPLIT_SALT = 'isomodel-textgen-split-1:';
// Generation defaults (the worker's too: model.json carries them).
const DEFAULTS = { temperature: 0.7, max_tokens: 256 };
const SAMPLE_SEEDS = 40;
const COPY_WINDOW = 30;
const TOLERANCE = 0.01; // bits per symbol

const { values: args } = parseArgs({
  options: {
    out: { type: 'string', default: PACKAGE },
    'fortune-dir': { type: 'string', default: '/usr/share/games/fortunes' },
  },
});
const sha256 = (data) => createHash('sha256').update(data).digest('hex');
const round = (x, digits = 4) => Number(x.toFixed(digits));

function packageVersion(pkg) {
  try {
    return execFileSync('dpkg-query', ['-W', '-f', '${Version}', pkg], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

/** The fortunes of one file: overstrikes ("X\bX", "_\bX") removed, blank edges trimmed. */
function readFortunes(path) {
  // A backspace deletes the character before it ("__\b\bUN" is "UN" underlined): applied until none is left.
  const overstrike = new RegExp(`[^\\n${String.fromCharCode(8)}]${String.fromCharCode(8)}`, 'g');
  let text = readFileSync(path, 'latin1');
  for (let before = ''; before !== text;) {
    before = text;
    text = text.replace(overstrike, '');
  }
  return text
    .split(/^%$/m)
    .map((f) =>
      f
        .split('\n')
        .map((l) => l.replace(/\s+$/, ''))
        .join('\n')
        .replace(/^\n+|\n+$/g, ''),
    )
    .filter((f) => f.length > 0);
}

function splitOf(doc) {
  const b = parseInt(sha256(SPLIT_SALT + doc).slice(0, 8), 16) % 10;
  return b === 0 ? 'test' : b === 1 ? 'dev' : 'train';
}

/** Bits per symbol (and perplexity) of documents, END included. */
function evaluate(model, docs) {
  let nats = 0;
  let symbols = 0;
  for (const d of docs) {
    const r = logProb(model, d, true);
    nats += r.logProb;
    symbols += r.symbols;
  }
  const bits = -nats / Math.LN2 / symbols;
  return {
    bits_per_symbol: round(bits),
    perplexity: round(2 ** bits),
    symbols,
    documents: docs.length,
    log_prob_nats: nats,
  };
}

const started = Date.now();
const sources = [];
const seen = new Set();
const docs = { train: [], dev: [], test: [] };
let duplicates = 0;
for (const f of FILES) {
  const path = join(args['fortune-dir'], f);
  const fortunes = readFortunes(path);
  sources.push({ file: path, sha256: sha256(readFileSync(path)), fortunes: fortunes.length });
  for (const doc of fortunes) {
    if (seen.has(doc)) {
      duplicates++;
      continue;
    }
    seen.add(doc);
    docs[splitOf(doc)].push(doc);
  }
}
const outside = [...seen].reduce((n, d) => n + [...d].filter((c) => normalise(c) !== c).length, 0);

// The order, chosen on dev with counts from train only.
const grid = ORDERS.map((order) => ({ order, dev: evaluate(fit(docs.train, order), docs.dev) }));
// Dev bits fall a little with every order up to the grid's end; a longer context mostly copies
// longer stretches of the training text, so the shortest one within TOLERANCE of the best wins.
const lowest = Math.min(...grid.map((g) => g.dev.bits_per_symbol));
const order = grid.find((g) => g.dev.bits_per_symbol <= lowest + TOLERANCE).order;

// The shipped model: train + dev.
const shipped = [...docs.train, ...docs.dev];
const model = fit(shipped, order);
const test = evaluate(model, docs.test);
const uniformBits = Math.log2(ALPHABET.length);

// distribution() and probability() must agree to the bit (the worker samples from one and scores with the other).
{
  let ctx = startContext(model, docs.test[0]);
  for (const sym of 'The end.\n') {
    const all = distribution(model, ctx);
    const one = probability(model, ctx, sym);
    if (all[ALPHABET.indexOf(sym)] !== one)
      throw new Error(`distribution and probability differ at ${JSON.stringify(sym)}`);
    const sum = all.reduce((a, b) => a + b, 0);
    if (Math.abs(sum - 1) > 1e-12) throw new Error(`probabilities sum to ${sum}`);
    ctx = advance(model, ctx, sym);
  }
}

// Samples at the default temperature from an empty prompt, and how much of them is copied.
const corpusText = shipped.join('\n');
const samples = [];
let windows = 0;
let copied = 0;
let stopped = 0;
for (let seed = 0; seed < SAMPLE_SEEDS; seed++) {
  const out = generate(model, { prompt: '', maxTokens: DEFAULTS.max_tokens, temperature: DEFAULTS.temperature, seed });
  samples.push({ seed, ...out });
  if (out.finish_reason === 'stop') stopped++;
  for (let i = 0; i + COPY_WINDOW <= out.text.length; i++) {
    windows++;
    if (corpusText.includes(out.text.slice(i, i + COPY_WINDOW))) copied++;
  }
}
const greedy = generate(model, { prompt: 'A ', maxTokens: 200, temperature: 0, seed: 0 });

const outDir = args.out;
mkdirSync(join(outDir, 'data'), { recursive: true });
mkdirSync(join(outDir, 'eval'), { recursive: true });
const corpusFile = serialiseCorpus(shipped);
writeFileSync(join(outDir, 'data', 'corpus.txt'), corpusFile);
writeFileSync(join(outDir, 'eval', 'test_fortunes.txt'), serialiseCorpus(docs.test));
if (parseCorpus(corpusFile).length !== shipped.length) throw new Error('corpus.txt does not read back');
const copyright = '/usr/share/doc/fortunes-min/copyright';
if (existsSync(copyright)) copyFileSync(copyright, join(outDir, 'data', 'COPYRIGHT.fortunes-min'));
const meta = {
  order,
  discounts: model.discounts.map((d) => round(d, 12)),
  alphabet_size: ALPHABET.length,
  corpus_sha256: sha256(corpusFile),
  documents: shipped.length,
  defaults: DEFAULTS,
  limits: { max_tokens: 2000, temperature: [0, 2] },
  trained_on: 'train + dev fortunes (90 %) of fortunes-min',
};
writeFileSync(join(outDir, 'data', 'model.json'), JSON.stringify(meta, null, 2) + '\n');

const vectors = [
  {
    task: 'text_generation',
    prompt: 'A ',
    options: { seed: 1, temperature: 0.7, max_tokens: 120 },
    output: generate(model, { prompt: 'A ', maxTokens: 120, temperature: 0.7, seed: 1 }),
  },
  {
    task: 'text_generation',
    prompt: 'The ',
    options: { seed: 2, temperature: 0, max_tokens: 80 },
    output: generate(model, { prompt: 'The ', maxTokens: 80, temperature: 0, seed: 2 }),
  },
  {
    task: 'text_generation',
    prompt: 'Why',
    options: { seed: 3, temperature: 1.3, max_tokens: 60 },
    output: generate(model, { prompt: 'Why', maxTokens: 60, temperature: 1.3, seed: 3 }),
  },
];
writeFileSync(
  join(outDir, 'test_vectors.json'),
  JSON.stringify({ note: 'answers of the shipped model; the worker must reproduce them', vectors }, null, 2) + '\n',
);

const report = {
  data: {
    package: {
      name: 'fortunes-min',
      version: packageVersion('fortunes-min'),
      licence: 'BSD (Regents of the University of California); see data/COPYRIGHT.fortunes-min',
    },
    sources,
    duplicates_dropped: duplicates,
    characters_outside_alphabet: outside,
    split: `sha256("${SPLIT_SALT}" + fortune) first 32 bits mod 10: 0 test, 1 dev, 2-9 train`,
    documents: { train: docs.train.length, dev: docs.dev.length, test: docs.test.length },
    characters: { train: docs.train.join('').length, dev: docs.dev.join('').length, test: docs.test.join('').length },
  },
  model_choice: {
    rule: `the lowest order whose dev bits per symbol are within ${TOLERANCE} of the lowest (counts from train only)`,
    grid: grid.map((g) => ({
      order: g.order,
      dev_bits_per_symbol: g.dev.bits_per_symbol,
      dev_perplexity: g.dev.perplexity,
    })),
  },
  chosen: { order, discounts: meta.discounts },
  test: {
    ...test,
    log_prob_nats: round(test.log_prob_nats, 6),
    uniform_bits_per_symbol: round(uniformBits),
    note: 'per symbol (a character, or END closing a fortune), the shipped model (train + dev counts) on the held-out fortunes',
  },
  samples: {
    temperature: DEFAULTS.temperature,
    max_tokens: DEFAULTS.max_tokens,
    count: SAMPLE_SEEDS,
    ended_by_the_model: stopped,
    copied_windows: {
      window: COPY_WINDOW,
      fraction: round(copied / Math.max(windows, 1)),
      note: `share of the ${COPY_WINDOW}-character windows of the samples found verbatim in the training text`,
    },
    first: samples.slice(0, 5).map((s) => s.text),
    greedy_from_A: greedy.text,
  },
  node: process.version,
};
writeFileSync(join(outDir, 'training_report.json'), JSON.stringify(report, null, 2) + '\n');
console.log(
  JSON.stringify(
    {
      order,
      dev: grid.map((g) => [g.order, g.dev.bits_per_symbol]),
      test: report.test,
      copied: report.samples.copied_windows.fraction,
      seconds: (Date.now() - started) / 1000,
    },
    null,
    1,
  ),
);
