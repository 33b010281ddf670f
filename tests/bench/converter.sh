#!/usr/bin/env bash
# Converter benchmark: the built-in pdf-text converter natively, as the
# WASM component inside the server's sandbox (`evistream convert`), and
# pdftotext (poppler-utils) side by side on the RCT corpus. Prints per paper
# and overall: word recall against the JATS XML paragraphs, the fraction of
# reference paragraphs whose words 3-10 appear contiguously (reading order,
# de-hyphenation), and total time per tool. Then conversion speed through
# the sandbox, side by side in one run: every PDF in one `evistream convert`
# call (batch), one `evistream convert` process per PDF, and pdftotext run
# per PDF (the baseline), with the ratios.
#   tests/bench/converter.sh [CORPUS_DIR]   (default ../shared/corpus/rct)
#   EVISTREAM_BIN=path/to/evistream skips the release build.
set -euo pipefail
cd "$(dirname "$0")/../.."
corpus="${1:-$(pwd)/../shared/corpus/rct}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/evistream/target}"
command -v pdftotext >/dev/null || { apt-get update -qq && apt-get install -y -qq poppler-utils >/dev/null; }
if [[ -n ${EVISTREAM_BIN:-} ]]; then
  bin="$EVISTREAM_BIN"
else
  cargo build --release --locked -p evistream
  bin="$CARGO_TARGET_DIR/release/evistream"
fi
# Warm the compile cache once, so the timings are of conversion, not compilation.
data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT
export EVISTREAM_DATA_DIR="$data"
"$bin" convert "$(ls "$corpus"/pdf/*.pdf | head -1)" >/dev/null 2>&1 || true
cargo run --release --locked --manifest-path plugins/Cargo.toml \
  --target-dir "$HOME/.cache/evistream/plugins-target" \
  -p pdf-text --example score -- "$corpus" --evistream "$bin"

echo
echo "== conversion speed: wall time over ${corpus}/pdf (best of 3)"
pdfs=("$corpus"/pdf/*.pdf)
best() {
  local best=""
  for _ in 1 2 3; do
    local t0=$EPOCHREALTIME
    "$@" >/dev/null 2>&1 || true
    local t=$(python3 -c "print(${EPOCHREALTIME}-${t0})")
    if [[ -z $best ]] || python3 -c "import sys; sys.exit(0 if $t < $best else 1)"; then best=$t; fi
  done
  echo "$best"
}
per_file_pdftotext() { for f in "${pdfs[@]}"; do pdftotext "$f" - >/dev/null; done; }
per_file_evistream() { for f in "${pdfs[@]}"; do "$bin" convert "$f" >/dev/null 2>&1; done; }
out=$(mktemp -d)
base=$(best per_file_pdftotext)
batch=$(best "$bin" convert --out "$out" "${pdfs[@]}")
single=$(best per_file_evistream)
python3 - "$base" "$batch" "$single" "${#pdfs[@]}" <<'PY'
import sys
base, batch, single, n = map(float, sys.argv[1:5])
print(f"pdftotext, a process per file (baseline)  {base:7.2f} s")
print(f"evistream convert, all files in one call  {batch:7.2f} s  {batch / base:5.2f}x")
print(f"evistream convert, a process per file     {single:7.2f} s  {single / base:5.2f}x")
print(f"({int(n)} files)")
PY
rm -rf "$out"
