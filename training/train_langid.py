#!/usr/bin/python3
"""Trains and evaluates models/langid: a character n-gram naive Bayes language identifier for
seven languages, from the Debian word lists installed under /usr/share/dict.

    /usr/bin/python3 training/train_langid.py                 # full: model choice, fit, evaluation
    /usr/bin/python3 training/train_langid.py --final-only --out /tmp/l   # fit only, from the report's choice

Data: one word list per language (English = wamerican + wbritish). Every word goes to one split by
a hash of its first 5 letters (so a held-out word shares no 5-letter beginning, and no stem
spelt that way, with any training word, in any language): 10 % test, 10 % dev, 80 % train.
The dev split chooses max_n and the n-gram count threshold (and the temperature); the shipped
model is fitted on train + dev; the test split is scored once, by that shipped model.

Writes models/langid/data/{langid.json, ngram_counts.tsv.gz}, models/langid/test_vectors.json and
models/langid/training_report.json. Deterministic: counts are integers, every sample comes from a
seeded NumPy PCG64 stream, floats in the JSON files are rounded, and the gzip header has no time
or name (the report records the sha256 of the uncompressed table too, since zlib versions may
compress differently).
"""
from __future__ import annotations

import argparse
import collections
import gzip
import hashlib
import io
import json
import math
import os
import subprocess
import sys
import time
from typing import Dict, List, Sequence

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, "models", "langid")
sys.path.insert(0, PACKAGE)
import langid_nb as nb  # noqa: E402

# code, name, word lists, Debian package(s)
LANGUAGES = [
    ("en", "English", ["american-english", "british-english"], "wamerican, wbritish"),
    ("de", "German", ["ngerman"], "wngerman"),
    ("fr", "French", ["french"], "wfrench"),
    ("es", "Spanish", ["spanish"], "wspanish"),
    ("it", "Italian", ["italian"], "witalian"),
    ("pt", "Portuguese", ["portuguese"], "wportuguese"),
    ("nl", "Dutch", ["dutch"], "wdutch"),
]
CODES = [code for code, *_ in LANGUAGES]
SPLIT_SALT = b"isomodel-langid-split-1:"
PREFIX = 5
ALPHA = 0.5
GRID = [(max_n, min_count) for max_n in (3, 4, 5) for min_count in (10, 50)]
# Among dev accuracies within this of the best, the smallest table wins (the file ships in git).
TOLERANCE = 0.005
SEED = 20240515
WORD_SAMPLE = 5000  # test words per language
DEV_WORD_SAMPLE = 2000
SENTENCE_LENGTHS = (2, 3, 5, 10)
SENTENCES = 1000  # per language and length
DEV_SENTENCES = 300


def rng(*key: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64([SEED, *key]))


def split_of(word: str) -> str:
    h = hashlib.sha256(SPLIT_SALT + word[:PREFIX].encode("utf-8")).digest()
    b = int.from_bytes(h[:4], "big") % 10
    return "test" if b == 0 else "dev" if b == 1 else "train"


def sha256_file(path: str) -> str:
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def package_version(pkg: str) -> str:
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", pkg], capture_output=True, text=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def read_lists(dict_dir: str):
    """Per language: the set of its words, and where they came from."""
    vocab: Dict[str, set] = {}
    sources = []
    for code, name, files, packages in LANGUAGES:
        ws = set()
        for f in files:
            path = os.path.join(dict_dir, f)
            entries = dropped = 0
            kept = []
            with open(path, encoding="utf-8") as fh:
                for line in fh:
                    entry = line.strip()
                    if not entry:
                        continue
                    entries += 1
                    # The English lists spell out the possessive of ~29,000 words ("Ernest's"):
                    # a quarter of the list, each a copy of another entry plus 's.
                    if code == "en" and entry.endswith("'s"):
                        dropped += 1
                        continue
                    kept.append(entry)
            # The words of each entry, read a block of entries at a time: the same words, since a
            # line break separates words as an entry's end does (NFC, lower-casing and the word
            # pattern never join across it); the retrain tests compare the whole table.
            for start in range(0, len(kept), 4096):
                ws.update(nb.words("\n".join(kept[start:start + 4096])))
            sources.append({"language": code, "file": path, "sha256": sha256_file(path), "entries": entries,
                            "dropped_possessives": dropped})
        vocab[code] = ws
    packages = sorted({p.strip() for *_, pkgs in LANGUAGES for p in pkgs.split(",")})
    return vocab, sources, {p: package_version(p) for p in packages}


def count(words: Sequence[str], max_n: int) -> collections.Counter:
    """The n-gram counts of nb.ngrams over every word (the same multiset), counted in NumPy: the
    padded words are joined by NUL, each character becomes a small integer, each window of n
    characters one integer in that base, and windows that cross a NUL are left out."""
    c: collections.Counter = collections.Counter("".join(words))  # n = 1: the letters, not the padding
    text = "\0".join(" " + w + " " for w in words)
    points = np.frombuffer(text.encode("utf-32-le"), dtype="<u4")
    alphabet, ids = np.unique(points, return_inverse=True)
    ids = ids.astype(np.int64)
    base = len(alphabet)
    assert base ** max_n < 2 ** 62, "too many distinct characters for integer n-gram keys"
    nul = np.concatenate([[0], np.cumsum(points == 0)])
    for n in range(2, max_n + 1):
        windows = len(points) - n + 1
        if windows <= 0:
            break
        keys = np.zeros(windows, dtype=np.int64)
        for j in range(n):
            keys = keys * base + ids[j:j + windows]
        keys = keys[nul[n:n + windows] == nul[:windows]]  # no NUL inside the window
        uniq, freq = np.unique(keys, return_counts=True)
        digits = np.empty((len(uniq), n), dtype="<u4")
        rest = uniq.copy()
        for j in range(n - 1, -1, -1):
            digits[:, j] = alphabet[rest % base]
            rest //= base
        joined = digits.tobytes().decode("utf-32-le")
        c.update(dict(zip((joined[i * n:(i + 1) * n] for i in range(len(uniq))), freq.tolist())))
    return c


def counts_table(per_lang: Dict[str, collections.Counter], max_n: int, min_count: int) -> Dict[str, tuple]:
    total: collections.Counter = collections.Counter()
    for c in per_lang.values():
        total.update(c)
    return {g: tuple(per_lang[code][g] for code in CODES) for g, n in sorted(total.items()) if n >= min_count and len(g) <= max_n}


def predict(table: nb.Table, ws: Sequence[str]):
    probs, _known, _seen = table.posterior(ws)
    if probs is None:
        return None, None
    best = max(range(len(probs)), key=lambda i: (probs[i], -i))
    return CODES[best], probs


def sample_words(words: List[str], n: int, gen: np.random.Generator) -> List[str]:
    idx = gen.choice(len(words), size=min(n, len(words)), replace=False)
    return [words[i] for i in sorted(idx)]


def make_sentences(words: List[str], k: int, n: int, gen: np.random.Generator) -> List[List[str]]:
    return [[words[i] for i in gen.choice(len(words), size=k, replace=False)] for _ in range(n)]


def ece(conf: Sequence[float], correct: Sequence[bool], bins: int = 10) -> float:
    total = len(conf)
    err = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        idx = [i for i, c in enumerate(conf) if (lo < c <= hi) or (b == 0 and c == lo)]
        if idx:
            acc = sum(correct[i] for i in idx) / len(idx)
            mean = sum(conf[i] for i in idx) / len(idx)
            err += len(idx) / total * abs(acc - mean)
    return err


def word_eval(table: nb.Table, split_words: Dict[str, List[str]], owners, n: int, key: int):
    """Accuracy on single held-out words: strict (the list it was drawn from) and lenient
    (any list that holds the word), the confusion matrix (strict), and confidences."""
    per_lang = {}
    confusion = {a: {b: 0 for b in CODES} for a in CODES}
    confs: List[float] = []
    oks: List[bool] = []
    for li, code in enumerate(CODES):
        sample = sample_words(split_words[code], n, rng(key, li))
        strict = lenient = shared = 0
        for w in sample:
            guess, probs = predict(table, [w])
            confusion[code][guess] += 1
            strict += guess == code
            lenient += guess in owners[w]
            shared += len(owners[w]) > 1
            confs.append(max(probs))
            oks.append(guess in owners[w])
        per_lang[code] = {"words": len(sample), "accuracy": strict / len(sample), "accuracy_any_list": lenient / len(sample),
                          "in_several_lists": shared / len(sample)}
    return per_lang, confusion, confs, oks


def sentence_eval(table: nb.Table, split_words: Dict[str, List[str]], lengths, n: int, key: int):
    out = {}
    confusion3 = {a: {b: 0 for b in CODES} for a in CODES}
    confs: List[float] = []
    oks: List[bool] = []
    for k in lengths:
        row = {}
        for li, code in enumerate(CODES):
            ok = 0
            for sentence in make_sentences(split_words[code], k, n, rng(key, 100 + k, li)):
                guess, probs = predict(table, sentence)
                ok += guess == code
                if k == 3:
                    confusion3[code][guess] += 1
                    confs.append(max(probs))
                    oks.append(guess == code)
            row[code] = ok / n
        out[str(k)] = row
    return out, confusion3, confs, oks


def fit_temperature(table: nb.Table, split_words, owners, key: int) -> float:
    """The temperature that minimises the log loss on dev words held by one list only."""
    scores, labels = [], []
    for li, code in enumerate(CODES):
        for w in sample_words(split_words[code], DEV_WORD_SAMPLE, rng(key, li)):
            if len(owners[w]) != 1:
                continue
            total, known, _ = table.score([w])
            if known:
                scores.append(total)
                labels.append(li)

    def loss(t: float) -> float:
        s = 0.0
        for total, y in zip(scores, labels):
            scaled = [v / t for v in total]
            top = max(scaled)
            s += top + math.log(sum(math.exp(v - top) for v in scaled)) - scaled[y]
        return s / len(scores)

    lo, hi = math.log(0.5), math.log(100.0)  # golden-section search on log T
    g = (math.sqrt(5) - 1) / 2
    a, b = hi - g * (hi - lo), lo + g * (hi - lo)
    fa, fb = loss(math.exp(a)), loss(math.exp(b))
    for _ in range(40):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - g * (hi - lo)
            fa = loss(math.exp(a))
        else:
            lo, a, fa = a, b, fb
            b = lo + g * (hi - lo)
            fb = loss(math.exp(b))
    return round(math.exp((lo + hi) / 2), 2)


def write_counts(path: str, counts: Dict[str, tuple]) -> str:
    text = "".join("%s\t%s\n" % (g, "\t".join(str(v) for v in row)) for g, row in counts.items())
    for g in counts:
        if "\t" in g or "\n" in g:
            raise ValueError("n-gram %r holds a separator" % g)
    raw = text.encode("utf-8")
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, compresslevel=9, mtime=0) as gz:
        gz.write(raw)
    with open(path, "wb") as fh:
        fh.write(buf.getvalue())
    return hashlib.sha256(raw).hexdigest()


def write_json(path: str, value) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        json.dump(value, fh, indent=2, ensure_ascii=False, sort_keys=False)
        fh.write("\n")


def rounded(value, digits: int = 4):
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v, digits) for v in value]
    return value


# Texts whose answers the worker must reproduce exactly (test/model-langid.test.ts).
VECTOR_TEXTS = [
    "the quick brown fox jumps over the lazy dog",
    "Der schnelle braune Fuchs springt über den faulen Hund",
    "le renard brun rapide saute par-dessus le chien paresseux",
    "el rápido zorro marrón salta sobre el perro perezoso",
    "la volpe marrone veloce salta sopra il cane pigro",
    "a rápida raposa marrom salta sobre o cão preguiçoso",
    "de snelle bruine vos springt over de luie hond",
    "Straße",
    "l’homme d’aujourd’hui",
    "12345 !!!",
    "Привет, как дела?",
    "hello 🧬 wereld",
]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dict-dir", default="/usr/share/dict")
    ap.add_argument("--out", default=PACKAGE, help="package folder to write into (data/ is made in it)")
    ap.add_argument("--final-only", action="store_true", help="skip the model choice and the evaluation; read the choice from --report")
    ap.add_argument("--report", default=os.path.join(PACKAGE, "training_report.json"))
    args = ap.parse_args(argv)
    started = time.time()
    names = {code: name for code, name, *_ in LANGUAGES}

    vocab, sources, packages = read_lists(args.dict_dir)
    owners: Dict[str, set] = collections.defaultdict(set)
    for code in CODES:
        for w in vocab[code]:
            owners[w].add(code)
    by_prefix: Dict[str, str] = {}
    splits = {}
    for w in owners:
        prefix = w[:PREFIX]
        split = by_prefix.get(prefix)
        if split is None:
            split = by_prefix[prefix] = split_of(prefix)
        splits[w] = split
    split_words = {s: {code: [] for code in CODES} for s in ("train", "dev", "test")}
    for code in CODES:
        for w in vocab[code]:
            split_words[splits[w]][code].append(w)
    for per_code in split_words.values():
        for words_of_code in per_code.values():
            words_of_code.sort()
    max_grid_n = max(n for n, _ in GRID)
    print("read %d words in %.0f s" % (sum(len(v) for v in vocab.values()), time.time() - started), flush=True)
    counts = {s: {code: count(split_words[s][code], max_grid_n) for code in CODES} for s in ("train", "dev")}
    print("counted n-grams in %.0f s" % (time.time() - started), flush=True)

    report: dict = {}
    if args.final_only:
        with open(args.report, encoding="utf-8") as fh:
            shipped = json.load(fh)
        max_n, min_count, temperature = shipped["chosen"]["max_n"], shipped["chosen"]["min_count"], shipped["chosen"]["temperature"]
    else:
        # Model choice on dev, with tables counted on train only.
        grid = []
        for max_n, min_count in GRID:
            table = nb.Table(CODES, counts_table(counts["train"], max_n, min_count), max_n, ALPHA, 1.0)
            words_dev, _, _, _ = word_eval(table, split_words["dev"], owners, DEV_WORD_SAMPLE, 1)
            sent_dev, _, _, _ = sentence_eval(table, split_words["dev"], (3,), DEV_SENTENCES, 1)
            grid.append({"max_n": max_n, "min_count": min_count, "features": len(table.logp),
                         "dev_word_accuracy_any_list": sum(v["accuracy_any_list"] for v in words_dev.values()) / len(CODES),
                         "dev_3_word_accuracy": sum(sent_dev["3"].values()) / len(CODES)})
            print("dev", grid[-1], flush=True)
        best = max(g["dev_word_accuracy_any_list"] for g in grid)
        choice = min((g for g in grid if g["dev_word_accuracy_any_list"] >= best - TOLERANCE), key=lambda g: (g["features"], -g["dev_word_accuracy_any_list"]))
        max_n, min_count = choice["max_n"], choice["min_count"]
        dev_table = nb.Table(CODES, counts_table(counts["train"], max_n, min_count), max_n, ALPHA, 1.0)
        temperature = fit_temperature(dev_table, split_words["dev"], owners, 2)
        report["model_choice"] = {"grid": rounded(grid), "rule": "highest mean dev word accuracy (any list); among configurations within %.3f of it, the fewest n-grams" % TOLERANCE,
                                  "temperature_fit": "golden-section search of the dev log loss over single dev words held by one list only (train-only table)"}

    final_counts = {code: counts["train"][code] + counts["dev"][code] for code in CODES}
    table_counts = counts_table(final_counts, max_n, min_count)
    table = nb.Table(CODES, table_counts, max_n, ALPHA, temperature)
    data_dir = os.path.join(args.out, "data")
    os.makedirs(data_dir, exist_ok=True)
    tsv_sha = write_counts(os.path.join(data_dir, nb.COUNTS_FILE), table_counts)
    meta = {
        "languages": [{"code": code, "name": name, "word_lists": files, "debian_packages": pkgs} for code, name, files, pkgs in LANGUAGES],
        "max_n": max_n, "min_count": min_count, "alpha": ALPHA, "temperature": temperature,
        "features": len(table_counts), "counts_sha256_uncompressed": tsv_sha,
        "trained_on": "train + dev splits of the word lists (90 %%: every word whose first %d letters hash outside the test bucket)" % PREFIX,
    }
    write_json(os.path.join(data_dir, nb.META_FILE), meta)
    vectors = [{"text": t, "output": nb.identify(table, names, t)} for t in VECTOR_TEXTS]
    write_json(os.path.join(args.out, "test_vectors.json"), {"note": "answers of the shipped table; the worker must reproduce them", "vectors": vectors})
    print("wrote the model (%d n-grams) in %.0f s" % (len(table_counts), time.time() - started), flush=True)
    if args.final_only:
        return 0

    # The test split, scored once, by the shipped table.
    words_test, confusion_words, wconf, wok = word_eval(table, split_words["test"], owners, WORD_SAMPLE, 3)
    sentences_test, confusion3, sconf, sok = sentence_eval(table, split_words["test"], SENTENCE_LENGTHS, SENTENCES, 3)
    report.update({
        "data": {"sources": sources, "debian_packages": packages,
                 "words_per_language": {code: len(vocab[code]) for code in CODES},
                 "split": "sha256(%r + first %d letters) mod 10: 0 test, 1 dev, 2-9 train" % (SPLIT_SALT.decode(), PREFIX),
                 "words_per_split": {s: {code: len(split_words[s][code]) for code in CODES} for s in split_words}},
        "chosen": {"max_n": max_n, "min_count": min_count, "alpha": ALPHA, "temperature": temperature, "features": len(table_counts)},
        "test_words": {"per_language": rounded(words_test),
                       "mean_accuracy": round(sum(v["accuracy"] for v in words_test.values()) / len(CODES), 4),
                       "mean_accuracy_any_list": round(sum(v["accuracy_any_list"] for v in words_test.values()) / len(CODES), 4),
                       "confusion": confusion_words, "ece": round(ece(wconf, wok), 4),
                       "note": "%d random held-out words per language; confusion rows = the list the word was drawn from" % WORD_SAMPLE},
        "test_sentences": {"accuracy_by_length": rounded(sentences_test),
                           "mean_accuracy_by_length": {k: round(sum(v.values()) / len(CODES), 4) for k, v in sentences_test.items()},
                           "confusion_3_words": confusion3, "ece_3_words": round(ece(sconf, sok), 4),
                           "note": "%d 'sentences' per language and length, each k distinct random held-out words of that language: no grammar, no word frequencies" % SENTENCES},
        "python": sys.version.split()[0], "numpy": np.__version__,
    })
    # What the gateway test replays (test/model-langid.test.ts): every 5th sampled test word, and
    # every 3-word test sentence, with the shipped table's accuracy on exactly these lines.
    eval_dir = os.path.join(args.out, "eval")
    os.makedirs(eval_dir, exist_ok=True)
    word_lines, word_ok = [], 0
    for li, code in enumerate(CODES):
        for w in sample_words(split_words["test"][code], WORD_SAMPLE, rng(3, li))[::5]:
            word_lines.append("%s\t%s\t%s\n" % (code, w, ",".join(sorted(owners[w]))))
            word_ok += predict(table, [w])[0] in owners[w]
    sentence_lines, sentence_ok = [], 0
    for li, code in enumerate(CODES):
        for sentence in make_sentences(split_words["test"][code], 3, SENTENCES, rng(3, 103, li)):
            sentence_lines.append("%s\t%s\n" % (code, " ".join(sentence)))
            sentence_ok += predict(table, sentence)[0] == code
    with open(os.path.join(eval_dir, "test_words.tsv"), "w", encoding="utf-8", newline="\n") as fh:
        fh.write("".join(word_lines))
    with open(os.path.join(eval_dir, "test_sentences_3.tsv"), "w", encoding="utf-8", newline="\n") as fh:
        fh.write("".join(sentence_lines))
    report["eval_files"] = {
        "test_words.tsv": {"lines": len(word_lines), "accuracy_any_list": round(word_ok / len(word_lines), 4),
                           "format": "language, word, every list holding the word"},
        "test_sentences_3.tsv": {"lines": len(sentence_lines), "accuracy": round(sentence_ok / len(sentence_lines), 4),
                                 "format": "language, three held-out words"},
    }
    write_json(args.report, report)
    print(json.dumps({k: report[k] for k in ("chosen",)}), flush=True)
    print("mean word accuracy %.4f (any list %.4f); sentences %s; %.0f s" % (
        report["test_words"]["mean_accuracy"], report["test_words"]["mean_accuracy_any_list"],
        report["test_sentences"]["mean_accuracy_by_length"], time.time() - started), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
