"""codon-verifier: checks a coding sequence before it is ordered or cloned (no ML).

Task `verify`: one coding DNA sequence and an organism (and, optionally, the protein it must
encode). Every check reports its value, its bound and whether it passed; the verdict is "pass"
only when every check that applies passed.

  length_multiple_of_3, start_codon, stop_codon, internal_stops, protein_match  (translation)
  ambiguous_bases                                   (IUPAC codes other than A/C/G/T)
  gc_content, gc_window                             (overall and in a sliding window)
  homopolymer, direct_repeat                        (synthesis / cloning trouble)
  restriction_sites                                 (a configurable enzyme list, common ones built in)
  cai                                               (the organism's codon usage)

The genetic code, the codon usage tables and the CAI computation are the `codon` model's: its
model.py is imported from the package beside this one (ISOMODEL_CODON_DIR overrides where), and
its tables are read from its own data/ folder, so both models always agree on every number.
Standard library only.
"""
import importlib.util
import itertools
import json
import os
import re
import sys

from isomodel_worker import Context, Model, ModelError, item_error

HERE = os.path.dirname(os.path.abspath(__file__))

# Built-in enzymes: recognition sites (IUPAC, 5'->3') as REBASE lists them; the tests check each
# against Biopython's REBASE copy (Bio.Restriction).
ENZYMES = {
    "AatII": "GACGTC", "AflII": "CTTAAG", "AgeI": "ACCGGT", "ApaI": "GGGCCC", "AscI": "GGCGCGCC",
    "AvrII": "CCTAGG", "BamHI": "GGATCC", "BbsI": "GAAGAC", "BglII": "AGATCT", "BsaI": "GGTCTC",
    "BsmBI": "CGTCTC", "BspHI": "TCATGA", "ClaI": "ATCGAT", "EcoRI": "GAATTC", "EcoRV": "GATATC",
    "FseI": "GGCCGGCC", "HindIII": "AAGCTT", "KpnI": "GGTACC", "MluI": "ACGCGT", "NcoI": "CCATGG",
    "NdeI": "CATATG", "NheI": "GCTAGC", "NotI": "GCGGCCGC", "NsiI": "ATGCAT", "PacI": "TTAATTAA",
    "PmeI": "GTTTAAAC", "PstI": "CTGCAG", "SacI": "GAGCTC", "SalI": "GTCGAC", "SapI": "GCTCTTC",
    "SbfI": "CCTGCAGG", "SfiI": "GGCCNNNNNGGCC", "SmaI": "CCCGGG", "SpeI": "ACTAGT", "SphI": "GCATGC",
    "XbaI": "TCTAGA", "XhoI": "CTCGAG",
}
# Checked when the request names no enzymes: common cloning sites and the Golden Gate (Type IIS)
# enzymes, whose sites inside an insert break an assembly.
DEFAULT_ENZYMES = ("EcoRI", "BamHI", "HindIII", "XhoI", "XbaI", "NotI", "BsaI", "BsmBI")

DEFAULTS = {
    "gc_min": 0.30, "gc_max": 0.70,
    "gc_window": 50, "gc_window_min": 0.20, "gc_window_max": 0.80,
    "max_homopolymer": 8,
    "max_repeat": 20,
    "min_cai": 0.5,
}
STOP_CODONS = ("TAA", "TAG", "TGA")
MAX_ENZYMES = 100
MAX_SITE = 32
MAX_LISTED = 50  # positions listed per check (counts are always complete)
MAX_PROTEIN = 20000
IUPAC_COMPLEMENT = str.maketrans("ACGTRYSWKMBDHVN", "TGCAYRSWMKVHDBN")


def bad_request(message):
    return ModelError("INVALID_REQUEST", message)


def load_codon_module(codon_dir):
    path = os.path.join(codon_dir, "model.py")
    if not os.path.isfile(path):
        raise ModelError("MODEL_NOT_LOADED", "codon-verifier uses the codon model's tables and code, and %s does "
                         "not exist: install the codon package beside this one or set ISOMODEL_CODON_DIR" % path)
    name = "_isomodel_codon_for_verifier"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# --- option parsing -------------------------------------------------------------------
def number(options, key, lo, hi, integer=False):
    value = options.get(key, DEFAULTS[key])
    if value is None:
        value = DEFAULTS[key]
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if integer:
        ok = ok and float(value).is_integer()
    if not ok or not lo <= value <= hi:
        raise bad_request("option %s must be %s from %s to %s (got %r)"
                          % (key, "an integer" if integer else "a number", lo, hi, value))
    return int(value) if integer else float(value)


def iupac_regex(site, iupac):
    return "".join("[%s]" % iupac[ch] if len(iupac[ch]) > 1 else iupac[ch] for ch in site)


def enzyme_list(options, iupac):
    """[(name, site)] from option enzymes: built-in names and/or {name, site} objects."""
    raw = options.get("enzymes")
    if raw is None:
        return [(n, ENZYMES[n]) for n in DEFAULT_ENZYMES]
    if not isinstance(raw, list) or len(raw) > MAX_ENZYMES:
        raise bad_request("option enzymes must be a list of at most %d enzymes (names or {name, site})" % MAX_ENZYMES)
    by_lower = {n.lower(): n for n in ENZYMES}
    out = []
    for entry in raw:
        if isinstance(entry, str):
            name = by_lower.get(entry.lower())
            if name is None:
                raise bad_request("unknown enzyme %r: built in are %s; give others as {\"name\": ..., \"site\": ...}"
                                  % (entry, ", ".join(sorted(ENZYMES, key=str.lower))))
            out.append((name, ENZYMES[name]))
            continue
        if not isinstance(entry, dict) or set(entry) - {"name", "site"}:
            raise bad_request("each enzyme is a built-in name or an object {name, site}")
        name, site = entry.get("name"), entry.get("site")
        if not isinstance(name, str) or not 1 <= len(name) <= 64:
            raise bad_request("enzyme name must be a string of 1 to 64 characters")
        if not isinstance(site, str) or not 1 <= len(site) <= MAX_SITE or any(ch not in iupac or ch == "U" for ch in site.upper()):
            raise bad_request("enzyme %s: site must be 1 to %d IUPAC DNA letters (got %r)" % (name, MAX_SITE, site))
        out.append((name, site.upper()))
    return out


# --- checks ---------------------------------------------------------------------------
def check(value, bound, passed, **detail):
    out = {"value": value, "bound": bound, "pass": passed}
    out.update(detail)
    return out


def translate(seq, codon):
    """Standard-code translation of the whole codons; an ambiguous codon gives its amino acid
    when all its readings agree (GCN = A), else X."""
    protein = []
    for c in codon.codons_of(seq):
        aa = codon.GENETIC_CODE.get(c)
        if aa is None:
            readings = {codon.GENETIC_CODE[x] for x in codon.expand(c)}
            aa = readings.pop() if len(readings) == 1 else "X"
        protein.append(aa)
    return "".join(protein)


def windows_gc(seq, size):
    """GC fraction of every window of `size` bases (step 1), over the A/C/G/T letters in it."""
    if len(seq) <= size:
        size = len(seq)
    gc = [1 if ch in "GC" else 0 for ch in seq]
    known = [1 if ch in "ACGT" else 0 for ch in seq]
    g = sum(gc[:size])
    k = sum(known[:size])
    out = []
    for start in range(len(seq) - size + 1):
        if start:
            g += gc[start + size - 1] - gc[start - 1]
            k += known[start + size - 1] - known[start - 1]
        out.append((start, g / k if k else None))
    return size, out


def longest_run(seq):
    best = (0, None, None)
    for m in re.finditer(r"A+|C+|G+|T+", seq):
        if len(m.group()) > best[0]:
            best = (len(m.group()), m.group()[0], m.start() + 1)
    return best


def longest_repeat(seq):
    """Length of the longest string that occurs at least twice in seq (the occurrences may
    overlap), and the 1-based starts of the first such pair found scanning left to right.
    Binary search on the length (a repeat of L contains one of L - 1) with rolling hashes; every
    hash hit is confirmed by comparing the strings, so a collision cannot give a wrong answer."""
    n = len(seq)
    mod = (1 << 61) - 1
    base = 1_000_003
    code = {"A": 1, "C": 2, "G": 3, "T": 4}
    prefix = [0] * (n + 1)
    power = [1] * (n + 1)
    for i, ch in enumerate(seq):
        prefix[i + 1] = (prefix[i] * base + code.get(ch, 5 + ord(ch))) % mod
        power[i + 1] = power[i] * base % mod

    def find(length):
        seen = {}
        for i in range(n - length + 1):
            h = (prefix[i + length] - prefix[i] * power[length]) % mod
            for j in seen.get(h, ()):
                if seq[j:j + length] == seq[i:i + length]:
                    return j, i
            seen.setdefault(h, []).append(i)
        return None

    lo, hi, found = 0, n - 1, None
    while lo < hi:
        mid = (lo + hi + 1) // 2
        hit = find(mid)
        if hit:
            lo, found = mid, hit
        else:
            hi = mid - 1
    if found is None:
        return 0, None, None
    return lo, found[0] + 1, found[1] + 1


def restriction_sites(seq, enzymes, iupac):
    """Site counts per enzyme (complete) and the first MAX_LISTED sites by position. Only the
    first MAX_LISTED of each enzyme and strand are ever built: a one-letter custom site on a long
    sequence has tens of thousands of hits per enzyme, and 100 such enzymes must not fill memory."""
    counts = {}
    firsts = []
    for name, site in enzymes:
        forward = iupac_regex(site, iupac)
        rc = site.translate(IUPAC_COMPLEMENT)[::-1]
        strands = [("+", forward)] if rc == site else [("+", forward), ("-", iupac_regex(rc, iupac))]
        n = 0
        for strand, pattern in strands:
            regex = re.compile("(?=%s)" % pattern)
            n += len(regex.findall(seq))
            for m in itertools.islice(regex.finditer(seq), MAX_LISTED):
                firsts.append({"enzyme": name, "site": site, "position": m.start() + 1, "strand": strand})
        counts[name] = n
    firsts.sort(key=lambda s: (s["position"], s["enzyme"], s["strand"]))
    return counts, sum(counts.values()), firsts[:MAX_LISTED]


def verify(seq, options, codon, tables):
    organism = codon.choice(options, "organism", codon.ORGANISMS, codon.DEFAULT_ORGANISM)
    method = codon.choice(options, "cai_method", codon.METHODS, codon.DEFAULT_METHOD)
    gc_min = number(options, "gc_min", 0, 1)
    gc_max = number(options, "gc_max", 0, 1)
    window = number(options, "gc_window", 10, 10000, integer=True)
    w_min = number(options, "gc_window_min", 0, 1)
    w_max = number(options, "gc_window_max", 0, 1)
    max_h = number(options, "max_homopolymer", 1, 1000, integer=True)
    max_repeat = number(options, "max_repeat", 1, 100000, integer=True)
    min_cai = number(options, "min_cai", 0, 1)
    if gc_min > gc_max or w_min > w_max:
        raise bad_request("gc_min / gc_window_min must not be above gc_max / gc_window_max")
    starts = options.get("start_codons", ["ATG"])
    if not isinstance(starts, list) or not 1 <= len(starts) <= 64 or \
            any(not isinstance(c, str) or c.upper() not in codon.GENETIC_CODE for c in starts):
        raise bad_request("option start_codons must be a list of codons of A/C/G/T, e.g. [\"ATG\", \"GTG\"]")
    starts = sorted({c.upper() for c in starts})
    protein = options.get("protein")
    if protein is not None:
        if not isinstance(protein, str) or not 1 <= len(protein) <= MAX_PROTEIN or \
                not re.fullmatch(r"[ACDEFGHIKLMNPQRSTVWY]+\*?", protein.upper()):
            raise bad_request("option protein must be 1 to %d of the 20 standard amino acids, optionally ending in *"
                              % MAX_PROTEIN)
        protein = protein.upper().rstrip("*")
    enzymes = enzyme_list(options, codon.IUPAC)

    checks = {}
    n = len(seq)
    translation = translate(seq, codon)
    first = seq[:3] if n >= 3 else seq
    last = seq[n - n % 3 - 3:n - n % 3] if n >= 3 else ""
    checks["length_multiple_of_3"] = check(n % 3, {"equals": 0}, n % 3 == 0, length=n)
    checks["start_codon"] = check(first, {"allowed": starts}, first in starts)
    checks["stop_codon"] = check(last, {"allowed": list(STOP_CODONS)}, n % 3 == 0 and last in STOP_CODONS)
    body = translation[:-1] if translation.endswith("*") else translation
    internal = [i + 1 for i, aa in enumerate(body) if aa == "*"]
    checks["internal_stops"] = check(len(internal), {"max": 0}, not internal, codons=internal[:MAX_LISTED])
    if protein is None:
        checks["protein_match"] = check(None, None, None, note="no protein given (option protein)")
    else:
        diff = next((i for i, (a, b) in enumerate(zip(body, protein)) if a != b), None)
        if diff is None and len(body) != len(protein):
            diff = min(len(body), len(protein))
        checks["protein_match"] = check(diff is None, {"equals": True}, diff is None, translated_length=len(body),
                                        expected_length=len(protein),
                                        first_difference=None if diff is None else {
                                            "residue": diff + 1,
                                            "translated": body[diff] if diff < len(body) else None,
                                            "expected": protein[diff] if diff < len(protein) else None})
    ambiguous = [i + 1 for i, ch in enumerate(seq) if ch not in "ACGT"]
    checks["ambiguous_bases"] = check(len(ambiguous), {"max": 0}, not ambiguous, positions=ambiguous[:MAX_LISTED])

    gc = codon.task_gc_content(seq, {}, tables)["gc_content"]
    checks["gc_content"] = check(gc, {"min": gc_min, "max": gc_max}, gc is not None and gc_min <= gc <= gc_max)
    size, wins = windows_gc(seq, window)
    values = [v for _, v in wins if v is not None]
    outside = [{"start": s + 1, "gc": v} for s, v in wins if v is not None and not w_min <= v <= w_max]
    checks["gc_window"] = check({"min": min(values) if values else None, "max": max(values) if values else None},
                                {"min": w_min, "max": w_max, "window": size, "step": 1},
                                bool(values) and not outside, windows=len(wins), windows_outside=len(outside),
                                outside=outside[:MAX_LISTED])
    run, base, at = longest_run(seq)
    long_runs = re.compile(r"A{%d,}|C{%d,}|G{%d,}|T{%d,}" % ((max_h + 1,) * 4))
    runs = [{"base": m.group()[0], "position": m.start() + 1, "length": len(m.group())}
            for m in itertools.islice(long_runs.finditer(seq), MAX_LISTED)]
    checks["homopolymer"] = check(run, {"max": max_h}, run <= max_h, base=base, position=at,
                                  runs_over=len(long_runs.findall(seq)), runs=runs)
    length, p1, p2 = longest_repeat(seq)
    checks["direct_repeat"] = check(length, {"max": max_repeat}, length <= max_repeat,
                                    positions=[p1, p2] if p1 else [],
                                    repeat=seq[p1 - 1:p1 - 1 + min(length, 100)] if p1 else None)
    counts, total_sites, sites = restriction_sites(seq, enzymes, codon.IUPAC)
    checks["restriction_sites"] = check(total_sites, {"max": 0, "enzymes": [e for e, _ in enzymes]}, not total_sites,
                                        by_enzyme=counts, sites=sites)
    cai = codon.compute_cai(seq, tables[organism], method)
    checks["cai"] = check(cai["cai"], {"min": min_cai}, cai["cai"] is not None and cai["cai"] >= min_cai,
                          organism=organism, method=method, codons_used=cai["codons_used"], reference=cai["reference"])

    failed = [name for name, c in checks.items() if c["pass"] is False]
    return {
        "verdict": "fail" if failed else "pass",
        "failed": failed,
        "checks": checks,
        "length": n,
        "protein": translation,
        "organism": organism,
    }


class CodonVerifier(Model):
    def setup(self, ctx):
        codon_dir = os.path.realpath(ctx.env.get("ISOMODEL_CODON_DIR") or os.path.join(ctx.model_dir, "..", "codon"))
        self.codon = load_codon_module(codon_dir)
        tables = self.codon.Codon()
        tables.setup(Context(name="codon", version="", model_dir=codon_dir, data_dir=os.path.join(codon_dir, "data"),
                             replica_id=ctx.replica_id))
        self.tables = tables.tables

    def predict(self, batch, task):
        if task != "verify":
            raise ModelError("INVALID_REQUEST", "unknown task %r" % task)
        outputs = []
        for item in batch:
            options = item.get("options") or {}
            try:
                if not isinstance(options, dict):
                    raise bad_request("options must be an object")
                outputs.append(verify(item["sequence"].upper(), options, self.codon, self.tables))
            except ModelError as exc:
                outputs.append(item_error(exc.code, exc.message))
        return outputs


if __name__ == "__main__":  # a quick look by hand: python3 model.py SEQUENCE
    m = CodonVerifier()
    m.setup(Context.from_env(__file__))
    print(json.dumps(m.predict([{"sequence": sys.argv[1], "options": {}}], "verify")[0], indent=2))
