#!/usr/bin/env python3
"""Tiny random LucaOne checkpoints in the real on-disk layout, and a naive reference forward.

    make_tiny_checkpoint.py make OUT [--hidden 32 --layers 2 --heads 4 --seed 0] [--head classification]
    make_tiny_checkpoint.py reference --weights OUT --input '[{"sequence": "ACGU", "seq_type": "gene"}]'

`make` writes what LucaOneApp's download_trained_checkpoint_lucaone() fetches, under OUT/llm/:

    llm/models/lucagplm/v2.0/token_level,span_level,seq_level,structure_level/lucaone_gplm/20231125113045/
        checkpoint-step17600000/config.json           LucaGPLMConfig JSON (keys of config/lucaone_gplm.json)
        checkpoint-step17600000/pytorch.pth           state dict, LucaGPLM's key names (LM and contact heads included)
        checkpoint-step17600000/training_args.bin     training arguments (not read by the adapter)
        checkpoint-step17600000/tokenizer/alphabet.pkl  the pickled gene_prot Alphabet
    llm/logs/lucagplm/v2.0/token_level,span_level,seq_level,structure_level/lucaone_gplm/20231125113045/logs.txt

and with --head TASK a LucaOneTasks luca_base head (input_type vector, multi_class, 3 labels) in OUT/heads/TASK/.
The weights are random: the numbers mean nothing, they only exercise the real loading code.

`reference` recomputes embeddings from those files with no code shared with the adapter: float64,
one sequence at a time, explicit per-position layer norms, per-head attention loops and the rotary
rotation written out pair by pair. It prints a JSON list, one object per input.
"""
import argparse
import json
import math
import os
import pickle
import sys
import types

import torch

VERSION_PATH = os.path.join('lucagplm', 'v2.0', 'token_level,span_level,seq_level,structure_level',
                            'lucaone_gplm', '20231125113045')
STEP_DIR = 'checkpoint-step17600000'
VOCAB = (['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']
         + ['1', '2', '3', '4', '5', 'L', 'A', 'G', 'V', 'S', 'E', 'R', 'T', 'I', 'D', 'P', 'K', 'Q', 'N',
            'F', 'Y', 'M', 'H', 'W', 'C', 'X', 'B', 'U', 'Z', 'O', 'J', '.', '-', '*'])


def checkpoint_dir(out):
    return os.path.join(out, 'llm', 'models', VERSION_PATH, STEP_DIR)


# --- make --------------------------------------------------------------------------------
def _alphabet_class():
    """A class pickled as models.alphabet.Alphabet, the module path LucaOne's training code imports."""
    module = types.ModuleType('models.alphabet')

    class Alphabet:
        pass

    Alphabet.__module__ = 'models.alphabet'
    Alphabet.__qualname__ = 'Alphabet'
    module.Alphabet = Alphabet
    sys.modules.setdefault('models', types.ModuleType('models'))
    sys.modules['models.alphabet'] = module
    return Alphabet


def make_alphabet():
    a = _alphabet_class()()
    a.standard_toks = VOCAB[5:]
    a.prepend_toks = VOCAB[:2]
    a.append_toks = VOCAB[2:5]
    a.prepend_bos = True
    a.append_eos = True
    a.all_toks = list(VOCAB)
    a.tok_to_idx = {t: i for i, t in enumerate(VOCAB)}
    a.unk_idx, a.padding_idx, a.pad_token_id = 1, 0, 0
    a.cls_idx, a.mask_idx, a.eos_idx = 2, 4, 3
    a.all_special_tokens = VOCAB[:5]
    a.all_special_token_idx_list = [0, 1, 2, 3, 4]
    a.unique_no_split_tokens = a.all_toks
    a.vocab_size = len(VOCAB)
    return a


def make_state_dict(hidden, layers, heads, gen):
    def normal(*shape, std=1.0, mean=0.0):
        return torch.randn(*shape, generator=gen) * std + mean

    sd = {}
    sd['embed_tokens.weight'] = normal(len(VOCAB), hidden)
    sd['embed_tokens.weight'][0].zero_()  # nn.Embedding(padding_idx=0)
    sd['embed_type.weight'] = normal(2, hidden)
    head_dim = hidden // heads
    inv_freq = 1.0 / (10000 ** (torch.arange(0, head_dim, 2).float() / head_dim))
    lin_std = 1.0 / math.sqrt(hidden)
    for i in range(layers):
        p = 'layers.%d.' % i
        sd[p + 'pre_layer_norm.weight'] = normal(hidden, std=0.1, mean=1.0)
        sd[p + 'pre_layer_norm.bias'] = normal(hidden, std=0.1)
        for proj in ('k_proj', 'v_proj', 'q_proj', 'out_proj'):
            sd[p + 'self_attn.%s.weight' % proj] = normal(hidden, hidden, std=lin_std)
            sd[p + 'self_attn.%s.bias' % proj] = normal(hidden, std=0.1)
        sd[p + 'self_attn.rot_emb.inv_freq'] = inv_freq.clone()
        sd[p + 'post_layer_norm.weight'] = normal(hidden, std=0.1, mean=1.0)
        sd[p + 'post_layer_norm.bias'] = normal(hidden, std=0.1)
        sd[p + 'fc1.weight'] = normal(4 * hidden, hidden, std=lin_std)
        sd[p + 'fc1.bias'] = normal(4 * hidden, std=0.1)
        sd[p + 'fc2.weight'] = normal(hidden, 4 * hidden, std=0.5 / math.sqrt(hidden))
        sd[p + 'fc2.bias'] = normal(hidden, std=0.1)
    sd['contact_head.regression.weight'] = normal(1, layers * heads, std=0.1)
    sd['contact_head.regression.bias'] = normal(1, std=0.1)
    sd['last_layer_norm.weight'] = normal(hidden, std=0.1, mean=1.0)
    sd['last_layer_norm.bias'] = normal(hidden, std=0.1)
    sd['lm_head.weight'] = sd['embed_tokens.weight']  # RobertaLMHead ties its weight to embed_tokens
    sd['lm_head.bias'] = torch.zeros(len(VOCAB))
    sd['lm_head.dense.weight'] = normal(hidden, hidden, std=lin_std)
    sd['lm_head.dense.bias'] = normal(hidden, std=0.1)
    sd['lm_head.layer_norm.weight'] = torch.ones(hidden)
    sd['lm_head.layer_norm.bias'] = torch.zeros(hidden)
    return sd


def make(out, hidden, layers, heads, seed, head_tasks, max_positions=4096):
    if hidden % heads or (hidden // heads) % 2:
        raise SystemExit('hidden must be a multiple of heads with an even head size')
    gen = torch.Generator().manual_seed(seed)
    ckpt = checkpoint_dir(out)
    os.makedirs(os.path.join(ckpt, 'tokenizer'), exist_ok=True)
    config = {
        'architectures': ['LucaOneGPLM'], 'model_type': 'lucaone_gplm',
        'attention_probs_dropout_prob': 0.1, 'classifier_dropout_prob': 0.1, 'classifier_dropout': 0.1,
        'hidden_dropout_prob': 0.1, 'pad_token_id': 0, 'unk_token_id': 1, 'bos_token_id': 2, 'eos_token_id': 3,
        'sep_token_id': 3, 'mask_token_id': 4, 'hidden_act': 'gelu', 'classifier_hidden_act': 'gelu',
        'vocab_size': len(VOCAB), 'max_position_embeddings': max_positions, 'type_vocab_size': 2,
        'num_hidden_layers': layers, 'hidden_size': hidden, 'num_attention_heads': heads,
        'no_position_embeddings': True, 'no_token_type_embeddings': False, 'alphabet': 'gene_prot',
        'token_dropout': True, 'ignore_index': -100, 'use_embed_layer_norm': False, 'use_last_layer_norm': True,
        'embed_scale': 1.0,
    }
    with open(os.path.join(ckpt, 'config.json'), 'w') as fp:
        json.dump(config, fp, indent=2)
    torch.save(make_state_dict(hidden, layers, heads, gen), os.path.join(ckpt, 'pytorch.pth'))
    args_info = {
        'model_type': 'lucaone_gplm', 'tokenization': False, 'do_lower_case': False, 'truncation': 'right',
        'add_special_tokens': True, 'max_length': max_positions, 'num_hidden_layers': layers, 'num_attention_heads': heads,
        'hidden_size': hidden, 'pretrain_tasks': {}, 'ignore_index': -100, 'label_size': {}, 'loss_type': {},
        'output_mode': {}, 'classifier_size': {}, 'note': 'tiny random checkpoint made by isomodel for tests',
    }
    torch.save(argparse.Namespace(**args_info), os.path.join(ckpt, 'training_args.bin'))
    with open(os.path.join(ckpt, 'tokenizer', 'alphabet.pkl'), 'wb') as fp:
        pickle.dump(make_alphabet(), fp, pickle.HIGHEST_PROTOCOL)
    logs_dir = os.path.join(out, 'llm', 'logs', VERSION_PATH)
    os.makedirs(logs_dir, exist_ok=True)
    with open(os.path.join(logs_dir, 'logs.txt'), 'w') as fp:
        fp.write(json.dumps(args_info) + '\n')
    for task in head_tasks:
        make_head(os.path.join(out, 'heads', task), hidden, gen)
    print(json.dumps({'checkpoint': ckpt, 'hidden_size': hidden, 'heads': head_tasks}))


def make_head(head_dir, hidden, gen):
    os.makedirs(head_dir, exist_ok=True)
    fc, cls_size, labels = 16, 8, ['enzyme', 'transporter', 'other']
    config = {
        'hidden_act': 'gelu', 'classifier_dropout_prob': 0.1, 'vector_fc_size': [fc], 'classifier_size': cls_size,
        'classifier_activate_func': 'tanh', 'fc_activate_func': 'gelu', 'num_labels': len(labels),
        'embedding_input_size': hidden, 'alphabet': 'gene_prot',
    }
    with open(os.path.join(head_dir, 'config.json'), 'w') as fp:
        json.dump(config, fp, indent=2)
    args = {'model_type': 'luca_base', 'input_type': 'vector', 'task_level_type': 'seq_level',
            'output_mode': 'multi_class', 'sigmoid': False, 'llm_type': 'lucaone', 'embedding_type': 'vector'}
    with open(os.path.join(head_dir, 'logs.txt'), 'w') as fp:
        fp.write(json.dumps(args) + '\n')
    with open(os.path.join(head_dir, 'label.txt'), 'w') as fp:
        fp.write('label\n' + '\n'.join(labels) + '\n')
    sd = {
        'linear.0.0.weight': torch.randn(fc, hidden, generator=gen) / math.sqrt(hidden),
        'linear.0.0.bias': torch.randn(fc, generator=gen) * 0.1,
        'hidden_layer.weight': torch.randn(cls_size, fc, generator=gen) / math.sqrt(fc),
        'hidden_layer.bias': torch.randn(cls_size, generator=gen) * 0.1,
        'classifier.weight': torch.randn(len(labels), cls_size, generator=gen),
        'classifier.bias': torch.randn(len(labels), generator=gen) * 0.1,
    }
    torch.save(sd, os.path.join(head_dir, 'pytorch_model.bin'))


# --- naive reference --------------------------------------------------------------------------
def ref_layer_norm(x, weight, bias, eps=1e-5):
    out = torch.empty_like(x)
    for t in range(x.shape[0]):
        row = x[t]
        mean = sum(row.tolist()) / row.shape[0]
        var = sum((v - mean) ** 2 for v in row.tolist()) / row.shape[0]
        out[t] = (row - mean) / math.sqrt(var + eps) * weight + bias
    return out


def ref_rotate(vec, pos, head_dim):
    """Rotary embedding of one head vector at one position: pairs (i, i + d/2) turned by pos * 10000^(-2i/d)."""
    half = head_dim // 2
    out = vec.clone()
    for i in range(half):
        theta = pos * (10000.0 ** (-(2.0 * i) / head_dim))
        a, b = float(vec[i]), float(vec[i + half])
        out[i] = a * math.cos(theta) - b * math.sin(theta)
        out[i + half] = b * math.cos(theta) + a * math.sin(theta)
    return out


def ref_tokens(sequence, seq_type):
    if seq_type == 'gene':
        text = ''.join({'A': '1', 'T': '2', 'U': '2', 'C': '3', 'G': '4'}.get(ch, '5') for ch in sequence.upper())
    else:
        text = sequence.upper()
    return [VOCAB.index('[CLS]')] + [VOCAB.index(ch) for ch in text] + [VOCAB.index('[SEP]')]


def ref_encode(weights, config, sequence, seq_type):
    h, heads = config['hidden_size'], config['num_attention_heads']
    d = h // heads
    w = {k: v.double() for k, v in weights.items()}
    ids = ref_tokens(sequence, seq_type)
    token_type = 0 if seq_type == 'gene' else 1
    n = len(ids)
    x = torch.stack([w['embed_tokens.weight'][i] + w['embed_type.weight'][token_type] for i in ids])
    x = x * (1.0 - 0.15 * 0.8) / (1.0 - 0.0)  # token dropout scaling, no [MASK] in the input
    for layer in range(config['num_hidden_layers']):
        p = 'layers.%d.' % layer
        expected = 1.0 / (10000 ** (torch.arange(0, d, 2).double() / d))
        if not torch.allclose(w[p + 'self_attn.rot_emb.inv_freq'], expected, atol=1e-6):
            raise SystemExit('checkpoint inv_freq differs from 10000^(-2i/d)')
        y = ref_layer_norm(x, w[p + 'pre_layer_norm.weight'], w[p + 'pre_layer_norm.bias'])
        q = y @ w[p + 'self_attn.q_proj.weight'].T + w[p + 'self_attn.q_proj.bias']
        k = y @ w[p + 'self_attn.k_proj.weight'].T + w[p + 'self_attn.k_proj.bias']
        v = y @ w[p + 'self_attn.v_proj.weight'].T + w[p + 'self_attn.v_proj.bias']
        attn = torch.zeros(n, h, dtype=torch.float64)
        for hh in range(heads):
            sl = slice(hh * d, (hh + 1) * d)
            qs = [ref_rotate(q[t, sl] / math.sqrt(d), t, d) for t in range(n)]
            ks = [ref_rotate(k[t, sl], t, d) for t in range(n)]
            for t in range(n):
                scores = [float(torch.dot(qs[t], ks[s])) for s in range(n)]
                top = max(scores)
                exps = [math.exp(sc - top) for sc in scores]
                total = sum(exps)
                for s in range(n):
                    attn[t, sl] += (exps[s] / total) * v[s, sl]
        x = x + attn @ w[p + 'self_attn.out_proj.weight'].T + w[p + 'self_attn.out_proj.bias']
        y = ref_layer_norm(x, w[p + 'post_layer_norm.weight'], w[p + 'post_layer_norm.bias'])
        y = y @ w[p + 'fc1.weight'].T + w[p + 'fc1.bias']
        y = y.apply_(lambda z: 0.5 * z * (1.0 + math.erf(z / math.sqrt(2.0))))
        x = x + y @ w[p + 'fc2.weight'].T + w[p + 'fc2.bias']
    x = ref_layer_norm(x, w['last_layer_norm.weight'], w['last_layer_norm.bias'])
    return x, token_type


def ref_head(head_dir, vector):
    sd = torch.load(os.path.join(head_dir, 'pytorch_model.bin'), map_location='cpu')
    w = {k: v.double() for k, v in sd.items()}
    x = vector
    x = x @ w['linear.0.0.weight'].T + w['linear.0.0.bias']
    x = x.apply_(lambda z: 0.5 * z * (1.0 + math.erf(z / math.sqrt(2.0))))  # fc_activate_func gelu
    x = torch.tanh(x @ w['hidden_layer.weight'].T + w['hidden_layer.bias'])  # classifier_activate_func tanh
    logits = x @ w['classifier.weight'].T + w['classifier.bias']
    exps = [math.exp(float(z) - float(logits.max())) for z in logits]
    return [e / sum(exps) for e in exps]


def reference(weights_dir, items):
    ckpt = checkpoint_dir(weights_dir)
    with open(os.path.join(ckpt, 'config.json')) as fp:
        config = json.load(fp)
    weights = torch.load(os.path.join(ckpt, 'pytorch.pth'), map_location='cpu')
    results = []
    for item in items:
        x, token_type = ref_encode(weights, config, item['sequence'], item['seq_type'])
        pooling = item.get('pooling', 'cls')
        vec = x[0] if pooling == 'cls' else x[1:-1].mean(dim=0)
        result = {'embedding': vec.tolist(), 'token_type_id': token_type, 'tokens': x.shape[0]}
        if item.get('head'):
            result['probabilities'] = ref_head(os.path.join(weights_dir, 'heads', item['head']), x[0])
        results.append(result)
    print(json.dumps(results))


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    sub = parser.add_subparsers(dest='cmd', required=True)
    mk = sub.add_parser('make', help='write a tiny random checkpoint in the real layout')
    mk.add_argument('out')
    mk.add_argument('--hidden', type=int, default=32)
    mk.add_argument('--layers', type=int, default=2)
    mk.add_argument('--heads', type=int, default=4)
    mk.add_argument('--seed', type=int, default=0)
    mk.add_argument('--head', action='append', default=[], choices=['classification', 'property_prediction'])
    mk.add_argument('--max-positions', type=int, default=4096,
                    help="max_position_embeddings (LucaOne's 4096; smaller makes truncation cheap to test)")
    ref = sub.add_parser('reference', help='naive float64 forward over a tiny checkpoint')
    ref.add_argument('--weights', required=True)
    ref.add_argument('--input', required=True, help='JSON list of {sequence, seq_type (gene|prot), pooling?, head?}')
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.cmd == 'make':
        make(args.out, args.hidden, args.layers, args.heads, args.seed, args.head, args.max_positions)
    else:
        reference(args.weights, json.loads(args.input))


if __name__ == '__main__':
    main(sys.argv[1:])
