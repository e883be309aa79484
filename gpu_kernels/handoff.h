// Latency of handing work from the GPU to the CPU and back, the three ways a pipelined decode step
// can do it. Feeds Efficiency::handoff_us of the hardware profile.
#pragma once

#include <cuda_runtime_api.h>

#include "gpu_kernels/status.h"

namespace hexe::gpu {

struct HandoffTimes {
  int iters = 0;
  // Extra time a host function (cudaLaunchHostFunc) between two kernels adds over two kernels
  // back to back: GPU -> CUDA's callback thread -> GPU, all queued ahead by the host.
  double host_fn_us = 0;
  // A resident kernel and a CPU thread answer each other through flags in mapped pinned memory:
  // one full round trip (GPU writes, CPU sees it and writes, GPU sees that). No launch, no sync.
  double flag_round_trip_us = 0;
  // A kernel, cudaStreamSynchronize, the next launch: the plain host-driven loop.
  double sync_relaunch_us = 0;
  // A flagged decode pass's hand-off (host_flags.h): a kernel publishes 8 KB to mapped pinned
  // memory and a count, the host answers, a kernel waits and adds 8 KB from pinned memory; the
  // next hand-off's kernels are queued before the host answers, as in the engine.
  double flag_rows_us = 0;
};

// Runs each method `iters` times on `stream` (of the current device) and reports the mean per
// hand-off in microseconds. The flag method times out after ~2 s without an answer (a Status error).
Status measure_handoff(cudaStream_t stream, int iters, HandoffTimes* out) noexcept;

}  // namespace hexe::gpu
