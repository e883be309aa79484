// The phase accumulator of phase_times.h.
#include "runtime/engine/phase_times.h"

#include <cstdlib>

namespace hexe {

PhaseTimes* phase_times() {
  static PhaseTimes* acc = std::getenv("HEXE_PHASE_TIMES") ? new PhaseTimes() : nullptr;
  return acc;
}

const char* phase_name(Phase p) {
  switch (p) {
    case Phase::Norms: return "norms (input RMSNorm)";
    case Phase::Projections: return "attention projections (q, k, v, o)";
    case Phase::RowWork: return "per-token q/k norm, RoPE, KV write";
    case Phase::Attention: return "attention core";
    case Phase::MlaAttention: return "MLA attention block (all of it)";
    case Phase::Router: return "router (matmul and top-k)";
    case Phase::Experts: return "routed and shared experts, dense FFN";
    case Phase::Residual: return "residual adds";
    case Phase::Head: return "output head (norm and matmul)";
    case Phase::kCount: break;
  }
  return "?";
}

void print_phase_times(std::FILE* out) {
  const PhaseTimes* acc = phase_times();
  if (!acc) return;
  double total = 0;
  for (double s : acc->seconds) total += s;
  std::fprintf(out, "CPU forward phases (HEXE_PHASE_TIMES, every call of the process, warm-ups included): %.3f s\n",
               total);
  for (int i = 0; i < int(Phase::kCount); ++i)
    std::fprintf(out, "  %-40s %9.3f s %5.1f%% %8lld calls\n", phase_name(Phase(i)), acc->seconds[i],
                 total > 0 ? 100 * acc->seconds[i] / total : 0.0, acc->calls[i]);
}

}  // namespace hexe
