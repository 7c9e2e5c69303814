#!/usr/bin/env python3
"""Exports a DNABERT-2 checkpoint folder to ONNX for the dnabert2-onnx package.

    /usr/bin/python3 export_onnx.py CHECKPOINT_DIR OUT_DIR [--opset 17]

CHECKPOINT_DIR is what the dnabert2 adapter reads from DNABERT2_MODEL_PATH (config.json,
tokenizer.json, model.safetensors or pytorch_model.bin). It is loaded with the adapter's own
code (dnabert2_arch.load_checkpoint, dnabert2_tokenizer.load), so the graph is the network the
Python worker runs: DnaBert2.encode, and DnaBert2.classify when the checkpoint has a
sequence-classification head. OUT_DIR receives

    model.onnx          inputs  input_ids [batch, sequence] int64, attention_mask [batch, sequence] int64
                        outputs last_hidden_state [batch, sequence, hidden] float32,
                                logits [batch, num_labels] float32 (only with a classification head)
    tokenizer.json      the checkpoint's tokenizer, copied unchanged (the JS pipeline reads it)
    config.json         the checkpoint's config, copied unchanged
    isomodel_onnx.json  what the JS pipeline needs besides: sizes, labels, [PAD] id, the I/O names

Point DNABERT2_ONNX_PATH of the dnabert2-onnx package at OUT_DIR. Batch and sequence axes are
dynamic. Needs only torch (torch.onnx); the onnx Python package is not used.
"""
import argparse
import json
import os
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # the adapter's modules: the same code as the worker

import torch  # noqa: E402

import dnabert2_arch as arch  # noqa: E402
import dnabert2_tokenizer as tok  # noqa: E402

FORMAT = "isomodel-dnabert2-onnx"
FORMAT_VERSION = 1


class _Exported(torch.nn.Module):
    """The adapter's forward, as one graph: hidden states, and logits when there is a head."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        hidden = self.model.encode(input_ids, attention_mask)
        if self.model.classifier is None:
            return hidden
        return hidden, self.model.classify(hidden)


def export(checkpoint, out_dir, opset):
    config_file = os.path.join(checkpoint, "config.json")
    tokenizer_file = os.path.join(checkpoint, "tokenizer.json")
    config = arch.DnaBert2Config.from_file(config_file)
    tokenizer = tok.load(tokenizer_file)  # refuses tokenizer components the JS side would not follow either
    model, weights_file = arch.load_checkpoint(checkpoint, config)
    top_id = max(tokenizer.id_to_token)
    if top_id >= config.vocab_size:
        raise SystemExit("tokenizer.json has token id %d but config.json vocab_size is %d" % (top_id, config.vocab_size))
    pad = tokenizer.token_id("[PAD]")
    pad_id = pad if pad is not None else 0
    num_labels = 0 if model.classifier is None else model.classifier.out_features

    # Two rows of different lengths, so the padding mask is part of what is traced.
    example = [tokenizer.encode("ACGTTATAATGGGCGGACGT").ids, tokenizer.encode("TTGACAAT").ids]
    longest = max(len(e) for e in example)
    ids = torch.full((2, longest), pad_id, dtype=torch.long)
    mask = torch.zeros((2, longest), dtype=torch.long)
    for row, e in enumerate(example):
        ids[row, :len(e)] = torch.tensor(e, dtype=torch.long)
        mask[row, :len(e)] = 1

    outputs = ["last_hidden_state"] + (["logits"] if num_labels else [])
    dynamic = {"input_ids": {0: "batch", 1: "sequence"}, "attention_mask": {0: "batch", 1: "sequence"},
               "last_hidden_state": {0: "batch", 1: "sequence"}}
    if num_labels:
        dynamic["logits"] = {0: "batch"}
    os.makedirs(out_dir, exist_ok=True)
    onnx_file = os.path.join(out_dir, "model.onnx")
    t0 = time.time()
    with torch.no_grad():
        torch.onnx.export(_Exported(model).eval(), (ids, mask), onnx_file, input_names=["input_ids", "attention_mask"],
                          output_names=outputs, dynamic_axes=dynamic, opset_version=opset, do_constant_folding=True)
    shutil.copyfile(tokenizer_file, os.path.join(out_dir, "tokenizer.json"))
    shutil.copyfile(config_file, os.path.join(out_dir, "config.json"))
    info = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "source": os.path.abspath(checkpoint),
        "weights_file": os.path.basename(weights_file),
        "torch": torch.__version__,
        "opset": opset,
        "inputs": ["input_ids", "attention_mask"],
        "outputs": outputs,
        "hidden_size": config.hidden_size,
        "vocab_size": config.vocab_size,
        "num_hidden_layers": config.num_hidden_layers,
        "num_attention_heads": config.num_attention_heads,
        "max_position_embeddings": config.max_position_embeddings,
        "num_labels": num_labels,
        "id2label": {str(k): v for k, v in sorted(config.id2label.items())},
        "pad_id": pad_id,
    }
    with open(os.path.join(out_dir, "isomodel_onnx.json"), "w", encoding="utf-8") as fh:
        json.dump(info, fh, indent=2)
        fh.write("\n")
    print(json.dumps({"out": os.path.abspath(out_dir), "weights": weights_file, "outputs": outputs,
                      "hidden_size": config.hidden_size, "num_labels": num_labels,
                      "seconds": round(time.time() - t0, 2)}))


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("checkpoint", help="DNABERT-2 checkpoint folder (as DNABERT2_MODEL_PATH)")
    ap.add_argument("out", help="output folder (for DNABERT2_ONNX_PATH)")
    ap.add_argument("--opset", type=int, default=17)
    args = ap.parse_args(argv)
    try:
        export(args.checkpoint, args.out, args.opset)
    except (arch.CheckpointError, tok.TokenizerError, OSError, ValueError) as exc:
        print("export_onnx: cannot export %s: %s: %s" % (args.checkpoint, type(exc).__name__, exc), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
