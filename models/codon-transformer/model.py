"""codon-transformer: CodonTransformer (Fallahpour et al. 2024) served from weights mounted on disk.

optimize - protein + organism -> codon-optimised DNA. The protein becomes CodonTransformer's
           merged tokens "<aa>_UNK ... __UNK" (the stop included), the organism its token_type_ids,
           BigBirdForMaskedLM predicts every position at once, and each position takes the most
           likely codon token among those of its residue (or samples among them).

Weights are never downloaded here: setup() fails with MODEL_NOT_LOADED unless config.json,
tokenizer.json and model.safetensors (or pytorch_model.bin) are in CODON_TRANSFORMER_MODEL_PATH;
`isomodel pull --for codon-transformer` fetches them. See MODEL_CARD.md.
"""
import json
import math
import os
import sys
import time

from isomodel_worker import Model, ModelError, item_error

DEFAULT_MODEL_PATH = "/data/models/CodonTransformer"
DEFAULT_ORGANISM = "Escherichia coli general"
# CodonTransformer's MAX_LEN: 2048 tokens with [CLS] and [SEP], so 2046 residues with the stop.
MAX_TOKENS = 2048
# CodonData.preprocess_protein_sequence (AMBIGUOUS_AMINOACID_MAP)
AMBIGUOUS = {"B": "N", "Z": "Q", "X": "A", "J": "L", "U": "C", "O": "K"}
MAX_SEED = 2 ** 32 - 1


def _log(text):
    print("[codon-transformer] " + text, file=sys.stderr, flush=True)


def bad_request(message):
    return ModelError("INVALID_REQUEST", message)


def _number(options, key, default, lo, hi, lo_open=False):
    value = options.get(key, default)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value) \
            or value > hi or value < lo or (lo_open and value == lo):
        raise bad_request("option %s must be a number in %s%g, %g] (got %r)" % (key, "(" if lo_open else "[", lo, hi, value))
    return float(value)


class Organisms:
    """CodonTransformer's ORGANISM2ID (164 organisms; the id is the token type), plus short aliases."""

    def __init__(self, doc):
        self.by_name = {str(k): int(v) for k, v in doc["organism2id"].items()}
        self.by_id = {v: k for k, v in self.by_name.items()}
        self.by_lower = {k.lower(): v for k, v in self.by_name.items()}
        for alias, name in (doc.get("aliases") or {}).items():
            if name in self.by_name:
                self.by_lower.setdefault(alias.lower(), self.by_name[name])

    def resolve(self, value):
        """(id, name) for a name (any case), an alias, or an id (integer or digits)."""
        if isinstance(value, bool) or value is None:
            raise bad_request("option organism must be an organism name or id")
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        if isinstance(value, int):
            if value not in self.by_id:
                raise bad_request("organism id %d is not one of CodonTransformer's (0-%d)" % (value, max(self.by_id)))
            return value, self.by_id[value]
        if not isinstance(value, str) or len(value) > 200:
            raise bad_request("option organism must be an organism name or id")
        oid = self.by_lower.get(value.strip().lower())
        if oid is None:
            raise bad_request("unknown organism %r: use one of CodonTransformer's 164 organism names (e.g. "
                              "\"Escherichia coli general\", \"Homo sapiens\", \"Saccharomyces cerevisiae\"), an id "
                              "0-%d, or human / mouse / yeast / ecoli" % (value[:80], max(self.by_id)))
        return oid, self.by_id[oid]


class CodonTransformerModel(Model):
    def setup(self, ctx):
        env = ctx.env
        path = env.get("CODON_TRANSFORMER_MODEL_PATH") or DEFAULT_MODEL_PATH
        self.path = path
        config_file = os.path.join(path, "config.json")
        tokenizer_file = os.path.join(path, "tokenizer.json")
        weights = [os.path.join(path, f) for f in ("model.safetensors", "pytorch_model.bin")]
        missing = [os.path.basename(f) for f in (config_file, tokenizer_file) if not os.path.isfile(f)]
        if not any(os.path.isfile(f) for f in weights):
            missing.append("model.safetensors or pytorch_model.bin")
        if missing:
            where = "folder does not exist" if not os.path.isdir(path) else "missing: " + ", ".join(missing)
            raise ModelError("MODEL_NOT_LOADED", "CodonTransformer weights not found: put config.json, tokenizer.json "
                             "and model.safetensors (or pytorch_model.bin) of adibvafa/CodonTransformer in %s (set "
                             "CODON_TRANSFORMER_MODEL_PATH), or fetch them: isomodel pull --for codon-transformer [%s]"
                             % (path, where))
        try:
            import torch
        except ImportError as exc:
            raise ModelError("MODEL_NOT_LOADED", "PyTorch is not importable by %s (%s): install it with "
                             "`apt-get install python3-torch`" % (sys.executable, exc))
        self.torch = torch
        threads = env.get("CODON_TRANSFORMER_TORCH_THREADS")
        if threads and threads.isdigit() and int(threads) > 0:
            torch.set_num_threads(int(threads))
        import bigbird_arch as arch
        import codon_tokenizer as tok

        t0 = time.time()
        organisms_file = os.path.join(path, "organism2id.json")
        if not os.path.isfile(organisms_file):
            organisms_file = os.path.join(ctx.data_dir, "organisms.json")
        try:
            self.config = arch.BigBirdConfig.from_file(config_file)
            self.tokenizer = tok.load(tokenizer_file)
            with open(organisms_file, encoding="utf-8") as fh:
                doc = json.load(fh)
            if "organism2id" not in doc:  # a bare {name: id} file in the checkpoint folder
                doc = {"organism2id": doc}
            self.organisms = Organisms(doc)
            self.model, weights_file = arch.load_checkpoint(path, self.config)
        except Exception as exc:  # a bad file of any kind: say which folder, keep the reason
            raise ModelError("MODEL_NOT_LOADED", "cannot load CodonTransformer from %s: %s: %s" % (path, type(exc).__name__, exc))
        if self.tokenizer.top_id >= self.config.vocab_size:
            raise ModelError("MODEL_NOT_LOADED", "tokenizer.json has token id %d but config.json vocab_size is %d"
                             % (self.tokenizer.top_id, self.config.vocab_size))
        top_org = max(self.organisms.by_id)
        if top_org >= self.config.type_vocab_size:
            raise ModelError("MODEL_NOT_LOADED", "organism ids go up to %d but config.json type_vocab_size is %d (%s)"
                             % (top_org, self.config.type_vocab_size, organisms_file))
        self.max_tokens = min(MAX_TOKENS, self.config.max_position_embeddings)
        _log("loaded %s (%d layers, hidden %d, %d heads, vocab %d, %d organisms) in %.1fs; full attention, "
             "at most %d tokens; torch %s with %d threads"
             % (weights_file, self.config.num_hidden_layers, self.config.hidden_size, self.config.num_attention_heads,
                self.config.vocab_size, len(self.organisms.by_id), time.time() - t0, self.max_tokens,
                torch.__version__, torch.get_num_threads()))

    # --- one item: validation and decoding plan -----------------------------------------------
    def plan(self, item):
        options = item.get("options") or {}
        if not isinstance(options, dict):
            raise bad_request("options must be an object")
        raw = item["sequence"].upper()
        if raw.endswith("*"):
            raw = raw[:-1]
        protein = "".join(AMBIGUOUS.get(c, c) for c in raw)
        bad = [c for c in protein if c not in self.tokenizer.input_ids or c == "_"]
        if bad:
            raise ModelError("INVALID_SEQUENCE", "protein has %r, which is not an amino-acid letter" % bad[0])
        if not protein:
            raise ModelError("INVALID_SEQUENCE", "protein is empty")
        residues = protein + "_"
        if len(residues) + 2 > self.max_tokens:
            raise ModelError("SEQUENCE_TOO_LONG", "protein of %d residues needs %d tokens with the stop, [CLS] and [SEP]; "
                             "CodonTransformer takes at most %d (%d residues)"
                             % (len(protein), len(residues) + 2, self.max_tokens, self.max_tokens - 3))
        oid, name = self.organisms.resolve(options.get("organism", DEFAULT_ORGANISM))
        deterministic = options.get("deterministic", True)
        if not isinstance(deterministic, bool):
            raise bad_request("option deterministic must be true or false")
        temperature = _number(options, "temperature", 0.2, 0.0, 10.0, lo_open=True)
        top_p = _number(options, "top_p", 0.95, 0.0, 1.0, lo_open=True)
        seed = options.get("seed")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed <= MAX_SEED):
            raise bad_request("option seed must be an integer from 0 to %d" % MAX_SEED)
        if not deterministic and seed is None:
            seed = int.from_bytes(os.urandom(4), "little")
        return {"protein": protein, "residues": residues, "organism_id": oid, "organism": name,
                "substituted": sum(1 for a, b in zip(raw, protein) if a != b), "deterministic": deterministic,
                "temperature": temperature, "top_p": top_p, "seed": seed,
                "ids": self.tokenizer.encode(residues)}

    def choose(self, logits, plan):
        """Per residue, the codon token with the highest logit among the residue's codons, or a
        sample among them (temperature, then nucleus top_p, as CodonPrediction.sample_non_deterministic)."""
        torch = self.torch
        log_probs = torch.log_softmax(logits, dim=-1)
        gen = None
        if not plan["deterministic"]:
            gen = torch.Generator().manual_seed(plan["seed"])
        codons, scores, lls = [], [], []
        for pos, residue in enumerate(plan["residues"], start=1):  # position 0 is [CLS]
            options = self.tokenizer.codons[residue]
            ids = torch.tensor([tid for _, tid in options])
            sub = logits[pos, ids]
            probs = torch.softmax(sub, dim=-1)
            if plan["deterministic"]:
                pick = int(torch.argmax(sub))
            else:
                p = torch.softmax(sub / plan["temperature"], dim=-1)
                order = torch.argsort(p, descending=True)
                cum = torch.cumsum(p[order], dim=0)
                cut = int((cum > plan["top_p"]).nonzero()[0]) if bool((cum > plan["top_p"]).any()) else len(order) - 1
                keep = order[:cut + 1]
                kp = p[keep] / p[keep].sum()
                pick = int(keep[int(torch.multinomial(kp, 1, generator=gen))])
            codons.append(options[pick][0])
            scores.append(float(probs[pick]))
            lls.append(float(log_probs[pos, options[pick][1]]))
        return codons, scores, lls

    def predict(self, batch, task):
        if task != "optimize":
            raise bad_request("unknown task %r" % task)
        torch = self.torch
        outputs = [None] * len(batch)
        plans, rows = [], []
        for i, item in enumerate(batch):
            try:
                plans.append(self.plan(item))
                rows.append(i)
            except ModelError as exc:
                outputs[i] = item_error(exc.code, exc.message)
        if not plans:
            return outputs
        longest = max(len(p["ids"]) for p in plans)
        ids = torch.full((len(plans), longest), self.tokenizer.pad_id, dtype=torch.long)
        types = torch.zeros((len(plans), longest), dtype=torch.long)
        mask = torch.zeros((len(plans), longest), dtype=torch.long)
        for r, p in enumerate(plans):
            n = len(p["ids"])
            ids[r, :n] = torch.tensor(p["ids"], dtype=torch.long)
            types[r, :] = p["organism_id"]  # CodonPrediction.tokenize: the organism on every position
            mask[r, :n] = 1
        with torch.no_grad():
            logits = self.model(ids, types, mask)
        for r, (i, p) in enumerate(zip(rows, plans)):
            codons, scores, lls = self.choose(logits[r], p)
            dna = "".join(codons)
            out = {
                "sequence": dna,
                "protein": p["protein"] + "*",
                "organism": p["organism"],
                "organism_id": p["organism_id"],
                "length": len(dna),
                "codons": len(codons),
                "confidence_scores": scores,
                "log_likelihood": sum(lls),
                "mean_log_likelihood": sum(lls) / len(lls),
                "decoding": "argmax" if p["deterministic"] else "sampling",
                "substituted_residues": p["substituted"],
                "num_tokens": len(p["ids"]),
                "attention": "original_full",
            }
            if not p["deterministic"]:
                out.update({"seed": p["seed"], "temperature": p["temperature"], "top_p": p["top_p"]})
            outputs[i] = out
        return outputs
