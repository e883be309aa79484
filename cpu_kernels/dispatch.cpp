// The kernel table (format x tier), filled once, and the choice of variant for a problem.
#include "cpu_kernels/dispatch.h"

#include <cstdio>
#include <mutex>
#include <set>
#include <string>

#include "cpu_kernels/env.h"
#include "cpu_kernels/kernels.h"

namespace hexe::cpu {
namespace {

constexpr int kTiers = kIsaCount;

struct Table {
  GemmKernel k[kLayoutCount][detail::kDTypeCount][kTiers];
};

const Table& table() {
  static const Table t = [] {
    Table t{};
    for (uint32_t id = 0; id < detail::kDTypeCount; ++id) {
      const auto type = static_cast<DType>(id);
      if (!detail::kDTypeTable[id].computable) continue;
      for (int l = 0; l < kLayoutCount; ++l) {
        auto& row = t.k[l][id];
        for (int tier = 0; tier < kTiers; ++tier) row[tier] = {nullptr, nullptr, "no kernel", 1, false};
        if (WeightLayout(l) == WeightLayout::Gguf) {
          row[int(Isa::Scalar)] = gemm_kernel_ref(type);
          row[int(Isa::Avx2)] = kGemmAvx2[id];
          row[int(Isa::Avx512)] = kGemmAvx512[id];
          // BF16 decode through vdpbf16ps on AMD only: on the Zen 4 VM it streamed BF16 experts at
          // 0.95 of DRAM against 0.73 for the widening tile (moe-layer, 2 threads); on a 16-core
          // Xeon (Sapphire Rapids class) host at 0.48-0.49 against 0.77-0.80 (cause not found there).
          if (kGemmAvx512Bf16[id].fn && cpu_features().avx512_bf16 && cpu_features().amd)
            row[int(Isa::Avx512)] = kGemmAvx512Bf16[id];
          row[int(Isa::Amx)] = kGemmAmx[id];
        } else {
          row[int(Isa::Scalar)] = gemm_kernel_rows16_ref(type);
          row[int(Isa::Avx2)] = kGemmRows16Avx2[id];
          row[int(Isa::Avx512)] = kGemmRows16Avx512[id];
          row[int(Isa::Amx)] = kGemmRows16Amx[id];
        }
        for (const Isa t : {Isa::Avx512, Isa::Amx})
          if (row[int(t)].needs_vnni && !cpu_features().avx512_vnni)
            row[int(t)] = {nullptr, nullptr, "needs AVX512_VNNI", 1, false};
        for (int tier = 0; tier < kTiers; ++tier) row[tier].tier = Isa(tier);
      }
    }
    return t;
  }();
  return t;
}

// The highest tier a lookup may take: the caller's cap or the hardware's, whichever is lower.
int top_tier(Isa max_tier) { return int(max_tier) < int(hardware_isa()) ? int(max_tier) : int(hardware_isa()); }

}  // namespace

int decode_prefetch_bytes(int tile_default, PrefetchOnAmd amd) {
  const int v = env::prefetch_bytes();
  if (v >= 0) return v;
  // The tiles' distances were measured on a Xeon VM, where prefetching streamed 10-20% faster. On
  // the Zen 4 (EPYC) VM any software prefetch made the stream slower: one thread streaming Q4_K
  // from DRAM (bench_tile --kib 131072) 27 GB/s without, 17-20 with 0.5-8 KiB; moe-layer decode
  // qwen3-30b-a3b q4_k, alternating processes, ratios 0.86-0.96 (median 0.94) without against
  // 0.72-0.90 (0.83) with. Its hardware prefetchers keep up with a plain sequential stream, and
  // the prefetches only take miss buffers from the demand loads. (Q5_K needed 2 KiB there while
  // its tile read a 5th-bit plane after the nibbles four times per super-block; its layout now
  // keeps each line's bits just before it, and it streams fastest without, like the others.)
  // The AVX2 tiles are the other way round on the Zen 3 (EPYC, no AVX-512) VM, whose cores read
  // about 10 GB/s each from DRAM and whose AVX2 Q4_K tile computes only about 11 GB/s a core from
  // cache: without a prefetch its decode overlapped little of the two (bench_tile --kib 131072, one
  // thread: q4_K 5.6 GB/s, q8_0 6.0), with 4 KiB 9.5 and 9.2; moe-layer qwen3-30b-a3b decode,
  // alternating (5 rounds each): q4_k 0.66 -> 0.87, q8_0 0.71 -> 0.84.
  return cpu_features().amd && amd == PrefetchOnAmd::Off ? 0 : tile_default;
}

KernelChoice matmul_choice(DType w_type, int64_t k, Isa max_tier, WeightLayout layout) {
  KernelChoice c;
  const uint32_t id = static_cast<uint32_t>(w_type);
  if (id >= detail::kDTypeCount || !detail::kDTypeTable[id].computable) {
    c.reasons = "format " + std::string(dtype_name(w_type)) + " has no kernels";
    return c;
  }
  const Isa hw = hardware_isa();
  const int top = int(max_tier) < int(hw) ? int(max_tier) : int(hw);
  for (int tier = kTiers - 1; tier >= 0; --tier) {
    const GemmKernel& g = table().k[int(layout)][id][tier];
    const char* tname = isa_name(Isa(tier));
    std::string why;
    if (tier > top) why = int(hw) < tier ? "not supported by this CPU" : "capped by HEXE_CPU_ISA/caller";
    else if (!g.fn) why = g.decline ? g.decline : "no kernel";
    else if (k % g.k_multiple != 0)
      why = "k=" + std::to_string(k) + " not a multiple of " + std::to_string(g.k_multiple);
    if (why.empty()) {
      c.tier = Isa(tier);
      c.name = g.name;
      return c;
    }
    if (!c.reasons.empty()) c.reasons += "; ";
    c.reasons += std::string(tname) + ": " + why;
  }
  return c;
}

bool rows16_pays(DType w_type, int64_t k, Isa max_tier) {
  if (!rows16_supported(w_type) || k % int64_t(info(w_type).block_elems) != 0) return false;
  const KernelChoice g = matmul_choice(w_type, k, max_tier, WeightLayout::Gguf);
  const KernelChoice r = matmul_choice(w_type, k, max_tier, WeightLayout::Rows16);
  return !r.name.empty() && int(r.tier) >= int(g.tier) && r.tier != Isa::Scalar;
}

bool rows16_tile_for(DType w_type, bool avx2, bool avx512_vnni) {
  const uint32_t id = static_cast<uint32_t>(w_type);
  if (id >= detail::kDTypeCount || !rows16_supported(w_type)) return false;
  if (avx512_vnni) return kGemmRows16Avx512[id].fn != nullptr;
  return avx2 && kGemmRows16Avx2[id].fn != nullptr;
}

const GemmKernel* find_gemm(DType w_type, int64_t k, Isa max_tier, WeightLayout layout) {
  const uint32_t id = static_cast<uint32_t>(w_type);
  if (id >= detail::kDTypeCount || !detail::kDTypeTable[id].computable) return nullptr;
  for (int tier = top_tier(max_tier); tier >= 0; --tier) {
    const GemmKernel& g = table().k[int(layout)][id][tier];
    if (g.fn && k % g.k_multiple == 0) return &g;
  }
  return nullptr;
}

// Finds the kernel (without building strings on the hot path) and logs the choice once per
// (format, tier, k) when HEXE_LOG=dispatch.
const GemmKernel* select_gemm(DType w_type, int64_t k, Isa max_tier, WeightLayout layout) {
  const uint32_t id = static_cast<uint32_t>(w_type);
  if (id >= detail::kDTypeCount || !detail::kDTypeTable[id].computable) return nullptr;
  const GemmKernel* chosen = find_gemm(w_type, k, max_tier, layout);
  if (env::log_dispatch()) {
    const int top = top_tier(max_tier);
    static std::mutex mu;
    static std::set<std::string> seen;
    const std::string key = std::string(dtype_name(w_type)) + "/" + std::to_string(top) + "/" +
                            std::to_string(k) + "/" + layout_name(layout);
    std::lock_guard lk(mu);
    if (seen.insert(key).second) {
      const KernelChoice c = matmul_choice(w_type, k, max_tier, layout);
      std::fprintf(stderr, "hexe dispatch: matmul %s/%s k=%lld -> %s%s%s%s\n",
                   std::string(dtype_name(w_type)).c_str(), layout_name(layout), static_cast<long long>(k),
                   c.name.empty() ? "none" : c.name.c_str(), c.reasons.empty() ? "" : " (",
                   c.reasons.c_str(), c.reasons.empty() ? "" : ")");
    }
  }
  return chosen;
}

}  // namespace hexe::cpu
