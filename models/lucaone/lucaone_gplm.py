"""LucaOne (LucaGPLM v2.0) in plain torch: alphabet, checkpoint discovery and loading, forward.

Written from the public source of LucaOne, not copied from it:
  LucaOne/LucaOne        src/models/lucaone_gplm.py, src/models/modeling_gplm.py,
                         src/models/alphabet.py, src/models/lucaone_gplm_config.py,
                         src/embedding/get_embedding.py, src/utils.py (gene_seq_replace, clean_seq_luca,
                         matrix_2_vector), config/lucaone_gplm.json
  LucaOne/LucaOneApp     algorithms/llm/lucagplm/v2_0/*.py, algorithms/llm/lucagplm/get_embedding.py,
                         algorithms/utils.py (download_trained_checkpoint_lucaone: the on-disk layout)

The weights are kept as a plain dict of tensors under the checkpoint's own key names
(`embed_tokens.weight`, `layers.{i}.self_attn.q_proj.weight`, ...), so the real `pytorch.pth`
is used as it is, without a second copy in a module tree. Only torch and the standard library.
"""
from __future__ import annotations

import json
import math
import os
import pickle
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

try:
    import torch
    import torch.nn.functional as F
    TORCH_IMPORT_ERROR: Optional[BaseException] = None
except ImportError as _exc:  # model.py turns this into an install hint; discovery works without torch
    torch = None  # type: ignore[assignment]
    F = None  # type: ignore[assignment]
    TORCH_IMPORT_ERROR = _exc

# --- alphabet (src/models/alphabet.py) ---------------------------------------------------
GENE_STANDARD_TOKS = ['1', '2', '3', '4', '5', '.', '-', '*']
PROT_STANDARD_TOKS = ['L', 'A', 'G', 'V', 'S', 'E', 'R', 'T', 'I', 'D', 'P', 'K', 'Q', 'N', 'F', 'Y',
                      'M', 'H', 'W', 'C', 'X', 'B', 'U', 'Z', 'O', 'J', '.', '-', '*']
GENE_PROT_STANDARD_TOKS = ['1', '2', '3', '4', '5', 'L', 'A', 'G', 'V', 'S', 'E', 'R', 'T', 'I', 'D',
                           'P', 'K', 'Q', 'N', 'F', 'Y', 'M', 'H', 'W', 'C', 'X', 'B', 'U', 'Z', 'O',
                           'J', '.', '-', '*']
PREPEND_TOKS = ['[PAD]', '[UNK]']
APPEND_TOKS = ['[CLS]', '[SEP]', '[MASK]']
STANDARD_TOKS = {'gene_prot': GENE_PROT_STANDARD_TOKS, 'prot_gene': GENE_PROT_STANDARD_TOKS,
                 'gene': GENE_STANDARD_TOKS, 'prot': PROT_STANDARD_TOKS}

# gene_seq_replace: A->1, T/U->2, C->3, G->4, anything else (N, IUPAC ambiguity codes)->5.
GENE_REPLACE = {'A': '1', 'T': '2', 'U': '2', 'C': '3', 'G': '4'}
# Token type ids of get_embedding.encoder(): 0 for seq_type "gene", 1 otherwise ("prot").
TOKEN_TYPE = {'gene': 0, 'prot': 1}
NUCLEOTIDE_IUPAC = set('ACGTUNRYSWKMBDHV')
NUCLEOTIDE_STRICT = set('ACGTUN')  # utils.seq_type_is_match_seq counts these


class Alphabet:
    """The vocabulary of Alphabet.from_predefined(name): [PAD] [UNK] [CLS] [SEP] [MASK] + standard."""

    def __init__(self, name: str = 'gene_prot'):
        if name.lower() not in STANDARD_TOKS:
            raise ValueError('unsupported LucaOne alphabet %r (known: gene_prot, gene, prot)' % name)
        self.name = name.lower()
        self.all_toks = PREPEND_TOKS + APPEND_TOKS + STANDARD_TOKS[self.name]
        self.tok_to_idx = {t: i for i, t in enumerate(self.all_toks)}
        self.padding_idx = self.tok_to_idx['[PAD]']
        self.unk_idx = self.tok_to_idx['[UNK]']
        self.cls_idx = self.tok_to_idx['[CLS]']
        self.eos_idx = self.tok_to_idx['[SEP]']
        self.mask_idx = self.tok_to_idx['[MASK]']

    def __len__(self) -> int:
        return len(self.all_toks)


def clean_seq(seq: str) -> str:
    """utils.clean_seq_luca: upper-case, keep A-Z only."""
    return ''.join(ch for ch in seq.upper() if 'A' <= ch <= 'Z')


def gene_seq_replace(seq: str) -> str:
    return ''.join(GENE_REPLACE.get(ch, '5') for ch in seq)


def detect_seq_type(seq: str) -> str:
    """'gene' when every letter is an IUPAC nucleotide code and at least 80% are A/C/G/T/U/N
    (the 80% rule is LucaOne's utils.seq_type_is_match_seq); else 'prot'. The 80% rule keeps
    proteins made only of letters that double as ambiguity codes (M, K, R, S, W, ...) as 'prot'."""
    if not seq or any(ch not in NUCLEOTIDE_IUPAC for ch in seq):
        return 'prot'
    strict = sum(1 for ch in seq if ch in NUCLEOTIDE_STRICT)
    return 'gene' if strict >= 0.8 * len(seq) else 'prot'


def encode(alphabet: Alphabet, seq: str, seq_type: str) -> List[int]:
    """Token ids of the residues (no specials). Raises KeyError(letter) for a letter the vocabulary lacks."""
    text = gene_seq_replace(seq) if seq_type == 'gene' else seq
    ids = []
    for ch in text:
        idx = alphabet.tok_to_idx.get(ch)
        if idx is None:
            raise KeyError(ch)
        ids.append(idx)
    return ids


# --- config (src/models/lucaone_gplm_config.py defaults) ---------------------------------
CONFIG_DEFAULTS: Dict[str, Any] = {
    'max_position_embeddings': 4096, 'type_vocab_size': 2, 'num_hidden_layers': 24,
    'hidden_size': 1280, 'num_attention_heads': 20, 'no_position_embeddings': False,
    'no_token_type_embeddings': False, 'alphabet': 'gene_prot', 'token_dropout': True,
    'use_embed_layer_norm': True, 'use_last_layer_norm': True, 'embed_scale': 1.0,
}


@dataclass
class GPLMConfig:
    hidden_size: int
    num_attention_heads: int
    num_hidden_layers: int
    max_position_embeddings: int
    type_vocab_size: int
    no_position_embeddings: bool
    no_token_type_embeddings: bool
    alphabet: str
    token_dropout: bool
    use_embed_layer_norm: bool
    use_last_layer_norm: bool
    embed_scale: float

    @classmethod
    def from_dict(cls, raw: Dict[str, Any]) -> 'GPLMConfig':
        v = dict(CONFIG_DEFAULTS)
        v.update({k: raw[k] for k in CONFIG_DEFAULTS if k in raw and raw[k] is not None})
        return cls(hidden_size=int(v['hidden_size']), num_attention_heads=int(v['num_attention_heads']),
                   num_hidden_layers=int(v['num_hidden_layers']),
                   max_position_embeddings=int(v['max_position_embeddings']),
                   type_vocab_size=int(v['type_vocab_size']),
                   no_position_embeddings=bool(v['no_position_embeddings']),
                   no_token_type_embeddings=bool(v['no_token_type_embeddings']),
                   alphabet=str(v['alphabet']), token_dropout=bool(v['token_dropout']),
                   use_embed_layer_norm=bool(v['use_embed_layer_norm']),
                   use_last_layer_norm=bool(v['use_last_layer_norm']), embed_scale=float(v['embed_scale']))


class CheckpointError(Exception):
    """The weights folder is missing, ambiguous or does not hold a loadable LucaOne checkpoint."""


# --- on-disk layout ------------------------------------------------------------------------
WEIGHTS_FILE = 'pytorch.pth'
CONFIG_FILE = 'config.json'
ALPHABET_FILE = os.path.join('tokenizer', 'alphabet.pkl')
LAYOUT_HINT = ('config.json and pytorch.pth (a LucaOne checkpoint folder such as llm/models/lucagplm/v2.0/'
               'token_level,span_level,seq_level,structure_level/lucaone_gplm/20231125113045/checkpoint-step36000000/, '
               'with tokenizer/alphabet.pkl beside them)')
MAX_WALK_DIRS = 5000
MAX_WALK_DEPTH = 10  # llm/models/lucagplm/v2.0/<levels>/lucaone_gplm/<time>/checkpoint-step<N> is 8 deep


def find_checkpoint(root: str) -> str:
    """The checkpoint folder: `root` itself, or the single folder below it (a LucaOneApp `llm/`
    tree, for example) holding config.json + pytorch.pth. `heads/` folders are never searched."""
    if not os.path.isdir(root):
        raise CheckpointError('LucaOne weights not found: put %s in %s (set LUCAONE_MODEL_PATH); '
                              'the folder does not exist' % (LAYOUT_HINT, root))
    if os.path.isfile(os.path.join(root, CONFIG_FILE)) and os.path.isfile(os.path.join(root, WEIGHTS_FILE)):
        return root
    found: List[str] = []
    seen = 0
    base_depth = os.path.abspath(root).rstrip(os.sep).count(os.sep)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        seen += 1
        if seen > MAX_WALK_DIRS:
            break
        depth = os.path.abspath(dirpath).rstrip(os.sep).count(os.sep) - base_depth
        dirnames[:] = [] if depth >= MAX_WALK_DEPTH else sorted(
            d for d in dirnames if d != 'heads' and not d.startswith('.'))
        if CONFIG_FILE in filenames and WEIGHTS_FILE in filenames:
            found.append(dirpath)
            dirnames[:] = []
    if not found:
        raise CheckpointError('LucaOne weights not found: put %s in %s (set LUCAONE_MODEL_PATH)' % (LAYOUT_HINT, root))
    if len(found) > 1:
        raise CheckpointError('several LucaOne checkpoints under %s: %s; set LUCAONE_MODEL_PATH to the one to serve'
                              % (root, ', '.join(found)))
    return found[0]


def logs_path_for(ckpt_dir: str) -> str:
    """LucaOne keeps the run's arguments in logs/.../<time>/logs.txt, mirroring models/.../<time>/checkpoint-*/."""
    parent = os.path.dirname(os.path.abspath(ckpt_dir))
    parts = parent.split(os.sep)
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] == 'models':
            parts[i] = 'logs'
            return os.sep.join(parts + ['logs.txt'])
    return os.path.join(parent, 'logs.txt')


def read_args_info(path: str) -> Optional[Dict[str, Any]]:
    """The first line of logs.txt is the training arguments as JSON (get_embedding.load_model)."""
    if not os.path.isfile(path):
        return None
    with open(path, 'r', encoding='utf-8', errors='replace') as fp:
        first = fp.readline().strip()
    try:
        info = json.loads(first)
    except ValueError:
        return None
    return info if isinstance(info, dict) else None


class _PickledAlphabet:
    """Stand-in for LucaOne's Alphabet class while reading tokenizer/alphabet.pkl."""


class _AlphabetUnpickler(pickle.Unpickler):
    # The only global alphabet.pkl needs is the Alphabet class: nothing else can be loaded.
    def find_class(self, module: str, name: str) -> Any:
        if name == 'Alphabet':
            return _PickledAlphabet
        raise pickle.UnpicklingError('alphabet.pkl refers to %s.%s; only an Alphabet object is accepted' % (module, name))


def check_alphabet_file(path: str, alphabet: Alphabet) -> None:
    try:
        with open(path, 'rb') as fp:
            obj = _AlphabetUnpickler(fp).load()
    except Exception as exc:  # noqa: BLE001 - any unreadable or foreign pickle
        raise CheckpointError('cannot read %s as a LucaOne Alphabet: %s' % (path, exc))
    toks = getattr(obj, 'all_toks', None)
    if list(toks or []) != alphabet.all_toks:
        raise CheckpointError('%s holds a vocabulary that differs from LucaOne\'s %r alphabet: %r'
                              % (path, alphabet.name, toks))
    if getattr(obj, 'prepend_bos', True) is not True or getattr(obj, 'append_eos', True) is not True:
        raise CheckpointError('%s: only alphabets with [CLS] prepended and [SEP] appended are supported' % path)


def load_state_dict(path: str) -> Dict[str, torch.Tensor]:
    try:
        sd = torch.load(path, map_location='cpu', weights_only=True)
    except TypeError:  # torch < 1.13 has no weights_only
        sd = torch.load(path, map_location='cpu')
    except Exception as exc:
        raise CheckpointError('cannot read %s as a state dict of tensors: %s' % (path, exc))
    if not isinstance(sd, dict):
        raise CheckpointError('%s holds a %s, expected a state dict' % (path, type(sd).__name__))
    # get_embedding.load_model strips the DataParallel "module." prefix.
    return {(k[7:] if k.startswith('module.') else k): v for k, v in sd.items()}


def expected_shapes(cfg: GPLMConfig, vocab: int) -> Dict[str, Tuple[int, ...]]:
    """Every tensor the encoder reads, under LucaGPLM's state-dict names."""
    h, ffn = cfg.hidden_size, 4 * cfg.hidden_size
    head_dim = h // cfg.num_attention_heads
    shapes: Dict[str, Tuple[int, ...]] = {'embed_tokens.weight': (vocab, h)}
    if not cfg.no_token_type_embeddings:
        shapes['embed_type.weight'] = (cfg.type_vocab_size, h)
    if cfg.use_embed_layer_norm:
        shapes['embed_layer_norm.weight'] = (h,)
        shapes['embed_layer_norm.bias'] = (h,)
    for i in range(cfg.num_hidden_layers):
        p = 'layers.%d.' % i
        for ln in ('pre_layer_norm', 'post_layer_norm'):
            shapes[p + ln + '.weight'] = (h,)
            shapes[p + ln + '.bias'] = (h,)
        for proj in ('q_proj', 'k_proj', 'v_proj', 'out_proj'):
            shapes[p + 'self_attn.%s.weight' % proj] = (h, h)
            shapes[p + 'self_attn.%s.bias' % proj] = (h,)
        shapes[p + 'self_attn.rot_emb.inv_freq'] = (head_dim // 2,)
        shapes[p + 'fc1.weight'] = (ffn, h)
        shapes[p + 'fc1.bias'] = (ffn,)
        shapes[p + 'fc2.weight'] = (h, ffn)
        shapes[p + 'fc2.bias'] = (h,)
    if cfg.use_last_layer_norm:
        shapes['last_layer_norm.weight'] = (h,)
        shapes['last_layer_norm.bias'] = (h,)
    return shapes


def rotary_inv_freq(head_dim: int) -> torch.Tensor:
    return 1.0 / (10000 ** (torch.arange(0, head_dim, 2).float() / head_dim))


class LucaGPLM:
    """The LucaGPLM encoder (embedding inference only: no LM, contact or pre-training heads)."""

    def __init__(self, ckpt_dir: str, cfg: GPLMConfig, weights: Dict[str, torch.Tensor],
                 args_info: Optional[Dict[str, Any]], device: torch.device):
        self.ckpt_dir = ckpt_dir
        self.cfg = cfg
        self.w = weights
        self.args_info = args_info
        self.device = device
        self.alphabet = Alphabet(cfg.alphabet)
        self.head_dim = cfg.hidden_size // cfg.num_attention_heads
        # get_embedding.predict_embedding: truncation_seq_length defaults to 4094 (= 4096 - [CLS] - [SEP]).
        self.max_residues = cfg.max_position_embeddings - 2

    @classmethod
    def load(cls, root: str, device: str = 'cpu') -> 'LucaGPLM':
        ckpt = find_checkpoint(root)
        try:
            with open(os.path.join(ckpt, CONFIG_FILE), 'r', encoding='utf-8') as fp:
                raw = json.load(fp)
        except (OSError, ValueError) as exc:
            raise CheckpointError('cannot read %s: %s' % (os.path.join(ckpt, CONFIG_FILE), exc))
        missing_cfg = [k for k in ('hidden_size', 'num_attention_heads', 'num_hidden_layers') if k not in raw]
        if missing_cfg:
            raise CheckpointError('%s lacks %s' % (os.path.join(ckpt, CONFIG_FILE), ', '.join(missing_cfg)))
        cfg = GPLMConfig.from_dict(raw)
        if cfg.alphabet.lower() not in STANDARD_TOKS:
            raise CheckpointError('config.json alphabet %r is not one of LucaOne\'s (gene_prot, gene, prot)' % cfg.alphabet)
        if cfg.hidden_size % cfg.num_attention_heads:
            raise CheckpointError('hidden_size %d is not a multiple of num_attention_heads %d'
                                  % (cfg.hidden_size, cfg.num_attention_heads))
        if not cfg.no_position_embeddings:
            raise CheckpointError('config.json has no_position_embeddings=false: released LucaOne checkpoints use '
                                  'rotary embeddings only; learned absolute positions are not supported here')
        alphabet = Alphabet(cfg.alphabet)
        vocab_size = raw.get('vocab_size')
        if isinstance(vocab_size, int) and vocab_size > 0 and vocab_size != len(alphabet):
            raise CheckpointError('config.json vocab_size %d differs from the %r alphabet size %d'
                                  % (vocab_size, cfg.alphabet, len(alphabet)))
        args_info = read_args_info(logs_path_for(ckpt))
        if args_info is not None:
            if args_info.get('model_type') not in (None, 'lucaone_gplm', 'lucaone', 'lucagplm'):
                raise CheckpointError('logs.txt says model_type=%r; only lucaone_gplm checkpoints are supported'
                                      % args_info.get('model_type'))
            if args_info.get('tokenization'):
                raise CheckpointError('logs.txt says tokenization=true (a subword tokenizer); only the LucaOne '
                                      'Alphabet tokenizer is supported')
        alphabet_file = os.path.join(ckpt, ALPHABET_FILE)
        if os.path.isfile(alphabet_file):
            check_alphabet_file(alphabet_file, alphabet)
        sd = load_state_dict(os.path.join(ckpt, WEIGHTS_FILE))
        weights: Dict[str, torch.Tensor] = {}
        shapes = expected_shapes(cfg, len(alphabet))
        missing, wrong = [], []
        head_dim = cfg.hidden_size // cfg.num_attention_heads
        for key, shape in shapes.items():
            t = sd.pop(key, None)
            if t is None and key.endswith('rot_emb.inv_freq'):
                t = rotary_inv_freq(head_dim)  # a non-trainable buffer: recomputed if not saved
            if t is None:
                missing.append(key)
                continue
            if tuple(t.shape) != shape:
                wrong.append('%s %s (expected %s)' % (key, tuple(t.shape), shape))
                continue
            weights[key] = t.to(device=device, dtype=torch.float32).contiguous()
        del sd  # the LM, contact and pre-training heads are not used
        if missing or wrong:
            raise CheckpointError('%s does not match config.json: %s' % (
                os.path.join(ckpt, WEIGHTS_FILE),
                '; '.join((['missing ' + ', '.join(missing[:8]) + (' …' if len(missing) > 8 else '')] if missing else [])
                          + wrong[:8])))
        return cls(ckpt, cfg, weights, args_info, torch.device(device))

    # --- input ------------------------------------------------------------------------
    def batch_tensors(self, token_lists: Sequence[List[int]], seq_types: Sequence[str]):
        """[CLS] ids [SEP], right-padded with [PAD]; token types 0/1 over CLS..SEP, pad positions 0
        (get_embedding.encoder fills token_type_ids with padding_idx before writing each row)."""
        a = self.alphabet
        width = max(len(t) for t in token_lists) + 2
        ids = torch.full((len(token_lists), width), a.padding_idx, dtype=torch.long)
        types = torch.full((len(token_lists), width), a.padding_idx, dtype=torch.long)
        for i, (toks, st) in enumerate(zip(token_lists, seq_types)):
            n = len(toks)
            ids[i, 0] = a.cls_idx
            ids[i, 1:n + 1] = torch.tensor(toks, dtype=torch.long)
            ids[i, n + 1] = a.eos_idx
            types[i, :n + 2] = TOKEN_TYPE[st]
        return ids.to(self.device), types.to(self.device)

    # --- forward (LucaGPLM.__forward__ with embedding_inference) -----------------------
    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self._forward(input_ids, token_type_ids)

    def _forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        cfg, w, a = self.cfg, self.w, self.alphabet
        h, heads, hd = cfg.hidden_size, cfg.num_attention_heads, self.head_dim
        bsz, length = input_ids.shape
        padding_mask = input_ids.eq(a.padding_idx)
        x = cfg.embed_scale * F.embedding(input_ids, w['embed_tokens.weight'])
        if not cfg.no_token_type_embeddings:
            x = x + cfg.embed_scale * F.embedding(token_type_ids, w['embed_type.weight'])
        if cfg.use_embed_layer_norm:
            x = F.layer_norm(x, (h,), w['embed_layer_norm.weight'], w['embed_layer_norm.bias'], 1e-5)
        if cfg.token_dropout:
            # ESM-style token dropout, applied by LucaGPLM at inference too: without [MASK] tokens
            # this scales the embeddings by (1 - 0.15 * 0.8).
            is_mask = input_ids.eq(a.mask_idx)
            x = x.masked_fill(is_mask.unsqueeze(-1), 0.0)
            src_lengths = (~padding_mask).sum(-1)
            observed = is_mask.sum(-1).to(x.dtype) / src_lengths
            x = x * (1 - 0.15 * 0.8) / (1 - observed)[:, None, None]
        x = x * (1 - padding_mask.unsqueeze(-1).type_as(x))
        key_mask = padding_mask[:, None, None, :] if padding_mask.any() else None
        scaling = hd ** -0.5
        positions = torch.arange(length, device=x.device, dtype=torch.float32)
        for i in range(cfg.num_hidden_layers):
            p = 'layers.%d.' % i
            residual = x
            y = F.layer_norm(x, (h,), w[p + 'pre_layer_norm.weight'], w[p + 'pre_layer_norm.bias'], 1e-5)
            q = F.linear(y, w[p + 'self_attn.q_proj.weight'], w[p + 'self_attn.q_proj.bias']) * scaling
            k = F.linear(y, w[p + 'self_attn.k_proj.weight'], w[p + 'self_attn.k_proj.bias'])
            v = F.linear(y, w[p + 'self_attn.v_proj.weight'], w[p + 'self_attn.v_proj.bias'])
            q, k, v = (t.view(bsz, length, heads, hd).transpose(1, 2) for t in (q, k, v))
            freqs = torch.outer(positions, w[p + 'self_attn.rot_emb.inv_freq'])
            emb = torch.cat((freqs, freqs), dim=-1)
            cos, sin = emb.cos(), emb.sin()
            q = q * cos + _rotate_half(q) * sin
            k = k * cos + _rotate_half(k) * sin
            scores = torch.matmul(q, k.transpose(-1, -2))
            if key_mask is not None:
                scores = scores.masked_fill(key_mask, float('-inf'))
            probs = torch.softmax(scores, dim=-1, dtype=torch.float32)
            attn = torch.matmul(probs, v).transpose(1, 2).reshape(bsz, length, h)
            x = residual + F.linear(attn, w[p + 'self_attn.out_proj.weight'], w[p + 'self_attn.out_proj.bias'])
            residual = x
            y = F.layer_norm(x, (h,), w[p + 'post_layer_norm.weight'], w[p + 'post_layer_norm.bias'], 1e-5)
            y = F.gelu(F.linear(y, w[p + 'fc1.weight'], w[p + 'fc1.bias']))  # erf GELU, as modeling_gplm.gelu
            x = residual + F.linear(y, w[p + 'fc2.weight'], w[p + 'fc2.bias'])
        if cfg.use_last_layer_norm:
            x = F.layer_norm(x, (h,), w['last_layer_norm.weight'], w['last_layer_norm.bias'], 1e-5)
        return x  # (B, L, H): LucaGPLM's representation_matrix


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


# --- optional fine-tuned heads (LucaOneTasks src/common/luca_base.py, input_type "vector") ---
HEAD_WEIGHT_FILES = ('pytorch_model.bin', 'pytorch.pth')
HEAD_LAYOUT_HINT = ('config.json, pytorch_model.bin (or pytorch.pth), logs.txt (or args.json) and, for class names, '
                    'label.txt of a LucaOneTasks luca_base model trained with input_type=vector, task_level_type=seq_level')


def _activation(name: Optional[str]):
    """LucaOneTasks common/loss.py create_activate: unknown or missing names fall back to tanh."""
    n = (name or '').lower()
    if n == 'relu':
        return torch.relu
    if n == 'leakyrelu':
        return lambda t: F.leaky_relu(t, 0.01)
    if n == 'gelu':
        return F.gelu
    if n == 'gelu_new':
        return lambda t: 0.5 * t * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (t + 0.044715 * torch.pow(t, 3.0))))
    return torch.tanh


def _read_head_args(head_dir: str) -> Dict[str, Any]:
    path = os.path.join(head_dir, 'args.json')
    if os.path.isfile(path):
        with open(path, 'r', encoding='utf-8') as fp:
            info = json.load(fp)
        if isinstance(info, dict):
            return info
        raise CheckpointError('%s is not a JSON object' % path)
    path = os.path.join(head_dir, 'logs.txt')
    if not os.path.isfile(path):
        raise CheckpointError('no args.json or logs.txt in %s' % head_dir)
    # LucaOneTasks utils.load_trained_logs: the first JSON object, possibly spread over lines.
    buf = None
    with open(path, 'r', encoding='utf-8', errors='replace') as fp:
        for line in fp:
            line = line.strip()
            if buf is None and line.startswith('{'):
                buf = line
            elif buf is not None:
                buf += line
            if buf is not None:
                try:
                    info = json.loads(buf)
                    if isinstance(info, dict):
                        return info
                except ValueError:
                    continue
    raise CheckpointError('no JSON argument object found in %s' % path)


class TaskHead:
    """A LucaOneTasks LucaBase head over the LucaOne CLS vector: fc layers -> hidden_layer ->
    activation -> classifier -> sigmoid/softmax (none for regression)."""

    def __init__(self, head_dir: str, hidden_size: int, device: torch.device):
        self.dir = head_dir
        try:
            with open(os.path.join(head_dir, 'config.json'), 'r', encoding='utf-8') as fp:
                config = json.load(fp)
        except (OSError, ValueError) as exc:
            raise CheckpointError('cannot read %s: %s' % (os.path.join(head_dir, 'config.json'), exc))
        args = _read_head_args(head_dir)
        if args.get('model_type', 'luca_base') != 'luca_base':
            raise CheckpointError('%s: model_type %r is not supported (only luca_base)' % (head_dir, args.get('model_type')))
        if args.get('input_type') != 'vector' or args.get('task_level_type', 'seq_level') != 'seq_level':
            raise CheckpointError('%s: input_type=%r, task_level_type=%r; only input_type=vector, '
                                  'task_level_type=seq_level heads are supported'
                                  % (head_dir, args.get('input_type'), args.get('task_level_type')))
        self.output_mode = str(args.get('output_mode', '')).replace('-', '_')
        if self.output_mode not in ('binary_class', 'multi_class', 'multi_label', 'regression'):
            raise CheckpointError('%s: unsupported output_mode %r' % (head_dir, args.get('output_mode')))
        self.sigmoid = bool(args.get('sigmoid', False))
        emb_size = config.get('embedding_input_size')
        if emb_size is not None and int(emb_size) != hidden_size:
            raise CheckpointError('%s was trained on %d-dimensional embeddings; this LucaOne checkpoint gives %d'
                                  % (head_dir, int(emb_size), hidden_size))
        weights_path = next((os.path.join(head_dir, f) for f in HEAD_WEIGHT_FILES
                             if os.path.isfile(os.path.join(head_dir, f))), None)
        if weights_path is None:
            raise CheckpointError('no pytorch_model.bin or pytorch.pth in %s' % head_dir)
        sd = load_state_dict(weights_path)
        w = {k: v.to(device=device, dtype=torch.float32) for k, v in sd.items()
             if k.startswith(('linear.', 'hidden_layer.', 'classifier.'))}
        # vector fc stack: linear.0.{0,2,4,...} (Linear, activation, Linear, activation, ...)
        self.fc: List[Tuple[torch.Tensor, torch.Tensor]] = []
        j = 0
        while 'linear.0.%d.weight' % j in w:
            self.fc.append((w['linear.0.%d.weight' % j], w['linear.0.%d.bias' % j]))
            j += 2
        self.fc_act = _activation(config.get('fc_activate_func'))
        for key in ('hidden_layer.weight', 'hidden_layer.bias', 'classifier.weight', 'classifier.bias'):
            if key not in w:
                raise CheckpointError('%s lacks %s' % (weights_path, key))
        self.hidden = (w['hidden_layer.weight'], w['hidden_layer.bias'])
        self.classifier = (w['classifier.weight'], w['classifier.bias'])
        first_in = (self.fc[0][0] if self.fc else self.hidden[0]).shape[1]
        if first_in != hidden_size:
            raise CheckpointError('%s expects %d inputs; LucaOne gives %d' % (weights_path, first_in, hidden_size))
        # create_loss_function: args.classifier_activate_func, else config's, else hidden_act.
        act_name = None
        for source, key in ((args, 'classifier_activate_func'), (config, 'classifier_activate_func'),
                            (args, 'hidden_act'), (config, 'hidden_act')):
            if key in source:
                act_name = source[key]
                break
        self.hidden_act = _activation(act_name)
        self.num_outputs = int(self.classifier[0].shape[0])
        if self.output_mode == 'binary_class' and self.num_outputs != 1:
            raise CheckpointError('%s: a binary_class head must have one output, this one has %d'
                                  % (weights_path, self.num_outputs))
        self.labels = self._read_labels(os.path.join(head_dir, 'label.txt'))

    @staticmethod
    def _read_labels(path: str) -> Optional[List[str]]:
        if not os.path.isfile(path):
            return None
        with open(path, 'r', encoding='utf-8') as fp:
            rows = [line.strip() for line in fp if line.strip()]
        if rows and rows[0].lower() == 'label':
            rows = rows[1:]
        return rows or None

    def logits(self, vectors: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            x = vectors
            for weight, bias in self.fc:
                x = self.fc_act(F.linear(x, weight, bias))
            x = self.hidden_act(F.linear(x, *self.hidden))
            return F.linear(x, *self.classifier)

    def describe(self, logits: torch.Tensor) -> Dict[str, Any]:
        """One item's output from its logits (1-D), with LucaOneTasks' output activation
        (sigmoid when trained with --sigmoid or for binary/multi-label, softmax for multi-class)."""
        if self.output_mode == 'regression':
            values = (torch.sigmoid(logits) if self.sigmoid else logits).tolist()
            return {'value': values[0] if len(values) == 1 else values, 'output_mode': 'regression'}
        if self.output_mode == 'binary_class':
            p = float(torch.sigmoid(logits)[0])
            names = self._names(2)
            return {'label': names[1] if p >= 0.5 else names[0], 'probability': p,
                    'confidence': p if p >= 0.5 else 1 - p, 'threshold': 0.5, 'output_mode': 'binary_class'}
        if self.output_mode == 'multi_class':
            probs = (torch.sigmoid(logits) if self.sigmoid else torch.softmax(logits, dim=-1)).tolist()
            names = self._names(len(probs))
            best = max(range(len(probs)), key=lambda i: probs[i])
            return {'label': names[best], 'confidence': probs[best], 'probabilities': dict(zip(names, probs)),
                    'output_mode': 'multi_class'}
        probs = torch.sigmoid(logits).tolist()
        names = self._names(len(probs))
        return {'labels': [n for n, p in zip(names, probs) if p >= 0.5], 'probabilities': dict(zip(names, probs)),
                'threshold': 0.5, 'output_mode': 'multi_label'}

    def _names(self, n: int) -> List[str]:
        if self.labels and len(self.labels) == n:
            return list(self.labels)
        return [str(i) for i in range(n)]
