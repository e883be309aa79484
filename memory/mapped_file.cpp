// Read-only mmap of a file, with madvise hints.
#include "memory/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "memory/error.h"

namespace hexe::mem {

const char* advice_name(Advice a) {
  switch (a) {
    case Advice::Normal: return "normal";
    case Advice::Sequential: return "sequential";
    case Advice::Random: return "random";
    case Advice::WillNeed: return "willneed";
    case Advice::HugePage: return "hugepage";
  }
  return "?";
}

uint64_t page_out(const void* p, uint64_t n) noexcept {
#ifdef MADV_PAGEOUT
  const uint64_t page = uint64_t(::sysconf(_SC_PAGESIZE));
  const uint64_t a = reinterpret_cast<uintptr_t>(p);
  const uint64_t start = (a + page - 1) / page * page, end = (a + n) / page * page;  // whole pages only
  if (n == 0 || end <= start) return 0;
  return ::madvise(reinterpret_cast<void*>(start), end - start, MADV_PAGEOUT) == 0 ? end - start : 0;
#else
  (void)p, (void)n;
  return 0;
#endif
}

MappedFile MappedFile::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    throw Error(path + ": cannot open: " + std::strerror(e));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    throw Error(path + ": cannot stat: " + std::strerror(e));
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    throw Error(path + ": is a directory, expected a file");
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(path + ": not a regular file");
  }
  MappedFile m;
  m.path_ = path;
  m.size_ = uint64_t(st.st_size);
  if (m.size_ > 0) {
    void* p = ::mmap(nullptr, m.size_, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
      int e = errno;
      ::close(fd);
      throw Error(path + ": cannot map " + std::to_string(m.size_) + " bytes: " + std::strerror(e));
    }
    m.data_ = static_cast<const uint8_t*>(p);
  }
  ::close(fd);  // the mapping keeps the file alive
  return m;
}

MappedFile::MappedFile(MappedFile&& other) noexcept
    : path_(std::move(other.path_)), data_(other.data_), size_(other.size_) {
  other.data_ = nullptr;
  other.size_ = 0;
  other.path_.clear();
}

MappedFile& MappedFile::operator=(MappedFile&& other) noexcept {
  if (this != &other) {
    release();
    path_ = std::move(other.path_);
    data_ = other.data_;
    size_ = other.size_;
    other.data_ = nullptr;
    other.size_ = 0;
    other.path_.clear();
  }
  return *this;
}

MappedFile::~MappedFile() { release(); }

void MappedFile::release() noexcept {
  if (data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_);
  data_ = nullptr;
  size_ = 0;
}

bool MappedFile::advise(Advice a, uint64_t offset, uint64_t length) const noexcept {
  if (data_ == nullptr || offset >= size_) return false;
  if (length > size_ - offset) length = size_ - offset;
  if (length == 0) return false;
  const uint64_t page = uint64_t(::sysconf(_SC_PAGESIZE));
  const uint64_t start = offset / page * page;  // madvise wants a page-aligned start
  int flag = MADV_NORMAL;
  switch (a) {
    case Advice::Normal: flag = MADV_NORMAL; break;
    case Advice::Sequential: flag = MADV_SEQUENTIAL; break;
    case Advice::Random: flag = MADV_RANDOM; break;
    case Advice::WillNeed: flag = MADV_WILLNEED; break;
    case Advice::HugePage:
#ifdef MADV_HUGEPAGE
      flag = MADV_HUGEPAGE;
      break;
#else
      return false;
#endif
  }
  return ::madvise(const_cast<uint8_t*>(data_) + start, offset + length - start, flag) == 0;
}

}  // namespace hexe::mem
