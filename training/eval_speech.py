#!/usr/bin/python3
"""Measures the speech model (models/speech, PocketSphinx) on speech this script synthesises itself.

Run:      /usr/bin/python3 training/eval_speech.py
Needs:    Debian espeak-ng, python3-pocketsphinx, pocketsphinx-en-us, python3-numpy.

Every recording is made by espeak-ng (formant synthesis, deterministic) from fixed texts, in
four voices (en-us, en-us+m3, en-us+f2, en = British) at two speeds (140 and 175 words a minute),
as 22.05 kHz mono WAV, and read by models/speech/model.py exactly as a worker reads it:
  commands   20 command phrases, decoded with phrases = the 20 (a grammar): share read exactly;
  sentences  10 everyday sentences, decoded with the general language model: word error rate =
             word-level Levenshtein distance / reference words, lower case, punctuation dropped.
Synthetic speech is not human speech: these figures say the pipeline works and how the two modes
compare, not how well it reads people (see MODEL_CARD.md).
"""
from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
import tempfile
import time

from edit_distance import levenshtein

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VOICES = ["en-us", "en-us+m3", "en-us+f2", "en"]
SPEEDS = [140, 175]
COMMANDS = [
    "turn on the light", "turn off the light", "open the door", "close the door", "what time is it",
    "call my mother", "play some music", "stop the music", "volume up", "volume down",
    "next track", "previous track", "set an alarm", "cancel the alarm", "what is the weather",
    "lock the car", "start the engine", "go back", "yes please", "no thanks",
]
SENTENCES = [
    "the weather is nice today",
    "please send me the report by friday",
    "i would like a cup of coffee",
    "the meeting starts at ten in the morning",
    "she read the book in one evening",
    "we need more time to finish the project",
    "can you help me find the station",
    "the children played in the park after school",
    "turn left at the next corner",
    "my phone number has changed",
]


def synth(text: str, voice: str, speed: int, path: str) -> None:
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", path, text], check=True, timeout=60)


def words(text: str) -> list:
    return re.sub(r"[^a-z' ]", " ", text.lower()).split()


def main():
    sys.path[:0] = [os.path.join(ROOT, "sdk", "python"), os.path.join(ROOT, "models", "speech")]
    from model import PocketSphinx  # noqa: E402
    model = PocketSphinx()
    model.setup(None)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        def read(text, voice, speed, **options):
            path = os.path.join(tmp, "a.wav")
            synth(text, voice, speed, path)
            with open(path, "rb") as f:
                item = {"input": {"format": "wav", "data": base64.b64encode(f.read()).decode()}, "options": options}
            out = model.predict([item], "speech_recognition")[0]
            if "error" in out:
                raise RuntimeError(out["error"])
            return out["text"]

        t0 = time.time()
        for voice in VOICES:
            for speed in SPEEDS:
                right = sum(read(c, voice, speed, phrases=COMMANDS, return_words=False) == c for c in COMMANDS)
                errors = ref = 0
                for s in SENTENCES:
                    hyp = read(s, voice, speed, return_words=False)
                    errors += levenshtein(words(s), words(hyp))
                    ref += len(words(s))
                results[(voice, speed)] = (right, len(COMMANDS), errors, ref)
                print(f"{voice:10s} {speed:4d} wpm  commands {right:2d}/{len(COMMANDS)}  sentences WER {100 * errors / ref:5.1f}% ({errors}/{ref})", flush=True)
    right = sum(r[0] for r in results.values())
    total = sum(r[1] for r in results.values())
    errors = sum(r[2] for r in results.values())
    ref = sum(r[3] for r in results.values())
    print(f"all: commands {right}/{total} = {100 * right / total:.1f}% exact; sentences WER {100 * errors / ref:.1f}% ({errors}/{ref}); "
          f"{time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
