// `hexe bench pcie` and `hexe bench handoff`: CUDA transfer and hand-off measurements. In a build
// without CUDA, or on a machine without a GPU, they say so and exit 0.
#pragma once

#include <CLI/CLI.hpp>

namespace hexe::cli {

void add_bench_gpu_commands(CLI::App& bench);

}  // namespace hexe::cli
