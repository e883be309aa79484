#!/usr/bin/env bash
# Sets up, builds and runs the whole CPU test suite (every label but gpu), then the parser tests
# again under AddressSanitizer + UndefinedBehaviorSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."

tools/setup.sh build
ctest --test-dir build --output-on-failure -LE gpu -j "$(nproc)"

# Parsers meet hostile input: run their tests under ASan+UBSan in a separate build.
tools/setup.sh build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHEXE_SANITIZE=ON -DHEXE_CUDA=OFF \
  -DHEXE_BUILD_BENCH=OFF
ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
  ctest --test-dir build-asan --output-on-failure -L unit -R 'Gguf|Safetensors|Metadata|Tokenizer|Json' -j "$(nproc)"
