#!/usr/bin/env bash
# The whole default test suite, from a fresh machine: set up .venv, run pytest.
# Slow tests are excluded by default; add `-m slow` (or `-m ""` for all).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/setup_clients.sh  # the Android clients' virtualenvs (export/core/clients.py), made on first use
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
exec .venv/bin/python -m pytest -q "$@"
