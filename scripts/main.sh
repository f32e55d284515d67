#!/usr/bin/env bash
# The main job, from a fresh machine: set up .venv, then run the whole pipeline
# (fine-tune -> SavedModel -> float/int8 TFLite with metadata and parity reports ->
# sentence-embedding TFLite -> the Android clients on the files -> benchmark).
# Extra arguments go to scripts/pipeline.py (e.g. --init=DIR --train=TSV --eval=TSV).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/setup_clients.sh  # the Android clients' virtualenvs (export.check_clients)
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"
exec .venv/bin/python scripts/pipeline.py "$@"
