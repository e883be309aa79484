// Wall time of the CPU forward pass's phases, summed over a process's calls, when the
// environment sets HEXE_PHASE_TIMES: where a CPU layer's time goes (`hexe bench -m` prints it).
// Off, a phase costs one test of a null pointer.
#pragma once

#include <chrono>
#include <cstdio>

namespace hexe {

enum class Phase { Norms, Projections, RowWork, Attention, MlaAttention, Router, Experts, Residual, Head, kCount };

struct PhaseTimes {
  double seconds[int(Phase::kCount)] = {};
  long long calls[int(Phase::kCount)] = {};
};

// The process's accumulator (the forward pass's calling thread writes it), or null when off.
PhaseTimes* phase_times();
const char* phase_name(Phase p);
// One line per phase with its share of the total; nothing when off.
void print_phase_times(std::FILE* out);

// Adds the time from construction to destruction to `phase`.
class PhaseTimer {
 public:
  explicit PhaseTimer(Phase phase) : acc_(phase_times()), phase_(phase) {
    if (acc_) t0_ = std::chrono::steady_clock::now();
  }
  ~PhaseTimer() {
    if (!acc_) return;
    acc_->seconds[int(phase_)] += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    ++acc_->calls[int(phase_)];
  }
  PhaseTimer(const PhaseTimer&) = delete;
  PhaseTimer& operator=(const PhaseTimer&) = delete;

 private:
  PhaseTimes* acc_;
  Phase phase_;
  std::chrono::steady_clock::time_point t0_;
};

}  // namespace hexe
