// A character n-gram language model with interpolated Kneser-Ney smoothing: the model of
// models/textgen, shared by its worker (index.mjs) and its training script
// (training/train_textgen.mjs), so the figures in the training report are the served model's.
//
// Text is read as symbols: the printable ASCII characters, tab and newline, one UNKNOWN symbol for
// every other character, and END, which closes a document (a fortune). A document is modelled
// after ORDER-1 START symbols, so its first characters have a context too. The counts are the
// model: `fit` builds them from documents, deterministically; nothing else is learnt.

export const START = '\u0002';
export const END = '\u0003';
export const UNKNOWN = '\u001a';

/** The symbols a model predicts: printable ASCII, tab, newline, UNKNOWN and END (START is only context). */
export const ALPHABET = [
  '\t',
  '\n',
  ...Array.from({ length: 95 }, (_, i) => String.fromCharCode(32 + i)),
  UNKNOWN,
  END,
];
const INDEX = new Map(ALPHABET.map((c, i) => [c, i]));

/** Text as the model reads it: CRLF as LF, every character outside the alphabet as UNKNOWN. */
export function normalise(text) {
  let out = '';
  for (const ch of text.replace(/\r\n?/g, '\n')) out += INDEX.has(ch) && ch !== END ? ch : UNKNOWN;
  return out;
}

/**
 * Counts for every context length 0..order-1. The longest contexts hold raw counts c(h w);
 * shorter ones hold Kneser-Ney continuation counts N1+(. h w) (how many distinct symbols precede
 * h w), as interpolated Kneser-Ney prescribes.
 */
export function fit(documents, order) {
  if (!Number.isInteger(order) || order < 1 || order > 12) throw new Error(`order must be 1..12, got ${order}`);
  // levels[k]: Map context (k symbols) -> Map symbol -> count
  const levels = Array.from({ length: order }, () => new Map());
  const top = order - 1;
  const pad = START.repeat(top);
  const bump = (level, ctx, sym) => {
    let row = level.get(ctx);
    if (!row) level.set(ctx, (row = new Map()));
    row.set(sym, (row.get(sym) ?? 0) + 1);
  };
  // Raw counts of the full-length contexts.
  for (const doc of documents) {
    const s = pad + normalise(doc) + END;
    for (let i = top; i < s.length; i++) bump(levels[top], s.slice(i - top, i), s[i]);
  }
  // Continuation counts: each distinct (k+1)-context n-gram adds one to its k-suffix.
  for (let k = top; k > 0; k--) {
    for (const [ctx, row] of levels[k]) {
      for (const sym of row.keys()) bump(levels[k - 1], ctx.slice(1), sym);
    }
  }
  const discounts = levels.map(discount);
  const totals = levels.map((level) => {
    const t = new Map();
    for (const [ctx, row] of level) {
      let sum = 0;
      for (const c of row.values()) sum += c;
      t.set(ctx, sum);
    }
    return t;
  });
  return { order, levels, totals, discounts };
}

/** Ney's estimate D = n1 / (n1 + 2 n2) from the counts of count 1 and 2 at one level. */
function discount(level) {
  let n1 = 0;
  let n2 = 0;
  for (const row of level.values()) {
    for (const c of row.values()) {
      if (c === 1) n1++;
      else if (c === 2) n2++;
    }
  }
  return n1 + n2 === 0 ? 0.5 : n1 / (n1 + 2 * n2);
}

/** P(symbol | context) for every symbol of ALPHABET (a Float64Array summing to 1). */
export function distribution(model, context) {
  const v = ALPHABET.length;
  let probs = new Float64Array(v).fill(1 / v); // below unigrams: uniform
  for (let k = 0; k < model.order; k++) {
    if (k > context.length) break;
    const ctx = k === 0 ? '' : context.slice(context.length - k);
    const row = model.levels[k].get(ctx);
    if (!row) break; // a longer context containing this one cannot have been seen either
    const total = model.totals[k].get(ctx);
    const d = model.discounts[k];
    const next = new Float64Array(v);
    const backoff = (d * row.size) / total;
    for (let i = 0; i < v; i++) next[i] = backoff * probs[i];
    for (const [sym, c] of row) next[INDEX.get(sym)] += Math.max(c - d, 0) / total;
    probs = next;
  }
  return probs;
}

/** The context a document's generation or scoring starts from: START padding, then the text. */
export function startContext(model, text = '') {
  return START.repeat(model.order - 1) + normalise(text);
}

/** The context after `sym`: the last order-1 symbols. */
export function advance(model, context, sym) {
  const keep = model.order - 1;
  return keep === 0 ? '' : (context + sym).slice(-keep);
}

/** P(sym | context) alone: the same recursion as `distribution`, for one symbol. */
export function probability(model, context, sym) {
  let p = 1 / ALPHABET.length;
  for (let k = 0; k < model.order; k++) {
    if (k > context.length) break;
    const ctx = k === 0 ? '' : context.slice(context.length - k);
    const row = model.levels[k].get(ctx);
    if (!row) break;
    const total = model.totals[k].get(ctx);
    const d = model.discounts[k];
    const backoff = (d * row.size) / total; // computed as in `distribution`, so both agree to the bit
    p = backoff * p + Math.max((row.get(sym) ?? 0) - d, 0) / total;
  }
  return p;
}

/**
 * Log-probability (natural log) of `text` under the model, read as the beginning of a document;
 * with `asDocument` the END symbol that closes it is scored too. Returns the sum and the number
 * of symbols scored.
 */
export function logProb(model, text, asDocument = false) {
  let ctx = startContext(model);
  const symbols = normalise(text) + (asDocument ? END : '');
  let sum = 0;
  for (const sym of symbols) {
    sum += Math.log(probability(model, ctx, sym));
    ctx = advance(model, ctx, sym);
  }
  return { logProb: sum, symbols: symbols.length };
}

/** A 32-bit generator (SplitMix32-style mixing, then xorshift-multiply steps): the same stream on every platform. */
export function randomStream(seed, text) {
  // FNV-1a over the seed and the text: each prompt gets its own stream for a given seed.
  let h = 0x811c9dc5;
  const feed = (s) => {
    for (let i = 0; i < s.length; i++) {
      h ^= s.charCodeAt(i);
      h = Math.imul(h, 0x01000193) >>> 0;
    }
  };
  feed(`${seed}\u0000${text}`);
  let state = h;
  return () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    z = (z ^ (z >>> 16)) >>> 0;
    return z / 4294967296;
  };
}

/** Draws one symbol from `probs` at `temperature` (0: the most likely one; ties to the first). */
export function sample(probs, temperature, random) {
  if (temperature === 0) {
    let best = 0;
    for (let i = 1; i < probs.length; i++) if (probs[i] > probs[best]) best = i;
    return ALPHABET[best];
  }
  let weights = probs;
  if (temperature !== 1) {
    weights = new Float64Array(probs.length);
    for (let i = 0; i < probs.length; i++) weights[i] = probs[i] ** (1 / temperature);
  }
  let total = 0;
  for (const w of weights) total += w;
  let r = random() * total;
  for (let i = 0; i < weights.length; i++) {
    r -= weights[i];
    if (r < 0) return ALPHABET[i];
  }
  for (let i = weights.length - 1; i >= 0; i--) if (weights[i] > 0) return ALPHABET[i];
  return END;
}

/**
 * Generates up to `maxTokens` symbols after the prompt (a token is one character), yielding each
 * finished word with the whitespace after it, so that a stream shows whole words. Returns the
 * text, why it stopped ("stop": the model ended the document; "length": maxTokens) and the number
 * of symbols drawn. `context` (instead of `prompt`) starts from a context made by the caller.
 */
export function* generateWords(model, { prompt = '', context, maxTokens, temperature, seed }) {
  let ctx = context ?? startContext(model, prompt);
  const random = randomStream(seed, ctx);
  let text = '';
  let word = '';
  let finish = 'length';
  let drawn = 0;
  while (drawn < maxTokens) {
    const sym = sample(distribution(model, ctx), temperature, random);
    drawn++;
    if (sym === END) {
      finish = 'stop';
      break;
    }
    ctx = advance(model, ctx, sym);
    // UNKNOWN stands for any character the model never saw: it has no spelling, so it is not written.
    const out = sym === UNKNOWN ? '' : sym;
    word += out;
    text += out;
    if (word && (sym === ' ' || sym === '\n' || sym === '\t')) {
      yield word;
      word = '';
    }
  }
  if (word) yield word;
  return { text, finish_reason: finish, tokens: drawn };
}

/** generateWords, run to the end. */
export function generate(model, options) {
  const it = generateWords(model, options);
  for (;;) {
    const r = it.next();
    if (r.done) return r.value;
  }
}
