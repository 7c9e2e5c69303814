"""Speech to text with CMU PocketSphinx (Debian python3-pocketsphinx, pocketsphinx-en-us).

A WAV (PCM 8/16/24/32-bit or IEEE float, any rate from 8 kHz, any channel count) is read by a
small RIFF walker, mixed to mono, resampled to the 16 kHz the US English acoustic model was
trained on, and decoded in one utterance: with the general English language model (en-us.lm.bin,
a 130k-word dictionary), or, when the request lists `phrases`, with a JSGF grammar that allows only
those phrases (commands, menus, yes/no), which is far more reliable.
"""
from __future__ import annotations

import base64
import os
import re
import struct
import sys
import time

from isomodel_worker import Model, ModelError, item_error

APT_HINT = "apt-get install python3-pocketsphinx pocketsphinx-en-us"
RATE = 16000  # what the en-us acoustic model expects
MIN_RATE = 8000
MAX_SECONDS = 60.0  # the manifest's max_seconds; checked again on the samples themselves
MAX_PHRASES, MAX_PHRASE_CHARS = 100, 100
WORD = re.compile(r"^[a-z][a-z']*$")
PCM, FLOAT, EXTENSIBLE = 1, 3, 0xFFFE
GRAMMAR = "phrases"


class SpeechError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class PocketSphinx(Model):
    def setup(self, ctx):
        try:
            import numpy  # noqa: F401
        except ImportError as exc:
            raise ModelError("MODEL_NOT_LOADED", "NumPy is not installed for %s (apt-get install python3-numpy): %s"
                             % (sys.executable, exc))
        try:
            from pocketsphinx import Decoder, get_model_path
        except ImportError as exc:
            raise ModelError("MODEL_NOT_LOADED", "the pocketsphinx Python module is not installed (%s): %s" % (APT_HINT, exc))
        model_dir = os.environ.get("POCKETSPHINX_MODEL_DIR") or get_model_path()
        files = {"-hmm": os.path.join(model_dir, "en-us"), "-lm": os.path.join(model_dir, "en-us.lm.bin"),
                 "-dict": os.path.join(model_dir, "cmudict-en-us.dict")}
        missing = [p for p in files.values() if not os.path.exists(p)]
        if missing:
            raise ModelError("MODEL_NOT_LOADED", "the US English model is not installed (%s): missing %s"
                             % (APT_HINT, ", ".join(missing)))
        config = Decoder.default_config()
        for key, path in files.items():
            config.set_string(key, path)
        config.set_string("-logfn", os.devnull)  # its INFO lines would flood the worker log
        started = time.monotonic()
        self.decoder = Decoder(config)
        self.load_seconds = round(time.monotonic() - started, 2)
        self.model_dir = model_dir
        self.grammar_key = None

    def predict(self, batch, task):
        return [self._one(item) for item in batch]

    def _one(self, item):
        options = item.get("options") or {}
        try:
            phrases = parse_phrases(options.get("phrases"))
            return_words = options.get("return_words", True)
            if not isinstance(return_words, bool):
                raise SpeechError("INVALID_INPUT", "return_words must be true or false")
            audio = item["input"]
            wav = read_wav(base64.b64decode(audio["data"], validate=True))
            if phrases:
                self._use_grammar(phrases)
            samples = to_16k_mono(wav)
        except SpeechError as exc:
            return item_error(exc.code, str(exc))
        search = GRAMMAR if phrases else "_default"
        self.decoder.set_search(search)
        started = time.monotonic()
        self.decoder.start_utt()
        self.decoder.process_raw(samples.tobytes(), False, True)
        self.decoder.end_utt()
        hyp = self.decoder.hyp()
        text = hyp.hypstr.strip() if hyp and hyp.hypstr else ""
        out = {
            "prediction": text,
            "text": text,
            "details": {
                "mode": "phrases" if phrases else "language_model",
                "audio": {"sample_rate": wav["rate"], "channels": wav["channels"], "bits": wav["bits"],
                          "encoding": wav["encoding"], "duration_s": round(wav["frames"] / wav["rate"], 3)},
                "decoded_at_hz": RATE,
                "decode_seconds": round(time.monotonic() - started, 3),
                "engine": "CMU PocketSphinx 5prealpha, US English acoustic model (cmusphinx-en-us-5.2)",
            },
        }
        if return_words:
            out["words"] = words(self.decoder.seg())
        return out

    def _use_grammar(self, phrases):
        """Compiles the phrases into the decoder's JSGF search (kept while the next request asks
        for the same phrases)."""
        key = tuple(phrases)
        if key == self.grammar_key:
            return
        unknown = sorted({w for p in phrases for w in p.split() if self.decoder.lookup_word(w) is None})
        if unknown:
            raise SpeechError("INVALID_INPUT", "phrases use words the pronunciation dictionary does not have: %s"
                              % ", ".join(unknown[:20]))
        grammar = "#JSGF V1.0;\ngrammar phrases;\npublic <phrase> = %s;\n" % " | ".join("( %s )" % p for p in phrases)
        try:
            self.decoder.set_jsgf_string(GRAMMAR, grammar)
        except RuntimeError as exc:
            raise SpeechError("INVALID_INPUT", "the phrases cannot be compiled into a grammar: %s" % exc)
        self.grammar_key = key


def parse_phrases(value):
    """None or a list of phrases -> normalised phrases (lower case, single spaces, no punctuation but
    the apostrophe), deduplicated in order."""
    if value is None:
        return []
    if not isinstance(value, list) or not value or len(value) > MAX_PHRASES:
        raise SpeechError("INVALID_INPUT", "phrases must be a list of 1 to %d strings" % MAX_PHRASES)
    out = []
    for p in value:
        if not isinstance(p, str) or not p.strip() or len(p) > MAX_PHRASE_CHARS:
            raise SpeechError("INVALID_INPUT", "each phrase must be a non-empty string of at most %d characters" % MAX_PHRASE_CHARS)
        norm = " ".join(re.sub(r"[^a-z' ]", " ", p.lower()).split())
        if not norm or not all(WORD.match(w) for w in norm.split()):
            raise SpeechError("INVALID_INPUT", "phrase %r has no words (letters and apostrophes)" % p[:40])
        if norm not in out:
            out.append(norm)
    return out


def read_wav(data: bytes) -> dict:
    """RIFF/WAVE bytes -> {rate, channels, bits, encoding, frames, pcm (bytes)}. Only the fmt and
    data chunks are read; every size is checked against the bytes there are."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise SpeechError("UNSUPPORTED_MEDIA_TYPE", "not a RIFF/WAVE file")
    pos, fmt, pcm = 12, None, None
    while pos + 8 <= len(data) and (fmt is None or pcm is None):
        cid, size = data[pos:pos + 4], struct.unpack_from("<I", data, pos + 4)[0]
        body = data[pos + 8:pos + 8 + size]
        if cid == b"fmt ":
            if len(body) < 16:
                raise SpeechError("UNSUPPORTED_MEDIA_TYPE", "the WAV fmt chunk is truncated")
            fmt = body
        elif cid == b"data":
            pcm = body  # a truncated last chunk: the samples there are
        pos += 8 + size + (size & 1)
    if fmt is None or pcm is None:
        raise SpeechError("UNSUPPORTED_MEDIA_TYPE", "the WAV has no %s chunk" % ("fmt" if fmt is None else "data"))
    tag, channels, rate, _, align, bits = struct.unpack_from("<HHIIHH", fmt)
    if tag == EXTENSIBLE and len(fmt) >= 26:
        tag = struct.unpack_from("<H", fmt, 24)[0]  # the sub-format GUID starts with the plain tag
    encoding = {(PCM, 8): "u8", (PCM, 16): "s16", (PCM, 24): "s24", (PCM, 32): "s32", (FLOAT, 32): "f32", (FLOAT, 64): "f64"}.get((tag, bits))
    if encoding is None:
        raise SpeechError("UNSUPPORTED_MEDIA_TYPE", "WAV encoding %d with %d bits is not read (PCM 8/16/24/32 bit or float 32/64)" % (tag, bits))
    if not 1 <= channels <= 16 or align != channels * bits // 8:
        raise SpeechError("UNSUPPORTED_MEDIA_TYPE", "the WAV header is inconsistent (%d channels, block align %d)" % (channels, align))
    if not MIN_RATE <= rate <= 192000:
        raise SpeechError("INVALID_INPUT", "sample rate %d Hz: speech is read from %d Hz to 192 kHz" % (rate, MIN_RATE))
    frames = len(pcm) // align
    if frames == 0:
        raise SpeechError("INVALID_INPUT", "the WAV has no samples")
    if frames / rate > MAX_SECONDS + 0.01:
        raise SpeechError("PAYLOAD_TOO_LARGE", "%.1f s of audio: at most %g s" % (frames / rate, MAX_SECONDS))
    return {"rate": rate, "channels": channels, "bits": bits, "encoding": encoding, "frames": frames, "pcm": pcm[:frames * align]}


def to_16k_mono(wav: dict):
    """Samples -> 16 kHz mono int16 (NumPy): channels averaged; resampled with a windowed-sinc
    low-pass (when the rate falls) and linear interpolation."""
    import numpy as np
    enc, ch = wav["encoding"], wav["channels"]
    raw = wav["pcm"]
    if enc == "u8":
        x = (np.frombuffer(raw, np.uint8).astype(np.float64) - 128.0) / 128.0
    elif enc == "s16":
        x = np.frombuffer(raw, "<i2").astype(np.float64) / 32768.0
    elif enc == "s24":
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        x = np.where(v >= 1 << 23, v - (1 << 24), v).astype(np.float64) / float(1 << 23)
    elif enc == "s32":
        x = np.frombuffer(raw, "<i4").astype(np.float64) / 2147483648.0
    else:
        x = np.frombuffer(raw, "<f4" if enc == "f32" else "<f8").astype(np.float64)
        x = np.nan_to_num(x, nan=0.0, posinf=1.0, neginf=-1.0)
    x = x.reshape(-1, ch).mean(axis=1)
    rate = wav["rate"]
    if rate != RATE:
        if rate > RATE:
            # low-pass at 0.45 of the new rate: a 101-tap Hann-windowed sinc
            cutoff = 0.45 * RATE / rate
            n = np.arange(-50, 51)
            taps = 2 * cutoff * np.sinc(2 * cutoff * n) * np.hanning(len(n))
            x = np.convolve(x, taps / taps.sum(), mode="same")
        count = int(round(len(x) * RATE / rate))
        x = np.interp(np.arange(count) * (rate / RATE), np.arange(len(x)), x)
    return np.clip(np.round(x * 32767.0), -32768, 32767).astype("<i2")


def words(segments) -> list:
    """PocketSphinx segments -> [{word, start_s, end_s}]: silences and fillers dropped, the
    dictionary's variant marks ("read(2)") removed. A frame is 10 ms."""
    out = []
    for s in segments:
        w = s.word
        if w.startswith("<") or w.startswith("[") or w.startswith("++"):
            continue
        out.append({"word": re.sub(r"\(\d+\)$", "", w), "start_s": round(s.start_frame / 100, 2), "end_s": round((s.end_frame + 1) / 100, 2)})
    return out
