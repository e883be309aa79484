// The diagnostic environment variables of cpu_kernels, read once in env.cpp and nowhere else.
#pragma once

#include <string>

namespace hexe::cpu::env {

// HEXE_CPU_ISA: "" when unset, else the raw value (scalar|avx2|avx512).
const std::string& cpu_isa_request();
// HEXE_LOG contains "dispatch" (comma-separated list): print kernel choices and reasons to stderr.
bool log_dispatch();
// HEXE_PREFETCH: bytes ahead of the weight stream the decode tiles prefetch into L1 (the Rows16
// tiles also prefetch into L2 twice as far; 0 turns both off); -1 when unset.
int prefetch_bytes();
// HEXE_MOE_SCHEDULE: "one", "two" or "chain" forces the MoE decode schedule (moe.cpp) for measurements,
// "whole" keeps prefill experts whole (no token chunks); "" when unset (the kernel chooses).
const std::string& moe_schedule();

// HEXE_ONEDNN=off: prefill-sized float matmuls stay on our tiles (measurements, comparisons).
bool onednn_off();

}  // namespace hexe::cpu::env
