"""OCR with Tesseract (Debian tesseract-ocr, tesseract-ocr-eng): image in, text and word boxes out.

Each image is written to the replica's scratch dir (its cwd / TMPDIR) and read by the `tesseract`
binary, one process per image with one OpenMP thread, bounded by a timeout. Tesseract writes its
plain text and its TSV (one row per word, with box and confidence) in the same run.
"""
from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import tempfile

from isomodel_worker import Model, ModelError, item_error

APT_HINT = "apt-get install tesseract-ocr tesseract-ocr-eng"
# Page segmentation modes that make sense for one image per request (tesseract --help-psm).
PSM = {3: "automatic page segmentation (default)", 4: "a single column of text of variable sizes",
       6: "a single uniform block of text", 7: "a single text line", 8: "a single word",
       11: "sparse text: as much text as possible, in no particular order", 13: "raw line, no layout analysis"}
SUFFIX = {"png": ".png", "jpeg": ".jpg", "gif": ".gif"}
LANGUAGE = re.compile(r"^[a-z_]{3,16}(\+[a-z_]{3,16}){0,3}$", re.I)
TIMEOUT_S = float(os.environ.get("OCR_TIMEOUT_S", "50"))


class TesseractOCR(Model):
    def setup(self, ctx):
        # TESSERACT_BINARY (the manifest's env or model_env) names another build; default: PATH's.
        wanted = os.environ.get("TESSERACT_BINARY", "tesseract")
        self.binary = shutil.which(wanted)
        if not self.binary:
            raise ModelError("MODEL_NOT_LOADED", "the tesseract binary (%s) is not installed (%s)" % (wanted, APT_HINT))
        env = self._env()
        version = subprocess.run([self.binary, "--version"], capture_output=True, text=True, timeout=30, env=env)
        self.version = (version.stdout or version.stderr).splitlines()[0].strip() if (version.stdout or version.stderr) else "tesseract"
        langs = subprocess.run([self.binary, "--list-langs"], capture_output=True, text=True, timeout=30, env=env)
        self.languages = sorted({l.strip() for l in langs.stdout.splitlines()[1:] if l.strip() and l.strip() != "osd"})
        if "eng" not in self.languages:
            raise ModelError("MODEL_NOT_LOADED", "tesseract has no English data (apt-get install tesseract-ocr-eng); "
                             "languages found: %s" % (", ".join(self.languages) or "none"))

    @staticmethod
    def _env():
        # One thread per image: replicas, not threads, are how isomodel scales, and the cores are shared.
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "TMPDIR", "LANG", "LC_ALL", "TESSDATA_PREFIX")}
        env["OMP_THREAD_LIMIT"] = "1"
        return env

    def predict(self, batch, task):
        return [self._one(item) for item in batch]

    def _options(self, options):
        lang = options.get("language", "eng")
        if not isinstance(lang, str) or not LANGUAGE.match(lang) or any(l not in self.languages for l in lang.split("+")):
            raise ValueError("language must be one of the installed languages (%s), or several joined by +"
                             % ", ".join(self.languages))
        psm = options.get("psm", 3)
        if isinstance(psm, bool) or not isinstance(psm, int) or psm not in PSM:
            raise ValueError("psm must be one of %s" % ", ".join("%d (%s)" % kv for kv in PSM.items()))
        return lang, psm

    def _one(self, item):
        try:
            lang, psm = self._options(item.get("options") or {})
        except ValueError as exc:
            return item_error("INVALID_INPUT", str(exc))
        image = item["input"]
        with tempfile.TemporaryDirectory(prefix="ocr-") as tmp:
            path = os.path.join(tmp, "image" + SUFFIX.get(image["format"], ".img"))
            with open(path, "wb") as f:
                f.write(base64.b64decode(image["data"]))
            base = os.path.join(tmp, "out")
            try:
                run = subprocess.run([self.binary, path, base, "-l", lang, "--psm", str(psm), "txt", "tsv"],
                                     capture_output=True, text=True, timeout=TIMEOUT_S, env=self._env())
            except subprocess.TimeoutExpired:
                return item_error("PREDICTION_TIMEOUT", "tesseract took longer than %g s on this image" % TIMEOUT_S)
            if run.returncode != 0 or not os.path.exists(base + ".tsv"):
                message = " ".join(run.stderr.split())[-300:]
                code = "UNSUPPORTED_MEDIA_TYPE" if re.search(r"pixRead|Unsupported|read image", message, re.I) else "PREDICTION_FAILED"
                return item_error(code, "tesseract could not read the image: %s" % (message or "exit %d" % run.returncode))
            with open(base + ".txt", encoding="utf-8", errors="replace") as f:
                text = f.read()
            with open(base + ".tsv", encoding="utf-8", errors="replace") as f:
                words = parse_tsv(f.read())
        text = text.replace("\f", "").strip()
        confidences = [w["confidence"] for w in words]
        return {
            "prediction": text,
            "text": text,
            "words": words,
            "confidence": round(sum(confidences) / len(confidences) / 100, 4) if confidences else None,
            "details": {"engine": self.version, "language": lang, "psm": psm, "psm_meaning": PSM[psm],
                        "image": {"width": image.get("width"), "height": image.get("height"), "format": image["format"]},
                        "lines": len({(w["block"], w["paragraph"], w["line"]) for w in words})},
        }


def parse_tsv(tsv):
    """Tesseract's TSV -> one entry per recognised word (level 5), empty words dropped.

    Columns: level page_num block_num par_num line_num word_num left top width height conf text.
    conf is 0..100 (tesseract's own word confidence; -1 on layout rows)."""
    rows = tsv.splitlines()
    words = []
    for row in rows[1:]:
        cols = row.split("\t")
        if len(cols) < 12 or cols[0] != "5":
            continue
        text = "\t".join(cols[11:]).strip()
        if not text:
            continue
        words.append({
            "text": text,
            "confidence": round(float(cols[10]), 2),
            "box": {"x": int(cols[6]), "y": int(cols[7]), "width": int(cols[8]), "height": int(cols[9])},
            "block": int(cols[2]), "paragraph": int(cols[3]), "line": int(cols[4]),
        })
    return words
