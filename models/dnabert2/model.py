"""dnabert2: DNABERT-2 (Zhou et al. 2023) served from weights mounted on disk.

embedding           - pooled last hidden state (mean | cls | max).
promoter_prediction - P(promoter) from a DNABERT-2 checkpoint fine-tuned for promoter
                      classification (BertForSequenceClassification, 2 labels).

Weights are never downloaded: setup() fails with MODEL_NOT_LOADED unless config.json,
tokenizer.json and pytorch_model.bin (or model.safetensors) are in DNABERT2_MODEL_PATH.
See MODEL_CARD.md.
"""
import os
import sys
import time

from isomodel_worker import Model, ModelError, item_error

DEFAULT_MODEL_PATH = "/data/models/DNABERT_2"
POOLINGS = ("mean", "cls", "max")
NEGATIVE_WORDS = ("non", "not", "no_", "negative")


def _log(text):
    print("[dnabert2] " + text, file=sys.stderr, flush=True)


def _env_int(env, name, default, minimum):
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ModelError("MODEL_NOT_LOADED", "%s must be an integer, got %r" % (name, raw))
    if value < minimum:
        raise ModelError("MODEL_NOT_LOADED", "%s must be >= %d, got %d" % (name, minimum, value))
    return value


def _bool_option(options, name, default):
    value = options.get(name, default)
    if not isinstance(value, bool):
        raise ModelError("INVALID_REQUEST", "option %s must be true or false" % name)
    return value


def promoter_label_index(id2label, num_labels, override):
    """Which logit is "promoter". DNABERT-2's GUE promoter sets (prom_300_*, prom_core_*)
    label promoters 1 and non-promoters 0, and fine-tuned configs usually keep the default
    names LABEL_0/LABEL_1, so index 1 unless the config names one label as the promoter or
    DNABERT2_PROMOTER_LABEL (an index or a label name) says otherwise."""
    if override:
        if override.isdigit():
            index = int(override)
        else:
            matches = [i for i, name in id2label.items() if name == override]
            if len(matches) != 1:
                raise ModelError("MODEL_NOT_LOADED", "DNABERT2_PROMOTER_LABEL=%r is not one of the "
                                 "config's labels %r" % (override, sorted(id2label.values())))
            index = matches[0]
        if not 0 <= index < num_labels:
            raise ModelError("MODEL_NOT_LOADED", "DNABERT2_PROMOTER_LABEL=%r is out of range for %d labels"
                             % (override, num_labels))
        return index
    named = [i for i, name in id2label.items()
             if "prom" in name.lower() and not any(w in name.lower() for w in NEGATIVE_WORDS)]
    if len(named) == 1 and 0 <= named[0] < num_labels:
        return named[0]
    return 1


class DnaBert2Model(Model):
    def setup(self, ctx):
        env = ctx.env
        path = env.get("DNABERT2_MODEL_PATH") or DEFAULT_MODEL_PATH
        self.path = path
        config_file = os.path.join(path, "config.json")
        tokenizer_file = os.path.join(path, "tokenizer.json")
        weights = [os.path.join(path, f) for f in ("model.safetensors", "pytorch_model.bin")]
        missing = [os.path.basename(f) for f in (config_file, tokenizer_file) if not os.path.isfile(f)]
        if not any(os.path.isfile(f) for f in weights):
            missing.append("pytorch_model.bin or model.safetensors")
        if missing:
            where = "folder does not exist" if not os.path.isdir(path) else "missing: " + ", ".join(missing)
            raise ModelError("MODEL_NOT_LOADED", "DNABERT-2 weights not found: put config.json, tokenizer.json "
                             "and pytorch_model.bin (or model.safetensors) in %s (set DNABERT2_MODEL_PATH) [%s]"
                             % (path, where))
        try:
            import torch
        except ImportError as exc:
            raise ModelError("MODEL_NOT_LOADED", "PyTorch is not importable by %s (%s): install it with "
                             "`apt-get install python3-torch` (Debian/Ubuntu) or pip install torch for that "
                             "interpreter" % (sys.executable, exc))
        self.torch = torch
        threads = _env_int(env, "DNABERT2_TORCH_THREADS", 0, 0)
        if threads:
            torch.set_num_threads(threads)
        import dnabert2_arch as arch
        import dnabert2_tokenizer as tok

        t0 = time.time()
        try:
            self.config = arch.DnaBert2Config.from_file(config_file)
            self.tokenizer = tok.load(tokenizer_file)
            self.model, weights_file = arch.load_checkpoint(path, self.config)
        except Exception as exc:  # a bad file of any kind: say which folder, keep the reason
            raise ModelError("MODEL_NOT_LOADED", "cannot load DNABERT-2 from %s: %s: %s"
                             % (path, type(exc).__name__, exc))
        top_id = max(self.tokenizer.id_to_token)
        if top_id >= self.config.vocab_size:
            raise ModelError("MODEL_NOT_LOADED", "tokenizer.json has token id %d but config.json vocab_size is %d"
                             % (top_id, self.config.vocab_size))
        pad = self.tokenizer.token_id("[PAD]")
        self.pad_id = pad if pad is not None else 0
        # Tokens per sequence, [CLS] and [SEP] included. ALiBi lets DNABERT-2 run past the
        # config's max_position_embeddings, at a cost in memory (attention is quadratic).
        self.max_tokens = _env_int(env, "DNABERT2_MAX_TOKENS", self.config.max_position_embeddings, 3)
        self.num_labels = 0 if self.model.classifier is None else self.model.classifier.out_features
        self.promoter_index = None
        if self.num_labels == 2:
            self.promoter_index = promoter_label_index(self.config.id2label, 2, env.get("DNABERT2_PROMOTER_LABEL"))
        _log("loaded %s (%d layers, hidden %d, %d heads, vocab %d, classifier labels %d) in %.1fs; "
             "max %d tokens, torch %s with %d threads"
             % (weights_file, self.config.num_hidden_layers, self.config.hidden_size,
                self.config.num_attention_heads, self.config.vocab_size, self.num_labels, time.time() - t0,
                self.max_tokens, torch.__version__, torch.get_num_threads()))

    # --- helpers -------------------------------------------------------------------------
    def _forward(self, encodings):
        """Last hidden states for a list of encodings, padded into one batch."""
        torch = self.torch
        longest = max(len(e.ids) for e in encodings)
        ids = torch.full((len(encodings), longest), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(encodings), longest), dtype=torch.long)
        for row, enc in enumerate(encodings):
            ids[row, :len(enc.ids)] = torch.tensor(enc.ids, dtype=torch.long)
            mask[row, :len(enc.ids)] = 1
        with torch.no_grad():
            return self.model.encode(ids, mask)

    def _no_head_message(self):
        if self.num_labels == 0:
            why = "the weights in %s have no sequence-classification head (classifier.weight)" % self.path
        else:
            why = "the classification head in %s has %d labels, not 2" % (self.path, self.num_labels)
        return ("promoter_prediction needs a DNABERT-2 checkpoint fine-tuned for promoter vs non-promoter "
                "classification (BertForSequenceClassification with 2 labels); %s. The pre-trained "
                "DNABERT-2-117M only supports the embedding task." % why)

    def _embedding(self, hidden, row, enc, options):
        torch = self.torch
        pooling = options.get("pooling", "mean")
        n = len(enc.ids)
        states = hidden[row, :n]
        if pooling == "cls":
            vec = states[0]
        else:
            if _bool_option(options, "include_special_tokens", False):
                chosen = states
            else:
                keep = torch.tensor([not s for s in enc.special_mask])
                chosen = states[keep]
                if chosen.shape[0] == 0:  # cannot happen for a non-empty sequence
                    chosen = states
            vec = chosen.mean(dim=0) if pooling == "mean" else chosen.max(dim=0).values
        out = {"embedding": vec.tolist(), "dimension": int(vec.shape[0]), "pooling": pooling}
        return out

    # --- protocol --------------------------------------------------------------------------
    def predict(self, batch, task):
        if task not in ("embedding", "promoter_prediction"):
            raise ModelError("INVALID_REQUEST", "unknown task %r" % task)
        if task == "promoter_prediction" and self.promoter_index is None:
            return [item_error("MODEL_NOT_LOADED", self._no_head_message()) for _ in batch]
        outputs = [None] * len(batch)
        encodings = []
        rows = []
        for i, item in enumerate(batch):
            options = item.get("options") or {}
            try:
                if task == "embedding":
                    pooling = options.get("pooling", "mean")
                    if pooling not in POOLINGS:
                        raise ModelError("INVALID_REQUEST", "option pooling must be one of %s" % ", ".join(POOLINGS))
                    _bool_option(options, "include_special_tokens", False)
                _bool_option(options, "return_tokens", False)
                truncate = _bool_option(options, "truncation", True)
                enc = self.tokenizer.encode(item["sequence"].upper(), max_length=self.max_tokens)
                if enc.truncated and not truncate:
                    raise ModelError("SEQUENCE_TOO_LONG", "sequence is %d tokens ([CLS]/[SEP] included), over "
                                     "the limit of %d (DNABERT2_MAX_TOKENS); send a shorter sequence or "
                                     "allow truncation" % (enc.untruncated_length, self.max_tokens))
            except ModelError as exc:
                outputs[i] = item_error(exc.code, exc.message)
                continue
            encodings.append(enc)
            rows.append(i)
        if not encodings:
            return outputs
        hidden = self._forward(encodings)
        if task == "promoter_prediction":
            with self.torch.no_grad():
                probs = self.torch.softmax(self.model.classify(hidden), dim=-1)
        for row, (i, enc) in enumerate(zip(rows, encodings)):
            options = batch[i].get("options") or {}
            if task == "embedding":
                out = self._embedding(hidden, row, enc, options)
            else:
                p = [float(x) for x in probs[row].tolist()]
                best = max(range(len(p)), key=lambda j: p[j])
                promoter = best == self.promoter_index
                out = {
                    "prediction": p[self.promoter_index],
                    "confidence": p[best],
                    "details": {
                        "class": "promoter" if promoter else "non_promoter",
                        "probability": p[best],
                        "label": self.config.id2label.get(best, "LABEL_%d" % best),
                        "probabilities": p,
                        "promoter_label_index": self.promoter_index,
                    },
                }
            out["num_tokens"] = len(enc.ids)
            out["truncated"] = enc.truncated
            if options.get("return_tokens") is True:
                out["tokens"] = enc.tokens
            outputs[i] = out
        return outputs
