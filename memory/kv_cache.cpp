// Paged KV cache implementation.
#include "memory/kv_cache.h"

#include <cstdlib>
#include <cstring>
#include <string>

#include "memory/error.h"

namespace hexe::mem {

struct KvCache::Page {
  float* data = nullptr;  // [layer][K page_tokens x k_row | V page_tokens x v_row]
  ~Page() { std::free(data); }
};

struct KvCache::Sequence {
  std::vector<Page*> pages;
  std::vector<std::vector<float*>> k_tables, v_tables;  // [layer][page]
};

KvCache::KvCache(const KvCacheConfig& cfg) : cfg_(cfg) {
  if (cfg.n_layers <= 0 || cfg.k_row_floats <= 0 || cfg.v_row_floats < 0 || cfg.page_tokens <= 0)
    throw Error("KV cache: layers, K row size and page size must be positive (V rows may be 0: MLA keeps V in K)");
  page_floats_ = int64_t(cfg.n_layers) * cfg.page_tokens * (cfg.k_row_floats + cfg.v_row_floats);
}

KvCache::~KvCache() = default;

int KvCache::create_sequence() {
  auto s = std::make_unique<Sequence>();
  s->k_tables.resize(cfg_.n_layers);
  s->v_tables.resize(cfg_.n_layers);
  for (size_t i = 0; i < seqs_.size(); ++i) {
    if (!seqs_[i]) {
      seqs_[i] = std::move(s);
      return int(i);
    }
  }
  seqs_.push_back(std::move(s));
  return int(seqs_.size() - 1);
}

KvCache::Sequence& KvCache::seq_ref(int seq) const {
  if (seq < 0 || size_t(seq) >= seqs_.size() || !seqs_[seq])
    throw Error("KV cache: no sequence " + std::to_string(seq));
  return *seqs_[seq];
}

void KvCache::free_sequence(int seq) {
  truncate(seq, 0);
  seqs_[seq].reset();
}

KvCache::Page* KvCache::take_page() {
  if (!free_pages_.empty()) {
    Page* p = free_pages_.back();
    free_pages_.pop_back();
    return p;
  }
  if (int64_t(pages_.size() + 1) * cfg_.page_tokens > cfg_.max_tokens)
    throw Error("KV cache is full: " + std::to_string(cfg_.max_tokens) +
                " tokens in all; raise the context size (-c) or free sequences");
  auto p = std::make_unique<Page>();
  p->data = static_cast<float*>(std::aligned_alloc(64, ((page_floats_ * sizeof(float) + 63) / 64) * 64));
  if (!p->data) throw Error("KV cache: out of memory allocating a page");
  std::memset(p->data, 0, page_floats_ * sizeof(float));
  pages_.push_back(std::move(p));
  return pages_.back().get();
}

void KvCache::reserve(int seq, int64_t n_tokens) {
  Sequence& s = seq_ref(seq);
  const int64_t layer_floats = int64_t(cfg_.page_tokens) * (cfg_.k_row_floats + cfg_.v_row_floats);
  while (int64_t(s.pages.size()) * cfg_.page_tokens < n_tokens) {
    Page* p = take_page();
    s.pages.push_back(p);
    for (int l = 0; l < cfg_.n_layers; ++l) {
      float* base = p->data + l * layer_floats;
      s.k_tables[l].push_back(base);
      s.v_tables[l].push_back(base + int64_t(cfg_.page_tokens) * cfg_.k_row_floats);
    }
  }
}

void KvCache::truncate(int seq, int64_t n_tokens) {
  Sequence& s = seq_ref(seq);
  const size_t keep = size_t((n_tokens + cfg_.page_tokens - 1) / cfg_.page_tokens);
  while (s.pages.size() > keep) {
    free_pages_.push_back(s.pages.back());
    s.pages.pop_back();
    for (int l = 0; l < cfg_.n_layers; ++l) {
      s.k_tables[l].pop_back();
      s.v_tables[l].pop_back();
    }
  }
}

int64_t KvCache::capacity(int seq) const { return int64_t(seq_ref(seq).pages.size()) * cfg_.page_tokens; }

float* KvCache::k_row(int seq, int layer, int64_t pos) {
  return seq_ref(seq).k_tables[layer][pos / cfg_.page_tokens] + (pos % cfg_.page_tokens) * cfg_.k_row_floats;
}
float* KvCache::v_row(int seq, int layer, int64_t pos) {
  return seq_ref(seq).v_tables[layer][pos / cfg_.page_tokens] + (pos % cfg_.page_tokens) * cfg_.v_row_floats;
}
float* const* KvCache::k_pages(int seq, int layer) const { return seq_ref(seq).k_tables[layer].data(); }
float* const* KvCache::v_pages(int seq, int layer) const { return seq_ref(seq).v_tables[layer].data(); }

uint64_t KvCache::bytes_allocated() const { return pages_.size() * uint64_t(page_floats_) * sizeof(float); }
int64_t KvCache::pages_in_use() const { return int64_t(pages_.size() - free_pages_.size()); }

}  // namespace hexe::mem
