// Memory per device for a plan (weights, KV cache at the requested context, activations,
// staging buffers, CUDA graph memory, driver reservation, a safety margin) and the fit check
// that refuses a plan with what is missing and by how much.
#pragma once

#include <cstdint>

#include "placement/hardware_profile.h"
#include "placement/model_digest.h"
#include "placement/plan.h"

namespace hexe::place {

// Scratch for one prefill chunk on a device that runs the given parts of the model.
uint64_t activation_bytes(const PlanModel& m, const Workload& w, bool runs_experts);
// CUDA graph and library workspace memory (cuBLAS), per the model's layer count.
uint64_t graph_bytes(const PlanModel& m);
// Safety margins: fragmentation and allocator slack on the GPU, the OS and page cache on the host.
uint64_t gpu_margin(uint64_t capacity);
uint64_t host_margin(uint64_t capacity);
uint64_t host_reserved();

// Fills plan.gpu and plan.host from the tensors' devices, the layers' devices and expert modes.
void account_memory(Plan& plan, const PlanModel& m, const ModelDigest& d, const HardwareProfile& hw);
// Sets plan.fits and appends refusals ("GPU: needs 21.3 GiB ..., has 16.0 GiB: 5.3 GiB missing").
void check_fit(Plan& plan);

// GPU bytes left for weights once everything but weights is counted (may be negative).
int64_t gpu_spare_bytes(const Plan& plan);

}  // namespace hexe::place
