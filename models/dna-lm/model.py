"""dna-lm: a tiny DNA language model (a k-th order Markov chain, trained by training/train_dna_lm.py).

generate_sequence - continues a DNA prompt by sampling one base at a time (streamed in chunks).
analyze           - per-position log-likelihoods of a DNA sequence and its score (mean per base).

P(base | context) = (n(context, base) + alpha) / (n(context) + 4 alpha), the context being the
up to k bases before it (fewer at the start, and after a letter that is not A/C/G/T). The counts
are data/model.json. Standard library only.
"""
import json
import math
import os
import random

from isomodel_worker import Model, ModelError, item_error

BASES = "ACGT"
INDEX = {b: i for i, b in enumerate(BASES)}
IUPAC = {
    "A": "A", "C": "C", "G": "G", "T": "T", "R": "AG", "Y": "CT", "S": "CG", "W": "AT", "K": "GT", "M": "AC",
    "B": "CGT", "D": "AGT", "H": "ACT", "V": "ACG", "N": "ACGT",
}
MAX_NEW = 10000
MAX_SEED = 2 ** 32 - 1


def bad_request(message):
    return ModelError("INVALID_REQUEST", message)


def integer(options, key, default, lo, hi):
    value = options.get(key, default)
    if value is None:
        return default
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not float(value).is_integer() or not lo <= value <= hi:
        raise bad_request("option %s must be an integer from %d to %d (got %r)" % (key, lo, hi, value))
    return int(value)


class MarkovLM:
    def __init__(self, data):
        if data.get("format") != "isomodel-dna-lm/1":
            raise ModelError("MODEL_NOT_LOADED", "data/model.json is not an isomodel-dna-lm/1 file")
        self.order = int(data["order"])
        self.alpha = float(data["alpha"])
        # probs[j][context] for contexts seen in training; an unseen context of length j gives 1/4
        # for each base (its counts are all 0), exactly what the smoothing formula says.
        self.probs = []
        for table in data["counts"]:
            rows = {}
            for ctx, row in table.items():
                total = sum(row) + 4 * self.alpha
                rows[ctx] = [(n + self.alpha) / total for n in row]
            self.probs.append(rows)
        self.uniform = [0.25] * 4

    def next_probs(self, context):
        j = min(len(context), self.order)
        ctx = context[len(context) - j:] if j else ""
        return self.probs[j].get(ctx, self.uniform)

    def analyze(self, seq):
        lls = []
        context = ""
        for ch in seq:
            p = self.next_probs(context)
            bases = IUPAC[ch]
            # an ambiguity letter scores the probability of the set it stands for, and the
            # context restarts after it (the model only knows concrete bases)
            lls.append(math.log(sum(p[INDEX[b]] for b in bases)))
            context = (context + ch)[-self.order:] if self.order and len(bases) == 1 else ""
        return lls


class DnaLM(Model):
    def setup(self, ctx):
        path = os.path.join(ctx.data_dir, "model.json")
        try:
            with open(path, encoding="ascii") as fh:
                self.lm = MarkovLM(json.load(fh))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError("MODEL_NOT_LOADED", "cannot read %s (train it with training/train_dna_lm.py): %s" % (path, exc))

    # --- analyze ------------------------------------------------------------------------
    def analyze(self, seq, options):
        lls = self.lm.analyze(seq)
        total = sum(lls)
        mean = total / len(lls)
        return {
            "log_likelihoods": lls,
            "total_log_likelihood": total,
            "sequence_score": mean,
            "perplexity": math.exp(-mean),
            "bits_per_base": -mean / math.log(2),
            "length": len(seq),
            "order": self.lm.order,
        }

    # --- generate_sequence --------------------------------------------------------------
    def plan(self, seq, options):
        total = options.get("total_length")
        if total is not None:
            total = integer(options, "total_length", None, len(seq), len(seq) + MAX_NEW)
            new = total - len(seq)
        else:
            new = integer(options, "length", 100, 0, MAX_NEW)
        temperature = options.get("temperature", 1.0)
        if not isinstance(temperature, (int, float)) or isinstance(temperature, bool) or not 0.05 <= temperature <= 10:
            raise bad_request("option temperature must be a number from 0.05 to 10 (got %r)" % (temperature,))
        seed = options.get("seed")
        seed = random.SystemRandom().randrange(MAX_SEED + 1) if seed is None else integer(options, "seed", 0, 0, MAX_SEED)
        chunk = integer(options, "chunk_size", 50, 1, MAX_NEW)
        return new, float(temperature), seed, chunk

    def generate(self, seq, options):
        """Yields (text chunk, None) while sampling, then (None, final output)."""
        new, temperature, seed, chunk = self.plan(seq, options)
        rng = random.Random(seed)
        context = ""
        for ch in seq:  # the prompt's context, as analyze reads it
            context = (context + ch)[-self.lm.order:] if self.lm.order and ch in INDEX else ""
        out = []
        scores = []
        ll = 0.0
        pending = []
        for _ in range(new):
            p = self.lm.next_probs(context)
            weights = [x ** (1.0 / temperature) for x in p]
            total = sum(weights)
            r = rng.random() * total
            b = 3
            for i, w in enumerate(weights):
                r -= w
                if r < 0:
                    b = i
                    break
            base = BASES[b]
            out.append(base)
            pending.append(base)
            scores.append(p[b])
            ll += math.log(p[b])
            context = (context + base)[-self.lm.order:] if self.lm.order else ""
            if len(pending) == chunk:
                yield "".join(pending), None
                pending = []
        if pending:
            yield "".join(pending), None
        continuation = "".join(out)
        full = seq + continuation
        yield None, {
            "generated_sequence": full,
            "sequence": full,
            "continuation": continuation,
            "prompt_length": len(seq),
            "length": len(full),
            "confidence_scores": scores,
            "log_likelihood": ll,
            "mean_log_likelihood": ll / new if new else None,
            "seed": seed,
            "temperature": temperature,
            "order": self.lm.order,
        }

    # --- protocol -----------------------------------------------------------------------
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
            return self.predict(batch, task)  # nothing to stream: the final outputs only
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
