#!/usr/bin/env bash
# Creates the virtualenvs of the two Android-side clients the export tests run on our files,
# each apart from .venv because their pins clash with TensorFlow's (NumPy 1, protobuf 3):
#   .venv-mediapipe       mediapipe (MediaPipe Tasks: TextClassifier, TextEmbedder)
#   .venv-tflite-support  tflite-support (LiteRT Task Library: BertNLClassifier,
#                         BertQuestionAnswerer); needs Debian's libusb-1.0-0
# Idempotent: reinstalls a client only when its pins (this script) changed. About a minute
# for both on a fresh machine with PyPI reachable; nothing when the stamps are current.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-}"
if [[ -z "${PYTHON}" ]]; then
  if command -v python3.11 >/dev/null 2>&1; then PYTHON=python3.11; else PYTHON=python3; fi
fi
if ! "${PYTHON}" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  echo "setup_clients.sh: ${PYTHON} is not Python 3.11 (set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi

MEDIAPIPE_REQUIREMENTS=("mediapipe==1.2.2")
# tflite-support 0.4.4's extension modules were built against NumPy 1 and protobuf 3.
TFLITE_SUPPORT_REQUIREMENTS=("tflite-support==0.4.4" "numpy<2" "protobuf>=3.20,<4")

# tflite_support's native library links libusb-1.0.so.0 (the Edge TPU delegate); without it
# `import tflite_support.task` fails.
ensure_libusb() {
  if ldconfig -p 2>/dev/null | grep -q 'libusb-1.0.so.0'; then
    return
  fi
  if [[ "$(id -u)" != "0" ]] || ! command -v apt-get >/dev/null 2>&1; then
    echo "setup_clients.sh: libusb-1.0.so.0 is missing; install Debian's libusb-1.0-0" \
      "(apt-get install libusb-1.0-0) as root" >&2
    exit 1
  fi
  echo "setup_clients.sh: libusb-1.0.so.0 missing: apt-get install -y" \
    "--no-install-recommends libusb-1.0-0" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    libusb-1.0-0 >&2
}

# make_venv DIR REQUIREMENT...: (re)creates DIR when its stamp differs from the requirements.
make_venv() {
  local venv="$1"
  shift
  local stamp="${venv}/.keras_bert_installed"
  local want
  want="$(printf '%s\n' "${PYTHON}" "$@" | sha256sum | cut -d' ' -f1)"
  if [[ -f "${stamp}" && "$(cat "${stamp}")" == "${want}" ]]; then
    return
  fi
  local start="${SECONDS}"
  echo "setup_clients.sh: creating ${venv} ($*)" >&2
  rm -rf "${venv}"
  "${PYTHON}" -m venv "${venv}"
  "${venv}/bin/python" -m pip install --quiet --disable-pip-version-check "$@"
  echo "${want}" > "${stamp}"
  echo "setup_clients.sh: ${venv} ready in $((SECONDS - start)) s" >&2
}

make_venv .venv-mediapipe "${MEDIAPIPE_REQUIREMENTS[@]}"
ensure_libusb
make_venv .venv-tflite-support "${TFLITE_SUPPORT_REQUIREMENTS[@]}"
