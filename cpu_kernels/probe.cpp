// Dispatch of the probe micro-kernels to the ISA files (the ISA-specific loops live in
// x86/avx2/probe_avx2.cpp and x86/avx512/probe_avx512.cpp).
#include "cpu_kernels/probe.h"

#include "cpu_kernels/isa.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <string>

namespace hexe::cpu {

namespace detail {
uint64_t stream_read_avx2(const void* p, size_t bytes, bool quads);
uint64_t stream_read_avx512(const void* p, size_t bytes);
double int8_dot_ops_avx2(int64_t iters);
double int8_dot_ops_vnni512(int64_t iters);
double fma_flops_avx2(int64_t iters);
double bf16_dot_flops_avx512(int64_t iters);
double fma_flops_avx512(int64_t iters);
double int8_dot_ops_amx(int64_t iters);
double bf16_dot_flops_amx(int64_t iters);
}  // namespace detail

namespace {
bool has512() { return int(hardware_isa()) >= int(Isa::Avx512); }

uint64_t stream_read_scalar(const void* p, size_t bytes) {
  const auto* q = static_cast<const uint64_t*>(p);
  uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  size_t i = 0;
  for (; i + 4 <= bytes / 8; i += 4) {
    s0 ^= q[i]; s1 ^= q[i + 1]; s2 ^= q[i + 2]; s3 ^= q[i + 3];
  }
  for (; i < bytes / 8; ++i) s0 ^= q[i];
  return s0 ^ s1 ^ s2 ^ s3;
}
}  // namespace

size_t llc_bytes() {
  size_t best = 0;
  int best_level = 0;
  for (int i = 0; i < 8; ++i) {
    const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i) + "/";
    std::ifstream lv(dir + "level"), ty(dir + "type"), sz(dir + "size");
    int level = 0;
    std::string type, size;
    if (!(lv >> level) || !(ty >> type) || !(sz >> size)) continue;
    if (type == "Instruction") continue;
    size_t bytes = std::strtoull(size.c_str(), nullptr, 10);
    if (size.back() == 'K') bytes <<= 10;
    else if (size.back() == 'M') bytes <<= 20;
    if (level > best_level || (level == best_level && bytes > best)) best = bytes, best_level = level;
  }
  return best ? best : size_t(32) << 20;
}

size_t dram_span_bytes() { return std::max(16 * llc_bytes(), size_t(512) << 20); }

int stream_read_patterns() {
  if (has512()) return 3;
  return cpu_features().avx2 ? 2 : 1;
}

uint64_t stream_read(const void* p, size_t bytes, int pattern) {
  // The vector loops take whole 256-byte steps; the rest goes through the scalar loop.
  const size_t body = bytes / 256 * 256;
  const auto* b = static_cast<const uint8_t*>(p);
  uint64_t sum = 0;
  pattern %= stream_read_patterns();
  if (body && pattern < 2 && cpu_features().avx2) sum = detail::stream_read_avx2(p, body, pattern == 1);
  else if (body && pattern == 2) sum = detail::stream_read_avx512(p, body);
  else return stream_read_scalar(p, bytes);
  return sum ^ stream_read_scalar(b + body, bytes - body);
}

double read_pass_gbs(const uint8_t* buf, size_t bytes, ThreadPool& pool, int pattern) {
  const int nth = pool.size();
  const size_t per = bytes / size_t(nth) / 64 * 64;
  std::atomic<uint64_t> sink{0};
  const auto t0 = std::chrono::steady_clock::now();
  pool.run([&](int ith, int) { sink ^= stream_read(buf + size_t(ith) * per, per, pattern); });
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return double(per) * nth / s / 1e9;
}

int fastest_pattern(const std::vector<double>& by_pattern) {
  return by_pattern.empty() ? 0 : int(std::max_element(by_pattern.begin(), by_pattern.end()) - by_pattern.begin());
}

double read_bandwidth_gbs(const uint8_t* buf, size_t bytes, ThreadPool& pool, int reps,
                          std::vector<double>* by_pattern) {
  std::vector<double> best(size_t(stream_read_patterns()), 0.0);
  for (int rep = 0; rep < reps; ++rep)
    for (int pat = 0; pat < stream_read_patterns(); ++pat)
      best[size_t(pat)] = std::max(best[size_t(pat)], read_pass_gbs(buf, bytes, pool, pat));
  if (by_pattern) *by_pattern = best;
  return *std::max_element(best.begin(), best.end());
}

double int8_dot_ops(int64_t iters) {
  if (has512() && cpu_features().avx512_vnni) return detail::int8_dot_ops_vnni512(iters);
  if (cpu_features().avx2) return detail::int8_dot_ops_avx2(iters);
  return 0.0;
}

double bf16_dot_flops(int64_t iters) {
  if (has512() && cpu_features().avx512_bf16) return detail::bf16_dot_flops_avx512(iters);
  if (cpu_features().avx2 && cpu_features().fma) return detail::fma_flops_avx2(iters);
  return 0.0;
}

double f32_fma_flops(int64_t iters) {
  if (has512()) return detail::fma_flops_avx512(iters);
  if (cpu_features().avx2 && cpu_features().fma) return detail::fma_flops_avx2(iters);
  return 0.0;
}

double amx_int8_dot_ops(int64_t iters) { return amx_usable() ? detail::int8_dot_ops_amx(iters) : 0.0; }

double amx_bf16_dot_flops(int64_t iters) {
  return amx_usable() && cpu_features().amx_bf16 ? detail::bf16_dot_flops_amx(iters) : 0.0;
}

const char* int8_dot_name() {
  if (has512() && cpu_features().avx512_vnni) return "avx512_vnni vpdpbusd zmm";
  if (cpu_features().avx2) return "avx2 vpmaddubsw+vpmaddwd ymm";
  return "none";
}

const char* bf16_dot_name() {
  if (has512() && cpu_features().avx512_bf16) return "avx512_bf16 vdpbf16ps zmm";
  if (cpu_features().avx2 && cpu_features().fma) return "avx2 vfmadd ymm (f32)";
  return "none";
}

const char* f32_fma_name() {
  if (has512()) return "avx512 vfmadd231ps zmm";
  if (cpu_features().avx2 && cpu_features().fma) return "avx2 vfmadd231ps ymm";
  return "none";
}

}  // namespace hexe::cpu
