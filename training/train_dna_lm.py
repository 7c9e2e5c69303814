"""Trains dna-lm: a k-th order Markov chain over A/C/G/T with additive smoothing (standard library only).

  /usr/bin/python3 training/train_dna_lm.py [--data ../shared/data] [--out models/dna-lm]

Data: the 2106 short sequences in ../shared/data (106 E. coli promoter-region windows of 57 bp,
2000 primate splice-junction windows of 60 bp; about 126 000 bases in all). Sequences that share
a 15-mer on either strand are linked and each connected group stays in one split (the promoter
file holds overlapping windows of one region: a random split would leak them). A group goes to
test when sha256("dna-lm:" + its first sequence id) mod 10 == 0, to validation when it is 1, else
to training: the split depends on nothing but the files.

Model choice: order k in 0..8 and the smoothing alpha in a small grid, by validation perplexity
(ties: the smaller k, then the smaller alpha). The shipped model is that choice refitted on
training + validation; its perplexity on the test groups, never used for any choice, is the
figure the card reports. Counts are integers and floats are written by Python's repr, so the
output files are byte-identical on every run and machine.

Writes <out>/data/model.json (the counts) and <out>/training_report.json.
"""
import argparse
import hashlib
import json
import math
import os
import sys

BASES = "ACGT"
INDEX = {b: i for i, b in enumerate(BASES)}
ORDERS = range(0, 9)
ALPHAS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0)
GROUP_K = 15
COMPLEMENT = str.maketrans("ACGT", "TGCA")
HERE = os.path.dirname(os.path.abspath(__file__))


def sha256(path):
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def read_data(data_dir):
    seqs = []
    fasta = os.path.join(data_dir, "ecoli_promoters.fasta")
    with open(fasta, encoding="ascii") as fh:
        name = None
        for line in fh:
            line = line.strip()
            if line.startswith(">"):
                name = line[1:].split()[0]
            elif line:
                seqs.append((name, line.upper()))
    tsv = os.path.join(data_dir, "statlog_splice_train.tsv")
    with open(tsv, encoding="ascii") as fh:
        header = fh.readline().rstrip("\n").split("\t")
        at = header.index("sequence")
        for line in fh:
            fields = line.rstrip("\n").split("\t")
            seqs.append((fields[0], fields[at].upper()))
    for name, s in seqs:
        if not s or any(ch not in INDEX for ch in s):
            raise SystemExit("%s: only A/C/G/T expected" % name)
    return seqs, {"ecoli_promoters.fasta": sha256(fasta), "statlog_splice_train.tsv": sha256(tsv)}


def groups_by_shared_kmer(seqs):
    parent = list(range(len(seqs)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first = {}
    for i, (_, s) in enumerate(seqs):
        for j in range(len(s) - GROUP_K + 1):
            kmer = s[j:j + GROUP_K]
            canonical = min(kmer, kmer.translate(COMPLEMENT)[::-1])
            k = first.setdefault(canonical, i)
            if k != i:
                a, b = find(i), find(k)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    groups = {}
    for i in range(len(seqs)):
        groups.setdefault(find(i), []).append(i)
    return sorted(groups.values())


def split_of(first_name):
    return int(hashlib.sha256(("dna-lm:" + first_name).encode()).hexdigest(), 16) % 10


def count(seqs, k):
    """counts[j][context] = [n(A), n(C), n(G), n(T)] after that context of length j, for j <= k."""
    counts = [dict() for _ in range(k + 1)]
    for s in seqs:
        for i, ch in enumerate(s):
            b = INDEX[ch]
            for j in range(min(i, k) + 1):
                row = counts[j].setdefault(s[i - j:i], [0, 0, 0, 0])
                row[b] += 1
    return counts


def log_likelihood(seqs, counts, k, alpha):
    """Sum of ln P(base | up to k preceding bases) and the number of bases."""
    total = 0.0
    n = 0
    for s in seqs:
        for i, ch in enumerate(s):
            j = min(i, k)
            row = counts[j].get(s[i - j:i])
            seen = sum(row) if row else 0
            total += math.log(((row[INDEX[ch]] if row else 0) + alpha) / (seen + 4 * alpha))
            n += 1
    return total, n


def perplexity(seqs, counts, k, alpha):
    ll, n = log_likelihood(seqs, counts, k, alpha)
    return math.exp(-ll / n)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.path.join(HERE, "..", "..", "shared", "data"))
    ap.add_argument("--out", default=os.path.join(HERE, "..", "models", "dna-lm"))
    args = ap.parse_args(argv)
    seqs, hashes = read_data(args.data)
    groups = groups_by_shared_kmer(seqs)
    parts = {"train": [], "validation": [], "test": []}
    group_counts = {"train": 0, "validation": 0, "test": 0}
    for g in groups:
        r = split_of(seqs[g[0]][0])
        part = "test" if r == 0 else "validation" if r == 1 else "train"
        parts[part].extend(seqs[i][1] for i in g)
        group_counts[part] += 1

    grid = []
    best = None
    train_counts = count(parts["train"], max(ORDERS))
    for k in ORDERS:
        for alpha in ALPHAS:
            ppl = perplexity(parts["validation"], train_counts, k, alpha)
            grid.append({"order": k, "alpha": alpha, "validation_perplexity": round(ppl, 6)})
            if best is None or ppl < best[0] - 1e-12:
                best = (ppl, k, alpha)
    _, order, alpha = best
    final = count(parts["train"] + parts["validation"], order)
    test_ppl = perplexity(parts["test"], final, order, alpha)
    unigram = count(parts["train"] + parts["validation"], 0)
    test_ppl0 = perplexity(parts["test"], unigram, 0, 1.0)
    train_ppl = perplexity(parts["train"] + parts["validation"], final, order, alpha)

    model = {
        "format": "isomodel-dna-lm/1",
        "kind": "k-th order Markov chain over A/C/G/T, additive (Lidstone) smoothing",
        "order": order,
        "alpha": alpha,
        "alphabet": BASES,
        "counts": [{ctx: final[j][ctx] for ctx in sorted(final[j])} for j in range(order + 1)],
    }
    report = {
        "model": "dna-lm",
        "script": "training/train_dna_lm.py",
        "python": sys.version.split()[0],
        "data": {"files": hashes, "sequences": len(seqs), "bases": sum(len(s) for _, s in seqs)},
        "split": {
            "rule": "groups of sequences sharing a %d-mer (either strand); sha256('dna-lm:' + first id) mod 10: "
                    "0 test, 1 validation, else train" % GROUP_K,
            "groups": group_counts,
            "sequences": {p: len(v) for p, v in parts.items()},
            "bases": {p: sum(map(len, v)) for p, v in parts.items()},
        },
        "grid": grid,
        "chosen": {"order": order, "alpha": alpha, "validation_perplexity": round(best[0], 6)},
        "shipped_model": "the chosen order and alpha refitted on train + validation",
        "perplexity_per_base": {
            "test": round(test_ppl, 6),
            "test_bits_per_base": round(math.log2(test_ppl), 6),
            "test_order0_baseline": round(test_ppl0, 6),
            "uniform": 4.0,
            "train_plus_validation": round(train_ppl, 6),
        },
    }
    os.makedirs(os.path.join(args.out, "data"), exist_ok=True)
    with open(os.path.join(args.out, "data", "model.json"), "w", encoding="ascii") as fh:
        json.dump(model, fh, sort_keys=True, separators=(",", ":"))
        fh.write("\n")
    with open(os.path.join(args.out, "training_report.json"), "w", encoding="ascii") as fh:
        json.dump(report, fh, sort_keys=True, indent=1)
        fh.write("\n")
    print("order %d, alpha %g: test perplexity %.4f per base (order-0 %.4f, uniform 4)"
          % (order, alpha, test_ppl, test_ppl0))


if __name__ == "__main__":
    main(sys.argv[1:])
