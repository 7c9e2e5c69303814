"""The baseline of the `baseline` benchmark: "the design users write instead", one Flask app per
model. It serves the splice-junction classifier (models/splice/model.onnx) at POST /predict
{"sequence": "<60 bp>"} with the same probabilities as isomodel's onnx runtime.

There is no onnxruntime for this Python, so the forward pass is a minimal numpy interpreter of
ONNX graphs, covering exactly the operators the splice graph uses (loaded with the `onnx`
package). One request, one forward pass of batch 1: no batching, as such apps are written.

Usage (Debian's /usr/bin/python3 with python3-onnx, python3-numpy, python3-flask):
  python3 bench/flask/splice_app.py serve MODEL.onnx PORT    Flask's built-in threaded server
  python3 bench/flask/splice_app.py check MODEL.onnx VECTORS.json
      checks the interpreter against the reference outputs; exit status 1 if any differs
"""
import json
import logging
import sys

import numpy as np
import onnx
from onnx import numpy_helper

CLASSES = ["ei", "ie", "n"]
LENGTH = 60
# IUPAC nucleotide codes as the bases they stand for, channel order A, C, G, T (as in
# src/worker/encoding.ts: an ambiguity code splits its weight evenly).
IUPAC = {"A": "A", "C": "C", "G": "G", "T": "T", "U": "T", "R": "AG", "Y": "CT", "S": "CG", "W": "AT",
         "K": "GT", "M": "AC", "B": "CGT", "D": "AGT", "H": "ACT", "V": "ACG", "N": "ACGT"}
WEIGHTS = {}
for _code, _bases in IUPAC.items():
    _w = np.zeros(4, dtype=np.float32)
    for _b in _bases:
        _w["ACGT".index(_b)] = 1.0 / len(_bases)
    WEIGHTS[_code] = _w


def one_hot(sequences):
    """float32 [batch, 60, 4]; raises ValueError for a bad letter or length."""
    out = np.zeros((len(sequences), LENGTH, 4), dtype=np.float32)
    for i, seq in enumerate(sequences):
        seq = "".join(seq.split()).upper()
        if len(seq) != LENGTH:
            raise ValueError("sequence %d has %d bases; this model takes exactly %d" % (i, len(seq), LENGTH))
        for j, letter in enumerate(seq):
            w = WEIGHTS.get(letter)
            if w is None:
                raise ValueError("not a nucleotide code: %r" % letter)
            out[i, j] = w
    return out


# ---- a minimal numpy ONNX interpreter ----------------------------------------------------------

def _attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _slice(x, starts, ends, axes=None, steps=None):
    axes = range(len(starts)) if axes is None else axes
    steps = [1] * len(starts) if steps is None else steps
    index = [slice(None)] * x.ndim
    for s, e, a, st in zip(starts, ends, axes, steps):
        index[int(a)] = slice(int(s), int(e), int(st))  # Python slicing clamps as ONNX does
    return x[tuple(index)]


def _gemm(a, b, c=None, alpha=1.0, beta=1.0, transA=0, transB=0):
    a = a.T if transA else a
    b = b.T if transB else b
    y = alpha * (a @ b)
    return y + beta * c if c is not None else y


def _softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _conv(x, w, b=None, dilations=(1,), group=1, kernel_shape=None, pads=None, strides=(1,), auto_pad=b"NOTSET"):
    # 1-D convolution only: x [N, C, L], w [M, C, K].
    if x.ndim != 3 or group != 1 or tuple(dilations) != (1,) or auto_pad not in (b"NOTSET", "NOTSET"):
        raise NotImplementedError("Conv: only 1-D, group 1, dilation 1, explicit pads")
    pads = pads or (0, 0)
    n, c, length = x.shape
    m, _, k = w.shape
    if pads[0] or pads[1]:  # zeros + copy: np.pad costs ~50 us a call
        padded = np.zeros((n, c, length + pads[0] + pads[1]), dtype=x.dtype)
        padded[:, :, pads[0] : pads[0] + length] = x
        x, length = padded, padded.shape[2]
    out = (length - k) // strides[0] + 1
    # im2col by fancy indexing, then one matmul: [N, Lout, C*K] @ [C*K, M].
    taps = np.arange(out)[:, None] * strides[0] + np.arange(k)[None, :]
    cols = x[:, :, taps].transpose(0, 2, 1, 3).reshape(n, out, c * k)  # N, Lout, C*K
    y = (cols @ w.reshape(m, c * k).T).transpose(0, 2, 1)
    return y + b[None, :, None] if b is not None else y


def _maxpool(x, kernel_shape, pads=None, strides=None, ceil_mode=0, auto_pad=b"NOTSET", dilations=None, storage_order=0):
    # 1-D max pooling only: x [N, C, L].
    if x.ndim != 3 or ceil_mode or any(pads or ()) or (dilations and tuple(dilations) != (1,)) or auto_pad not in (b"NOTSET", "NOTSET"):
        raise NotImplementedError("MaxPool: only 1-D, no padding, floor mode")
    k = kernel_shape[0]
    s = (strides or (1,))[0]
    n, c, length = x.shape
    if s == k:  # non-overlapping windows: a reshape, no strided view
        out = (length - k) // s + 1
        return x[:, :, : out * k].reshape(n, c, out, k).max(axis=3)
    taps = np.arange((length - k) // s + 1)[:, None] * s + np.arange(k)[None, :]
    return x[:, :, taps].max(axis=3)


def _flatten(x, axis=1):
    return x.reshape(int(np.prod(x.shape[:axis])), -1)


def _unsqueeze(x, axes):
    for a in sorted(int(a) % (x.ndim + len(axes)) for a in axes):
        x = np.expand_dims(x, a)
    return x


OPS = {
    "Add": lambda a, b: a + b,
    "Mul": lambda a, b: a * b,
    "Div": lambda a, b: a / b,
    "Relu": lambda x: np.maximum(x, 0),
    "Softmax": _softmax,
    "Gemm": _gemm,
    "Conv": _conv,
    "MaxPool": _maxpool,
    "Flatten": _flatten,
    "Transpose": lambda x, perm=None: np.transpose(x, perm),
    "Concat": lambda *xs, axis: np.concatenate(xs, axis=axis),
    "Unsqueeze": _unsqueeze,  # opset 13: axes is an input
    "Slice": _slice,  # opset 10+: starts, ends, axes, steps are inputs
}


class Graph:
    """An ONNX graph evaluated node by node with numpy (opset 13, the operators in OPS)."""

    def __init__(self, path):
        model = onnx.load(path)
        self.graph = model.graph
        self.weights = {t.name: numpy_helper.to_array(t) for t in self.graph.initializer}
        self.nodes = []
        for node in self.graph.node:  # ONNX stores nodes in topological order
            attrs = _attrs(node)
            if node.op_type == "Constant":
                self.weights[node.output[0]] = numpy_helper.to_array(attrs["value"])
                continue
            if node.op_type not in OPS:
                raise NotImplementedError("operator %s" % node.op_type)
            for key, value in list(attrs.items()):
                if isinstance(value, bytes):
                    attrs[key] = value.decode()
            self.nodes.append((OPS[node.op_type], list(node.input), node.output[0], attrs))
        self.outputs = [o.name for o in self.graph.output]

    def run(self, feeds):
        values = dict(self.weights)
        values.update(feeds)
        for op, inputs, output, attrs in self.nodes:
            args = [values[i] if i else None for i in inputs]
            values[output] = op(*args, **attrs)
        return {name: values[name] for name in self.outputs}


def predict(graph, sequences):
    probs = graph.run({"onehot": one_hot(sequences)})["probabilities"].astype(np.float32)
    results = []
    for row in probs:
        row = [float(p) for p in row]
        best = int(np.argmax(row))
        results.append({"prediction": CLASSES[best], "confidence": row[best], "probabilities": dict(zip(CLASSES, row))})
    return results


def check(model_path, vectors_path):
    graph = Graph(model_path)
    vectors = json.load(open(vectors_path))
    tol = float(vectors.get("tolerance", 1e-4))
    worst = 0.0
    for case in vectors["cases"]:
        got = predict(graph, [case["sequence"]])[0]["probabilities"]
        worst = max(worst, max(abs(got[c] - e) for c, e in zip(CLASSES, case["probabilities"])))
    # Batched evaluation must agree with one-at-a-time.
    batched = graph.run({"onehot": one_hot([c["sequence"] for c in vectors["cases"]])})["probabilities"]
    for case, row in zip(vectors["cases"], batched):
        worst = max(worst, float(np.max(np.abs(row - np.array(case["probabilities"])))))
    print(json.dumps({"cases": len(vectors["cases"]), "max_abs_diff": worst, "tolerance": tol, "ok": worst <= tol}))
    return worst <= tol


def serve(model_path, port):
    from flask import Flask, jsonify, request

    graph = Graph(model_path)
    app = Flask(__name__)

    @app.get("/health")
    def health():
        return jsonify(status="ok")

    @app.post("/predict")
    def predict_route():
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("sequence"), str):
            return jsonify(error="body must be {\"sequence\": \"...\"}"), 400
        try:
            result = predict(graph, [body["sequence"]])[0]
        except ValueError as e:
            return jsonify(error=str(e)), 400
        return jsonify(result)

    # The one deviation from a stock app: no access-log line per request (isomodel runs the
    # benchmark with its own request logging at "warn" too).
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app.run(host="127.0.0.1", port=port, threaded=True)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "check":
        sys.exit(0 if check(sys.argv[2], sys.argv[3]) else 1)
    if len(sys.argv) == 4 and sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]))
        sys.exit(0)
    print(__doc__, file=sys.stderr)
    sys.exit(2)
