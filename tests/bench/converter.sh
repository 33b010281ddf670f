#!/usr/bin/env bash
# Converter benchmark: the built-in pdf-text converter natively, as the
# WASM component inside the server's sandbox (`evistream convert`), and
# pdftotext (poppler-utils) side by side on the RCT corpus. Prints per paper
# and overall: word recall against the JATS XML paragraphs, the fraction of
# reference paragraphs whose words 3-10 appear contiguously (reading order,
# de-hyphenation), and total time per tool.
#   tests/bench/converter.sh [CORPUS_DIR]   (default ../shared/corpus/rct)
set -euo pipefail
cd "$(dirname "$0")/../.."
corpus="${1:-$(pwd)/../shared/corpus/rct}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/evistream/target}"
command -v pdftotext >/dev/null || { apt-get update -qq && apt-get install -y -qq poppler-utils >/dev/null; }
cargo build --release --locked -p evistream
bin="$CARGO_TARGET_DIR/release/evistream"
# Warm the compile cache once, so the timings are of conversion, not compilation.
data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT
export EVISTREAM_DATA_DIR="$data"
"$bin" convert "$(ls "$corpus"/pdf/*.pdf | head -1)" >/dev/null 2>&1 || true
cargo run --release --locked --manifest-path plugins/Cargo.toml \
  --target-dir "$HOME/.cache/evistream/plugins-target" \
  -p pdf-text --example score -- "$corpus" --evistream "$bin"
