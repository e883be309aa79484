// Device memory for one CUDA device: cudaMalloc'd blocks kept in size classes and reused, so the
// decode loop never calls cudaMalloc/cudaFree (each of which synchronises the device).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <unordered_map>

namespace hexe {

struct AllocatorStats {
  uint64_t in_use_bytes = 0;       // handed out (size-class bytes, not the requested bytes)
  uint64_t cached_bytes = 0;       // returned, kept for reuse
  uint64_t reserved_bytes = 0;     // in_use + cached: what cudaMalloc holds for this allocator
  uint64_t peak_in_use_bytes = 0;
  uint64_t allocations = 0;        // allocate() calls that returned memory
  uint64_t cache_hits = 0;         // ... served from the cache
  uint64_t cuda_mallocs = 0;
  uint64_t cuda_frees = 0;
};

// Blocks are reused in stream order: a block returned after enqueuing work that reads it may be
// handed out again for later work on the same stream, which runs after. Using a block on another
// stream needs an event between (the caller's job). Thread-safe.
class CudaCachingAllocator {
 public:
  explicit CudaCachingAllocator(int device) : device_(device) {}
  CudaCachingAllocator(const CudaCachingAllocator&) = delete;
  CudaCachingAllocator& operator=(const CudaCachingAllocator&) = delete;
  ~CudaCachingAllocator();  // frees every block, cached or in use

  // Small requests (<= 1 MiB) round up to a power of two (>= 512 B); larger ones to a multiple of
  // 2 MiB. A cached block of the same class is reused; a large request also takes a cached block
  // up to 1/4 larger. On cudaMalloc failure the cache is released and the call retried once; then
  // hexe::Error names the size and the stats. allocate(0) returns nullptr.
  void* allocate(size_t bytes);
  // Returns a block to the cache (nullptr: nothing). Throws hexe::Error for a pointer it did not give.
  void deallocate(void* p);
  // cudaFree of every cached block (blocks in use stay valid).
  void release_cached();
  // cudaFree of every block, in use or cached: outstanding pointers become invalid. For teardown
  // or a model switch, after the device is synchronised.
  void free_all();

  AllocatorStats stats() const;
  static size_t size_class(size_t bytes);

 private:
  void release_cached_locked();

  int device_;
  mutable std::mutex mu_;
  std::unordered_map<void*, size_t> in_use_;  // pointer -> class bytes
  std::multimap<size_t, void*> cached_;       // class bytes -> pointer
  AllocatorStats stats_;
};

}  // namespace hexe
