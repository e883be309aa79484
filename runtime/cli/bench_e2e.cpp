// `hexe bench -m FILE` (see bench_e2e.h). pp<N>: one fresh sequence, N prompt tokens in one eval;
// tg<N>: one fresh sequence, N single-token evals (as llama-bench: from an empty context).
// Tokens are random ids (speed does not depend on them; routing does, a little).
#include "runtime/cli/bench_e2e.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <optional>
#include <random>
#include <span>
#include <thread>
#include <string>
#include <vector>

#include "cpu_kernels/probe.h"
#include "memory/error.h"
#include "runtime/cli/bench_limits.h"
#include "runtime/cli/plan_execution.h"
#include "runtime/cli/routing_stats_file.h"
#include "runtime/engine/phase_times.h"

namespace hexe::cli {
namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Row {
  std::string test;
  double mean = 0, sd = 0;  // tokens/s over reps
  std::vector<double> samples;
  std::optional<OffloadStats> timeline;  // GPU plans: where the timed reps' time went
  std::vector<double> dram;              // the read probe's GB/s just before each timed rep
  std::vector<double> plain;             // decode rows: one plain read pass's GB/s just after each timed rep
};

Row stats(std::string test, std::vector<double> tps, std::vector<double> dram, std::vector<double> plain) {
  Row r{std::move(test), 0, 0, tps, std::nullopt, std::move(dram), std::move(plain)};
  for (double v : tps) r.mean += v / double(tps.size());
  for (double v : tps) r.sd += (v - r.mean) * (v - r.mean);
  r.sd = tps.size() > 1 ? std::sqrt(r.sd / double(tps.size() - 1)) : 0;
  return r;
}

// Per test, per token: the step's wall time and each device's busy share. CPU: routing and the
// routed experts; GPU: the summed time of its segments (CUDA events); PCIe: the activations'
// bytes each way. The host waiting for the GPU is what of the GPU's work the CPU did not hide.
void print_timelines(const std::vector<Row>& rows, const GpuOffload& off) {
  std::printf("timeline on %s, per token (timed reps):\n", off.device_name().c_str());
  for (const Row& r : rows) {
    if (!r.timeline || r.timeline->tokens == 0) continue;
    const OffloadStats& s = *r.timeline;
    const double per = 1.0 / double(s.tokens), wall = s.wall_s;
    std::printf("  %-6s wall %8.3f ms | CPU experts %8.3f ms (%4.1f%%) | GPU busy %8.3f ms (%4.1f%%) | host waits "
                "for GPU %7.3f ms | PCIe H2D %.1f KB, D2H %.1f KB\n",
                r.test.c_str(), wall * per * 1e3, s.cpu_experts_s * per * 1e3, 100 * s.cpu_experts_s / wall,
                s.gpu_busy_s * per * 1e3, 100 * s.gpu_busy_s / wall, s.wait_gpu_s * per * 1e3,
                double(s.h2d_bytes) * per / 1e3, double(s.d2h_bytes) * per / 1e3);
    if (s.routed_pairs > 0)
      std::printf("         routed experts served from VRAM %.1f%% (%lld of %lld token-expert pairs); experts "
                  "uploaded %.2f per token (%.2f MB per token over PCIe)\n",
                  100.0 * double(s.vram_pairs) / double(s.routed_pairs), (long long)s.vram_pairs,
                  (long long)s.routed_pairs, double(s.expert_uploads) * per, double(s.expert_upload_bytes) * per / 1e6);
  }
}

}  // namespace

void run_e2e_bench(const E2eBenchOptions& o) {
  if (o.model.model.empty()) throw Error("hexe bench: -m FILE is required (or use `hexe bench moe-layer`)");
  if (o.prompt < 0 || o.gen < 0 || o.reps < 1) throw Error("hexe bench: -p and -n must be >= 0 and -r >= 1");
  auto model = load_model(o.model);
  const EngineSetup setup = engine_setup(o.model, *model, std::max(o.prompt, 1));
  EngineConfig cfg = setup.config;
  cfg.n_ctx = std::max<int64_t>(cfg.n_ctx, int64_t(o.prompt) + o.gen + 16);
  cfg.offload.timeline = true;  // per-device busy time of GPU plans
  Engine engine(*model, cfg);
  const place::ModelSpec& spec = model->spec();
  const int threads = cfg.n_threads > 0 ? cfg.n_threads : default_thread_count();
  // What the plan predicted for a row: prefill of the prompt, or decode. tg runs from an empty
  // cache (as llama-bench's does), so with --strategy its prediction is made at the test's mean
  // position; a saved plan (--plan) predicts decode at its own prompt length.
  std::optional<place::Plan> tg_plan, pp_plan;
  if (setup.plan && !o.model.plan.strategy.empty()) tg_plan = resolve_plan(o.model, *model, std::max(1, o.gen / 2));
  auto predicted = [&](const std::string& test) -> double {
    if (!setup.plan) return 0;
    if (test[0] == 'p') return (pp_plan ? *pp_plan : *setup.plan).prefill.tokens_per_s;
    return (tg_plan ? *tg_plan : *setup.plan).decode.tokens_per_s;
  };
  // With --strategy and no --routing-from, the warm-up reps count the engine's expert choices
  // and the predictions are made again with them: how many distinct experts a chunk reads
  // depends on the model's routing, which uniform routing (the planner's default) can miss.
  const bool replan = setup.plan && !o.model.plan.strategy.empty() && o.model.plan.routing.empty();
  const bool measure_routing = spec.n_expert > 0 && (replan || !o.routing_stats.empty());
  uint64_t routed_tokens = 0;

  // The DRAM limit, measured in this process with the same thread count. On a shared machine the
  // bandwidth drifts by 10-20% from second to second, so each timed rep is paired with a
  // measurement of the read probe just before it, and a row's DRAM ratio is the median of its
  // reps' ratios.
  const size_t avail = mem_available_bytes();
  size_t bytes = std::min({cpu::dram_span_bytes(), size_t(2) << 30, avail ? avail / 4 : size_t(1) << 30});
  bytes = std::max<size_t>(bytes, size_t(64) << 20) / (64 * size_t(threads)) * 64 * size_t(threads);
  cpu::ThreadPool probe_pool(threads);
  AlignedBytes buf(bytes);
  fill_random_weights(DType::F32, buf.data, buf.size, 3, probe_pool);
  // Best of two passes: the first pass after the engine's work reads 10-20% slower here (threads
  // waking where the scheduler left them), which would flatter the ratio.
  // After each timed rep, one pass of the probe's fastest pattern (the one dram_pass last found):
  // what a plain read of the bytes scores by the same measure, the DRAM ratio's practical ceiling
  // (0.94-1.0 on the Zen 4 VM; probe.h).
  int fastest = 0;
  auto dram_pass = [&] {
    std::vector<double> by;
    const double best = cpu::read_bandwidth_gbs(buf.data, buf.size, probe_pool, 2, &by);
    fastest = cpu::fastest_pattern(by);
    return best;
  };
  auto plain_pass = [&] { return cpu::read_pass_gbs(buf.data, buf.size, probe_pool, fastest); };

  std::mt19937 rng(1);
  auto token = [&] { return int32_t(rng() % uint32_t(spec.n_vocab)); };
  std::vector<Row> rows;
  if (o.prompt > 0) {
    std::vector<double> tps, dram;
    for (int r = 0; r <= o.reps; ++r) {  // rep 0: warm-up (page faults of the mapped weights)
      if (r == 1 && engine.offload()) engine.offload()->reset_stats();
      engine.enable_routing_counts(measure_routing && r == 0);
      if (r == 0) routed_tokens += uint64_t(o.prompt);
      const int seq = engine.new_sequence();
      std::vector<BatchItem> items(size_t(o.prompt));
      for (int i = 0; i < o.prompt; ++i) items[size_t(i)] = {seq, token(), i + 1 == o.prompt};
      if (r > 0) dram.push_back(dram_pass());
      const double t0 = now();
      engine.eval(items);
      if (r > 0) tps.push_back(o.prompt / (now() - t0));
      engine.free_sequence(seq);
    }
    rows.push_back(stats("pp" + std::to_string(o.prompt), tps, dram, {}));  // compute-bound: no plain read
    if (engine.offload()) rows.back().timeline = engine.offload()->stats();
  }
  if (o.gen > 0) {
    std::vector<double> tps, dram, plain;
    for (int r = 0; r <= o.reps; ++r) {
      if (r == 1 && engine.offload()) engine.offload()->reset_stats();
      engine.enable_routing_counts(measure_routing && r == 0);
      if (r == 0) routed_tokens += uint64_t(o.gen);
      const int seq = engine.new_sequence();
      if (r > 0) dram.push_back(dram_pass());
      const double t0 = now();
      for (int i = 0; i < o.gen; ++i) {
        const BatchItem it{seq, token(), true};
        engine.eval(std::span<const BatchItem>(&it, 1));
      }
      if (r > 0) tps.push_back(o.gen / (now() - t0));
      if (r > 0) plain.push_back(plain_pass());
      engine.free_sequence(seq);
    }
    rows.push_back(stats("tg" + std::to_string(o.gen), tps, dram, plain));
    if (engine.offload()) rows.back().timeline = engine.offload()->stats();
  }
  engine.enable_routing_counts(false);
  if (!o.routing_stats.empty() && routed_tokens > 0) write_routing_stats(engine, *model, routed_tokens, o.routing_stats);
  if (measure_routing && replan && routed_tokens > 0) {
    const place::RoutingStats routed = routing_stats_of(engine, *model, routed_tokens);
    pp_plan = resolve_plan(o.model, *model, std::max(o.prompt, 1), &routed);
    tg_plan = resolve_plan(o.model, *model, std::max(1, o.gen / 2), &routed);
  }

  std::vector<double> all_dram;
  for (const Row& r : rows) all_dram.insert(all_dram.end(), r.dram.begin(), r.dram.end());
  const double dram = median(all_dram);
  // Bytes a token reads from host memory: with GPU layers, only what stays on the host. Cached
  // layers' experts are read over PCIe (counted in the timeline), not by the CPU; hot layers'
  // CPU share is the measured share of routed pairs the hot set did not serve.
  const OffloadConfig& off = cfg.offload;
  std::vector<char> gpu_exp = off.experts_on_gpu, gpu_exp_hot = off.experts_on_gpu;
  gpu_exp.resize(size_t(off.gpu_layers), 0);
  gpu_exp_hot.resize(size_t(off.gpu_layers), 0);
  for (int l = 0; l < off.gpu_layers; ++l) {
    const bool cached = size_t(l) < off.cache_slots.size() && off.cache_slots[l] > 0;
    const bool hot = size_t(l) < off.hot_experts.size() && !off.hot_experts[l].empty();
    if (cached) gpu_exp[l] = gpu_exp_hot[l] = 1;
    if (hot) gpu_exp_hot[l] = 1;
  }
  const double bpt_cpu_hot = engine.offload() ? double(spec.host_bytes_per_token(off.gpu_layers, gpu_exp, off.head_on_gpu))
                                              : double(spec.bytes_per_token());
  const double bpt_gpu_hot =
      engine.offload() ? double(spec.host_bytes_per_token(off.gpu_layers, gpu_exp_hot, off.head_on_gpu)) : bpt_cpu_hot;
  auto bytes_per_token = [&](const Row& r) {
    if (bpt_cpu_hot == bpt_gpu_hot || !r.timeline || r.timeline->routed_pairs == 0) return bpt_cpu_hot;
    const double hit = double(r.timeline->vram_pairs) / double(r.timeline->routed_pairs);
    return bpt_gpu_hot + (bpt_cpu_hot - bpt_gpu_hot) * (1 - hit);
  };
  // A decode row's DRAM-bound ratio: the median over its reps of tokens/s x bytes per token over
  // the probe's rate just before that rep.
  auto dram_ratio = [&](const Row& r) {
    std::vector<double> v;
    for (size_t i = 0; i < r.samples.size() && i < r.dram.size(); ++i)
      if (r.dram[i] > 0) v.push_back(r.samples[i] * bytes_per_token(r) / 1e9 / r.dram[i]);
    return median(v);
  };
  // The same measure for the plain read pass after each rep.
  auto plain_ratio = [&](const Row& r) {
    std::vector<double> v;
    for (size_t i = 0; i < r.plain.size() && i < r.dram.size(); ++i)
      if (r.dram[i] > 0) v.push_back(r.plain[i] / r.dram[i]);
    return median(v);
  };
  const double size_gib = double(spec.bytes_total()) / double(1ull << 30);
  const double params_b = double(spec.params_total()) / 1e9;

  if (o.json) {
    std::printf("[\n");
    for (size_t i = 0; i < rows.size(); ++i) {
      const Row& r = rows[i];
      const bool tg = r.test[0] == 't';
      std::printf("  {\"model\": \"%s\", \"size_bytes\": %llu, \"params\": %llu, \"threads\": %d, \"test\": \"%s\", "
                  "\"avg_ts\": %.3f, \"stddev_ts\": %.3f, \"samples_ts\": [",
                  spec.name.c_str(), static_cast<unsigned long long>(spec.bytes_total()),
                  static_cast<unsigned long long>(spec.params_total()), threads, r.test.c_str(), r.mean, r.sd);
      for (size_t j = 0; j < r.samples.size(); ++j) std::printf("%s%.3f", j ? ", " : "", r.samples[j]);
      const double bpt = bytes_per_token(r);
      std::printf("], \"bytes_per_token\": %.0f, \"dram_read_gbs\": %.3f, \"samples_dram_gbs\": [", bpt, median(r.dram));
      for (size_t j = 0; j < r.dram.size(); ++j) std::printf("%s%.3f", j ? ", " : "", r.dram[j]);
      std::printf("]");
      if (tg) std::printf(", \"dram_bound_ratio\": %.4f, \"plain_read_ratio\": %.4f", dram_ratio(r), plain_ratio(r));
      if (setup.plan)
        std::printf(", \"strategy\": \"%s\", \"predicted_ts\": %.3f", setup.plan->strategy.c_str(),
                    predicted(r.test));
      std::printf("}%s\n", i + 1 < rows.size() ? "," : "");
    }
    std::printf("]\n");
    return;
  }
  std::printf("| %-24s | %10s | %8s | %7s | %8s | %18s | %12s | %10s |\n", "model", "size", "params", "threads",
              "test", "t/s", "bytes/token", "DRAM ratio");
  std::printf("| %.24s | %.10s | %.8s | %.7s | %.8s | %.18s | %.12s | %.10s |\n", "------------------------------",
              "------------", "----------", "---------", "----------", "--------------------", "--------------",
              "-----------");
  for (const Row& r : rows) {
    const double bpt = bytes_per_token(r);
    char tps[48], ratio[24] = "-";
    std::snprintf(tps, sizeof tps, "%.2f +- %.2f", r.mean, r.sd);
    if (r.test[0] == 't') std::snprintf(ratio, sizeof ratio, "%.3f", dram_ratio(r));
    char size[24];
    if (size_gib >= 1) std::snprintf(size, sizeof size, "%.2f GiB", size_gib);
    else std::snprintf(size, sizeof size, "%.2f MiB", size_gib * 1024);
    char params[24];
    if (params_b >= 1) std::snprintf(params, sizeof params, "%.2f B", params_b);
    else std::snprintf(params, sizeof params, "%.2f M", params_b * 1e3);
    std::printf("| %-24.24s | %10s | %8s | %7d | %8s | %18s | %9.2f MB | %10s |\n", spec.name.c_str(), size,
                params, threads, r.test.c_str(), tps, bpt / 1e6, ratio);
  }
  std::printf("dram read %.2f GB/s (median over the timed reps of the best of 2 passes over %.0f MiB just before each, %.2f-%.2f, %d threads); "
              "load average %s\n",
              dram, double(bytes) / (1 << 20), all_dram.empty() ? 0.0 : *std::min_element(all_dram.begin(), all_dram.end()),
              all_dram.empty() ? 0.0 : *std::max_element(all_dram.begin(), all_dram.end()), threads,
              load_average().c_str());
  for (const Row& r : rows)
    if (r.test[0] == 't' && !r.plain.empty())
      std::printf("plain read: one pass of the probe's fastest pattern after each %s rep scores %.3f by the DRAM "
                  "ratio's measure (median): about the best a run that reads its bytes once can do\n",
                  r.test.c_str(), plain_ratio(r));
  if (setup.plan && setup.plan->decode.tokens_per_s > 0) {
    // The planner's prediction beside the measurement: how far off the cost model is here.
    std::printf("plan '%s' on profile '%s'%s:", setup.plan->strategy.c_str(), setup.plan->profile.c_str(),
                pp_plan ? " with the routing of the warm-up runs" : "");
    for (const Row& r : rows)
      std::printf("  %s predicted %.2f t/s, measured/predicted %.3f;", r.test.c_str(), predicted(r.test),
                  predicted(r.test) > 0 ? r.mean / predicted(r.test) : 0.0);
    std::printf("\n");
  }
  if (engine.offload()) print_timelines(rows, *engine.offload());
  print_phase_times(stdout);
}

}  // namespace hexe::cli
