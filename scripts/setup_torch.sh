#!/usr/bin/env bash
# Creates .venv-torch, the virtualenv of the PyTorch side of
# `python -m benchmarks.pretraining_throughput` (Hugging Face `BertForPreTraining`), apart
# from .venv so that torch and transformers never meet TensorFlow's pins. The benchmark runs
# benchmarks/hf_pretraining_worker.py with its Python.
# Idempotent: reinstalls only when the pins (this script) changed. Prints the venv's path.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-}"
if [[ -z "${PYTHON}" ]]; then
  if command -v python3.11 >/dev/null 2>&1; then PYTHON=python3.11; else PYTHON=python3; fi
fi

# The CPU wheel of torch; the exact versions pip resolved when this was written.
REQUIREMENTS=("torch==2.13.0" "transformers==5.25.0" "numpy==2.4.6")
VENV=.venv-torch
STAMP="${VENV}/.keras_bert_installed"

want="$(printf '%s\n' "${PYTHON}" "${REQUIREMENTS[@]}" | sha256sum | cut -d' ' -f1)"
if [[ ! -f "${STAMP}" || "$(cat "${STAMP}")" != "${want}" ]]; then
  start="${SECONDS}"
  echo "setup_torch.sh: creating ${VENV} (${REQUIREMENTS[*]})" >&2
  rm -rf "${VENV}"
  "${PYTHON}" -m venv "${VENV}"
  "${VENV}/bin/python" -m pip install --quiet --disable-pip-version-check "${REQUIREMENTS[@]}"
  echo "${want}" > "${STAMP}"
  echo "setup_torch.sh: ${VENV} ready in $((SECONDS - start)) s" >&2
fi
echo "$(pwd)/${VENV}"
