// Anonymous memory placed on one NUMA node (libnuma's policy is set before the pages are first
// touched, so placement does not depend on which thread fills it) and optionally backed by
// transparent huge pages (fewer TLB misses when experts stream through the cores). Used to copy
// routed experts next to the threads that compute them.
#pragma once

#include <cstddef>
#include <cstdint>

namespace hexe::mem {

enum class HugePages {
  Off,      // 4 KiB pages
  Madvise,  // MADV_HUGEPAGE: the kernel backs the range with 2 MiB pages when it can
};

class NodeBuffer {
 public:
  NodeBuffer() = default;
  // node < 0 or a machine without NUMA support: the kernel's default placement. Throws
  // hexe::Error (with the size) when the memory cannot be had.
  NodeBuffer(size_t bytes, int node, HugePages huge);
  ~NodeBuffer();
  NodeBuffer(NodeBuffer&& o) noexcept;
  NodeBuffer& operator=(NodeBuffer&& o) noexcept;
  NodeBuffer(const NodeBuffer&) = delete;
  NodeBuffer& operator=(const NodeBuffer&) = delete;

  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  // Whether the node binding was applied (libnuma present and the node exists).
  bool bound() const { return bound_; }
  // Where the first page actually is (-1 when unknown); for tests and `--verbose` output.
  int node_of_first_page() const;

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0, mapped_ = 0;
  bool bound_ = false;
};

}  // namespace hexe::mem
