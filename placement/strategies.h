// The placement strategies (DESIGN.md "Placement and strategies") and the planner that builds,
// sizes, checks and predicts a Plan for each.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "placement/hardware_profile.h"
#include "placement/model_shapes.h"
#include "placement/override_rules.h"
#include "placement/plan.h"
#include "placement/routing_stats.h"

namespace hexe::place {

enum class Strategy { Cpu, Gpu, Layers, ExpertsCpu, ExpertsCpuHot, Stream, Cache, Auto };

const char* strategy_name(Strategy s);
std::optional<Strategy> strategy_from_name(const std::string& name);
const std::vector<Strategy>& all_strategies();   // in the order `--compare` prints them

struct PlanInputs {
  const PlanModel* model = nullptr;
  const HardwareProfile* hw = nullptr;
  Workload workload;
  const RoutingStats* stats = nullptr;   // experts-cpu+hot, cache; uniform routing when absent
  const OverrideRules* rules = nullptr;  // applied after the strategy, before sizing
  // The user's --repack on|off: whether the CPU weights get the AVX-512 copy (Plan::
  // cpu_weight_layout); unset, the planner copies them when the copy fits.
  std::optional<bool> repack;
};

// Builds the plan for one strategy: placement, user rules, memory fit (refusals when it does
// not fit) and predictions (made even for plans that do not fit, so they can be compared).
Plan make_plan(const PlanInputs& in, Strategy s);

// One plan per strategy, `auto` last.
std::vector<Plan> compare_plans(const PlanInputs& in);

}  // namespace hexe::place
