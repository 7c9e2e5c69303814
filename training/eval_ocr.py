#!/usr/bin/python3
"""Measures the ocr model (models/ocr, Tesseract) on text this script renders itself.

Run:      /usr/bin/python3 training/eval_ocr.py                 (render, read with the model, print the figures)
          /usr/bin/python3 training/eval_ocr.py --render DIR    (only write the images and labels.json:
                                                                 test/model-ocr.test.ts sends them through a gateway)
Needs:    Debian python3-pil, fonts-dejavu-core, tesseract-ocr, tesseract-ocr-eng.

Every image is drawn by PIL from a fixed list of lines (no randomness), in five conditions:
  clean_sans   DejaVu Sans 28 px, black on white, PNG
  serif_jpeg   DejaVu Serif 22 px, black on white, JPEG quality 70
  mono_small   DejaVu Sans Mono 16 px, dark grey on light grey, PNG
  inverse      DejaVu Sans Bold 24 px, white on dark blue, PNG
  degraded     DejaVu Serif 15 px, dark grey on cream, Gaussian blur (radius 0.8), rotated 2 degrees,
               JPEG quality 30
  tiny         DejaVu Sans 8 px, black on white, PNG (below what Tesseract reads well: reported apart)
Accuracy: character error rate = Levenshtein distance / reference characters, word error rate =
word-level Levenshtein distance / reference words, on whitespace-normalised text (runs of spaces and
newlines become one space); case and punctuation count.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

from edit_distance import levenshtein

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FONTS = "/usr/share/fonts/truetype/dejavu/"
LINES = [
    "The quick brown fox jumps over the lazy dog.",
    "Pack my box with five dozen liquor jugs!",
    "Invoice 2024-117: total due 1,385.40 EUR by 31 March.",
    "Call +44 20 7946 0958 or write to help@example.org",
    "Sphinx of black quartz, judge my vow.",
    "Gene expression rose 3.7-fold (p < 0.01) in 12 samples.",
    "Meeting moved to Tuesday, 10:30 in room B-214.",
    "How vexingly quick daft zebras jump;",
    "Temperature: 21.5 C, humidity 48 %, wind 12 km/h NW.",
    "Order #58213 shipped via standard post on 2 May.",
    "A wizard's job is to vex chumps quickly in fog.",
    "Version 3.11.2 fixed 47 bugs and added 5 features.",
]
CONDITIONS = {
    "clean_sans": {"font": "DejaVuSans.ttf", "size": 28, "ink": (0, 0, 0), "paper": (255, 255, 255), "format": "png"},
    "serif_jpeg": {"font": "DejaVuSerif.ttf", "size": 22, "ink": (0, 0, 0), "paper": (255, 255, 255), "format": "jpeg"},
    "mono_small": {"font": "DejaVuSansMono.ttf", "size": 16, "ink": (60, 60, 60), "paper": (225, 225, 225), "format": "png"},
    "inverse": {"font": "DejaVuSans-Bold.ttf", "size": 24, "ink": (255, 255, 255), "paper": (20, 30, 90), "format": "png"},
    "degraded": {"font": "DejaVuSerif.ttf", "size": 15, "ink": (40, 40, 40), "paper": (235, 235, 225), "format": "jpeg",
                 "rotate": 2.0, "blur": 0.8, "quality": 30},
    "tiny": {"font": "DejaVuSans.ttf", "size": 8, "ink": (0, 0, 0), "paper": (255, 255, 255), "format": "png"},
}
LINES_PER_IMAGE = 3


def render(out_dir: str) -> list:
    """Writes one image per condition and group of LINES_PER_IMAGE lines; returns the cases."""
    from PIL import Image, ImageDraw, ImageFilter, ImageFont
    os.makedirs(out_dir, exist_ok=True)
    cases = []
    for name, c in CONDITIONS.items():
        font = ImageFont.truetype(os.path.join(FONTS, c["font"]), c["size"])
        for g in range(0, len(LINES), LINES_PER_IMAGE):
            lines = LINES[g:g + LINES_PER_IMAGE]
            pitch = int(c["size"] * 1.6)
            margin = c["size"]
            width = max(int(font.getlength(line)) for line in lines) + 2 * margin
            img = Image.new("RGB", (width, pitch * len(lines) + 2 * margin), c["paper"])
            draw = ImageDraw.Draw(img)
            for i, line in enumerate(lines):
                draw.text((margin, margin + i * pitch), line, font=font, fill=c["ink"])
            if c.get("blur"):
                img = img.filter(ImageFilter.GaussianBlur(c["blur"]))
            if c.get("rotate"):
                img = img.rotate(c["rotate"], resample=Image.BICUBIC, expand=True, fillcolor=c["paper"])
            file = f"{name}-{g // LINES_PER_IMAGE + 1}.{'jpg' if c['format'] == 'jpeg' else 'png'}"
            if c["format"] == "jpeg":
                img.save(os.path.join(out_dir, file), quality=c.get("quality", 70))
            else:
                img.save(os.path.join(out_dir, file), optimize=True)
            cases.append({"file": file, "format": c["format"], "condition": name, "text": "\n".join(lines)})
    with open(os.path.join(out_dir, "labels.json"), "w") as f:
        json.dump({"conditions": CONDITIONS, "cases": cases}, f, indent=1)
        f.write("\n")
    return cases


def normalise(text: str) -> str:
    return " ".join(text.split())


def score(cases, outputs) -> dict:
    """{condition: {cer, wer, chars, words}} and "all_but_tiny"."""
    per = {}
    for case, out in zip(cases, outputs):
        ref, hyp = normalise(case["text"]), normalise(out)
        s = per.setdefault(case["condition"], {"char_errors": 0, "chars": 0, "word_errors": 0, "words": 0})
        s["char_errors"] += levenshtein(ref, hyp)
        s["chars"] += len(ref)
        s["word_errors"] += levenshtein(ref.split(), hyp.split())
        s["words"] += len(ref.split())
    agg = {"char_errors": 0, "chars": 0, "word_errors": 0, "words": 0}
    for name, s in per.items():
        if name != "tiny":
            for k in agg:
                agg[k] += s[k]
    per["all_but_tiny"] = agg
    return {k: {**v, "cer": v["char_errors"] / v["chars"], "wer": v["word_errors"] / v["words"]} for k, v in per.items()}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--render", metavar="DIR", help="only write the images and labels.json into DIR")
    args = ap.parse_args()
    if args.render:
        render(args.render)
        return
    import base64
    import tempfile
    sys.path[:0] = [os.path.join(ROOT, "sdk", "python"), os.path.join(ROOT, "models", "ocr")]
    from model import TesseractOCR  # noqa: E402
    model = TesseractOCR()
    model.setup(None)
    with tempfile.TemporaryDirectory() as tmp:
        cases = render(tmp)
        t0 = time.time()
        outs = []
        for c in cases:
            with open(os.path.join(tmp, c["file"]), "rb") as f:
                data = base64.b64encode(f.read()).decode()
            res = model.predict([{"input": {"format": c["format"], "data": data}, "options": {}}], "ocr")[0]
            outs.append(res.get("text", ""))
        elapsed = time.time() - t0
    result = score(cases, outs)
    print(f"{model.version}; {len(cases)} images, {elapsed:.1f} s")
    print(f"{'condition':14s} {'CER':>7s} {'WER':>7s} {'chars':>6s} {'words':>6s}")
    for name, s in result.items():
        print(f"{name:14s} {100 * s['cer']:6.2f}% {100 * s['wer']:6.2f}% {s['chars']:6d} {s['words']:6d}")


if __name__ == "__main__":
    main()
