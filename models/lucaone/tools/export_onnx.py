#!/usr/bin/env python3
"""Exports a LucaOne checkpoint (and its optional LucaOneTasks heads) to ONNX for the lucaone-onnx package.

    /usr/bin/python3 export_onnx.py WEIGHTS_DIR OUT_DIR [--opset 17]

WEIGHTS_DIR is what the lucaone adapter reads from LUCAONE_MODEL_PATH: a LucaOne checkpoint folder
(config.json + pytorch.pth), or a tree holding exactly one (LucaOneApp's llm/), with optional heads in
WEIGHTS_DIR/heads/<task>/. Everything is loaded with the adapter's own code (lucaone_gplm.LucaGPLM.load,
lucaone_gplm.TaskHead), and the graph is the adapter's forward (LucaGPLM._forward, TaskHead.logits).
OUT_DIR receives

    model.onnx          inputs  input_ids [batch, sequence] int64, token_type_ids [batch, sequence] int64
                        outputs last_hidden_state [batch, sequence, hidden] float32,
                                <task>_logits [batch, outputs] float32 per head found (the head applied
                                to the [CLS] vector, as the adapter does)
                        (a checkpoint over 2 GB is written with external data files beside model.onnx:
                        keep the folder together)
    config.json         the checkpoint's config.json, copied unchanged
    isomodel_onnx.json  what the JS pipeline needs: the alphabet's tokens, sizes, the heads' output
                        modes, sigmoid flags and label names

Point LUCAONE_ONNX_PATH of the lucaone-onnx package at OUT_DIR. Batch and sequence axes are dynamic.
Needs only torch (torch.onnx); the onnx Python package is not used. A head that does not load stops the
export with the adapter's message (the Python worker would report it per request instead).
"""
import argparse
import json
import os
import re
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # the adapter's module: the same code as the worker

import lucaone_gplm as lg  # noqa: E402

FORMAT = 'isomodel-lucaone-onnx'
FORMAT_VERSION = 1
HEAD_TASKS = ('classification', 'property_prediction')


class _Exported(lg.torch.nn.Module):
    """The adapter's forward as one graph. Its tensors are registered as buffers, so the tracer
    writes them as initializers (external data for big checkpoints) rather than inline constants."""

    def __init__(self, model, heads):
        super().__init__()
        self.model = model
        self.heads = heads  # [(task, TaskHead)]
        n = 0
        for key, t in model.w.items():
            self.register_buffer('w_%d_%s' % (n, re.sub(r'\W', '_', key)), t)
            n += 1
        for task, head in heads:
            tensors = [t for pair in head.fc for t in pair] + list(head.hidden) + list(head.classifier)
            for t in tensors:
                self.register_buffer('head_%s_%d' % (task, n), t)
                n += 1

    def forward(self, input_ids, token_type_ids):
        hidden = self.model._forward(input_ids, token_type_ids)
        if not self.heads:
            return hidden
        cls = hidden[:, 0]
        return (hidden,) + tuple(head.logits(cls) for _, head in self.heads)


def head_info(head):
    return {'output_mode': head.output_mode, 'sigmoid': head.sigmoid, 'num_outputs': head.num_outputs,
            'labels': head.labels}


def export(root, out_dir, opset):
    torch = lg.torch
    if torch is None:
        raise SystemExit('PyTorch is not importable by %s (%s)' % (sys.executable, lg.TORCH_IMPORT_ERROR))
    model = lg.LucaGPLM.load(root, device='cpu')
    cfg = model.cfg
    heads = []
    for task in HEAD_TASKS:
        head_dir = os.path.join(root, 'heads', task)
        if os.path.isdir(head_dir):
            heads.append((task, lg.TaskHead(head_dir, cfg.hidden_size, model.device)))

    # A nucleotide and a protein row of different lengths: the padding mask and both token types are traced.
    rows, kinds = [lg.encode(model.alphabet, 'ACGTTAGCNA', 'gene')], ['gene']
    if 'M' in model.alphabet.tok_to_idx:  # the gene-only alphabet has no amino acids
        rows.append(lg.encode(model.alphabet, 'MKTLL', 'prot'))
        kinds.append('prot')
    else:
        rows.append(rows[0][:5])
        kinds.append('gene')
    ids, types = model.batch_tensors(rows, kinds)
    if not bool(ids.eq(model.alphabet.padding_idx).any()):
        raise AssertionError('the example batch must contain padding')

    outputs = ['last_hidden_state'] + ['%s_logits' % task for task, _ in heads]
    dynamic = {'input_ids': {0: 'batch', 1: 'sequence'}, 'token_type_ids': {0: 'batch', 1: 'sequence'},
               'last_hidden_state': {0: 'batch', 1: 'sequence'}}
    for name in outputs[1:]:
        dynamic[name] = {0: 'batch'}
    os.makedirs(out_dir, exist_ok=True)
    t0 = time.time()
    with torch.no_grad():
        torch.onnx.export(_Exported(model, heads).eval(), (ids, types), os.path.join(out_dir, 'model.onnx'),
                          input_names=['input_ids', 'token_type_ids'], output_names=outputs, dynamic_axes=dynamic,
                          opset_version=opset, do_constant_folding=True)
    shutil.copyfile(os.path.join(model.ckpt_dir, lg.CONFIG_FILE), os.path.join(out_dir, 'config.json'))
    info = {
        'format': FORMAT,
        'format_version': FORMAT_VERSION,
        'source': os.path.abspath(model.ckpt_dir),
        'torch': torch.__version__,
        'opset': opset,
        'inputs': ['input_ids', 'token_type_ids'],
        'outputs': outputs,
        'hidden_size': cfg.hidden_size,
        'num_hidden_layers': cfg.num_hidden_layers,
        'num_attention_heads': cfg.num_attention_heads,
        'max_position_embeddings': cfg.max_position_embeddings,
        'max_residues': model.max_residues,
        'alphabet': model.alphabet.name,
        'tokens': list(model.alphabet.all_toks),
        'heads': {task: head_info(head) for task, head in heads},
    }
    with open(os.path.join(out_dir, 'isomodel_onnx.json'), 'w', encoding='utf-8') as fp:
        json.dump(info, fp, indent=2)
        fp.write('\n')
    print(json.dumps({'out': os.path.abspath(out_dir), 'checkpoint': model.ckpt_dir, 'outputs': outputs,
                      'hidden_size': cfg.hidden_size, 'seconds': round(time.time() - t0, 2)}))


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('weights', help='LucaOne weights folder (as LUCAONE_MODEL_PATH)')
    ap.add_argument('out', help='output folder (for LUCAONE_ONNX_PATH)')
    ap.add_argument('--opset', type=int, default=17)
    args = ap.parse_args(argv)
    try:
        export(args.weights, args.out, args.opset)
    except (lg.CheckpointError, OSError, ValueError) as exc:
        print('export_onnx: cannot export %s: %s: %s' % (args.weights, type(exc).__name__, exc), file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
