// GPU row plumbing (gpu_kernels/rows.h) against plain loops: residual and bias adds, gathering and
// weighted scattering of token rows with ragged widths, and K/V stores into F16 pages.
#include <cmath>
#include <cstdint>
#include <vector>

#include <cuda_fp16.h>
#include <gtest/gtest.h>

#include "gpu_kernels/ops.h"
#include "gpu_kernels/rows.h"
#include "tests/gpu/gpu_test_util.h"

namespace hexe::gpu::test {
namespace {

std::vector<float> download_floats(const DeviceBuffer& b, size_t n) {
  std::vector<float> out(n);
  EXPECT_EQ(b.download(out.data(), n * 4), cudaSuccess);
  return out;
}

TEST(GpuRows, AddAndAddBiasMatchLoops) {
  HEXE_REQUIRE_GPU();
  for (int64_t rows : {1, 3, 17}) {
    for (int64_t n : {1, 5, 133}) {
      const auto x = random_floats(size_t(rows * n), uint64_t(rows * 7 + n), -2.f, 2.f);
      const auto y = random_floats(size_t(rows * n), uint64_t(rows * 11 + n), -2.f, 2.f);
      const auto b = random_floats(size_t(n), uint64_t(n), -1.f, 1.f);
      DeviceBuffer dx(x.size() * 4), dy(y.size() * 4), db(b.size() * 4);
      HEXE_CUDA_OK(dx.upload(x.data(), x.size() * 4));
      HEXE_CUDA_OK(dy.upload(y.data(), y.size() * 4));
      HEXE_CUDA_OK(db.upload(b.data(), b.size() * 4));
      HEXE_GPU_OK(add(dx.get<float>(), dy.get<float>(), rows * n, nullptr));
      HEXE_GPU_OK(add_bias(dx.get<float>(), db.get<float>(), rows, n, nullptr));
      const auto got = download_floats(dx, x.size());
      for (int64_t i = 0; i < rows * n; ++i)
        ASSERT_EQ(got[size_t(i)], (x[size_t(i)] + y[size_t(i)]) + b[size_t(i % n)]) << rows << "x" << n << " at " << i;
    }
  }
}

TEST(GpuRows, GatherThenWeightedScatterAddsEachPickedRowOnce) {
  HEXE_REQUIRE_GPU();
  const int64_t n_src = 13, width = 37, stride = 41;  // ragged width, padded rows
  const std::vector<int32_t> pick = {12, 0, 5, 7, 3};
  const std::vector<float> w = {0.5f, -1.25f, 2.f, 0.125f, 1.f};
  const auto src = random_floats(size_t(n_src * stride), 5, -1.f, 1.f);
  const auto dst0 = random_floats(size_t(n_src * stride), 6, -1.f, 1.f);
  DeviceBuffer dsrc(src.size() * 4), dg(pick.size() * width * 4), drows(pick.size() * 4), dw(w.size() * 4),
      ddst(dst0.size() * 4);
  HEXE_CUDA_OK(dsrc.upload(src.data(), src.size() * 4));
  HEXE_CUDA_OK(drows.upload(pick.data(), pick.size() * 4));
  HEXE_CUDA_OK(dw.upload(w.data(), w.size() * 4));
  HEXE_CUDA_OK(ddst.upload(dst0.data(), dst0.size() * 4));
  const int64_t n = int64_t(pick.size());
  HEXE_GPU_OK(gather_rows(dsrc.get<float>(), stride, drows.get<int32_t>(), n, width, dg.get<float>(), width, nullptr));
  const auto g = download_floats(dg, pick.size() * width);
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < width; ++c) ASSERT_EQ(g[size_t(r * width + c)], src[size_t(pick[r] * stride + c)]);
  HEXE_GPU_OK(scatter_add_weighted(dg.get<float>(), width, drows.get<int32_t>(), dw.get<float>(), n, width,
                                   ddst.get<float>(), stride, nullptr));
  const auto got = download_floats(ddst, dst0.size());
  std::vector<float> want = dst0;
  for (int64_t r = 0; r < n; ++r)
    for (int64_t c = 0; c < width; ++c) want[size_t(pick[r] * stride + c)] += w[r] * g[size_t(r * width + c)];
  // The GPU may fuse the multiply-add (one rounding instead of two): 1 ulp of the result.
  for (size_t i = 0; i < want.size(); ++i)
    ASSERT_NEAR(got[i], want[i], 1e-6f * (1.f + std::fabs(want[i]))) << "element " << i;  // padding untouched too
}

// Batched experts: tokens appear in several experts' entries; each token's entries are added in
// slot order (the loop below), skipped where the entry is -1.
TEST(GpuRows, CombineAddsEachTokensEntriesInSlotOrder) {
  HEXE_REQUIRE_GPU();
  const int64_t n_tokens = 3, width = 37, stride = 41;
  const int k = 4;
  const std::vector<int32_t> entries = {0, 4, 7, -1, 2, 5, 1, 8, -1, -1, 3, 6};
  const auto w = random_floats(9, 3, -1.f, 1.f);
  const auto src = random_floats(size_t(9 * width), 4, -1.f, 1.f);
  const auto dst0 = random_floats(size_t(n_tokens * stride), 6, -1.f, 1.f);
  DeviceBuffer dsrc(src.size() * 4), de(entries.size() * 4), dw(w.size() * 4), ddst(dst0.size() * 4);
  HEXE_CUDA_OK(dsrc.upload(src.data(), src.size() * 4));
  HEXE_CUDA_OK(de.upload(entries.data(), entries.size() * 4));
  HEXE_CUDA_OK(dw.upload(w.data(), w.size() * 4));
  HEXE_CUDA_OK(ddst.upload(dst0.data(), dst0.size() * 4));
  HEXE_GPU_OK(combine_rows_weighted(dsrc.get<float>(), width, de.get<int32_t>(), dw.get<float>(), n_tokens, k, width,
                                    ddst.get<float>(), stride, nullptr));
  const auto got = download_floats(ddst, dst0.size());
  for (int64_t t = 0; t < n_tokens; ++t)
    for (int64_t c = 0; c < stride; ++c) {
      float want = dst0[size_t(t * stride + c)];
      if (c < width)
        for (int j = 0; j < k; ++j) {
          const int32_t e = entries[size_t(t * k + j)];
          if (e >= 0) want += w[size_t(e)] * src[size_t(e * width + c)];
        }
      // Fused multiply-adds: a few ulp of the sum's magnitude.
      ASSERT_NEAR(got[size_t(t * stride + c)], want, 1e-6f * (4.f + std::fabs(want))) << t << "," << c;
    }
}

TEST(GpuRows, StoreKvRowsWritesHalvesIntoEachTokensPageSlot) {
  HEXE_REQUIRE_GPU();
  const int page_tokens = 4, n_pages = 5;
  const int64_t width = 24, src_stride = 30;
  // Two sequences' page tables concatenated: seq A owns pages {3, 0}, seq B {1, 4, 2}.
  const std::vector<int> table_pages = {3, 0, 1, 4, 2};
  const std::vector<int32_t> pos = {5, 6, 0, 9, 11}, start = {0, 0, 2, 2, 2};
  const int64_t T = int64_t(pos.size());
  DeviceBuffer pool(size_t(n_pages) * page_tokens * width * 2);
  HEXE_CUDA_OK(cudaMemset(pool.get(), 0, pool.bytes()));
  std::vector<__half*> table;
  for (int p : table_pages) table.push_back(pool.get<__half>() + int64_t(p) * page_tokens * width);
  const auto src = random_floats(size_t(T * src_stride), 9, -4.f, 4.f);
  DeviceBuffer dtab(table.size() * sizeof(__half*)), dpos(pos.size() * 4), dstart(start.size() * 4),
      dsrc(src.size() * 4);
  HEXE_CUDA_OK(dtab.upload(table.data(), table.size() * sizeof(__half*)));
  HEXE_CUDA_OK(dpos.upload(pos.data(), pos.size() * 4));
  HEXE_CUDA_OK(dstart.upload(start.data(), start.size() * 4));
  HEXE_CUDA_OK(dsrc.upload(src.data(), src.size() * 4));
  HEXE_GPU_OK(store_kv_rows(dsrc.get<float>(), src_stride, T, width, dtab.get<__half*>(), dstart.get<int32_t>(),
                            dpos.get<int32_t>(), page_tokens, nullptr));
  std::vector<__half> got(size_t(n_pages) * page_tokens * width);
  HEXE_CUDA_OK(pool.download(got.data(), got.size() * 2));
  std::vector<float> want(got.size(), 0.f);
  for (int64_t t = 0; t < T; ++t) {
    const int page = table_pages[size_t(start[t] + pos[t] / page_tokens)];
    for (int64_t c = 0; c < width; ++c)
      want[size_t((int64_t(page) * page_tokens + pos[t] % page_tokens) * width + c)] =
          __half2float(__float2half_rn(src[size_t(t * src_stride + c)]));
  }
  for (size_t i = 0; i < want.size(); ++i) ASSERT_EQ(__half2float(got[i]), want[i]) << "half " << i;
}

// rope_table against runtime/engine/mla_block.cpp's rope_pairs formula: the rotated part sits
// inside strided heads (DeepSeek's q_pe after q_nope), YaRN-like frequencies and attn_factor.
TEST(GpuRopeTable, MatchesTheCpuPairRotation) {
  HEXE_REQUIRE_GPU();
  const int64_t T = 5, H = 3, head_stride = 48, offset = 16, token_stride = H * head_stride + 7;
  const int pairs = 16;
  const float attn_factor = 1.1f;
  std::vector<float> inv(pairs);
  for (int i = 0; i < pairs; ++i) inv[i] = 1.f / std::pow(10000.f, float(2 * i) / float(2 * pairs)) * (i < 5 ? 1.f : 0.25f);
  const std::vector<int32_t> pos = {0, 1, 17, 300, 4095};
  const auto x = random_floats(size_t(T * token_stride), 21, -2.f, 2.f);
  DeviceBuffer dx(x.size() * 4), dinv(inv.size() * 4), dpos(pos.size() * 4);
  HEXE_CUDA_OK(dx.upload(x.data(), x.size() * 4));
  HEXE_CUDA_OK(dinv.upload(inv.data(), inv.size() * 4));
  HEXE_CUDA_OK(dpos.upload(pos.data(), pos.size() * 4));
  RopeTableParams p;
  p.x = dx.get<float>() + offset;
  p.positions = dpos.get<int32_t>();
  p.n_tokens = T;
  p.token_stride = token_stride;
  p.n_heads = int(H);
  p.head_stride = head_stride;
  p.inv_freq = dinv.get<float>();
  p.n_pairs = pairs;
  p.attn_factor = attn_factor;
  HEXE_GPU_OK(rope_table(p, nullptr));
  const auto got = download_floats(dx, x.size());
  std::vector<float> want = x;
  for (int64_t t = 0; t < T; ++t)
    for (int64_t h = 0; h < H; ++h) {
      float* xh = want.data() + t * token_stride + h * head_stride + offset;
      for (int i = 0; i < pairs; ++i) {
        const float angle = float(pos[t]) * inv[i];
        const float c = float(std::cos(double(angle))) * attn_factor, sn = float(std::sin(double(angle))) * attn_factor;
        const float a = xh[2 * i], b = xh[2 * i + 1];
        xh[2 * i] = a * c - b * sn;
        xh[2 * i + 1] = b * c + a * sn;
      }
    }
  for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-5f * (1.f + std::fabs(want[i]))) << i;
}

TEST(GpuRows, BadArgumentsAreRefusedByName) {
  HEXE_REQUIRE_GPU();
  const Status s = gather_rows(nullptr, 4, nullptr, 2, 4, nullptr, 4, nullptr);
  EXPECT_EQ(s.code, StatusCode::kInvalidArgument);
  EXPECT_STREQ(s.op, "gather_rows");
  EXPECT_EQ(store_kv_rows(nullptr, 1, 1, 4, nullptr, nullptr, nullptr, 0, nullptr).code, StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace hexe::gpu::test
