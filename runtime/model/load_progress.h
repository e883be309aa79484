// A one-line progress bar on stderr for opening large models (drawn only on a terminal).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace hexe {

class LoadProgress {
 public:
  // Draws when `enabled`, stderr is a terminal and `total_bytes` >= kMinBytes.
  static constexpr uint64_t kMinBytes = uint64_t(1) << 30;
  LoadProgress(std::string label, uint64_t total_bytes, bool enabled);
  ~LoadProgress();  // clears the line
  void advance(uint64_t bytes);

 private:
  void draw();

  std::string label_;
  uint64_t total_ = 0;
  uint64_t done_ = 0;
  bool active_ = false;
  std::chrono::steady_clock::time_point start_;
};

// "1.50 GiB", "512.0 MiB", "17 B".
std::string format_bytes(uint64_t bytes);

}  // namespace hexe
