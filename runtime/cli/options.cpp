// Shared CLI options and model loading for run/chat/perplexity.
#include "runtime/cli/options.h"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <thread>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "memory/error.h"
#include "memory/expert_homes.h"
#include "memory/numa_topology.h"
#include "placement/hw_detect.h"

#ifndef HEXE_DEFAULT_MODEL_DIR
#define HEXE_DEFAULT_MODEL_DIR ""
#endif

namespace hexe::cli {

void add_model_options(CLI::App& cmd, ModelOptions& o, bool with_ctx) {
  cmd.add_option("-m,--model", o.model, "model file (.gguf) or HF directory; default: the shipped model");
  cmd.add_option("-t,--threads", o.threads, "threads (default: one per core)")
      ->check(CLI::NonNegativeNumber)
      ->each([&o](const std::string&) { o.threads_given = true; });
  if (with_ctx)
    cmd.add_option("-c,--ctx-size", o.ctx, "context size in tokens (KV-cache capacity)")
        ->check(CLI::Range(int64_t(8), int64_t(1) << 24))
        ->each([&o](const std::string&) { o.ctx_given = true; });
  cmd.add_option("-b,--batch-size", o.batch, "tokens per forward pass during prompt processing")
      ->check(CLI::Range(1, 65536))
      ->each([&o](const std::string&) { o.batch_given = true; });
  add_plan_choice_options(cmd, o.plan);
  cmd.add_option("--repack", o.repack,
                 "copy quantised weights (q8_0, q4_0/q4_1/q5_0/q5_1, q4_K, q5_K, q6_K) into the AVX-512 layout at load: "
                 "auto (the plan's choice, or when it fits in memory), on, off (either wins over a plan)")
      ->check(CLI::IsMember({"auto", "on", "off"}))
      ->capture_default_str();
  cmd.add_option("--numa", o.numa,
                 "auto: on several NUMA nodes, routed experts live on one node each and are computed there; off")
      ->check(CLI::IsMember({"auto", "off"}))
      ->capture_default_str();
  cmd.add_flag("--split-experts", o.split_experts,
               "run routed experts on a second CPU device with its own cores (tests the hybrid split)");
  cmd.add_flag("--no-progress", o.no_progress, "no progress bar while mapping the model");
  cmd.add_flag("--no-pin", o.no_pin,
               "leave the threads unpinned (default: one per physical core, each pinned to its core, when -t does "
               "not exceed the cores)");
}

void add_sampling_options(CLI::App& cmd, SamplingParams& p) {
  cmd.add_option("--temp", p.temperature, "temperature (0: greedy)")->check(CLI::NonNegativeNumber);
  cmd.add_option("--top-k", p.top_k, "top-k sampling (0: off)")->check(CLI::NonNegativeNumber);
  cmd.add_option("--top-p", p.top_p, "top-p (nucleus) sampling (1: off)")->check(CLI::Range(0.0f, 1.0f));
  cmd.add_option("--min-p", p.min_p, "min-p sampling (0: off)")->check(CLI::Range(0.0f, 1.0f));
  cmd.add_option("--repeat-penalty", p.repeat_penalty, "penalise repeated tokens (1: off)")
      ->check(CLI::PositiveNumber);
  cmd.add_option("--repeat-last-n", p.repeat_last_n, "tokens the repetition penalty looks back over")
      ->check(CLI::NonNegativeNumber);
  cmd.add_option("-s,--seed", p.seed, "random seed (default: random)");
}

std::string default_model_path() {
  namespace fs = std::filesystem;
  std::vector<fs::path> dirs;
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) dirs.push_back(exe.parent_path().parent_path() / "models");
  if (*HEXE_DEFAULT_MODEL_DIR) dirs.emplace_back(HEXE_DEFAULT_MODEL_DIR);
  for (const auto& d : dirs) {
    if (!fs::is_directory(d, ec)) continue;
    std::vector<fs::path> found;
    for (const auto& e : fs::directory_iterator(d, ec))
      if (e.path().extension() == ".gguf") found.push_back(e.path());
    std::sort(found.begin(), found.end());
    if (!found.empty()) return found.front().string();
  }
  throw Error("no model given (-m FILE) and no shipped model found in models/");
}

std::unique_ptr<Model> load_model(const ModelOptions& o) {
  const std::string path = o.model.empty() ? default_model_path() : o.model;
  return Model::load(path, !o.no_progress);
}

EngineConfig engine_config(const ModelOptions& o) {
  EngineConfig c;
  c.n_threads = o.threads;
  c.n_ctx = o.ctx;
  c.n_batch = o.batch;
  c.split_experts = o.split_experts;
  c.pin_threads = !o.no_pin;
  return c;
}

namespace {

// The CPU weight copy: whether to make it (--repack on|off, else the plan's choice), and whether
// it takes the place of the copied routed experts' mapped pages, which are then let go, rather
// than sitting beside the mapped file. Without a plan (the CPU runs everything), or with a plan
// file that did not take the copy --repack on asks for, this machine's memory decides as the
// planner does, simplified: beside when the copy and the mapped file fit in 90% of it together,
// else in place when the copy and the rest of the file fit.
struct CopyChoice {
  bool copy = false, in_place = false;
};

CopyChoice cpu_copy_choice(const ModelOptions& o, const Model& model, const std::optional<place::Plan>& plan) {
  if (o.repack == "off") return {};
  const bool plan_copies = plan && (plan->cpu_weight_layout == "rows16" || plan->repacked_bytes > 0);
  if (plan && (o.repack == "auto" || plan_copies)) return {plan_copies, plan->cpu_copy_replaces_mapped_experts};
  const Model::RepackBytes r = model.repackable_bytes();
  const double mem = 0.9 * double(place::detect_topology().host_memory_bytes), file = double(model.spec().bytes_total());
  const bool beside = double(r.copy) + file <= mem, in_place = double(r.copy) + file - double(r.expert_sources) <= mem;
  if (o.repack == "on") return {true, !beside};
  return {r.copy > 0 && (beside || in_place), r.copy > 0 && !beside && in_place};
}

}  // namespace

EngineSetup engine_setup(const ModelOptions& o, Model& model, int64_t prompt_tokens) {
  EngineSetup s{engine_config(o), resolve_plan(o, model, prompt_tokens)};
  if (s.plan) {
    apply_plan(*s.plan, o, s.config);
    std::fprintf(stderr, "%s\n", plan_summary(*s.plan).c_str());
  }
  const CopyChoice copy = cpu_copy_choice(o, model, s.plan);
  if (copy.copy) {
    const auto t0 = std::chrono::steady_clock::now();
    if (o.numa != "off" && !o.split_experts && model.spec().n_expert > 0) {
      const mem::NumaTopology topo = mem::NumaTopology::detect();
      if (topo.nodes.size() > 1) {
        s.config.expert_homes = std::make_shared<mem::ExpertHomes>(
            mem::home_experts(topo, model.spec().n_expert, s.config.n_threads));
        std::fprintf(stderr, "NUMA: routed experts interleaved over %d nodes, computed by each node's threads\n",
                     s.config.expert_homes->n_homes());
      }
    }
    cpu::ThreadPool pool(s.config.n_threads > 0 ? s.config.n_threads : default_thread_count());
    // In place: the copied experts' mapped pages go, where nothing but the CPU reads those experts.
    const place::Plan* plan = s.plan ? &*s.plan : nullptr;
    std::function<bool(int)> release;
    if (copy.in_place)
      release = [plan](int l) {
        return !plan || (size_t(l) < plan->layers.size() && place::experts_read_only_by_cpu(plan->layers[size_t(l)]));
      };
    const uint64_t bytes = model.repack_for_cpu(pool, s.config.expert_homes.get(), release);
    if (bytes && !o.no_progress && isatty(STDERR_FILENO))  // beside the progress bar, not in piped output
      std::fprintf(stderr, "copied %.0f MiB of weights for the CPU kernels in %.2f s\n",
                   double(bytes) / double(1 << 20),
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return s;
}

std::string read_text_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(path + ": cannot open: " + std::strerror(errno));
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace hexe::cli
