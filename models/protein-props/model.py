"""protein-props: physico-chemical protein properties, no machine learning.

Task property_prediction - molecular weight (average and monoisotopic), isoelectric point,
charge at a pH, GRAVY, instability index, aromaticity, molar extinction coefficients,
secondary structure fractions and amino acid composition.

Standard library only. The formulas, their order of operations and every constant are a
re-implementation of Biopython 1.80 (Bio.SeqUtils.ProtParam.ProteinAnalysis,
Bio.SeqUtils.IsoelectricPoint, Bio.SeqUtils.molecular_weight); the constant tables are
copied from Bio.Data.IUPACData and Bio.SeqUtils.ProtParamData. Biopython is
Copyright 1999-2022 the Biopython contributors (ProtParam, IsoelectricPoint: Copyright
2003 Yair Benita, revisions 2020 Tianyi Shi) and is distributed under your choice of the
"Biopython License Agreement" or the "BSD 3-Clause License". Results agree with Biopython
to floating-point round-off (see MODEL_CARD.md and test/model-protein-props.test.ts).

Letters (the gateway has already upper-cased and validated them against
ACDEFGHIKLMNPQRSTVWY + BZJXUO):
- the 20 standard amino acids: every property.
- U (selenocysteine), O (pyrrolysine): handled as Biopython does. They have masses, count
  towards the length, but are neither counted in the composition nor charged; GRAVY and the
  instability index are null when Biopython raises for them (it has no U/O entry in the
  Kyte-Doolittle or DIWV tables) and a `warnings` entry says why.
- B, Z, J, X (ambiguous / unknown): Biopython cannot compute a molecular weight for them, so
  the item fails with INVALID_SEQUENCE naming the first such letter and its 1-based position.
"""
import math

from isomodel_worker import Model, ModelError, item_error

TASK = "property_prediction"

# Bio.Data.IUPACData.protein_letters: the order of count_amino_acids() and of the composition.
PROTEIN_LETTERS = "ACDEFGHIKLMNPQRSTVWY"
AMBIGUOUS = {
    "B": "B (Asx: Asp or Asn)",
    "Z": "Z (Glx: Glu or Gln)",
    "J": "J (Xle: Leu or Ile)",
    "X": "X (any amino acid)",
}
NON_STANDARD_NAMES = {"U": "U (selenocysteine)", "O": "O (pyrrolysine)"}

# Bio.Data.IUPACData.protein_weights: average masses of the free amino acids (Da).
AVERAGE_WEIGHTS = {
    "A": 89.0932, "C": 121.1582, "D": 133.1027, "E": 147.1293, "F": 165.1891,
    "G": 75.0666, "H": 155.1546, "I": 131.1729, "K": 146.1876, "L": 131.1729,
    "M": 149.2113, "N": 132.1179, "O": 255.3134, "P": 115.1305, "Q": 146.1445,
    "R": 174.201, "S": 105.0926, "T": 119.1192, "U": 168.0532, "V": 117.1463,
    "W": 204.2252, "Y": 181.1885,
}
# Bio.Data.IUPACData.monoisotopic_protein_weights (Da).
MONOISOTOPIC_WEIGHTS = {
    "A": 89.047678, "C": 121.019749, "D": 133.037508, "E": 147.053158, "F": 165.078979,
    "G": 75.032028, "H": 155.069477, "I": 131.094629, "K": 146.105528, "L": 131.094629,
    "M": 149.051049, "N": 132.053492, "O": 255.158292, "P": 115.063329, "Q": 146.069142,
    "R": 174.111676, "S": 105.042593, "T": 119.058243, "U": 168.964203, "V": 117.078979,
    "W": 204.089878, "Y": 181.073893,
}
# Water lost per peptide bond, Bio.SeqUtils.molecular_weight.
AVERAGE_WATER = 18.0153
MONOISOTOPIC_WATER = 18.010565

# Bio.SeqUtils.ProtParamData.kd: Kyte & Doolittle hydropathy, J. Mol. Biol. 157:105-132 (1982).
KYTE_DOOLITTLE = {
    "A": 1.8, "C": 2.5, "D": -3.5, "E": -3.5, "F": 2.8, "G": -0.4, "H": -3.2,
    "I": 4.5, "K": -3.9, "L": 3.8, "M": 1.9, "N": -3.5, "P": -1.6, "Q": -3.5,
    "R": -4.5, "S": -0.8, "T": -0.7, "V": 4.2, "W": -0.9, "Y": -1.3,
}

# Bio.SeqUtils.ProtParamData.DIWV: dipeptide instability weight values, Guruprasad K.,
# Reddy B.V.B., Pandit M.W., Protein Engineering 4:155-161 (1990); DIWV[a][b] is the value
# of the dipeptide ab. Copied as-is, including Biopython's F->Y 33.601 and K->Q 24.64.
DIWV = {
    "A": {"A": 1.0, "C": 44.94, "D": -7.49, "E": 1.0, "F": 1.0, "G": 1.0, "H": -7.49, "I": 1.0, "K": 1.0, "L": 1.0,
          "M": 1.0, "N": 1.0, "P": 20.26, "Q": 1.0, "R": 1.0, "S": 1.0, "T": 1.0, "V": 1.0, "W": 1.0, "Y": 1.0},
    "C": {"A": 1.0, "C": 1.0, "D": 20.26, "E": 1.0, "F": 1.0, "G": 1.0, "H": 33.6, "I": 1.0, "K": 1.0, "L": 20.26,
          "M": 33.6, "N": 1.0, "P": 20.26, "Q": -6.54, "R": 1.0, "S": 1.0, "T": 33.6, "V": -6.54, "W": 24.68, "Y": 1.0},
    "D": {"A": 1.0, "C": 1.0, "D": 1.0, "E": 1.0, "F": -6.54, "G": 1.0, "H": 1.0, "I": 1.0, "K": -7.49, "L": 1.0,
          "M": 1.0, "N": 1.0, "P": 1.0, "Q": 1.0, "R": -6.54, "S": 20.26, "T": -14.03, "V": 1.0, "W": 1.0, "Y": 1.0},
    "E": {"A": 1.0, "C": 44.94, "D": 20.26, "E": 33.6, "F": 1.0, "G": 1.0, "H": -6.54, "I": 20.26, "K": 1.0, "L": 1.0,
          "M": 1.0, "N": 1.0, "P": 20.26, "Q": 20.26, "R": 1.0, "S": 20.26, "T": 1.0, "V": 1.0, "W": -14.03, "Y": 1.0},
    "F": {"A": 1.0, "C": 1.0, "D": 13.34, "E": 1.0, "F": 1.0, "G": 1.0, "H": 1.0, "I": 1.0, "K": -14.03, "L": 1.0,
          "M": 1.0, "N": 1.0, "P": 20.26, "Q": 1.0, "R": 1.0, "S": 1.0, "T": 1.0, "V": 1.0, "W": 1.0, "Y": 33.601},
    "G": {"A": -7.49, "C": 1.0, "D": 1.0, "E": -6.54, "F": 1.0, "G": 13.34, "H": 1.0, "I": -7.49, "K": -7.49, "L": 1.0,
          "M": 1.0, "N": -7.49, "P": 1.0, "Q": 1.0, "R": 1.0, "S": 1.0, "T": -7.49, "V": 1.0, "W": 13.34, "Y": -7.49},
    "H": {"A": 1.0, "C": 1.0, "D": 1.0, "E": 1.0, "F": -9.37, "G": -9.37, "H": 1.0, "I": 44.94, "K": 24.68, "L": 1.0,
          "M": 1.0, "N": 24.68, "P": -1.88, "Q": 1.0, "R": 1.0, "S": 1.0, "T": -6.54, "V": 1.0, "W": -1.88, "Y": 44.94},
    "I": {"A": 1.0, "C": 1.0, "D": 1.0, "E": 44.94, "F": 1.0, "G": 1.0, "H": 13.34, "I": 1.0, "K": -7.49, "L": 20.26,
          "M": 1.0, "N": 1.0, "P": -1.88, "Q": 1.0, "R": 1.0, "S": 1.0, "T": 1.0, "V": -7.49, "W": 1.0, "Y": 1.0},
    "K": {"A": 1.0, "C": 1.0, "D": 1.0, "E": 1.0, "F": 1.0, "G": -7.49, "H": 1.0, "I": -7.49, "K": 1.0, "L": -7.49,
          "M": 33.6, "N": 1.0, "P": -6.54, "Q": 24.64, "R": 33.6, "S": 1.0, "T": 1.0, "V": -7.49, "W": 1.0, "Y": 1.0},
    "L": {"A": 1.0, "C": 1.0, "D": 1.0, "E": 1.0, "F": 1.0, "G": 1.0, "H": 1.0, "I": 1.0, "K": -7.49, "L": 1.0,
          "M": 1.0, "N": 1.0, "P": 20.26, "Q": 33.6, "R": 20.26, "S": 1.0, "T": 1.0, "V": 1.0, "W": 24.68, "Y": 1.0},
    "M": {"A": 13.34, "C": 1.0, "D": 1.0, "E": 1.0, "F": 1.0, "G": 1.0, "H": 58.28, "I": 1.0, "K": 1.0, "L": 1.0,
          "M": -1.88, "N": 1.0, "P": 44.94, "Q": -6.54, "R": -6.54, "S": 44.94, "T": -1.88, "V": 1.0, "W": 1.0, "Y": 24.68},
    "N": {"A": 1.0, "C": -1.88, "D": 1.0, "E": 1.0, "F": -14.03, "G": -14.03, "H": 1.0, "I": 44.94, "K": 24.68, "L": 1.0,
          "M": 1.0, "N": 1.0, "P": -1.88, "Q": -6.54, "R": 1.0, "S": 1.0, "T": -7.49, "V": 1.0, "W": -9.37, "Y": 1.0},
    "P": {"A": 20.26, "C": -6.54, "D": -6.54, "E": 18.38, "F": 20.26, "G": 1.0, "H": 1.0, "I": 1.0, "K": 1.0, "L": 1.0,
          "M": -6.54, "N": 1.0, "P": 20.26, "Q": 20.26, "R": -6.54, "S": 20.26, "T": 1.0, "V": 20.26, "W": -1.88, "Y": 1.0},
    "Q": {"A": 1.0, "C": -6.54, "D": 20.26, "E": 20.26, "F": -6.54, "G": 1.0, "H": 1.0, "I": 1.0, "K": 1.0, "L": 1.0,
          "M": 1.0, "N": 1.0, "P": 20.26, "Q": 20.26, "R": 1.0, "S": 44.94, "T": 1.0, "V": -6.54, "W": 1.0, "Y": -6.54},
    "R": {"A": 1.0, "C": 1.0, "D": 1.0, "E": 1.0, "F": 1.0, "G": -7.49, "H": 20.26, "I": 1.0, "K": 1.0, "L": 1.0,
          "M": 1.0, "N": 13.34, "P": 20.26, "Q": 20.26, "R": 58.28, "S": 44.94, "T": 1.0, "V": 1.0, "W": 58.28, "Y": -6.54},
    "S": {"A": 1.0, "C": 33.6, "D": 1.0, "E": 20.26, "F": 1.0, "G": 1.0, "H": 1.0, "I": 1.0, "K": 1.0, "L": 1.0,
          "M": 1.0, "N": 1.0, "P": 44.94, "Q": 20.26, "R": 20.26, "S": 20.26, "T": 1.0, "V": 1.0, "W": 1.0, "Y": 1.0},
    "T": {"A": 1.0, "C": 1.0, "D": 1.0, "E": 20.26, "F": 13.34, "G": -7.49, "H": 1.0, "I": 1.0, "K": 1.0, "L": 1.0,
          "M": 1.0, "N": -14.03, "P": 1.0, "Q": -6.54, "R": 1.0, "S": 1.0, "T": 1.0, "V": 1.0, "W": -14.03, "Y": 1.0},
    "V": {"A": 1.0, "C": 1.0, "D": -14.03, "E": 1.0, "F": 1.0, "G": -7.49, "H": 1.0, "I": 1.0, "K": -1.88, "L": 1.0,
          "M": 1.0, "N": 1.0, "P": 20.26, "Q": 1.0, "R": 1.0, "S": 1.0, "T": -7.49, "V": 1.0, "W": 1.0, "Y": -6.54},
    "W": {"A": -14.03, "C": 1.0, "D": 1.0, "E": 1.0, "F": 1.0, "G": -9.37, "H": 24.68, "I": 1.0, "K": 1.0, "L": 13.34,
          "M": 24.68, "N": 13.34, "P": 1.0, "Q": 1.0, "R": 1.0, "S": 1.0, "T": -14.03, "V": -7.49, "W": 1.0, "Y": 1.0},
    "Y": {"A": 24.68, "C": 1.0, "D": 24.68, "E": -6.54, "F": 1.0, "G": -7.49, "H": 13.34, "I": 1.0, "K": 1.0, "L": 1.0,
          "M": 44.94, "N": 1.0, "P": 13.34, "Q": 1.0, "R": -15.91, "S": 1.0, "T": -7.49, "V": 1.0, "W": -9.37, "Y": 13.34},
}

# Bio.SeqUtils.IsoelectricPoint: the Bjellqvist pK set (Electrophoresis 1993, 14, 1023-1031;
# 1994, 15, 529-539). Dict order matters for bit-identical sums: it is Biopython's order.
POSITIVE_PKS = {"Nterm": 7.5, "K": 10.0, "R": 12.0, "H": 5.98}
NEGATIVE_PKS = {"Cterm": 3.55, "D": 4.05, "E": 4.45, "C": 9.0, "Y": 10.0}
PK_C_TERMINAL = {"D": 4.55, "E": 4.75}
PK_N_TERMINAL = {"A": 7.59, "M": 7.0, "S": 6.93, "P": 8.36, "T": 6.82, "V": 7.44, "E": 7.7}
CHARGED_AAS = ("K", "R", "H", "D", "E", "C", "Y")

# ProteinAnalysis.molar_extinction_coefficient (M^-1 cm^-1 at 280 nm, in water).
EXT_W, EXT_Y, EXT_CYSTINE = 5500, 1490, 125

DEFAULT_PH = 7.0


def count_amino_acids(seq):
    """ProteinAnalysis.count_amino_acids: the 20 standard letters only (U, O not counted)."""
    return {aa: seq.count(aa) for aa in PROTEIN_LETTERS}


def molecular_weight(seq, monoisotopic):
    """Bio.SeqUtils.molecular_weight(seq, "protein", monoisotopic=...): the sum of the free
    amino acids minus one water per peptide bond."""
    table = MONOISOTOPIC_WEIGHTS if monoisotopic else AVERAGE_WEIGHTS
    water = MONOISOTOPIC_WATER if monoisotopic else AVERAGE_WATER
    return sum(table[x] for x in seq) - (len(seq) - 1) * water


class _Charge:
    """Bio.SeqUtils.IsoelectricPoint.IsoelectricPoint, same arithmetic."""

    def __init__(self, seq, counts):
        self.content = {aa: float(counts[aa]) for aa in CHARGED_AAS}
        self.content["Nterm"] = 1.0
        self.content["Cterm"] = 1.0
        self.pos_pks = dict(POSITIVE_PKS)
        self.neg_pks = dict(NEGATIVE_PKS)
        if seq[0] in PK_N_TERMINAL:
            self.pos_pks["Nterm"] = PK_N_TERMINAL[seq[0]]
        if seq[-1] in PK_C_TERMINAL:
            self.neg_pks["Cterm"] = PK_C_TERMINAL[seq[-1]]

    def at(self, ph):
        # Henderson-Hasselbalch: partial charge 1 / (1 + 10^(pH - pK)) for bases,
        # 1 / (1 + 10^(pK - pH)) for acids.
        positive = 0.0
        for aa, pk in self.pos_pks.items():
            positive += self.content[aa] * (1.0 / (10 ** (ph - pk) + 1.0))
        negative = 0.0
        for aa, pk in self.neg_pks.items():
            negative += self.content[aa] * (1.0 / (10 ** (pk - ph) + 1.0))
        return positive - negative

    def isoelectric_point(self):
        """IsoelectricPoint.pi(): bisection from pH 7.775 on [4.05, 12] until the interval
        is at most 0.0001 wide (Biopython recurses; this loop takes the same steps)."""
        ph, lo, hi = 7.775, 4.05, 12
        while hi - lo > 0.0001:
            if self.at(ph) > 0.0:
                lo = ph
            else:
                hi = ph
            ph = (lo + hi) / 2
        return ph


def properties(seq, ph):
    length = len(seq)
    counts = count_amino_acids(seq)
    # get_amino_acids_percent (Biopython 1.80): fractions, count / full length.
    percent = {aa: count / length for aa, count in counts.items()}
    charge = _Charge(seq, counts)
    warnings = []

    # gravy(): Kyte-Doolittle mean; Biopython raises KeyError on U / O.
    try:
        gravy = sum(KYTE_DOOLITTLE[aa] for aa in seq) / length
    except KeyError as exc:
        gravy = None
        warnings.append("gravy is null: the Kyte-Doolittle scale has no value for %s" % NON_STANDARD_NAMES[exc.args[0]])

    # instability_index(): (10 / L) * sum of DIWV over the L - 1 dipeptides; Biopython raises
    # KeyError on a dipeptide with U / O (so a single U or O residue still gives 0.0).
    try:
        score = 0.0
        for i in range(length - 1):
            score += DIWV[seq[i]][seq[i + 1]]
        instability = (10.0 / length) * score
    except KeyError as exc:
        instability = None
        warnings.append("instability_index is null: the DIWV table has no dipeptide value for %s"
                        % NON_STANDARD_NAMES[exc.args[0]])

    reduced = counts["W"] * EXT_W + counts["Y"] * EXT_Y
    out = {
        "molecular_weight": molecular_weight(seq, monoisotopic=False),
        "monoisotopic_molecular_weight": molecular_weight(seq, monoisotopic=True),
        "isoelectric_point": charge.isoelectric_point(),
        "charge_at_ph": charge.at(ph),
        "ph": ph,
        "gravy": gravy,
        "instability_index": instability,
        "aromaticity": sum(percent[aa] for aa in "YWF"),
        "extinction_coefficients": {"reduced": reduced, "oxidized": reduced + (counts["C"] // 2) * EXT_CYSTINE},
        "secondary_structure_fraction": {
            "helix": sum(percent[r] for r in "VIYFWL"),
            "turn": sum(percent[r] for r in "NPGS"),
            "sheet": sum(percent[r] for r in "EMAL"),
        },
        "amino_acid_percent": percent,
        "length": length,
    }
    if warnings:
        out["warnings"] = warnings
    return out


def parse_ph(options):
    ph = options.get("ph", DEFAULT_PH)
    if isinstance(ph, bool) or not isinstance(ph, (int, float)) or not math.isfinite(ph) or not 0 <= ph <= 14:
        raise ModelError("INVALID_REQUEST", "option ph must be a number from 0 to 14 (got %r)" % (ph,))
    return float(ph)


def check_letters(seq):
    if not seq:
        raise ModelError("INVALID_SEQUENCE", "sequence is empty")
    for i, ch in enumerate(seq):
        if ch in AMBIGUOUS:
            raise ModelError("INVALID_SEQUENCE", "ambiguous residue %s at position %d: protein-props needs "
                             "unambiguous residues (the 20 standard amino acids, U or O) to compute a molecular "
                             "weight" % (AMBIGUOUS[ch], i + 1))
        if ch not in AVERAGE_WEIGHTS:
            raise ModelError("INVALID_SEQUENCE", "invalid residue %r at position %d" % (ch, i + 1))


class ProteinProps(Model):
    def predict(self, batch, task):
        if task != TASK:
            raise ModelError("INVALID_REQUEST", "unknown task %r; protein-props has %s" % (task, TASK))
        outputs = []
        for item in batch:
            try:
                seq = item["sequence"].upper()
                check_letters(seq)
                outputs.append(properties(seq, parse_ph(item.get("options") or {})))
            except ModelError as exc:
                outputs.append(item_error(exc.code, exc.message))
        return outputs
