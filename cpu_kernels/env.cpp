// Reads HEXE_CPU_ISA, HEXE_LOG, HEXE_PREFETCH, HEXE_MOE_SCHEDULE and HEXE_ONEDNN once (the only getenv calls of cpu_kernels).
#include "cpu_kernels/env.h"

#include <cstdlib>
#include <string_view>

namespace hexe::cpu::env {
namespace {
std::string read(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}
}  // namespace

const std::string& cpu_isa_request() {
  static const std::string value = read("HEXE_CPU_ISA");
  return value;
}

bool log_dispatch() {
  static const bool on = [] {
    const std::string v = read("HEXE_LOG");
    std::string_view s(v);
    while (!s.empty()) {
      const size_t comma = s.find(',');
      if (s.substr(0, comma) == "dispatch" || s.substr(0, comma) == "all") return true;
      if (comma == std::string_view::npos) break;
      s.remove_prefix(comma + 1);
    }
    return false;
  }();
  return on;
}

int prefetch_bytes() {
  static const int value = [] {
    const std::string v = read("HEXE_PREFETCH");
    return v.empty() ? -1 : std::atoi(v.c_str());
  }();
  return value;
}

const std::string& moe_schedule() {
  static const std::string value = read("HEXE_MOE_SCHEDULE");
  return value;
}

bool onednn_off() {
  static const bool off = read("HEXE_ONEDNN") == "off";
  return off;
}

}  // namespace hexe::cpu::env
