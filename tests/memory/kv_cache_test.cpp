// KV cache: lazy page allocation, per-layer page tables, truncation and reuse, capacity errors.
#include <gtest/gtest.h>

#include "memory/error.h"
#include "memory/kv_cache.h"

namespace hexe::mem {

TEST(KvCache, PagesAreAllocatedLazilyAndRowsDoNotOverlap) {
  KvCache kv({.n_layers = 3, .k_row_floats = 8, .v_row_floats = 4, .page_tokens = 4, .max_tokens = 64});
  const int s = kv.create_sequence();
  EXPECT_EQ(kv.capacity(s), 0);
  EXPECT_EQ(kv.bytes_allocated(), 0u);
  kv.reserve(s, 10);
  EXPECT_EQ(kv.capacity(s), 12);
  EXPECT_EQ(kv.pages_in_use(), 3);
  // Write a distinct value into every row of every layer, then read all back.
  for (int l = 0; l < 3; ++l)
    for (int64_t t = 0; t < 10; ++t) {
      for (int i = 0; i < 8; ++i) kv.k_row(s, l, t)[i] = float(l * 1000 + t * 10 + i);
      for (int i = 0; i < 4; ++i) kv.v_row(s, l, t)[i] = -float(l * 1000 + t * 10 + i);
    }
  for (int l = 0; l < 3; ++l)
    for (int64_t t = 0; t < 10; ++t) {
      const float* k = kv.k_pages(s, l)[t / 4] + (t % 4) * 8;
      const float* v = kv.v_pages(s, l)[t / 4] + (t % 4) * 4;
      for (int i = 0; i < 8; ++i) ASSERT_EQ(k[i], float(l * 1000 + t * 10 + i));
      for (int i = 0; i < 4; ++i) ASSERT_EQ(v[i], -float(l * 1000 + t * 10 + i));
    }
}

TEST(KvCache, TruncateAndFreeReturnPagesForReuse) {
  KvCache kv({.n_layers = 1, .k_row_floats = 2, .v_row_floats = 2, .page_tokens = 4, .max_tokens = 16});
  const int a = kv.create_sequence();
  kv.reserve(a, 16);
  EXPECT_THROW(kv.reserve(kv.create_sequence(), 1), Error);  // full
  kv.truncate(a, 5);
  EXPECT_EQ(kv.capacity(a), 8);
  const int b = kv.create_sequence();
  kv.reserve(b, 8);  // reuses the two freed pages, no new allocation
  EXPECT_EQ(kv.bytes_allocated(), 4u * 4 * 4 * sizeof(float));
  kv.free_sequence(a);
  EXPECT_THROW(kv.k_row(a, 0, 0), Error);
  const int c = kv.create_sequence();
  EXPECT_EQ(c, a);  // ids are reused
  kv.reserve(c, 8);
  EXPECT_EQ(kv.pages_in_use(), 4);
}

TEST(KvCache, RejectsEmptyShapes) {
  EXPECT_THROW(KvCache({.n_layers = 0, .k_row_floats = 1, .v_row_floats = 1}), Error);
}

}  // namespace hexe::mem
