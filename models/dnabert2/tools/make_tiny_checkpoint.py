#!/usr/bin/env python3
"""Writes a tiny, RANDOMLY INITIALISED DNABERT-2-shaped checkpoint, and computes reference
outputs for it with a deliberately naive, independent implementation.

    make_tiny_checkpoint.py OUT_DIR [--format bin|safetensors|both] [--no-classifier] [--seed N]
    make_tiny_checkpoint.py --reference CKPT_DIR SEQUENCE [SEQUENCE ...]

The checkpoint folder has the on-disk layout of zhihan1996/DNABERT-2-117M: config.json
(BertConfig fields + alibi_starting_size, small sizes), tokenizer.json (tokenizers' JSON:
BPE model with vocab + merges over A/C/G/T, special tokens [UNK] [CLS] [SEP] [PAD] [MASK] as
ids 0-4, Whitespace pre-tokenizer, TemplateProcessing "[CLS] $A [SEP]"), tokenizer_config.json,
special_tokens_map.json, and the weights as pytorch_model.bin (torch.save of the state dict)
and/or model.safetensors. With a classifier (default) the state dict is that of
BertForSequenceClassification (bert.* incl. bert.pooler, classifier.*, 2 labels); with
--no-classifier it is that of the pre-trained BertForMaskedLM (bert.* without pooler, plus the
masked-LM head cls.predictions.*, which a serving model ignores).

THE WEIGHTS ARE RANDOM. Nothing computed from them means anything biologically; they exist
so the loading code, tokenizer and forward pass can be tested without the real weights.

--reference tokenises with a naive BPE (repeatedly merge the lowest-ranked adjacent pair,
leftmost first) and runs the network in float64 with explicit per-head, per-query loops,
written from the DNABERT-2 architecture description rather than from the serving code, and
prints JSON: per sequence tokens, ids, mean/cls/max pooled embeddings (special tokens
excluded, as the serving model does by default), mean over all tokens, and the classifier
probabilities when there is a head.
"""
import argparse
import collections
import json
import math
import os
import random
import re
import struct
import sys

import torch

SPECIALS = ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"]
BASES = ["A", "C", "G", "T"]
AUTO_MAP = {
    "AutoConfig": "configuration_bert.BertConfig",
    "AutoModel": "bert_layers.BertModel",
    "AutoModelForMaskedLM": "bert_layers.BertForMaskedLM",
    "AutoModelForSequenceClassification": "bert_layers.BertForSequenceClassification",
}


# --- tokenizer -----------------------------------------------------------------------------
def train_tiny_bpe(seed, num_merges):
    """A small BPE vocabulary learned the usual way (most frequent adjacent pair first) from
    a random DNA corpus with a few planted motifs, so merges look like real ones."""
    rng = random.Random(seed)
    motifs = ["TATAAT", "TTGACA", "GGGCGG", "CCAAT", "ACGT"]
    corpus = []
    for _ in range(300):
        parts = []
        while sum(len(p) for p in parts) < 40:
            parts.append(rng.choice(motifs) if rng.random() < 0.4 else "".join(rng.choice(BASES) for _ in range(3)))
        corpus.append(list("".join(parts)))
    vocab = {t: i for i, t in enumerate(SPECIALS + BASES)}
    merges = []
    for _ in range(num_merges):
        counts = collections.Counter()
        for word in corpus:
            for a, b in zip(word, word[1:]):
                counts[(a, b)] += 1
        if not counts:
            break
        best = max(counts.items(), key=lambda kv: (kv[1], tuple(-ord(c) for c in kv[0][0] + "|" + kv[0][1])))[0]
        merges.append(best)
        merged = best[0] + best[1]
        if merged not in vocab:
            vocab[merged] = len(vocab)
        for w, word in enumerate(corpus):
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    out.append(merged)
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            corpus[w] = out
    return vocab, merges


def tokenizer_json(vocab, merges):
    special = lambda i, t: {"id": i, "content": t, "single_word": False, "lstrip": False,  # noqa: E731
                            "rstrip": False, "normalized": False, "special": True}
    tmpl = lambda kind, name, type_id: {kind: {"id": name, "type_id": type_id}}  # noqa: E731
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [special(i, t) for i, t in enumerate(SPECIALS)],
        "normalizer": None,
        "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [tmpl("SpecialToken", "[CLS]", 0), tmpl("Sequence", "A", 0), tmpl("SpecialToken", "[SEP]", 0)],
            "pair": [tmpl("SpecialToken", "[CLS]", 0), tmpl("Sequence", "A", 0), tmpl("SpecialToken", "[SEP]", 0),
                     tmpl("Sequence", "B", 1), tmpl("SpecialToken", "[SEP]", 1)],
            "special_tokens": {t: {"id": t, "ids": [vocab[t]], "tokens": [t]} for t in ("[CLS]", "[SEP]")},
        },
        "decoder": None,
        "model": {
            "type": "BPE", "dropout": None, "unk_token": "[UNK]", "continuing_subword_prefix": None,
            "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
            "vocab": vocab, "merges": ["%s %s" % m for m in merges],
        },
    }


# --- weights -------------------------------------------------------------------------------
def random_state(cfg, classifier, seed):
    g = torch.Generator().manual_seed(seed)
    hid, inter, voc = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]

    def normal(*shape, std=1.0):
        return torch.randn(*shape, generator=g, dtype=torch.float32) * std

    def ln(prefix, sd):
        sd[prefix + ".weight"] = 1.0 + normal(hid, std=0.1)
        sd[prefix + ".bias"] = normal(hid, std=0.1)

    sd = collections.OrderedDict()
    sd["bert.embeddings.word_embeddings.weight"] = normal(voc, hid)
    sd["bert.embeddings.token_type_embeddings.weight"] = normal(cfg["type_vocab_size"], hid)
    ln("bert.embeddings.LayerNorm", sd)
    for n in range(cfg["num_hidden_layers"]):
        p = "bert.encoder.layer.%d." % n
        sd[p + "attention.self.Wqkv.weight"] = normal(3 * hid, hid, std=1.5 / math.sqrt(hid))
        sd[p + "attention.self.Wqkv.bias"] = normal(3 * hid, std=0.1)
        sd[p + "attention.output.dense.weight"] = normal(hid, hid, std=1 / math.sqrt(hid))
        sd[p + "attention.output.dense.bias"] = normal(hid, std=0.1)
        ln(p + "attention.output.LayerNorm", sd)
        sd[p + "mlp.gated_layers.weight"] = normal(2 * inter, hid, std=1 / math.sqrt(hid))
        sd[p + "mlp.wo.weight"] = normal(hid, inter, std=1 / math.sqrt(inter))
        sd[p + "mlp.wo.bias"] = normal(hid, std=0.1)
        ln(p + "mlp.layernorm", sd)
    if classifier:
        sd["bert.pooler.dense.weight"] = normal(hid, hid, std=1 / math.sqrt(hid))
        sd["bert.pooler.dense.bias"] = normal(hid, std=0.1)
        sd["classifier.weight"] = normal(2, hid, std=1.0)
        sd["classifier.bias"] = normal(2, std=0.1)
    else:  # BertForMaskedLM head; decoder.weight is tied to the word embeddings
        sd["cls.predictions.transform.dense.weight"] = normal(hid, hid, std=1 / math.sqrt(hid))
        sd["cls.predictions.transform.dense.bias"] = normal(hid, std=0.1)
        ln("cls.predictions.transform.LayerNorm", sd)
        sd["cls.predictions.decoder.weight"] = sd["bert.embeddings.word_embeddings.weight"]
        sd["cls.predictions.decoder.bias"] = normal(voc, std=0.1)
    return sd


_ST_NAMES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
             torch.int64: "I64", torch.int32: "I32"}


def write_safetensors(path, state):
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(state):
        t = state[name].detach().contiguous().cpu()
        data = t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.view(torch.int16).numpy().tobytes()
        header[name] = {"dtype": _ST_NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)  # the reference writer pads the header to 8 bytes
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(text)))
        fh.write(text)
        for b in blobs:
            fh.write(b)


def read_safetensors(path):
    with open(path, "rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(n))
        data = fh.read()
    types = {v: k for k, v in _ST_NAMES.items()}
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        out[name] = torch.frombuffer(bytearray(data[b:e]), dtype=types[info["dtype"]]).reshape(info["shape"])
    return out


def make(out_dir, fmt, classifier, seed, hidden, heads, layers, intermediate, merges):
    os.makedirs(out_dir, exist_ok=True)
    vocab, merge_list = train_tiny_bpe(seed, merges)
    cfg = {
        "_name_or_path": "isomodel/tiny-random-dnabert2 (RANDOM WEIGHTS, for tests only)",
        "alibi_starting_size": 512,
        "architectures": ["BertForSequenceClassification" if classifier else "BertForMaskedLM"],
        "attention_probs_dropout_prob": 0.0,
        "auto_map": AUTO_MAP,
        "classifier_dropout": None,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "hidden_size": hidden,
        "initializer_range": 0.02,
        "intermediate_size": intermediate,
        "layer_norm_eps": 1e-12,
        "max_position_embeddings": 512,
        "model_type": "bert",
        "num_attention_heads": heads,
        "num_hidden_layers": layers,
        "pad_token_id": 0,
        "position_embedding_type": "absolute",
        "torch_dtype": "float32",
        "transformers_version": "4.28.0",
        "type_vocab_size": 2,
        "use_cache": True,
        "vocab_size": len(vocab),
    }
    if classifier:
        cfg["id2label"] = {"0": "LABEL_0", "1": "LABEL_1"}
        cfg["label2id"] = {"LABEL_0": 0, "LABEL_1": 1}
        cfg["problem_type"] = "single_label_classification"
    with open(os.path.join(out_dir, "config.json"), "w") as fh:
        json.dump(cfg, fh, indent=2, sort_keys=True)
    with open(os.path.join(out_dir, "tokenizer.json"), "w") as fh:
        json.dump(tokenizer_json(vocab, merge_list), fh, indent=2)
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w") as fh:
        json.dump({"clean_up_tokenization_spaces": True, "cls_token": "[CLS]", "mask_token": "[MASK]",
                   "model_max_length": 1000000000000000019884624838656, "pad_token": "[PAD]",
                   "sep_token": "[SEP]", "tokenizer_class": "PreTrainedTokenizerFast", "unk_token": "[UNK]"}, fh, indent=2)
    with open(os.path.join(out_dir, "special_tokens_map.json"), "w") as fh:
        json.dump({"cls_token": "[CLS]", "mask_token": "[MASK]", "pad_token": "[PAD]", "sep_token": "[SEP]",
                   "unk_token": "[UNK]"}, fh, indent=2)
    with open(os.path.join(out_dir, "README.txt"), "w") as fh:
        fh.write("RANDOM WEIGHTS. Written by models/dnabert2/tools/make_tiny_checkpoint.py for tests; "
                 "this is not DNABERT-2 and its outputs mean nothing.\n")
    state = random_state(cfg, classifier, seed)
    if fmt in ("bin", "both"):
        torch.save(state, os.path.join(out_dir, "pytorch_model.bin"))
    if fmt in ("safetensors", "both"):
        # safetensors stores no shared tensors: untie the masked-LM decoder, as transformers does.
        write_safetensors(os.path.join(out_dir, "model.safetensors"),
                          {k: v.clone() for k, v in state.items()})
    return cfg


# --- naive reference -------------------------------------------------------------------------
def naive_tokenize(tok, text, max_tokens=None):
    model = tok["model"]
    vocab = model["vocab"]
    ranks = {tuple(m.split(" ") if isinstance(m, str) else m): r for r, m in enumerate(model["merges"])}
    ids = []
    for word in re.findall(r"\w+|[^\w\s]+", text):
        symbols = [c if c in vocab else model["unk_token"] for c in word]
        while True:
            best = None
            for i in range(len(symbols) - 1):
                r = ranks.get((symbols[i], symbols[i + 1]))
                if r is not None and (best is None or r < best[0]):
                    best = (r, i)
            if best is None:
                break
            i = best[1]
            symbols[i:i + 2] = [symbols[i] + symbols[i + 1]]
        ids.extend(vocab[s] for s in symbols)
    post = tok["post_processor"]["special_tokens"]
    cls, sep = post["[CLS]"]["ids"], post["[SEP]"]["ids"]
    if max_tokens is not None:
        ids = ids[:max(0, max_tokens - len(cls) - len(sep))]
    return cls + ids + sep, len(cls), len(sep)


def naive_slopes(n):
    p = 2 ** int(math.floor(math.log2(n)))
    slopes = [2.0 ** (-8.0 * (i + 1) / p) for i in range(p)]
    if n > p:
        slopes += [2.0 ** (-8.0 * (i + 1) / (2 * p)) for i in range(0, 2 * p, 2)][:n - p]
    return slopes


def naive_forward(cfg, sd, ids):
    def w(name):
        return sd[name].to(torch.float64)

    def layer_norm(x, prefix):
        mean = x.mean(dim=-1, keepdim=True)
        var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)
        return (x - mean) / torch.sqrt(var + cfg.get("layer_norm_eps", 1e-12)) * w(prefix + ".weight") + w(prefix + ".bias")

    hid, nh, inter = cfg["hidden_size"], cfg["num_attention_heads"], cfg["intermediate_size"]
    d = hid // nh
    slopes = naive_slopes(nh)
    n = len(ids)
    x = w("bert.embeddings.word_embeddings.weight")[torch.tensor(ids)] + w("bert.embeddings.token_type_embeddings.weight")[0]
    x = layer_norm(x, "bert.embeddings.LayerNorm")
    for layer in range(cfg["num_hidden_layers"]):
        p = "bert.encoder.layer.%d." % layer
        W, B = w(p + "attention.self.Wqkv.weight"), w(p + "attention.self.Wqkv.bias")
        heads = []
        for h in range(nh):
            q_rows = slice(h * d, (h + 1) * d)
            k_rows = slice(hid + h * d, hid + (h + 1) * d)
            v_rows = slice(2 * hid + h * d, 2 * hid + (h + 1) * d)
            q = x @ W[q_rows].T + B[q_rows]
            k = x @ W[k_rows].T + B[k_rows]
            v = x @ W[v_rows].T + B[v_rows]
            out = torch.zeros(n, d, dtype=torch.float64)
            for i in range(n):
                scores = torch.tensor([float(q[i] @ k[j]) / math.sqrt(d) - slopes[h] * abs(i - j) for j in range(n)],
                                      dtype=torch.float64)
                e = torch.exp(scores - scores.max())
                probs = e / e.sum()
                for j in range(n):
                    out[i] += probs[j] * v[j]
            heads.append(out)
        attn = torch.cat(heads, dim=1)
        x = layer_norm(attn @ w(p + "attention.output.dense.weight").T + w(p + "attention.output.dense.bias") + x,
                       p + "attention.output.LayerNorm")
        g = x @ w(p + "mlp.gated_layers.weight").T
        a, b = g[:, :inter], g[:, inter:]
        gelu = 0.5 * a * (1.0 + torch.erf(a / math.sqrt(2.0)))
        x = layer_norm((gelu * b) @ w(p + "mlp.wo.weight").T + w(p + "mlp.wo.bias") + x, p + "mlp.layernorm")
    return x


def reference(folder, sequences, max_tokens=None):
    with open(os.path.join(folder, "config.json")) as fh:
        cfg = json.load(fh)
    with open(os.path.join(folder, "tokenizer.json")) as fh:
        tok = json.load(fh)
    bin_path = os.path.join(folder, "pytorch_model.bin")
    if os.path.isfile(bin_path):
        sd = torch.load(bin_path, map_location="cpu")
    else:
        sd = read_safetensors(os.path.join(folder, "model.safetensors"))
    id_to_token = {i: t for t, i in tok["model"]["vocab"].items()}
    results = []
    for seq in sequences:
        ids, n_pre, n_post = naive_tokenize(tok, seq.upper(), max_tokens)
        x = naive_forward(cfg, sd, ids)
        body = x[n_pre:len(ids) - n_post]
        item = {
            "tokens": [id_to_token[i] for i in ids],
            "ids": ids,
            "mean": body.mean(dim=0).tolist(),
            "cls": x[0].tolist(),
            "max": body.max(dim=0).values.tolist(),
            "mean_all": x.mean(dim=0).tolist(),
        }
        if "classifier.weight" in sd:
            pooled = torch.tanh(x[0] @ sd["bert.pooler.dense.weight"].double().T + sd["bert.pooler.dense.bias"].double())
            logits = pooled @ sd["classifier.weight"].double().T + sd["classifier.bias"].double()
            item["probabilities"] = torch.softmax(logits, dim=-1).tolist()
        results.append(item)
    return results


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder")
    ap.add_argument("sequences", nargs="*")
    ap.add_argument("--reference", action="store_true", help="print naive reference outputs for SEQUENCES")
    ap.add_argument("--max-tokens", type=int, default=None)
    ap.add_argument("--format", choices=["bin", "safetensors", "both"], default="both")
    ap.add_argument("--no-classifier", action="store_true")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--hidden", type=int, default=48)
    ap.add_argument("--heads", type=int, default=6)  # not a power of two, like DNABERT-2's 12
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--intermediate", type=int, default=40)
    ap.add_argument("--merges", type=int, default=40)
    args = ap.parse_intermixed_args(argv)
    torch.set_num_threads(1)
    if args.reference:
        json.dump(reference(args.folder, args.sequences, args.max_tokens), sys.stdout)
        sys.stdout.write("\n")
        return 0
    cfg = make(args.folder, args.format, not args.no_classifier, args.seed, args.hidden, args.heads,
               args.layers, args.intermediate, args.merges)
    print(json.dumps({"folder": os.path.abspath(args.folder), "vocab_size": cfg["vocab_size"],
                      "hidden_size": cfg["hidden_size"], "classifier": not args.no_classifier, "format": args.format}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
