// gpu::qk_rope_store against the launches it replaces (rms_norm x2, rope x2, store_kv_rows x2) on
// the same inputs: q, k and both page pools must agree bit for bit.
#include <algorithm>
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include <cuda_fp16.h>
#include <gtest/gtest.h>

#include "gpu_kernels/ops.h"
#include "gpu_kernels/rows.h"
#include "tests/gpu/gpu_test_util.h"

namespace hexe::gpu::test {
namespace {

struct FusedCase {
  int n_tokens, n_heads, n_kv_heads, head_dim, rot_dim;
  RopeMode mode;
  bool norm, page_start;
  int page_tokens, pad;  // pad: spare floats after each token's q, k and v rows
  float theta;
};
std::string name(const FusedCase& c) {
  // std::string("t"), not "t" + ...: GCC 12's -Wrestrict false positive on a literal + temporary.
  return std::string("t") + std::to_string(c.n_tokens) + "_h" + std::to_string(c.n_heads) + "kv" + std::to_string(c.n_kv_heads) +
         "_d" + std::to_string(c.head_dim) + "_rot" + std::to_string(c.rot_dim) +
         (c.mode == RopeMode::Neox ? "_neox" : "_inter") + (c.norm ? "_norm" : "") + (c.page_start ? "_start" : "") +
         "_page" + std::to_string(c.page_tokens) + "_pad" + std::to_string(c.pad);
}
void PrintTo(const FusedCase& c, std::ostream* os) { *os << name(c); }

// Token placement: tokens split into up to 3 sequences (one without page_start), each with its own
// pages in the table, starting 2 + s rows before a page's end so runs of tokens cross a boundary.
struct Layout {
  std::vector<int32_t> pos, start;
  int pages = 0;  // table entries
};
Layout layout(const FusedCase& c) {
  const int seqs = c.page_start ? std::min(c.n_tokens, 3) : 1;
  const int per_seq = (2 * c.page_tokens + c.n_tokens) / c.page_tokens + 1;
  Layout l;
  l.pages = seqs * per_seq;
  for (int t = 0; t < c.n_tokens; ++t) {
    const int s = t * seqs / c.n_tokens, first = s * c.n_tokens / seqs + (s * c.n_tokens % seqs != 0);
    l.pos.push_back((1 + s % 2) * c.page_tokens - 2 - s + (t - first));
    l.start.push_back(s * per_seq);
  }
  return l;
}

// A pool of `pages` pages of page_tokens rows of `width` halves, filled with a sentinel, and its
// device page table in reverse page order.
struct Pool {
  DeviceBuffer mem, table;
  Pool(int pages, int page_tokens, int64_t width)
      : mem(size_t(pages) * page_tokens * width * 2), table(size_t(pages) * sizeof(__half*)) {
    EXPECT_EQ(cudaMemset(mem.get(), 0x7b, mem.bytes()), cudaSuccess);
    std::vector<__half*> ptrs;
    for (int i = 0; i < pages; ++i)
      ptrs.push_back(mem.get<__half>() + int64_t(pages - 1 - i) * page_tokens * width);
    EXPECT_EQ(table.upload(ptrs.data(), ptrs.size() * sizeof(__half*)), cudaSuccess);
  }
  std::vector<uint16_t> bits() const {
    std::vector<uint16_t> out(mem.bytes() / 2);
    EXPECT_EQ(mem.download(out.data(), mem.bytes()), cudaSuccess);
    return out;
  }
};

// One side's device state: q and k (rewritten), v, and the two pools.
struct Side {
  DeviceBuffer q, k;
  Pool kp, vp;
  Side(const std::vector<float>& hq, const std::vector<float>& hk, int pages, int page_tokens, int64_t width)
      : q(hq.size() * 4), k(hk.size() * 4), kp(pages, page_tokens, width), vp(pages, page_tokens, width) {
    EXPECT_EQ(q.upload(hq.data(), hq.size() * 4), cudaSuccess);
    EXPECT_EQ(k.upload(hk.data(), hk.size() * 4), cudaSuccess);
  }
};

std::vector<uint32_t> float_bits(const DeviceBuffer& b) {
  std::vector<uint32_t> out(b.bytes() / 4);
  EXPECT_EQ(b.download(out.data(), b.bytes()), cudaSuccess);
  return out;
}

class GpuQkRopeStore : public ::testing::TestWithParam<FusedCase> {};

TEST_P(GpuQkRopeStore, MatchesTheSixLaunchesBitForBit) {
  HEXE_REQUIRE_GPU();
  const auto c = GetParam();
  const int D = c.head_dim, T = c.n_tokens;
  const int64_t width = int64_t(c.n_kv_heads) * D, qs = int64_t(c.n_heads) * D + c.pad, ks = width + c.pad;
  const uint64_t seed = uint64_t(T * 1000 + c.n_heads * 10 + D);
  const auto hq = random_floats(size_t(T * qs), seed, -2.f, 2.f);
  const auto hk = random_floats(size_t(T * ks), seed + 1, -2.f, 2.f);
  const auto hv = random_floats(size_t(T * ks), seed + 2, -2.f, 2.f);
  const auto hqn = random_floats(size_t(D), seed + 3, 0.5f, 1.5f), hkn = random_floats(size_t(D), seed + 4, 0.5f, 1.5f);
  const Layout l = layout(c);
  DeviceBuffer dv(hv.size() * 4), dqn(hqn.size() * 4), dkn(hkn.size() * 4), dpos(l.pos.size() * 4),
      dstart(l.start.size() * 4);
  HEXE_CUDA_OK(dv.upload(hv.data(), hv.size() * 4));
  HEXE_CUDA_OK(dqn.upload(hqn.data(), hqn.size() * 4));
  HEXE_CUDA_OK(dkn.upload(hkn.data(), hkn.size() * 4));
  HEXE_CUDA_OK(dpos.upload(l.pos.data(), l.pos.size() * 4));
  HEXE_CUDA_OK(dstart.upload(l.start.data(), l.start.size() * 4));
  const int32_t* start = c.page_start ? dstart.get<int32_t>() : nullptr;
  const float eps = 1e-6f;
  Side ref(hq, hk, l.pages, c.page_tokens, width), got(hq, hk, l.pages, c.page_tokens, width);

  // The old sequence, as CudaOffload::attention ran it (rms_norm per token where rows are padded).
  if (c.norm)
    for (int t = 0; t < T; ++t) {
      float* q = ref.q.get<float>() + t * qs;
      float* k = ref.k.get<float>() + t * ks;
      HEXE_GPU_OK(rms_norm({q, dqn.get<float>(), q, c.n_heads, D, eps}, nullptr));
      HEXE_GPU_OK(rms_norm({k, dkn.get<float>(), k, c.n_kv_heads, D, eps}, nullptr));
    }
  RopeParams rp;
  rp.positions = dpos.get<int32_t>();
  rp.n_tokens = T;
  rp.head_dim = D;
  rp.rot_dim = c.rot_dim;
  rp.theta = c.theta;
  rp.mode = c.mode;
  rp.x = ref.q.get<float>();
  rp.token_stride = qs;
  rp.n_heads = c.n_heads;
  HEXE_GPU_OK(rope(rp, nullptr));
  rp.x = ref.k.get<float>();
  rp.token_stride = ks;
  rp.n_heads = c.n_kv_heads;
  HEXE_GPU_OK(rope(rp, nullptr));
  HEXE_GPU_OK(store_kv_rows(ref.k.get<float>(), ks, T, width, ref.kp.table.get<__half*>(), start,
                            dpos.get<int32_t>(), c.page_tokens, nullptr));
  HEXE_GPU_OK(store_kv_rows(dv.get<float>(), ks, T, width, ref.vp.table.get<__half*>(), start, dpos.get<int32_t>(),
                            c.page_tokens, nullptr));

  QkRopeStoreParams p;
  p.q = got.q.get<float>();
  p.k = got.k.get<float>();
  p.v = dv.get<float>();
  p.n_tokens = T;
  p.q_stride = qs;
  p.k_stride = p.v_stride = ks;
  p.n_heads = c.n_heads;
  p.n_kv_heads = c.n_kv_heads;
  p.head_dim = D;
  p.q_norm = c.norm ? dqn.get<float>() : nullptr;
  p.k_norm = c.norm ? dkn.get<float>() : nullptr;
  p.eps = eps;
  p.positions = dpos.get<int32_t>();
  p.rot_dim = c.rot_dim;
  p.theta = c.theta;
  p.mode = c.mode;
  p.k_pages = got.kp.table.get<__half*>();
  p.v_pages = got.vp.table.get<__half*>();
  p.page_start = start;
  p.page_tokens = c.page_tokens;
  HEXE_GPU_OK(qk_rope_store(p, nullptr));

  // Whole buffers, padding and untouched page rows included.
  const auto rq = float_bits(ref.q), gq = float_bits(got.q);
  for (size_t i = 0; i < rq.size(); ++i) ASSERT_EQ(gq[i], rq[i]) << "q token " << i / qs << " element " << i % qs;
  const auto rk = float_bits(ref.k), gk = float_bits(got.k);
  for (size_t i = 0; i < rk.size(); ++i) ASSERT_EQ(gk[i], rk[i]) << "k token " << i / ks << " element " << i % ks;
  const int64_t page = int64_t(c.page_tokens) * width;
  const auto rkp = ref.kp.bits(), gkp = got.kp.bits();
  for (size_t i = 0; i < rkp.size(); ++i) ASSERT_EQ(gkp[i], rkp[i]) << "K page " << i / page << " half " << i % page;
  const auto rvp = ref.vp.bits(), gvp = got.vp.bits();
  for (size_t i = 0; i < rvp.size(); ++i) ASSERT_EQ(gvp[i], rvp[i]) << "V page " << i / page << " half " << i % page;
}

constexpr RopeMode kNeox = RopeMode::Neox, kInter = RopeMode::Interleaved;
INSTANTIATE_TEST_SUITE_P(Shapes, GpuQkRopeStore,
                         ::testing::Values(FusedCase{1, 32, 4, 128, 128, kNeox, true, true, 16, 0, 1e6f},
                                           FusedCase{1, 32, 4, 64, 64, kInter, false, false, 64, 0, 1e4f},
                                           FusedCase{3, 8, 8, 64, 64, kInter, false, false, 64, 0, 1e4f},
                                           FusedCase{3, 16, 2, 256, 256, kNeox, true, true, 64, 0, 1e6f},
                                           FusedCase{8, 6, 2, 96, 96, kNeox, true, true, 16, 0, 1e4f},
                                           FusedCase{8, 8, 8, 128, 128, kInter, true, false, 16, 5, 1e4f},
                                           FusedCase{37, 32, 4, 128, 64, kNeox, false, true, 64, 0, 1e4f},
                                           FusedCase{37, 6, 2, 72, 32, kInter, true, true, 16, 3, 5e5f}),
                         [](const auto& i) { return name(i.param); });

// Argument checks: statuses naming the field, before any CUDA call (no GPU needed).
TEST(GpuQkRopeStoreArgs, RejectsBadShapesBeforeTouchingTheDevice) {
  QkRopeStoreParams p;
  p.n_tokens = 1;
  p.q_stride = 4 * 64;
  p.k_stride = p.v_stride = 2 * 64;
  p.n_heads = 4;
  p.n_kv_heads = 2;
  p.head_dim = 64;
  p.rot_dim = 64;
  p.page_tokens = 16;
  auto why = [&p] {
    const Status s = qk_rope_store(p, nullptr);
    EXPECT_EQ(s.code, StatusCode::kInvalidArgument);
    EXPECT_STREQ(s.op, "qk_rope_store");
    return std::string(s.detail);
  };
  auto rejects = [&](auto&& field, auto bad, const char* word) {
    const auto keep = field;
    field = bad;
    EXPECT_NE(why().find(word), std::string::npos) << why();
    field = keep;
  };
  rejects(p.head_dim, 300, "head_dim");
  rejects(p.rot_dim, 63, "rot_dim");
  rejects(p.rot_dim, 0, "rot_dim");
  rejects(p.q_stride, 4 * 64 - 1, "q_stride");
  rejects(p.k_stride, 2 * 64 - 1, "k_stride");
  rejects(p.v_stride, 1, "v_stride");
  rejects(p.n_kv_heads, 0, "n_kv_heads");
  rejects(p.page_tokens, 0, "page_tokens");
  rejects(p.n_tokens, int64_t(1) << 30, "grid");
  rejects(p.q_norm, reinterpret_cast<const float*>(uintptr_t(256)), "k_norm");
  EXPECT_NE(why().find("null"), std::string::npos) << why();  // valid shape, no buffers
  p.n_tokens = 0;  // nothing to do is fine without any pointer
  EXPECT_TRUE(qk_rope_store(p, nullptr).ok());
}

}  // namespace
}  // namespace hexe::gpu::test
