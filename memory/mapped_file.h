// A read-only memory mapping of a whole file: opening costs no reads, pages fault in on use.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace hexe::mem {

// How the kernel should treat a range of a mapping (madvise). Hints only: a refused hint changes
// speed, never results.
enum class Advice {
  Normal,      // MADV_NORMAL: default readahead
  Sequential,  // MADV_SEQUENTIAL: aggressive readahead, pages dropped early (one pass over it)
  Random,      // MADV_RANDOM: no readahead (expert weights picked by the router)
  WillNeed,    // MADV_WILLNEED: start reading the range now, asynchronously
  HugePage,    // MADV_HUGEPAGE: back with transparent huge pages where the kernel can
};
const char* advice_name(Advice a);

// Asks the kernel to take back the whole pages inside [p, p + n) now (MADV_PAGEOUT): clean pages
// of a file mapping are dropped and fault back in from the file when read again, anonymous ones go
// to swap if there is any, so nothing read later changes. For mapped blocks a copy has replaced.
// Returns the bytes of whole pages advised; 0 when none lie inside or the kernel refused.
uint64_t page_out(const void* p, uint64_t n) noexcept;

class MappedFile {
 public:
  MappedFile() = default;
  // Maps `path` read-only and shared. Throws hexe::Error naming the path and the errno text.
  // An empty file maps to data() == nullptr, size() == 0.
  static MappedFile open(const std::string& path);

  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }
  bool is_open() const { return data_ != nullptr || !path_.empty(); }

  // Applies `a` to bytes [offset, offset + length) (clamped to the file; the start is rounded down
  // to a page). Returns false when the kernel refused the hint (e.g. no THP for file pages).
  bool advise(Advice a, uint64_t offset = 0, uint64_t length = UINT64_MAX) const noexcept;
  bool advise_sequential() const noexcept { return advise(Advice::Sequential); }
  bool advise_random() const noexcept { return advise(Advice::Random); }
  bool advise_willneed(uint64_t offset = 0, uint64_t length = UINT64_MAX) const noexcept {
    return advise(Advice::WillNeed, offset, length);
  }
  bool advise_hugepage() const noexcept { return advise(Advice::HugePage); }

 private:
  void release() noexcept;

  std::string path_;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
};

}  // namespace hexe::mem
