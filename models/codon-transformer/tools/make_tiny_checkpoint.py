#!/usr/bin/env python3
"""Writes a tiny, RANDOMLY INITIALISED CodonTransformer-shaped checkpoint, and computes reference
outputs for it with a deliberately naive, independent implementation.

    make_tiny_checkpoint.py OUT_DIR [--format bin|safetensors|both] [--seed N]
    make_tiny_checkpoint.py --reference CKPT_DIR ORGANISM_ID PROTEIN [PROTEIN ...]

The folder has the on-disk layout of HF adibvafa/CodonTransformer: config.json (BigBirdConfig
fields, model_type big_bird, architectures [BigBirdForMaskedLM], vocab_size 90, type_vocab_size
164 = the organisms, small hidden sizes), tokenizer.json (WordPiece over CodonTransformer's 90
merged tokens, Lowercase normalizer, Split+Whitespace pre-tokenizer, "[CLS] $A [SEP]"),
tokenizer_config.json, special_tokens_map.json, and the BigBirdForMaskedLM state dict as
pytorch_model.bin (torch.save, tied tensors stored twice, as transformers' .bin) and/or
model.safetensors (one tensor per tied pair, as transformers writes safetensors).

THE WEIGHTS ARE RANDOM. Nothing computed from them means anything biologically; they exist so the
loading code, tokenizer and forward pass can be tested without the real weights.

--reference runs the network in float64 with explicit per-head, per-query loops, written from the
BigBird/BERT description rather than from the serving code, and prints JSON per protein: the
input token ids, and the DNA made of the best codon of each residue (stop included).
"""
import argparse
import collections
import json
import math
import os
import struct
import sys

import torch

SPECIALS = ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"]
AMINO = "acdefghiklmnpqrstvwy"
BASES = "TCAG"
CODE = "FFLLSSSSYY**CC*WLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG"


def vocabulary():
    """CodonTransformer's TOKEN2INDEX order: specials, <aa>_unk, __unk, then codons in ACGT order."""
    vocab = {t: i for i, t in enumerate(SPECIALS)}
    for a in AMINO:
        vocab[a + "_unk"] = len(vocab)
    vocab["__unk"] = len(vocab)
    table = {BASES[i // 16] + BASES[(i // 4) % 4] + BASES[i % 4]: CODE[i] for i in range(64)}
    for c1 in "ACGT":
        for c2 in "ACGT":
            for c3 in "ACGT":
                codon = c1 + c2 + c3
                aa = table[codon]
                vocab[("_" if aa == "*" else aa.lower()) + "_" + codon.lower()] = len(vocab)
    return vocab, table


def tokenizer_json(vocab):
    special = lambda i, t: {"id": i, "special": True, "content": t, "single_word": False, "lstrip": False,  # noqa: E731
                            "rstrip": False, "normalized": False}
    tmpl = lambda kind, name, type_id: {kind: {"id": name, "type_id": type_id}}  # noqa: E731
    return {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": [special(i, t) for i, t in enumerate(SPECIALS)],
        "normalizer": {"type": "Sequence", "normalizers": [{"type": "Lowercase"}]},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"String": " "}, "behavior": "Isolated", "invert": False}, {"type": "Whitespace"}]},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [tmpl("SpecialToken", "[CLS]", 0), tmpl("Sequence", "A", 0), tmpl("SpecialToken", "[SEP]", 0)],
            "pair": [tmpl("SpecialToken", "[CLS]", 0), tmpl("Sequence", "A", 0), tmpl("SpecialToken", "[SEP]", 0),
                     tmpl("Sequence", "B", 1), tmpl("SpecialToken", "[SEP]", 1)],
            "special_tokens": {t: {"id": t, "ids": [vocab[t]], "tokens": [t]} for t in ("[CLS]", "[SEP]")},
        },
        "decoder": None,
        "model": {"type": "WordPiece", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
                  "max_input_chars_per_word": 100, "vocab": vocab},
    }


def random_state(cfg, seed):
    g = torch.Generator().manual_seed(seed)
    hid, inter, voc = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]

    def normal(*shape, std=1.0):
        return torch.randn(*shape, generator=g, dtype=torch.float32) * std

    def linear(prefix, sd, out, inp):
        sd[prefix + ".weight"] = normal(out, inp, std=1.2 / math.sqrt(inp))
        sd[prefix + ".bias"] = normal(out, std=0.1)

    def ln(prefix, sd):
        sd[prefix + ".weight"] = 1.0 + normal(hid, std=0.1)
        sd[prefix + ".bias"] = normal(hid, std=0.1)

    sd = collections.OrderedDict()
    sd["bert.embeddings.word_embeddings.weight"] = normal(voc, hid)
    sd["bert.embeddings.position_embeddings.weight"] = normal(cfg["max_position_embeddings"], hid, std=0.5)
    sd["bert.embeddings.token_type_embeddings.weight"] = normal(cfg["type_vocab_size"], hid)
    ln("bert.embeddings.LayerNorm", sd)
    for n in range(cfg["num_hidden_layers"]):
        p = "bert.encoder.layer.%d." % n
        for part in ("query", "key", "value"):
            linear(p + "attention.self." + part, sd, hid, hid)
        linear(p + "attention.output.dense", sd, hid, hid)
        ln(p + "attention.output.LayerNorm", sd)
        linear(p + "intermediate.dense", sd, inter, hid)
        linear(p + "output.dense", sd, hid, inter)
        ln(p + "output.LayerNorm", sd)
    linear("bert.pooler", sd, hid, hid)
    linear("cls.predictions.transform.dense", sd, hid, hid)
    ln("cls.predictions.transform.LayerNorm", sd)
    sd["cls.predictions.bias"] = normal(voc, std=0.5)
    sd["cls.predictions.decoder.weight"] = sd["bert.embeddings.word_embeddings.weight"]
    sd["cls.predictions.decoder.bias"] = sd["cls.predictions.bias"]
    return sd


_ST_NAMES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64", torch.int64: "I64"}


def write_safetensors(path, state):
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(state):
        t = state[name].detach().contiguous().cpu()
        data = t.numpy().tobytes()
        header[name] = {"dtype": _ST_NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(text)))
        fh.write(text)
        for b in blobs:
            fh.write(b)


def read_weights(folder):
    bin_path = os.path.join(folder, "pytorch_model.bin")
    if os.path.isfile(bin_path):
        return torch.load(bin_path, map_location="cpu")
    with open(os.path.join(folder, "model.safetensors"), "rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(n))
        data = fh.read()
    types = {v: k for k, v in _ST_NAMES.items()}
    out = {}
    for name, info in header.items():
        if name != "__metadata__":
            b, e = info["data_offsets"]
            out[name] = torch.frombuffer(bytearray(data[b:e]), dtype=types[info["dtype"]]).reshape(info["shape"])
    out.setdefault("cls.predictions.decoder.weight", out["bert.embeddings.word_embeddings.weight"])
    return out


def make(out_dir, fmt, seed, hidden, heads, layers, intermediate):
    os.makedirs(out_dir, exist_ok=True)
    vocab, _ = vocabulary()
    cfg = {
        "_name_or_path": "isomodel/tiny-random-codontransformer (RANDOM WEIGHTS, for tests only)",
        "architectures": ["BigBirdForMaskedLM"], "attention_probs_dropout_prob": 0.1, "attention_type": "block_sparse",
        "block_size": 64, "bos_token_id": 1, "classifier_dropout": None, "eos_token_id": 2, "hidden_act": "gelu_new",
        "hidden_dropout_prob": 0.1, "hidden_size": hidden, "initializer_range": 0.02, "intermediate_size": intermediate,
        "layer_norm_eps": 1e-12, "max_position_embeddings": 4096, "model_type": "big_bird", "num_attention_heads": heads,
        "num_hidden_layers": layers, "num_random_blocks": 3, "pad_token_id": 0, "position_embedding_type": "absolute",
        "rescale_embeddings": False, "sep_token_id": 2, "torch_dtype": "float32", "transformers_version": "4.40.0",
        "type_vocab_size": 164, "use_bias": True, "use_cache": True, "vocab_size": len(vocab),
    }
    with open(os.path.join(out_dir, "config.json"), "w") as fh:
        json.dump(cfg, fh, indent=2, sort_keys=True)
    with open(os.path.join(out_dir, "tokenizer.json"), "w") as fh:
        json.dump(tokenizer_json(vocab), fh)
    specials = {"bos_token": "[CLS]", "cls_token": "[CLS]", "eos_token": "[SEP]", "mask_token": "[MASK]",
                "pad_token": "[PAD]", "sep_token": "[SEP]", "unk_token": "[UNK]"}
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w") as fh:
        json.dump(dict(specials, model_max_length=1000000000000000019884624838656,
                       tokenizer_class="PreTrainedTokenizerFast"), fh, indent=2)
    with open(os.path.join(out_dir, "special_tokens_map.json"), "w") as fh:
        json.dump(specials, fh, indent=2)
    with open(os.path.join(out_dir, "README.txt"), "w") as fh:
        fh.write("RANDOM WEIGHTS. Written by models/codon-transformer/tools/make_tiny_checkpoint.py for tests; "
                 "this is not CodonTransformer and its outputs mean nothing.\n")
    state = random_state(cfg, seed)
    if fmt in ("bin", "both"):
        torch.save(state, os.path.join(out_dir, "pytorch_model.bin"))
    if fmt in ("safetensors", "both"):
        tied = {"cls.predictions.decoder.weight", "cls.predictions.decoder.bias"}
        write_safetensors(os.path.join(out_dir, "model.safetensors"), {k: v.clone() for k, v in state.items() if k not in tied})
    return cfg


# --- naive reference ---------------------------------------------------------------------------
def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def naive_logits(cfg, sd, ids, organism):
    def w(name):
        return sd[name].to(torch.float64)

    def layer_norm(x, prefix):
        mean = x.mean(dim=-1, keepdim=True)
        var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)
        return (x - mean) / torch.sqrt(var + cfg["layer_norm_eps"]) * w(prefix + ".weight") + w(prefix + ".bias")

    def lin(x, prefix):
        return x @ w(prefix + ".weight").T + w(prefix + ".bias")

    hid, nh = cfg["hidden_size"], cfg["num_attention_heads"]
    d = hid // nh
    n = len(ids)
    x = torch.stack([w("bert.embeddings.word_embeddings.weight")[t] + w("bert.embeddings.token_type_embeddings.weight")[organism]
                     + w("bert.embeddings.position_embeddings.weight")[i] for i, t in enumerate(ids)])
    x = layer_norm(x, "bert.embeddings.LayerNorm")
    for layer in range(cfg["num_hidden_layers"]):
        p = "bert.encoder.layer.%d." % layer
        q, k, v = (lin(x, p + "attention.self." + part) for part in ("query", "key", "value"))
        out = torch.zeros(n, hid, dtype=torch.float64)
        for h in range(nh):
            cols = slice(h * d, (h + 1) * d)
            for i in range(n):
                scores = torch.tensor([float(q[i, cols] @ k[j, cols]) / math.sqrt(d) for j in range(n)], dtype=torch.float64)
                e = torch.exp(scores - scores.max())
                probs = e / e.sum()
                for j in range(n):
                    out[i, cols] += probs[j] * v[j, cols]
        x = layer_norm(lin(out, p + "attention.output.dense") + x, p + "attention.output.LayerNorm")
        x = layer_norm(lin(gelu_new(lin(x, p + "intermediate.dense")), p + "output.dense") + x, p + "output.LayerNorm")
    t = layer_norm(gelu_new(lin(x, "cls.predictions.transform.dense")), "cls.predictions.transform.LayerNorm")
    return t @ w("bert.embeddings.word_embeddings.weight").T + w("cls.predictions.bias")


def reference(folder, organism, proteins):
    with open(os.path.join(folder, "config.json")) as fh:
        cfg = json.load(fh)
    with open(os.path.join(folder, "tokenizer.json")) as fh:
        vocab = json.load(fh)["model"]["vocab"]
    sd = read_weights(folder)
    results = []
    for protein in proteins:
        residues = protein.lower() + "_"
        ids = [vocab["[CLS]"]] + [vocab[r + "_unk"] for r in residues] + [vocab["[SEP]"]]
        logits = naive_logits(cfg, sd, ids, organism)
        dna = []
        for pos, r in enumerate(residues, start=1):
            best = max((tok for tok in vocab if len(tok) == 5 and tok[0] == r and tok[1] == "_" and tok[2:] != "unk"),
                       key=lambda tok: float(logits[pos, vocab[tok]]))
            dna.append(best[2:].upper())
        results.append({"ids": ids, "dna": "".join(dna)})
    return results


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder")
    ap.add_argument("rest", nargs="*")
    ap.add_argument("--reference", action="store_true", help="print naive reference outputs: ORGANISM_ID PROTEIN...")
    ap.add_argument("--format", choices=["bin", "safetensors", "both"], default="both")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--intermediate", type=int, default=48)
    args = ap.parse_intermixed_args(argv)
    torch.set_num_threads(1)
    if args.reference:
        json.dump(reference(args.folder, int(args.rest[0]), args.rest[1:]), sys.stdout)
        sys.stdout.write("\n")
        return 0
    cfg = make(args.folder, args.format, args.seed, args.hidden, args.heads, args.layers, args.intermediate)
    print(json.dumps({"folder": os.path.abspath(args.folder), "vocab_size": cfg["vocab_size"], "format": args.format}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
