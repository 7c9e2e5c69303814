"""lucaone: LucaOne (LucaGPLM) embeddings, and classification / property prediction through
optional fine-tuned LucaOneTasks heads. Needs the real weights: nothing here makes numbers up.

Environment (manifest `env`, overridden per deployment by the operator's `model_env`):
  LUCAONE_MODEL_PATH   weights folder (default /data/models/LucaOne): a LucaOne checkpoint folder
                       (config.json + pytorch.pth [+ tokenizer/alphabet.pkl]) or a tree holding exactly
                       one such folder (e.g. LucaOneApp's llm/ download); heads in <path>/heads/<task>/
  LUCAONE_NUM_THREADS  torch CPU threads (default 1)
  LUCAONE_DEVICE       cpu (default) or cuda
"""
import os
import sys

from isomodel_worker import Model, ModelError, item_error

import lucaone_gplm as lg

DEFAULT_MODEL_PATH = '/data/models/LucaOne'
HEAD_TASKS = ('classification', 'property_prediction')
TASKS = ('embedding',) + HEAD_TASKS
SEQ_TYPE_ALIASES = {'gene': 'gene', 'dna': 'gene', 'rna': 'gene', 'nucleotide': 'gene', 'nucleic_acid': 'gene',
                    'prot': 'prot', 'protein': 'prot'}
POOLINGS = ('cls', 'mean')
TRUNC_TYPES = ('right', 'left')


class _ItemError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


class LucaOne(Model):
    def setup(self, ctx):
        self.root = ctx.env.get('LUCAONE_MODEL_PATH') or DEFAULT_MODEL_PATH
        try:
            ckpt = lg.find_checkpoint(self.root)
        except lg.CheckpointError as exc:
            raise ModelError('MODEL_NOT_LOADED', str(exc))
        if lg.TORCH_IMPORT_ERROR is not None:
            raise ModelError('MODEL_NOT_LOADED', 'PyTorch is not importable by %s (%s): install it, e.g. '
                             '`apt-get install -y python3-torch python3-numpy` on Debian/Ubuntu, or point the '
                             'manifest\'s python: at an interpreter that has torch'
                             % (sys.executable, lg.TORCH_IMPORT_ERROR))
        torch = lg.torch
        threads = ctx.env.get('LUCAONE_NUM_THREADS') or '1'
        try:
            torch.set_num_threads(max(1, int(threads)))
        except ValueError:
            raise ModelError('MODEL_NOT_LOADED', 'LUCAONE_NUM_THREADS must be a positive integer, got %r' % threads)
        device = (ctx.env.get('LUCAONE_DEVICE') or 'cpu').strip().lower()
        if device.startswith('cuda') and not torch.cuda.is_available():
            raise ModelError('MODEL_NOT_LOADED', 'LUCAONE_DEVICE=%s but this torch build sees no CUDA device' % device)
        try:
            self.model = lg.LucaGPLM.load(ckpt, device=device)
        except lg.CheckpointError as exc:
            raise ModelError('MODEL_NOT_LOADED', str(exc))
        cfg = self.model.cfg
        print('lucaone: loaded %s (hidden %d, %d layers, %d heads, alphabet %s) on %s'
              % (ckpt, cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads, cfg.alphabet, device),
              file=sys.stderr, flush=True)
        # Optional fine-tuned heads: a broken head is reported per request, it never blocks embeddings.
        self.heads, self.head_errors = {}, {}
        for task in HEAD_TASKS:
            head_dir = os.path.join(self.root, 'heads', task)
            if not os.path.isdir(head_dir):
                continue
            try:
                self.heads[task] = lg.TaskHead(head_dir, cfg.hidden_size, self.model.device)
                print('lucaone: head %s loaded from %s' % (task, head_dir), file=sys.stderr, flush=True)
            except Exception as exc:  # noqa: BLE001 - reported to clients of that task
                self.head_errors[task] = '%s: %s' % (type(exc).__name__, exc)
                print('lucaone: head %s not loaded: %s' % (task, self.head_errors[task]), file=sys.stderr, flush=True)

    # --- options ------------------------------------------------------------------------
    def _prepare(self, item, task):
        options = item.get('options') or {}
        if not isinstance(options, dict):
            raise _ItemError('INVALID_REQUEST', 'options must be an object')
        hidden = self.model.cfg.hidden_size
        dim = options.get('embedding_dimension')
        if dim is not None and (isinstance(dim, bool) or not isinstance(dim, (int, float)) or dim != hidden):
            raise _ItemError('INVALID_REQUEST', 'embedding_dimension must be %d: the loaded LucaOne checkpoint\'s '
                             'embeddings are %d-dimensional (its hidden size); other sizes would need a projection '
                             'LucaOne does not define' % (hidden, hidden))
        pooling = str(options.get('pooling', 'cls')).lower()
        if pooling not in POOLINGS:
            raise _ItemError('INVALID_REQUEST', 'pooling must be one of %s' % ', '.join(POOLINGS))
        if task in HEAD_TASKS and pooling != 'cls':
            raise _ItemError('INVALID_REQUEST', 'task %s feeds the [CLS] vector to its LucaOneTasks head; '
                             'pooling %r does not apply' % (task, pooling))
        trunc = str(options.get('trunc_type', 'right')).lower()
        if trunc not in TRUNC_TYPES:
            raise _ItemError('INVALID_REQUEST', 'trunc_type must be right (keep the start) or left (keep the end)')
        seq = lg.clean_seq(str(item.get('sequence', '')))
        if not seq:
            raise _ItemError('INVALID_SEQUENCE', 'the sequence has no letters')
        forced = options.get('seq_type')
        if forced is None:
            seq_type = lg.detect_seq_type(seq)
        else:
            seq_type = SEQ_TYPE_ALIASES.get(str(forced).lower())
            if seq_type is None:
                raise _ItemError('INVALID_REQUEST', 'seq_type must be gene (DNA/RNA) or prot (protein)')
            bad = sorted(set(ch for ch in seq if ch not in lg.NUCLEOTIDE_IUPAC))
            if seq_type == 'gene' and bad:
                raise _ItemError('INVALID_SEQUENCE', 'seq_type gene, but %s are not nucleotide codes' % ''.join(bad))
        try:
            ids = lg.encode(self.model.alphabet, seq, seq_type)
        except KeyError as exc:
            raise _ItemError('INVALID_SEQUENCE', 'letter %s is not in this checkpoint\'s %r vocabulary (seq_type %s)'
                             % (exc.args[0], self.model.alphabet.name, seq_type))
        limit = self.model.max_residues
        truncated = len(ids) > limit
        if truncated:
            ids = ids[:limit] if trunc == 'right' else ids[-limit:]
        return {'ids': ids, 'seq_type': seq_type, 'pooling': pooling, 'truncated': truncated,
                'length': len(seq)}

    # --- predict --------------------------------------------------------------------------
    def predict(self, batch, task):
        if task not in TASKS:
            raise ModelError('INVALID_REQUEST', 'unknown task %r; lucaone serves %s' % (task, ', '.join(TASKS)))
        outputs = [None] * len(batch)
        ready = []
        for i, item in enumerate(batch):
            if task in HEAD_TASKS and task not in self.heads:
                outputs[i] = item_error('MODEL_NOT_LOADED', self._no_head_message(task))
                continue
            try:
                ready.append((i, self._prepare(item, task)))
            except _ItemError as exc:
                outputs[i] = item_error(exc.code, exc.message)
        if ready:
            torch = lg.torch
            ids, types = self.model.batch_tensors([p['ids'] for _, p in ready], [p['seq_type'] for _, p in ready])
            hidden = self.model.forward(ids, types)
            vectors = []
            for row, (_, p) in enumerate(ready):
                n = len(p['ids'])
                if p['pooling'] == 'cls':
                    vectors.append(hidden[row, 0])
                else:  # mean over residues, [CLS] and [SEP] left out (utils.matrix_2_vector)
                    vectors.append(hidden[row, 1:n + 1].mean(dim=0))
            stacked = torch.stack(vectors).cpu()
            logits = self.heads[task].logits(stacked.to(self.model.device)).cpu() if task in HEAD_TASKS else None
            for row, (i, p) in enumerate(ready):
                common = {'seq_type': p['seq_type'], 'token_type_id': lg.TOKEN_TYPE[p['seq_type']],
                          'tokens': len(p['ids']) + 2, 'truncated': p['truncated']}
                if logits is None:
                    vec = stacked[row].tolist()
                    outputs[i] = dict({'embedding': vec, 'dimension': len(vec), 'pooling': p['pooling']}, **common)
                else:
                    outputs[i] = dict(self.heads[task].describe(logits[row]), **common)
        return outputs

    def _no_head_message(self, task):
        where = os.path.join(self.root, 'heads', task)
        msg = ('task %s needs a fine-tuned LucaOneTasks head, and LucaOne ships none: put %s in %s'
               % (task, lg.HEAD_LAYOUT_HINT, where))
        if task in self.head_errors:
            msg += ' (the head there did not load: %s)' % self.head_errors[task]
        return msg
