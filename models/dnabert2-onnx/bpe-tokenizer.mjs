// A reader for Hugging Face `tokenizer.json` files with a BPE model: the JavaScript twin of
// models/dnabert2/dnabert2_tokenizer.py, with the same supported components and the same
// semantics, so the ONNX package sees exactly the tokens the Python adapter sees:
//   normalizer     null, Lowercase, NFC/NFD/NFKC/NFKD, Strip, Replace (plain string), Sequence
//   pre_tokenizer  null, Whitespace (\w+|[^\w\s]+), WhitespaceSplit, Sequence
//   model          BPE: one symbol per character ([UNK] for unknown ones, fused with fuse_unk), then
//                  merges by rank, lowest first and leftmost among equal ranks (the Rust priority queue)
//   post_processor null, TemplateProcessing (single template), BertProcessing, RobertaProcessing
// Anything else is refused at load time rather than tokenised differently.

export class TokenizerError extends Error {}

// --- normalisers -----------------------------------------------------------------------------
function buildNormalizer(spec) {
  if (spec == null) return (s) => s;
  switch (spec.type) {
    case 'Sequence': {
      const parts = (spec.normalizers ?? []).map(buildNormalizer);
      return (s) => parts.reduce((acc, p) => p(acc), s);
    }
    case 'Lowercase':
      return (s) => s.toLowerCase();
    case 'NFC':
    case 'NFD':
    case 'NFKC':
    case 'NFKD':
      return (s) => s.normalize(spec.type);
    case 'Strip': {
      const left = spec.strip_left ?? true;
      const right = spec.strip_right ?? true;
      return (s) => {
        let out = left ? s.trimStart() : s;
        if (right) out = out.trimEnd();
        return out;
      };
    }
    case 'Replace': {
      const pattern = spec.pattern ?? {};
      if (!('String' in pattern)) throw new TokenizerError('normalizer Replace with a regex pattern is not supported');
      const from = pattern.String;
      const to = spec.content ?? '';
      return (s) => s.split(from).join(to);
    }
    default:
      throw new TokenizerError(`unsupported normalizer ${JSON.stringify(spec.type)}`);
  }
}

// --- pre-tokenisers --------------------------------------------------------------------------
// \w as the tokenizers crate (Rust regex, Unicode) defines it.
const WORD = '\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}';
const WHITESPACE_RE = new RegExp(`[${WORD}]+|[^${WORD}\\s]+`, 'gu');

function buildPreTokenizer(spec) {
  if (spec == null) return (words) => words;
  switch (spec.type) {
    case 'Sequence': {
      const parts = (spec.pretokenizers ?? []).map(buildPreTokenizer);
      return (words) => parts.reduce((acc, p) => p(acc), words);
    }
    case 'Whitespace':
      return (words) => words.flatMap((w) => w.match(WHITESPACE_RE) ?? []);
    case 'WhitespaceSplit':
      return (words) => words.flatMap((w) => w.split(/\s+/u).filter((p) => p.length > 0));
    default:
      throw new TokenizerError(`unsupported pre_tokenizer ${JSON.stringify(spec.type)}`);
  }
}

// --- BPE -------------------------------------------------------------------------------------
/** Min-heap of [rank, position, merged id], ordered as Python compares those tuples. */
class Heap {
  constructor(items) {
    this.a = items;
    for (let i = (this.a.length >> 1) - 1; i >= 0; i--) this.down(i);
  }
  static less(x, y) {
    return x[0] !== y[0] ? x[0] < y[0] : x[1] !== y[1] ? x[1] < y[1] : x[2] < y[2];
  }
  get size() {
    return this.a.length;
  }
  push(item) {
    const a = this.a;
    a.push(item);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!Heap.less(a[i], a[p])) break;
      [a[i], a[p]] = [a[p], a[i]];
      i = p;
    }
  }
  pop() {
    const a = this.a;
    const top = a[0];
    const last = a.pop();
    if (a.length) {
      a[0] = last;
      this.down(0);
    }
    return top;
  }
  down(i) {
    const a = this.a;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < a.length && Heap.less(a[l], a[m])) m = l;
      if (r < a.length && Heap.less(a[r], a[m])) m = r;
      if (m === i) return;
      [a[i], a[m]] = [a[m], a[i]];
      i = m;
    }
  }
}

class BPE {
  constructor(spec) {
    if (spec.dropout) throw new TokenizerError('BPE dropout is a training-time option; refusing to tokenise randomly');
    if (spec.byte_fallback) throw new TokenizerError('BPE byte_fallback is not supported');
    this.vocab = new Map(Object.entries(spec.vocab ?? {}));
    if (this.vocab.size === 0) throw new TokenizerError('BPE model has an empty vocab');
    this.unkToken = spec.unk_token ?? null;
    this.fuseUnk = Boolean(spec.fuse_unk);
    this.prefix = spec.continuing_subword_prefix || '';
    this.suffix = spec.end_of_word_suffix || '';
    this.ignoreMerges = Boolean(spec.ignore_merges);
    // "leftId rightId" -> [rank, merged id], as tokenizers' BPE builds it.
    this.merges = new Map();
    (spec.merges ?? []).forEach((merge, rank) => {
      const parts = typeof merge === 'string' ? merge.split(' ') : [...merge];
      if (parts.length !== 2) throw new TokenizerError(`bad merge ${JSON.stringify(merge)}`);
      const [left, right] = parts;
      for (const t of parts) {
        if (!this.vocab.has(t))
          throw new TokenizerError(
            `merge ${JSON.stringify(merge)} uses ${JSON.stringify(t)}, which is not in the vocab`,
          );
      }
      const merged = this.prefix ? left + right.slice(this.prefix.length) : left + right;
      if (!this.vocab.has(merged))
        throw new TokenizerError(
          `merge ${JSON.stringify(merge)} makes ${JSON.stringify(merged)}, which is not in the vocab`,
        );
      this.merges.set(`${this.vocab.get(left)} ${this.vocab.get(right)}`, [rank, this.vocab.get(merged)]);
    });
    this.idToToken = new Map([...this.vocab].map(([t, i]) => [i, t]));
    this.cache = new Map();
  }

  initialSymbols(word) {
    const chars = Array.from(word); // code points, as Python iterates a str
    const ids = [];
    let unkOpen = false;
    chars.forEach((ch, i) => {
      let tok = ch;
      if (i > 0 && this.prefix) tok = this.prefix + tok;
      if (i === chars.length - 1 && this.suffix) tok += this.suffix;
      const id = this.vocab.get(tok);
      if (id === undefined) {
        if (this.unkToken == null)
          throw new TokenizerError(`character ${JSON.stringify(ch)} is not in the vocab and there is no unk_token`);
        const unk = this.vocab.get(this.unkToken);
        if (unk === undefined)
          throw new TokenizerError(`unk_token ${JSON.stringify(this.unkToken)} is not in the vocab`);
        if (!(this.fuseUnk && unkOpen)) ids.push(unk);
        unkOpen = true;
      } else {
        ids.push(id);
        unkOpen = false;
      }
    });
    return ids;
  }

  merge(ids) {
    const n = ids.length;
    const sym = ids.slice();
    const prev = Array.from({ length: n }, (_, i) => i - 1);
    const next = Array.from({ length: n }, (_, i) => (i + 1 < n ? i + 1 : -1));
    const alive = new Array(n).fill(true);
    const rule = (a, b) => this.merges.get(`${a} ${b}`);
    const start = [];
    for (let i = 0; i + 1 < n; i++) {
      const hit = rule(sym[i], sym[i + 1]);
      if (hit) start.push([hit[0], i, hit[1]]);
    }
    const heap = new Heap(start);
    while (heap.size) {
      const [, pos, newId] = heap.pop();
      if (!alive[pos] || next[pos] === -1) continue;
      const right = next[pos];
      const current = rule(sym[pos], sym[right]);
      if (!current || current[1] !== newId) continue; // stale: one side was merged with something else meanwhile
      sym[pos] = newId;
      alive[right] = false;
      next[pos] = next[right];
      if (next[right] !== -1) prev[next[right]] = pos;
      if (prev[pos] !== -1) {
        const hit = rule(sym[prev[pos]], sym[pos]);
        if (hit) heap.push([hit[0], prev[pos], hit[1]]);
      }
      if (next[pos] !== -1) {
        const hit = rule(sym[pos], sym[next[pos]]);
        if (hit) heap.push([hit[0], pos, hit[1]]);
      }
    }
    return sym.filter((_, i) => alive[i]);
  }

  tokenize(word) {
    const cached = this.cache.get(word);
    if (cached) return cached;
    const out =
      this.ignoreMerges && this.vocab.has(word) ? [this.vocab.get(word)] : this.merge(this.initialSymbols(word));
    if (this.cache.size < 10000 && word.length <= 256) this.cache.set(word, out);
    return out;
  }
}

// --- post-processing -------------------------------------------------------------------------
/** [prefix ids, suffix ids] around the single sequence. */
function buildTemplate(spec, vocab) {
  if (spec == null) return [[], []];
  if (spec.type === 'TemplateProcessing') {
    const specials = spec.special_tokens ?? {};
    const before = [];
    const after = [];
    let seenSequence = false;
    for (const piece of spec.single ?? []) {
      if ('Sequence' in piece) {
        if (seenSequence || (piece.Sequence.id ?? 'A') !== 'A')
          throw new TokenizerError(`unsupported single template ${JSON.stringify(spec.single)}`);
        seenSequence = true;
      } else if ('SpecialToken' in piece) {
        const name = piece.SpecialToken.id;
        let ids;
        if (name in specials) ids = [...(specials[name].ids ?? [])];
        else if (vocab.has(name)) ids = [vocab.get(name)];
        else throw new TokenizerError(`template special token ${JSON.stringify(name)} is unknown`);
        (seenSequence ? after : before).push(...ids.map(Number));
      } else {
        throw new TokenizerError(`unsupported template piece ${JSON.stringify(piece)}`);
      }
    }
    if (!seenSequence) throw new TokenizerError('single template has no $A');
    return [before, after];
  }
  if (spec.type === 'BertProcessing' || spec.type === 'RobertaProcessing')
    return [[Number(spec.cls[1])], [Number(spec.sep[1])]];
  throw new TokenizerError(`unsupported post_processor ${JSON.stringify(spec.type)}`);
}

export class BPETokenizer {
  constructor(spec) {
    const model = spec.model ?? {};
    if ((model.type ?? 'BPE') !== 'BPE')
      throw new TokenizerError(`tokenizer model is ${JSON.stringify(model.type)}, expected BPE`);
    this.bpe = new BPE(model);
    this.normalize = buildNormalizer(spec.normalizer);
    this.preTokenize = buildPreTokenizer(spec.pre_tokenizer);
    [this.prefixIds, this.suffixIds] = buildTemplate(spec.post_processor, this.bpe.vocab);
    this.idToToken = new Map(this.bpe.idToToken);
    for (const t of spec.added_tokens ?? [])
      if (!this.idToToken.has(Number(t.id))) this.idToToken.set(Number(t.id), t.content);
  }

  tokenId(token) {
    return this.bpe.vocab.get(token) ?? null;
  }

  /** Highest token id the tokenizer can produce. */
  get maxId() {
    return Math.max(...this.idToToken.keys());
  }

  encodePlain(text) {
    return this.preTokenize([this.normalize(text)]).flatMap((w) => this.bpe.tokenize(w));
  }

  /**
   * [CLS] ids [SEP] (per the template); with maxLength, the content is cut from the right so the
   * whole encoding, special tokens included, fits (transformers' truncation=True).
   */
  encode(text, maxLength) {
    let body = this.encodePlain(text);
    const full = this.prefixIds.length + body.length + this.suffixIds.length;
    let truncated = false;
    if (maxLength != null && full > maxLength) {
      body = body.slice(0, Math.max(0, maxLength - this.prefixIds.length - this.suffixIds.length));
      truncated = true;
    }
    const ids = [...this.prefixIds, ...body, ...this.suffixIds];
    const specialMask = [
      ...this.prefixIds.map(() => true),
      ...body.map(() => false),
      ...this.suffixIds.map(() => true),
    ];
    const tokens = ids.map((i) => this.idToToken.get(i) ?? '');
    return { ids, tokens, specialMask, truncated, untruncatedLength: full };
  }
}

export function loadTokenizer(text) {
  return new BPETokenizer(JSON.parse(text));
}
