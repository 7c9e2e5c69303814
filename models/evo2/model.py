"""evo2: Evo 2 (Arc Institute, StripedHyena 2) served from a checkpoint on disk.

generate_sequence - continues a DNA prompt by sampling one base at a time (streamed in chunks).
analyze           - per-position log-likelihoods of a DNA sequence and its score (mean per base).

The same tasks, options and output fields as dna-lm, so seed 003's pipeline can use either.
Weights are never downloaded here: setup() fails with MODEL_NOT_LOADED unless EVO2_MODEL_PATH holds
the vortex config (config.json or a .yml) and one .pt checkpoint. See MODEL_CARD.md.
"""
import math
import os
import random
import sys
import time

from isomodel_worker import Model, ModelError, item_error

DEFAULT_MODEL_PATH = "/data/models/evo2"
BASES = "ACGT"
MAX_NEW = 2000
MAX_SEED = 2 ** 32 - 1


def _log(text):
    print("[evo2] " + text, file=sys.stderr, flush=True)


def bad_request(message):
    return ModelError("INVALID_REQUEST", message)


def integer(options, key, default, lo, hi):
    value = options.get(key, default)
    if value is None:
        return default
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not float(value).is_integer() or not lo <= value <= hi:
        raise bad_request("option %s must be an integer from %d to %d (got %r)" % (key, lo, hi, value))
    return int(value)


class Evo2Model(Model):
    def setup(self, ctx):
        env = ctx.env
        path = env.get("EVO2_MODEL_PATH") or DEFAULT_MODEL_PATH
        self.path = path
        has_pt = os.path.isdir(path) and any(f.endswith(".pt") for f in os.listdir(path))
        has_cfg = os.path.isdir(path) and any(f == "config.json" or f.endswith((".yml", ".yaml")) for f in os.listdir(path))
        if not (has_pt and has_cfg):
            where = "folder does not exist" if not os.path.isdir(path) else "missing: " + ", ".join(
                ([] if has_cfg else ["the vortex config (config.json or evo2-*.yml)"]) + ([] if has_pt else ["a .pt checkpoint"]))
            raise ModelError("MODEL_NOT_LOADED", "Evo 2 weights not found: put the checkpoint (e.g. evo2_1b_base.pt from "
                             "arcinstitute/evo2_1b_base) and its vortex config (evo2/configs/evo2-1b-8k.yml of the evo2 "
                             "package) in %s (set EVO2_MODEL_PATH), or fetch the checkpoint with isomodel pull --for evo2 "
                             "and add the config [%s]" % (path, where))
        try:
            import torch
        except ImportError as exc:
            raise ModelError("MODEL_NOT_LOADED", "PyTorch is not importable by %s (%s): install it with "
                             "`apt-get install python3-torch python3-yaml`" % (sys.executable, exc))
        self.torch = torch
        threads = env.get("EVO2_TORCH_THREADS")
        if threads and threads.isdigit() and int(threads) > 0:
            torch.set_num_threads(int(threads))
        import evo2_arch as arch

        t0 = time.time()
        try:
            self.model, self.config, files = arch.load_checkpoint(
                path, env.get("EVO2_CONFIG") or "", env.get("EVO2_CHECKPOINT") or "", env.get("EVO2_TRUSTED_PICKLE") == "1")
        except Exception as exc:
            raise ModelError("MODEL_NOT_LOADED", "cannot load Evo 2 from %s: %s: %s" % (path, type(exc).__name__, exc))
        if self.config.vocab_size <= max(ord(b) for b in BASES):
            raise ModelError("MODEL_NOT_LOADED", "vocab_size %d is too small for byte tokens" % self.config.vocab_size)
        self.base_ids = [ord(b) for b in BASES]
        self.max_tokens = self.config.max_seqlen
        c = self.config
        _log("loaded %s with %s (%d blocks: %d attention, %d hcl, %d hcm, %d hcs; hidden %d) in %.1fs; float32 on the CPU, "
             "torch %s with %d threads" % (files[1], files[0], c.num_layers, len(c.attn_layer_idxs), len(c.hcl_layer_idxs),
                                           len(c.hcm_layer_idxs), len(c.hcs_layer_idxs), c.hidden_size, time.time() - t0,
                                           torch.__version__, torch.get_num_threads()))

    def logits(self, seq):
        torch = self.torch
        ids = torch.tensor([[ord(ch) for ch in seq]], dtype=torch.long)  # CharLevelTokenizer: one byte per letter
        with torch.no_grad():
            return self.model(ids)[0]

    # --- analyze --------------------------------------------------------------------------
    def analyze(self, seq, options):
        if len(seq) < 2:
            raise ModelError("INVALID_SEQUENCE", "analyze needs at least 2 bases: Evo 2 scores each base from the ones before it")
        if len(seq) > self.max_tokens:
            raise ModelError("SEQUENCE_TOO_LONG", "sequence of %d bases is over the config's max_seqlen %d" % (len(seq), self.max_tokens))
        torch = self.torch
        lp = torch.log_softmax(self.logits(seq), dim=-1)
        targets = torch.tensor([ord(ch) for ch in seq[1:]], dtype=torch.long)
        lls = lp[:-1].gather(1, targets[:, None])[:, 0].tolist()
        total = sum(lls)
        mean = total / len(lls)
        return {
            "log_likelihoods": lls,
            "total_log_likelihood": total,
            "sequence_score": mean,
            "perplexity": math.exp(-mean),
            "bits_per_base": -mean / math.log(2),
            "length": len(seq),
            "scored_from": 1,
        }

    # --- generate_sequence ----------------------------------------------------------------
    def plan(self, seq, options):
        total = options.get("total_length")
        if total is not None:
            total = integer(options, "total_length", None, len(seq), len(seq) + MAX_NEW)
            new = total - len(seq)
        else:
            new = integer(options, "length", 100, 0, MAX_NEW)
        if len(seq) + new > self.max_tokens:
            raise ModelError("SEQUENCE_TOO_LONG", "prompt + new bases = %d, over the config's max_seqlen %d" % (len(seq) + new, self.max_tokens))
        temperature = options.get("temperature", 1.0)
        if not isinstance(temperature, (int, float)) or isinstance(temperature, bool) or not 0.05 <= temperature <= 10:
            raise bad_request("option temperature must be a number from 0.05 to 10 (got %r)" % (temperature,))
        top_k = integer(options, "top_k", 4, 1, 4)
        seed = options.get("seed")
        seed = random.SystemRandom().randrange(MAX_SEED + 1) if seed is None else integer(options, "seed", 0, 0, MAX_SEED)
        chunk = integer(options, "chunk_size", 50, 1, MAX_NEW)
        return new, float(temperature), top_k, seed, chunk

    def generate(self, seq, options):
        """Yields (text chunk, None) while sampling, then (None, final output). Each step re-runs the
        whole prefix (no recurrent inference cache)."""
        if not seq:
            raise ModelError("INVALID_SEQUENCE", "generate_sequence needs a prompt of at least one base")
        new, temperature, top_k, seed, chunk = self.plan(seq, options)
        torch = self.torch
        rng = random.Random(seed)
        text = seq
        out, scores, pending = [], [], []
        ll = 0.0
        base_ids = torch.tensor(self.base_ids)
        for _ in range(new):
            last = self.logits(text)[-1]
            p_full = torch.softmax(last, dim=-1)
            logits4 = last[base_ids] / temperature
            keep = torch.topk(logits4, top_k).indices.tolist()
            weights = torch.softmax(logits4[keep], dim=-1).tolist()
            r = rng.random()
            b = keep[-1]
            for j, w in zip(keep, weights):
                r -= w
                if r < 0:
                    b = j
                    break
            base = BASES[b]
            text += base
            out.append(base)
            pending.append(base)
            prob = float(p_full[self.base_ids[b]])
            scores.append(prob)
            ll += math.log(prob)
            if len(pending) == chunk:
                yield "".join(pending), None
                pending = []
        if pending:
            yield "".join(pending), None
        continuation = "".join(out)
        yield None, {
            "generated_sequence": text,
            "sequence": text,
            "continuation": continuation,
            "prompt_length": len(seq),
            "length": len(text),
            "confidence_scores": scores,
            "log_likelihood": ll,
            "mean_log_likelihood": ll / new if new else None,
            "seed": seed,
            "temperature": temperature,
            "top_k": top_k,
        }

    # --- protocol -------------------------------------------------------------------------
    def one(self, item, task):
        options = item.get("options") or {}
        if not isinstance(options, dict):
            raise bad_request("options must be an object")
        seq = item["sequence"].upper()
        if task == "analyze":
            return self.analyze(seq, options)
        if task == "generate_sequence":
            final = None
            for _, done in self.generate(seq, options):
                final = done or final
            return final
        raise bad_request("unknown task %r" % task)

    def predict(self, batch, task):
        outputs = []
        for item in batch:
            try:
                outputs.append(self.one(item, task))
            except ModelError as exc:
                outputs.append(item_error(exc.code, exc.message))
        return outputs

    def stream(self, batch, task):
        if task != "generate_sequence":
            return self.predict(batch, task)
        finals = []
        for index, item in enumerate(batch):
            try:
                options = item.get("options") or {}
                if not isinstance(options, dict):
                    raise bad_request("options must be an object")
                for text, done in self.generate(item["sequence"].upper(), options):
                    if text is not None:
                        yield index, {"text": text}
                    else:
                        finals.append(done)
            except ModelError as exc:
                finals.append(item_error(exc.code, exc.message))
        return finals
