#!/usr/bin/env bash
# Fuzzing, bounded in time (a benchmark-style script, not part of CI).
#
# Builds the cargo-fuzz targets of tests/fuzz (a workspace of its own) and
# runs each with libFuzzer for FUZZ_SECONDS, one job, at nice 19:
#   graphql_request  the request bounds of host/src/api/limits.rs: bytes as a
#                    JSON (batch) request body and as query text, checked with
#                    the server's default bounds on a 2 MiB stack (no panic,
#                    no stack overflow, accepted documents within the bounds);
#   pdf_convert      plugins/pdf-text's `convert` on bytes as a PDF (no panic,
#                    page ranges consistent; errors are fine).
# Prints per target: executions, exec/s, corpus size, new crash artifacts.
# Exits non-zero if a target crashed (crash, timeout, OOM or leak).
#
# Usage: tests/bench/fuzz.sh [TARGET...]     (default: both targets)
#   FUZZ_SECONDS=300    time per target (-max_total_time)
#   FUZZ_TIMEOUT=60     seconds one input may take before it counts as a crash
#   FUZZ_RSS_MB=2048    memory limit (-rss_limit_mb)
#   FUZZ_SANITIZER=address   or none (faster, no AddressSanitizer)
#   FUZZ_PDF_STRICT=1   font-parser panics are crashes too (see pdf_convert.rs)
#   FUZZ_CORPUS_MB=16   a kept corpus bigger than this is reset to the seeds
#                       first (libFuzzer replays the whole corpus before it
#                       fuzzes, and that replay counts against FUZZ_SECONDS)
#   FUZZ_KEEP_GOING=1   go on after a crash (libFuzzer -fork=1, still one job)
#                       and collect every crash of the run; default: stop at
#                       the first one
#   PDF_CORPUS=../shared/corpus/rct/pdf   seeds: its smallest FUZZ_PDF_SEEDS (2)
#                       papers, read at run time, never copied into the repo
#
# Only stable Rust is needed: RUSTC_BOOTSTRAP=1 lets it take cargo-fuzz's
# nightly flags. cargo-fuzz is installed from crates.io when missing.
# Binaries: ~/.cache/evistream/fuzz-target. Corpus (kept between runs, seeds
# rewritten each run), artifacts and logs: ~/.cache/evistream/fuzz/.
# Reproduce a crash: <binary> <artifact>, e.g.
#   ~/.cache/evistream/fuzz-target/x86_64-unknown-linux-gnu/release/pdf_convert FILE
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)

seconds="${FUZZ_SECONDS:-300}"
timeout="${FUZZ_TIMEOUT:-60}"
rss_mb="${FUZZ_RSS_MB:-2048}"
corpus_mb="${FUZZ_CORPUS_MB:-16}"
sanitizer="${FUZZ_SANITIZER:-address}"
pdf_corpus="${PDF_CORPUS:-$repo/../shared/corpus/rct/pdf}"
pdf_seeds="${FUZZ_PDF_SEEDS:-2}"
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(graphql_request pdf_convert)

cache="$HOME/.cache/evistream/fuzz"
target_dir="$HOME/.cache/evistream/fuzz-target"
triple=$(rustc -vV | sed -n 's/^host: //p')
bin_dir="$target_dir/$triple/release"
run_id=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$cache/logs"

# Stable rustc accepts -Z flags with this; one build job (a shared machine).
export RUSTC_BOOTSTRAP=1 CARGO_BUILD_JOBS=1 CARGO_TERM_COLOR=never

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: cargo-fuzz is missing; installing it from crates.io" >&2
  echo "fuzz.sh:   nice -n 19 cargo install --locked -j 1 cargo-fuzz@0.13.2 (a few minutes)" >&2
  nice -n 19 cargo install --locked -j 1 cargo-fuzz@0.13.2
fi

echo "== build (${targets[*]}; sanitizer: $sanitizer)"
build_start=$(date +%s)
for t in "${targets[@]}"; do
  nice -n 19 cargo fuzz build --fuzz-dir tests/fuzz --target-dir "$target_dir" \
    -O --debug-assertions -s "$sanitizer" "$t"
done
build_secs=$(( $(date +%s) - build_start ))
echo "build: ${build_secs}s"

# ---------------------------------------------------------------- seeds

json_string() { # stdin → a JSON string literal
  sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/\t/\\t/g' | awk 'BEGIN{printf "\""} {printf "%s\\n", $0} END{printf "\""}'
}

rep() { # rep STRING N
  local out="" i
  for ((i = 0; i < $2; i++)); do out+="$1"; done
  printf '%s' "$out"
}

seed_graphql() {
  local dir=$1 f base op name
  # One file per operation of the acceptance and client operations.
  for f in "$repo/../shared/acceptance/operations.graphql" "$repo"/graphql/operations/*.graphql; do
    [ -f "$f" ] || continue
    base=$(basename "$f" .graphql)
    awk -v out="$dir/seed-op-$base-" '
      /^(query|mutation|subscription|fragment)[ ({]|^\{/ { n++ }
      n > 0 { print > (out n ".graphql") }' "$f"
  done
  # The same operations as HTTP bodies, with their names, and one batch.
  for op in "$dir"/seed-op-*.graphql; do
    [ -e "$op" ] || continue
    name=$(sed -nE 's/^(query|mutation|subscription) ([A-Za-z_][A-Za-z0-9_]*).*/\2/p' "$op" | head -1)
    base=$(basename "$op" .graphql)
    printf '{"query":%s,"operationName":"%s","variables":{"id":"x","first":2}}' \
      "$(json_string <"$op")" "$name" >"$dir/seed-json-${base#seed-op-}.json"
  done
  {
    printf '['
    printf '{"query":"query A { me { id } } query B { me { email } }","operationName":"B"},'
    printf '{"query":"mutation { login(input: {email: \\"a\\", password: \\"b\\"}) { accessToken } }"},'
    printf '{"query":"{ me { id } }","operationName":null,"variables":null,"extensions":{}}]'
  } >"$dir/seed-json-batch.json"
  # Hostile: brackets far past the bound, and just at it.
  printf '{ a(x: %s1%s) }' "$(rep '[' 20000)" "$(rep ']' 20000)" >"$dir/seed-hostile-deep-list"
  printf '%s%s' "$(rep '{a' 64)" "$(rep '}' 64)" >"$dir/seed-hostile-depth-64"
  printf '%s%s' "$(rep '{a' 65)" "$(rep '}' 65)" >"$dir/seed-hostile-depth-65"
  printf '{ a(x: %s) }' "$(rep '{b: ' 70)1$(rep '}' 70)" >"$dir/seed-hostile-deep-object"
  printf '{ a(s: """ %s \\""" %s """) b(s: "%s") }' "$(rep '{' 200)" "$(rep '[' 200)" "$(rep '(' 200)" \
    >"$dir/seed-hostile-strings"
  printf '# %s\n{ a }' "$(rep '{' 500)" >"$dir/seed-hostile-comment"
  printf '{"query":"%s"}' "$(rep '[' 5000)" >"$dir/seed-hostile-deep-json"
  # Fragment fan-out: f0 spreads f1 twice, … (2^40 fields once expanded).
  {
    echo 'query { ...f0 }'
    for i in $(seq 0 39); do echo "fragment f$i on Query { ...f$((i + 1)) ...f$((i + 1)) }"; done
    echo 'fragment f40 on Query { me { id } }'
  } >"$dir/seed-hostile-fanout"
  # A cycle, too many fragments, too many aliases.
  echo 'query { ...a } fragment a on Query { ...b } fragment b on Query { ...a }' >"$dir/seed-hostile-cycle"
  {
    echo 'query { me { id } }'
    for i in $(seq 0 256); do echo "fragment g$i on Query { me { id } }"; done
  } >"$dir/seed-hostile-fragments"
  { printf '{ '; for i in $(seq 0 299); do printf 'a%d: me { id } ' "$i"; done; printf '}'; } \
    >"$dir/seed-hostile-aliases"
  # A chain of 256 fragments, each 62 levels deep before spreading the next:
  # within every bound until expanded, and a deep walk to find that out.
  {
    echo 'query { ...c0 }'
    for i in $(seq 0 255); do
      printf 'fragment c%d on Query { %s' "$i" "$(rep 'a { ' 62)"
      if [ "$i" -lt 255 ]; then printf '...c%d' $((i + 1)); else printf 'id'; fi
      printf ' %s }\n' "$(rep '} ' 62)"
    done
  } >"$dir/seed-hostile-fragment-chain"
}

graphql_dict() {
  local t
  for t in '{' '}' '(' ')' '[' ']' '...' '...on ' '@' '$' ':' '!' '=' '"' '"""' '\\"""' '#' ',' \
    'query' 'mutation' 'subscription' 'fragment' ' on ' 'null' 'true' '@skip(if: true)' \
    '@include(if: $v)' '__typename' 'login' 'register' 'refresh' 'alias: ' '"query":' \
    '"operationName":' '"variables":' '"extensions":' '[{' '},{'; do
    printf '"%s"\n' "$(printf '%s' "$t" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g')"
  done
}

flip_bytes() { # flip_bytes FILE COUNT SEED
  local f=$1 size off i
  size=$(stat -c %s "$f")
  RANDOM=$3
  for ((i = 0; i < $2; i++)); do
    off=$(( (RANDOM * 32768 + RANDOM) % size ))
    printf "\\x$(printf %02x $((RANDOM % 256)))" | dd of="$f" bs=1 seek="$off" conv=notrunc status=none
  done
}

tiny_pdf() { # tiny_pdf FILE CONTENT: one page, Helvetica, CONTENT as its stream
  local f=$1 content=$2 offsets=() i
  : >"$f"
  printf '%%PDF-1.4\n' >>"$f"
  add() { offsets+=("$(stat -c %s "$f")"); printf '%s\n' "$1" >>"$f"; }
  add '1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj'
  add '2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj'
  add '3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >> endobj'
  add "4 0 obj << /Length ${#content} >> stream
$content
endstream endobj"
  add '5 0 obj << /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >> endobj'
  local xref
  xref=$(stat -c %s "$f")
  printf 'xref\n0 6\n0000000000 65535 f \n' >>"$f"
  for i in "${offsets[@]}"; do printf '%010d 00000 n \n' "$i" >>"$f"; done
  printf 'trailer << /Size 6 /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n' "$xref" >>"$f"
}

seed_pdf() {
  local dir=$1 paper base size i
  tiny_pdf "$dir/seed-tiny.pdf" 'BT /F1 12 Tf 72 700 Td (Methods: a randomised trial of 120 patients.) Tj 0 -14 Td (Results follow.) Tj ET'
  tiny_pdf "$dir/seed-tiny-ops.pdf" "BT /F1 9 Tf 1 0 0 1 50 50 Tm [(A) -250 (B)] TJ T* (C) ' 1 2 (D) \" ET q 1 0 0 1 0 0 cm Q"
  tiny_pdf "$dir/seed-hostile-deep-operand.pdf" "BT /F1 12 Tf $(rep '[' 5000) (x) $(rep ']' 5000) TJ ET"
  {
    printf '%%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R /X %s1%s >> endobj\n' "$(rep '[' 50000)" "$(rep ']' 50000)"
    printf '2 0 obj << /Type /Pages /Kids [] /Count 0 /Y %s >> endobj\n' "$(rep '<< /A ' 20000)1$(rep ' >>' 20000)"
    printf 'trailer << /Root 1 0 R >>\n%%%%EOF\n'
  } >"$dir/seed-hostile-deep-objects.pdf"
  if ! compgen -G "$pdf_corpus/*.pdf" >/dev/null; then
    echo "fuzz.sh: no PDFs in $pdf_corpus; pdf_convert starts from generated seeds only" >&2
    return
  fi
  # The smallest papers, and truncated and corrupted copies of them.
  # shellcheck disable=SC2012
  for paper in $(ls -Sr "$pdf_corpus"/*.pdf | head -n "$pdf_seeds"); do
    base=$(basename "$paper" .pdf)
    size=$(stat -c %s "$paper")
    cp "$paper" "$dir/seed-$base.pdf"
    chmod u+w "$dir/seed-$base.pdf"
    head -c 4096 "$paper" >"$dir/seed-$base-head4k.pdf"
    head -c $((size / 4)) "$paper" >"$dir/seed-$base-quarter.pdf"
    head -c $((size / 2)) "$paper" >"$dir/seed-$base-half.pdf"
    head -c $((size - 64)) "$paper" >"$dir/seed-$base-no-trailer.pdf"
    for i in 1 2 3; do
      cp "$paper" "$dir/seed-$base-flip$i.pdf"
      chmod u+w "$dir/seed-$base-flip$i.pdf"
      flip_bytes "$dir/seed-$base-flip$i.pdf" 20 "$i"
    done
  done
}

# ---------------------------------------------------------------- runs

# Why an artifact crashes: run it again (up to 3 times: a crash may depend
# on HashMap order), keep the first lines that say.
triage() { # triage BINARY ARTIFACT
  local i why
  for i in 1 2 3; do
    why=$(timeout $((timeout + 60)) nice -n 19 "$1" -timeout="$timeout" -rss_limit_mb="$rss_mb" "$2" 2>&1 |
      grep -E -A1 'panicked at|SUMMARY: |overflowed its stack|ERROR: libFuzzer' |
      grep -vE '^(--|stack backtrace:)$|created by' | head -n 3 || true)
    [ -n "$why" ] && { echo "$why"; return; }
  done
  echo "(did not crash again in 3 runs)"
}

keep_going=()
[ "${FUZZ_KEEP_GOING:-0}" = 1 ] && keep_going=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)

failed=0
summary=()
for t in "${targets[@]}"; do
  corpus="$cache/corpus/$t"
  artifacts="$cache/artifacts/$t/$run_id"
  log="$cache/logs/$t-$run_id.log"
  mkdir -p "$corpus" "$artifacts"
  kept_mb=$(( $(du -sk "$corpus" | cut -f1) / 1024 ))
  if [ "$kept_mb" -gt "$corpus_mb" ]; then
    echo "fuzz.sh: the kept $t corpus is ${kept_mb} MB (> FUZZ_CORPUS_MB=$corpus_mb): starting again from the seeds"
    find "$corpus" -type f -delete
  fi
  extra=()
  case "$t" in
    graphql_request)
      seed_graphql "$corpus"
      graphql_dict >"$cache/graphql.dict"
      extra=(-dict="$cache/graphql.dict")
      ;;
    pdf_convert) seed_pdf "$corpus" ;;
  esac
  echo "== fuzz $t for ${seconds}s (corpus $corpus: $(find "$corpus" -type f | wc -l) files)"
  started=$(date +%s)
  set +e
  # A hard bound too: -max_total_time does not cut the replay of the corpus
  # short. Interrupted, libFuzzer still prints its final stats.
  timeout -s INT $((seconds + timeout + 120)) nice -n 19 "$bin_dir/$t" "$corpus" -max_total_time="$seconds" -rss_limit_mb="$rss_mb" \
    -timeout="$timeout" -print_final_stats=1 -artifact_prefix="$artifacts/" "${extra[@]}" \
    "${keep_going[@]}" >"$log" 2>&1
  rc=$?
  set -e
  elapsed=$(( $(date +%s) - started ))
  if [ ${#keep_going[@]} -gt 0 ]; then
    # Fork mode: the parent's status lines (#total-runs: … corp: N … time: Ns).
    status=$(grep -E '^#[0-9]+: cov:' "$log" | tail -1 || true)
    execs=$(sed -nE 's/^#([0-9]+):.*/\1/p' <<<"$status")
    rate=""
    [ -n "$execs" ] && rate=$((execs / (elapsed > 0 ? elapsed : 1)))
    corp=$(sed -nE 's/.* corp: ([0-9]+) .*/\1/p' <<<"$status")
    peak=""
  else
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    peak=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
    corp=$(grep -oE 'corp: [0-9]+/[0-9.]+[A-Za-z]*' "$log" | tail -1 | cut -d' ' -f2 || true)
  fi
  found=$(find "$artifacts" -type f ! -name 'slow-unit-*' | sort)
  slow=$(find "$artifacts" -type f -name 'slow-unit-*' | wc -l)
  echo "$t: ${elapsed}s, executions ${execs:-?}, exec/s ${rate:-?}, corpus ${corp:-?}" \
    "($(find "$corpus" -type f | wc -l) files on disk), peak RSS ${peak:-?} MB, slow units $slow, libFuzzer exit $rc"
  # (Counted in the fuzzing process, so not in fork mode.)
  [ ${#keep_going[@]} -gt 0 ] || grep -E '^pdf_convert: tolerated' "$log" | sed "s/^/  /" || true
  interrupted=""
  [ "$rc" -eq 124 ] && interrupted=", stopped at the hard time limit"
  if [ -n "$found" ] || { [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ]; }; then
    failed=1
    echo "$t: CRASH (log: $log)"
    n=0
    for a in $found; do
      n=$((n + 1))
      echo "  artifact: $a ($(stat -c %s "$a") bytes)"
      [ "$n" -le 10 ] && triage "$bin_dir/$t" "$a" | sed 's/^/      /'
    done
    summary+=("$t: CRASH, $(wc -w <<<"$found") artifact(s), ${execs:-?} executions in ${elapsed}s")
  else
    rmdir "$artifacts" 2>/dev/null || true
    summary+=("$t: ok, ${execs:-?} executions in ${elapsed}s (${rate:-?}/s), corpus ${corp:-?}$interrupted")
  fi
  echo "  log: $log"
done

echo "== summary (build ${build_secs}s, up to ${seconds}s per target)"
printf '  %s\n' "${summary[@]}"
exit "$failed"
