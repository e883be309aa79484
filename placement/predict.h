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
Cost layer_cost(const LayerPlan& lp, const LayerDigest& ld, const PlanModel& m, const CostModel& cm,
                double tokens, double ctx, double seqs, bool decode, int kv_elem_bytes = 2,
                bool cpu_rows16 = false);

// Fills plan.prefill, plan.decode and plan.ttft_s.
void predict(Plan& plan, const PlanModel& m, const ModelDigest& d, const CostModel& cm);

}  // namespace hexe::place
