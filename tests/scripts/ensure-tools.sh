#!/usr/bin/env bash
# Tools the tests need beyond cargo: the wasm32-wasip2 target (plugins),
# an S3-compatible server (moto, from PyPI) and pdftotext (poppler-utils,
# the converter benchmark's baseline).
set -euo pipefail
rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
command -v moto_server >/dev/null || pip install --quiet 'moto[server]'
if ! command -v pdftotext >/dev/null; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq poppler-utils >/dev/null) ||
    echo "pdftotext unavailable: the converter benchmark's baseline will be missing" >&2
fi
echo "tools ready"
