#!/usr/bin/env bash
# The GPU checks of issue 7, for a lent GPU machine (the `device` tool). That machine has no
# compilers, -dev packages or network, so build here and carry the build and the shared
# libraries it needs:
#   cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DHEXE_CUDA=ON -DHEXE_CUDA_ARCHS="80;90"
#   cmake --build build-gpu --target hexe test_gpu test_runtime_gpu
#   tools/gpu_check.sh --stage build-gpu      # copies the non-system libraries into .devrun/lib
# then on the GPU machine (carry build-gpu and .devrun):
#   tools/gpu_check.sh build-gpu              # writes its outputs under $OUT (or /tmp)
set -uo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--stage" ]; then
  B=${2:?build folder}
  mkdir -p .devrun/lib
  # What the binaries load that the GPU machine lacks (hwloc, PCRE2, libnuma, libudev). libc,
  # libstdc++, the driver and the CUDA libraries (cuBLAS: 500+ MiB, over the carry limit) are
  # there already.
  for bin in "$B/hexe" "$B/gpu_kernels/tests/test_gpu" "$B/tests/test_runtime_gpu"; do
    ldd "$bin" | awk '/=> \// {print $3}' | grep -Ev 'libc\.so|libm\.so|libstdc\+\+|libgcc_s|ld-linux|libpthread|libdl|librt|/cuda' \
      | xargs -r cp -L -t .devrun/lib
  done
  ls .devrun/lib
  exit 0
fi

B=${1:-build-gpu}
O=${OUT:-/tmp}
export LD_LIBRARY_PATH="$PWD/.devrun/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
nvidia-smi -L
status=0
"$B/gpu_kernels/tests/test_gpu" --gtest_output="xml:$O/test_gpu.xml" 2>&1 | tail -30 || status=1
"$B/tests/test_runtime_gpu" --gtest_output="xml:$O/test_runtime_gpu.xml" 2>&1 | tail -30 || status=1
"$B/hexe" bench handoff --iters 2000 || status=1
"$B/hexe" bench pcie || status=1
"$B/hexe" profile detect --dram-mib 1024 -o "$O/gpu_profile.json" || status=1
exit $status
