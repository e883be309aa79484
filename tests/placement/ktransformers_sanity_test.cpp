// Sanity check against published figures: KTransformers V0.2 running DeepSeek-R1 Q4_K_M on its
// reference machine (2x Xeon Gold 6454S, one RTX 4090D; 500-token prompt, 8 experts):
// dual socket prefill 82.94 tok/s, decode 12.208 tok/s; single socket 54.21 / 8.73 tok/s
// (doc/en/DeepseekR1_V3_tutorial.md, "V0.2 Benchmark Results"). The profile carries the
// efficiencies KTransformers achieves; both configurations must come out within 25%.
#include <gtest/gtest.h>

#include <cmath>

#include "placement/hardware_profile.h"
#include "placement/model_shapes.h"
#include "placement/strategies.h"

namespace hexe::place {
namespace {

struct Published {
  const char* what;
  int sockets;
  double prefill, decode;
};

Plan ktransformers_plan(int sockets) {
  static PlanModel m = load_model_shape("deepseek-r1", QuantRecipe::Q4_K_M);
  HardwareProfile hw = load_profile(HEXE_SOURCE_DIR "/profiles/hardware/ktransformers-ref.json");
  if (sockets == 1) {
    // One socket: its cores, its NUMA node's bandwidth, half the peaks.
    hw.cpu.sockets = 1;
    hw.cpu.cores /= 2;
    hw.cpu.numa.resize(1);
    hw.cpu.dram_read_gbps = hw.cpu.numa[0].read_gbps;
    hw.cpu.peak_gops_int8 /= 2;
    hw.cpu.peak_gflops_bf16 /= 2;
    hw.cpu.peak_gflops_fp32 /= 2;
    hw.host_memory_bytes /= 2;
  }
  PlanInputs in;
  in.model = &m;
  in.hw = &hw;
  in.workload.prompt = 500;
  in.workload.context = 4096;  // KTransformers V0.2 ran with its default 4K cache
  return make_plan(in, Strategy::ExpertsCpu);
}

TEST(KTransformersSanity, DeepSeekR1Q4KMWithinQuarter) {
  for (const Published& pub : {Published{"dual socket", 2, 82.94, 12.208}, Published{"single socket", 1, 54.21, 8.73}}) {
    Plan p = ktransformers_plan(pub.sockets);
    SCOPED_TRACE(pub.what);
    EXPECT_TRUE(p.fits) << describe_plan(p);
    const double rp = p.prefill.tokens_per_s / pub.prefill, rd = p.decode.tokens_per_s / pub.decode;
    std::printf("[ ktrans ] %s: prefill %.1f tok/s (published %.2f, ratio %.2f), decode %.2f tok/s "
                "(published %.3f, ratio %.2f); GPU %s\n",
                pub.what, p.prefill.tokens_per_s, pub.prefill, rp, p.decode.tokens_per_s, pub.decode, rd,
                format_bytes(p.gpu.total()).c_str());
    EXPECT_NEAR(rp, 1.0, 0.25) << describe_plan(p);
    EXPECT_NEAR(rd, 1.0, 0.25) << describe_plan(p);
  }
}

}  // namespace
}  // namespace hexe::place
