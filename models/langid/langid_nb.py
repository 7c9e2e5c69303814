"""The language identifier itself, shared by the worker (model.py) and the training script
(training/train_langid.py): the same code reads text, builds the table and scores, so the figures
in the training report are the figures of the served model.

Text -> words: a word is a run of letters (with apostrophes inside it) after Unicode NFC
normalisation and lower-casing; digits, punctuation, hyphens and spaces separate words.
Word -> features: the character n-grams (n = 1..max_n) of the word padded with one space on each
side, so that n-grams see where a word starts and ends ("chat" -> "c", " c", " ch", "at ", ...).
Model: multinomial naive Bayes over those n-grams with add-alpha smoothing and equal priors;
n-grams outside the table are skipped. Posteriors are softmax(log-likelihood / temperature).
"""
from __future__ import annotations

import gzip
import json
import math
import os
import re
import unicodedata
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

# Typographic apostrophes are read as the ASCII one (l’homme, dell’anno).
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u02bc": "'", "\u2018": "'"})
# Letters of any script (after NFC accented letters are single characters); an apostrophe only
# between two of them.
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*", re.UNICODE)
# Words longer than this are cut: real words are shorter, and it bounds the work per word.
MAX_WORD_CHARS = 40

META_FILE = "langid.json"
COUNTS_FILE = "ngram_counts.tsv.gz"


def words(text: str) -> List[str]:
    """The words of a text, normalised (NFC, lower case), in order."""
    text = unicodedata.normalize("NFC", text).translate(_APOSTROPHES).lower()
    return [w[:MAX_WORD_CHARS] for w in _WORD.findall(text)]


def ngrams(word: str, max_n: int) -> List[str]:
    """Every character n-gram (1 <= n <= max_n) of " word ", except the lone padding spaces."""
    padded = " " + word + " "
    last = len(padded)
    return [padded[i:i + n] for n in range(1, max_n + 1) for i in range(last - n + 1) if n > 1 or 0 < i < last - 1]


class Table:
    """n-gram -> per-language log-probabilities, built from counts."""

    def __init__(self, langs: Sequence[str], counts: Dict[str, Sequence[int]], max_n: int, alpha: float, temperature: float):
        self.langs = list(langs)
        self.max_n = max_n
        self.alpha = alpha
        self.temperature = temperature
        k = len(self.langs)
        totals = [sum(column) for column in zip(*counts.values())] if counts else [0] * k
        size = len(counts)
        denominators = [math.log(totals[i] + alpha * size) for i in range(k)]
        # Most counts are small: per language, log(c + alpha) - log(denominator) is looked up for
        # them, not recomputed, and a row is built by map() (load time). The same subtraction
        # either way, so the same floats.
        small = [[math.log(c + alpha) - d for c in range(4096)] for d in denominators]
        lookup = list.__getitem__

        def row_logp(row: Sequence[int]) -> Tuple[float, ...]:
            try:
                return tuple(map(lookup, small, row))
            except IndexError:
                return tuple(math.log(c + alpha) - d for c, d in zip(row, denominators))

        self.logp: Dict[str, Tuple[float, ...]] = {gram: row_logp(row) for gram, row in counts.items()}

    def score(self, ws: Sequence[str]) -> Tuple[List[float], int, int]:
        """Summed log-likelihood per language, n-grams seen in the table, n-grams in all."""
        k = len(self.langs)
        total = [0.0] * k
        known = seen = 0
        get = self.logp.get
        for w in ws:
            for gram in ngrams(w, self.max_n):
                seen += 1
                row = get(gram)
                if row is not None:
                    known += 1
                    for i in range(k):
                        total[i] += row[i]
        return total, known, seen

    def posterior(self, ws: Sequence[str]) -> Tuple[Optional[List[float]], int, int]:
        """P(language | words) per language (None when no n-gram of the words is in the table)."""
        total, known, seen = self.score(ws)
        if known == 0:
            return None, known, seen
        scaled = [s / self.temperature for s in total]
        top = max(scaled)
        exps = [math.exp(s - top) for s in scaled]
        norm = sum(exps)
        return [e / norm for e in exps], known, seen


def read_counts(path: str, k: int) -> Dict[str, Tuple[int, ...]]:
    counts: Dict[str, Tuple[int, ...]] = {}
    # Read whole and split once: line iteration over the gzip stream is the slow part of a start.
    with gzip.open(path, "rb") as fh:
        lines = fh.read().decode("utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for line in lines:
        gram, *values = line.split("\t")
        if len(values) != k:
            raise ValueError("%s: line for %r has %d counts, expected %d" % (path, gram, len(values), k))
        counts[gram] = tuple(map(int, values))
    return counts


def load(data_dir: str) -> Tuple[Table, dict]:
    """The shipped table and its metadata (data/langid.json, data/ngram_counts.tsv.gz)."""
    with open(os.path.join(data_dir, META_FILE), encoding="utf-8") as fh:
        meta = json.load(fh)
    langs = [lang["code"] for lang in meta["languages"]]
    counts = read_counts(os.path.join(data_dir, COUNTS_FILE), len(langs))
    table = Table(langs, counts, meta["max_n"], meta["alpha"], meta["temperature"])
    return table, meta


def identify(table: Table, names: Dict[str, str], text: str) -> dict:
    """The worker's answer for one text (see model.yaml for the fields)."""
    ws = words(text)
    if not ws:
        return {"error": {"code": "INVALID_INPUT", "message": "the text has no letters, so no language to identify"}}
    probs, known, seen = table.posterior(ws)
    coverage = round(known / seen, 4)
    if probs is None:
        return {"prediction": None, "confidence": None,
                "details": {"reason": "none of the text's letter sequences occur in any of the %d word lists (another script or language?)" % len(table.langs),
                            "words": len(ws), "coverage": coverage, "probabilities": None}}
    order = sorted(range(len(probs)), key=lambda i: (-probs[i], i))
    best = order[0]
    return {
        "prediction": table.langs[best],
        "confidence": round(probs[best], 6),
        "details": {
            "name": names[table.langs[best]],
            "probabilities": {table.langs[i]: round(probs[i], 6) for i in order},
            "words": len(ws),
            "coverage": coverage,
        },
    }
