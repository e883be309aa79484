// A file name for a test's scratch file: in the test framework's temporary folder (not the build
// folder, so a copied test program runs anywhere, e.g. on a lent GPU machine) and with the process
// id in it, so two builds' suites running at once never share a file.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

namespace hexe::testing {

inline std::string scratch_path(const std::string& name) {
  return ::testing::TempDir() + "hexe_" + std::to_string(::getpid()) + "_" + name;
}

}  // namespace hexe::testing
