#!/usr/bin/env bash
# Idempotent set-up for a fresh machine: a venv with the pinned Python packages, and the npm nodes
# (anvil, hardhat). Quick on a second run: each part re-installs only when its manifest changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.copytrade-installed
want=$(cat pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e ".[test,bench]"
  echo "$want" > "$stamp"
fi
nstamp=node_modules/.copytrade-installed
nwant=$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)
if [ ! -f "$nstamp" ] || [ "$(cat "$nstamp")" != "$nwant" ] || [ ! -e node_modules/.bin/anvil ]; then
  npm ci --no-audit --no-fund --loglevel=error >/dev/null
  echo "$nwant" > "$nstamp"
fi
# Headless Chromium (Debian's package) for the HTML report test (tests/unit/test_leaders_html.py): installed
# when missing, as root, from the Debian registry.
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 || \
      { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q --no-install-recommends chromium >/dev/null; }
  else
    echo "setup: chromium missing (apt-get install chromium as root); the HTML report test needs it" >&2
  fi
fi
