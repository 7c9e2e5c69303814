#!/usr/bin/env bash
# `npm run test:setup`: what `npm test` needs beyond `npm ci`, installed on a fresh machine.
# The suite checks its results against real tools, so they have to be there: promtool and a real
# Prometheus, Biopython and EMBOSS (the reference implementations the built-in models are compared
# with), torch for the adapters' tiny models, scikit-learn and onnx for the quick retrain of the
# ONNX classifiers, bubblewrap for the sandbox driver, Chromium for the console's end-to-end test,
# docker.io for the docker driver; the media models' engines (models/ocr: Tesseract; models/speech:
# PocketSphinx) and what their tests render with (PIL and DejaVu fonts for text images, espeak-ng
# for speech); the text models' training data for their retrain tests (models/langid: word lists,
# models/textgen: fortunes-min); PostgreSQL for the shared-state tests (each starts its own cluster
# in a temp dir, test/postgres.ts). Debian/Ubuntu packages; already installed ones are left alone,
# so a second run costs one dpkg query per package. .ci/run calls this, then `npm test`.
set -euo pipefail

APT_PACKAGES=(python3 python3-venv prometheus python3-biopython emboss python3-torch python3-numpy python3-sklearn python3-onnx bubblewrap chromium docker.io)
APT_PACKAGES+=(tesseract-ocr tesseract-ocr-eng pocketsphinx pocketsphinx-en-us python3-pocketsphinx espeak-ng python3-pil fonts-dejavu-core)
APT_PACKAGES+=(postgresql fortunes-min wamerican wbritish wngerman wfrench wspanish witalian wportuguese wdutch)

need=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ ${#need[@]} -eq 0 ]; then
  echo "test:setup: every package the tests use is installed"
  exit 0
fi

echo "test:setup: installing ${need[*]}"
if ! command -v apt-get >/dev/null 2>&1; then
  echo "test:setup: no apt-get here; install the equivalents of: ${need[*]}" >&2
  exit 1
fi
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
  else
    echo "test:setup: not root and no sudo; as root run: apt-get install -y ${need[*]}" >&2
    exit 1
  fi
fi
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
