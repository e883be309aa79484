// NodeBuffer: mmap + numa_tonode_memory + madvise, before the first touch.
#include "memory/node_buffer.h"

#include <numa.h>
#include <numaif.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "memory/error.h"

namespace hexe::mem {

namespace {
constexpr size_t kHugePage = size_t(2) << 20;
}

NodeBuffer::NodeBuffer(size_t bytes, int node, HugePages huge) : size_(bytes) {
  if (bytes == 0) return;
  // Whole 2 MiB pages, so a huge-page range is not split at the end.
  mapped_ = (bytes + kHugePage - 1) / kHugePage * kHugePage;
  void* p = ::mmap(nullptr, mapped_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED)
    throw Error("cannot allocate " + std::to_string(bytes) + " bytes for node-local experts: " + std::strerror(errno));
  data_ = static_cast<uint8_t*>(p);
  if (huge == HugePages::Madvise) ::madvise(p, mapped_, MADV_HUGEPAGE);  // advisory: no THP is not an error
  if (node >= 0 && numa_available() >= 0 && node <= numa_max_node()) {
    numa_tonode_memory(p, mapped_, node);
    bound_ = true;
  }
}

NodeBuffer::~NodeBuffer() {
  if (data_) ::munmap(data_, mapped_);
}

NodeBuffer::NodeBuffer(NodeBuffer&& o) noexcept { *this = std::move(o); }

NodeBuffer& NodeBuffer::operator=(NodeBuffer&& o) noexcept {
  if (this != &o) {
    if (data_) ::munmap(data_, mapped_);
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
    mapped_ = std::exchange(o.mapped_, 0);
    bound_ = std::exchange(o.bound_, false);
  }
  return *this;
}

int NodeBuffer::node_of_first_page() const {
  if (!data_ || numa_available() < 0) return -1;
  void* page = data_;
  int status = -1;
  if (move_pages(0, 1, &page, nullptr, &status, 0) != 0 || status < 0) return -1;
  return status;
}

}  // namespace hexe::mem
