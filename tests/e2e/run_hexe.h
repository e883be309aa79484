// Runs the `hexe` executable from the repository root, as a user would, capturing its output.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

namespace hexe::testing {

struct CliResult {
  int exit_code = -1;
  std::string out;  // stdout and stderr together
};

// `args` go to the shell after the executable; stdin_text (if any) is fed on standard input.
inline CliResult run_hexe(const std::string& args, const std::string& stdin_text = "") {
  std::string input = "/dev/null";
  if (!stdin_text.empty()) {
    input = ::testing::TempDir() + "/hexe_stdin.txt";
    std::ofstream(input) << stdin_text;
  }
  const std::string cmd = "cd " + std::string(HEXE_SOURCE_DIR) + " && " + std::string(HEXE_EXE) + " " + args +
                          " 2>&1 < " + input;
  CliResult r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace hexe::testing
