#!/usr/bin/env bash
# Runs the project's Bazel tests offline: `bazel test //...`.
#
#   .ci/bazel_test.sh                          # virtualenv at $VENV, default <repo>/.venv
#   .ci/bazel_test.sh /path/to/venv            # virtualenv given as the first argument
#   .ci/bazel_test.sh --config=all             # other arguments go to `bazel test`
#   .ci/bazel_test.sh .venv //tests/layers/... # a `//` argument replaces //...
#
# Installs Debian's bazel-bootstrap (Bazel 4.2.3, the only Bazel that installs
# without network) when `bazel` is missing, and puts the virtualenv's bin/ first
# on PATH: Bazel's Python toolchain runs `python3` from PATH, and .bazelrc passes
# PATH into actions and tests. Safe to run again.
set -euo pipefail

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

venv=${VENV:-$repo_root/.venv}
if [[ $# -gt 0 && $1 != -* && $1 != //* ]]; then
  venv=$1
  shift
fi
if [[ ! -x $venv/bin/python3 ]]; then
  echo "error: no virtualenv at '$venv' (no bin/python3); pass it as \$1 or \$VENV" >&2
  exit 2
fi
venv=$(cd "$venv" && pwd)

cd "$repo_root"
# Bazel would load the BUILD files TensorFlow ships in site-packages.
if [[ $venv == "$repo_root"/* ]] && ! grep -qxF "${venv#"$repo_root"/}" .bazelignore; then
  echo "warning: add '${venv#"$repo_root"/}' to .bazelignore: \`//...\` loads the BUILD files inside it" >&2
fi

if ! command -v bazel >/dev/null 2>&1; then
  sudo=()
  [[ $(id -u) -eq 0 ]] || sudo=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  echo "bazel not found: installing bazel-bootstrap" >&2
  if ! "${sudo[@]}" apt-get install -y -q bazel-bootstrap; then
    "${sudo[@]}" apt-get update -q
    "${sudo[@]}" apt-get install -y -q bazel-bootstrap
  fi
fi

export PATH="$venv/bin:$PATH"
# tests/test_case.py finds the read-only ../shared folder through this (the test
# sandbox runs the tests from elsewhere); .bazelrc passes it in.
if [[ -z ${KERAS_BERT_SHARED_DIR:-} && -d ../shared ]]; then
  export KERAS_BERT_SHARED_DIR=$(cd ../shared && pwd)
fi

targets=(//...)
for arg in "$@"; do
  [[ $arg == //* ]] && targets=()
done

exec bazel test "${targets[@]}" "$@"
