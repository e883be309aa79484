#!/usr/bin/env bash
# The GPU checks of issue 7, for a lent GPU machine (the `device` tool). That machine has no
# compilers, -dev packages or network, so build here and carry the build and the shared
# libraries it needs:
#   cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DHEXE_CUDA=ON -DHEXE_CUDA_ARCHS="80;90"
#   cmake --build build-gpu --target hexe test_gpu test_runtime_gpu
#   tools/gpu_check.sh --stage build-gpu      # copies the non-system libraries into .devrun/lib
# then on the GPU machine (carry .devrun):
#   tools/gpu_check.sh .devrun                # writes its outputs under $OUT (or /tmp)
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
  # The binaries themselves, at the same paths, so `tools/gpu_check.sh .devrun` runs them
  # without carrying the whole build folder.
  for bin in hexe gpu_kernels/tests/test_gpu tests/test_runtime_gpu gpu_kernels/bench_gpu_gemv; do
    [ -f "$B/$bin" ] && install -D "$B/$bin" ".devrun/$bin"
  done
  du -sh .devrun
  exit 0
fi

B=${1:-build-gpu}
O=${OUT:-/tmp}
# cuBLAS: from the CUDA toolkit, or from the nvidia-cublas wheel beside PyTorch.
cuda_libs=$(ls -d /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda/targets/x86_64-linux/lib 2>/dev/null | tr '\n' ':')
wheel_libs=$(python3 -c 'import nvidia.cublas, os; print(os.path.dirname(nvidia.cublas.__file__) + "/lib")' 2>/dev/null)
export LD_LIBRARY_PATH="$PWD/.devrun/lib:${cuda_libs}${wheel_libs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
nvidia-smi -L
status=0
# Whole logs under $O; here only the failures and the summaries (the tool returns a short tail).
for t in "$B/gpu_kernels/tests/test_gpu" "$B/tests/test_runtime_gpu"; do
  n=$(basename "$t")
  "$t" >"$O/$n.log" 2>&1 || status=1
  grep -E -A6 'Failure|FAILED|SKIPPED \[|terminate|Error' "$O/$n.log" | head -80
  grep -E '^\[  (PASSED|FAILED) ' "$O/$n.log"
done
[ -x "$B/gpu_kernels/bench_gpu_gemv" ] && { "$B/gpu_kernels/bench_gpu_gemv" || status=1; }
"$B/hexe" bench handoff --iters 2000 || status=1
"$B/hexe" bench pcie || status=1
"$B/hexe" profile detect --dram-mib 1024 -o "$O/gpu_profile.json" || status=1
exit $status
