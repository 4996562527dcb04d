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
