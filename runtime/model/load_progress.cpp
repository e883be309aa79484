// Progress bar for opening large models; silent when stderr is not a terminal.
#include "runtime/model/load_progress.h"

#include <unistd.h>

#include <cstdio>

namespace hexe {

std::string format_bytes(uint64_t bytes) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = double(bytes);
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    ++u;
  }
  char buf[32];
  if (u == 0)
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  else
    std::snprintf(buf, sizeof buf, v < 10 ? "%.2f %s" : (v < 100 ? "%.1f %s" : "%.0f %s"), v,
                  kUnits[u]);
  return buf;
}

LoadProgress::LoadProgress(std::string label, uint64_t total_bytes, bool enabled)
    : label_(std::move(label)), total_(total_bytes),
      active_(enabled && total_bytes >= kMinBytes && ::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()) {
  if (active_) draw();
}

LoadProgress::~LoadProgress() {
  if (active_) std::fprintf(stderr, "\r\033[K");
}

void LoadProgress::advance(uint64_t bytes) {
  done_ += bytes;
  if (done_ > total_) done_ = total_;
  if (active_) draw();
}

void LoadProgress::draw() {
  constexpr int kWidth = 30;
  const double frac = total_ == 0 ? 1.0 : double(done_) / double(total_);
  const int filled = int(frac * kWidth);
  std::string bar(size_t(filled), '#');
  bar.resize(kWidth, ' ');
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  std::fprintf(stderr, "\r\033[Kopening %s [%s] %3d%% %s / %s %.1fs", label_.c_str(), bar.c_str(),
               int(frac * 100), format_bytes(done_).c_str(), format_bytes(total_).c_str(), secs);
  std::fflush(stderr);
}

}  // namespace hexe
