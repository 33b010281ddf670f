#!/usr/bin/env bash
# Tools the tests need beyond cargo: the wasm32-wasip2 target (plugins),
# an S3-compatible server (moto, from PyPI), pdftotext (poppler-utils,
# the converter benchmark's baseline), and the dashboard's browsers:
# Debian's chromium and chromedriver, Debian's firefox-esr and geckodriver;
# R with metafor (Debian's r-base-core, r-cran-metafor), the reference the
# effect sizes and derivations are checked against.
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
# Firefox: the dashboard contract names it beside Chromium. Debian ships
# no geckodriver; Mozilla publishes it on crates.io, so cargo builds it (a
# few minutes, once per machine; pinned).
GECKODRIVER_VERSION=0.37.1
if ! command -v firefox-esr >/dev/null; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq firefox-esr >/dev/null) || {
    echo "firefox-esr could not be installed: the dashboard's Firefox test needs it" >&2
    exit 1
  }
fi
gecko="${CARGO_HOME:-$HOME/.cargo}/bin/geckodriver"
if [[ "$("$gecko" --version 2>/dev/null | head -n1)" != "geckodriver $GECKODRIVER_VERSION"* ]]; then
  echo "installing geckodriver $GECKODRIVER_VERSION (a few minutes)"
  tmp=$(mktemp -d)
  nice -n 19 cargo install --locked --quiet --target-dir "$tmp" geckodriver --version "$GECKODRIVER_VERSION" || {
    rm -rf "$tmp"
    echo "geckodriver could not be built: the dashboard's Firefox test needs it" >&2
    exit 1
  }
  rm -rf "$tmp"
fi
if ! Rscript -e 'suppressMessages(library(metafor))' >/dev/null 2>&1; then
  echo "installing R and metafor from Debian (a few minutes, once per machine)"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends r-base-core r-cran-metafor >/dev/null) || {
    echo "r-base-core and r-cran-metafor could not be installed: the meta-analysis tests check against them" >&2
    exit 1
  }
fi
echo "tools ready"
