#!/usr/bin/python3
"""Primate splice-junction classifier (StatLog DNA / UCI splice, 60 bp, classes ei / ie / n).

Reproduce:   /usr/bin/python3 training/train_splice.py               (full run: CV + export)
             /usr/bin/python3 training/train_splice.py --final-only --out DIR
                                                    (model choice on all data + export, no CV)
Outputs:     models/splice/model.onnx, test_vectors.json, training_report.json

  * evaluation is grouped: sequences sharing a canonical 15-mer (either strand) form one group
    (exact duplicates, overlapping windows of one gene, shared repeats) and a group never spans
    two folds (common.kmer_groups / common.grouped_folds);
  * candidates: multinomial L2 logistic regression on the 240 one-hot features (`lr_onehot`), and
    on one-hot + the 59 x 16 products of neighbouring one-hot rows (`lr_onehot_dinuc`, 1184
    features). Both are convex: fitted to their unique optimum and rounded to a 2^-18 grid
    (common.fit_logistic), they give the same bytes on every machine, and so does the choice
    between them. (The earlier CNN and CNN+LR ensemble are gone: their training was not
    reproducible across machines, which changed the exported model, and they were within one
    fold-sd of the logistic regression.)
  * model choice is nested: inside every outer training fold an inner grouped 5-fold CV picks the
    candidate and C (highest inner accuracy, ties -> the simpler candidate, then the smaller C);
  * calibration: a temperature fitted on the chosen configuration's inner out-of-fold logits,
    kept when it lowers the grouped outer-CV expected calibration error;
  * generated sequences (never trained on, fixed seeds): random 60-mers at 40/50/60 % GC and
    dinucleotide shuffles of held-out junctions; the report gives how often each is called a
    junction (ei or ie).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (first: it pins BLAS/OpenMP to one thread before NumPy loads)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATA = os.path.join(os.path.dirname(ROOT), "shared", "data", "statlog_splice_train.tsv")
DATA_DISPLAY = "../shared/data/statlog_splice_train.tsv"
CLASSES = ["ei", "ie", "n"]
LENGTH = 60
N_OUTER, N_INNER = 10, 5
C_GRID = [0.003, 0.01, 0.03, 0.1]
CANDIDATES = ["lr_onehot", "lr_onehot_dinuc"]
# simplest first: ties go to one-hot, then to the stronger penalty
CONFIGS = [{"candidate": c, "C": C} for c in CANDIDATES for C in C_GRID]
EVAL_GC = (0.40, 0.50, 0.60)
EVAL_RANDOM = 1000
EVAL_SHUFFLES = 5                  # per held-out ei / ie sequence
EVAL_SET, OUTER_SHUFFLE, VECTORS, FINAL = 4, 3, 6, 1000


def rng(*key):
    return np.random.default_rng(list(key))


# ----------------------------------------------------------------------------- data

def load(path):
    ids, seqs, labels = [], [], []
    with open(path) as f:
        header = f.readline().rstrip("\n").split("\t")
        assert header == ["id", "sequence", "label"], header
        for line in f:
            if not line.strip():
                continue
            i, s, lab = line.rstrip("\n").split("\t")
            ids.append(i)
            seqs.append(s)
            labels.append(CLASSES.index(lab))
    return ids, seqs, np.array(labels, dtype=np.int64)


def features(x: np.ndarray, candidate: str) -> np.ndarray:
    """x [n, L, 4] -> one-hot (pos-major) [+ products of neighbouring rows], float64."""
    flat = x.reshape(len(x), -1).astype(np.float64)
    if candidate == "lr_onehot":
        return flat
    pair = (x[:, :-1, :, None] * x[:, 1:, None, :]).reshape(len(x), -1).astype(np.float64)
    return np.concatenate([flat, pair], axis=1)


# ----------------------------------------------------------------------------- nested selection

def select(F, y, groups, seed_key):
    """Inner grouped CV on (F, y) only. F: {candidate: feature matrix}. Returns (config,
    temperature fitted on its inner out-of-fold logits, table of inner accuracies)."""
    folds = common.grouped_folds(y, groups, N_INNER, seed=seed_key)
    logits = {ci: np.zeros((len(y), len(CLASSES))) for ci in range(len(CONFIGS))}
    for tr, te in folds:
        previous = {}          # warm start along the C path of each candidate (same optimum, fewer steps)
        for ci, cfg in enumerate(CONFIGS):
            X = F[cfg["candidate"]]
            W, b = common.fit_logistic(X[tr], y[tr], cfg["C"], len(CLASSES), start=previous.get(cfg["candidate"]))
            previous[cfg["candidate"]] = (W, b)
            logits[ci][te] = X[te] @ W.T + b
    table = [{**cfg, "inner_accuracy": round(float(np.mean(logits[ci].argmax(1) == y)), 9)}
             for ci, cfg in enumerate(CONFIGS)]
    oof = logits
    best = max(range(len(CONFIGS)), key=lambda i: (table[i]["inner_accuracy"], -i))
    return CONFIGS[best], common.fit_temperature(oof[best], y), table


def softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def junction_rate(p):
    return float(np.mean(p.argmax(1) != CLASSES.index("n")))


def run_cv(folds, x, seqs, y, groups, seed, label, evals, log=True):
    F = {c: features(x, c) for c in CANDIDATES}
    EF = {name: {c: features(e, c) for c in CANDIDATES} for name, e in evals.items()}
    n = len(y)
    p_raw, p_cal = np.zeros((n, 3)), np.zeros((n, 3))
    fold_acc = []
    rates = collections.defaultdict(list)
    chosen = []
    for k, (tr, te) in enumerate(folds):
        cfg, t, _ = select({c: F[c][tr] for c in CANDIDATES}, y[tr], groups[tr], k)
        W, b = common.fit_logistic(F[cfg["candidate"]][tr], y[tr], cfg["C"], len(CLASSES))
        chosen.append({**cfg, "temperature": t})
        z = F[cfg["candidate"]][te] @ W.T + b
        p_raw[te], p_cal[te] = softmax(z), softmax(z / t)
        fold_acc.append(float(np.mean(z.argmax(1) == y[te])))
        for name, ef in EF.items():
            rates[name].append(junction_rate(ef[cfg["candidate"]] @ W.T + b))
        r = rng(seed, OUTER_SHUFFLE, label, k)
        sh = [common.dinucleotide_shuffle(seqs[i], r) for i in te if y[i] != CLASSES.index("n")
              for _ in range(EVAL_SHUFFLES)]
        rates["shuffled_heldout_junctions"].append(
            junction_rate(features(common.encode_many(sh, LENGTH), cfg["candidate"]) @ W.T + b))
        if log:
            print(f"    fold {k + 1}/{len(folds)}: acc {fold_acc[-1]:.4f}  chose {cfg['candidate']} C={cfg['C']} "
                  f"T={t:.3f}  junction calls: " + " ".join(f"{a}={v[-1]:.3f}" for a, v in rates.items()), flush=True)
    return {"p_raw": p_raw, "p_cal": p_cal, "fold_acc": fold_acc, "rates": dict(rates), "chosen": chosen}


def metrics(res, y):
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support
    pred = res["p_raw"].argmax(1)
    p, r, f, s = precision_recall_fscore_support(y, pred, labels=[0, 1, 2], zero_division=0)
    return {
        "accuracy": common.spread(res["fold_acc"]),
        "pooled_accuracy": float((pred == y).mean()),
        "n_errors": int((pred != y).sum()),
        "per_class": {CLASSES[k]: {"precision": float(p[k]), "recall": float(r[k]), "f1": float(f[k]),
                                   "support": int(s[k])} for k in range(3)},
        "confusion_matrix": {"rows_true_cols_pred": CLASSES,
                             "matrix": confusion_matrix(y, pred, labels=[0, 1, 2]).tolist()},
        "ece_10_bins": common.ece(res["p_raw"], y),
        "ece_10_bins_temperature_scaled": common.ece(res["p_cal"], y),
        "brier": common.brier(res["p_raw"], y),
        "brier_temperature_scaled": common.brier(res["p_cal"], y),
        "called_junction_on_generated": {k: common.spread(v) for k, v in res["rates"].items()},
        "chosen_configurations": dict(collections.Counter(
            f"{c['candidate']} C={c['C']}" for c in res["chosen"])),
    }


def print_block(title, m):
    a = m["accuracy"]
    print(f"\n== {title}")
    print(f"accuracy {100 * a['mean']:.2f}% +- {100 * a['std']:.2f}% (mean +- sd over {a['n']} folds, range "
          f"{100 * a['min']:.1f}-{100 * a['max']:.1f}%; pooled {100 * m['pooled_accuracy']:.2f}%, {m['n_errors']} errors)")
    print("class  precision  recall   f1     support")
    for c, v in m["per_class"].items():
        print(f"{c:5s}  {v['precision']:.4f}     {v['recall']:.4f}   {v['f1']:.4f}  {v['support']}")
    print("confusion matrix (rows = true, cols = predicted):", CLASSES)
    for c, row in zip(CLASSES, m["confusion_matrix"]["matrix"]):
        print(f"  {c:3s} {row}")
    print(f"ECE (10 bins) {m['ece_10_bins']:.4f}, temperature-scaled {m['ece_10_bins_temperature_scaled']:.4f}")
    print("called a junction (ei or ie) on generated sequences: "
          + ", ".join(f"{k} {100 * v['mean']:.1f}%" for k, v in m["called_junction_on_generated"].items()))
    print(f"configurations chosen inside the outer folds: {m['chosen_configurations']}")


# ----------------------------------------------------------------------------- export

def dinuc_features(x: torch.Tensor) -> torch.Tensor:
    pair = x[:, :-1, :, None] * x[:, 1:, None, :]
    return torch.cat([torch.flatten(x, 1), torch.flatten(pair, 1)], dim=1)


class LinearSoftmax(nn.Module):
    def __init__(self, coef: np.ndarray, intercept: np.ndarray, dinuc: bool):
        super().__init__()
        self.dinuc = dinuc
        self.linear = nn.Linear(coef.shape[1], coef.shape[0])
        with torch.no_grad():
            self.linear.weight.copy_(torch.tensor(coef, dtype=torch.float32))
            self.linear.bias.copy_(torch.tensor(intercept, dtype=torch.float32))

    def forward(self, x):
        f = dinuc_features(x) if self.dinuc else torch.flatten(x, 1)
        return torch.softmax(self.linear(f), dim=1)


def export(out_dir, seqs, y, groups, seed, use_temperature):
    x = common.encode_many(seqs, LENGTH)
    F = {c: features(x, c) for c in CANDIDATES}
    cfg, t, table = select(F, y, groups, FINAL)
    W, b = common.fit_logistic(F[cfg["candidate"]], y, cfg["C"], len(CLASSES))
    temperature = t if use_temperature else 1.0
    module = LinearSoftmax(W / temperature, b / temperature, cfg["candidate"] == "lr_onehot_dinuc").eval()

    r = rng(seed, VECTORS)
    amb = []
    for _ in range(14):
        s = list(seqs[int(r.integers(len(seqs)))])
        for p in r.choice(LENGTH, size=3, replace=False):
            s[p] = "NRYSWKMBDHV"[int(r.integers(11))]
        amb.append("".join(s))
    verify_x = np.concatenate([x[:50], common.encode_many(amb, LENGTH)])
    meta = {
        "description": f"Primate splice-junction classifier ({cfg['candidate']}, multinomial L2 logistic "
                       "regression); input onehot [batch,60,4] A,C,G,T; output probabilities [batch,3] ei,ie,n",
        "classes": CLASSES, "channel_order": list(common.CHANNELS), "sequence_length": str(LENGTH),
        "encoding": common.ENCODING_DOC["rule"], "model_choice": cfg["candidate"],
        "configuration": {**cfg, "temperature": temperature},
    }
    onnx_info = common.export_and_verify(module, os.path.join(out_dir, "model.onnx"), LENGTH, CLASSES, verify_x, meta)

    vec_seqs = seqs[:4] + [seqs[4].lower()] + amb[:3]
    vec_p = exported_p(module, cfg["candidate"], vec_seqs, exact=True)
    common.write_json(os.path.join(out_dir, "test_vectors.json"), {
        "note": "expected outputs of model.onnx, computed in float64 from its float32 weights (every logit an "
                "exactly rounded sum, so the file is the same on every machine); the ONNX graph agrees within 1e-5. "
                "Sequences 1-5 are from the training file (5th lower-cased), 6-8 carry 3 IUPAC codes each.",
        "classes": CLASSES,
        "tolerance": 1e-4,
        "cases": [{"sequence": s, "probabilities": [float(v) for v in p],
                   "onehot_first_3_positions": e[:3].tolist()}
                  for s, p, e in zip(vec_seqs, vec_p, common.encode_many(vec_seqs, LENGTH))],
    })
    return cfg, t, temperature, table, module, onnx_info


def exported_p(module, candidate, seqs, exact=False):
    """[n, 3] probabilities of the exported float32 weights, in float64 NumPy (not torch float32:
    the written figures must not depend on the machine's vector kernels); `exact`: every logit a
    correctly rounded sum (test vectors)."""
    W, b = common.module_affine(module.linear)
    x = features(common.encode_many(seqs, LENGTH), candidate)
    return softmax(common.exact_affine(x, W, b) if exact else x @ W.T + b)


def final_model_rates(module, candidate, seed):
    r = rng(seed, EVAL_SET)
    evals = {f"random_gc{int(round(g * 100))}": common.random_dna(EVAL_RANDOM, LENGTH, g, r) for g in EVAL_GC}
    out = {}
    for name, ss in evals.items():
        p = exported_p(module, candidate, ss)
        out[name] = {"n": len(ss), "called_junction": junction_rate(p),
                     "called": {c: float(np.mean(p.argmax(1) == k)) for k, c in enumerate(CLASSES)}}
    return out


# ----------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--out", default=os.path.join(ROOT, "models", "splice"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--final-only", action="store_true",
                    help="skip the CV; choose the model on all data and export (reads the calibration "
                         "decision from the report in --report)")
    ap.add_argument("--report", default=os.path.join(ROOT, "models", "splice", "training_report.json"))
    args = ap.parse_args()

    t0 = time.time()
    seed = args.seed
    common.set_determinism(seed)
    ids, seqs, y = load(args.data)
    x = common.encode_many(seqs, LENGTH)
    groups = common.kmer_groups(seqs)
    counts = collections.Counter(CLASSES[v] for v in y)
    gsum = common.group_summary(groups, y, CLASSES)
    dup = collections.Counter(seqs)
    print(f"data {args.data}: {len(y)} sequences of {LENGTH} bp, classes {dict(counts)}; "
          f"{sum(1 for v in dup.values() if v > 1)} sequences occur more than once; {gsum['n_groups']} groups sharing "
          f"a {common.GROUP_K}-mer (largest {gsum['largest_groups']})", flush=True)

    if args.final_only:
        with open(args.report) as f:
            use_t = json.load(f)["final_model"]["temperature_applied"]
        cfg, t, temperature, _, _, onnx_info = export(args.out, seqs, y, groups, seed, use_t)
        print(f"chose {cfg}, temperature {temperature}; exported {onnx_info['path']} sha256 {onnx_info['sha256']}; "
              f"{time.time() - t0:.0f}s")
        return

    r = rng(seed, EVAL_SET)
    evals = {f"random_gc{int(round(g * 100))}": common.encode_many(common.random_dna(EVAL_RANDOM, LENGTH, g, r), LENGTH)
             for g in EVAL_GC}
    timings = {}
    t = time.time()
    print(f"\nnested grouped {N_OUTER}-fold CV", flush=True)
    grouped = run_cv(common.grouped_folds(y, groups, N_OUTER, seed), x, seqs, y, groups, seed, 0, evals)
    timings["nested_grouped"] = round(time.time() - t, 1)
    t = time.time()
    print(f"\nnested ordinary (ungrouped) stratified {N_OUTER}-fold CV", flush=True)
    plain = run_cv(common.plain_folds(y, N_OUTER, seed), x, seqs, y, groups, seed, 100, evals, log=False)
    timings["nested_ordinary"] = round(time.time() - t, 1)
    mg, mp = metrics(grouped, y), metrics(plain, y)
    print_block("grouped nested CV (the figure the card reports first)", mg)
    print_block("ordinary nested CV (ungrouped; comparison)", mp)

    use_t = mg["ece_10_bins_temperature_scaled"] < mg["ece_10_bins"]
    print(f"\ntemperature scaling {'applied' if use_t else 'not applied'} (grouped-CV ECE raw "
          f"{mg['ece_10_bins']:.4f} vs scaled {mg['ece_10_bins_temperature_scaled']:.4f})", flush=True)

    t = time.time()
    cfg, t_fit, temperature, table, module, onnx_info = export(args.out, seqs, y, groups, seed, use_t)
    timings["final_selection_fit_export"] = round(time.time() - t, 1)
    rates = final_model_rates(module, cfg["candidate"], seed)
    print(f"final model: {cfg['candidate']} C={cfg['C']} temperature={temperature}; exported {onnx_info['path']} "
          f"({onnx_info['size_bytes']} bytes, sha256 {onnx_info['sha256'][:12]}…)")
    print("final model, called a junction: " + ", ".join(f"{k} {100 * v['called_junction']:.1f}%" for k, v in rates.items()))

    report = {
        "task": "primate splice-junction classification (StatLog DNA / UCI splice-junction data)",
        "command": "/usr/bin/python3 training/train_splice.py",
        "data": {"path": DATA_DISPLAY, "sha256": common.sha256_file(args.data), "n": len(y),
                 "sequence_length": LENGTH, "class_counts": dict(counts),
                 "distinct_sequences_repeated": sum(1 for v in dup.values() if v > 1)},
        "groups": gsum,
        "encoding": common.ENCODING_DOC,
        "classes": CLASSES,
        "seed": seed,
        "procedure": {
            "outer": f"{N_OUTER}-fold StratifiedGroupKFold (groups above), seed {seed}; ordinary comparison: "
                     f"{N_OUTER}-fold StratifiedKFold, seed {seed}, same nested procedure",
            "inner": f"{N_INNER}-fold StratifiedGroupKFold inside each outer training fold over {len(CONFIGS)} "
                     "configurations (candidate x C); highest inner accuracy, ties -> earlier configuration",
            "configurations": CONFIGS,
            "calibration": "temperature fitted on the chosen configuration's inner out-of-fold logits; applied when "
                           "it lowers the grouped outer-CV ECE",
            "generated_sequences": f"{EVAL_RANDOM} random 60-mers at each of {list(EVAL_GC)} GC; {EVAL_SHUFFLES} "
                                   "dinucleotide shuffles of every held-out ei / ie sequence; never trained on",
        },
        "cv": {"grouped": mg, "ordinary": mp},
        "final_model": {"configuration": cfg, "temperature_fitted": t_fit, "temperature_applied": use_t,
                        "temperature": temperature, "inner_scores": table, "called_junction_on_generated": rates},
        "onnx": onnx_info,
        "reference": "StatLog project (Michie, Spiegelhalter & Taylor 1994), DNA dataset: best test error about 4 % "
                     "(RBF network 4.1 %) on the 1186-sequence test set",
        "packages": common.package_versions(),
    }
    common.write_json(os.path.join(args.out, "training_report.json"), report)
    print(f"\ntimings (s): {timings}; total {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
