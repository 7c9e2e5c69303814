"""Evo 2 (Arc Institute; StripedHyena 2) in plain PyTorch, after the `vortex` inference code
(github.com/Zymrael/vortex: vortex/model/model.py, engine.py, layers.py, utils.py), and loading of
its checkpoints with vortex's state-dict key names.

Model, per vortex (eval, stateless forward, no padding):
  x = embedding_layer(ids)                                       byte-level tokens, vocab 512
  per block i (type from the config's *_layer_idxs):
    hyena (hcs | hcm | hcl), ParallelGatedConvBlock:
      z = projections(pre_norm(x))                                  [L, 3D]
      z = causal depthwise conv1d(z, filter.short_filter_weight) (+ short_filter_bias)
      z = interleave(z) if config.interleave                        channels 0::3, 1::3, 2::3
      x2, x1, v = column_split(z) if column_split_hyena else z.split(D)
      u = x1 * v
      hcs: y = conv1d(u, h) (F.conv1d orientation: h[-1] on the current step), h = filter.h repeated per group
      hcm: y = fftconv(u, h) + u * filter.D (FFT orientation: h[0] on the current step)
      hcl: y = fftconv(u, h) + u * filter.D with h[d, t] = sum_s residues[d, s] exp(log_poles[d, s] t)
      y = x2 * y
      x = x + out_filter_dense(y);  x = x + mlp(post_norm(x))
    attention, AttentionBlock:
      x = x + inner_mha_cls(pre_norm(x))   causal MHA, rotary (non-interleaved halves) on q and k
      x = x + mlp(post_norm(x))
  logits = norm(x) @ embedding_layer.weight^T                     (tie_embeddings)
RMSNorm: scale * x / (||x||_2 / sqrt(D) + eps). MLP: l3(act(l1 x) * l2 x), no biases; act = gelu in
block 0 and identity after it when evo2_style_activations (Evo 2 checkpoints), else gelu everywhere.
Wqkv rows are stored per head as [head, (q, k, v), head_dim]; vortex's custom_load_state_dict
reorders them to [(q, k, v), head, head_dim] when column_split (the default), and so does this loader.

Runs in float32 on the CPU. The original runs in bfloat16 (poles and residues in float32) and, for
the checkpoints that use it, FP8 input projections (Transformer Engine); see MODEL_CARD.md.
"""
from __future__ import annotations

import glob
import json
import math
import os
from typing import Dict, List, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F


class CheckpointError(Exception):
    pass


class Evo2Config:
    def __init__(self, raw: dict):
        def need(key):
            if key not in raw:
                raise CheckpointError("config has no %r" % key)
            return raw[key]
        self.raw = raw
        self.vocab_size = int(need("vocab_size"))
        self.hidden_size = int(need("hidden_size"))
        self.num_layers = int(need("num_layers"))
        self.num_attention_heads = int(need("num_attention_heads"))
        self.attn_layer_idxs = [int(i) for i in raw.get("attn_layer_idxs") or []]
        self.hcl_layer_idxs = [int(i) for i in raw.get("hcl_layer_idxs") or []]
        self.hcm_layer_idxs = [int(i) for i in raw.get("hcm_layer_idxs") or []]
        self.hcs_layer_idxs = [int(i) for i in raw.get("hcs_layer_idxs") or []]
        self.hcm_filter_length = int(raw.get("hcm_filter_length", 128))
        self.hcs_filter_length = int(raw.get("hcs_filter_length", 7))
        self.hcm_filter_groups = int(raw.get("hcm_filter_groups", self.hidden_size))
        self.hcs_filter_groups = int(raw.get("hcs_filter_groups", self.hidden_size))
        self.short_filter_length = int(raw.get("short_filter_length", 3))
        self.short_filter_bias = bool(raw.get("short_filter_bias", False))
        self.state_size = int(raw.get("state_size", 16))
        self.eps = float(raw.get("eps", 1e-6))
        self.proj_groups = int(raw.get("proj_groups", 1))
        self.column_split_hyena = bool(raw.get("column_split_hyena", True))
        self.column_split = bool(raw.get("column_split", True))
        self.interleave = bool(raw.get("interleave", False))
        self.hyena_flip_x1x2 = bool(raw.get("hyena_flip_x1x2", False))
        self.evo2_style_activations = bool(raw.get("evo2_style_activations", False))
        self.mlp_activation = str(raw.get("mlp_activation", "gelu"))
        self.tie_embeddings = bool(raw.get("tie_embeddings", True))
        self.final_norm = bool(raw.get("final_norm", True))
        # vortex reads these with config.get(key, default) in the attention block but as plain
        # attributes (None, so no bias, when absent) in the hyena block; Evo 2 configs set them all
        self.qkv_proj_bias = bool(raw.get("qkv_proj_bias", True))
        self.hyena_qkv_proj_bias = bool(raw.get("qkv_proj_bias", False))
        self.mha_out_proj_bias = bool(raw.get("mha_out_proj_bias", True))
        self.hyena_out_proj_bias = bool(raw.get("hyena_out_proj_bias", False))
        self.rotary_emb_base = float(raw.get("rotary_emb_base", 1000000))
        self.rotary_scaling = float(raw.get("rotary_emb_scaling_factor", 1.0)) if raw.get("use_interpolated_rotary_pos_emb") else 1.0
        self.max_seqlen = int(raw.get("max_seqlen", 8192))
        multiple = int(raw.get("inner_size_multiple_of", 64)) * int(raw.get("model_parallel_size", 1))
        inner = int(2 * self.hidden_size * 4 / 3)
        inner = multiple * ((inner + multiple - 1) // multiple)
        self.inner_mlp_size = int(raw.get("inner_mlp_size", inner))
        if self.mlp_activation not in ("gelu", "silu"):
            raise CheckpointError("mlp_activation %r is not supported (gelu or silu)" % self.mlp_activation)
        if self.hidden_size % self.num_attention_heads:
            raise CheckpointError("hidden_size %d is not a multiple of num_attention_heads %d" % (self.hidden_size, self.num_attention_heads))
        if self.proj_groups != 1:
            raise CheckpointError("proj_groups %d (grouped-query attention) is not supported" % self.proj_groups)
        layout = self.attn_layer_idxs + self.hcl_layer_idxs + self.hcm_layer_idxs + self.hcs_layer_idxs
        if sorted(layout) != list(range(self.num_layers)):
            raise CheckpointError("attn/hcl/hcm/hcs_layer_idxs must cover blocks 0-%d once each (got %s)"
                                  % (self.num_layers - 1, sorted(layout)))
        for name in ("use_fp8_input_projections",):
            if raw.get(name):
                self.fp8 = True
                break
        else:
            self.fp8 = False
        if not self.tie_embeddings:
            raise CheckpointError("tie_embeddings false (a separate unembedding) is not supported")

    def block_type(self, i: int) -> str:
        if i in self.attn_layer_idxs:
            return "attn"
        if i in self.hcl_layer_idxs:
            return "hcl"
        if i in self.hcm_layer_idxs:
            return "hcm"
        return "hcs"

    @classmethod
    def from_file(cls, path: str) -> "Evo2Config":
        with open(path, "r", encoding="utf-8") as fh:
            if path.endswith((".yml", ".yaml")):
                import yaml  # python3-yaml
                raw = yaml.safe_load(fh)
            else:
                raw = json.load(fh)
        if not isinstance(raw, dict):
            raise CheckpointError("%s is not a mapping" % path)
        return cls(raw)


# --- modules (attribute names mirror vortex's state-dict keys) ----------------------------------
class RMSNorm(nn.Module):
    def __init__(self, c: Evo2Config):
        super().__init__()
        self.eps, self.hidden_size = c.eps, c.hidden_size
        self.scale = nn.Parameter(torch.ones(c.hidden_size))

    def forward(self, x):
        return self.scale * (x / (x.norm(2, dim=-1, keepdim=True) * self.hidden_size ** -0.5 + self.eps))


class GatedMLP(nn.Module):
    def __init__(self, c: Evo2Config, layer_idx: int):
        super().__init__()
        self.l1 = nn.Linear(c.hidden_size, c.inner_mlp_size, bias=False)
        self.l2 = nn.Linear(c.hidden_size, c.inner_mlp_size, bias=False)
        self.l3 = nn.Linear(c.inner_mlp_size, c.hidden_size, bias=False)
        act = F.gelu if c.mlp_activation == "gelu" else F.silu
        self.act = (lambda z: z) if (layer_idx > 0 and c.evo2_style_activations) else act

    def forward(self, z):
        return self.l3(self.act(self.l1(z)) * self.l2(z))


class Rotary(nn.Module):
    def __init__(self, c: Evo2Config, dim: int):
        super().__init__()
        self.register_buffer("inv_freq", 1.0 / (c.rotary_emb_base ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim)))
        self.scaling = c.rotary_scaling

    def apply(self, x):  # x: [B, L, H, d]
        n = x.shape[1]
        t = torch.arange(n, dtype=torch.float32) / self.scaling
        freqs = torch.outer(t, self.inv_freq.to(torch.float32))
        cos, sin = freqs.cos()[None, :, None, :], freqs.sin()[None, :, None, :]
        half = x.shape[-1] // 2
        x1, x2 = x[..., :half], x[..., half:]
        return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


class MHA(nn.Module):
    def __init__(self, c: Evo2Config):
        super().__init__()
        self.heads = c.num_attention_heads
        self.head_dim = c.hidden_size // c.num_attention_heads
        self.Wqkv = nn.Linear(c.hidden_size, 3 * c.hidden_size, bias=c.qkv_proj_bias)
        self.out_proj = nn.Linear(c.hidden_size, c.hidden_size, bias=c.mha_out_proj_bias)
        self.rotary_emb = Rotary(c, self.head_dim)

    def forward(self, x):
        b, n, _ = x.shape
        qkv = self.Wqkv(x).view(b, n, 3, self.heads, self.head_dim)
        q, k, v = self.rotary_emb.apply(qkv[:, :, 0]), self.rotary_emb.apply(qkv[:, :, 1]), qkv[:, :, 2]
        q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim)
        causal = torch.ones(n, n, dtype=torch.bool).triu(1)
        scores = scores.masked_fill(causal, float("-inf"))
        a = torch.matmul(torch.softmax(scores, dim=-1), v).transpose(1, 2).reshape(b, n, -1)
        return self.out_proj(a)


class AttentionBlock(nn.Module):
    def __init__(self, c: Evo2Config, layer_idx: int):
        super().__init__()
        self.pre_norm, self.post_norm = RMSNorm(c), RMSNorm(c)
        self.inner_mha_cls = MHA(c)
        self.mlp = GatedMLP(c, layer_idx)

    def forward(self, x):
        x = x + self.inner_mha_cls(self.pre_norm(x))
        return x + self.mlp(self.post_norm(x))


class HyenaCascade(nn.Module):
    def __init__(self, c: Evo2Config, kind: str):
        super().__init__()
        self.c, self.kind = c, kind
        d = c.hidden_size
        self.short_filter_weight = nn.Parameter(torch.zeros(3 * d, 1, c.short_filter_length))
        if c.short_filter_bias:
            self.short_filter_bias = nn.Parameter(torch.zeros(3 * d))
        else:
            self.short_filter_bias = None
        if kind == "hcl":
            self.log_poles = nn.Parameter(torch.zeros(d, c.state_size, 1))
            self.residues = nn.Parameter(torch.zeros(d, c.state_size))
            self.D = nn.Parameter(torch.zeros(d))
        else:
            groups = c.hcm_filter_groups if kind == "hcm" else c.hcs_filter_groups
            length = c.hcm_filter_length if kind == "hcm" else c.hcs_filter_length
            if d % groups:
                raise CheckpointError("hidden_size %d is not a multiple of %s_filter_groups %d" % (d, kind, groups))
            self.groups, self.length = groups, length
            self.h = nn.Parameter(torch.zeros(groups, 1, length))
            # vortex: a D (skip) term only for inner filters of length >= 128
            self.D = nn.Parameter(torch.zeros(d)) if length >= 128 else None

    def split(self, z):  # z: [B, 3D, L]
        c = self.c
        if c.interleave:
            z = torch.cat([z[:, 0::3], z[:, 1::3], z[:, 2::3]], dim=1)
        if c.column_split_hyena:
            b, _, n = z.shape
            hd = c.hidden_size // c.num_attention_heads
            zz = z.reshape(b, c.num_attention_heads, 3 * hd, n)
            x2, x1, v = (zz[:, :, i * hd:(i + 1) * hd].reshape(b, -1, n) for i in range(3))
        else:
            x2, x1, v = z.split(c.hidden_size, dim=1)
        if c.hyena_flip_x1x2:
            x1, x2 = x2, x1
        return x2, x1, v

    @staticmethod
    def fftconv(u, h):
        """y[t] = sum_{j <= t} h[j] u[t - j] (vortex's fftconv_func / parallel_iir, zero-padded FFT)."""
        n = u.shape[-1]
        size = 2 * n
        hf = torch.fft.rfft(h[..., :n].to(torch.float32), n=size) / size
        uf = torch.fft.rfft(u.to(torch.float32), n=size)
        return torch.fft.irfft(uf * hf, n=size, norm="forward")[..., :n]

    def long_filter(self, n):
        t = torch.arange(n, dtype=torch.float32)[None, None]
        return (self.residues.float()[..., None] * (self.log_poles.float() * t).exp()).sum(1)  # [D, n]

    def forward(self, u):  # u: [B, L, 3D] -> [B, L, D]
        n = u.shape[1]
        z = F.conv1d(u.transpose(1, 2), self.short_filter_weight, bias=None, padding=self.c.short_filter_length - 1,
                     groups=u.shape[-1])[..., :n]
        if self.short_filter_bias is not None:
            z = z + self.short_filter_bias[None, :, None]
        x2, x1, v = self.split(z)
        xv = x1 * v
        if self.kind == "hcl":
            y = self.fftconv(xv, self.long_filter(n)[None]) + xv * self.D[None, :, None]
        else:
            h = self.h.repeat_interleave(self.c.hidden_size // self.groups, 0)  # [D, 1, len]
            if self.length >= 128:
                y = self.fftconv(xv, h[:, 0][None]) + xv * self.D[None, :, None]
            else:
                y = F.conv1d(xv, h, padding=self.length - 1, groups=xv.shape[1])[..., :n]
        return (x2 * y).transpose(1, 2)


class ConvBlock(nn.Module):
    def __init__(self, c: Evo2Config, layer_idx: int, kind: str):
        super().__init__()
        self.pre_norm, self.post_norm = RMSNorm(c), RMSNorm(c)
        self.filter = HyenaCascade(c, kind)
        self.projections = nn.Linear(c.hidden_size, 3 * c.hidden_size, bias=c.hyena_qkv_proj_bias)
        self.out_filter_dense = nn.Linear(c.hidden_size, c.hidden_size, bias=c.hyena_out_proj_bias)
        self.mlp = GatedMLP(c, layer_idx)

    def forward(self, x):
        x = x + self.out_filter_dense(self.filter(self.projections(self.pre_norm(x))))
        return x + self.mlp(self.post_norm(x))


class StripedHyena(nn.Module):
    def __init__(self, config: Evo2Config):
        super().__init__()
        self.config = config
        self.embedding_layer = nn.Embedding(config.vocab_size, config.hidden_size)
        blocks = []
        for i in range(config.num_layers):
            kind = config.block_type(i)
            blocks.append(AttentionBlock(config, i) if kind == "attn" else ConvBlock(config, i, kind))
        self.blocks = nn.ModuleList(blocks)
        self.norm = RMSNorm(config) if config.final_norm else None

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Logits [B, L, vocab] for token ids [B, L] (no padding)."""
        x = self.embedding_layer(ids)
        for block in self.blocks:
            x = block(x)
        if self.norm is not None:
            x = self.norm(x)
        return x @ self.embedding_layer.weight.T


# --- checkpoint ----------------------------------------------------------------------------
def column_split_wqkv(w: torch.Tensor, heads: int, head_dim: int) -> torch.Tensor:
    """vortex custom_load_state_dict: rows [head, (q, k, v), d] -> [(q, k, v), head, d]."""
    rest = w.shape[1:]
    return w.reshape(heads, 3, head_dim, *rest).transpose(0, 1).reshape(3 * heads * head_dim, *rest)


def find_files(folder: str, config_name: str = "", weights_name: str = "") -> Tuple[str, str]:
    """The config (config.json, or one *.yml / *.yaml) and the weights (one *.pt) in folder."""
    def pick(name, patterns, what):
        if name:
            path = os.path.join(folder, name)
            if not os.path.isfile(path):
                raise CheckpointError("%s %s not found in %s" % (what, name, folder))
            return path
        found = sorted({p for pat in patterns for p in glob.glob(os.path.join(folder, pat))})
        if len(found) != 1:
            raise CheckpointError("expected one %s (%s) in %s, found %s" % (what, " or ".join(patterns), folder,
                                                                         [os.path.basename(p) for p in found] or "none"))
        return found[0]
    config = os.path.join(folder, "config.json")
    if config_name or not os.path.isfile(config):
        config = pick(config_name, ["*.yml", "*.yaml"], "config")
    return config, pick(weights_name, ["*.pt"], "checkpoint")


def read_checkpoint(path: str, allow_pickle: bool) -> Dict[str, torch.Tensor]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # FP8 checkpoints keep Transformer Engine metadata (io.BytesIO) in *_extra_state
        if not allow_pickle:
            raise CheckpointError("%s cannot be read with torch.load(weights_only=True) (%s); if you trust this file, "
                                  "set EVO2_TRUSTED_PICKLE=1 to unpickle it fully" % (path, str(exc).splitlines()[0][:200]))
        obj = torch.load(path, map_location="cpu")
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise CheckpointError("%s does not hold a state dict" % path)
    return obj


def build_model(config: Evo2Config, state: Dict[str, torch.Tensor]) -> StripedHyena:
    state = {k: v for k, v in state.items() if not k.endswith("._extra_state") and torch.is_tensor(v)}
    model = StripedHyena(config)
    wanted = model.state_dict()
    if "unembed.weight" in state:
        raise CheckpointError("checkpoint has unembed.weight (untied unembedding): not supported")
    missing = [k for k in wanted if k not in state and not k.endswith("rotary_emb.inv_freq")]
    if missing:
        raise CheckpointError("checkpoint is missing %d tensors, e.g. %s" % (len(missing), ", ".join(missing[:5])))
    unexpected = [k for k in state if k not in wanted]
    if unexpected:
        raise CheckpointError("checkpoint has %d tensors this architecture does not have, e.g. %s"
                              % (len(unexpected), ", ".join(unexpected[:5])))
    load = {}
    for k, v in wanted.items():
        t = state.get(k, v)
        if tuple(t.shape) != tuple(v.shape):
            raise CheckpointError("tensor %s has shape %s, the config implies %s" % (k, tuple(t.shape), tuple(v.shape)))
        load[k] = t.to(torch.float32)
    if config.column_split:
        hd = config.hidden_size // config.num_attention_heads
        for i in config.attn_layer_idxs:
            for suffix in ("weight", "bias"):
                key = "blocks.%d.inner_mha_cls.Wqkv.%s" % (i, suffix)
                if key in load:
                    load[key] = column_split_wqkv(load[key], config.num_attention_heads, hd)
    model.load_state_dict(load, strict=True)
    model.eval()
    return model


def load_checkpoint(folder: str, config_name: str = "", weights_name: str = "", allow_pickle: bool = False) -> Tuple[StripedHyena, Evo2Config, List[str]]:
    config_file, weights_file = find_files(folder, config_name, weights_name)
    config = Evo2Config.from_file(config_file)
    return build_model(config, read_checkpoint(weights_file, allow_pickle)), config, [config_file, weights_file]
