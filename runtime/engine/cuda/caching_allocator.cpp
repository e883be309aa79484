// CudaCachingAllocator: size classes over cudaMalloc, a free list per class, stats.
#include "runtime/engine/cuda/caching_allocator.h"

#include <algorithm>
#include <bit>
#include <string>

#include "runtime/engine/cuda/cuda_check.h"

namespace hexe {

namespace {
constexpr size_t kSmallLimit = size_t(1) << 20;  // 1 MiB
constexpr size_t kMinBlock = 512;
constexpr size_t kLargeGranule = size_t(2) << 20;  // 2 MiB
}  // namespace

size_t CudaCachingAllocator::size_class(size_t bytes) {
  if (bytes <= kSmallLimit) return std::bit_ceil(std::max(bytes, kMinBlock));
  return (bytes + kLargeGranule - 1) / kLargeGranule * kLargeGranule;
}

CudaCachingAllocator::~CudaCachingAllocator() {
  try {
    free_all();
  } catch (...) {  // a destructor must not throw; the driver reclaims the memory at exit anyway
  }
}

void* CudaCachingAllocator::allocate(size_t bytes) {
  if (bytes == 0) return nullptr;
  const size_t cls = size_class(bytes);
  std::lock_guard<std::mutex> lock(mu_);
  void* p = nullptr;
  size_t got = cls;
  auto it = cached_.lower_bound(cls);
  const size_t limit = cls <= kSmallLimit ? cls : cls + cls / 4;
  if (it != cached_.end() && it->first <= limit) {
    got = it->first;
    p = it->second;
    cached_.erase(it);
    stats_.cached_bytes -= got;
    ++stats_.cache_hits;
  } else {
    cuda_check(cudaSetDevice(device_), "CudaCachingAllocator: cudaSetDevice");
    cudaError_t e = cudaMalloc(&p, cls);
    if (e == cudaErrorMemoryAllocation && !cached_.empty()) {
      cudaGetLastError();
      release_cached_locked();
      e = cudaMalloc(&p, cls);
    }
    if (e != cudaSuccess) {
      cudaGetLastError();
      throw Error(gpu::cuda_error_message(e, "cudaMalloc") + ": cannot allocate " + std::to_string(cls) +
                  " bytes on CUDA device " + std::to_string(device_) + " (" + std::to_string(stats_.in_use_bytes) +
                  " bytes in use by this allocator, " + std::to_string(stats_.cached_bytes) + " cached)");
    }
    ++stats_.cuda_mallocs;
    stats_.reserved_bytes += cls;
  }
  in_use_.emplace(p, got);
  stats_.in_use_bytes += got;
  stats_.peak_in_use_bytes = std::max(stats_.peak_in_use_bytes, stats_.in_use_bytes);
  ++stats_.allocations;
  return p;
}

void CudaCachingAllocator::deallocate(void* p) {
  if (p == nullptr) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = in_use_.find(p);
  if (it == in_use_.end()) throw Error("CudaCachingAllocator::deallocate: pointer was not allocated here (or freed twice)");
  cached_.emplace(it->second, p);
  stats_.in_use_bytes -= it->second;
  stats_.cached_bytes += it->second;
  in_use_.erase(it);
}

void CudaCachingAllocator::release_cached_locked() {
  for (auto& [bytes, p] : cached_) {
    cudaFree(p);  // an error here (context gone at exit) leaves nothing to recover
    stats_.reserved_bytes -= bytes;
    ++stats_.cuda_frees;
  }
  cached_.clear();
  stats_.cached_bytes = 0;
}

void CudaCachingAllocator::release_cached() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!cached_.empty()) cuda_check(cudaSetDevice(device_), "CudaCachingAllocator: cudaSetDevice");
  release_cached_locked();
}

void CudaCachingAllocator::free_all() {
  std::lock_guard<std::mutex> lock(mu_);
  if (cached_.empty() && in_use_.empty()) return;
  cuda_check(cudaSetDevice(device_), "CudaCachingAllocator: cudaSetDevice");
  release_cached_locked();
  for (auto& [p, bytes] : in_use_) {
    cudaFree(p);
    stats_.reserved_bytes -= bytes;
    ++stats_.cuda_frees;
  }
  in_use_.clear();
  stats_.in_use_bytes = 0;
}

AllocatorStats CudaCachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace hexe
