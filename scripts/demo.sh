#!/usr/bin/env bash
# Main job: set up, then run the whole runbook on the embedded defaults (local fork, SQLite, in-process queue).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export COPYTRADE_HOME=${COPYTRADE_HOME:-$PWD/.copytrade-demo}
exec .venv/bin/copytrade demo "$@"
