"""DNABERT-2 ("MosaicBERT" variant) in plain PyTorch, and loading of its checkpoints.

Architecture, as in the authors' `bert_layers.py` (HF repo zhihan1996/DNABERT-2-117M; the
same file is vendored in several public repositories):

* embeddings: word_embeddings + token_type_embeddings (type 0), LayerNorm; no position
  embeddings (ALiBi instead); dropout is inactive at inference;
* each layer (post-LN):
    qkv = Wqkv(x), split as (3, heads, head_dim);
    scores = q k^T / sqrt(head_dim) + alibi + mask, alibi[h, i, j] = -slope_h * |i - j|,
    mask = -10000 on padded keys;
    x = attention.output.LayerNorm(attention.output.dense(softmax(scores) v) + x)
    h = mlp.gated_layers(x) (no bias), gated = h[:, :I], non_gated = h[:, I:]
    x = mlp.layernorm(mlp.wo(gelu(gated) * non_gated) + x)      (exact erf GELU)
* pooler: tanh(dense(x[:, 0])) - only in sequence-classification checkpoints;
* classifier: Linear(hidden, num_labels) on the pooled output (BertForSequenceClassification).

State-dict keys (BertForMaskedLM / BertForSequenceClassification checkpoints):
  bert.embeddings.{word_embeddings,token_type_embeddings}.weight, bert.embeddings.LayerNorm.{weight,bias}
  bert.encoder.layer.N.attention.self.Wqkv.{weight,bias}
  bert.encoder.layer.N.attention.output.dense.{weight,bias}, ...attention.output.LayerNorm.{weight,bias}
  bert.encoder.layer.N.mlp.gated_layers.weight, ...mlp.wo.{weight,bias}, ...mlp.layernorm.{weight,bias}
  bert.pooler.dense.{weight,bias} (classification only), classifier.{weight,bias} (classification only)
  cls.predictions.* (masked-LM head of the pre-trained checkpoint: not used here, ignored)
A bare BertModel checkpoint (keys without "bert.") and a composer "model." prefix are accepted.
"""
from __future__ import annotations

import json
import math
import os
import struct
import sys
from typing import Dict, List, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F


class CheckpointError(Exception):
    pass


# --- config ------------------------------------------------------------------------------
class DnaBert2Config:
    def __init__(self, raw: dict):
        def need(key):
            if key not in raw:
                raise CheckpointError("config.json has no %r" % key)
            return raw[key]
        self.raw = raw
        self.vocab_size = int(need("vocab_size"))
        self.hidden_size = int(need("hidden_size"))
        self.num_hidden_layers = int(need("num_hidden_layers"))
        self.num_attention_heads = int(need("num_attention_heads"))
        self.intermediate_size = int(need("intermediate_size"))
        self.layer_norm_eps = float(raw.get("layer_norm_eps", 1e-12))
        self.type_vocab_size = int(raw.get("type_vocab_size", 2))
        self.max_position_embeddings = int(raw.get("max_position_embeddings", 512))
        self.alibi_starting_size = int(raw.get("alibi_starting_size", 512))
        id2label = raw.get("id2label") or {}
        self.id2label: Dict[int, str] = {int(k): str(v) for k, v in id2label.items()}
        if self.hidden_size % self.num_attention_heads:
            raise CheckpointError("hidden_size %d is not a multiple of num_attention_heads %d"
                                  % (self.hidden_size, self.num_attention_heads))

    @classmethod
    def from_file(cls, path: str) -> "DnaBert2Config":
        with open(path, "r", encoding="utf-8") as fh:
            return cls(json.load(fh))


# --- ALiBi -------------------------------------------------------------------------------
def alibi_head_slopes(n_heads: int) -> List[float]:
    """The slopes of bert_layers.py's rebuild_alibi_tensor (Press et al.), also for head
    counts that are not a power of two (DNABERT-2 has 12)."""
    def power_of_2(n: int) -> List[float]:
        start = 2 ** (-2 ** -(math.log2(n) - 3))
        return [start * start ** i for i in range(n)]

    if math.log2(n_heads).is_integer():
        return power_of_2(n_heads)
    closest = 2 ** math.floor(math.log2(n_heads))
    return power_of_2(closest) + alibi_head_slopes(2 * closest)[0::2][:n_heads - closest]


def alibi_bias(n_heads: int, size: int, device=None) -> torch.Tensor:
    pos = torch.arange(size, device=device)
    relative = (pos[None, :] - pos[:, None]).abs().to(torch.float32)  # [size, size]
    slopes = torch.tensor(alibi_head_slopes(n_heads), dtype=torch.float32, device=device)
    return (slopes[:, None, None] * -relative[None]).unsqueeze(0)  # [1, heads, size, size]


# --- modules (names mirror the checkpoint keys) ------------------------------------------
class _Embeddings(nn.Module):
    def __init__(self, c: DnaBert2Config):
        super().__init__()
        self.word_embeddings = nn.Embedding(c.vocab_size, c.hidden_size)
        self.token_type_embeddings = nn.Embedding(c.type_vocab_size, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)

    def forward(self, input_ids):
        types = torch.zeros_like(input_ids)
        return self.LayerNorm(self.word_embeddings(input_ids) + self.token_type_embeddings(types))


class _SelfAttention(nn.Module):
    def __init__(self, c: DnaBert2Config):
        super().__init__()
        self.Wqkv = nn.Linear(c.hidden_size, 3 * c.hidden_size)


class _SelfOutput(nn.Module):
    def __init__(self, c: DnaBert2Config):
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.hidden_size)
        self.LayerNorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)


class _Attention(nn.Module):
    def __init__(self, c: DnaBert2Config):
        super().__init__()
        self.self = _SelfAttention(c)
        self.output = _SelfOutput(c)


class _GatedMLP(nn.Module):
    def __init__(self, c: DnaBert2Config):
        super().__init__()
        self.gated_layers = nn.Linear(c.hidden_size, 2 * c.intermediate_size, bias=False)
        self.wo = nn.Linear(c.intermediate_size, c.hidden_size)
        self.layernorm = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)


class _Layer(nn.Module):
    def __init__(self, c: DnaBert2Config):
        super().__init__()
        self.attention = _Attention(c)
        self.mlp = _GatedMLP(c)


class _Encoder(nn.Module):
    def __init__(self, c: DnaBert2Config):
        super().__init__()
        self.layer = nn.ModuleList([_Layer(c) for _ in range(c.num_hidden_layers)])


class _Pooler(nn.Module):
    def __init__(self, c: DnaBert2Config):
        super().__init__()
        self.dense = nn.Linear(c.hidden_size, c.hidden_size)


class _Bert(nn.Module):
    def __init__(self, c: DnaBert2Config, pooler: bool):
        super().__init__()
        self.embeddings = _Embeddings(c)
        self.encoder = _Encoder(c)
        self.pooler = _Pooler(c) if pooler else None


class DnaBert2(nn.Module):
    def __init__(self, config: DnaBert2Config, pooler: bool = False, num_labels: int = 0):
        super().__init__()
        self.config = config
        self.bert = _Bert(config, pooler)
        self.classifier = nn.Linear(config.hidden_size, num_labels) if num_labels else None
        self.heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Last hidden state [batch, seq, hidden]; attention_mask is 1 for real tokens."""
        b, s = input_ids.shape
        h, d = self.heads, self.head_dim
        x = self.bert.embeddings(input_ids)
        pad = (1.0 - attention_mask.to(x.dtype))[:, None, None, :] * -10000.0  # [b, 1, 1, s]
        bias = alibi_bias(h, s, x.device).to(x.dtype) + pad  # [b, h, s, s]
        scale = 1.0 / math.sqrt(d)
        inter = self.config.intermediate_size
        for layer in self.bert.encoder.layer:
            qkv = layer.attention.self.Wqkv(x).view(b, s, 3, h, d)
            q = qkv[:, :, 0].permute(0, 2, 1, 3)
            k = qkv[:, :, 1].permute(0, 2, 3, 1)
            v = qkv[:, :, 2].permute(0, 2, 1, 3)
            probs = torch.softmax(torch.matmul(q, k) * scale + bias, dim=-1)
            attn = torch.matmul(probs, v).permute(0, 2, 1, 3).reshape(b, s, h * d)
            out = layer.attention.output
            x = out.LayerNorm(out.dense(attn) + x)
            mlp = layer.mlp
            g = mlp.gated_layers(x)
            x = mlp.layernorm(mlp.wo(F.gelu(g[..., :inter]) * g[..., inter:]) + x)
        return x

    def classify(self, hidden: torch.Tensor) -> torch.Tensor:
        """Logits [batch, num_labels] from the [CLS] position, as BertForSequenceClassification."""
        if self.classifier is None or self.bert.pooler is None:
            raise CheckpointError("this checkpoint has no classification head")
        pooled = torch.tanh(self.bert.pooler.dense(hidden[:, 0]))
        return self.classifier(pooled)


# --- weights files -----------------------------------------------------------------------
_ST_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8,
    "U8": torch.uint8, "BOOL": torch.bool,
}


def read_safetensors(path: str) -> Dict[str, torch.Tensor]:
    """The safetensors format: u64 little-endian header size N, N bytes of JSON
    {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}, then the raw
    little-endian tensor bytes, offsets relative to the end of the header."""
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
        dtype = _ST_DTYPES.get(info.get("dtype"))
        if dtype is None:
            raise CheckpointError("%s: tensor %s has unsupported dtype %r" % (path, name, info.get("dtype")))
        shape = [int(x) for x in info.get("shape", [])]
        begin, end = (int(x) for x in info.get("data_offsets", [0, 0]))
        numel = 1
        for x in shape:
            numel *= x
        itemsize = torch.tensor([], dtype=dtype).element_size()
        if not (0 <= begin <= end <= len(data)) or end - begin != numel * itemsize:
            raise CheckpointError("%s: tensor %s has bad data_offsets %r for shape %r"
                                  % (path, name, [begin, end], shape))
        if numel == 0:
            t = torch.empty(shape, dtype=dtype)
        elif begin % itemsize:
            t = torch.frombuffer(bytearray(data[begin:end]), dtype=dtype).reshape(shape)
        else:
            t = torch.frombuffer(data, dtype=dtype, count=numel, offset=begin).reshape(shape)
        out[name] = t
    return out


def read_torch_bin(path: str) -> Dict[str, torch.Tensor]:
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except TypeError:  # torch < 1.13 has no weights_only
        obj = torch.load(path, map_location="cpu")
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        raise CheckpointError("%s does not hold a state dict" % path)
    return obj


def normalise_keys(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    out: Dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.startswith("model."):  # composer wrapper
            key = key[len("model."):]
        if key.startswith("module."):  # DataParallel
            key = key[len("module."):]
        if key.startswith(("embeddings.", "encoder.", "pooler.")):  # bare BertModel
            key = "bert." + key
        out[key] = value
    return out


_IGNORED_PREFIXES = ("cls.",)  # masked-LM head
_IGNORED_KEYS = ("bert.embeddings.position_ids", "bert.embeddings.token_type_ids")


def warn(text: str) -> None:
    print("[dnabert2] " + text, file=sys.stderr, flush=True)


def build_model(config: DnaBert2Config, state: Dict[str, torch.Tensor]) -> "DnaBert2":
    state = normalise_keys(state)
    has_pooler = "bert.pooler.dense.weight" in state
    num_labels = 0
    if "classifier.weight" in state:
        num_labels = int(state["classifier.weight"].shape[0])
        if not has_pooler:
            raise CheckpointError("checkpoint has classifier.weight but no bert.pooler.dense.weight")
    model = DnaBert2(config, pooler=has_pooler, num_labels=num_labels)
    wanted = model.state_dict()
    missing = [k for k in wanted if k not in state]
    if missing:
        raise CheckpointError("checkpoint is missing %d DNABERT-2 tensors, e.g. %s"
                              % (len(missing), ", ".join(missing[:5])))
    ignored = [k for k in state if k not in wanted]
    if any("position_embeddings" in k for k in ignored):
        raise CheckpointError("checkpoint has absolute position embeddings: it is a classic BERT, "
                              "not DNABERT-2 (which uses ALiBi)")
    unexpected = [k for k in ignored if not k.startswith(_IGNORED_PREFIXES) and k not in _IGNORED_KEYS]
    if unexpected:
        warn("ignoring %d checkpoint tensors this architecture does not use, e.g. %s"
             % (len(unexpected), ", ".join(unexpected[:5])))
    for k, v in wanted.items():
        if tuple(state[k].shape) != tuple(v.shape):
            raise CheckpointError("tensor %s has shape %s, config.json implies %s"
                                  % (k, tuple(state[k].shape), tuple(v.shape)))
    model.load_state_dict({k: state[k].to(torch.float32) for k in wanted}, strict=True)
    model.eval()
    return model


def load_checkpoint(folder: str, config: DnaBert2Config) -> Tuple[DnaBert2, str]:
    """model.safetensors when present, else pytorch_model.bin."""
    st = os.path.join(folder, "model.safetensors")
    bn = os.path.join(folder, "pytorch_model.bin")
    if os.path.isfile(st):
        return build_model(config, read_safetensors(st)), st
    if os.path.isfile(bn):
        return build_model(config, read_torch_bin(bn)), bn
    raise CheckpointError("no model.safetensors or pytorch_model.bin in %s" % folder)
