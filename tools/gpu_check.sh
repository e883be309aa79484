#!/usr/bin/env bash
# The GPU checks of issue 7, for a lent GPU machine (the `device` tool). That machine has no
# compilers, -dev packages or network, so build here and carry the binaries and the shared
# libraries they need (the working tree travels too: tests read the fixtures from it):
#   cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DHEXE_CUDA=ON -DHEXE_CUDA_ARCHS=90
#   cmake --build build-gpu --target hexe test_gpu test_runtime_gpu bench_gpu_gemv
#   tools/gpu_check.sh --stage build-gpu      # binaries (stripped) + non-system libraries, xz-packed in .devrun/
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 -d .whl gguf==0.19.0
# then on the GPU machine (carry .devrun and .whl; about 3 minutes with --bench):
#   tools/gpu_check.sh .devrun [--no-tests] [--bench|--ab] [--mla] [--chunks] [--kernels]   # logs and the profile under $OUT (or /tmp)
# --bench: hexe profile detect, a 16-layer Qwen3-30B-A3B-shaped Q4_K_M file, and hexe bench per
# strategy (experts-cpu decode with pinned-flag and event hand-offs, fused chain on and off,
# alternating; HEXE_AB="mode:fuse ..." picks; --ab: only that) (experts-cpu+hot and cache with
# the routing of a first bench's token stream) with the plan's prediction beside each measurement
# and the per-token timeline. --mla: a 4-layer DeepSeek-V3-shaped file, fused and unfused decode.
# --chunks: experts-cpu prefill (4096 tokens) with and without token chunks of heavy experts.
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
  # The binaries themselves, at the same paths, stripped and packed (xz) so that the tree and
  # .devrun stay under the 64 MiB the tool carries; the run below unpacks them.
  for bin in hexe gpu_kernels/tests/test_gpu tests/test_runtime_gpu gpu_kernels/bench_gpu_gemv; do
    [ -f "$B/$bin" ] && install -D -s "$B/$bin" ".devrun/$bin"
  done
  tar -C .devrun -cf - hexe gpu_kernels tests lib | xz -T2 -9 >.devrun/binaries.tar.xz
  rm -rf .devrun/hexe .devrun/gpu_kernels .devrun/tests .devrun/lib
  du -sh .devrun
  exit 0
fi

B=${1:-.devrun}
[ -f "$B/binaries.tar.xz" ] && tar -C "$B" -xJf "$B/binaries.tar.xz"
O=${OUT:-/tmp}
# cuBLAS: from the CUDA toolkit, or from the nvidia-cublas wheel beside PyTorch.
cuda_libs=$(ls -d /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda/targets/x86_64-linux/lib 2>/dev/null | tr '\n' ':')
wheel_libs=$(python3 -c 'import nvidia.cublas, os; print(os.path.dirname(nvidia.cublas.__file__) + "/lib")' 2>/dev/null)
export LD_LIBRARY_PATH="$PWD/.devrun/lib:${cuda_libs}${wheel_libs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
nvidia-smi -L
status=0
bench=0 kernels=0 tests=1 ab=0 mla=0 chunks=0
for a in "${@:2}"; do
  case $a in
    --bench) bench=1 ;;
    --ab) bench=1 ab=1 ;;
    --kernels) kernels=1 ;;
    --mla) mla=1 ;;
    --chunks) chunks=1 ;;
    --no-tests) tests=0 ;;
    *) echo "gpu_check.sh: unknown option $a" >&2; exit 2 ;;
  esac
done
quick=$((bench | mla | chunks))  # runs with benchmarks of their own skip the GEMV and PCIe tables
if [ $bench = 1 ] || [ $chunks = 1 ] || { [ $kernels = 1 ] && [ $mla = 0 ]; }; then  # the model is written while the tests run
  ( python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl &&
    PYTHONPATH=/tmp/site python3 tools/make_shaped_gguf.py --shape qwen3-30b-a3b --layers 16 --type q4_k_m \
      -o /tmp/q30.gguf >"$O/gen.log" 2>&1 ) &
  gen=$!
fi
if [ $mla = 1 ]; then  # a 4-layer DeepSeek-V3-shaped Q4_K_M file (3 dense layers, 1 MoE): ~8.5 GB
  ( python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl 2>/dev/null;
    PYTHONPATH=/tmp/site python3 tools/make_shaped_gguf.py --shape deepseek-v3 --layers 4 --type q4_k_m \
      -o /tmp/ds.gguf >"$O/gen_ds.log" 2>&1 ) &
  gen_ds=$!
fi
# Whole logs under $O; here only the failures and the summaries (the tool returns a short tail).
for t in "$B/gpu_kernels/tests/test_gpu" "$B/tests/test_runtime_gpu"; do
  [ $tests = 1 ] || break
  n=$(basename "$t")
  "$t" >"$O/$n.log" 2>&1 || status=1
  grep -E -A6 'Failure|terminate|what\(\)' "$O/$n.log" | head -60
  grep -E '^\[  (PASSED|FAILED) ' "$O/$n.log"
done
# (the GEMV table takes a while: not with --bench, whose time goes to the strategies)
[ $quick = 0 ] && [ -x "$B/gpu_kernels/bench_gpu_gemv" ] && { "$B/gpu_kernels/bench_gpu_gemv" || status=1; }
"$B/hexe" bench handoff --iters 2000 || status=1
[ $quick = 0 ] && { "$B/hexe" bench pcie || status=1; }
"$B/hexe" profile detect -o "$O/gpu_profile.json" 2>&1 | grep -E "GPU|DRAM read|q4_K|q6_K" || status=1
[ $bench = 1 ] || [ $chunks = 1 ] || { [ $kernels = 1 ] && [ $mla = 0 ]; } && { wait $gen; cat "$O/gen.log"; }
P=$O/gpu_profile.json
if [ $mla = 1 ]; then
  # MLA decode on the GPU (experts-cpu: the one MoE layer's routed experts on the CPU): the fused
  # chain (per-head k_b/v_b in batched launches) against the unfused one (a launch per head),
  # alternating; the timeline's GPU busy per token is the figure.
  wait $gen_ds; cat "$O/gen_ds.log"
  for round in $(seq ${MLA_ROUNDS:-2}); do
    for fuse in 1 0; do
      echo "=== deepseek-v3 4 layers, HEXE_GPU_FUSE=$fuse"
      HEXE_GPU_FUSE=$fuse "$B/hexe" bench -m /tmp/ds.gguf --strategy experts-cpu --profile "$P" -p 64 -n 32 -r 2 2>&1 |
        tee -a "$O/bench_ds.log" | grep -E '^\| deepseek|^  (pp|tg)|GPU busy|host waits|rror' || status=1
    done
  done
fi
if [ $chunks = 1 ]; then
  # CPU-expert prefill with the skewed routing of the random-weight file: heavy experts cut into
  # token chunks (default) against whole experts (HEXE_MOE_SCHEDULE=whole), alternating.
  for round in 1 2; do
    for sched in "" whole; do
      echo "=== experts-cpu prefill, HEXE_MOE_SCHEDULE=${sched:-default}"
      HEXE_MOE_SCHEDULE=$sched "$B/hexe" bench -m /tmp/q30.gguf --strategy experts-cpu --profile "$P" -p 4096 -n 0 -r 1 2>&1 |
        tee -a "$O/bench_chunks.log" | grep -E '^\| qwen|measured/predicted|^  pp|rror' || status=1
    done
  done
  echo "=== hexe bench moe-layer --tokens 512"
  "$B/hexe" bench moe-layer --shape qwen3-30b-a3b --quant q4_k --tokens 512 2>&1 | tail -3 || status=1
fi
if [ $bench = 1 ]; then
  # `layers` splits only when the GPU is small: the same profile with 4.5 GiB of GPU memory.
  python3 -c "import json; p=json.load(open('$P')); p['gpus'][0]['memory_gib']=4.5; json.dump(p, open('$O/small_gpu.json','w'))"
  b() {
    echo "=== hexe bench $*"
    "$B/hexe" bench -m /tmp/q30.gguf "$@" 2>&1 | tee -a "$O/bench.log" |
      grep -E '^\| qwen|plan |^  (pp|tg)|routed experts|CPU forward| calls$|rror' || status=1
  }
  # Most wanted first: a run cut short by its time limit keeps what it printed.
  # experts-cpu decode: hand-offs by pinned flags and by events (HEXE_HANDOFF), the fused decode
  # chain on and off (HEXE_GPU_FUSE); alternating, two rounds (the first run after writing the
  # model was slower in every column in session 14).
  for round in 1 2; do
    for cfg in ${HEXE_AB:-flags:1 event:1 flags:0 event:0}; do
      IFS=: read -r mode fuse <<<"$cfg"
      echo "(HEXE_HANDOFF=$mode HEXE_GPU_FUSE=$fuse)"
      HEXE_GPU_FUSE=$fuse HEXE_HANDOFF=$mode b --strategy experts-cpu --profile "$P" -p 512 -n 64 -r 2
    done
  done
fi
if [ $bench = 1 ] && [ $ab = 0 ]; then
  # The CPU experts alone on all cores (prefill: the planner's CPU rate comes from the profile's
  # MoE measurement; this is the engine's MoE layer with random routing).
  for tok in 512 1; do
    echo "=== hexe bench moe-layer --tokens $tok"
    "$B/hexe" bench moe-layer --shape qwen3-30b-a3b --quant q4_k --tokens $tok 2>&1 | tail -3 || status=1
  done
  # (HEXE_PHASE_TIMES: where the CPU layers' prefill time goes, phase by phase)
  HEXE_PHASE_TIMES=1 b --strategy layers --profile "$O/small_gpu.json" -p 512 -n 32 -r 2
  # experts-cpu+hot and cache need routing statistics (which experts are hot: the bench's own
  # token stream, recorded by a first run) and a GPU too small for all the experts (4.5 GiB).
  "$B/hexe" bench -m /tmp/q30.gguf --strategy experts-cpu --profile "$P" -p 512 -n 64 -r 1 \
    --routing-stats "$O/routing.json" >/dev/null 2>&1
  b --strategy cache --profile "$O/small_gpu.json" --routing-from "$O/routing.json" -p 512 -n 64 -r 2
  b --strategy stream --profile "$P" -p 4096 -n 16 -r 1
  b --strategy experts-cpu --profile "$P" -p 4096 -n 0 -r 1
  b --strategy experts-cpu+hot --profile "$O/small_gpu.json" --routing-from "$O/routing.json" -p 512 -n 64 -r 2
  b --strategy gpu --profile "$P" -p 512 -n 16 -r 2
  HEXE_PHASE_TIMES=1 b --strategy cpu --profile "$P" -p 512 -n 0 -r 1
fi
if [ $kernels = 1 ]; then
  ncu=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu 2>/dev/null | head -1)
  if [ -z "$ncu" ]; then
    echo "--kernels: no ncu on this machine"; status=1
  else
    # 1-token prompt and 2 generated tokens: every pass is a graphed decode pass (16 layers; with
    # --mla the DeepSeek file's 4).
    model=/tmp/q30.gguf layers=16
    [ $mla = 1 ] && model=/tmp/ds.gguf layers=4
    # (Event hand-offs: under Nsight Compute a flag await waited its 60 s for the CPU's answer
    # and gave up, in session 18; kernel by kernel profiling and spinning kernels do not mix.)
    HEXE_HANDOFF=event timeout 150 "$ncu" --clock-control none --metrics gpu__time_duration.sum --csv --print-units base \
      "$B/hexe" bench -m $model --strategy experts-cpu --profile "$P" -p 1 -n 2 -r 1 >"$O/ncu.csv" 2>"$O/ncu.err" ||
      { tail -5 "$O/ncu.err"; status=1; }
    echo "=== GPU kernel time per layer of a decode step (ncu; 1 + 2 passes x $layers layers, $model)"
    python3 tools/gpu_kernel_times.py "$O/ncu.csv" --per $((3 * layers)) | head -40
  fi
fi
exit $status
