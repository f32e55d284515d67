#!/usr/bin/env bash
# The main job, from a fresh machine: set up .venv, then run training.main.
# Extra arguments go to `python -m training.main` (e.g. --init=DIR, --preset=bert_base).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
exec .venv/bin/python -m training.main "$@"
