"""Shared helpers for training/train_splice.py and training/train_promoter.py.

* IUPAC one-hot encoding (the exact table the runtime's JS pre-processing must reproduce),
* determinism set-up, file hashing, package versions,
* ONNX export + verification. The Debian `python3-onnx` (1.12) has no
  `onnx.reference.ReferenceEvaluator` and `onnxruntime` is not packaged for Debian, so this module
  carries a small, independent NumPy interpreter for the handful of ONNX operators the exported
  graphs use (written from the ONNX operator specification; unknown operators raise). ONNX outputs
  are compared with the torch outputs through it.

Run only with /usr/bin/python3 (Debian packages python3-torch, python3-sklearn, python3-onnx,
python3-numpy).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import random
import sys

import numpy as np

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
    return {
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "torch": torch.__version__,
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "onnx": onnx.__version__,
        "platform": platform.platform(),
    }


def write_json(path: str, obj) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=False)
        f.write("\n")


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
    model = onnx.load(path)
    model.producer_name = "isomodel/training"
    model.doc_string = metadata.get("description", "")
    del model.metadata_props[:]
    for k, v in metadata.items():
        p = model.metadata_props.add()
        p.key, p.value = k, v if isinstance(v, str) else json.dumps(v)
    onnx.save(model, path)

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
            worst = max(worst, diff)
            checks[f"batch_{n}"] = {"max_abs_diff_vs_torch": diff, "max_row_sum_error": sums}
    size = os.path.getsize(path)
    assert size < 5 * 1024 * 1024, size
    ops = sorted({n.op_type for n in g.node})
    return {
        "path": path,
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
            "max_abs_diff": worst,
            "n_verify_sequences": int(len(verify_x)),
            "batches": checks,
        },
    }
