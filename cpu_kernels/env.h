// The diagnostic environment variables of cpu_kernels, read once in env.cpp and nowhere else.
#pragma once

#include <string>

namespace hexe::cpu::env {

// HEXE_CPU_ISA: "" when unset, else the raw value (scalar|avx2|avx512).
const std::string& cpu_isa_request();
// HEXE_LOG contains "dispatch" (comma-separated list): print kernel choices and reasons to stderr.
bool log_dispatch();

}  // namespace hexe::cpu::env
