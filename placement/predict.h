// Applies the cost model to a plan: predicted prefill and decode speed, time to first token and
// the bottleneck, with the overlap the scheduler runs (DESIGN.md "One decode step").
#pragma once

#include "placement/cost_model.h"
#include "placement/model_digest.h"
#include "placement/plan.h"

namespace hexe::place {

// Time of one layer for `tokens` new tokens attending to `ctx` positions (per sequence;
// `seqs` sequences, each with its own cache). `decode` selects the decode-phase expert mode and
// CUDA-graph launches (no per-kernel launch cost). The cache holds kv_elem_bytes per value.
// cpu_rows16: the CPU reads its weights from the repacked copy (Plan::cpu_weight_layout).
// flagged: a decode pass handing over by pinned flags (flagged_decode), whose GPU work after a
// hand-off is queued before it, not launched after it.
Cost layer_cost(const LayerPlan& lp, const LayerDigest& ld, const PlanModel& m, const CostModel& cm,
                double tokens, double ctx, double seqs, bool decode, int kv_elem_bytes = 2,
                bool cpu_rows16 = false, bool flagged = false);

// Whether the engine's decode pass for this plan hands over by pinned flags: every GPU layer
// with attention and routed experts computes all of its experts on the CPU (no hot set), as
// runtime/engine/cuda's flagged_pass requires; at least one such layer.
bool flagged_decode(const Plan& plan);

// Fills plan.prefill, plan.decode and plan.ttft_s.
void predict(Plan& plan, const PlanModel& m, const ModelDigest& d, const CostModel& cm);

}  // namespace hexe::place
