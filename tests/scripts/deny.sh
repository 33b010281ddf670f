#!/usr/bin/env bash
# cargo-deny over the native workspace and the plugins workspace: RustSec
# advisories, licences, bans (duplicate heavy crates) and sources, with the
# configuration in deny.toml.
#
# - Installs the pinned cargo-deny if it is missing (about 4 minutes at the
#   default -j 1, DENY_INSTALL_JOBS to change; in a temporary target dir,
#   never the workspace's).
# - Keeps the advisory database itself: a shallow git clone under
#   ~/.cache/evistream/advisory-db (deny.toml's db-path), refreshed on every
#   run from $EVISTREAM_ADVISORY_DB_URL when it is set (RustSec's GitHub
#   repository where that is reachable;
#   any git URL or the path of a local copy of that repository works, e.g. to
#   seed the cache on a machine without GitHub). cargo-deny itself runs
#   --offline and never fetches.
# - If the database can be neither fetched nor found in the cache, says so and
#   runs the licences, bans and sources checks without the advisories.
set -euo pipefail
cd "$(dirname "$0")/../.."

# 0.20.2: the newest release (2026-07-09); builds with Rust 1.88+.
DENY_VERSION=0.20.2
# No default: where only package registries are reachable, nothing else is
# contacted; the cached copy is used.
DB_URL="${EVISTREAM_ADVISORY_DB_URL:-}"
DB_ROOT="$HOME/.cache/evistream/advisory-db"
# Where cargo-deny looks for the database of deny.toml's db-urls entry:
# <db-path>/<last URL segment>-<XxHash64 of the lower-cased URL> (see
# url_to_db_path in cargo-deny's src/advisories/helpers/db.rs). Recheck when
# bumping DENY_VERSION.
DB_DIR="$DB_ROOT/advisory-db-3157b0e258782691"
MAX_DB_AGE_DAYS=90

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# --- cargo-deny -------------------------------------------------------------
if [[ "$(cargo deny --version 2>/dev/null)" != "cargo-deny $DENY_VERSION" ]]; then
  echo "installing cargo-deny $DENY_VERSION (a few minutes)"
  nice -n 19 cargo install --locked --quiet -j "${DENY_INSTALL_JOBS:-1}" \
    --target-dir "$tmp/build" cargo-deny --version "$DENY_VERSION"
fi
cargo deny --version

# --- advisory database ------------------------------------------------------
# Git must not see a GIT_DIR etc. inherited from a hook.
git_db() {
  env -u GIT_DIR -u GIT_WORK_TREE -u GIT_INDEX_FILE -u GIT_OBJECT_DIRECTORY \
    GIT_TERMINAL_PROMPT=0 timeout 120 git "$@"
}

refresh_db() {
  local url=$DB_URL
  # A local path: clone it through file:// so that --depth applies.
  if [[ -d $url ]]; then url="file://$(cd "$url" && pwd)"; fi
  if [[ -d $DB_DIR/.git ]]; then
    git_db -C "$DB_DIR" fetch --quiet --depth=1 "$url" main &&
      git_db -C "$DB_DIR" reset --quiet --hard FETCH_HEAD
  else
    mkdir -p "$DB_ROOT"
    rm -rf "$DB_DIR.partial"
    git_db clone --quiet --depth=1 --branch main "$url" "$DB_DIR.partial" &&
      mv "$DB_DIR.partial" "$DB_DIR"
  fi
}

checks=(licenses bans sources)
if [[ -z $DB_URL ]]; then
  echo "advisory database: EVISTREAM_ADVISORY_DB_URL not set; using the cached copy"
elif refresh_db 2>"$tmp/fetch.log"; then
  echo "advisory database: fetched from $DB_URL"
else
  echo "advisory database: could not fetch from $DB_URL: $(tail -n1 "$tmp/fetch.log")"
fi
if [[ -d $DB_DIR/crates ]] && commit=$(git_db -C "$DB_DIR" log -1 --format='%h %ct %cs'); then
  read -r db_rev db_time db_date <<<"$commit"
  db_age=$(( ($(date +%s) - db_time) / 86400 ))
  echo "advisory database: $DB_DIR at $db_rev of $db_date ($db_age days old)"
  if (( db_age > MAX_DB_AGE_DAYS )); then
    echo "WARNING: the advisory database is older than $MAX_DB_AGE_DAYS days: advisories published since $db_date are NOT checked."
    echo "         Refresh it: EVISTREAM_ADVISORY_DB_URL=<git URL or path of a current copy of RustSec/advisory-db> bash tests/scripts/deny.sh"
  fi
  checks=(advisories "${checks[@]}")
else
  echo "WARNING: advisory database UNAVAILABLE (not fetchable from $DB_URL, no copy in $DB_DIR):"
  echo "         the advisories check is SKIPPED; licences, bans and sources are still checked."
  echo "         Seed it: EVISTREAM_ADVISORY_DB_URL=<git URL or path of a copy of RustSec/advisory-db> bash tests/scripts/deny.sh"
fi

# --- checks -----------------------------------------------------------------
status=0
for manifest in Cargo.toml plugins/Cargo.toml; do
  echo "-- cargo deny: $manifest (${checks[*]})"
  # cargo-deny runs --offline (its only switch to not fetch the database), so
  # the crates' manifests must be in cargo's cache first. --locked: never
  # rewrite a Cargo.lock.
  cargo fetch --locked --quiet --manifest-path "$manifest"
  cargo deny --offline --locked --manifest-path "$manifest" --config deny.toml \
    check "${checks[@]}" || status=1
done
exit "$status"
