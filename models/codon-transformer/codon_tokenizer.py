"""CodonTransformer's tokenizer, read from the checkpoint's tokenizer.json.

The published tokenizer (CodonTransformer's src/CodonTransformerTokenizer.json, also tokenizer.json
in HF adibvafa/CodonTransformer) is a `tokenizers` WordPiece model over 90 merged tokens:
[UNK] [CLS] [SEP] [PAD] [MASK] (ids 0-4), "<aa>_unk" for each amino acid and "__unk" for the stop
(5-25), and "<aa>_<codon>" for the 64 codons (26-89), all lower case; normalizer Lowercase;
pre-tokenizer Split(" ") + Whitespace; post-processor "[CLS] $A [SEP]".

Inference feeds it CodonData.get_merged_seq(protein, dna=""), e.g. "M_UNK K_UNK __UNK": each word is
lower-cased, and every such word (letters and "_" only) is one Whitespace piece that WordPiece finds
whole in the vocabulary. So encoding is a vocabulary lookup of "<residue>_unk" per residue, between
[CLS] and [SEP]; this module checks at load time that the file has that structure rather than
implementing the general tokenizers library.
"""
from __future__ import annotations

import json
import re
from typing import Dict, List

STANDARD_CODE = {}
_BASES = "TCAG"
_AMINO = "FFLLSSSSYY**CC*WLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG"
for _i, _a in enumerate(_AMINO):
    STANDARD_CODE[_BASES[_i // 16] + _BASES[(_i // 4) % 4] + _BASES[_i % 4]] = _a

AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
STOP = "_"  # CodonTransformer's STOP_SYMBOL
CODON_TOKEN = re.compile(r"^([a-z_])_([acgt]{3})$")


class TokenizerError(Exception):
    pass


class CodonTokenizer:
    def __init__(self, spec: dict):
        model = spec.get("model") if isinstance(spec, dict) else None
        if not isinstance(model, dict) or model.get("type") not in ("WordPiece", "WordLevel"):
            raise TokenizerError("tokenizer.json: expected a WordPiece (or WordLevel) model, as CodonTransformer's")
        vocab = model.get("vocab")
        if not isinstance(vocab, dict) or not all(isinstance(v, int) for v in vocab.values()):
            raise TokenizerError("tokenizer.json: model.vocab is not a {token: id} object")
        norm = json.dumps(spec.get("normalizer"))
        if "Lowercase" not in norm:
            raise TokenizerError("tokenizer.json: CodonTransformer's Lowercase normalizer is missing")
        self.vocab: Dict[str, int] = dict(vocab)
        for special in ("[CLS]", "[SEP]", "[PAD]", "[UNK]"):
            if special not in self.vocab:
                raise TokenizerError("tokenizer.json: special token %s is missing" % special)
        self.cls_id, self.sep_id = self.vocab["[CLS]"], self.vocab["[SEP]"]
        self.pad_id, self.unk_id = self.vocab["[PAD]"], self.vocab["[UNK]"]
        post = spec.get("post_processor") or {}
        single = post.get("single") if isinstance(post, dict) else None
        if single is not None:
            shape = [next(iter(p)) + ":" + str(p[next(iter(p))].get("id")) for p in single]
            if shape != ["SpecialToken:[CLS]", "Sequence:A", "SpecialToken:[SEP]"]:
                raise TokenizerError("tokenizer.json: post-processor is not [CLS] $A [SEP] (got %s)" % shape)
        # residue -> input token id ("m_unk"), residue -> [(codon, output token id)]
        self.input_ids: Dict[str, int] = {}
        self.codons: Dict[str, List[tuple]] = {}
        for residue in AMINO_ACIDS.lower() + STOP:
            token = residue + "_unk"
            if token not in self.vocab:
                raise TokenizerError("tokenizer.json: token %s is missing" % token)
            self.input_ids[residue.upper() if residue != STOP else STOP] = self.vocab[token]
        for token, tid in self.vocab.items():
            m = CODON_TOKEN.match(token)
            if not m:
                continue
            label, codon = m.group(1), m.group(2).upper()
            meaning = STANDARD_CODE[codon]
            expected = STOP if meaning == "*" else meaning.lower()
            if label != expected:
                # a table other than the standard code would make "translates back" meaningless
                raise TokenizerError("tokenizer.json: token %s pairs %s with %r; the standard code says %r"
                                     % (token, codon, label, expected))
            key = STOP if label == STOP else label.upper()
            self.codons.setdefault(key, []).append((codon, tid))
        for residue in list(AMINO_ACIDS) + [STOP]:
            if residue not in self.codons:
                raise TokenizerError("tokenizer.json: no codon token for %r" % residue)
        for residue in self.codons:
            self.codons[residue].sort(key=lambda ct: ct[1])

    @property
    def top_id(self) -> int:
        return max(self.vocab.values())

    def encode(self, residues: str) -> List[int]:
        """[CLS] <r>_unk ... __unk [SEP] for residues that already end with the stop symbol."""
        return [self.cls_id] + [self.input_ids[r] for r in residues] + [self.sep_id]


def load(path: str) -> CodonTokenizer:
    with open(path, "r", encoding="utf-8") as fh:
        return CodonTokenizer(json.load(fh))
