#!/usr/bin/env bash
# Load benchmark (not a test): latency of the acceptance `Projects` query.
#
# What it does:
#   1. builds the release binary (`cargo build --release -p evistream`);
#   2. starts `evistream serve` on 127.0.0.1 (port chosen by the OS) over a
#      fresh data dir in a temp folder (embedded SQLite, fs blobs);
#   3. prints the server's RSS (VmRSS from /proc/PID/status) when idle: right
#      after start, and again after the setup below, before any load;
#   4. registers a user and creates $PROJECTS projects in their organization;
#   5. runs the acceptance `Projects` query (first: $PAGE) from $CONNECTIONS
#      concurrent keep-alive clients for $DURATION and prints p50/p90/p95/p99
#      latency, throughput, and errors; then the RSS after the load.
#
# Load generator: `wrk` (Debian: apt-get install -y wrk), driven by a Lua
# script that POSTs the JSON body with the Authorization header and prints
# the percentiles in its `done` hook. Falls back to `oha` (cargo install oha)
# when wrk is missing. Needs curl and jq.
#
# The server and the load generator share this machine's CPUs, so the numbers
# are a floor for the server, and comparable only between runs on one machine.
#
# Usage: tests/bench/load.sh
#   DURATION=15s CONNECTIONS=50 THREADS=<nproc, at most 4> PROJECTS=50 PAGE=20
#   CARGO_TARGET_DIR (default ~/.cache/evistream/target)
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION="${DURATION:-15s}"
CONNECTIONS="${CONNECTIONS:-50}"
THREADS="${THREADS:-$(n=$(nproc); echo $((n < 4 ? n : 4)))}"
PROJECTS="${PROJECTS:-50}"
PAGE="${PAGE:-20}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/evistream/target}"

for tool in curl jq; do
  command -v "$tool" >/dev/null || { echo "load.sh: $tool is required" >&2; exit 1; }
done
if command -v wrk >/dev/null; then
  LOADGEN=wrk
elif command -v oha >/dev/null; then
  LOADGEN=oha
else
  echo "load.sh: install wrk (apt-get install -y wrk) or oha (cargo install oha)" >&2
  exit 1
fi

echo "== building the release binary"
cargo build --release -p evistream
BIN="$CARGO_TARGET_DIR/release/evistream"

WORK="$(mktemp -d)"
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

rss() { awk '/^VmRSS:/ { printf "%.1f MiB (%s kB)", $2 / 1024, $2 }' "/proc/$SERVER_PID/status"; }

echo "== starting evistream serve (data dir $WORK/data)"
# Environment settings of the caller must not change what is measured.
while IFS='=' read -r name _; do unset "$name"; done < <(env | grep '^EVISTREAM_' || true)
RUST_LOG=warn "$BIN" serve --listen 127.0.0.1:0 --data-dir "$WORK/data" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
ADDR=""
for _ in $(seq 1 300); do
  ADDR="$(sed -n 's|^evistream listening on http://\([^/]*\)/graphql$|\1|p' "$WORK/server.log" | head -n1)"
  [ -n "$ADDR" ] && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; echo "server exited" >&2; exit 1; }
  sleep 0.1
done
[ -n "$ADDR" ] || { cat "$WORK/server.log" >&2; echo "server did not start" >&2; exit 1; }
URL="http://$ADDR/graphql"
sleep 1
echo "listening on $URL (pid $SERVER_PID)"
echo "idle RSS after start:          $(rss)"

gql() { # gql TOKEN JSON-BODY → response body
  local auth=()
  [ -n "$1" ] && auth=(-H "Authorization: Bearer $1")
  curl -sS --fail-with-body -X POST "$URL" -H 'Content-Type: application/json' "${auth[@]}" -d "$2"
}

echo "== setup: one user, $PROJECTS projects"
REG="$(gql "" "$(jq -cn --arg email "bench-$$-$RANDOM@example.org" '{
  query: "mutation($email: String!, $password: String!) { register(input: { email: $email, password: $password, name: \"Bench\" }) { accessToken organization { id } } }",
  variables: { email: $email, password: "correct horse battery staple" } }')")"
TOKEN="$(jq -er '.data.register.accessToken' <<<"$REG")"
ORG="$(jq -er '.data.register.organization.id' <<<"$REG")"
for i in $(seq 1 "$PROJECTS"); do
  gql "$TOKEN" "$(jq -cn --arg org "$ORG" --arg name "Bench project $i" '{
    query: "mutation($o: ID!, $n: String!) { createProject(input: { organizationId: $o, name: $n }) { id } }",
    variables: { o: $org, n: $name } }')" | jq -e '.data.createProject.id' >/dev/null
done

# The acceptance operation, verbatim (shared/acceptance/operations.graphql).
PROJECTS_QUERY='query Projects($organizationId: ID!, $first: Int, $after: String) {
  projects(organizationId: $organizationId, first: $first, after: $after) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node { id name } }
  }
}'
BODY="$(jq -cn --arg q "$PROJECTS_QUERY" --arg org "$ORG" --argjson first "$PAGE" \
  '{ query: $q, operationName: "Projects", variables: { organizationId: $org, first: $first } }')"
CHECK="$(gql "$TOKEN" "$BODY")"
[ "$(jq -r '.data.projects.totalCount' <<<"$CHECK")" = "$PROJECTS" ] &&
  [ "$(jq -r '.data.projects.edges | length' <<<"$CHECK")" = "$(( PAGE < PROJECTS ? PAGE : PROJECTS ))" ] ||
  { echo "unexpected Projects response: $CHECK" >&2; exit 1; }
sleep 1
echo "idle RSS before the load:      $(rss)"

echo "== load: Projects(first: $PAGE), $CONNECTIONS connections, $THREADS threads, $DURATION ($LOADGEN)"
if [ "$LOADGEN" = wrk ]; then
  cat >"$WORK/projects.lua" <<EOF
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer $TOKEN"
wrk.body = [==[$BODY]==]

done = function(summary, latency, requests)
  local ms = function(us) return string.format("%.2f ms", us / 1000) end
  io.write("----- Projects query latency\n")
  io.write(string.format("requests:   %d in %.1f s (%.0f req/s)\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6)))
  io.write(string.format("errors:     connect %d, read %d, write %d, timeout %d, non-2xx %d\n",
    summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.timeout, summary.errors.status))
  io.write("p50:        " .. ms(latency:percentile(50)) .. "\n")
  io.write("p90:        " .. ms(latency:percentile(90)) .. "\n")
  io.write("p95:        " .. ms(latency:percentile(95)) .. "\n")
  io.write("p99:        " .. ms(latency:percentile(99)) .. "\n")
  io.write("max:        " .. ms(latency.max) .. "\n")
end
EOF
  wrk -t "$THREADS" -c "$CONNECTIONS" -d "$DURATION" --timeout 10s -s "$WORK/projects.lua" "$URL"
else
  oha --no-tui -z "$DURATION" -c "$CONNECTIONS" -m POST -T application/json \
    -H "Authorization: Bearer $TOKEN" -d "$BODY" "$URL"
fi
# GraphQL errors come back as 200: check the answer is still right.
[ "$(gql "$TOKEN" "$BODY" | jq -r '.data.projects.totalCount')" = "$PROJECTS" ] ||
  { echo "Projects query failed after the load" >&2; exit 1; }
echo "RSS after the load:            $(rss)"
