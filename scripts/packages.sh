#!/usr/bin/env bash
# Installs the Debian packages kvrag builds with, only those missing.
# --for-tests adds what only the tests need: Chromium for the browser test
# (it takes longer to install than everything else together), python3 for
# the training chunker's parity check, python3-torch for the checkpoint
# converter's test, clang and its sanitizer and libFuzzer runtimes for
# scripts/sanitize.sh and scripts/fuzz.sh.
set -euo pipefail

packages=(
  cmake g++ make pkg-config
  libopenblas-dev libfaiss-dev libsqlite3-dev libpq-dev libsentencepiece-dev sentencepiece
  libcpp-httplib-dev nlohmann-json3-dev libgtest-dev libgmock-dev libbenchmark-dev libhiredis-dev libdnnl-dev
  # libdnnl-dev's CMake config asks for OpenCL (its GPU runtime), which
  # --no-install-recommends leaves out.
  ocl-icd-opencl-dev
)
[ "${1:-}" = "--for-tests" ] && packages+=(chromium python3 python3-torch clang libclang-rt-dev)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  echo "packages: all installed"
  exit 0
fi
echo "packages: installing ${missing[*]}"
sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
"${sudo_cmd[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -q --no-install-recommends \
  "${missing[@]}"
