#!/usr/bin/env bash
# Test job: set up, then run the whole test suite (pass -m "not slow" for a quick run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
