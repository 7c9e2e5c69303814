#!/usr/bin/python3
"""E. coli promoter recogniser (UCI "Molecular Biology (Promoter Gene Sequences)", 106 x 57 bp).

Reproduce:   /usr/bin/python3 training/train_promoter.py            (full run: CV + export)
             /usr/bin/python3 training/train_promoter.py --final-only --out DIR
                                                   (model choice on all data + export, no CV)
Outputs:     models/promoter/model.onnx, test_vectors.json, training_report.json

Why it is built this way. The 53 non-promoters of the file are overlapping windows of one region
(48 of them share a 15-mer with another non-promoter). A model scored by leave-one-out can learn
that region instead of promoters, and then calls most random DNA a promoter. So:

  * evaluation is grouped: sequences sharing a canonical 15-mer (either strand) form one group,
    and a group never spans two folds (common.kmer_groups / common.grouped_folds);
  * the model sees negatives that teach what is *not* a promoter: dinucleotide-preserving shuffles
    of the training promoters (same composition, no promoter layout), random sequences across
    the GC range of the E. coli genome (30-65 % GC) and low-complexity tandem repeats (poly-T,
    (AT)n, ...: AT-rich, no boxes). Their total weight is a hyper-parameter
    (`synthetic_share`: the share of the negative class's weight they carry; classes are balanced);
  * model choice is nested: inside every outer training fold, an inner grouped 5-fold CV picks
    (C, synthetic_share) by the mean of (accuracy on the inner held-out real sequences) and
    (specificity on held-out generated negatives: shuffles of the inner held-out promoters and
    fresh random sequences). The outer fold's sequences never influence the choice;
  * the candidate family is L2 logistic regression on the 228 one-hot features (position-specific,
    as the windows are aligned on the transcription start). It is convex: fitted to its unique
    optimum and rounded to a 2^-18 grid (common.fit_logistic), the exported bytes are the same on
    every machine with the same packages. A temperature (common.fit_temperature) is fitted on the
    inner out-of-fold logits and kept when it lowers the outer-CV calibration error;
  * baselines on the same outer splits: a position weight matrix scan of the -35 (TTGACA) and -10
    (TATAAT) boxes with a 15-19 bp spacer (the classical method), and the previously shipped
    design (an ensemble of 5 small CNNs trained on the 106 sequences only);
  * false positives are measured on sequences no model was trained on, generated with fixed
    seeds: random 57-mers at 40, 50 and 60 % GC, and dinucleotide shuffles of held-out promoters.

Deterministic: fixed seeds (NumPy PCG64 streams keyed by purpose, repeat and fold), one thread,
torch.use_deterministic_algorithms(True) for the reference CNN.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (first: it pins BLAS/OpenMP to one thread before NumPy loads)

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_DATA = os.path.join(os.path.dirname(ROOT), "shared", "data", "ecoli_promoters.fasta")
DATA_DISPLAY = "../shared/data/ecoli_promoters.fasta"
CLASSES = ["non_promoter", "promoter"]
LENGTH = 57
N_OUTER, N_INNER = 10, 5
C_GRID = [0.01, 0.03, 0.1, 0.3]
SYNTHETIC_SHARES = [0.0, 0.25, 0.5, 0.75]
# simplest first: the strongest penalty and no synthetic negatives win ties
CONFIGS = [{"C": c, "synthetic_share": s} for c in C_GRID for s in SYNTHETIC_SHARES]
SHUFFLES_PER_PROMOTER = 5          # training: dinucleotide shuffles of each training promoter
RANDOM_TRAIN = 200                 # training: random sequences, GC uniform in GC_RANGE
LOW_COMPLEXITY_TRAIN = 50          # training: tandem repeats of a 1-4 bp unit, 10 % of positions mutated
GC_RANGE = (0.30, 0.65)            # E. coli genome windows: about 30-65 % GC around a 50.8 % mean
INNER_RANDOM = 100                 # inner selection: fresh random held-out negatives
INNER_LOW_COMPLEXITY = 20          # inner selection: fresh low-complexity held-out negatives
EVAL_GC = (0.40, 0.50, 0.60)
EVAL_RANDOM = 1000                 # per GC level
EVAL_SHUFFLES = 20                 # per held-out promoter
CNN_HP = dict(members=5, channels=8, kernel=7, dropout=0.2, epochs=100, batch_size=16,
              lr=5e-3, weight_decay=1e-2)
PWM_SPACERS = range(15, 20)
# PCG64 stream keys (common.rng): one stream per purpose, never shared between training and testing
TRAIN_SYNTH, INNER_EVAL, OUTER_SHUFFLE, EVAL_SET, FINAL_SHUFFLE, VECTORS = 1, 2, 3, 4, 5, 6
FINAL = 1000                       # 'repeat' key of the final fit on all data (outer repeats are 0..R-1, 100)


def rng(*key):
    return np.random.default_rng(list(key))


# ----------------------------------------------------------------------------- data

def load(path):
    names, seqs, labels = [], [], []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            if line.startswith(">"):
                name, lab = line[1:].split()
                assert lab in ("label=promoter", "label=non_promoter"), lab
                names.append(name)
                labels.append(CLASSES.index(lab.split("=", 1)[1]))
                seqs.append("")
            else:
                seqs[-1] += line
    return names, seqs, np.array(labels, dtype=np.int64)


def onehot(seqs) -> np.ndarray:
    return common.encode_many(seqs, LENGTH).reshape(len(seqs), -1).astype(np.float64)


def low_complexity(n, r):
    """Tandem repeats (poly-T, (AT)n, (GCC)n, ...) of a random 1-4 bp unit, 10 % of positions
    mutated: simple sequence, some of it as AT-rich as a promoter, with no -35 / -10 layout."""
    out = []
    for _ in range(n):
        unit = "".join("ACGT"[int(v)] for v in r.integers(4, size=int(r.integers(1, 5))))
        s = list((unit * LENGTH)[:LENGTH])
        for p in np.flatnonzero(r.random(LENGTH) < 0.1):
            s[p] = "ACGT"[int(r.integers(4))]
        out.append("".join(s))
    return out


def synthetic_negatives(promoters, key):
    """Dinucleotide shuffles of the given (training) promoters, random sequences across the GC
    range, low-complexity repeats."""
    r = rng(*key)
    out = [common.dinucleotide_shuffle(s, r) for s in promoters for _ in range(SHUFFLES_PER_PROMOTER)]
    for _ in range(RANDOM_TRAIN):
        out += common.random_dna(1, LENGTH, float(r.uniform(*GC_RANGE)), r)
    return out + low_complexity(LOW_COMPLEXITY_TRAIN, r)


# ----------------------------------------------------------------------------- logistic model

def fit_lr(seqs, y, config, key, synthetic=None):
    """Fit one (C, synthetic_share) configuration on real sequences (+ generated negatives).
    Classes carry equal total weight; the generated negatives carry `synthetic_share` of the
    negative class's weight. `synthetic`: their one-hot matrix when already generated for `key`."""
    x, yy = onehot(seqs), y
    n_pos, n_neg = int((y == 1).sum()), int((y == 0).sum())
    share = config["synthetic_share"]
    w = np.where(y == 1, 1.0, (1.0 - share) * n_pos / n_neg)
    if share > 0:
        if synthetic is None:
            synthetic = onehot(synthetic_negatives([s for s, v in zip(seqs, y) if v == 1], key))
        x = np.concatenate([x, synthetic])
        yy = np.concatenate([y, np.zeros(len(synthetic), dtype=np.int64)])
        w = np.concatenate([w, np.full(len(synthetic), share * n_pos / len(synthetic))])
    W, b = common.fit_logistic(x, yy, config["C"], 2, sample_weight=w)
    return W, b


def lr_logit(W, b, seqs):
    return onehot(seqs) @ W[0] + b[0]


def p_from_logit(z, temperature=1.0):
    return 1.0 / (1.0 + np.exp(-z / temperature))


def select(seqs, y, groups, key):
    """Nested step: choose the configuration by inner grouped CV on (seqs, y) only.
    Returns (config, temperature fitted on the chosen configuration's inner out-of-fold logits,
    table of inner scores)."""
    folds = common.grouped_folds(y, groups, N_INNER, seed=key[-1])
    prepared = []           # per inner fold: the generated sets do not depend on the configuration
    for j, (tr, te) in enumerate(folds):
        syn = onehot(synthetic_negatives([seqs[i] for i in tr if y[i] == 1], key + (TRAIN_SYNTH, j)))
        r = rng(*key, INNER_EVAL, j)
        held = [common.dinucleotide_shuffle(seqs[i], r) for i in te if y[i] == 1]
        held += [common.random_dna(1, LENGTH, float(r.uniform(*GC_RANGE)), r)[0] for _ in range(INNER_RANDOM)]
        held += low_complexity(INNER_LOW_COMPLEXITY, r)
        prepared.append((tr, te, syn, held))
    table, oof = [], {}
    for ci, cfg in enumerate(CONFIGS):
        accs, specs, logits = [], [], np.zeros(len(y))
        for j, (tr, te, syn, held) in enumerate(prepared):
            W, b = fit_lr([seqs[i] for i in tr], y[tr], cfg, key + (TRAIN_SYNTH, j), synthetic=syn)
            z = lr_logit(W, b, [seqs[i] for i in te])
            logits[te] = z
            accs.append(np.mean((z >= 0) == (y[te] == 1)))
            specs.append(np.mean(lr_logit(W, b, held) < 0))
        score = round(0.5 * float(np.mean(accs)) + 0.5 * float(np.mean(specs)), 9)
        table.append({**cfg, "inner_accuracy": float(np.mean(accs)), "inner_specificity": float(np.mean(specs)),
                      "score": score})
        oof[ci] = logits
    best = max(range(len(CONFIGS)), key=lambda i: (table[i]["score"], -i))
    t = common.fit_temperature(np.stack([np.zeros(len(y)), oof[best]], axis=1), y)
    return CONFIGS[best], t, table


# ----------------------------------------------------------------------------- PWM baseline

def _pwm_init(consensus, strength=0.6):
    m = np.full((6, 4), (1 - strength) / 3)
    for i, c in enumerate(consensus):
        m[i, "ACGT".index(c)] = strength
    return np.log(m / 0.25)


def pwm_scan(x3, p35, p10):
    """Best -35 + -10 log-odds over all placements with a 15-19 bp spacer; x3 [n, L, 4]."""
    s35 = np.stack([(x3[:, i:i + 6] * p35).sum((1, 2)) for i in range(LENGTH - 5)], 1)
    s10 = np.stack([(x3[:, i:i + 6] * p10).sum((1, 2)) for i in range(LENGTH - 5)], 1)
    best = np.full(len(x3), -np.inf)
    where = np.zeros((len(x3), 2), dtype=np.int64)
    for sp in PWM_SPACERS:
        for i in range(LENGTH - 5):
            j = i + 6 + sp
            if j > LENGTH - 6:
                break
            t = s35[:, i] + s10[:, j]
            m = t > best
            best[m] = t[m]
            where[m] = (i, j)
    return best, where


def fit_pwm(seqs, y):
    """PWMs of the two boxes from the training promoters (start: consensus; 10 rounds of
    'place each box where it scores best, re-count with a 0.5 pseudocount'), then a threshold
    (1-D logistic regression on the scan score) on the real training sequences."""
    x3 = common.encode_many(seqs, LENGTH).astype(np.float64)
    pos = x3[y == 1]
    p35, p10 = _pwm_init("TTGACA"), _pwm_init("TATAAT")
    for _ in range(10):
        _, where = pwm_scan(pos, p35, p10)
        c35, c10 = np.full((6, 4), 0.5), np.full((6, 4), 0.5)
        for k in range(len(pos)):
            c35 += pos[k, where[k, 0]:where[k, 0] + 6]
            c10 += pos[k, where[k, 1]:where[k, 1] + 6]
        p35 = np.log(c35 / c35.sum(1, keepdims=True) / 0.25)
        p10 = np.log(c10 / c10.sum(1, keepdims=True) / 0.25)
    score, _ = pwm_scan(x3, p35, p10)
    W, b = common.fit_logistic(score[:, None], y, 1.0, 2)
    return p35, p10, W, b


def pwm_logit(model, seqs):
    p35, p10, W, b = model
    score, _ = pwm_scan(common.encode_many(seqs, LENGTH).astype(np.float64), p35, p10)
    return score * W[0, 0] + b[0]


# ----------------------------------------------------------------------------- reference CNN

class CNNEnsemble(nn.Module):
    """The previously shipped design: 5 independent CNNs (Conv 8x7 -> ReLU -> global max ->
    dropout -> linear -> sigmoid), output the mean sigmoid. Trained on the real sequences only."""

    def __init__(self, members, channels, kernel, dropout, **_):
        super().__init__()
        self.members, self.channels = members, channels
        self.conv = nn.Conv1d(4, channels * members, kernel)
        self.drop = nn.Dropout(dropout)
        self.w = nn.Parameter(torch.randn(members, channels) / channels ** 0.5)
        self.b = nn.Parameter(torch.zeros(members))

    def logits(self, x):
        h = torch.relu(self.conv(x.transpose(1, 2))).amax(dim=2)
        h = self.drop(h).reshape(-1, self.members, self.channels)
        return (h * self.w).sum(dim=2) + self.b

    def forward(self, x):
        return torch.sigmoid(self.logits(x)).mean(dim=1)


def fit_cnn(seqs, y, seed):
    """Trained in float64: a non-convex fit amplifies rounding differences, and in float32 another
    machine's vector kernels changed these reference figures in the 4th digit."""
    hp = CNN_HP
    torch.manual_seed(seed)
    model = CNNEnsemble(**hp).double()
    opt = torch.optim.AdamW(model.parameters(), lr=hp["lr"], weight_decay=hp["weight_decay"])
    xt = torch.tensor(common.encode_many(seqs, LENGTH), dtype=torch.float64)
    yt = torch.tensor(y, dtype=torch.float64)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(hp["epochs"]):
        model.train()
        perm = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(xt), hp["batch_size"]):
            idx = perm[i:i + hp["batch_size"]]
            opt.zero_grad()
            z = model.logits(xt[idx])
            loss = nn.functional.binary_cross_entropy_with_logits(
                z, yt[idx, None].expand_as(z), reduction="none").mean(0).sum()
            loss.backward()
            opt.step()
    return model.eval()


def cnn_p(model, seqs):
    with torch.no_grad():
        return model(torch.tensor(common.encode_many(seqs, LENGTH), dtype=torch.float64)).numpy()


# ----------------------------------------------------------------------------- evaluation

def eval_sets(seed):
    """Random 57-mers at 40/50/60 % GC, generated once from their own stream (never trained on)."""
    r = rng(seed, EVAL_SET)
    return {f"random_gc{int(round(g * 100))}": common.random_dna(EVAL_RANDOM, LENGTH, g, r) for g in EVAL_GC}


def positive_rate(p):
    return float(np.mean(np.asarray(p) >= 0.5))


def run_cv(kind, folds, names, seqs, y, groups, seed, repeat, evals, log=True):
    """Outer CV of one method. kind: 'nested_lr' (the shipped procedure), 'pwm', 'cnn'.
    Returns out-of-fold P(promoter) (raw and temperature-scaled), per-fold accuracies, and
    per-fold positive rates on generated sequences."""
    n = len(y)
    p_raw, p_cal = np.zeros(n), np.zeros(n)
    fold_acc, fold_acc_cal = [], []
    fp = collections.defaultdict(list)
    chosen = []
    for k, (tr, te) in enumerate(folds):
        tr_seqs, te_seqs = [seqs[i] for i in tr], [seqs[i] for i in te]
        if kind == "nested_lr":
            cfg, t, _ = select(tr_seqs, y[tr], groups[tr], (seed, repeat, k))
            W, b = fit_lr(tr_seqs, y[tr], cfg, (seed, repeat, k, TRAIN_SYNTH))
            chosen.append({**cfg, "temperature": t})

            def prob(ss, cal=False, W=W, b=b, t=t):
                return p_from_logit(lr_logit(W, b, ss), t if cal else 1.0)
        elif kind == "pwm":
            model = fit_pwm(tr_seqs, y[tr])

            def prob(ss, cal=False, model=model):
                return p_from_logit(pwm_logit(model, ss))
        elif kind == "cnn":
            model = fit_cnn(tr_seqs, y[tr], seed)

            def prob(ss, cal=False, model=model):
                return cnn_p(model, ss)
        else:
            raise KeyError(kind)
        p_raw[te] = prob(te_seqs)
        p_cal[te] = prob(te_seqs, cal=True)
        fold_acc.append(float(np.mean((p_raw[te] >= 0.5) == (y[te] == 1))))
        fold_acc_cal.append(float(np.mean((p_cal[te] >= 0.5) == (y[te] == 1))))
        r = rng(seed, OUTER_SHUFFLE, repeat, k)
        shuffles = [common.dinucleotide_shuffle(seqs[i], r) for i in te if y[i] == 1 for _ in range(EVAL_SHUFFLES)]
        fp["shuffled_heldout_promoters"].append(positive_rate(prob(shuffles)))
        for name, ss in evals.items():
            fp[name].append(positive_rate(prob(ss)))
        if log:
            print(f"    {kind} repeat {repeat} fold {k + 1}/{len(folds)}: acc {fold_acc[-1]:.3f}"
                  + (f"  chose C={chosen[-1]['C']} share={chosen[-1]['synthetic_share']} T={chosen[-1]['temperature']:.3f}"
                     if chosen else "")
                  + "  positives: " + " ".join(f"{k2}={v[-1]:.3f}" for k2, v in fp.items()), flush=True)
    return {"p_raw": p_raw, "p_cal": p_cal, "fold_acc": fold_acc, "fold_acc_cal": fold_acc_cal,
            "positives": {k: v for k, v in fp.items()}, "chosen": chosen}


def metrics(res, y, names):
    p = res["p_raw"]
    pred = (p >= 0.5).astype(np.int64)
    prob2 = np.stack([1 - p, p], axis=1)
    pc = res["p_cal"]
    prob2c = np.stack([1 - pc, pc], axis=1)
    tp = int(((pred == 1) & (y == 1)).sum())
    fp = int(((pred == 1) & (y == 0)).sum())
    fn = int(((pred == 0) & (y == 1)).sum())
    tn = int(((pred == 0) & (y == 0)).sum())
    return {
        "accuracy": common.spread(res["fold_acc"]),
        "pooled_accuracy": float((pred == y).mean()),
        "n_errors": int((pred != y).sum()),
        "misclassified": [names[i] for i in range(len(y)) if pred[i] != y[i]],
        "confusion_matrix": {"rows_true_cols_pred": CLASSES, "matrix": [[tn, fp], [fn, tp]]},
        "precision_promoter": tp / (tp + fp) if tp + fp else 0.0,
        "recall_promoter": tp / (tp + fn) if tp + fn else 0.0,
        "ece_10_bins": common.ece(prob2, y),
        "ece_10_bins_temperature_scaled": common.ece(prob2c, y),
        "brier": common.brier(prob2, y),
        "positive_rate_on_generated": {k: common.spread(v) for k, v in res["positives"].items()},
    }


def merge_repeats(results):
    """Pool repeats: per-fold accuracies / rates of all repeats together, OOF arrays per repeat."""
    out = {"fold_acc": [], "fold_acc_cal": [], "positives": collections.defaultdict(list), "chosen": []}
    for r in results:
        out["fold_acc"] += r["fold_acc"]
        out["fold_acc_cal"] += r["fold_acc_cal"]
        out["chosen"] += r["chosen"]
        for k, v in r["positives"].items():
            out["positives"][k] += v
    return out


def summarize_repeats(results, y, names):
    per = [metrics(r, y, names) for r in results]
    pooled = merge_repeats(results)
    return {
        "accuracy_over_all_folds": common.spread(pooled["fold_acc"]),
        "accuracy_by_repeat": [m["pooled_accuracy"] for m in per],
        "errors_by_repeat": [m["n_errors"] for m in per],
        "ece_by_repeat": [m["ece_10_bins"] for m in per],
        "ece_temperature_scaled_by_repeat": [m["ece_10_bins_temperature_scaled"] for m in per],
        "positive_rate_on_generated": {k: common.spread(v) for k, v in pooled["positives"].items()},
        "repeat_0": per[0],
        "chosen_configurations": dict(collections.Counter(
            f"C={c['C']} synthetic_share={c['synthetic_share']}" for c in pooled["chosen"])) if pooled["chosen"] else None,
    }


def print_block(title, s):
    a = s["accuracy_over_all_folds"]
    print(f"\n== {title}")
    print(f"accuracy {100 * a['mean']:.1f}% +- {100 * a['std']:.1f}% (mean +- sd over {a['n']} folds; "
          f"range {100 * a['min']:.0f}-{100 * a['max']:.0f}%); errors per repeat {s['errors_by_repeat']} / 106")
    print("ECE (10 bins) per repeat: " + ", ".join(f"{v:.3f}" for v in s["ece_by_repeat"])
          + "; temperature-scaled: " + ", ".join(f"{v:.3f}" for v in s["ece_temperature_scaled_by_repeat"]))
    print("called 'promoter' on generated sequences (mean over folds): "
          + ", ".join(f"{k} {100 * v['mean']:.1f}%" for k, v in s["positive_rate_on_generated"].items()))
    if s.get("chosen_configurations"):
        print(f"configurations chosen inside the outer folds: {s['chosen_configurations']}")


# ----------------------------------------------------------------------------- export

class BinaryLinear(nn.Module):
    """Logistic regression on the flattened one-hot input -> [P(non_promoter), P(promoter)]."""

    def __init__(self, coef: np.ndarray, intercept: np.ndarray):
        super().__init__()
        self.linear = nn.Linear(coef.shape[1], 1)
        with torch.no_grad():
            self.linear.weight.copy_(torch.tensor(coef, dtype=torch.float32))
            self.linear.bias.copy_(torch.tensor(intercept, dtype=torch.float32))

    def forward(self, x):
        p = torch.sigmoid(self.linear(torch.flatten(x, 1)))          # [B, 1]
        return torch.cat([1.0 - p, p], dim=1)


def fit_final(names, seqs, y, groups, seed):
    cfg, t, table = select(seqs, y, groups, (seed, FINAL))
    W, b = fit_lr(seqs, y, cfg, (seed, FINAL, TRAIN_SYNTH))
    return cfg, t, table, W, b


def export(out_dir, names, seqs, y, groups, seed, use_temperature):
    """Model choice on all 106 sequences, final fit, ONNX export + verification, test vectors."""
    cfg, t, table, W, b = fit_final(names, seqs, y, groups, seed)
    temperature = t if use_temperature else 1.0
    # the temperature is folded into the weights (exact float64 division of grid values)
    module = BinaryLinear(W / temperature, b / temperature).eval()

    r = rng(seed, VECTORS)
    amb = []
    for _ in range(14):
        s = list(seqs[int(r.integers(len(seqs)))])
        for p in r.choice(LENGTH, size=3, replace=False):
            s[p] = "NRYSWKMBDHV"[int(r.integers(11))]
        amb.append("".join(s))
    verify_x = np.concatenate([common.encode_many(seqs[:50], LENGTH), common.encode_many(amb, LENGTH)])
    meta = {
        "description": "E. coli promoter recogniser (L2 logistic regression on one-hot, trained with "
                       "shuffled and random negatives); input onehot [batch,57,4] A,C,G,T; output "
                       "probabilities [batch,2] non_promoter,promoter",
        "classes": CLASSES, "channel_order": list(common.CHANNELS), "sequence_length": str(LENGTH),
        "encoding": common.ENCODING_DOC["rule"], "model_choice": "lr_onehot_synthetic_negatives",
        "configuration": {**cfg, "temperature": temperature},
    }
    onnx_path = os.path.join(out_dir, "model.onnx")
    onnx_info = common.export_and_verify(module, onnx_path, LENGTH, CLASSES, verify_x, meta)

    vec_seqs = [seqs[i] for i in (0, 1, 60, 61)] + [seqs[2].lower()] + amb[:3]
    vec_p = exported_p(module, vec_seqs, exact=True)
    common.write_json(os.path.join(out_dir, "test_vectors.json"), {
        "note": "expected outputs of model.onnx, computed in float64 from its float32 weights (every logit an "
                "exactly rounded sum, so the file is the same on every machine); the ONNX graph agrees within 1e-5. "
                "Sequences 1-5 are from the training file (5th lower-cased), 6-8 carry 3 IUPAC codes each. "
                "shuffle_sources: the 53 promoters of the training file, for the gateway test's "
                "dinucleotide-shuffle false-positive check.",
        "classes": CLASSES,
        "tolerance": 1e-4,
        "cases": [{"sequence": s, "probabilities": [float(v) for v in p],
                   "onehot_first_3_positions": e[:3].tolist()}
                  for s, p, e in zip(vec_seqs, vec_p, common.encode_many(vec_seqs, LENGTH))],
        "shuffle_sources": [s for s, v in zip(seqs, y) if v == 1],
    })
    return cfg, t, temperature, table, W, b, module, onnx_info


def exported_p(module, seqs, exact=False):
    """[n, 2] probabilities of the exported float32 weights, in float64 NumPy (not torch float32:
    the written figures must not depend on the machine's vector kernels); `exact`: every logit a
    correctly rounded sum (test vectors)."""
    W, b = common.module_affine(module.linear)
    x = onehot(seqs)
    z = (common.exact_affine(x, W, b) if exact else x @ W.T + b)[:, 0]
    p = p_from_logit(z)
    return np.stack([1.0 - p, p], axis=1)


def final_model_rates(module, seqs, y, seed):
    """The shipped model on generated sequences: random 57-mers (the outer-CV evaluation sets) and
    fresh dinucleotide shuffles of all 53 promoters (a stream no training step used)."""
    evals = eval_sets(seed)
    r = rng(seed, FINAL_SHUFFLE)
    evals["shuffled_promoters"] = [common.dinucleotide_shuffle(s, r) for s, v in zip(seqs, y) if v == 1
                                   for _ in range(EVAL_SHUFFLES)]
    special = {"poly_A": "A" * LENGTH, "poly_T": "T" * LENGTH, "poly_C": "C" * LENGTH, "poly_G": "G" * LENGTH,
               "(AT)n": ("AT" * LENGTH)[:LENGTH], "(GC)n": ("GC" * LENGTH)[:LENGTH]}
    out = {}
    for name, ss in evals.items():
        p = exported_p(module, ss)[:, 1]
        out[name] = {"n": len(ss), "positive_rate": positive_rate(p), "mean_p": float(p.mean())}
    sp = exported_p(module, list(special.values()))[:, 1]
    out["single_sequences_p_promoter"] = {k: round(float(v), 4) for k, v in zip(special, sp)}
    return out


# ----------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=DEFAULT_DATA)
    ap.add_argument("--out", default=os.path.join(ROOT, "models", "promoter"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3, help="repeats of the grouped outer CV (fold seeds 0..R-1)")
    ap.add_argument("--final-only", action="store_true",
                    help="skip every CV; choose the model on all data and export (quick; reads the "
                         "calibration decision from the report in --report)")
    ap.add_argument("--report", default=os.path.join(ROOT, "models", "promoter", "training_report.json"))
    args = ap.parse_args()

    t0 = time.time()
    seed = args.seed
    common.set_determinism(seed)
    names, seqs, y = load(args.data)
    groups = common.kmer_groups(seqs)
    counts = collections.Counter(CLASSES[v] for v in y)
    gsum = common.group_summary(groups, y, CLASSES)
    print(f"data {args.data}: {len(y)} sequences of {LENGTH} bp, classes {dict(counts)}; "
          f"{gsum['n_groups']} groups sharing a {common.GROUP_K}-mer (largest {gsum['largest_groups']}); "
          f"in multi-member groups: {gsum['sequences_in_multi_member_groups']}", flush=True)

    if args.final_only:
        import json
        with open(args.report) as f:
            use_t = json.load(f)["final_model"]["temperature_applied"]
        cfg, t, temperature, *_ , onnx_info = export(args.out, names, seqs, y, groups, seed, use_t)
        print(f"chose {cfg}, temperature {temperature}; exported {onnx_info['path']} sha256 {onnx_info['sha256']}; "
              f"{time.time() - t0:.0f}s")
        return

    evals = eval_sets(seed)
    timings = {}

    def timed(label, fn):
        t = time.time()
        out = fn()
        timings[label] = round(time.time() - t, 1)
        return out

    grouped = [common.grouped_folds(y, groups, N_OUTER, seed + r) for r in range(args.repeats)]
    plain = common.plain_folds(y, N_OUTER, seed)

    print(f"\nnested grouped {N_OUTER}-fold CV of the shipped procedure ({args.repeats} repeats)", flush=True)
    lr_g = timed("nested_lr_grouped", lambda: [run_cv("nested_lr", f, names, seqs, y, groups, seed, r, evals)
                                               for r, f in enumerate(grouped)])
    print("\nPWM baseline on the same grouped splits", flush=True)
    pwm_g = timed("pwm_grouped", lambda: [run_cv("pwm", f, names, seqs, y, groups, seed, r, evals, log=False)
                                          for r, f in enumerate(grouped)])
    print("previous CNN ensemble (real sequences only) on the first repeat's grouped splits", flush=True)
    cnn_g = timed("cnn_grouped", lambda: [run_cv("cnn", grouped[0], names, seqs, y, groups, seed, 0, evals, log=False)])
    print(f"ordinary (ungrouped) stratified {N_OUTER}-fold CV, same nested procedure and baselines", flush=True)
    lr_p = timed("nested_lr_plain", lambda: [run_cv("nested_lr", plain, names, seqs, y, groups, seed, 100, evals, log=False)])
    pwm_p = timed("pwm_plain", lambda: [run_cv("pwm", plain, names, seqs, y, groups, seed, 100, evals, log=False)])
    cnn_p_ = timed("cnn_plain", lambda: [run_cv("cnn", plain, names, seqs, y, groups, seed, 100, evals, log=False)])

    cv = {
        "grouped": {"nested_lr": summarize_repeats(lr_g, y, names), "pwm_baseline": summarize_repeats(pwm_g, y, names),
                    "previous_cnn_ensemble": summarize_repeats(cnn_g, y, names)},
        "ordinary": {"nested_lr": summarize_repeats(lr_p, y, names), "pwm_baseline": summarize_repeats(pwm_p, y, names),
                     "previous_cnn_ensemble": summarize_repeats(cnn_p_, y, names)},
    }
    for split in ("grouped", "ordinary"):
        for m, s in cv[split].items():
            print_block(f"{split} CV: {m}", s)

    # calibration: keep the temperature only if it lowers the grouped outer-CV ECE in every repeat
    g = cv["grouped"]["nested_lr"]
    use_t = all(b < a for a, b in zip(g["ece_by_repeat"], g["ece_temperature_scaled_by_repeat"]))
    print(f"\ntemperature scaling {'applied' if use_t else 'not applied'} (grouped-CV ECE raw "
          f"{g['ece_by_repeat']} vs scaled {g['ece_temperature_scaled_by_repeat']})", flush=True)

    t = time.time()
    cfg, t_fit, temperature, table, W, b, module, onnx_info = export(args.out, names, seqs, y, groups, seed, use_t)
    timings["final_selection_fit_export"] = round(time.time() - t, 1)
    rates = final_model_rates(module, seqs, y, seed)
    print(f"final model: C={cfg['C']} synthetic_share={cfg['synthetic_share']} temperature={temperature}; "
          f"exported {onnx_info['path']} ({onnx_info['size_bytes']} bytes, sha256 {onnx_info['sha256'][:12]}…)")
    print("final model, called 'promoter': " + ", ".join(
        f"{k} {100 * v['positive_rate']:.1f}%" for k, v in rates.items() if isinstance(v, dict) and "positive_rate" in v)
          + f"; single sequences {rates['single_sequences_p_promoter']}")

    report = {
        "task": "E. coli promoter recognition (UCI Molecular Biology, Promoter Gene Sequences)",
        "command": "/usr/bin/python3 training/train_promoter.py",
        "data": {"path": DATA_DISPLAY, "sha256": common.sha256_file(args.data), "n": len(y),
                 "sequence_length": LENGTH, "class_counts": dict(counts)},
        "groups": gsum,
        "encoding": common.ENCODING_DOC,
        "classes": CLASSES,
        "seed": seed,
        "procedure": {
            "outer": f"{N_OUTER}-fold StratifiedGroupKFold (groups above), {args.repeats} repeats with fold seeds "
                     f"{seed}..{seed + args.repeats - 1}; ordinary comparison: {N_OUTER}-fold StratifiedKFold, seed {seed}",
            "inner": f"{N_INNER}-fold StratifiedGroupKFold inside each outer training fold; score = 0.5 * accuracy on "
                     "the inner held-out real sequences + 0.5 * specificity on generated held-out negatives "
                     f"(shuffles of the inner held-out promoters + {INNER_RANDOM} random sequences + "
                     f"{INNER_LOW_COMPLEXITY} low-complexity repeats); ties -> earlier "
                     "configuration (stronger penalty, fewer generated negatives)",
            "configurations": CONFIGS,
            "generated_training_negatives": f"{SHUFFLES_PER_PROMOTER} dinucleotide shuffles per training promoter + "
                                            f"{RANDOM_TRAIN} random sequences with GC uniform in {list(GC_RANGE)} + "
                                            f"{LOW_COMPLEXITY_TRAIN} tandem repeats of a 1-4 bp unit (10 % mutated); "
                                            "classes weighted equally, the generated negatives carrying "
                                            "synthetic_share of the negative weight",
            "evaluation_sets": f"{EVAL_RANDOM} random 57-mers at each of {list(EVAL_GC)} GC (one stream, never "
                               f"trained on); {EVAL_SHUFFLES} dinucleotide shuffles of every held-out promoter",
            "calibration": "temperature fitted on the chosen configuration's inner out-of-fold logits; applied when it "
                           "lowers the grouped outer-CV ECE in every repeat",
        },
        "cv": cv,
        "final_model": {
            "family": "L2 logistic regression on the 228 one-hot features, trained with generated negatives",
            "configuration": cfg, "temperature_fitted": t_fit, "temperature_applied": use_t,
            "temperature": temperature, "inner_scores": table,
            "positive_rates_on_generated": rates,
        },
        "onnx": onnx_info,
        "packages": common.package_versions(),
    }
    common.write_json(os.path.join(args.out, "training_report.json"), report)
    print(f"\ntimings (s): {timings}; total {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
