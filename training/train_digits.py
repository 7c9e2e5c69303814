#!/usr/bin/python3
"""Handwritten digit classifier on scikit-learn's digits (UCI optdigits, 8 x 8 grey, 0..16).

Reproduce:   /usr/bin/python3 training/train_digits.py                     (full: CV, hold-out, export)
             /usr/bin/python3 training/train_digits.py --final-only --out DIR  (final fit + export only)
Outputs:     models/digits/model.onnx, holdout.json (the held-out rows, for the gateway test),
             training_report.json; with --fixtures DIR also the font-rendered test images.

  * data: `sklearn.datasets.load_digits()` (Debian python3-sklearn ships the file; nothing is
    downloaded): 1797 images, 8 x 8 cells, each the number of "on" pixels (0..16) in a 4 x 4 block
    of a 32 x 32 binary bitmap that NIST's programs size-normalised from a scanned form;
  * model: fixed random ReLU features then multinomial logistic regression:
        cells / 16 -> relu(x @ W0 + b0) (256 features) -> softmax(h @ W.T + b)
    W0 ~ N(0, (2/8)^2), b0 ~ U(-1, 1) are drawn from a NumPy PCG64 stream with a fixed key (the
    same numbers on every platform) and rounded to the 2^-18 grid; W, b are the unique optimum of
    the convex L2 logistic objective (common.fit_logistic, trust-region Newton-CG to a gradient of
    1e-10, rounded to the same grid). Nothing depends on thread counts or on the order a BLAS sums
    in beyond ~1e-10, so a retrain writes the same model.onnx bytes on any machine with the same
    Debian packages (test/training.test.ts checks it);
  * evaluation: a stratified hold-out split (25 %, 450 images, never seen by training or model
    choice); the regularisation C is chosen by a stratified 5-fold CV inside the other 75 %, and
    the shipped model is that configuration fitted on those 1347 images, so the hold-out figure is
    the shipped model's own; a stratified 10-fold CV over all 1797 images (C chosen again inside
    each outer fold) is the second figure;
  * the writers: sklearn's copy is the UCI *test* file, written by 13 people, and carries no
    writer ids: held-out images share writers with the training images, so the figures do not
    measure how the model reads a new person's hand (see MODEL_CARD.md).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402  (first: it pins BLAS/OpenMP to one thread before NumPy loads)

import numpy as np  # noqa: E402
import torch  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLASSES = [str(d) for d in range(10)]
HIDDEN = 256
C_GRID = [0.3, 1.0, 3.0, 10.0]
HOLDOUT_FRACTION = 0.25
N_INNER, N_OUTER = 5, 10
INPUT = "pixels"
OUTPUT = "probabilities"


def random_features(seed: int) -> tuple:
    """The fixed first layer: (W0 [64, HIDDEN], b0 [HIDDEN]), quantised, from a PCG64 stream keyed
    by purpose (15 = this issue's model) and seed: the same numbers on every platform."""
    rng = np.random.Generator(np.random.PCG64([15, 8, seed]))
    w0 = common.quantize(rng.standard_normal((64, HIDDEN)) * (2.0 / 8.0))
    b0 = common.quantize(rng.uniform(-1.0, 1.0, HIDDEN))
    return w0, b0


def features(X: np.ndarray, layer: tuple) -> np.ndarray:
    """[n, 8, 8] cells (0..16) -> [n, HIDDEN] ReLU features (float64)."""
    return np.maximum(X.reshape(len(X), 64) / 16.0 @ layer[0] + layer[1], 0.0)


def fit(F: np.ndarray, y: np.ndarray, C: float) -> tuple:
    return common.fit_logistic(F, y, C, 10)


def proba(model: tuple, F: np.ndarray) -> np.ndarray:
    return common.logistic_proba(F, *model)


def choose(F, y, seed) -> tuple:
    """Stratified 5-fold CV on (F, y) only: the C with the best mean accuracy (ties: the
    smaller C, the stronger penalty)."""
    from sklearn.model_selection import StratifiedKFold
    folds = list(StratifiedKFold(N_INNER, shuffle=True, random_state=seed).split(F, y))
    acc = np.zeros((len(folds), len(C_GRID)))
    for f, (tr, te) in enumerate(folds):
        start = None  # each C warm-starts from the one below: fewer Newton steps, the same optimum
        for i, C in enumerate(C_GRID):
            start = common.fit_logistic(F[tr], y[tr], C, 10, start=start)
            acc[f, i] = float((proba(start, F[te]).argmax(1) == y[te]).mean())
    scores = [float(v) for v in acc.mean(axis=0)]
    best = max(range(len(C_GRID)), key=lambda i: (round(scores[i], 12), -C_GRID[i]))
    return C_GRID[best], {f"C={c}": sc for c, sc in zip(C_GRID, scores)}


def confusion(y, pred) -> list:
    m = np.zeros((10, 10), dtype=np.int64)
    for t, p in zip(y, pred):
        m[t, p] += 1
    return m.tolist()


def per_class(y, pred) -> dict:
    return {CLASSES[k]: float((pred[y == k] == k).mean()) for k in range(10)}


# ----------------------------------------------------------------------------- export

class DigitNet(torch.nn.Module):
    """The exported graph: [B, 8, 8] cells (0..16) -> [B, 10] probabilities, float32."""

    def __init__(self, layer: tuple, model: tuple):
        super().__init__()
        self.hidden = torch.nn.Linear(64, HIDDEN)
        self.out = torch.nn.Linear(HIDDEN, 10)
        with torch.no_grad():
            self.hidden.weight.copy_(torch.tensor(layer[0].T, dtype=torch.float32))
            self.hidden.bias.copy_(torch.tensor(layer[1], dtype=torch.float32))
            self.out.weight.copy_(torch.tensor(model[0], dtype=torch.float32))
            self.out.bias.copy_(torch.tensor(model[1], dtype=torch.float32))

    def forward(self, x):
        return torch.softmax(self.out(torch.relu(self.hidden(torch.flatten(x, 1) / 16.0))), dim=1)


def export(layer: tuple, fitted: tuple, path: str, verify_x: np.ndarray, metadata: dict) -> dict:
    """float32 ONNX ([batch, 8, 8] -> [batch, 10]), checked by onnx.checker, by the NumPy
    interpreter in common.py against torch (float32) at several batch sizes, and against the
    float64 fit (same predicted class)."""
    import onnx
    from onnx import TensorProto

    m32 = DigitNet(layer, fitted).float().eval()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch.onnx.export(m32, (torch.tensor(verify_x[:2], dtype=torch.float32),), path,
                      input_names=[INPUT], output_names=[OUTPUT],
                      dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}},
                      opset_version=common.OPSET, do_constant_folding=True)
    common.stamp_onnx(path, metadata)

    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    g = model.graph
    dims = [[d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim] for vi in (g.input[0], g.output[0])]
    assert [i.name for i in g.input] == [INPUT] and [o.name for o in g.output] == [OUTPUT]
    assert g.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert dims == [["batch", 8, 8], ["batch", 10]], dims
    worst = 0.0
    with torch.no_grad():
        for n in (len(verify_x), 1, 7, 64):
            xb = np.ascontiguousarray(verify_x[np.arange(n) % len(verify_x)], dtype=np.float32)
            ref = m32(torch.tensor(xb)).numpy()
            got = common.run_onnx_numpy(model, {INPUT: xb})[OUTPUT]
            diff = float(np.max(np.abs(got - ref)))
            assert got.shape == (n, 10) and diff <= 1e-5, (got.shape, diff)
            assert np.array_equal(got.argmax(1), ref.argmax(1))
            assert np.array_equal(got.argmax(1), proba(fitted, features(xb.astype(np.float64), layer)).argmax(1))
            worst = max(worst, diff)
    print(f"ONNX check: NumPy interpreter vs torch float32, max |difference| {worst:.1e}")
    return {
        "path": os.path.basename(path), "sha256": common.sha256_file(path), "size_bytes": os.path.getsize(path),
        "opset": common.OPSET, "operators": sorted({n.op_type for n in g.node}),
        "input": {"name": INPUT, "dtype": "float32", "shape": dims[0], "meaning": "8 x 8 cells, each 0..16 = ink pixels in a 4 x 4 block of a 32 x 32 bitmap, row-major from the top left"},
        "output": {"name": OUTPUT, "dtype": "float32", "shape": dims[1], "class_order": CLASSES},
        "verification": {"checker": "onnx.checker.check_model(full_check=True): passed",
                         "numerics": "NumPy ONNX interpreter (training/common.py) vs torch float32, batches 1, 7, 64 and the verify set",
                         "max_abs_diff_at_most": 1e-6 if worst <= 1e-6 else 1e-5},
    }


# ----------------------------------------------------------------------------- test images

FONTS = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
]


def render_fixtures(out_dir: str) -> list:
    """Digits typed in DejaVu fonts (Debian fonts-dejavu-core), as PNG and JPEG, of several sizes,
    both ink polarities, with margins: a test of the served pre-processing on images that are not
    made from the training rows. Typed digits are not handwriting: the card reports this figure
    apart. Returns [{file, digit}]."""
    from PIL import Image, ImageDraw, ImageFont
    rng = np.random.default_rng([7, 7])
    os.makedirs(out_dir, exist_ok=True)
    cases = []
    for fi, font_path in enumerate(FONTS):
        for d in range(10):
            size = int(rng.integers(24, 120))
            font = ImageFont.truetype(font_path, size)
            box = font.getbbox(str(d))
            w, h = box[2] - box[0], box[3] - box[1]
            mx, my = int(rng.integers(2, size // 2 + 3)), int(rng.integers(2, size // 2 + 3))
            dark_on_light = (fi + d) % 2 == 0
            paper, ink = (255, 20) if dark_on_light else (0, 230)
            img = Image.new("L", (w + 2 * mx, h + 2 * my), paper)
            ImageDraw.Draw(img).text((mx - box[0], my - box[1]), str(d), fill=ink, font=font)
            fmt = "jpg" if d % 3 == 2 else "png"
            name = f"{os.path.splitext(os.path.basename(font_path))[0].lower()}-{d}.{fmt}"
            if fmt == "jpg":
                img.convert("RGB").save(os.path.join(out_dir, name), quality=85)
            else:
                img.save(os.path.join(out_dir, name), optimize=True)
            cases.append({"file": name, "digit": d, "polarity": "dark_on_light" if dark_on_light else "light_on_dark"})
    with open(os.path.join(out_dir, "labels.json"), "w") as f:
        json.dump({"note": "digits typed in DejaVu fonts by training/train_digits.py --fixtures; not handwriting",
                   "cases": cases}, f, indent=1)
        f.write("\n")
    return cases


# ----------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(ROOT, "models", "digits"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--final-only", action="store_true", help="skip the nested 10-fold CV (the hold-out split, model choice and export still run)")
    ap.add_argument("--fixtures", help="also render the font test images into this folder")
    args = ap.parse_args()
    common.set_determinism(args.seed)
    from sklearn.datasets import load_digits
    from sklearn.model_selection import StratifiedKFold, train_test_split

    t0 = time.time()
    digits = load_digits()
    X = digits.images.astype(np.float64)
    y = digits.target.astype(np.int64)
    layer = random_features(args.seed)
    F = features(X, layer)
    report = {
        "task": "handwritten digit classification (scikit-learn digits = UCI optdigits test file, 8 x 8)",
        "command": "/usr/bin/python3 training/train_digits.py",
        "data": {"source": "sklearn.datasets.load_digits() (Debian python3-sklearn)", "n": int(len(y)),
                 "class_counts": {CLASSES[k]: int(v) for k, v in enumerate(np.bincount(y))},
                 "sha256_of_values": __import__("hashlib").sha256(digits.data.astype(np.uint8).tobytes() + y.astype(np.uint8).tobytes()).hexdigest()},
        "network": f"Flatten -> /16 -> Linear(64, {HIDDEN}) fixed random -> ReLU -> Linear({HIDDEN}, 10) fitted -> Softmax",
        "training": {"first_layer": "W0 ~ N(0, 0.25^2), b0 ~ U(-1, 1), NumPy PCG64([15, 8, seed]), quantised to 2^-18",
                     "second_layer": "multinomial L2 logistic regression (training/common.py fit_logistic), quantised to 2^-18",
                     "C_grid": C_GRID, "seed": args.seed},
        "versions": common.package_versions(),
    }

    # The shipped model is the one fitted on the training split: the hold-out images are never
    # seen by it, so the gateway test can measure its hold-out accuracy end to end (images in).
    idx = np.arange(len(y))
    tr, te = train_test_split(idx, test_size=HOLDOUT_FRACTION, stratify=y, random_state=args.seed)
    tr, te = np.sort(tr), np.sort(te)
    C, inner = choose(F[tr], y[tr], args.seed)
    model = fit(F[tr], y[tr], C)
    p_te = proba(model, F[te])
    pred = p_te.argmax(1)
    acc = float((pred == y[te]).mean())
    print(f"hold-out ({len(te)} images, never seen): accuracy {acc:.4f} with C={C}", flush=True)
    report["holdout"] = {"n_train": int(len(tr)), "n_test": int(len(te)),
                         "split": f"sklearn train_test_split(test_size={HOLDOUT_FRACTION}, stratify=y, random_state={args.seed})",
                         "C_chosen_by_inner_cv_on_train": C, "inner_cv_accuracy": inner, "accuracy": acc,
                         "errors": int((pred != y[te]).sum()), "log_loss": float(-np.log(p_te[np.arange(len(te)), y[te]]).mean()),
                         "ece": common.ece(p_te, y[te]), "per_class_accuracy": per_class(y[te], pred),
                         "confusion_rows_true_cols_predicted": confusion(y[te], pred)}
    report["final_model"] = {"C": C, "trained_on": f"the {len(tr)} training-split images (not the {len(te)} hold-out ones)",
                             "training_accuracy": float((proba(model, F[tr]).argmax(1) == y[tr]).mean())}
    if not args.final_only:
        accs, chosen = [], []
        for k, (otr, ote) in enumerate(StratifiedKFold(N_OUTER, shuffle=True, random_state=args.seed).split(X, y)):
            c, _ = choose(F[otr], y[otr], args.seed + 1 + k)
            p = proba(fit(F[otr], y[otr], c), F[ote]).argmax(1)
            accs.append(float((p == y[ote]).mean()))
            chosen.append(c)
            print(f"  outer fold {k + 1}/{N_OUTER}: {accs[-1]:.4f} C={c}", flush=True)
        report["nested_cv"] = {"data": "all 1797 images", "folds": N_OUTER, "inner_folds": N_INNER, "accuracy": common.spread(accs),
                               "per_fold": accs, "C_chosen_per_fold": chosen}
        print(f"nested {N_OUTER}-fold CV accuracy {np.mean(accs):.4f} +- {np.std(accs, ddof=1):.4f}")

    meta = {"description": "handwritten digit classifier, scikit-learn digits (8x8, 0..16)", "classes": CLASSES,
            "input": "pixels float32 [batch, 8, 8], 0..16 per cell", "license": "MIT"}
    os.makedirs(args.out, exist_ok=True)
    report["onnx"] = export(layer, model, os.path.join(args.out, "model.onnx"), X[te[:32]].astype(np.float32), meta)
    with open(os.path.join(args.out, "holdout.json"), "w") as f:
        json.dump({"note": "the hold-out images (8 x 8 cells, 0..16, row-major) and labels: model.onnx was trained on the "
                           "other 1347 and never saw these; test/model-digits.test.ts renders them as PNGs and reads them "
                           "back through the gateway", "split": report["holdout"]["split"], "accuracy": acc,
                   "labels": y[te].tolist(), "images": X[te].astype(int).reshape(len(te), 64).tolist()},
                  f, separators=(",", ":"))
        f.write("\n")
    if args.fixtures:
        report["font_fixtures"] = {"dir": os.path.relpath(args.fixtures, ROOT), "n": len(render_fixtures(args.fixtures))}
    report["training_seconds_this_run"] = "not recorded (machine-dependent): see MODEL_CARD.md"
    common.write_json(os.path.join(args.out, "training_report.json"), report)
    print(f"done in {time.time() - t0:.0f} s -> {args.out}")


if __name__ == "__main__":
    main()
