#!/usr/bin/env bash
# Tools the tests need beyond cargo: the wasm32-wasip2 target (plugins),
# an S3-compatible server (moto, from PyPI), pdftotext (poppler-utils,
# the converter benchmark's baseline), and Debian's chromium and
# chromedriver (the dashboard's browser tests).
set -euo pipefail
rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
command -v moto_server >/dev/null || pip install --quiet 'moto[server]'
if ! command -v pdftotext >/dev/null; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq poppler-utils >/dev/null) ||
    echo "pdftotext unavailable: the converter benchmark's baseline will be missing" >&2
fi
if ! command -v chromedriver >/dev/null || ! command -v chromium >/dev/null; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) || {
    echo "chromium and chromium-driver could not be installed: the dashboard's browser tests need them" >&2
    exit 1
  }
fi
echo "tools ready"
