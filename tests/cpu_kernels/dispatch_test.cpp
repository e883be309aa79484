// Dispatch: every compiled SIMD tier must really be chosen for shapes it supports (no silent
// scalar fallback), declines must say why, and HEXE_CPU_ISA-style caps must be honoured.
#include "cpu_kernels/dispatch.h"

#include <cstdlib>
#include <fstream>
#include <string>

#include "cpu_kernels/kernels.h"
#include "tests/cpu_kernels/test_util.h"

namespace hexe::cpu {
namespace {

using Param = std::tuple<Isa, DType>;

class Dispatch : public ::testing::TestWithParam<Param> {};

TEST_P(Dispatch, SimdTierIsChosenForSupportedShapes) {
  const auto [tier, type] = GetParam();
  HEXE_SKIP_IF_TIER_ABSENT(tier);
  const int64_t k = 3 * 256;  // a multiple of every block size
  const KernelChoice c = matmul_choice(type, k, tier);
  EXPECT_EQ(c.tier, tier) << "matmul/" << isa_name(tier) << "/" << dtype_name(type) << " k=" << k
                          << " fell back to " << c.name << " because: " << c.reasons;
  EXPECT_FALSE(c.name.empty());
  EXPECT_NE(c.name.find(std::string(dtype_name(type))), std::string::npos) << c.name;
}

// matmul() runs select_gemm(); the reported choice must be the kernel it really runs.
TEST_P(Dispatch, ReportedChoiceIsTheKernelRun) {
  const auto [tier, type] = GetParam();
  for (int64_t k : {256, 512, 257}) {
    const GemmKernel* g = select_gemm(type, k, tier);
    const KernelChoice c = matmul_choice(type, k, tier);
    EXPECT_EQ(g ? std::string(g->name) : std::string(), c.name) << dtype_name(type) << " k=" << k;
  }
}

// find_gemm is select_gemm without the log (the MoE layer compares layouts with it and logs only
// the one it runs): the same kernel for every format, tier, layout and k.
TEST_P(Dispatch, FindGemmIsSelectGemmWithoutTheLog) {
  const auto [tier, type] = GetParam();
  for (WeightLayout layout : {WeightLayout::Gguf, WeightLayout::Rows16})
    for (int64_t k : {256, 512, 257, 4096})
      EXPECT_EQ(find_gemm(type, k, tier, layout), select_gemm(type, k, tier, layout))
          << dtype_name(type) << "/" << layout_name(layout) << " k=" << k;
}

TEST_P(Dispatch, RaggedKDeclinesWithReason) {
  const auto [tier, type] = GetParam();
  HEXE_SKIP_IF_TIER_ABSENT(tier);
  if (info(type).block_elems == 1) GTEST_SKIP() << "float formats take any k";
  const int64_t k = info(type).block_elems + 1;
  const KernelChoice c = matmul_choice(type, k, tier);
  EXPECT_TRUE(c.name.empty()) << c.name;
  EXPECT_NE(c.reasons.find("not a multiple of"), std::string::npos) << c.reasons;
}

INSTANTIATE_TEST_SUITE_P(TiersXFormats, Dispatch,
                         ::testing::Combine(::testing::Values(Isa::Scalar, Isa::Avx2, Isa::Avx512),
                                            ::testing::ValuesIn(test::computable_types())),
                         [](const auto& i) {
                           return std::string(isa_name(std::get<0>(i.param))) + "_" +
                                  std::string(dtype_name(std::get<1>(i.param)));
                         });

TEST(Dispatch, CapBelowHardwareNamesTheCap) {
  if (hardware_isa() == Isa::Scalar) GTEST_SKIP() << "no SIMD tier on this CPU";
  const KernelChoice c = matmul_choice(DType::Q4_0, 256, Isa::Scalar);
  EXPECT_EQ(c.tier, Isa::Scalar);
  EXPECT_NE(c.reasons.find("capped"), std::string::npos) << c.reasons;
}

// BF16 weights at the AVX-512 tier: the vdpbf16ps tile on AMD CPUs with AVX512_BF16 (the Matmul
// tests then run it at m = 1-3), else the tile that widens the weights to f32.
TEST(Dispatch, Bf16TakesTheDotProductTileOnAmdWithAvx512Bf16) {
  if (int(hardware_isa()) < int(Isa::Avx512)) GTEST_SKIP() << "no AVX-512 on this CPU";
  const KernelChoice c = matmul_choice(DType::BF16, 2048, Isa::Avx512);
  const bool dp = cpu_features().avx512_bf16 && cpu_features().amd;
  EXPECT_EQ(c.name, dp ? "avx512_bf16/bf16" : "avx512/bf16") << c.reasons;
}

TEST(Dispatch, NonComputableFormatHasNoKernel) {
  const KernelChoice c = matmul_choice(DType::Q2_K, 256, Isa::Avx512);
  EXPECT_TRUE(c.name.empty());
  EXPECT_FALSE(c.reasons.empty());
}

TEST(Isa, FeaturesAreConsistent) {
  const CpuFeatures& f = cpu_features();
  if (f.avx512bw || f.avx512vl || f.avx512_vnni) {
    EXPECT_TRUE(f.avx512f);
  }
  if (hardware_isa() >= Isa::Avx512) {
    EXPECT_TRUE(f.avx512f && f.avx512bw && f.avx512vl && f.avx2);
  }
  if (hardware_isa() == Isa::Amx) {
    EXPECT_TRUE(f.amx_tile && f.amx_int8 && f.avx512_vnni && amx_usable());
  }
  if (hardware_isa() >= Isa::Avx2) {
    EXPECT_TRUE(f.avx2 && f.fma && f.f16c);
  }
  EXPECT_LE(int(active_isa()), int(hardware_isa()));
  EXPECT_STREQ(isa_name(Isa::Avx512), "avx512");
  EXPECT_STREQ(isa_name(Isa::Amx), "amx");
}

// A Rows16 copy pays only where its kernel is SIMD and of at least the GGUF kernel's tier: never
// on the scalar tier (there it would run the scalar Rows16 code; the loader and `bench moe-layer
// --layout auto` then keep the GGUF layout), on AVX2 for Q4_K, Q8_0, Q4_0 and Q4_1 only (the formats with
// AVX2 Rows16 tiles), always at AVX-512 VNNI for the Rows16 formats.
TEST(Dispatch, Rows16PaysOnlyWithItsSimdKernel) {
  for (DType t : {DType::Q4_K, DType::Q6_K, DType::Q8_0, DType::Q5_K, DType::Q4_0, DType::Q4_1, DType::Q5_0}) {
    const bool avx2_tile = t == DType::Q4_K || t == DType::Q8_0 || t == DType::Q4_0 || t == DType::Q4_1;
    EXPECT_FALSE(rows16_pays(t, 2048, Isa::Scalar)) << dtype_name(t);
    if (hardware_isa() >= Isa::Avx2) {
      EXPECT_EQ(rows16_pays(t, 2048, Isa::Avx2), avx2_tile) << dtype_name(t);
    }
    if (hardware_isa() >= Isa::Avx512 && cpu_features().avx512_vnni) {
      EXPECT_TRUE(rows16_pays(t, 2048, Isa::Avx512)) << dtype_name(t);
    }
    // What the planner asks of a profile, whatever this CPU is.
    EXPECT_EQ(rows16_tile_for(t, true, false), avx2_tile) << dtype_name(t);
    EXPECT_TRUE(rows16_tile_for(t, true, true)) << dtype_name(t);
    EXPECT_FALSE(rows16_tile_for(t, false, false)) << dtype_name(t);
  }
  EXPECT_FALSE(rows16_tile_for(DType::F32, true, true));
  EXPECT_FALSE(rows16_pays(DType::F32, 2048, Isa::Amx));   // no Rows16 layout
  EXPECT_FALSE(rows16_pays(DType::Q4_K, 2000, Isa::Amx));  // k not whole super-blocks
}

// The vendor read from CPUID is the one Linux reports (it picks the decode tiles' prefetch).
TEST(Isa, VendorMatchesProcCpuinfo) {
  std::ifstream in("/proc/cpuinfo");
  std::string line, vendor;
  while (vendor.empty() && std::getline(in, line))
    if (line.rfind("vendor_id", 0) == 0) vendor = line.substr(line.find(':') + 2);
  if (vendor.empty()) GTEST_SKIP() << "no vendor_id in /proc/cpuinfo";
  EXPECT_EQ(cpu_features().amd, vendor == "AuthenticAMD") << "vendor_id " << vendor;
  if (std::getenv("HEXE_PREFETCH")) return;  // set by hand: it overrides the default
  EXPECT_EQ(decode_prefetch_bytes(1024), cpu_features().amd ? 0 : 1024);
  // A tile that keeps its prefetch on AMD (the AVX2 tiles: Zen 3) has it on every vendor.
  EXPECT_EQ(decode_prefetch_bytes(1024, PrefetchOnAmd::On), 1024);
}

}  // namespace
}  // namespace hexe::cpu
