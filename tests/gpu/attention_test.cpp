// GPU paged attention (GQA decode/prefill, MLA latent) against the CPU: cpu::attention_ref for GQA
// and a loop that mirrors runtime/engine/mla_block.cpp for MLA. The cache values are rounded to
// F16 once and both sides read the same values (the CPU as floats), so the only differences are
// float rounding: the tolerance is derived per element from the data.
#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>
#include <ostream>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <cuda_fp16.h>
#include <gtest/gtest.h>

#include "cpu_kernels/attention.h"
#include "cpu_kernels/ops.h"
#include "cpu_kernels/quant.h"
#include "gpu_kernels/attention.h"
#include "tests/gpu/gpu_test_util.h"

namespace hexe::gpu::test {
namespace {

// One sequence's cache for one layer (K, V or the MLA latent): F16-rounded values as float pages
// for the CPU, and the F16 image on the device with the pages stored in a shuffled order so that
// the kernels must follow the page table.
struct PagedCache {
  int page_tokens = 0;
  int64_t row = 0;  // values per token
  std::vector<std::vector<float>> pages;
  std::vector<float*> page_ptrs;                 // for cpu::KvPageView
  std::vector<const __half*> device_table;       // device pointers, page order
  std::unique_ptr<DeviceBuffer> data;

  const float* at(int64_t t) const { return pages[size_t(t / page_tokens)].data() + (t % page_tokens) * row; }
};

// A cache of n_tokens rows of `row` values uniform in [-amp, amp], rounded to F16; the device
// pages start `shift` halves past the buffer's (aligned) start.
std::unique_ptr<PagedCache> make_cache(int64_t n_tokens, int page_tokens, int64_t row, float amp, uint64_t seed,
                                       int shift = 0) {
  auto c = std::make_unique<PagedCache>();
  c->page_tokens = page_tokens;
  c->row = row;
  const int64_t n_pages = (n_tokens + page_tokens - 1) / page_tokens;
  const int64_t page_vals = int64_t(page_tokens) * row;
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> d(-amp, amp);
  std::vector<int64_t> slot(static_cast<size_t>(n_pages));
  std::iota(slot.begin(), slot.end(), 0);
  std::shuffle(slot.begin(), slot.end(), rng);
  std::vector<uint16_t> image(size_t(n_pages * page_vals + shift), 0x7e00);  // NaN where no token: never read
  for (int64_t p = 0; p < n_pages; ++p) {
    std::vector<float> page(size_t(page_vals), 0.f);
    for (int64_t i = 0; i < page_vals; ++i) {
      if (p * page_tokens + i / row >= n_tokens) break;
      const uint16_t h = cpu::f32_to_f16(d(rng));
      page[size_t(i)] = cpu::f16_to_f32(h);
      image[size_t(slot[size_t(p)] * page_vals + shift + i)] = h;
    }
    c->pages.push_back(std::move(page));
  }
  for (auto& p : c->pages) c->page_ptrs.push_back(p.data());
  c->data = std::make_unique<DeviceBuffer>(image.size() * 2);
  if (c->data->ok() && c->data->upload(image.data(), image.size() * 2) == cudaSuccess)
    for (int64_t p = 0; p < n_pages; ++p)
      c->device_table.push_back(c->data->get<const __half>() + slot[size_t(p)] * page_vals + shift);
  return c;
}

// Uploads a host vector; the buffer outlives the call.
template <class T>
std::unique_ptr<DeviceBuffer> upload(const std::vector<T>& v) {
  auto b = std::make_unique<DeviceBuffer>(v.size() * sizeof(T));
  if (b->ok() && !v.empty() && b->upload(v.data(), v.size() * sizeof(T)) != cudaSuccess) b.reset();
  return b;
}

int sm_count() {
  DeviceInfo info;
  return device_info(0, &info).ok() ? info.sm_count : 1;
}

// Error bound of one output row o[e] = sum_t p_t v_t[e] / sum_t p_t for keys 0..n-1, from the data
// in double. A score s_t = scale * (q . k_t) computed in float is off by at most
// scale * dk u32 sum_e |q_e k_te| (any order); exp turns that absolute error into the same
// relative error of p_t. The float sums over n keys (the output and the softmax denominator, plus
// the online rescaling once per tile) add up to about n u32 relative to sum_t p_t |v_t[e]| / sum p.
// Both the GPU and the compared CPU side round, hence the factor 2.
std::vector<double> tolerance(const float* q, int64_t dk, const std::vector<const float*>& keys,
                              const std::vector<const float*>& values, int64_t dv, double scale) {
  const size_t n = keys.size();
  std::vector<double> s(n);
  double mx = -INFINITY, delta = 0;
  for (size_t t = 0; t < n; ++t) {
    double dot = 0, mag = 0;
    for (int64_t e = 0; e < dk; ++e) {
      dot += double(q[e]) * keys[t][e];
      mag += std::fabs(double(q[e]) * keys[t][e]);
    }
    s[t] = dot * scale;
    mx = std::max(mx, s[t]);
    delta = std::max(delta, std::fabs(scale) * double(dk + 2) * kU32 * mag + 4 * kU32 * std::fabs(s[t]));
  }
  double sum = 0;
  for (auto& x : s) sum += (x = std::exp(x - mx));
  std::vector<double> tol(static_cast<size_t>(dv));
  for (int64_t e = 0; e < dv; ++e) {
    double a = 0;
    for (size_t t = 0; t < n; ++t) a += s[t] * std::fabs(double(values[t][e]));
    tol[size_t(e)] = 2 * (a / sum) * (3 * delta + (3 * double(n) + 64) * kU32) + 1e-30;
  }
  return tol;
}

// ---------------------------------------------------------------------------------------------
// GQA

enum class Path { kPrefill, kDecode };
struct GqaCase {
  Path path;
  int n_heads, n_kv_heads, head_dim, page_tokens;
  int64_t prefix;  // cached tokens before the queries
  int64_t n_q;     // queries at positions prefix .. prefix + n_q - 1 (their rows are cached too)
  int n_splits;    // decode: 0 = attention_decode_splits()
  int64_t max_keys = 0;  // 0: prefix + n_q; more: a graph's capacity, the ranges past the keys empty
  int shift = 0;         // halves the cache pages start past 16-byte alignment
};
void PrintTo(const GqaCase& c, std::ostream* os) {
  *os << (c.path == Path::kDecode ? "decode" : "prefill") << " heads=" << c.n_heads << "/" << c.n_kv_heads
      << " head_dim=" << c.head_dim << " page=" << c.page_tokens << " prefix=" << c.prefix << " n_q=" << c.n_q
      << " splits=" << c.n_splits << " max_keys=" << c.max_keys << " shift=" << c.shift;
}
class GpuAttention : public ::testing::TestWithParam<GqaCase> {};

TEST_P(GpuAttention, MatchesCpuReference) {
  HEXE_REQUIRE_GPU();
  const auto c = GetParam();
  const int64_t n_tokens = c.prefix + c.n_q, kv_row = int64_t(c.n_kv_heads) * c.head_dim;
  const uint64_t seed = uint64_t(n_tokens * 131 + c.head_dim * 7 + c.n_q);
  auto kc = make_cache(n_tokens, c.page_tokens, kv_row, 1.f, seed, c.shift);
  auto vc = make_cache(n_tokens, c.page_tokens, kv_row, 1.f, seed + 1, c.shift);
  ASSERT_EQ(kc->device_table.size(), kc->pages.size());
  ASSERT_EQ(vc->device_table.size(), vc->pages.size());
  const int64_t q_row = int64_t(c.n_heads) * c.head_dim;
  const auto q = random_floats(size_t(c.n_q * q_row), seed + 2, -3.f, 3.f);
  std::vector<int32_t> pos(static_cast<size_t>(c.n_q));
  std::vector<int64_t> pos64(pos.size());
  for (int64_t i = 0; i < c.n_q; ++i) pos[size_t(i)] = int32_t(pos64[size_t(i)] = c.prefix + i);
  const float scale = 1.f / std::sqrt(float(c.head_dim));

  auto dq = upload(q), dpos = upload(pos), dk = upload(kc->device_table), dv = upload(vc->device_table);
  ASSERT_TRUE(dq && dpos && dk && dv);
  DeviceBuffer dout(size_t(c.n_q * q_row) * 4);
  AttentionParams p;
  p.q = dq->get<float>();
  p.n_q = c.n_q;
  p.q_pos = dpos->get<int32_t>();
  p.n_heads = c.n_heads;
  p.n_kv_heads = c.n_kv_heads;
  p.head_dim = c.head_dim;
  p.k = {dk->get<const __half* const>(), c.page_tokens};
  p.v = {dv->get<const __half* const>(), c.page_tokens};
  p.max_keys = c.max_keys ? c.max_keys : n_tokens;
  p.scale = scale;
  p.out = dout.get<float>();
  if (c.path == Path::kPrefill) {
    HEXE_GPU_OK(attention_prefill(p, nullptr));
  } else {
    const int splits = c.n_splits ? c.n_splits : attention_decode_splits(p.max_keys, attention_blocks(p), sm_count());
    const size_t ws_bytes = attention_workspace_bytes(p.n_q, p.n_heads, p.head_dim, splits);
    DeviceBuffer ws(ws_bytes);
    HEXE_GPU_OK(attention_decode(p, splits, ws.get(), ws_bytes, nullptr));
  }
  std::vector<float> got(size_t(c.n_q * q_row));
  HEXE_CUDA_OK(dout.download(got.data(), got.size() * 4));

  cpu::AttentionParams rp;
  rp.q = q.data();
  rp.n_q = c.n_q;
  rp.q_pos = pos64.data();
  rp.n_heads = c.n_heads;
  rp.k = {kc->page_ptrs.data(), c.page_tokens, c.n_kv_heads, c.head_dim};
  rp.v = {vc->page_ptrs.data(), c.page_tokens, c.n_kv_heads, c.head_dim};
  rp.scale = scale;
  std::vector<float> ref(got.size());
  rp.out = ref.data();
  cpu::attention_ref(rp);

  const int group = c.n_heads / c.n_kv_heads;
  for (int64_t i = 0; i < c.n_q; ++i)
    for (int h = 0; h < c.n_heads; ++h) {
      const int64_t kvo = int64_t(h / group) * c.head_dim;
      std::vector<const float*> keys, values;
      for (int64_t t = 0; t <= pos64[size_t(i)]; ++t) {
        keys.push_back(kc->at(t) + kvo);
        values.push_back(vc->at(t) + kvo);
      }
      const int64_t o = (i * c.n_heads + h) * c.head_dim;
      const auto tol = tolerance(q.data() + o, c.head_dim, keys, values, c.head_dim, scale);
      for (int e = 0; e < c.head_dim; ++e)
        ASSERT_NEAR(got[size_t(o + e)], ref[size_t(o + e)], tol[size_t(e)])
            << "query " << i << " (pos " << pos64[size_t(i)] << ") head " << h << " element " << e;
    }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, GpuAttention,
    ::testing::Values(
        // Decode (one query at context - 1) over ragged contexts, one range, fixed and planned splits.
        GqaCase{Path::kDecode, 8, 2, 64, 16, 0, 1, 1}, GqaCase{Path::kDecode, 8, 2, 64, 16, 16, 1, 4},
        GqaCase{Path::kDecode, 8, 2, 128, 16, 254, 1, 1}, GqaCase{Path::kDecode, 8, 2, 128, 16, 254, 1, 7},
        GqaCase{Path::kDecode, 8, 2, 128, 64, 999, 1, 0}, GqaCase{Path::kDecode, 8, 2, 64, 64, 999, 1, 16},
        GqaCase{Path::kDecode, 32, 4, 256, 32, 299, 1, 0}, GqaCase{Path::kDecode, 8, 8, 80, 16, 100, 1, 3},
        // More splits than keys: empty ranges must not disturb the combine.
        GqaCase{Path::kDecode, 8, 2, 64, 16, 16, 1, 32},
        // Decode path with several queries (a short chunk split over the keys).
        GqaCase{Path::kDecode, 8, 2, 128, 16, 240, 5, 6},
        // Graph-style decode: max_keys is the cache capacity (4096), 64 ranges of 64 keys, most
        // of them past the keys; positions on and next to range (64) and page (16) boundaries.
        GqaCase{Path::kDecode, 32, 4, 128, 16, 0, 1, 64, 4096}, GqaCase{Path::kDecode, 32, 4, 128, 16, 15, 1, 64, 4096},
        GqaCase{Path::kDecode, 32, 4, 128, 16, 16, 1, 64, 4096}, GqaCase{Path::kDecode, 32, 4, 128, 16, 63, 1, 64, 4096},
        GqaCase{Path::kDecode, 32, 4, 128, 16, 64, 1, 64, 4096}, GqaCase{Path::kDecode, 32, 4, 128, 16, 127, 1, 64, 4096},
        GqaCase{Path::kDecode, 32, 4, 128, 16, 128, 1, 64, 4096}, GqaCase{Path::kDecode, 32, 4, 128, 16, 549, 1, 64, 4096},
        GqaCase{Path::kDecode, 32, 4, 128, 16, 4095, 1, 64, 4096}, GqaCase{Path::kDecode, 32, 4, 128, 16, 549, 1, 0, 4096},
        GqaCase{Path::kDecode, 8, 8, 64, 32, 300, 1, 0, 4096},
        // Queries on both sides of a range boundary in one launch (positions 60..64), group 8.
        GqaCase{Path::kDecode, 32, 4, 128, 16, 60, 5, 64, 4096},
        // K/V tile staging off its 16-byte path: rows only 8- or 4-byte aligned, head_dim % 8 != 0.
        GqaCase{Path::kDecode, 8, 2, 128, 16, 100, 1, 4, 0, 4}, GqaCase{Path::kPrefill, 8, 2, 64, 16, 30, 9, 1, 0, 2},
        GqaCase{Path::kDecode, 4, 2, 36, 16, 70, 1, 3}, GqaCase{Path::kPrefill, 6, 3, 20, 16, 10, 7, 1},
        // Prefill chunks: from empty, after a ragged prefix, up to 1000 tokens; GQA and MHA.
        GqaCase{Path::kPrefill, 8, 2, 64, 16, 0, 17, 1}, GqaCase{Path::kPrefill, 8, 2, 128, 16, 100, 37, 1},
        GqaCase{Path::kPrefill, 8, 2, 128, 64, 983, 17, 1}, GqaCase{Path::kPrefill, 8, 2, 64, 64, 0, 255, 1},
        GqaCase{Path::kPrefill, 4, 4, 96, 16, 5, 3, 1}, GqaCase{Path::kPrefill, 16, 2, 256, 16, 30, 9, 1}),
    [](const auto& i) {
      const auto& c = i.param;
      return std::string(c.path == Path::kDecode ? "decode" : "prefill") + "_h" + std::to_string(c.n_heads) + "kv" +
             std::to_string(c.n_kv_heads) + "_d" + std::to_string(c.head_dim) + "_page" +
             std::to_string(c.page_tokens) + "_prefix" + std::to_string(c.prefix) + "_q" + std::to_string(c.n_q) +
             "_splits" + std::to_string(c.n_splits) + (c.max_keys ? "_maxkeys" + std::to_string(c.max_keys) : "") +
             (c.shift ? "_shift" + std::to_string(c.shift) : "");
    });

// Decode for several sequences in one launch: their page tables concatenated, q_page_start
// pointing each query at its own.
TEST(GpuAttentionBatch, SequencesWithOwnPageTables) {
  HEXE_REQUIRE_GPU();
  const int n_heads = 8, n_kv = 2, hd = 128, page = 16, group = n_heads / n_kv;
  const std::vector<int64_t> ctx = {1, 255, 1000, 17};
  std::vector<std::unique_ptr<PagedCache>> kcs, vcs;
  std::vector<const __half*> ktab, vtab;
  std::vector<int32_t> start, pos;
  for (size_t s = 0; s < ctx.size(); ++s) {
    kcs.push_back(make_cache(ctx[s], page, n_kv * hd, 1.f, 500 + s));
    vcs.push_back(make_cache(ctx[s], page, n_kv * hd, 1.f, 600 + s));
    ASSERT_EQ(kcs.back()->device_table.size(), kcs.back()->pages.size());
    ASSERT_EQ(vcs.back()->device_table.size(), vcs.back()->pages.size());
    start.push_back(int32_t(ktab.size()));
    pos.push_back(int32_t(ctx[s] - 1));
    ktab.insert(ktab.end(), kcs.back()->device_table.begin(), kcs.back()->device_table.end());
    vtab.insert(vtab.end(), vcs.back()->device_table.begin(), vcs.back()->device_table.end());
  }
  const int64_t n_q = int64_t(ctx.size());
  const auto q = random_floats(size_t(n_q * n_heads * hd), 77, -3.f, 3.f);
  auto dq = upload(q), dpos = upload(pos), dstart = upload(start), dk = upload(ktab), dv = upload(vtab);
  ASSERT_TRUE(dq && dpos && dstart && dk && dv);
  DeviceBuffer dout(q.size() * 4);
  AttentionParams p;
  p.q = dq->get<float>();
  p.n_q = n_q;
  p.q_pos = dpos->get<int32_t>();
  p.q_page_start = dstart->get<int32_t>();
  p.n_heads = n_heads;
  p.n_kv_heads = n_kv;
  p.head_dim = hd;
  p.k = {dk->get<const __half* const>(), page};
  p.v = {dv->get<const __half* const>(), page};
  p.scale = 1.f / std::sqrt(float(hd));
  p.out = dout.get<float>();
  // The longest context, then a graph's capacity (64 ranges of 64 keys, most past every query).
  for (auto [max_keys, splits] : {std::pair<int64_t, int>{*std::max_element(ctx.begin(), ctx.end()), 8},
                                  std::pair<int64_t, int>{4096, 64}}) {
    SCOPED_TRACE("max_keys " + std::to_string(max_keys) + ", " + std::to_string(splits) + " ranges");
    p.max_keys = max_keys;
    const size_t ws_bytes = attention_workspace_bytes(n_q, n_heads, hd, splits);
    DeviceBuffer ws(ws_bytes);
    HEXE_CUDA_OK(cudaMemset(dout.get(), 0xff, q.size() * 4));  // NaN: every output must be written
    HEXE_GPU_OK(attention_decode(p, splits, ws.get(), ws_bytes, nullptr));
    std::vector<float> got(q.size());
    HEXE_CUDA_OK(dout.download(got.data(), got.size() * 4));
    for (int64_t s = 0; s < n_q; ++s) {
      const int64_t qpos = ctx[size_t(s)] - 1;
      cpu::AttentionParams rp;
      rp.q = q.data() + s * n_heads * hd;
      rp.n_q = 1;
      rp.q_pos = &qpos;
      rp.n_heads = n_heads;
      rp.k = {kcs[size_t(s)]->page_ptrs.data(), page, n_kv, hd};
      rp.v = {vcs[size_t(s)]->page_ptrs.data(), page, n_kv, hd};
      rp.scale = p.scale;
      std::vector<float> ref(size_t(n_heads * hd));
      rp.out = ref.data();
      cpu::attention_ref(rp);
      for (int h = 0; h < n_heads; ++h) {
        std::vector<const float*> keys, values;
        for (int64_t t = 0; t <= qpos; ++t) {
          keys.push_back(kcs[size_t(s)]->at(t) + (h / group) * hd);
          values.push_back(vcs[size_t(s)]->at(t) + (h / group) * hd);
        }
        const auto tol = tolerance(rp.q + h * hd, hd, keys, values, hd, p.scale);
        for (int e = 0; e < hd; ++e)
          ASSERT_NEAR(got[size_t((s * n_heads + h) * hd + e)], ref[size_t(h * hd + e)], tol[size_t(e)])
              << "sequence " << s << " (context " << ctx[size_t(s)] << ") head " << h << " element " << e;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// MLA

// mla_block.cpp's latent attention for one (query, head): float dot over [c | k_rope] times the
// scale, the max, exp, a double sum, then o += (p_t / sum) c_t with cpu::axpy.
void mla_ref(const float* q, const PagedCache& cache, int64_t n_kv, int64_t lat, int64_t R, float scale, float* o) {
  std::vector<float> p(static_cast<size_t>(n_kv));
  float mx = -INFINITY;
  for (int64_t j = 0; j < n_kv; ++j) {
    p[size_t(j)] = cpu::dot_f32(q, cache.at(j), lat) * scale;
    mx = std::max(mx, p[size_t(j)]);
  }
  double sum = 0;
  for (int64_t j = 0; j < n_kv; ++j) sum += (p[size_t(j)] = std::exp(p[size_t(j)] - mx));
  std::fill(o, o + R, 0.f);
  const float inv = float(1.0 / sum);
  for (int64_t j = 0; j < n_kv; ++j) cpu::axpy(p[size_t(j)] * inv, cache.at(j), o, R);
}

struct MlaCase {
  int n_heads, kv_lora, rope, page_tokens;
  int64_t prefix, n_q;
  int n_splits;  // 0 = attention_decode_splits()
  int64_t max_keys = 0;  // 0: prefix + n_q (as GqaCase)
};
void PrintTo(const MlaCase& c, std::ostream* os) {
  *os << "heads=" << c.n_heads << " kv_lora=" << c.kv_lora << " rope=" << c.rope << " page=" << c.page_tokens
      << " prefix=" << c.prefix << " n_q=" << c.n_q << " splits=" << c.n_splits << " max_keys=" << c.max_keys;
}
class GpuMlaAttention : public ::testing::TestWithParam<MlaCase> {};

TEST_P(GpuMlaAttention, MatchesMlaBlockCpu) {
  HEXE_REQUIRE_GPU();
  const auto c = GetParam();
  const int64_t n_tokens = c.prefix + c.n_q, R = c.kv_lora, lat = R + c.rope;
  const uint64_t seed = uint64_t(n_tokens * 17 + R + c.n_q);
  auto cache = make_cache(n_tokens, c.page_tokens, lat, 1.f, seed);
  ASSERT_EQ(cache->device_table.size(), cache->pages.size());
  const auto q_lat = random_floats(size_t(c.n_q * c.n_heads * R), seed + 1, -1.f, 1.f);
  const auto q_rope = random_floats(size_t(c.n_q * c.n_heads * c.rope), seed + 2, -2.f, 2.f);
  std::vector<int32_t> pos(static_cast<size_t>(c.n_q));
  for (int64_t i = 0; i < c.n_q; ++i) pos[size_t(i)] = int32_t(c.prefix + i);
  // DeepSeek's scale: mscale^2 / sqrt(qk_nope + qk_rope) with qk_nope = 128 (V2/V3 shapes).
  const float scale = 1.2f * 1.2f / std::sqrt(float(128 + c.rope));

  auto dql = upload(q_lat), dqr = upload(q_rope), dpos = upload(pos), dtab = upload(cache->device_table);
  ASSERT_TRUE(dql && dqr && dpos && dtab);
  DeviceBuffer dout(size_t(c.n_q * c.n_heads * R) * 4);
  MlaAttentionParams p;
  p.q_lat = dql->get<float>();
  p.q_rope = dqr->get<float>();
  p.n_q = c.n_q;
  p.q_pos = dpos->get<int32_t>();
  p.n_heads = c.n_heads;
  p.kv_lora_rank = c.kv_lora;
  p.rope_dim = c.rope;
  p.latent = {dtab->get<const __half* const>(), c.page_tokens};
  p.max_keys = c.max_keys ? c.max_keys : n_tokens;
  p.scale = scale;
  p.o_lat = dout.get<float>();
  const int splits = c.n_splits ? c.n_splits : attention_decode_splits(p.max_keys, mla_attention_blocks(p), sm_count());
  const size_t ws_bytes = attention_workspace_bytes(p.n_q, p.n_heads, c.kv_lora, splits);
  DeviceBuffer ws(ws_bytes);
  HEXE_GPU_OK(mla_attention(p, splits, ws.get(), ws_bytes, nullptr));
  std::vector<float> got(size_t(c.n_q * c.n_heads * R));
  HEXE_CUDA_OK(dout.download(got.data(), got.size() * 4));

  std::vector<float> qrow(static_cast<size_t>(lat)), ref(static_cast<size_t>(R));
  for (int64_t i = 0; i < c.n_q; ++i)
    for (int h = 0; h < c.n_heads; ++h) {
      const int64_t qh = i * c.n_heads + h;
      std::copy_n(q_lat.data() + qh * R, R, qrow.data());
      std::copy_n(q_rope.data() + qh * c.rope, c.rope, qrow.data() + R);
      const int64_t n_kv = pos[size_t(i)] + 1;
      mla_ref(qrow.data(), *cache, n_kv, lat, R, scale, ref.data());
      std::vector<const float*> rows;
      for (int64_t t = 0; t < n_kv; ++t) rows.push_back(cache->at(t));
      const auto tol = tolerance(qrow.data(), lat, rows, rows, R, scale);
      for (int64_t e = 0; e < R; ++e)
        ASSERT_NEAR(got[size_t(qh * R + e)], ref[size_t(e)], tol[size_t(e)])
            << "query " << i << " (pos " << pos[size_t(i)] << ") head " << h << " element " << e;
    }
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, GpuMlaAttention,
    ::testing::Values(
        // DeepSeek-V2/V3 latent (512 + 64), decode over ragged contexts.
        MlaCase{16, 512, 64, 64, 0, 1, 1}, MlaCase{16, 512, 64, 64, 16, 1, 2}, MlaCase{16, 512, 64, 64, 254, 1, 0},
        MlaCase{16, 512, 64, 64, 999, 1, 0}, MlaCase{128, 512, 64, 64, 999, 1, 5}, MlaCase{16, 512, 64, 16, 999, 1, 1},
        // Prefill chunks through the same kernel.
        MlaCase{16, 512, 64, 64, 100, 9, 1}, MlaCase{4, 512, 64, 64, 983, 17, 3},
        // The small test models' latents (kv_lora 32 + rope 16; kv_lora 24 + rope 8).
        MlaCase{4, 32, 16, 16, 16, 1, 1}, MlaCase{4, 32, 16, 16, 254, 1, 0}, MlaCase{4, 24, 8, 16, 983, 17, 1},
        MlaCase{4, 24, 8, 16, 999, 1, 4},
        // Graph-style: max_keys the cache capacity, most ranges past the keys (range 64 keys).
        MlaCase{16, 512, 64, 64, 63, 1, 64, 4096}, MlaCase{16, 512, 64, 64, 64, 1, 64, 4096},
        MlaCase{16, 512, 64, 64, 549, 1, 0, 4096}, MlaCase{4, 32, 16, 16, 126, 3, 64, 4096}),
    [](const auto& i) {
      const auto& c = i.param;
      return std::string("h") + std::to_string(c.n_heads) + "_lora" + std::to_string(c.kv_lora) + "_rope" + std::to_string(c.rope) +
             "_page" + std::to_string(c.page_tokens) + "_prefix" + std::to_string(c.prefix) + "_q" +
             std::to_string(c.n_q) + "_splits" + std::to_string(c.n_splits) +
             (c.max_keys ? "_maxkeys" + std::to_string(c.max_keys) : "");
    });

// ---------------------------------------------------------------------------------------------
// Argument checks and planning: no device needed (every check runs before any CUDA call).

TEST(GpuAttentionArgs, RejectsBadShapesBeforeTouchingTheDevice) {
  AttentionParams p;
  p.n_q = 1;
  p.n_heads = 8;
  p.n_kv_heads = 3;
  p.head_dim = 64;
  p.k.page_tokens = p.v.page_tokens = 16;
  p.max_keys = 10;
  auto code = [](const Status& s) { return s.code; };
  EXPECT_EQ(code(attention_prefill(p, nullptr)), StatusCode::kInvalidArgument);  // 8 % 3 != 0
  p.n_kv_heads = 2;
  p.head_dim = 300;
  EXPECT_EQ(code(attention_prefill(p, nullptr)), StatusCode::kInvalidArgument);
  p.head_dim = 64;
  EXPECT_EQ(code(attention_prefill(p, nullptr)), StatusCode::kInvalidArgument);  // null pointers
  const Status s = attention_decode(p, 4, nullptr, 0, nullptr);
  EXPECT_EQ(s.code, StatusCode::kInvalidArgument);
  EXPECT_NE(to_string(s).find("attention_decode"), std::string::npos) << to_string(s);
  EXPECT_EQ(code(attention_decode(p, 0, nullptr, 0, nullptr)), StatusCode::kInvalidArgument);
  p.n_q = 0;  // nothing to do is fine without any pointer
  EXPECT_TRUE(attention_prefill(p, nullptr).ok());

  MlaAttentionParams m;
  m.n_q = 1;
  m.n_heads = 16;
  m.kv_lora_rank = 512;
  m.rope_dim = 128;  // 640 > 576
  m.latent.page_tokens = 64;
  m.max_keys = 1;
  const Status ms = mla_attention(m, 1, nullptr, 0, nullptr);
  EXPECT_EQ(ms.code, StatusCode::kInvalidArgument);
  EXPECT_NE(to_string(ms).find("rope_dim"), std::string::npos) << to_string(ms);
}

TEST(GpuAttentionArgs, WorkspaceAndSplitPlanning) {
  EXPECT_EQ(attention_workspace_bytes(3, 8, 128, 1), 0u);
  EXPECT_EQ(attention_workspace_bytes(3, 8, 128, 4), size_t(3 * 8 * 4) * (128 + 2) * 4);
  // 4 blocks on 132 SMs want 66 ranges; 1000 keys allow 15 of >= 64 keys.
  EXPECT_EQ(attention_decode_splits(1000, 4, 132), 15);
  EXPECT_EQ(attention_decode_splits(100000, 4, 132), 66);
  EXPECT_EQ(attention_decode_splits(10, 4, 132), 1);
  EXPECT_EQ(attention_decode_splits(100000, 1000, 132), 1);
  AttentionParams p;
  p.n_q = 3;
  p.n_heads = 32;
  p.n_kv_heads = 4;  // group 8: 3 x 8 rows per kv head fill 2 blocks of 16 rows
  EXPECT_EQ(attention_blocks(p), 2 * 4);
}

}  // namespace
}  // namespace hexe::gpu::test
