#!/usr/bin/env bash
# Sets up an emulated arm64 CPU for `python -m export.check_arm64`, from a clean clone.
#
#   scripts/setup_arm64.sh            # as root (or with passwordless sudo)
#
# What it does, skipping every step that is already done (so running it again takes seconds):
#   0. scripts/setup.sh: the host's .venv, where the check runs;
#   1. apt-get installs Debian's qemu-user-static and debootstrap (apt-get update only when the
#      package lists do not know them);
#   2. mounts binfmt_misc and registers qemu-aarch64 with the kernel, so arm64 binaries run here;
#   3. debootstraps Debian bookworm arm64 (minbase, python3, python3-venv) into
#      ${ARM64_DIR}/rootfs (default .cache/arm64/rootfs, ignored by git);
#   4. downloads, on the host, the aarch64 wheels of ai-edge-litert and its dependencies at the
#      versions pinned in requirements.txt (pip inside the chroot has no usable CA bundle);
#   5. creates the venv /opt/litert inside the rootfs and installs those wheels with --no-index;
#   6. checks that `import ai_edge_litert` works under emulation (prints the machine, aarch64).
#
# Environment: ARM64_DIR (default .cache/arm64), DEBIAN_MIRROR (default: the host's apt mirror,
# else http://deb.debian.org/debian), DEBIAN_SUITE (default bookworm, whose python3 is 3.11).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "$(id -u)" != 0 ]]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    exec sudo -n --preserve-env=ARM64_DIR,DEBIAN_MIRROR,DEBIAN_SUITE "$0" "$@"
  fi
  echo "setup_arm64.sh: needs root (apt-get, binfmt_misc, debootstrap, chroot); run it as root" >&2
  exit 1
fi

ARM64_DIR="${ARM64_DIR:-.cache/arm64}"
ROOTFS="${ARM64_DIR}/rootfs"
WHEELS="${ARM64_DIR}/wheels"
SUITE="${DEBIAN_SUITE:-bookworm}"
VENV_IN_ROOTFS=/opt/litert
# The aarch64 wheels: ai-edge-litert and its runtime dependencies (pip show ai-edge-litert).
WHEEL_PACKAGES=(
  ai-edge-litert numpy ml_dtypes protobuf flatbuffers tqdm typing_extensions backports.strenum
)

start_all=${SECONDS}
step_start=${SECONDS}
log() { echo "setup_arm64.sh: $*" >&2; }
step_done() {
  log "$1 ($((SECONDS - step_start)) s)"
  step_start=${SECONDS}
}

# --- 0. The host's .venv (the check runs there; its pip downloads the wheels) ------------------
scripts/setup.sh
step_done "host .venv ready"

# --- 1. Host packages -------------------------------------------------------------------------
mkdir -p "${ARM64_DIR}"
if ! command -v qemu-aarch64-static >/dev/null 2>&1 || ! command -v debootstrap >/dev/null 2>&1
then
  export DEBIAN_FRONTEND=noninteractive
  apt_log="${ARM64_DIR}/apt.log"
  if ! apt-get install -y -q qemu-user-static debootstrap > "${apt_log}" 2>&1; then
    log "apt-get install failed; running apt-get update and trying again"
    apt-get update -q >> "${apt_log}" 2>&1
    apt-get install -y -q qemu-user-static debootstrap >> "${apt_log}" 2>&1 || {
      log "apt-get install failed; last lines of ${apt_log}:"
      tail -n 20 "${apt_log}" >&2
      exit 1
    }
  fi
  step_done "installed qemu-user-static and debootstrap"
else
  step_done "qemu-user-static and debootstrap already installed"
fi

# --- 2. binfmt_misc ---------------------------------------------------------------------------
BINFMT=/proc/sys/fs/binfmt_misc
if [[ ! -e "${BINFMT}/register" ]]; then
  mount -t binfmt_misc binfmt_misc "${BINFMT}"
fi
if [[ ! -e "${BINFMT}/qemu-aarch64" ]]; then
  rule="$(grep -h '^:qemu-aarch64:' /usr/lib/binfmt.d/qemu-aarch64.conf)"
  if [[ -z "${rule}" ]]; then
    log "no ':qemu-aarch64:' rule in /usr/lib/binfmt.d/qemu-aarch64.conf"
    exit 1
  fi
  echo "${rule}" > "${BINFMT}/register"
  step_done "registered qemu-aarch64 with binfmt_misc"
else
  step_done "qemu-aarch64 already registered with binfmt_misc"
fi
if [[ "$(cat "${BINFMT}/qemu-aarch64" | head -1)" != "enabled" ]]; then
  log "${BINFMT}/qemu-aarch64 is registered but not enabled"
  exit 1
fi

# --- 3. The arm64 root file system --------------------------------------------------------------
debian_mirror() {
  if [[ -n "${DEBIAN_MIRROR:-}" ]]; then echo "${DEBIAN_MIRROR}"; return; fi
  local uri
  uri="$(grep -hs -m1 -E '^URIs:.*/debian/?$' /etc/apt/sources.list.d/*.sources \
    | awk '{print $2}' || true)"
  if [[ -z "${uri}" ]]; then
    uri="$(grep -hs -m1 -E '^deb .*/debian/? ' /etc/apt/sources.list | awk '{print $2}' || true)"
  fi
  echo "${uri:-http://deb.debian.org/debian}"
}

if [[ ! -f "${ROOTFS}/.debootstrap_done" ]]; then
  mirror="$(debian_mirror)"
  log "debootstrap --arch=arm64 ${SUITE} from ${mirror} (takes minutes under emulation)"
  # Build in a temporary folder and rename it at the end: an interrupted run leaves no half rootfs.
  tmp="${ROOTFS}.partial"
  rm -rf --one-file-system "${tmp}"
  debootstrap --arch=arm64 --variant=minbase --include=python3,python3-venv \
    "${SUITE}" "${tmp}" "${mirror}" > "${ARM64_DIR}/debootstrap.log" 2>&1 || {
      log "debootstrap failed; last lines of ${ARM64_DIR}/debootstrap.log:"
      tail -n 20 "${ARM64_DIR}/debootstrap.log" >&2
      exit 1
    }
  date -u +%Y-%m-%dT%H:%M:%SZ > "${tmp}/.debootstrap_done"
  rm -rf --one-file-system "${ROOTFS}"
  mv "${tmp}" "${ROOTFS}"
  step_done "debootstrapped ${ROOTFS}"
else
  step_done "${ROOTFS} already debootstrapped"
fi

# --- 4. aarch64 wheels, downloaded on the host ----------------------------------------------------
pins=()
for name in "${WHEEL_PACKAGES[@]}"; do
  # requirements.txt is the one place that pins versions; match names case- and -/_-insensitively.
  pattern="$(echo "${name}" | sed -e 's/[-_.]/[-_.]/g')"
  pin="$(grep -i -E "^${pattern}==" requirements.txt | head -1 || true)"
  if [[ -z "${pin}" ]]; then
    log "requirements.txt pins no version of ${name}"
    exit 1
  fi
  pins+=("${pin}")
done
want="$(printf '%s\n' "${pins[@]}" | sha256sum | cut -d' ' -f1)"
if [[ ! -f "${WHEELS}/.downloaded" || "$(cat "${WHEELS}/.downloaded")" != "${want}" ]]; then
  rm -rf "${WHEELS}.partial"
  mkdir -p "${WHEELS}.partial"
  # pip picks aarch64 wheels for these platform tags, or pure-Python ones; --only-binary
  # keeps it from ever building an x86 wheel from a source archive.
  .venv/bin/python -m pip download --quiet --disable-pip-version-check --no-deps \
    --only-binary=:all: \
    --python-version 3.11 --implementation cp --abi cp311 --abi abi3 --abi none \
    --platform manylinux_2_27_aarch64 --platform manylinux_2_28_aarch64 \
    --platform manylinux_2_17_aarch64 --platform manylinux2014_aarch64 --platform any \
    -d "${WHEELS}.partial" "${pins[@]}" > "${ARM64_DIR}/pip_download.log" 2>&1 || {
      log "pip download failed; last lines of ${ARM64_DIR}/pip_download.log:"
      tail -n 20 "${ARM64_DIR}/pip_download.log" >&2
      exit 1
    }
  if ls "${WHEELS}.partial"/*.whl | grep -E 'x86_64|amd64' >/dev/null; then
    log "pip downloaded an x86 wheel into ${WHEELS}.partial"
    exit 1
  fi
  echo "${want}" > "${WHEELS}.partial/.downloaded"
  rm -rf "${WHEELS}"
  mv "${WHEELS}.partial" "${WHEELS}"
  step_done "downloaded $(ls "${WHEELS}"/*.whl | wc -l) aarch64 wheels to ${WHEELS}"
else
  step_done "aarch64 wheels already in ${WHEELS}"
fi

# --- 5. The venv inside the rootfs ---------------------------------------------------------------
installed_stamp="${ROOTFS}${VENV_IN_ROOTFS}/.keras_bert_wheels"
if [[ ! -f "${installed_stamp}" || "$(cat "${installed_stamp}")" != "${want}" ]]; then
  rm -rf "${ROOTFS}${VENV_IN_ROOTFS}" "${ROOTFS}/tmp/wheels"
  # The venv's pip comes from the rootfs's own ensurepip wheel (Debian's python3-venv).
  chroot "${ROOTFS}" /usr/bin/python3 -m venv "${VENV_IN_ROOTFS}"
  cp -r "${WHEELS}" "${ROOTFS}/tmp/wheels"
  wheels_inside=()
  for wheel in "${WHEELS}"/*.whl; do wheels_inside+=("/tmp/wheels/$(basename "${wheel}")"); done
  chroot "${ROOTFS}" "${VENV_IN_ROOTFS}/bin/python" -m pip install --quiet \
    --disable-pip-version-check --no-index --no-deps "${wheels_inside[@]}"
  rm -rf "${ROOTFS}/tmp/wheels"
  echo "${want}" > "${installed_stamp}"
  step_done "installed the wheels into ${ROOTFS}${VENV_IN_ROOTFS}"
else
  step_done "${ROOTFS}${VENV_IN_ROOTFS} already has the wheels"
fi

# --- 6. Smoke test --------------------------------------------------------------------------------
chroot "${ROOTFS}" "${VENV_IN_ROOTFS}/bin/python" -c '
import platform, importlib.metadata as m
import numpy, ai_edge_litert.interpreter
print("setup_arm64.sh: arm64 ok:", platform.machine(), "Python", platform.python_version(),
      "ai-edge-litert", m.version("ai-edge-litert"), "numpy", numpy.__version__)
' >&2
step_done "smoke test"
log "total $((SECONDS - start_all)) s"
