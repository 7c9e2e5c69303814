// textgen worker: a character n-gram model of Debian's fortunes (see MODEL_CARD.md). The counts
// are the model; they are rebuilt from data/corpus.txt at setup (well under a second), after the
// file's sha256 and the discounts are checked against data/model.json, so a changed corpus cannot
// pass for the measured model.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { parseCorpus } from './corpus.mjs';
import { ModelError } from 'isomodel/worker';
import { fit, generateWords, logProb, normalise, startContext } from './ngram.mjs';

let model;
let meta;

export function setup(ctx) {
  meta = JSON.parse(readFileSync(join(ctx.dataDir, 'model.json'), 'utf8'));
  const corpus = readFileSync(join(ctx.dataDir, 'corpus.txt'), 'utf8');
  const sha = createHash('sha256').update(corpus).digest('hex');
  if (sha !== meta.corpus_sha256)
    throw new ModelError(
      'MODEL_NOT_LOADED',
      `data/corpus.txt has sha256 ${sha}, model.json expects ${meta.corpus_sha256}`,
    );
  model = fit(parseCorpus(corpus), meta.order);
  const discounts = model.discounts.map((d) => Number(d.toFixed(12)));
  if (JSON.stringify(discounts) !== JSON.stringify(meta.discounts))
    throw new ModelError('MODEL_NOT_LOADED', 'the refitted discounts differ from model.json');
}

const invalid = (message) => ({ error: { code: 'INVALID_REQUEST', message } });

/** The generation options, checked: {seed, temperature, maxTokens} or an error output. */
function generationOptions(options) {
  const { seed, temperature = meta.defaults.temperature, max_tokens: maxTokens = meta.defaults.max_tokens } = options;
  if (seed !== undefined && !(Number.isInteger(seed) && seed >= 0 && seed <= 0xffffffff))
    return invalid('options.seed must be an integer from 0 to 4294967295');
  if (
    typeof temperature !== 'number' ||
    !(temperature >= meta.limits.temperature[0] && temperature <= meta.limits.temperature[1])
  ) {
    return invalid(
      `options.temperature must be a number from ${meta.limits.temperature[0]} to ${meta.limits.temperature[1]}`,
    );
  }
  if (!Number.isInteger(maxTokens) || maxTokens < 1 || maxTokens > meta.limits.max_tokens)
    return invalid(`options.max_tokens must be an integer from 1 to ${meta.limits.max_tokens}`);
  // Without a seed each call draws one, and says which: any answer can be replayed.
  return { seed: seed ?? Math.floor(Math.random() * 0x100000000), temperature, maxTokens };
}

/** What one item asks for: a generation (context, options) or a score, or an error output. */
function plan(item, task) {
  if (task === 'perplexity') return { score: item.input };
  const opts = generationOptions(item.options ?? {});
  if (opts.error) return opts;
  if (task === 'text_generation') return { ...opts, prompt: item.input, context: startContext(model, item.input) };
  if (task === 'chat') {
    const last = item.input.messages.findLast((m) => m.role === 'user');
    if (!last) return { error: { code: 'INVALID_INPUT', message: 'the conversation has no user message to answer' } };
    // The reply is what the model writes after the user's message and a line break, as if the
    // message were the first line of a fortune. Only the last order-1 characters steer it.
    return { ...opts, prompt: last.content, context: startContext(model, `${last.content}\n`) };
  }
  return invalid(`textgen has no task ${task}`);
}

function score(text, options) {
  const asDocument = options.as_fortune === true;
  const r = logProb(model, text, asDocument);
  const bits = -r.logProb / Math.LN2 / r.symbols;
  return { perplexity: 2 ** bits, bits_per_char: bits, log_prob: r.logProb, chars: r.symbols };
}

async function runOne(item, task, emit) {
  const p = plan(item, task);
  if (p.error) return p;
  if (p.score !== undefined) return score(p.score, item.options ?? {});
  const words = generateWords(model, {
    context: p.context,
    maxTokens: p.maxTokens,
    temperature: p.temperature,
    seed: p.seed,
  });
  for (;;) {
    const r = words.next();
    if (r.done) {
      return {
        text: r.value.text,
        finish_reason: r.value.finish_reason,
        seed: p.seed,
        usage: { prompt_tokens: normalise(p.prompt).length, completion_tokens: r.value.tokens },
      };
    }
    if (emit) {
      emit({ text: r.value });
      await nextTurn(); // lets the worker read a cancel between words
    }
  }
}

export async function predict(batch, task) {
  const out = [];
  for (const item of batch) out.push(await runOne(item, task, null));
  return out;
}

/** Streams each generated word as a chunk {text}; perplexity answers come whole. */
export async function stream(batch, task, emit) {
  const out = [];
  for (let i = 0; i < batch.length; i++) out.push(await runOne(batch[i], task, (data) => emit(i, data)));
  return out;
}
