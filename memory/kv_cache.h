// Paged KV cache: fixed-size pages of tokens allocated lazily as sequences grow, freed to a pool.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace hexe::mem {

struct KvCacheConfig {
  int n_layers = 0;
  int64_t k_row_floats = 0;      // floats of K per token per layer (n_kv_heads x head_dim)
  int64_t v_row_floats = 0;      // floats of V per token per layer (0: none, as MLA reads V from K)
  int page_tokens = 64;          // tokens per page
  int64_t max_tokens = 1 << 20;  // upper bound on tokens held over all sequences (pages beyond: error)
};

// Each page holds page_tokens tokens for every layer, K then V. A sequence is a list of pages; its
// per-layer page tables are what the attention kernels walk (cpu::KvPageView).
class KvCache {
 public:
  explicit KvCache(const KvCacheConfig& cfg);
  ~KvCache();
  KvCache(const KvCache&) = delete;
  KvCache& operator=(const KvCache&) = delete;

  const KvCacheConfig& config() const { return cfg_; }
  int create_sequence();
  void free_sequence(int seq);
  // Ensures pages exist for positions [0, n_tokens); throws hexe::Error when the cache is full.
  void reserve(int seq, int64_t n_tokens);
  // Forgets positions >= n_tokens (pages past the end go back to the pool).
  void truncate(int seq, int64_t n_tokens);
  int64_t capacity(int seq) const;  // tokens the sequence's pages can hold now

  float* k_row(int seq, int layer, int64_t pos);
  float* v_row(int seq, int layer, int64_t pos);
  // Page tables for one layer of one sequence: pointer i is page i's first row.
  float* const* k_pages(int seq, int layer) const;
  float* const* v_pages(int seq, int layer) const;

  uint64_t bytes_allocated() const;   // pages ever allocated (live + pooled)
  int64_t pages_in_use() const;

 private:
  struct Sequence;
  struct Page;
  Sequence& seq_ref(int seq) const;
  Page* take_page();

  KvCacheConfig cfg_;
  int64_t page_floats_ = 0;
  std::vector<std::unique_ptr<Page>> pages_;   // every page ever allocated
  std::vector<Page*> free_pages_;
  std::vector<std::unique_ptr<Sequence>> seqs_;  // null when freed
};

}  // namespace hexe::mem
