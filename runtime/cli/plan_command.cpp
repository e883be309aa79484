// `hexe plan`: predicted memory per device and speed per placement strategy, before loading.
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "memory/error.h"
#include "placement/hardware_profile.h"
#include "placement/model_shapes.h"
#include "placement/strategies.h"
#include "runtime/cli/commands.h"
#include "runtime/model/model_file.h"
#include "runtime/model/spec_builder.h"

namespace hexe::cli {

namespace {

struct PlanOptions {
  std::string model_file;
  std::string model_name;
  std::string quant = "q4_k_m";
  std::string profile;
  int64_t context = 4096;
  int64_t batch = 1;
  int64_t prompt = 512;
  int64_t ubatch = 512;
  std::string strategy = "auto";
  bool compare = false;
  bool json = false;
  std::string out;
  std::string routing_stats;
  std::vector<std::string> overrides;
  std::string rules_file;
};

std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

void print_table(const std::vector<place::Plan>& plans) {
  const auto& p0 = plans.front();
  std::printf("%s (%s) on %s: context %lld, batch %lld, prompt %lld tokens\n\n", p0.model.c_str(), p0.quant.c_str(),
              p0.profile.c_str(), (long long)p0.workload.context, (long long)p0.workload.batch,
              (long long)p0.workload.prompt);
  std::printf("%-16s %-4s %10s %10s %13s %12s %9s  %s\n", "strategy", "fit", "GPU mem", "host mem", "prefill tok/s",
              "decode tok/s", "TTFT s", "bottleneck (prefill / decode)");
  for (const auto& p : plans) {
    const bool predicted = p.decode.tokens_per_s > 0;
    std::printf("%-16s %-4s %10s %10s %13s %12s %9s  %s / %s\n", p.strategy.c_str(), p.fits ? "yes" : "no",
                p.has_gpu ? place::format_bytes(p.gpu.total()).c_str() : "-",
                predicted ? place::format_bytes(p.host.total()).c_str() : "-",
                predicted ? fmt("%.1f", p.prefill.tokens_per_s).c_str() : "-",
                predicted ? fmt("%.2f", p.decode.tokens_per_s).c_str() : "-",
                predicted ? fmt("%.2f", p.ttft_s).c_str() : "-", p.prefill.bottleneck.c_str(),
                p.decode.bottleneck.c_str());
    for (const auto& r : p.refusals) std::printf("    does not fit: %s\n", r.c_str());
    for (const auto& n : p.notes) std::printf("    note: %s\n", n.c_str());
  }
  std::printf("\nPredictions assume the profile's efficiencies (see placement/README.md); decode is measured at\n"
              "the prompt's end, prefill includes the logits of the last prompt token.\n");
}

void run_plan(const PlanOptions& o) {
  if (o.model_file.empty() == o.model_name.empty())
    throw Error("hexe plan: give exactly one of -m FILE or --model NAME (known: " + [] {
      std::string s;
      for (const auto& n : place::model_shape_names()) s += (s.empty() ? "" : ", ") + n;
      return s;
    }() + ")");
  place::PlanModel model;
  if (!o.model_file.empty()) {
    auto file = ModelFile::open(o.model_file, true);
    model = place::plan_model_from_spec(build_model_spec(*file));
  } else {
    auto recipe = place::recipe_from_name(o.quant);
    if (!recipe) {
      std::string known;
      for (const auto& n : place::recipe_names()) known += " " + n;
      throw Error("hexe plan: --quant '" + o.quant + "' is not a known recipe (known:" + known + ")");
    }
    model = place::load_model_shape(o.model_name, *recipe);
  }
  const place::HardwareProfile hw = place::resolve_profile(o.profile);
  place::RoutingStats stats;
  place::OverrideRules rules;
  place::PlanInputs in;
  in.model = &model;
  in.hw = &hw;
  in.workload.context = o.context;
  in.workload.batch = o.batch;
  in.workload.prompt = o.prompt;
  in.workload.ubatch = o.ubatch;
  if (!o.routing_stats.empty()) {
    stats = place::RoutingStats::load(o.routing_stats);
    if (stats.n_expert() != model.spec.n_expert)
      throw Error("routing stats " + o.routing_stats + " count " + std::to_string(stats.n_expert()) +
                  " experts per layer, the model has " + std::to_string(model.spec.n_expert));
    in.stats = &stats;
  }
  for (const auto& r : o.overrides) rules.add(r);
  if (!o.rules_file.empty()) rules.load_file(o.rules_file);
  in.rules = &rules;

  std::vector<place::Plan> plans;
  if (o.compare) {
    plans = place::compare_plans(in);
  } else {
    auto s = place::strategy_from_name(o.strategy);
    if (!s) throw Error("hexe plan: --strategy '" + o.strategy +
                        "' is not one of cpu, gpu, layers, experts-cpu, experts-cpu+hot, stream, cache, auto");
    plans.push_back(place::make_plan(in, *s));
  }
  if (o.json) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& p : plans) j.push_back(nlohmann::json::parse(place::plan_to_json_string(p, !o.compare)));
    std::cout << (o.compare ? j.dump(2) : j.front().dump(2)) << "\n";
  } else if (o.compare) {
    print_table(plans);
  } else {
    std::cout << place::describe_plan(plans.front());
  }
  if (!o.out.empty()) {
    place::save_plan(plans.back(), o.out);  // with --compare: the `auto` plan
    if (!o.json) std::printf("plan written to %s\n", o.out.c_str());
  }
}

}  // namespace

void add_plan_command(CLI::App& app) {
  auto opt = std::make_shared<PlanOptions>();
  auto* cmd = app.add_subcommand("plan", "Predict memory per device and speed per placement strategy, before loading");
  auto* m = cmd->add_option("-m,--model-file", opt->model_file, "Model file (GGUF, safetensors or HF directory)");
  auto* n = cmd->add_option("--model", opt->model_name, "Shipped model shape (profiles/models/NAME.json) or a shape file");
  m->excludes(n);
  cmd->add_option("--quant", opt->quant, "Quantisation recipe for --model: q4_k_m, q5_k_m, q6_k, q8_0, q4_0, f16, bf16")
      ->capture_default_str();
  cmd->add_option("--profile", opt->profile, "Hardware profile: profiles/hardware/NAME.json or a file")->required();
  cmd->add_option("-c,--context", opt->context, "KV-cache tokens per sequence")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("-b,--batch", opt->batch, "Sequences decoded together")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("-p,--prompt", opt->prompt, "Prompt tokens (prefill, time to first token)")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--ubatch", opt->ubatch, "Prefill chunk in tokens")->capture_default_str()->check(CLI::PositiveNumber);
  auto* s = cmd->add_option("-s,--strategy", opt->strategy,
                            "cpu, gpu, layers, experts-cpu, experts-cpu+hot, stream, cache, auto")->capture_default_str();
  cmd->add_flag("--compare", opt->compare, "One row per strategy")->excludes(s);
  cmd->add_option("--routing-stats", opt->routing_stats, "Routing statistics file (experts-cpu+hot, cache)");
  cmd->add_option("--override", opt->overrides, "Placement rule REGEX=cpu|gpu on tensor names (repeatable)");
  cmd->add_option("--rules", opt->rules_file, "JSON rules file {\"rules\": [{\"match\": REGEX, \"device\": cpu|gpu}]}");
  cmd->add_flag("--json", opt->json, "Print JSON");
  cmd->add_option("-o,--output", opt->out, "Write the plan as JSON (with --compare: the auto plan)");
  cmd->callback([opt] { run_plan(*opt); });
}

}  // namespace hexe::cli
