// Issue 6's validation: on this machine the CPU plan's predicted prefill and decode speeds are
// within 15% of what `hexe bench` measures. Timing-dependent, so labelled `perf` (not in CI):
//   HEXE_VALIDATION_MODELS=a.gguf:b.gguf ctest --test-dir build -L perf --output-on-failure
// It measures this machine's profile first (`hexe profile detect`), in the same run as the
// benchmarks, so the prediction and the measurement see the same machine state.
#include <gtest/gtest.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "../e2e/run_hexe.h"

namespace {

using hexe::testing::run_hexe;

constexpr double kLimit = 0.15;  // |measured / predicted - 1|

std::vector<std::string> models() {
  std::vector<std::string> out;
  const char* env = std::getenv("HEXE_VALIDATION_MODELS");
  if (!env) return out;
  std::stringstream ss(env);
  for (std::string m; std::getline(ss, m, ':');)
    if (!m.empty()) out.push_back(m);
  return out;
}

TEST(PlanValidation, CpuPredictionsWithinFifteenPercentOfHexeBench) {
  const auto files = models();
  if (files.empty()) GTEST_SKIP() << "set HEXE_VALIDATION_MODELS=FILE[:FILE...] (e.g. tools/make_shaped_gguf.py files)";
  const std::string profile = ::testing::TempDir() + "/hexe_validation_profile.json";
  auto detect = run_hexe("profile detect -o " + profile);
  ASSERT_EQ(detect.exit_code, 0) << detect.out;
  std::printf("%s", detect.out.c_str());
  for (const auto& f : files) {
    auto r = run_hexe("bench -m " + f + " --strategy cpu --profile " + profile +
                      " -p 512 -n 32 -r 3 --json --no-progress");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    // stderr (the plan line) comes first; the JSON array is the rest.
    const size_t at = r.out.find("[\n");
    ASSERT_NE(at, std::string::npos) << r.out;
    const auto rows = nlohmann::json::parse(r.out.substr(at));
    for (const auto& row : rows) {
      const double measured = row.at("avg_ts").get<double>(), predicted = row.at("predicted_ts").get<double>();
      const double ratio = measured / predicted;
      std::printf("%-40s %-6s predicted %9.2f t/s measured %9.2f t/s (+- %.2f) measured/predicted %.3f limit %.2f-%.2f\n",
                  f.c_str(), row.at("test").get<std::string>().c_str(), predicted, measured,
                  row.at("stddev_ts").get<double>(), ratio, 1 - kLimit, 1 + kLimit);
      EXPECT_NEAR(ratio, 1.0, kLimit) << f << " " << row.at("test");
    }
  }
}

}  // namespace
