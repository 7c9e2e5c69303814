"""A pure-Python reader for Hugging Face `tokenizer.json` files with a BPE model.

DNABERT-2 ships its tokenizer as a `tokenizers` (Rust) JSON file: a BPE model (vocab +
merges, unk_token "[UNK]"), a `Whitespace` pre-tokenizer, no normaliser and a
`TemplateProcessing` post-processor that wraps a sequence as `[CLS] $A [SEP]`
(see the training script the authors posted in MAGICS-LAB/DNABERT_2 issue #74). The
`tokenizers` package is not available here, so this module implements the parts of that
library those files use, following its semantics:

* normalizer: null, Lowercase, NFC/NFD/NFKC/NFKD, Strip, Replace (plain string), Sequence;
* pre_tokenizer: null, Whitespace (regex ``\\w+|[^\\w\\s]+``), WhitespaceSplit, Sequence;
* model: BPE - every character becomes a symbol (unknown ones become unk_token, fused when
  fuse_unk), then merges are applied by rank with the same priority queue the Rust
  implementation uses (lowest rank first, leftmost first among equal ranks);
  continuing_subword_prefix / end_of_word_suffix are honoured;
* post_processor: null, TemplateProcessing (single-sequence template), BertProcessing,
  RobertaProcessing (cls/sep pairs).

Added tokens written inside the input text are not split out first (DNA input never contains
them: the gateway only lets IUPAC letters through).

Anything else raises TokenizerError at load time rather than tokenising differently from
the original. Dropout (training only) and byte_fallback are refused the same way.
"""
from __future__ import annotations

import heapq
import json
import re
import unicodedata
from typing import Dict, List, Optional, Sequence, Tuple


class TokenizerError(Exception):
    pass


# --- normalisers -----------------------------------------------------------------------
def _build_normalizer(spec):
    if spec is None:
        return lambda s: s
    kind = spec.get("type")
    if kind == "Sequence":
        parts = [_build_normalizer(s) for s in spec.get("normalizers", [])]

        def run(s):
            for p in parts:
                s = p(s)
            return s
        return run
    if kind == "Lowercase":
        return lambda s: s.lower()
    if kind in ("NFC", "NFD", "NFKC", "NFKD"):
        return lambda s: unicodedata.normalize(kind, s)
    if kind == "Strip":
        left, right = spec.get("strip_left", True), spec.get("strip_right", True)

        def strip(s):
            if left:
                s = s.lstrip()
            if right:
                s = s.rstrip()
            return s
        return strip
    if kind == "Replace":
        pattern = spec.get("pattern") or {}
        if "String" not in pattern:
            raise TokenizerError("normalizer Replace with a regex pattern is not supported")
        old, new = pattern["String"], spec.get("content", "")
        return lambda s: s.replace(old, new)
    raise TokenizerError("unsupported normalizer %r" % kind)


# --- pre-tokenisers ----------------------------------------------------------------------
_WHITESPACE_RE = re.compile(r"\w+|[^\w\s]+")


def _build_pre_tokenizer(spec):
    if spec is None:
        return lambda words: words
    kind = spec.get("type")
    if kind == "Sequence":
        parts = [_build_pre_tokenizer(s) for s in spec.get("pretokenizers", [])]

        def run(words):
            for p in parts:
                words = p(words)
            return words
        return run
    if kind == "Whitespace":
        return lambda words: [m.group(0) for w in words for m in _WHITESPACE_RE.finditer(w)]
    if kind == "WhitespaceSplit":
        return lambda words: [piece for w in words for piece in w.split()]
    raise TokenizerError("unsupported pre_tokenizer %r" % kind)


# --- BPE ---------------------------------------------------------------------------------
class BPE:
    def __init__(self, spec: dict):
        if spec.get("dropout"):
            raise TokenizerError("BPE dropout is a training-time option; refusing to tokenise randomly")
        if spec.get("byte_fallback"):
            raise TokenizerError("BPE byte_fallback is not supported")
        self.vocab: Dict[str, int] = dict(spec.get("vocab") or {})
        if not self.vocab:
            raise TokenizerError("BPE model has an empty vocab")
        self.unk_token: Optional[str] = spec.get("unk_token")
        self.fuse_unk = bool(spec.get("fuse_unk", False))
        self.prefix: str = spec.get("continuing_subword_prefix") or ""
        self.suffix: str = spec.get("end_of_word_suffix") or ""
        self.ignore_merges = bool(spec.get("ignore_merges", False))
        # (left id, right id) -> (rank, merged id), as tokenizers' BPE builds it.
        self.merges: Dict[Tuple[int, int], Tuple[int, int]] = {}
        for rank, merge in enumerate(spec.get("merges") or []):
            if isinstance(merge, str):
                parts = merge.split(" ")
            else:  # newer files store merges as [left, right] pairs
                parts = list(merge)
            if len(parts) != 2:
                raise TokenizerError("bad merge %r" % (merge,))
            left, right = parts
            for tok in (left, right):
                if tok not in self.vocab:
                    raise TokenizerError("merge %r uses %r, which is not in the vocab" % (merge, tok))
            merged = left + right[len(self.prefix):] if self.prefix else left + right
            if merged not in self.vocab:
                raise TokenizerError("merge %r makes %r, which is not in the vocab" % (merge, merged))
            self.merges[(self.vocab[left], self.vocab[right])] = (rank, self.vocab[merged])
        self.id_to_token = {i: t for t, i in self.vocab.items()}
        self._cache: Dict[str, List[int]] = {}

    def _initial_symbols(self, word: str) -> List[int]:
        ids: List[int] = []
        unk_open = False
        n = len(word)
        for i, ch in enumerate(word):
            tok = ch
            if i > 0 and self.prefix:
                tok = self.prefix + tok
            if i == n - 1 and self.suffix:
                tok = tok + self.suffix
            tid = self.vocab.get(tok)
            if tid is None:
                if self.unk_token is None:
                    raise TokenizerError("character %r is not in the vocab and there is no unk_token" % ch)
                unk_id = self.vocab.get(self.unk_token)
                if unk_id is None:
                    raise TokenizerError("unk_token %r is not in the vocab" % self.unk_token)
                if not (self.fuse_unk and unk_open):
                    ids.append(unk_id)
                unk_open = True
            else:
                ids.append(tid)
                unk_open = False
        return ids

    def _merge(self, ids: List[int]) -> List[int]:
        n = len(ids)
        sym = list(ids)
        prev = [i - 1 for i in range(n)]
        nxt = [i + 1 if i + 1 < n else -1 for i in range(n)]
        alive = [True] * n
        heap: List[Tuple[int, int, int]] = []  # (rank, position, merged id)
        for i in range(n - 1):
            hit = self.merges.get((sym[i], sym[i + 1]))
            if hit is not None:
                heap.append((hit[0], i, hit[1]))
        heapq.heapify(heap)
        while heap:
            rank, pos, new_id = heapq.heappop(heap)
            if not alive[pos] or nxt[pos] == -1:
                continue
            right = nxt[pos]
            current = self.merges.get((sym[pos], sym[right]))
            if current is None or current[1] != new_id:
                continue  # stale entry: one side was merged with something else meanwhile
            sym[pos] = new_id
            alive[right] = False
            nxt[pos] = nxt[right]
            if nxt[right] != -1:
                prev[nxt[right]] = pos
            if prev[pos] != -1:
                hit = self.merges.get((sym[prev[pos]], sym[pos]))
                if hit is not None:
                    heapq.heappush(heap, (hit[0], prev[pos], hit[1]))
            if nxt[pos] != -1:
                hit = self.merges.get((sym[pos], sym[nxt[pos]]))
                if hit is not None:
                    heapq.heappush(heap, (hit[0], pos, hit[1]))
        return [sym[i] for i in range(n) if alive[i]]

    def tokenize(self, word: str) -> List[int]:
        cached = self._cache.get(word)
        if cached is not None:
            return cached
        if self.ignore_merges and word in self.vocab:
            out = [self.vocab[word]]
        else:
            out = self._merge(self._initial_symbols(word))
        if len(self._cache) < 10000 and len(word) <= 256:
            self._cache[word] = out
        return out


# --- post-processing ---------------------------------------------------------------------
def _build_template(spec, vocab: Dict[str, int]):
    """Returns (prefix ids, suffix ids) around the single sequence."""
    if spec is None:
        return [], []
    kind = spec.get("type")
    if kind == "TemplateProcessing":
        specials = spec.get("special_tokens") or {}
        before: List[int] = []
        after: List[int] = []
        seen_sequence = False
        for piece in spec.get("single") or []:
            if "Sequence" in piece:
                if seen_sequence or piece["Sequence"].get("id", "A") != "A":
                    raise TokenizerError("unsupported single template %r" % spec.get("single"))
                seen_sequence = True
            elif "SpecialToken" in piece:
                name = piece["SpecialToken"]["id"]
                if name in specials:
                    ids = list(specials[name].get("ids") or [])
                elif name in vocab:
                    ids = [vocab[name]]
                else:
                    raise TokenizerError("template special token %r is unknown" % name)
                (after if seen_sequence else before).extend(ids)
            else:
                raise TokenizerError("unsupported template piece %r" % piece)
        if not seen_sequence:
            raise TokenizerError("single template has no $A")
        return before, after
    if kind in ("BertProcessing", "RobertaProcessing"):
        cls, sep = spec.get("cls"), spec.get("sep")
        return [int(cls[1])], [int(sep[1])]
    raise TokenizerError("unsupported post_processor %r" % kind)


class Encoding:
    __slots__ = ("ids", "tokens", "special_mask", "truncated", "untruncated_length")

    def __init__(self, ids, tokens, special_mask, truncated, untruncated_length):
        self.ids = ids
        self.tokens = tokens
        self.special_mask = special_mask
        self.truncated = truncated
        self.untruncated_length = untruncated_length


class HFBPETokenizer:
    def __init__(self, spec: dict):
        model = spec.get("model") or {}
        if model.get("type", "BPE") != "BPE":
            raise TokenizerError("tokenizer model is %r, expected BPE" % model.get("type"))
        self.bpe = BPE(model)
        self.normalize = _build_normalizer(spec.get("normalizer"))
        self.pre_tokenize = _build_pre_tokenizer(spec.get("pre_tokenizer"))
        self.prefix_ids, self.suffix_ids = _build_template(spec.get("post_processor"), self.bpe.vocab)
        self.special_ids = {int(t["id"]) for t in spec.get("added_tokens") or [] if t.get("special")}
        self.special_ids.update(self.prefix_ids)
        self.special_ids.update(self.suffix_ids)
        self.id_to_token = dict(self.bpe.id_to_token)
        for t in spec.get("added_tokens") or []:
            self.id_to_token.setdefault(int(t["id"]), t["content"])

    @classmethod
    def from_file(cls, path: str) -> "HFBPETokenizer":
        with open(path, "r", encoding="utf-8") as fh:
            return cls(json.load(fh))

    def token_id(self, token: str) -> Optional[int]:
        return self.bpe.vocab.get(token)

    def encode_plain(self, text: str) -> List[int]:
        """Model ids without special tokens."""
        ids: List[int] = []
        for word in self.pre_tokenize([self.normalize(text)]):
            ids.extend(self.bpe.tokenize(word))
        return ids

    def encode(self, text: str, max_length: Optional[int] = None) -> Encoding:
        """[CLS] ids [SEP] (per the template); with max_length, the content is cut from the
        right so the whole encoding, special tokens included, fits (as transformers'
        truncation=True does)."""
        body = self.encode_plain(text)
        full = len(self.prefix_ids) + len(body) + len(self.suffix_ids)
        truncated = False
        if max_length is not None and full > max_length:
            room = max(0, max_length - len(self.prefix_ids) - len(self.suffix_ids))
            body = body[:room]
            truncated = True
        ids = list(self.prefix_ids) + body + list(self.suffix_ids)
        mask = [True] * len(self.prefix_ids) + [False] * len(body) + [True] * len(self.suffix_ids)
        tokens = [self.id_to_token.get(i, "") for i in ids]
        return Encoding(ids, tokens, mask, truncated, full)


def load(path: str) -> HFBPETokenizer:
    return HFBPETokenizer.from_file(path)


__all__: Sequence[str] = ("HFBPETokenizer", "TokenizerError", "Encoding", "load")
