"""codon: codon usage statistics and codon optimisation (standard genetic code, no ML).

codon_adaptation_index - CAI (Sharp & Li 1987) against an EMBOSS/CUTG codon usage table,
                         by default computed as EMBOSS 6.6.0 `cai` does (codons with an
                         ambiguity letter left out and counted, never read as a real codon).
gc_content             - GC overall and at codon positions 1, 2, 3 (as Biopython GC123).
codon_usage            - codon counts, per-thousand frequencies and synonymous fractions
                         (the columns of EMBOSS `cusp`), plus RSCU.
codon_optimize         - a coding sequence for a protein with the highest CAI, optionally
                         free of given motifs and of long homopolymers (exact, by dynamic
                         programming over an Aho-Corasick automaton).

Standard library only. The codon tables are read in setup() from data/<organism>.json
(converted once from EMBOSS by tools/convert_emboss_tables.py).
"""
import itertools
import json
import math
import os
from collections import deque

from isomodel_worker import Model, ModelError, item_error

ORGANISMS = ("ecoli", "human", "yeast")
DEFAULT_ORGANISM = "ecoli"
METHODS = ("emboss", "sharp_li")
DEFAULT_METHOD = "emboss"

# Standard genetic code (NCBI table 1), codons in TCAG order.
_BASES = "TCAG"
_CODE = "FFLLSSSSYY**CC*WLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG"
GENETIC_CODE = {a + b + c: _CODE[16 * i + 4 * j + k]
                for i, a in enumerate(_BASES) for j, b in enumerate(_BASES) for k, c in enumerate(_BASES)}
STOP = "*"
SINGLE_CODON = ("ATG", "TGG")  # Met and Trp: w is always 1
AMINO_ACIDS = "ACDEFGHIKLMNPQRSTVWY"
# Codons in EMBOSS cusp order: by one-letter amino acid, stops last, then alphabetically.
CODON_ORDER = sorted(GENETIC_CODE, key=lambda c: (GENETIC_CODE[c] == STOP, GENETIC_CODE[c], c))
SYNONYMS = {}
for _codon in CODON_ORDER:
    SYNONYMS.setdefault(GENETIC_CODE[_codon], []).append(_codon)

IUPAC = {
    "A": "A", "C": "C", "G": "G", "T": "T", "U": "T",
    "R": "AG", "Y": "CT", "S": "CG", "W": "AT", "K": "GT", "M": "AC",
    "B": "CGT", "D": "AGT", "H": "ACT", "V": "ACG", "N": "ACGT",
}
DNA_LETTERS = frozenset(IUPAC) - {"U"}  # what the gateway accepts as DNA
COMPLEMENT = {"A": "T", "C": "G", "G": "C", "T": "A"}
# A codon with an ambiguity letter (NNN, GCN, RAY, ...) is never read as a concrete codon: EMBOSS
# 6.6 cai / cusp read each code as the first base it stands for (NNN -> AAA, so an all-N sequence
# would score CAI 1 and count Lys); here such codons are left out of every count and reported.
AMBIGUOUS_HANDLING = ("skip",)

MAX_AVOID_MOTIFS = 50
MAX_MOTIF_LENGTH = 32
MAX_EXPANDED_PATTERNS = 1024  # concrete sequences one IUPAC motif may stand for (SfiI GGCCNNNNNGGCC: 1024)
MAX_PATTERN_LETTERS = 40000  # all concrete forbidden strings together: bounds the automaton
AUTOMATON_CACHE_SIZE = 8
MAX_HOMOPOLYMER_LIMIT = 100


def bad_request(message):
    return ModelError("INVALID_REQUEST", message)


def bad_sequence(message):
    return ModelError("INVALID_SEQUENCE", message)


def is_concrete(codon):
    return codon in GENETIC_CODE


class CodonTable:
    """One organism's EMBOSS codon usage table and the relative adaptiveness derived from it."""

    def __init__(self, organism, data):
        codons = data.get("codons") or {}
        if set(codons) != set(GENETIC_CODE):
            raise ModelError("MODEL_NOT_LOADED", "%s table must list the 64 codons" % organism)
        for codon, row in codons.items():
            if row.get("amino_acid") != GENETIC_CODE[codon]:
                raise ModelError("MODEL_NOT_LOADED", "%s table: %s is not %s in the standard code"
                                 % (organism, codon, row.get("amino_acid")))
        self.organism = organism
        self.species = data.get("species")
        source = data.get("source") or {}
        self.reference = "%s (EMBOSS %s, %s, %s)" % (source.get("file"), source.get("emboss_version"),
                                                     source.get("release"), self.species)
        per_thousand = {c: float(codons[c]["per_thousand"]) for c in GENETIC_CODE}
        counts = {c: int(codons[c]["count"]) for c in GENETIC_CODE}
        # EMBOSS (codGetWstat): w = frequency per thousand / the largest one among the codons
        # of the same amino acid (stops form one group); 0 if that largest one is 0.
        self.w_emboss = {}
        # Sharp & Li: w from the counts; a codon absent from the reference set counts 0.5.
        self.w_counts = {}
        for group in SYNONYMS.values():
            top = max(per_thousand[c] for c in group)
            for c in group:
                self.w_emboss[c] = per_thousand[c] / top if top > 0 else 0.0
            adjusted = {c: counts[c] if counts[c] > 0 else 0.5 for c in group}
            top_count = max(adjusted.values())
            for c in group:
                self.w_counts[c] = adjusted[c] / top_count

    def weights(self, method):
        return self.w_emboss if method == "emboss" else self.w_counts


# --- option parsing -------------------------------------------------------------------
def choice(options, key, allowed, default):
    value = options.get(key, default)
    if value is None:
        value = default
    if not isinstance(value, str) or value.lower() not in allowed:
        raise bad_request("option %s must be one of %s (got %r)" % (key, ", ".join(allowed), value))
    return value.lower()


def boolean(options, key, default):
    value = options.get(key, default)
    if not isinstance(value, bool):
        raise bad_request("option %s must be true or false" % key)
    return value


# --- sequence helpers -----------------------------------------------------------------
def codons_of(seq):
    return [seq[i:i + 3] for i in range(0, len(seq) - len(seq) % 3, 3)]


def reverse_complement(seq):
    return "".join(COMPLEMENT[ch] for ch in reversed(seq))


# --- tasks ----------------------------------------------------------------------------
def compute_cai(seq, table, method):
    """CAI and the bookkeeping of which codons entered the geometric mean."""
    w = table.weights(method)
    codons = codons_of(seq)
    log_sum = 0.0
    used = 0
    ambiguous = 0
    zero_weight = 0
    skipped = {"stop": 0, "single_codon": 0, "ambiguous": 0}
    for codon in codons:
        if not is_concrete(codon):
            # both methods: an ambiguous codon says nothing about codon choice
            ambiguous += 1
            skipped["ambiguous"] += 1
            continue
        if method == "emboss":
            # EMBOSS ajCodCalcCaiSeq: every complete codon is in the denominator (stops,
            # ATG and TGG included); a codon whose w is 0 adds nothing to the log sum (as if
            # its w were 1).
            wi = w[codon]
            used += 1
            if wi > 0.0:
                log_sum += math.log(wi)
            else:
                zero_weight += 1
            continue
        if GENETIC_CODE[codon] == STOP:
            skipped["stop"] += 1
        elif codon in SINGLE_CODON:
            skipped["single_codon"] += 1
        else:
            log_sum += math.log(w[codon])
            used += 1
    return {
        "cai": math.exp(log_sum / used) if used else None,
        "organism": table.organism,
        "method": method,
        "codons_used": used,
        "codons_skipped": sum(skipped.values()),
        "skipped_by_reason": skipped,
        "ambiguous_codons": ambiguous,
        "zero_weight_codons": zero_weight,
        "trailing_bases": len(seq) % 3,
        "reference": table.reference,
    }


def task_cai(seq, options, tables):
    organism = choice(options, "organism", ORGANISMS, DEFAULT_ORGANISM)
    method = choice(options, "method", METHODS, DEFAULT_METHOD)
    return compute_cai(seq, tables[organism], method)


def task_gc_content(seq, options, tables):
    # Biopython GC123: every base (a trailing partial codon included) counts at its codon
    # position; letters other than A/C/G/T are left out of numerator and denominator.
    gc = [0, 0, 0]
    counted = [0, 0, 0]
    for i, ch in enumerate(seq):
        if ch in "GC":
            gc[i % 3] += 1
            counted[i % 3] += 1
        elif ch in "AT":
            counted[i % 3] += 1

    def fraction(num, den):
        return num / den if den else None

    return {
        "gc_content": fraction(sum(gc), sum(counted)),
        "gc1": fraction(gc[0], counted[0]),
        "gc2": fraction(gc[1], counted[1]),
        "gc3": fraction(gc[2], counted[2]),
        "length": len(seq),
        "bases_counted": sum(counted),
        "trailing_bases": len(seq) % 3,
    }


def task_codon_usage(seq, options, tables):
    if options.get("ambiguous") not in (None, "skip"):
        raise bad_request("option ambiguous must be \"skip\" (got %r): a codon with an ambiguity letter is never "
                          "read as a concrete codon (NNN is not AAA); such codons are left out and counted in "
                          "ambiguous_codons" % (options.get("ambiguous"),))
    mode = AMBIGUOUS_HANDLING[0]
    counts = dict.fromkeys(CODON_ORDER, 0)
    ambiguous = 0
    for codon in codons_of(seq):
        if not is_concrete(codon):
            ambiguous += 1
            continue
        counts[codon] += 1
    total = sum(counts.values())
    per_aa = {aa: sum(counts[c] for c in group) for aa, group in SYNONYMS.items()}
    table = {}
    for codon in CODON_ORDER:
        aa = GENETIC_CODE[codon]
        fraction = counts[codon] / per_aa[aa] if per_aa[aa] else 0.0
        table[codon] = {
            "amino_acid": aa,
            "count": counts[codon],
            "per_thousand": counts[codon] / total * 1000.0 if total else 0.0,  # cusp order of operations
            "fraction": fraction,
            "rscu": fraction * len(SYNONYMS[aa]),
        }
    return {
        "total_codons": total,
        "ambiguous_codons": ambiguous,
        "codons_skipped": ambiguous,
        "ambiguous_handling": mode,
        "trailing_bases": len(seq) % 3,
        "codons": table,
        "amino_acids": per_aa,
    }


# --- codon optimisation ---------------------------------------------------------------
def translate_dna(seq):
    if len(seq) % 3:
        raise bad_sequence("a DNA input to codon_optimize must be whole codons: %d bases is not a "
                           "multiple of 3 (send option input_type \"protein\" if this is a protein)"
                           % len(seq))
    protein = []
    for n, codon in enumerate(codons_of(seq)):
        if is_concrete(codon):
            protein.append(GENETIC_CODE[codon])
            continue
        meanings = {GENETIC_CODE["".join(p)] for p in itertools.product(*(IUPAC[ch] for ch in codon))}
        if len(meanings) != 1:
            raise bad_sequence("codon %d (%s) is ambiguous: it can mean %s" % (n + 1, codon, ", ".join(sorted(meanings))))
        protein.append(meanings.pop())
    return "".join(protein)


def read_protein(seq, options):
    input_type = choice(options, "input_type", ("auto", "dna", "protein"), "auto")
    if input_type == "dna" or (input_type == "auto" and all(ch in DNA_LETTERS for ch in seq)):
        bad = next((i for i, ch in enumerate(seq) if ch not in DNA_LETTERS), None)
        if bad is not None:
            raise bad_sequence("character %r at position %d is not a DNA letter" % (seq[bad], bad + 1))
        return translate_dna(seq), True
    for i, ch in enumerate(seq):
        if ch not in AMINO_ACIDS:
            raise bad_sequence("residue %r at position %d has no codon in the standard genetic code "
                               "(only the 20 standard amino acids can be back-translated)" % (ch, i + 1))
    return seq, False


def expand(motif):
    return {"".join(p) for p in itertools.product(*(IUPAC[ch] for ch in motif))}


def forbidden_patterns(options):
    """The concrete ACGT strings the output must not contain (motifs, their reverse
    complements, homopolymers), plus a description of the constraints for the output."""
    patterns = set()
    constraints = {}
    avoid = options.get("avoid")
    if avoid is not None:
        if not isinstance(avoid, list) or len(avoid) > MAX_AVOID_MOTIFS:
            raise bad_request("option avoid must be a list of at most %d DNA motifs" % MAX_AVOID_MOTIFS)
        both = boolean(options, "both_strands", True)
        motifs = []
        for m in avoid:
            if not isinstance(m, str) or not 1 <= len(m) <= MAX_MOTIF_LENGTH or \
                    any(ch not in IUPAC for ch in m.upper()):
                raise bad_request("invalid motif %r in avoid: 1 to %d IUPAC letters (%s)"
                                  % (m, MAX_MOTIF_LENGTH, "".join(IUPAC)))
            motif = m.upper().replace("U", "T")
            motifs.append(motif)
            size = 1
            for ch in motif:
                size *= len(IUPAC[ch])
            if size > MAX_EXPANDED_PATTERNS:
                raise bad_request("motif %s stands for %d sequences; at most %d" % (m, size, MAX_EXPANDED_PATTERNS))
            found = expand(motif)
            patterns |= found
            if both:
                patterns |= {reverse_complement(p) for p in found}
            if sum(map(len, patterns)) > MAX_PATTERN_LETTERS:
                raise bad_request("option avoid is too large: its motifs (both strands, ambiguity codes "
                                  "expanded) stand for more than %d letters of sequence" % MAX_PATTERN_LETTERS)
        constraints["avoid"] = motifs
        constraints["both_strands"] = both
    elif "both_strands" in options:
        boolean(options, "both_strands", True)
    max_h = options.get("max_homopolymer")
    if max_h is not None:
        if not isinstance(max_h, int) or isinstance(max_h, bool) or not 1 <= max_h <= MAX_HOMOPOLYMER_LIMIT:
            raise bad_request("option max_homopolymer must be an integer from 1 to %d" % MAX_HOMOPOLYMER_LIMIT)
        patterns |= {b * (max_h + 1) for b in "ACGT"}
        constraints["max_homopolymer"] = max_h
    return patterns, constraints


class Automaton:
    """Aho-Corasick automaton over A/C/G/T; a state is 'bad' when some pattern ends there."""

    INDEX = {"A": 0, "C": 1, "G": 2, "T": 3}

    def __init__(self, patterns):
        goto = [[-1, -1, -1, -1]]
        bad = [False]
        for p in patterns:
            s = 0
            for ch in p:
                c = self.INDEX[ch]
                if goto[s][c] == -1:
                    goto[s][c] = len(goto)
                    goto.append([-1, -1, -1, -1])
                    bad.append(False)
                s = goto[s][c]
            bad[s] = True
        fail = [0] * len(goto)
        queue = deque()
        for c in range(4):
            t = goto[0][c]
            if t == -1:
                goto[0][c] = 0
            else:
                queue.append(t)
        while queue:  # breadth first: fail[s] is shallower than s, so already final
            s = queue.popleft()
            bad[s] = bad[s] or bad[fail[s]]
            for c in range(4):
                t = goto[s][c]
                if t == -1:
                    goto[s][c] = goto[fail[s]][c]
                else:
                    fail[t] = goto[fail[s]][c]
                    queue.append(t)
        self.goto = goto
        self.bad = bad
        self.cache = {}

    def step(self, state, codon):
        """State after appending codon, or -1 if a forbidden pattern ends inside it."""
        key = (state, codon)
        hit = self.cache.get(key)
        if hit is None:
            hit = state
            for ch in codon:
                hit = self.goto[hit][self.INDEX[ch]]
                if self.bad[hit]:
                    hit = -1
                    break
            self.cache[key] = hit
        return hit


_automata = {}


def automaton_for(patterns):
    """Batches usually repeat the same options: reuse the automaton (and its step cache)."""
    key = frozenset(patterns)
    automaton = _automata.pop(key, None)
    if automaton is None:
        automaton = Automaton(key)
        while len(_automata) >= AUTOMATON_CACHE_SIZE:
            _automata.pop(next(iter(_automata)))
    _automata[key] = automaton  # most recently used last
    return automaton


def best_codons(protein, weights, patterns):
    """The codon sequence with the largest sum of ln(w) that contains no pattern."""
    choices = {}
    for aa in set(protein):
        ranked = sorted(SYNONYMS[aa], key=lambda c: (-weights[c], c))
        choices[aa] = [(c, math.log(weights[c]) if weights[c] > 0 else -1e9) for c in ranked]
    if not patterns:
        return [choices[aa][0][0] for aa in protein]
    automaton = automaton_for(patterns)
    cached = automaton.cache.get
    step = automaton.step
    states = {0: 0.0}
    back = []
    for i, aa in enumerate(protein):
        scores = {}
        links = {}
        options = choices[aa]
        for state, score in states.items():
            for codon, lnw in options:
                nxt = cached((state, codon))
                if nxt is None:
                    nxt = step(state, codon)
                if nxt < 0:
                    continue
                value = score + lnw
                old = scores.get(nxt)
                if old is None or value > old:
                    scores[nxt] = value
                    links[nxt] = (state, codon)
        if not scores:
            raise bad_request("no coding sequence satisfies the constraints: residue %d (%s) cannot be "
                              "encoded without creating a forbidden motif or homopolymer" % (i + 1, aa))
        back.append(links)
        states = scores
    state = max(states, key=lambda s: states[s])  # first best on ties: deterministic
    out = []
    for links in reversed(back):
        state, codon = links[state]
        out.append(codon)
    out.reverse()
    return out


def task_codon_optimize(seq, options, tables):
    organism = choice(options, "organism", ORGANISMS, DEFAULT_ORGANISM)
    method = choice(options, "method", METHODS, DEFAULT_METHOD)
    table = tables[organism]
    protein, from_dna = read_protein(seq, options)
    patterns, constraints = forbidden_patterns(options)
    codons = best_codons(protein, table.weights(method), patterns)
    dna = "".join(codons)
    out = {
        "sequence": dna,
        "protein": protein,
        "cai": compute_cai(dna, table, method)["cai"],
        "organism": organism,
        "method": method,
        "input_type": "dna" if from_dna else "protein",
    }
    if from_dna:
        out["input_cai"] = compute_cai(seq, table, method)["cai"]
        out["codons_changed"] = sum(1 for a, b in zip(codons_of(seq), codons) if a != b)
    if constraints:
        out["constraints"] = constraints
    out["reference"] = table.reference
    return out


TASKS = {
    "codon_adaptation_index": task_cai,
    "gc_content": task_gc_content,
    "codon_usage": task_codon_usage,
    "codon_optimize": task_codon_optimize,
}


class Codon(Model):
    def setup(self, ctx):
        self.tables = {}
        for organism in ORGANISMS:
            path = os.path.join(ctx.data_dir, organism + ".json")
            try:
                with open(path, encoding="utf-8") as fh:
                    data = json.load(fh)
            except (OSError, ValueError) as exc:
                raise ModelError("MODEL_NOT_LOADED", "cannot read codon table %s: %s" % (path, exc))
            self.tables[organism] = CodonTable(organism, data)

    def predict(self, batch, task):
        run = TASKS.get(task)
        if run is None:
            raise ModelError("INVALID_REQUEST", "unknown task %r" % task)
        outputs = []
        for item in batch:
            options = item.get("options") or {}
            try:
                if not isinstance(options, dict):
                    raise bad_request("options must be an object")
                outputs.append(run(item["sequence"].upper(), options, self.tables))
            except ModelError as exc:
                outputs.append(item_error(exc.code, exc.message))
        return outputs
