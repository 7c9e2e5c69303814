"""gc-scanner: exact sequence statistics, no machine learning.

gc_content  - base counts, GC fraction, GC skew, optional per-window GC fraction.
motif_scan  - IUPAC motif search on both strands.
"""
import re

from isomodel_worker import Model, ModelError, item_error

BASES = "ACGTU"
# IUPAC nucleotide codes and the concrete bases each one stands for (U is read as T).
IUPAC = {
    "A": "A", "C": "C", "G": "G", "T": "T", "U": "T",
    "R": "AG", "Y": "CT", "S": "CG", "W": "AT", "K": "GT", "M": "AC",
    "B": "CGT", "D": "AGT", "H": "ACT", "V": "ACG", "N": "ACGT",
}
COMPLEMENT = {"A": "T", "C": "G", "G": "C", "T": "A", "U": "A", "R": "Y", "Y": "R", "S": "S",
              "W": "W", "K": "M", "M": "K", "B": "V", "D": "H", "H": "D", "V": "B", "N": "N"}
DEFAULT_MOTIFS = ["TATAAT", "TTGACA"]  # E. coli sigma-70 promoter -10 and -35 boxes
MAX_MOTIFS = 100


def gc_fraction(counts):
    """(G+C) / (A+C+G+T+U); None when the region has no unambiguous base."""
    total = sum(counts[b] for b in BASES)
    return (counts["G"] + counts["C"]) / total if total else None


def count_bases(seq):
    counts = {b: seq.count(b) for b in BASES + "N"}
    counts["other"] = len(seq) - sum(counts.values())
    return counts


def gc_content(seq, options):
    counts = count_bases(seq)
    g, c = counts["G"], counts["C"]
    out = {
        "gc_content": gc_fraction(counts),
        "gc_skew": (g - c) / (g + c) if g + c else None,
        "length": len(seq),
        "counts": counts,
    }
    window = options.get("window")
    if window is not None:
        if not isinstance(window, int) or isinstance(window, bool) or window < 1:
            raise ModelError("INVALID_REQUEST", "option window must be a positive integer")
        # Non-overlapping windows; the last one may be shorter than `window`.
        out["windows"] = [gc_fraction(count_bases(seq[i:i + window])) for i in range(0, len(seq), window)]
    return out


def motif_pattern(motif):
    """A regex for one motif. A sequence letter matches a motif letter when every base it
    can stand for is allowed there, so a sequence N only matches a motif N."""
    classes = []
    for letter in motif:
        allowed = set(IUPAC[letter])
        classes.append("[" + "".join(sorted(l for l, b in IUPAC.items() if set(b) <= allowed)) + "]")
    return re.compile("(?=(" + "".join(classes) + "))")  # lookahead: overlapping hits


def parse_motifs(options):
    motifs = options.get("motifs", DEFAULT_MOTIFS)
    if not isinstance(motifs, list) or not motifs or len(motifs) > MAX_MOTIFS:
        raise ModelError("INVALID_REQUEST", "option motifs must be a list of 1..%d IUPAC strings" % MAX_MOTIFS)
    for m in motifs:
        if not isinstance(m, str) or not m or any(ch not in IUPAC for ch in m.upper()):
            raise ModelError("INVALID_REQUEST", "invalid motif %r: use IUPAC letters %s" % (m, "".join(IUPAC)))
    return motifs


def motif_scan(seq, options):
    matches = []
    for motif in parse_motifs(options):
        forward = motif.upper()
        reverse = "".join(COMPLEMENT[ch] for ch in reversed(forward))
        for strand, query in (("+", forward), ("-", reverse)):
            for hit in motif_pattern(query).finditer(seq):
                matches.append({"motif": motif, "start": hit.start(), "end": hit.start() + len(query),
                                "strand": strand})
    matches.sort(key=lambda m: (m["start"], m["strand"]))  # stable: motif order kept
    return {"matches": matches, "count": len(matches)}


TASKS = {"gc_content": gc_content, "motif_scan": motif_scan}


class GcScanner(Model):
    def predict(self, batch, task):
        run = TASKS.get(task)
        if run is None:
            raise ModelError("INVALID_REQUEST", "unknown task %r" % task)
        outputs = []
        for item in batch:
            try:
                outputs.append(run(item["sequence"].upper(), item.get("options") or {}))
            except ModelError as exc:
                outputs.append(item_error(exc.code, exc.message))
        return outputs
