"""Shared helpers for training/train_splice.py and training/train_promoter.py.

* IUPAC one-hot encoding (the exact table the runtime's JS pre-processing must reproduce),
* determinism set-up, file hashing, package versions,
* evaluation that cannot leak: groups of sequences that share a canonical k-mer (kept in one
  fold), grouped stratified folds, fold spread, expected calibration error,
* deterministic, machine-independent fitting: L2 logistic regression solved to a tight gradient
  tolerance (a strictly convex problem: one optimum, whatever the BLAS), Platt / temperature
  scaling, and weights rounded to a 2^-18 grid so that rounding noise between machines cannot
  change the exported bytes,
* sequence generators with fixed seeds (NumPy PCG64, the same stream on every platform):
  random DNA at a given GC fraction, dinucleotide-preserving shuffles (Altschul & Erickson 1985),
* ONNX export + verification. The Debian `python3-onnx` (1.12) has no
  `onnx.reference.ReferenceEvaluator` and `onnxruntime` is not packaged for Debian, so this module
  carries a small, independent NumPy interpreter for the handful of ONNX operators the exported
  graphs use (written from the ONNX operator specification; unknown operators raise). ONNX outputs
  are compared with the torch outputs through it.

Run only with /usr/bin/python3 (Debian packages python3-torch, python3-sklearn, python3-onnx,
python3-numpy).
"""

from __future__ import annotations

import os

# One thread everywhere, set before NumPy / torch load their BLAS: the same summation order on
# every run, and the 2 shared cores of the training machine stay usable for others.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import hashlib  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402

import numpy as np  # noqa: E402

# --------------------------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------------------------

CHANNELS = ("A", "C", "G", "T")

# IUPAC nucleotide codes -> the bases they stand for. Each base a code stands for gets
# 1/len(bases) (as float32: 1.0, 0.5, 0.33333334, 0.25); the other channels get 0.
IUPAC = {
    "A": "A", "C": "C", "G": "G", "T": "T",
    "U": "T",                      # RNA uracil read as T
    "R": "AG", "Y": "CT", "S": "CG", "W": "AT", "K": "GT", "M": "AC",
    "B": "CGT", "D": "AGT", "H": "ACT", "V": "ACG",
    "N": "ACGT",
}

ENCODING_DOC = {
    "shape": "[L, 4] per sequence, batch -> [batch, L, 4], float32",
    "channel_order": list(CHANNELS),
    "case": "case-insensitive (lower-case letters are upper-cased first)",
    "table": {code: {b: (1.0 / len(bases) if b in bases else 0.0) for b in CHANNELS}
              for code, bases in IUPAC.items()},
    "rule": "IUPAC split: a code standing for k bases puts float32(1/k) on each of those k channels "
            "(N=0.25 x4; R,Y,S,W,K,M=0.5 x2; B,D,H,V=float32(1/3)=0.33333334 x3; U=T). "
            "Any other character (gap '-', '.', digits, whitespace inside the sequence) is an error, "
            "and so is any length other than the model's fixed length.",
}


def _row(bases: str) -> np.ndarray:
    v = np.zeros(4, dtype=np.float32)
    for b in bases:
        v[CHANNELS.index(b)] = np.float32(1.0) / np.float32(len(bases))
    return v


_ROWS = {code: _row(bases) for code, bases in IUPAC.items()}


def encode(seq: str, length: int) -> np.ndarray:
    """One sequence -> float32 [length, 4]. Raises ValueError on a bad length or character."""
    s = seq.strip().upper()
    if len(s) != length:
        raise ValueError(f"sequence length {len(s)} != {length}")
    out = np.empty((length, 4), dtype=np.float32)
    for i, ch in enumerate(s):
        row = _ROWS.get(ch)
        if row is None:
            raise ValueError(f"invalid character {ch!r} at position {i + 1}")
        out[i] = row
    return out


def encode_many(seqs, length: int) -> np.ndarray:
    return np.stack([encode(s, length) for s in seqs]).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Reproducibility helpers
# --------------------------------------------------------------------------------------------

def set_determinism(seed: int) -> None:
    import torch
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def package_versions() -> dict:
    import onnx
    import sklearn
    import torch
    import scipy
    # no host name, kernel or interpreter path: the report must be the same file on every machine
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "scikit-learn": sklearn.__version__,
        "scipy": scipy.__version__,
        "numpy": np.__version__,
        "onnx": onnx.__version__,
    }


def _rounded(obj):
    """Floats to 6 significant digits: a difference between two machines' libm or BLAS (~1e-16
    relative for the convex fits, ~1e-10 for the promoter script's float64 reference CNN) cannot
    change the written file, short of a value within that distance of a rounding boundary."""
    if isinstance(obj, float):
        return float(f"{obj:.6g}") if math.isfinite(obj) else obj
    if isinstance(obj, dict):
        return {k: _rounded(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_rounded(v) for v in obj]
    if isinstance(obj, np.generic):
        return _rounded(obj.item())
    return obj


def write_json(path: str, obj) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        json.dump(_rounded(obj), f, indent=2, sort_keys=False)
        f.write("\n")


def module_affine(linear) -> tuple:
    """A torch nn.Linear's float32 weights and bias as float64 NumPy arrays (exact)."""
    return (linear.weight.detach().numpy().astype(np.float64), linear.bias.detach().numpy().astype(np.float64))


def exact_affine(x: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """x [n, p] @ W.T + b with every entry the correctly rounded sum (math.fsum; a float32 x
    float32 product is exact in float64): the same bits on every machine, whatever its BLAS.
    For the few sequences of test_vectors.json."""
    x = np.asarray(x, dtype=np.float64)
    out = np.empty((len(x), W.shape[0]))
    for i in range(len(x)):
        for k in range(W.shape[0]):
            out[i, k] = math.fsum(np.concatenate([x[i] * W[k], [b[k]]]).tolist())
    return out


# --------------------------------------------------------------------------------------------
# Leakage-free evaluation: groups, folds, spread, calibration
# --------------------------------------------------------------------------------------------

GROUP_K = 15
_COMPLEMENT = str.maketrans("ACGT", "TGCA")


def reverse_complement(seq: str) -> str:
    return seq.translate(_COMPLEMENT)[::-1]


def kmer_groups(seqs, k: int = GROUP_K) -> np.ndarray:
    """Connected components of 'shares a k-mer on either strand' (canonical k-mers).

    Two sequences that share a 15-mer are at least partly the same DNA (overlapping windows of
    one region, a duplicate, a repeat); keeping a component in one fold stops a model from being
    scored on sequences it has, in part, already seen. Ids are numbered in order of first
    appearance, so the result does not depend on hashing.
    """
    parent = list(range(len(seqs)))

    def find(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    first = {}
    for i, s in enumerate(seqs):
        s = s.upper()
        for j in range(len(s) - k + 1):
            km = s[j:j + k]
            km = min(km, reverse_complement(km))
            if km in first:
                a, b = find(first[km]), find(i)
                if a != b:
                    parent[max(a, b)] = min(a, b)
            else:
                first[km] = i
    roots = [find(i) for i in range(len(seqs))]
    ids = {}
    return np.array([ids.setdefault(r, len(ids)) for r in roots], dtype=np.int64)


def group_summary(groups: np.ndarray, y: np.ndarray, classes) -> dict:
    sizes = np.bincount(groups)
    multi = [g for g in range(len(sizes)) if sizes[g] > 1]
    return {
        "rule": f"sequences sharing a {GROUP_K}-mer on either strand (canonical k-mer) are linked; "
                "groups = connected components; a group never spans two folds",
        "k": GROUP_K,
        "n_groups": int(len(sizes)),
        "largest_groups": sorted((int(v) for v in sizes), reverse=True)[:5],
        "sequences_in_multi_member_groups": {c: int(sum(1 for i in range(len(y)) if y[i] == k and sizes[groups[i]] > 1))
                                            for k, c in enumerate(classes)},
        "n_multi_member_groups": len(multi),
    }


def grouped_folds(y, groups, n_splits: int, seed: int):
    """Stratified folds that keep every group whole (StratifiedGroupKFold, shuffled by `seed`)."""
    from sklearn.model_selection import StratifiedGroupKFold
    x = np.zeros((len(y), 1))
    return list(StratifiedGroupKFold(n_splits, shuffle=True, random_state=seed).split(x, y, groups))


def plain_folds(y, n_splits: int, seed: int):
    """Ordinary stratified k-fold (the leaky comparison figure)."""
    from sklearn.model_selection import StratifiedKFold
    x = np.zeros((len(y), 1))
    return list(StratifiedKFold(n_splits, shuffle=True, random_state=seed).split(x, y))


def spread(values) -> dict:
    v = np.asarray(values, dtype=np.float64)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
            "min": float(v.min()), "max": float(v.max()), "n": int(len(v))}


def ece(prob: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error of the top-label confidence, equal-width bins on [0, 1].

    prob [n, C] (C = 2 for a binary model), y [n] class indices. ECE = sum over bins of
    |bin| / n * |accuracy in bin - mean confidence in bin| (Guo et al. 2017).
    """
    conf = prob.max(axis=1)
    correct = (prob.argmax(axis=1) == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.searchsorted(edges, conf, side="right") - 1, 0, bins - 1)
    total = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            total += m.sum() / len(y) * abs(correct[m].mean() - conf[m].mean())
    return float(total)


def brier(prob: np.ndarray, y: np.ndarray) -> float:
    onehot = np.eye(prob.shape[1])[y]
    return float(((prob - onehot) ** 2).sum(axis=1).mean())


# --------------------------------------------------------------------------------------------
# Deterministic, machine-independent fitting
# --------------------------------------------------------------------------------------------

WEIGHT_GRID = 2.0 ** -18


def quantize(a) -> np.ndarray:
    """Round to the 2^-18 grid. The fits below converge to ~1e-10 of the unique optimum; two
    machines whose BLAS sums in another order therefore land on the same grid point (unless a
    weight sits within ~1e-10 of a half-step), so the exported float32 bytes are the same."""
    return np.round(np.asarray(a, dtype=np.float64) / WEIGHT_GRID) * WEIGHT_GRID


def _log_softmax(z):
    m = z.max(axis=1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=1, keepdims=True))


def _check_converged(res, gtol):
    # trust-ncg may stop one step short of `gtol` when rounding noise is all that is left
    # ("bad approximation"); accept that, as long as the gradient is within 100x of the target.
    worst = float(np.abs(res.jac).max())
    if worst > 100 * gtol:
        raise RuntimeError(f"logistic fit did not converge ({res.message}; max |gradient| {worst:.3g})")


def fit_logistic(X: np.ndarray, y: np.ndarray, C: float, n_classes: int, sample_weight=None,
                 gtol: float = 1e-10, start=None):
    """L2-penalised logistic regression, the objective scikit-learn uses:

        0.5 * ||W||^2 + C * sum_i s_i * loss_i      (intercepts not penalised)

    binary (n_classes == 2): one weight vector, loss = log(1 + e^z) - y z;
    multinomial otherwise: softmax over n_classes weight vectors (intercepts centred to sum 0).
    Strictly convex, so there is one optimum; trust-region Newton-CG drives the gradient below
    `gtol` * (1 + C * sum(s)), i.e. to the optimum up to rounding, from zero or from `start`
    (a (W, b) of an earlier fit, e.g. the neighbouring C: fewer iterations, the same optimum).
    Returns (W [K', p], b [K']) with K' = 1 for binary, float64, quantised.
    """
    from scipy.optimize import minimize
    from scipy.special import expit

    X = np.ascontiguousarray(X, dtype=np.float64)
    n, p = X.shape
    s = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    scale = 1.0 + C * s.sum()
    # trust-ncg asks for several Hessian products at each point f was evaluated at: the
    # probabilities f computed there are kept (the same arithmetic, so the same bits).
    last = {"theta": None, "probs": None}

    def probs_at(theta, compute):
        if last["theta"] is None or not np.array_equal(last["theta"], theta):
            last["theta"], last["probs"] = np.array(theta), compute()
        return last["probs"]

    if n_classes == 2:
        yf = y.astype(np.float64)

        def f(theta):
            w, b = theta[:p], theta[p]
            z = X @ w + b
            loss = np.logaddexp(0.0, z) - yf * z
            q = probs_at(theta, lambda: expit(z))
            r = C * s * (q - yf)
            return 0.5 * w @ w + C * (s @ loss), np.concatenate([w + X.T @ r, [r.sum()]])

        def hessp(theta, v):
            q = probs_at(theta, lambda: expit(X @ theta[:p] + theta[p]))
            d = C * s * q * (1.0 - q)
            xv = X @ v[:p] + v[p]
            t = d * xv
            return np.concatenate([v[:p] + X.T @ t, [t.sum()]])

        theta0 = np.zeros(p + 1) if start is None else np.concatenate([start[0].ravel(), start[1]])
        res = minimize(f, theta0, jac=True, hessp=hessp, method="trust-ncg",
                       options={"gtol": gtol * scale, "maxiter": 200})
        _check_converged(res, gtol * scale)
        return quantize(res.x[None, :p]), quantize(res.x[p:])

    K = n_classes
    Y = np.eye(K)[y]

    def unpack(theta):
        return theta[:K * p].reshape(K, p), theta[K * p:]

    def f(theta):
        W, b = unpack(theta)
        z = X @ W.T + b
        ls = _log_softmax(z)
        P = probs_at(theta, lambda: np.exp(ls))
        R = C * s[:, None] * (P - Y)
        val = 0.5 * (W * W).sum() - C * (s * (Y * ls).sum(axis=1)).sum()
        return val, np.concatenate([(W + R.T @ X).ravel(), R.sum(axis=0)])

    def hessp(theta, v):
        W, b = unpack(theta)
        P = probs_at(theta, lambda: np.exp(_log_softmax(X @ W.T + b)))
        V, vb = unpack(v)
        A = X @ V.T + vb                       # directional change of the logits
        G = P * (A - (P * A).sum(axis=1, keepdims=True))
        G *= C * s[:, None]
        return np.concatenate([(V + G.T @ X).ravel(), G.sum(axis=0)])

    theta0 = np.zeros(K * p + K) if start is None else np.concatenate([start[0].ravel(), start[1]])
    res = minimize(f, theta0, jac=True, hessp=hessp, method="trust-ncg",
                   options={"gtol": gtol * scale, "maxiter": 200})
    _check_converged(res, gtol * scale)
    W, b = unpack(res.x)
    return quantize(W), quantize(b - b.mean())


def logistic_proba(X: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[n, C] probabilities of a fit_logistic model (C = 2 for binary: [1 - p, p])."""
    from scipy.special import expit
    z = np.asarray(X, dtype=np.float64) @ W.T + b
    if W.shape[0] == 1:
        p = expit(z[:, 0])
        return np.stack([1.0 - p, p], axis=1)
    return np.exp(_log_softmax(z))


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """Temperature T > 0 minimising the log loss of softmax(logits / T) (Guo et al. 2017), by a
    bounded scalar search; returned quantised. For a binary model pass [0, logit] rows."""
    from scipy.optimize import minimize_scalar

    def nll(log_t):
        ls = _log_softmax(logits / np.exp(log_t))
        return -ls[np.arange(len(y)), y].mean()

    res = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded",
                          options={"xatol": 1e-10})
    return float(quantize(np.exp(res.x)))


# --------------------------------------------------------------------------------------------
# Sequence generators (fixed seeds; NumPy's PCG64 gives the same stream on every platform)
# --------------------------------------------------------------------------------------------

def random_dna(n: int, length: int, gc: float, rng) -> list:
    """n i.i.d. sequences with P(G) = P(C) = gc / 2 and P(A) = P(T) = (1 - gc) / 2."""
    p = np.array([(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2])
    idx = rng.choice(4, size=(n, length), p=p)
    letters = np.array(list("ACGT"))
    return ["".join(row) for row in letters[idx]]


def dinucleotide_shuffle(seq: str, rng) -> str:
    """A uniformly random sequence with exactly the dinucleotide counts (and so the base counts,
    first and last letter) of `seq`: Altschul & Erickson (1985), a random Eulerian walk through
    the graph whose edges are the sequence's dinucleotides."""
    seq = seq.upper()
    if len(seq) < 3:
        return seq
    letters = sorted(set(seq))
    edges = {a: [] for a in letters}
    for a, b in zip(seq, seq[1:]):
        edges[a].append(b)
    last = seq[-1]
    # 1. random arborescence of 'last edges' pointing towards the final letter
    while True:
        last_edge = {}
        for a in letters:
            if a != last and edges[a]:
                last_edge[a] = edges[a][int(rng.integers(len(edges[a])))]
        ok = True
        for a in last_edge:
            seen, v = set(), a
            while v != last:
                if v in seen or v not in last_edge:
                    ok = False
                    break
                seen.add(v)
                v = last_edge[v]
            if not ok:
                break
        if ok:
            break
    # 2. shuffle every other edge list, the chosen last edge kept for the end
    order = {}
    for a in letters:
        rest = list(edges[a])
        if a in last_edge:
            rest.remove(last_edge[a])
        rest = [rest[i] for i in rng.permutation(len(rest))]
        if a in last_edge:
            rest.append(last_edge[a])
        order[a] = rest
    # 3. walk
    out, pos, v = [seq[0]], {a: 0 for a in letters}, seq[0]
    for _ in range(len(seq) - 1):
        nxt = order[v][pos[v]]
        pos[v] += 1
        out.append(nxt)
        v = nxt
    return "".join(out)


# --------------------------------------------------------------------------------------------
# Minimal NumPy ONNX interpreter (float32, for verification only)
# --------------------------------------------------------------------------------------------

def _attrs(node) -> dict:
    from onnx import helper
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _windows(x: np.ndarray, k: int, stride: int, dilation: int = 1) -> np.ndarray:
    """x [N, C, L] -> [N, C, Lout, k] sliding windows along the last axis."""
    span = dilation * (k - 1) + 1
    lout = (x.shape[2] - span) // stride + 1
    idx = np.arange(lout)[:, None] * stride + np.arange(k)[None, :] * dilation
    return x[:, :, idx]


def _conv(x, w, b, a):
    if x.ndim != 3:
        raise NotImplementedError("only 1-D Conv is supported")
    if a.get("group", 1) != 1:
        raise NotImplementedError("grouped Conv")
    if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise NotImplementedError("auto_pad")
    k = w.shape[2]
    pads = list(a.get("pads", [0, 0]))
    stride = list(a.get("strides", [1]))[0]
    dil = list(a.get("dilations", [1]))[0]
    xp = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[1])))
    win = _windows(xp, k, stride, dil)                       # N C Lout K
    y = np.einsum("nclk,mck->nml", win, w, optimize=True)
    if b is not None:
        y = y + b[None, :, None]
    return y.astype(np.float32)


def _maxpool(x, a):
    if x.ndim != 3:
        raise NotImplementedError("only 1-D MaxPool is supported")
    k = list(a["kernel_shape"])[0]
    stride = list(a.get("strides", [1]))[0]
    pads = list(a.get("pads", [0, 0]))
    if any(pads) or a.get("ceil_mode", 0) or list(a.get("dilations", [1]))[0] != 1:
        raise NotImplementedError("MaxPool with pads/ceil_mode/dilations")
    return _windows(x, k, stride).max(axis=3)


def _softmax(x, axis):
    m = x.max(axis=axis, keepdims=True)
    e = np.exp(x - m)
    return (e / e.sum(axis=axis, keepdims=True)).astype(np.float32)


def _reduce(fn, x, axes, keepdims):
    axes = tuple(int(v) for v in axes) if axes is not None else None
    return fn(x, axis=axes, keepdims=bool(keepdims))


def run_onnx_numpy(model, feeds: dict) -> dict:
    """Evaluate an ONNX ModelProto with NumPy. Supports the operators our graphs use."""
    from onnx import numpy_helper
    env = {init.name: numpy_helper.to_array(init) for init in model.graph.initializer}
    env.update(feeds)
    opset = max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    for node in model.graph.node:
        a = _attrs(node)
        ins = [env[n] if n else None for n in node.input]
        op = node.op_type
        if op == "Constant":
            out = numpy_helper.to_array(a["value"])
        elif op == "Identity":
            out = ins[0]
        elif op == "Transpose":
            out = np.transpose(ins[0], a.get("perm"))
        elif op == "Conv":
            out = _conv(ins[0], ins[1], ins[2] if len(ins) > 2 else None, a)
        elif op == "MaxPool":
            out = _maxpool(ins[0], a)
        elif op == "Relu":
            out = np.maximum(ins[0], 0).astype(ins[0].dtype)
        elif op == "Sigmoid":
            out = (1.0 / (1.0 + np.exp(-ins[0]))).astype(ins[0].dtype)
        elif op == "Flatten":
            ax = a.get("axis", 1)
            out = ins[0].reshape(int(np.prod(ins[0].shape[:ax])), -1)
        elif op == "Reshape":
            shape = [int(s) for s in ins[1]]
            shape = [ins[0].shape[i] if s == 0 and not a.get("allowzero", 0) else s
                     for i, s in enumerate(shape)]
            out = ins[0].reshape(shape)
        elif op == "Gemm":
            A, B = ins[0], ins[1]
            if a.get("transA", 0):
                A = A.T
            if a.get("transB", 0):
                B = B.T
            out = a.get("alpha", 1.0) * (A @ B)
            if len(ins) > 2 and ins[2] is not None:
                out = out + a.get("beta", 1.0) * ins[2]
        elif op == "MatMul":
            out = np.matmul(ins[0], ins[1])
        elif op in ("Add", "Sub", "Mul", "Div"):
            f = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}[op]
            out = f(ins[0], ins[1])
        elif op == "Softmax":
            if opset < 13:
                raise NotImplementedError("Softmax before opset 13 (flattening semantics)")
            out = _softmax(ins[0], a.get("axis", -1))
        elif op == "Slice":
            data, starts, ends = ins[0], ins[1], ins[2]
            axes = ins[3] if len(ins) > 3 and ins[3] is not None else np.arange(len(starts))
            steps = ins[4] if len(ins) > 4 and ins[4] is not None else np.ones(len(starts), int)
            sl = [slice(None)] * data.ndim
            for s, e, ax, st in zip(starts, ends, axes, steps):
                sl[int(ax)] = slice(int(s), int(e), int(st))   # python slicing clamps like ONNX
            out = data[tuple(sl)]
        elif op == "Unsqueeze":
            axes = a["axes"] if opset < 13 else ins[1]
            out = ins[0]
            r = out.ndim + len(axes)
            for ax in sorted(int(v) % r for v in axes):
                out = np.expand_dims(out, ax)
        elif op == "Squeeze":
            axes = a.get("axes") if opset < 13 else (ins[1] if len(ins) > 1 else None)
            out = np.squeeze(ins[0], axis=tuple(int(v) for v in axes) if axes is not None else None)
        elif op == "ReduceMax":
            out = _reduce(np.max, ins[0], a.get("axes"), a.get("keepdims", 1))
        elif op == "ReduceMean":
            out = _reduce(np.mean, ins[0], a.get("axes"), a.get("keepdims", 1))
        elif op == "ReduceSum":
            axes = a.get("axes") if opset < 13 else (ins[1] if len(ins) > 1 else None)
            out = _reduce(np.sum, ins[0], axes, a.get("keepdims", 1))
        elif op == "Concat":
            out = np.concatenate(ins, axis=a["axis"])
        else:
            raise NotImplementedError(f"ONNX op {op} not supported by the NumPy checker")
        out = np.asarray(out)
        if out.dtype == np.float64:
            out = out.astype(np.float32)
        for name in node.output:
            env[name] = out
    return {o.name: env[o.name] for o in model.graph.output}


# --------------------------------------------------------------------------------------------
# Export + verification
# --------------------------------------------------------------------------------------------

OPSET = 13


def _bound(v: float) -> float:
    return 1e-6 if v <= 1e-6 else 1e-5


def stamp_onnx(path: str, metadata: dict) -> None:
    """Sets an exported graph's producer, description and metadata (values not str as JSON), in place."""
    import onnx

    model = onnx.load(path)
    model.producer_name = "isomodel/training"
    model.doc_string = metadata.get("description", "")
    del model.metadata_props[:]
    for k, v in metadata.items():
        p = model.metadata_props.add()
        p.key, p.value = k, v if isinstance(v, str) else json.dumps(v)
    onnx.save(model, path)


def export_and_verify(module, path: str, length: int, classes, verify_x: np.ndarray,
                      metadata: dict) -> dict:
    """Export `module` ([B,L,4] float32 -> [B,C] probabilities) to ONNX and verify it.

    Checks: onnx.checker (full_check), input/output names, dtypes, shapes with a symbolic batch
    axis, NumPy-interpreter output vs torch output (max abs diff <= 1e-5) on `verify_x`, batch sizes
    1, 7 and 64, rows summing to 1, file size < 5 MB. Returns a dict for the training report.
    """
    import onnx
    import torch
    from onnx import TensorProto

    module.eval()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    dummy = torch.tensor(verify_x[:2])
    torch.onnx.export(
        module, (dummy,), path,
        input_names=["onehot"], output_names=["probabilities"],
        dynamic_axes={"onehot": {0: "batch"}, "probabilities": {0: "batch"}},
        opset_version=OPSET, do_constant_folding=True, export_params=True,
    )
    stamp_onnx(path, metadata)

    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    g = model.graph
    assert [i.name for i in g.input] == ["onehot"], [i.name for i in g.input]
    assert [o.name for o in g.output] == ["probabilities"], [o.name for o in g.output]

    def dims(vi):
        return [d.dim_param if d.dim_param else d.dim_value for d in vi.type.tensor_type.shape.dim]

    in_dims, out_dims = dims(g.input[0]), dims(g.output[0])
    assert g.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert g.output[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert in_dims == ["batch", length, 4], in_dims
    assert out_dims == ["batch", len(classes)], out_dims

    checks = {}
    worst = 0.0
    with torch.no_grad():
        for n in (len(verify_x), 1, 7, 64):
            idx = np.arange(n) % len(verify_x)
            xb = np.ascontiguousarray(verify_x[idx], dtype=np.float32)
            ref = module(torch.tensor(xb)).numpy()
            got = run_onnx_numpy(model, {"onehot": xb})["probabilities"]
            assert got.shape == (n, len(classes)) and got.dtype == np.float32, (got.shape, got.dtype)
            diff = float(np.max(np.abs(got - ref)))
            sums = float(np.max(np.abs(got.sum(1) - 1.0)))
            assert diff <= 1e-5, f"ONNX vs torch max abs diff {diff} > 1e-5 at batch {n}"
            assert sums <= 1e-5, f"probabilities do not sum to 1 (err {sums})"
            assert np.array_equal(got.argmax(1), ref.argmax(1))
            worst = max(worst, diff, sums)
            # bounds, not the measured values: those depend on the machine's float32 kernels
            checks[f"batch_{n}"] = {"max_abs_diff_vs_torch_at_most": _bound(diff),
                                    "max_row_sum_error_at_most": _bound(sums)}
    print(f"ONNX check: NumPy interpreter vs torch, max |difference| or row-sum error {worst:.2e} (batches {len(verify_x)}, 1, 7, 64)")
    size = os.path.getsize(path)
    assert size < 5 * 1024 * 1024, size
    ops = sorted({n.op_type for n in g.node})
    return {
        "path": os.path.basename(path),
        "sha256": sha256_file(path),
        "size_bytes": size,
        "opset": OPSET,
        "operators": ops,
        "input": {"name": "onehot", "dtype": "float32", "shape": in_dims, "channel_order": list(CHANNELS)},
        "output": {"name": "probabilities", "dtype": "float32", "shape": out_dims, "class_order": list(classes)},
        "verification": {
            "checker": "onnx.checker.check_model(full_check=True): passed",
            "numerics": "independent NumPy ONNX interpreter (training/common.py; "
                        "onnx.reference and onnxruntime are not available as Debian packages) vs torch",
            "tolerance": 1e-5,
            "max_abs_diff_at_most": _bound(worst),
            "n_verify_sequences": int(len(verify_x)),
            "batches": checks,
        },
    }
