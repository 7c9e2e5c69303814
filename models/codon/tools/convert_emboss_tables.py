#!/usr/bin/env python3
"""Convert the EMBOSS codon usage tables the `codon` model uses into data/<organism>.json.

Run once, by hand, on a machine with the Debian/Ubuntu `emboss` package (which pulls in
`emboss-data`); the JSON files it writes are committed, so the model itself needs neither
EMBOSS nor this script at run time:

    apt-get install -y emboss
    python3 models/codon/tools/convert_emboss_tables.py            # writes models/codon/data/*.json
    python3 models/codon/tools/convert_emboss_tables.py --check    # only compare, exit 1 on a difference

Every number is copied exactly as printed in the .cut file (EMBOSS format: codon, amino acid,
fraction among synonymous codons, frequency per thousand codons, count). The script refuses a
table whose amino acids disagree with the standard genetic code or that lacks one of the 64
codons, and records the source file, its SHA-256, the EMBOSS package version and the data's
provenance in each JSON file.
"""
import argparse
import hashlib
import json
import os
import re
import subprocess
import sys

EMBOSS_CODONS_DIR = "/usr/share/EMBOSS/data/CODONS"
TABLES = {  # organism option -> EMBOSS file (Cut.index names these the canonical tables)
    "ecoli": "Eecoli.cut",
    "human": "Ehuman.cut",
    "yeast": "Eyeast.cut",
}
BASES = "TCAG"
STANDARD_CODE = "FFLLSSSSYY**CC*WLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG"
STANDARD = {a + b + c: STANDARD_CODE[16 * i + 4 * j + k]
            for i, a in enumerate(BASES) for j, b in enumerate(BASES) for k, c in enumerate(BASES)}
PROVENANCE = (
    "Codon usage table shipped with EMBOSS (file {file} of the Debian package emboss-data {deb}, "
    "EMBOSS {emboss}). EMBOSS took its tables from the Codon Usage Tabulated from GenBank "
    "database (CUTG, Nakamura, Gojobori & Ikemura 2000, Nucleic Acids Res. 28:292; "
    "https://www.kazusa.or.jp/codon/), release {release}, GenBank division {division}, "
    "{cds} coding sequences. Distributed by EMBOSS under the EMBOSS licence "
    "(GPL for the applications, LGPL for the libraries; Debian copyright file: "
    "'Files: * Copyright: The EMBOSS developers or their employers. License: emboss'). "
    "Converted to JSON, numbers unchanged, by models/codon/tools/convert_emboss_tables.py."
)


def command_output(argv):
    try:
        return subprocess.run(argv, check=True, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def emboss_versions():
    deb = command_output(["dpkg-query", "-W", "-f=${Version}", "emboss-data"]) or "unknown"
    emboss = None
    full = command_output(["embossversion", "-full", "-auto"]) or ""
    m = re.search(r"LibraryVersion:\s*(\S+)", full)
    if m:
        emboss = m.group(1)
    if emboss is None:
        emboss = command_output(["embossversion", "-auto"]) or "unknown"
    return emboss, deb


def parse_cut(path):
    header = {}
    codons = {}
    with open(path, encoding="ascii") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            if line.startswith("#"):
                m = re.match(r"#\s*([A-Za-z][A-Za-z0-9 ]*?)\s*:\s*(.+)$", line)
                if m:
                    header[m.group(1)] = m.group(2).strip()
                else:
                    m = re.match(r"#(Coding GC|1st letter GC|2nd letter GC|3rd letter GC)\s+([0-9.]+)%$", line)
                    if m:
                        header[m.group(1)] = float(m.group(2))
                continue
            fields = line.split()
            if len(fields) != 5:
                raise ValueError("%s: unexpected line %r" % (path, line))
            codon, aa, fraction, per_thousand, count = fields
            if codon in codons:
                raise ValueError("%s: codon %s listed twice" % (path, codon))
            if STANDARD.get(codon) != aa:
                raise ValueError("%s: %s is %s in the standard genetic code, the table says %s"
                                 % (path, codon, STANDARD.get(codon), aa))
            codons[codon] = {"amino_acid": aa, "fraction": float(fraction),
                             "per_thousand": float(per_thousand), "count": int(count)}
    missing = sorted(set(STANDARD) - set(codons))
    if missing:
        raise ValueError("%s: codons missing: %s" % (path, ", ".join(missing)))
    return header, codons


def convert(organism, filename, source_dir, emboss, deb):
    path = os.path.join(source_dir, filename)
    with open(path, "rb") as fh:
        sha256 = hashlib.sha256(fh.read()).hexdigest()
    header, codons = parse_cut(path)
    cds = int(header.get("CdsCount", "0"))
    return {
        "organism": organism,
        "species": header.get("Species"),
        "genetic_code": 1,
        "source": {
            "file": filename,
            "path": path,
            "sha256": sha256,
            "emboss_version": emboss,
            "debian_package": "emboss-data %s" % deb,
            "database": "CUTG (Codon Usage Tabulated from GenBank, Kazusa DNA Research Institute)",
            "release": header.get("Release"),
            "division": header.get("Division"),
            "cds_count": cds,
            "coding_gc_percent": header.get("Coding GC"),
            "gc_percent_by_position": [header.get("1st letter GC"), header.get("2nd letter GC"),
                                       header.get("3rd letter GC")],
            "licence": "EMBOSS licence: GPL (applications) / LGPL (libraries); data files are "
                       "distributed under the same terms as EMBOSS (Debian copyright: Files: *)",
            "provenance": PROVENANCE.format(file=filename, deb=deb, emboss=emboss,
                                            release=header.get("Release"),
                                            division=header.get("Division"), cds=cds),
        },
        "columns": {
            "amino_acid": "one-letter code, * = stop (standard genetic code)",
            "fraction": "fraction of this codon among the codons of its amino acid (EMBOSS 'Fraction')",
            "per_thousand": "occurrences per 1000 codons (EMBOSS 'Frequency')",
            "count": "number of occurrences in the CUTG coding sequences (EMBOSS 'Number')",
        },
        # Same order as the .cut file: by amino acid, then codon.
        "codons": codons,
    }


def dump(table):
    """Indented JSON with one line per codon, so a diff shows which codon changed."""
    codons = table["codons"]
    body = json.dumps(dict(table, codons="@CODONS@"), indent=2)
    lines = ",\n".join("    %s: %s" % (json.dumps(c), json.dumps(v)) for c, v in codons.items())
    return body.replace('"@CODONS@"', "{\n" + lines + "\n  }") + "\n"


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--emboss-dir", default=EMBOSS_CODONS_DIR, help="EMBOSS CODONS directory")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(here), "data"), help="output directory")
    ap.add_argument("--check", action="store_true",
                    help="compare the tables with the JSON files instead of writing them")
    args = ap.parse_args(argv)
    emboss, deb = emboss_versions()
    status = 0
    for organism, filename in TABLES.items():
        table = convert(organism, filename, args.emboss_dir, emboss, deb)
        out = os.path.join(args.out, organism + ".json")
        if args.check:
            with open(out, encoding="utf-8") as fh:
                old = json.load(fh)
            same = old["codons"] == table["codons"] and old["source"]["sha256"] == table["source"]["sha256"]
            print("%s: %s" % (out, "identical" if same else "DIFFERENT"))
            status |= 0 if same else 1
            continue
        os.makedirs(args.out, exist_ok=True)
        with open(out, "w", encoding="utf-8") as fh:
            fh.write(dump(table))
        print("wrote %s from %s (%s)" % (out, table["source"]["path"], table["species"]))
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
