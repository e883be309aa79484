// The pause a spin-wait issues between polls (internal to cpu_kernels: the pool backends and the
// MoE schedule's per-expert waits).
#pragma once

namespace hexe::cpu {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

}  // namespace hexe::cpu
