// `hexe bench`: `hexe bench moe-layer ...` (one synthetic routed-expert layer) and
// `hexe bench -m FILE -p 512 -n 64 [-r 3] [--json]` (end to end, llama-bench style rows).
#include <memory>

#include "runtime/cli/bench_e2e.h"
#include "runtime/cli/bench_gpu.h"
#include "runtime/cli/bench_moe_layer.h"
#include "runtime/cli/commands.h"

namespace hexe::cli {

void add_bench_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("bench", "Benchmarks: a model end to end (-m FILE) or one MoE layer (moe-layer)");
  auto eo = std::make_shared<E2eBenchOptions>();
  add_model_options(*cmd, eo->model);
  cmd->add_option("-p,--n-prompt", eo->prompt, "Prompt-processing test tokens (0: skip)")->capture_default_str();
  cmd->add_option("-n,--n-gen", eo->gen, "Generation test tokens (0: skip)")->capture_default_str();
  cmd->add_option("-r,--repetitions", eo->reps, "Repetitions of each test")->capture_default_str();
  cmd->add_flag("--json", eo->json, "Print the rows as JSON");
  cmd->add_option("--routing-stats", eo->routing_stats,
                  "Write the warm-up runs' expert choices (JSON) to this file, for --routing-from");
  auto mo = std::make_shared<MoeLayerBenchOptions>();
  auto* moe = cmd->add_subcommand("moe-layer", "One routed-expert layer with a real model's shapes; last line `ratio <x>`");
  moe->add_option("--shape", mo->shape, "qwen3-30b-a3b | qwen3-235b-a22b | deepseek-v3")->capture_default_str();
  moe->add_option("--quant", mo->quant, "q4_k | q6_k | q8_0 | bf16 (or another computable type)")->capture_default_str();
  moe->add_option("--tokens", mo->tokens, "Tokens per step (<= 8: decode, GB/s; more: prefill, GFLOP/s)")
      ->capture_default_str()->check(CLI::Range(int64_t(1), int64_t(1) << 20));
  moe->add_option("-t,--threads", mo->threads, "Threads (0: all)")->capture_default_str();
  moe->add_flag("--pin", mo->pin, "Pin thread i to the i-th physical core (hwloc), as the engine does by default");
  moe->add_option("--pool", mo->pool, "Thread pool: spin (ours) | tbb (a oneTBB task_arena)")
      ->capture_default_str()->check(CLI::IsMember({"spin", "tbb"}));
  moe->add_option("-r,--runs", mo->runs, "Runs; the figure is their median")->capture_default_str()->check(CLI::Range(1, 100));
  moe->add_option("--set-mib", mo->set_mib, "Weight set size (default 16 x LLC and >= 512 MiB, <= 6 GiB and MemAvailable/2)");
  moe->add_option("--seed", mo->seed, "Random seed")->capture_default_str();
  moe->add_option("--layout", mo->layout, "Expert layout: gguf | rows16 | auto (rows16 where the loader would repack: AVX-512 VNNI q8_0, q4_0, q4_k, q5_k, q6_k; AVX2 q8_0, q4_k)")
      ->capture_default_str()->check(CLI::IsMember({"gguf", "rows16", "auto"}));
  moe->callback([mo] { run_moe_layer_bench(*mo); });
  add_bench_gpu_commands(*cmd);  // pcie, handoff
  cmd->callback([cmd, eo] {
    if (cmd->get_subcommands().empty()) run_e2e_bench(*eo);
  });
}

}  // namespace hexe::cli
