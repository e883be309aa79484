// The one exception type hexe throws at load/plan/API boundaries; messages are actionable.
#pragma once

#include <stdexcept>
#include <string>

namespace hexe {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace hexe
