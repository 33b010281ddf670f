#!/usr/bin/env bash
# Table benchmark: how much of the RCT papers' tables PDF table extraction
# recovers, for the `"tables"` of `evistream convert --out` (the built-in
# pdf-text converter in the sandbox) and pdfplumber's `extract_tables()` with
# default settings (the baseline), side by side in one run. The reference is
# the tables (<table-wrap>/<table>) of the papers' JATS XML. Prints per paper
# and overall (pooled counts): cell recall (the share of the XML's non-empty
# cells found, by normalised text, as a cell of some extracted table), row
# share (the share of XML rows with 2+ non-empty cells whose cells all sit in
# one extracted row), the number of tables each tool produced, and the wall
# time of each tool; then the ratios evistream / pdfplumber. The scorer,
# tests/bench/tables.py, documents the normalisation.
#   tests/bench/tables.sh [CORPUS_DIR]   (default ../shared/corpus/rct)
#   EVISTREAM_BIN=path/to/evistream skips the release build.
# pdfplumber (pinned below) is installed with pip into a venv that is kept:
# $HOME/.cache/evistream/venv-tables.
set -euo pipefail
cd "$(dirname "$0")/../.."
corpus="${1:-$(pwd)/../shared/corpus/rct}"
if [[ ! -d $corpus/pdf || ! -d $corpus/nxml ]]; then
  echo "tables.sh: no corpus at $corpus (needs pdf/ and nxml/): skipped" >&2
  exit 0
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/evistream/target}"
pdfplumber_version=0.11.10
venv="$HOME/.cache/evistream/venv-tables"
if ! "$venv/bin/python" -c "import sys, pdfplumber; sys.exit(pdfplumber.__version__ != '$pdfplumber_version')" 2>/dev/null; then
  python3 -m venv "$venv" 2>/dev/null || {
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$venv"
  }
  "$venv/bin/pip" install -q --disable-pip-version-check "pdfplumber==$pdfplumber_version"
fi
if [[ -n ${EVISTREAM_BIN:-} ]]; then
  bin="$EVISTREAM_BIN"
else
  cargo build --release --locked -p evistream
  bin="$CARGO_TARGET_DIR/release/evistream"
fi
data=$(mktemp -d)
out=$(mktemp -d)
trap 'rm -rf "$data" "$out"' EXIT
export EVISTREAM_DATA_DIR="$data"
pdfs=("$corpus"/pdf/*.pdf)
# Warm the compile cache once, so the timing is of conversion, not compilation.
"$bin" convert "${pdfs[0]}" >/dev/null 2>&1 || true
t0=$EPOCHREALTIME
# A failed conversion is reported and scored as no tables found for its papers.
"$bin" convert --out "$out" "${pdfs[@]}" >/dev/null ||
  echo "tables.sh: evistream convert failed; papers without a JSON score zero" >&2
seconds=$(python3 -c "print(${EPOCHREALTIME}-${t0})")
"$venv/bin/python" tests/bench/tables.py "$corpus" "$out" --evistream-seconds "$seconds"
