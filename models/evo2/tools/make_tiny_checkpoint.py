#!/usr/bin/env python3
"""Writes a tiny, RANDOMLY INITIALISED Evo 2-shaped checkpoint (StripedHyena 2 block structure),
and computes reference outputs for it with a deliberately naive, independent implementation.

    make_tiny_checkpoint.py OUT_DIR [--seed N]
    make_tiny_checkpoint.py --reference CKPT_DIR SEQUENCE [SEQUENCE ...]

The folder has the layout the evo2 package uses: a vortex YAML config (evo2-tiny.yml, the keys of
evo2/configs/evo2-*.yml: interleave, column_split, evo2_style_activations, *_layer_idxs, ...) and one
torch.save'd state dict (evo2_tiny.pt) with vortex's key names, the attention Wqkv rows stored per
head as the savanna-trained checkpoints keep them, and Transformer Engine's
`projections._extra_state` entries (here None). Blocks: hcs, hcm, hcl, attention, hcs.

THE WEIGHTS ARE RANDOM: they exist so the loading code and forward pass can be tested without the
real weights; nothing they produce means anything.

--reference runs the network in float64 with explicit loops over positions and taps (direct
convolution sums, the long filter from its modal form, per-position rotary, per-query causal
attention), written from the architecture description rather than from the serving code, and
prints JSON per sequence: the log-likelihood of each base from position 1, and the greedy
continuation of 12 bases among A/C/G/T. --variant alt writes a checkpoint with vortex's other
conventions (column_split_hyena, no interleave, projection and short-filter biases, GELU in every
MLP, interpolated rotary positions).
"""
import argparse
import collections
import json
import math
import os
import sys

import torch

CONFIG = {
    "model_name": "isomodel-tiny-random-evo2 (RANDOM WEIGHTS, for tests only)",
    "vocab_size": 512, "hidden_size": 24, "num_filters": 24, "num_layers": 5, "num_attention_heads": 3,
    "hcs_layer_idxs": [0, 4], "hcm_layer_idxs": [1], "hcl_layer_idxs": [2], "attn_layer_idxs": [3],
    "hcm_filter_length": 128, "hcl_filter_groups": 24, "hcm_filter_groups": 4, "hcs_filter_groups": 4,
    "hcs_filter_length": 7, "short_filter_length": 3, "short_filter_bias": False, "state_size": 4, "eps": 1.0e-6,
    "proj_groups": 1, "hyena_filter_groups": 1, "column_split_hyena": False, "column_split": True, "interleave": True,
    "evo2_style_activations": True, "mlp_activation": "gelu", "make_vocab_size_divisible_by": 8,
    "inner_size_multiple_of": 16, "inner_mlp_size": 40, "tie_embeddings": True, "mha_out_proj_bias": True,
    "hyena_out_proj_bias": True, "hyena_flip_x1x2": False, "qkv_proj_bias": False, "use_fp8_input_projections": False,
    "max_seqlen": 2048, "max_batch_size": 1, "final_norm": True, "use_flash_attn": True, "use_flash_rmsnorm": False,
    "use_flash_depthwise": False, "use_flashfft": False, "inference_mode": True, "prefill_style": "fft",
    "tokenizer_type": "CharLevelTokenizer", "rotary_emb_base": 10000, "model_parallel_size": 1, "pipe_parallel_size": 1,
}


# The other conventions vortex supports, for a second test checkpoint: per-head (column) split of the
# hyena projections instead of interleave + plain split, biases on the projections and the short
# filter, GELU in every MLP, linearly interpolated rotary positions.
ALT = dict(CONFIG, column_split_hyena=True, interleave=False, qkv_proj_bias=True, short_filter_bias=True,
           evo2_style_activations=False, use_interpolated_rotary_pos_emb=True, rotary_emb_scaling_factor=4.0)


def random_state(cfg, seed):
    g = torch.Generator().manual_seed(seed)
    d, inner, hd = cfg["hidden_size"], cfg["inner_mlp_size"], cfg["hidden_size"] // cfg["num_attention_heads"]

    def normal(*shape, std=1.0):
        return torch.randn(*shape, generator=g, dtype=torch.float32) * std

    sd = collections.OrderedDict()
    sd["embedding_layer.weight"] = normal(cfg["vocab_size"], d)
    for i in range(cfg["num_layers"]):
        p = "blocks.%d." % i
        sd[p + "pre_norm.scale"] = 1.0 + normal(d, std=0.1)
        sd[p + "post_norm.scale"] = 1.0 + normal(d, std=0.1)
        sd[p + "mlp.l1.weight"] = normal(inner, d, std=1 / math.sqrt(d))
        sd[p + "mlp.l2.weight"] = normal(inner, d, std=1 / math.sqrt(d))
        sd[p + "mlp.l3.weight"] = normal(d, inner, std=1 / math.sqrt(inner))
        if i in cfg["attn_layer_idxs"]:
            sd[p + "inner_mha_cls.Wqkv.weight"] = normal(3 * d, d, std=1.5 / math.sqrt(d))  # rows [head, (q,k,v), hd]
            if cfg["qkv_proj_bias"]:
                sd[p + "inner_mha_cls.Wqkv.bias"] = normal(3 * d, std=0.3)
            sd[p + "inner_mha_cls.out_proj.weight"] = normal(d, d, std=1 / math.sqrt(d))
            sd[p + "inner_mha_cls.out_proj.bias"] = normal(d, std=0.1)
            sd[p + "inner_mha_cls.rotary_emb.inv_freq"] = 1.0 / (cfg["rotary_emb_base"] ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
            continue
        sd[p + "projections.weight"] = normal(3 * d, d, std=1 / math.sqrt(d))
        if cfg["qkv_proj_bias"]:
            sd[p + "projections.bias"] = normal(3 * d, std=0.3)
        sd[p + "projections._extra_state"] = None  # Transformer Engine's FP8 metadata slot
        sd[p + "out_filter_dense.weight"] = normal(d, d, std=1 / math.sqrt(d))
        sd[p + "out_filter_dense.bias"] = normal(d, std=0.1)
        sd[p + "filter.short_filter_weight"] = normal(3 * d, 1, cfg["short_filter_length"], std=0.7)
        if cfg["short_filter_bias"]:
            sd[p + "filter.short_filter_bias"] = normal(3 * d, std=0.3)
        if i in cfg["hcl_layer_idxs"]:
            sd[p + "filter.log_poles"] = -torch.exp(normal(d, cfg["state_size"], 1, std=0.7)) * 0.3
            sd[p + "filter.residues"] = normal(d, cfg["state_size"], std=0.5)
            sd[p + "filter.D"] = normal(d, std=0.5)
        elif i in cfg["hcm_layer_idxs"]:
            sd[p + "filter.h"] = normal(cfg["hcm_filter_groups"], 1, cfg["hcm_filter_length"], std=0.2)
            sd[p + "filter.D"] = normal(d, std=0.5)
        else:
            sd[p + "filter.h"] = normal(cfg["hcs_filter_groups"], 1, cfg["hcs_filter_length"], std=0.5)
    sd["norm.scale"] = 1.0 + normal(d, std=0.1)
    return sd


def write_yaml(path, cfg):
    with open(path, "w") as fh:
        for k, v in cfg.items():
            # JSON scalars and lists are YAML flow values, except that YAML 1.1 wants a dot in 1.0e-06
            text = ("%.1e" % v) if isinstance(v, float) and "e" in repr(v) else json.dumps(v)
            fh.write("%s: %s\n" % (k, text))


def make(folder, seed, cfg):
    os.makedirs(folder, exist_ok=True)
    write_yaml(os.path.join(folder, "evo2-tiny.yml"), cfg)
    torch.save(random_state(cfg, seed), os.path.join(folder, "evo2_tiny.pt"))
    with open(os.path.join(folder, "README.txt"), "w") as fh:
        fh.write("RANDOM WEIGHTS. Written by models/evo2/tools/make_tiny_checkpoint.py for tests; this is not Evo 2.\n")


# --- naive reference ---------------------------------------------------------------------------
def naive_logits(cfg, sd, seq):
    w = {k: v.double() for k, v in sd.items() if torch.is_tensor(v)}
    d, heads = cfg["hidden_size"], cfg["num_attention_heads"]
    hd = d // heads
    n = len(seq)

    def rms(x, key):
        return w[key] * x / (torch.sqrt((x * x).sum(-1, keepdim=True)) / math.sqrt(d) + cfg["eps"])

    def mlp(x, i):
        p = "blocks.%d.mlp." % i
        a = x @ w[p + "l1.weight"].T
        if i == 0 or not cfg.get("evo2_style_activations"):
            a = 0.5 * a * (1 + torch.erf(a / math.sqrt(2)))
        return (a * (x @ w[p + "l2.weight"].T)) @ w[p + "l3.weight"].T

    def causal(u, taps, current_last):
        """u [C, n], taps [C, K]: y[c, t] = sum_k taps[c, k] u[c, t - k] (current first) or the
        mirror (current last, as torch's conv1d with left padding)."""
        c_, k_ = taps.shape
        y = torch.zeros_like(u)
        for t in range(n):
            for k in range(k_):
                src = t - k
                if src < 0:
                    break
                tap = taps[:, k_ - 1 - k] if current_last else taps[:, k]
                y[:, t] += tap * u[:, src]
        return y

    x = w["embedding_layer.weight"][[ord(ch) for ch in seq]]
    for i in range(cfg["num_layers"]):
        p = "blocks.%d." % i
        if i in cfg["attn_layer_idxs"]:
            h = rms(x, p + "pre_norm.scale")
            W = w[p + "inner_mha_cls.Wqkv.weight"]
            inv = w[p + "inner_mha_cls.rotary_emb.inv_freq"]
            out = torch.zeros(n, d, dtype=torch.float64)
            for head in range(heads):
                rows = lambda j: slice(head * 3 * hd + j * hd, head * 3 * hd + (j + 1) * hd)  # noqa: E731
                B = w.get(p + "inner_mha_cls.Wqkv.bias")
                q, k, v = (h @ W[rows(j)].T + (B[rows(j)] if B is not None else 0) for j in range(3))
                pos_scale = cfg.get("rotary_emb_scaling_factor", 1.0) if cfg.get("use_interpolated_rotary_pos_emb") else 1.0

                def rope(m):
                    r = torch.zeros_like(m)
                    for t in range(n):
                        for f in range(hd // 2):
                            ang = t / pos_scale * float(inv[f])
                            a, b = m[t, f], m[t, f + hd // 2]
                            r[t, f] = a * math.cos(ang) - b * math.sin(ang)
                            r[t, f + hd // 2] = b * math.cos(ang) + a * math.sin(ang)
                    return r
                q, k = rope(q), rope(k)
                for t in range(n):
                    s = torch.tensor([float(q[t] @ k[j]) / math.sqrt(hd) for j in range(t + 1)], dtype=torch.float64)
                    e = torch.exp(s - s.max())
                    pr = e / e.sum()
                    out[t, head * hd:(head + 1) * hd] = sum(pr[j] * v[j] for j in range(t + 1))
            x = x + out @ w[p + "inner_mha_cls.out_proj.weight"].T + w[p + "inner_mha_cls.out_proj.bias"]
        else:
            z = rms(x, p + "pre_norm.scale") @ w[p + "projections.weight"].T
            if p + "projections.bias" in w:
                z = z + w[p + "projections.bias"]
            z = causal(z.T, w[p + "filter.short_filter_weight"][:, 0], current_last=True)  # [3D, n]
            if p + "filter.short_filter_bias" in w:
                z = z + w[p + "filter.short_filter_bias"][:, None]
            if cfg["interleave"]:
                # channel 3j -> x2[j], 3j+1 -> x1[j], 3j+2 -> v[j] (then a plain split)
                x2, x1, v = z[0::3], z[1::3], z[2::3]
            elif cfg["column_split_hyena"]:
                # per head h: channels [h*3hd, h*3hd+hd) -> x2, the next hd -> x1, the next hd -> v
                idx = lambda j: [hh * 3 * hd + j * hd + c for hh in range(heads) for c in range(hd)]  # noqa: E731
                x2, x1, v = z[idx(0)], z[idx(1)], z[idx(2)]
            else:
                x2, x1, v = z[:d], z[d:2 * d], z[2 * d:]
            u = x1 * v
            if i in cfg["hcl_layer_idxs"]:
                lp, res = w[p + "filter.log_poles"][:, :, 0], w[p + "filter.residues"]
                taps = torch.stack([(res * torch.exp(lp * t)).sum(1) for t in range(n)], dim=1)  # [D, n]
                y = causal(u, taps, current_last=False) + u * w[p + "filter.D"][:, None]
            else:
                hm = w[p + "filter.h"][:, 0]
                per = d // hm.shape[0]
                taps = torch.stack([hm[c // per] for c in range(d)])  # channel c uses its group's filter
                if i in cfg["hcm_layer_idxs"]:
                    y = causal(u, taps, current_last=False) + u * w[p + "filter.D"][:, None]
                else:
                    y = causal(u, taps, current_last=True)
            y = (x2 * y).T
            x = x + y @ w[p + "out_filter_dense.weight"].T + w[p + "out_filter_dense.bias"]
        x = x + mlp(rms(x, p + "post_norm.scale"), i)
    x = rms(x, "norm.scale")
    return x @ w["embedding_layer.weight"].T


def reference(folder, seqs):
    import yaml
    with open(os.path.join(folder, "evo2-tiny.yml")) as fh:
        cfg = yaml.safe_load(fh)
    sd = torch.load(os.path.join(folder, "evo2_tiny.pt"), map_location="cpu")
    out = []
    for seq in seqs:
        lp = torch.log_softmax(naive_logits(cfg, sd, seq), dim=-1)
        lls = [float(lp[t, ord(seq[t + 1])]) for t in range(len(seq) - 1)]
        text = seq
        for _ in range(12):
            last = naive_logits(cfg, sd, text)[-1]
            text += max("ACGT", key=lambda b: float(last[ord(b)]))
        out.append({"log_likelihoods": lls, "greedy": text[len(seq):]})
    return out


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder")
    ap.add_argument("sequences", nargs="*")
    ap.add_argument("--reference", action="store_true")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--variant", choices=["evo2", "alt"], default="evo2", help="evo2: Evo 2's conventions; alt: the other ones")
    args = ap.parse_intermixed_args(argv)
    torch.set_num_threads(1)
    if args.reference:
        json.dump(reference(args.folder, args.sequences), sys.stdout)
        sys.stdout.write("\n")
        return 0
    make(args.folder, args.seed, CONFIG if args.variant == "evo2" else ALT)
    print(json.dumps({"folder": os.path.abspath(args.folder)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
