#!/usr/bin/env bash
# Run every copytrade bench (figures + conditions); see bench/README.md.
#   bash bench/run.sh [--only cli,decision,cost,throughput,latency,gas,scale] [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
export PATH="$PWD/node_modules/.bin:$PATH"
exec "$PY" -m bench "$@"
