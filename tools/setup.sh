#!/usr/bin/env bash
# Installs what hexe needs from Debian (only what is missing), then configures and builds.
# Idempotent: on a machine that has everything and an up-to-date build it does next to nothing.
#   tools/setup.sh [BUILD_DIR] [extra cmake args...]     (BUILD_DIR defaults to build)
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir=${1:-build}
shift || true

# ocl-icd-opencl-dev: Debian's oneDNN is built with its OpenCL GPU runtime, so its CMake config
# looks for OpenCL; libdnnl-dev only recommends the package, and recommends are not installed here.
# libsimde-dev: the AVX-512 tier emulated for its tests on CPUs without it (cpu_kernels/CMakeLists.txt).
packages=(cmake ninja-build g++ pkg-config libcli11-dev nlohmann-json3-dev libgtest-dev
          libhwloc-dev libtbb-dev libdnnl-dev ocl-icd-opencl-dev libnuma-dev libpcre2-dev libsimde-dev)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "hexe setup: installing ${missing[*]}" >&2
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

if [ ! -f "$build_dir/build.ninja" ]; then
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >&2
fi
cmake --build "$build_dir" -j "$(nproc)" >&2
