#!/usr/bin/env bash
# Run every copytrade bench (figures + conditions); see bench/README.md.
#   bash bench/run.sh [--only cli,decision,cost,throughput,latency,gas,scale] [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh  # a fresh clone: venv + pinned packages (incl. py-spy, pyinstrument) + anvil
PY="${PYTHON:-.venv/bin/python}"
export PATH="$PWD/node_modules/.bin:$PATH"
exec "$PY" -m bench "$@"
