// `hexe bench -m FILE -p 512 -n 64 [-r 3] [--json]`: prompt processing and generation speed of a
// model end to end, in llama-bench's columns, plus the weight bytes one decoded token reads and
// the generation speed's ratio to the DRAM read bandwidth measured in the same process.
#pragma once

#include "runtime/cli/options.h"

namespace hexe::cli {

struct E2eBenchOptions {
  ModelOptions model;
  int prompt = 512;  // -p: tokens of the prompt-processing test (0: skip)
  int gen = 64;      // -n: tokens of the generation test (0: skip)
  int reps = 3;      // -r
  bool json = false;
  // --routing-stats FILE: write the warm-up reps' expert choices (the bench's own token stream,
  // the same in every invocation) for `--strategy experts-cpu+hot|cache --routing-from FILE`.
  std::string routing_stats;
};

void run_e2e_bench(const E2eBenchOptions& o);

}  // namespace hexe::cli
