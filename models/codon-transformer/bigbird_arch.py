"""BigBirdForMaskedLM (Zaheer et al. 2020, as in Hugging Face transformers) in plain PyTorch,
with full ("original_full") attention, and loading of its checkpoints unchanged.

CodonTransformer (Fallahpour et al. 2024, HF adibvafa/CodonTransformer) is a
`transformers.BigBirdForMaskedLM`. Its published inference (CodonPrediction.predict_dna_sequence)
runs it with attention_type="original_full" by default, which is what this module computes.
Block-sparse attention is NOT implemented (see MODEL_CARD.md).

Forward pass (eval mode, dropout inactive), as modeling_big_bird.py:
  x = LayerNorm(word_embeddings(ids) [* sqrt(H) if rescale_embeddings] + token_type_embeddings(tt)
                + position_embeddings(0..n-1))
  per layer (post-LN BERT layer):
    q, k, v = query(x), key(x), value(x)           split into heads
    a = softmax(q k^T / sqrt(head_dim) + mask) v    mask: large negative on padded keys
    x = attention.output.LayerNorm(attention.output.dense(a) + x)
    x = output.LayerNorm(output.dense(act(intermediate.dense(x))) + x)
  logits = cls.predictions.decoder(LayerNorm(act(transform.dense(x)))) + cls.predictions.bias
act = config.hidden_act (BigBirdConfig's default, and CodonTransformer's, is "gelu_new": the tanh
approximation). The pooler (bert.pooler, tanh) exists in the checkpoint but plays no part in the
masked-LM logits.

State-dict keys (BigBirdForMaskedLM):
  bert.embeddings.{word,position,token_type}_embeddings.weight, bert.embeddings.LayerNorm.{weight,bias}
  bert.encoder.layer.N.attention.self.{query,key,value}.{weight,bias}
  bert.encoder.layer.N.attention.output.dense.{weight,bias}, ...attention.output.LayerNorm.{weight,bias}
  bert.encoder.layer.N.intermediate.dense.{weight,bias}, ...output.dense.{weight,bias}, ...output.LayerNorm.{weight,bias}
  bert.pooler.{weight,bias}
  cls.predictions.transform.dense.{weight,bias}, cls.predictions.transform.LayerNorm.{weight,bias}
  cls.predictions.bias, cls.predictions.decoder.{weight,bias}
cls.predictions.decoder.weight is tied to the word embeddings and decoder.bias to cls.predictions.bias:
model.safetensors written by transformers stores one tensor of each tied pair, pytorch_model.bin both.
"""
from __future__ import annotations

import json
import math
import os
import struct
from typing import Dict, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F


class CheckpointError(Exception):
    pass


ACTIVATIONS = {
    "gelu": lambda x: F.gelu(x),
    "gelu_new": lambda x: 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0)))),
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_fast": lambda x: 0.5 * x * (1.0 + torch.tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x))),
    "relu": F.relu,
}


class BigBirdConfig:
    def __init__(self, raw: dict):
        def need(key):
            if key not in raw:
                raise CheckpointError("config.json has no %r" % key)
            return raw[key]
        self.raw = raw
        self.vocab_size = int(need("vocab_size"))
        self.type_vocab_size = int(need("type_vocab_size"))
        # BigBirdConfig defaults for the rest (transformers' configuration_big_bird.py)
        self.hidden_size = int(raw.get("hidden_size", 768))
        self.num_hidden_layers = int(raw.get("num_hidden_layers", 12))
        self.num_attention_heads = int(raw.get("num_attention_heads", 12))
        self.intermediate_size = int(raw.get("intermediate_size", 3072))
        self.max_position_embeddings = int(raw.get("max_position_embeddings", 4096))
        self.layer_norm_eps = float(raw.get("layer_norm_eps", 1e-12))
        self.hidden_act = str(raw.get("hidden_act", "gelu_new"))
        self.use_bias = bool(raw.get("use_bias", True))
        self.rescale_embeddings = bool(raw.get("rescale_embeddings", False))
        self.attention_type = str(raw.get("attention_type", "block_sparse"))
        self.block_size = int(raw.get("block_size", 64))
        self.num_random_blocks = int(raw.get("num_random_blocks", 3))
        self.pad_token_id = int(raw.get("pad_token_id", 0))
        if raw.get("position_embedding_type", "absolute") != "absolute":
            raise CheckpointError("position_embedding_type %r is not supported (only absolute)"
                                  % raw.get("position_embedding_type"))
        if raw.get("is_decoder"):
            raise CheckpointError("config.json says is_decoder: a masked-LM encoder is expected")
        if self.hidden_act not in ACTIVATIONS:
            raise CheckpointError("hidden_act %r is not supported (one of %s)"
                                  % (self.hidden_act, ", ".join(sorted(ACTIVATIONS))))
        if self.hidden_size % self.num_attention_heads:
            raise CheckpointError("hidden_size %d is not a multiple of num_attention_heads %d"
                                  % (self.hidden_size, self.num_attention_heads))

    @property
    def full_attention_max_tokens(self) -> int:
        """Up to this many tokens transformers' BigBirdModel itself switches block_sparse to
        original_full: (5 + 2 * num_random_blocks) * block_size (704 for CodonTransformer)."""
        return (5 + 2 * self.num_random_blocks) * self.block_size

    @classmethod
    def from_file(cls, path: str) -> "BigBirdConfig":
        with open(path, "r", encoding="utf-8") as fh:
            raw = json.load(fh)
        if not isinstance(raw, dict):
            raise CheckpointError("config.json is not an object")
        return cls(raw)


# --- modules (attribute names mirror the checkpoint keys) ---------------------------------
class _Embeddings(nn.Module):
    def __init__(self, c: BigBirdConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(c.vocab_size, c.hidden_size)
        self.position_embeddings = nn.Embedding(c.max_position_embeddings, c.hidden_size)
        self.token_type_embeddings = nn.Embedding(c.type_vocab_size, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)


class _SelfAttention(nn.Module):
    def __init__(self, c: BigBirdConfig):
        super().__init__()
        self.query = nn.Linear(c.hidden_size, c.hidden_size, bias=c.use_bias)
        self.key = nn.Linear(c.hidden_size, c.hidden_size, bias=c.use_bias)
        self.value = nn.Linear(c.hidden_size, c.hidden_size, bias=c.use_bias)


class _DenseNorm(nn.Module):
    def __init__(self, c: BigBirdConfig, inputs: int):
        super().__init__()
        self.dense = nn.Linear(inputs, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)


class _Attention(nn.Module):
    def __init__(self, c: BigBirdConfig):
        super().__init__()
        self.self = _SelfAttention(c)
        self.output = _DenseNorm(c, c.hidden_size)


class _Intermediate(nn.Module):
    def __init__(self, c: BigBirdConfig):
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.intermediate_size)


class _Layer(nn.Module):
    def __init__(self, c: BigBirdConfig):
        super().__init__()
        self.attention = _Attention(c)
        self.intermediate = _Intermediate(c)
        self.output = _DenseNorm(c, c.intermediate_size)


class _Encoder(nn.Module):
    def __init__(self, c: BigBirdConfig):
        super().__init__()
        self.layer = nn.ModuleList([_Layer(c) for _ in range(c.num_hidden_layers)])


class _Bert(nn.Module):
    def __init__(self, c: BigBirdConfig):
        super().__init__()
        self.embeddings = _Embeddings(c)
        self.encoder = _Encoder(c)
        self.pooler = nn.Linear(c.hidden_size, c.hidden_size)


class _Predictions(nn.Module):
    def __init__(self, c: BigBirdConfig):
        super().__init__()
        self.transform = _DenseNorm(c, c.hidden_size)
        self.decoder = nn.Linear(c.hidden_size, c.vocab_size, bias=False)
        self.bias = nn.Parameter(torch.zeros(c.vocab_size))


class _Cls(nn.Module):
    def __init__(self, c: BigBirdConfig):
        super().__init__()
        self.predictions = _Predictions(c)


class BigBirdForMaskedLM(nn.Module):
    def __init__(self, config: BigBirdConfig):
        super().__init__()
        self.config = config
        self.bert = _Bert(config)
        self.cls = _Cls(config)
        self.act = ACTIVATIONS[config.hidden_act]
        self.heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Masked-LM logits [batch, seq, vocab] with full attention; attention_mask is 1 for real tokens."""
        b, s = input_ids.shape
        if s > self.config.max_position_embeddings:
            raise CheckpointError("%d tokens exceed max_position_embeddings %d" % (s, self.config.max_position_embeddings))
        h, d = self.heads, self.head_dim
        emb = self.bert.embeddings
        x = emb.word_embeddings(input_ids)
        if self.config.rescale_embeddings:
            x = x * (self.config.hidden_size ** 0.5)
        positions = torch.arange(s, device=input_ids.device)
        x = emb.LayerNorm(x + emb.token_type_embeddings(token_type_ids) + emb.position_embeddings(positions)[None])
        neg = torch.finfo(x.dtype).min
        mask = (1.0 - attention_mask.to(x.dtype))[:, None, None, :] * neg  # [b, 1, 1, s]
        scale = 1.0 / math.sqrt(d)
        for layer in self.bert.encoder.layer:
            att = layer.attention.self
            q = att.query(x).view(b, s, h, d).transpose(1, 2)
            k = att.key(x).view(b, s, h, d).transpose(1, 2)
            v = att.value(x).view(b, s, h, d).transpose(1, 2)
            probs = torch.softmax(torch.matmul(q, k.transpose(-1, -2)) * scale + mask, dim=-1)
            a = torch.matmul(probs, v).transpose(1, 2).reshape(b, s, h * d)
            out = layer.attention.output
            x = out.LayerNorm(out.dense(a) + x)
            y = self.act(layer.intermediate.dense(x))
            x = layer.output.LayerNorm(layer.output.dense(y) + x)
        p = self.cls.predictions
        t = p.transform.LayerNorm(self.act(p.transform.dense(x)))
        return p.decoder(t) + p.bias


# --- weights files -----------------------------------------------------------------------
_ST_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
    "U8": torch.uint8, "BOOL": torch.bool,
}


def read_safetensors(path: str) -> Dict[str, torch.Tensor]:
    """The safetensors format (the `safetensors` package is not in Debian): u64 little-endian
    header size N, N bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]}}, then the
    raw little-endian tensor bytes, offsets relative to the end of the header."""
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) != 8:
            raise CheckpointError("%s is too short to be a safetensors file" % path)
        (n,) = struct.unpack("<Q", head)
        if n > min(size - 8, 100 * 1024 * 1024):
            raise CheckpointError("%s: bad safetensors header size %d" % (path, n))
        try:
            header = json.loads(fh.read(n).decode("utf-8"))
        except ValueError as exc:
            raise CheckpointError("%s: safetensors header is not JSON (%s)" % (path, exc))
        data = bytearray(fh.read())
    if not isinstance(header, dict):
        raise CheckpointError("%s: safetensors header is not an object" % path)
    out: Dict[str, torch.Tensor] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dtype = _ST_DTYPES.get(info.get("dtype")) if isinstance(info, dict) else None
        if dtype is None:
            raise CheckpointError("%s: tensor %s has an unsupported dtype" % (path, name))
        shape = [int(x) for x in info.get("shape", [])]
        begin, end = (int(x) for x in info.get("data_offsets", [0, 0]))
        numel = 1
        for x in shape:
            numel *= x
        itemsize = torch.tensor([], dtype=dtype).element_size()
        if not (0 <= begin <= end <= len(data)) or end - begin != numel * itemsize:
            raise CheckpointError("%s: tensor %s has bad data_offsets %r for shape %r" % (path, name, [begin, end], shape))
        if numel == 0:
            out[name] = torch.empty(shape, dtype=dtype)
        else:
            out[name] = torch.frombuffer(bytearray(data[begin:end]), dtype=dtype).reshape(shape)
    return out


def read_torch_bin(path: str) -> Dict[str, torch.Tensor]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except TypeError:  # torch < 1.13 has no weights_only
        obj = torch.load(path, map_location="cpu")
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict):
        raise CheckpointError("%s does not hold a state dict" % path)
    return obj


# Buffers some transformers versions save (persistent position_ids) and nothing computes from.
_BUFFER_KEYS = ("bert.embeddings.position_ids", "bert.embeddings.token_type_ids")


def build_model(config: BigBirdConfig, state: Dict[str, torch.Tensor]) -> BigBirdForMaskedLM:
    state = dict(state)
    for k in _BUFFER_KEYS:
        state.pop(k, None)
    # tied pairs: either member may be the one stored
    if "bert.embeddings.word_embeddings.weight" not in state and "cls.predictions.decoder.weight" in state:
        state["bert.embeddings.word_embeddings.weight"] = state["cls.predictions.decoder.weight"]
    if "cls.predictions.decoder.weight" not in state and "bert.embeddings.word_embeddings.weight" in state:
        state["cls.predictions.decoder.weight"] = state["bert.embeddings.word_embeddings.weight"]
    if "cls.predictions.bias" not in state and "cls.predictions.decoder.bias" in state:
        state["cls.predictions.bias"] = state["cls.predictions.decoder.bias"]
    decoder_bias = state.pop("cls.predictions.decoder.bias", None)
    if decoder_bias is not None and "cls.predictions.bias" in state and not torch.equal(decoder_bias, state["cls.predictions.bias"]):
        raise CheckpointError("cls.predictions.decoder.bias differs from cls.predictions.bias (they are one tied tensor)")
    model = BigBirdForMaskedLM(config)
    wanted = model.state_dict()
    missing = [k for k in wanted if k not in state]
    if missing:
        raise CheckpointError("checkpoint is missing %d BigBirdForMaskedLM tensors, e.g. %s" % (len(missing), ", ".join(missing[:5])))
    unexpected = [k for k in state if k not in wanted]
    if unexpected:
        raise CheckpointError("checkpoint has %d tensors BigBirdForMaskedLM does not have, e.g. %s"
                              % (len(unexpected), ", ".join(unexpected[:5])))
    for k, v in wanted.items():
        if tuple(state[k].shape) != tuple(v.shape):
            raise CheckpointError("tensor %s has shape %s, config.json implies %s" % (k, tuple(state[k].shape), tuple(v.shape)))
    model.load_state_dict({k: state[k].to(torch.float32) for k in wanted}, strict=True)
    model.eval()
    return model


def load_checkpoint(folder: str, config: BigBirdConfig) -> Tuple[BigBirdForMaskedLM, str]:
    """model.safetensors when present, else pytorch_model.bin."""
    for name, reader in (("model.safetensors", read_safetensors), ("pytorch_model.bin", read_torch_bin)):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            return build_model(config, reader(path)), path
    raise CheckpointError("no model.safetensors or pytorch_model.bin in %s" % folder)
