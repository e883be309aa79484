#!/usr/bin/env bash
# Sets up, builds and runs the whole CPU test suite (every label but gpu and perf), then the parser tests
# again under AddressSanitizer + UndefinedBehaviorSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."

tools/setup.sh build
ctest --test-dir build --output-on-failure -LE 'gpu|perf' -j "$(nproc)"

# Every kernel tier gives the reference results (the best tier ran above).
for isa in scalar avx2; do
  HEXE_CPU_ISA=$isa ctest --test-dir build --output-on-failure -L reference -j "$(nproc)"
done

# Parsers meet hostile input: their tests again under ASan+UBSan, in a separate build.
if [ ! -f build-asan/build.ninja ]; then
  cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_FLAGS_DEBUG=-O1 -g1" -DHEXE_SANITIZE=ON -DHEXE_CUDA=OFF \
    -DHEXE_BUILD_BENCH=OFF >&2
fi
cmake --build build-asan -j "$(nproc)" --target test_runtime test_memory >&2
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure -L unit -R 'Gguf|Safetensors|Metadata|MappedFile|Tokenizer|ChatTemplate' \
  -j "$(nproc)"
