// The `hexe` executable as a user runs it: run, chat, inspect, perplexity, and bad input.
#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "run_hexe.h"

namespace {

using Result = hexe::testing::CliResult;
using hexe::testing::run_hexe;

const std::string kModels = std::string(HEXE_SOURCE_DIR) + "/tests/reference/fixtures/models";
const std::string kQwen = kModels + "/qwen3moe-a/qwen3moe-a-q8_0.gguf";
const std::string kMixtral = kModels + "/mixtral-a/mixtral-a-f16.gguf";

TEST(Cli, HelpListsTheCommands) {
  Result r = run_hexe("--help");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  for (const char* c : {"run", "chat", "inspect", "perplexity", "profile", "plan"})
    EXPECT_NE(r.out.find(c), std::string::npos) << c;
}

TEST(Cli, RunGeneratesAndReportsSpeed) {
  Result r = run_hexe("run -m " + kQwen + " -p 'Once upon a time' -n 12 --seed 7");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_EQ(r.out.rfind("Once upon a time", 0), 0u) << r.out;
  EXPECT_NE(r.out.find("generation: 12 tokens"), std::string::npos) << r.out;
  // The same seed gives the same text.
  Result again = run_hexe("run -m " + kQwen + " -p 'Once upon a time' -n 12 --seed 7");
  EXPECT_EQ(r.out.substr(0, r.out.find("prompt:")), again.out.substr(0, again.out.find("prompt:")));
}

TEST(Cli, RunGreedyOnMixtralFromTheHfDirectory) {
  Result gguf = run_hexe("run -m " + kModels + "/mixtral-a/mixtral-a-f32.gguf -p 'The runtime' -n 8 --temp 0");
  Result hf = run_hexe("run -m " + kModels + "/mixtral-a/hf -p 'The runtime' -n 8 --temp 0");
  ASSERT_EQ(gguf.exit_code, 0) << gguf.out;
  ASSERT_EQ(hf.exit_code, 0) << hf.out;
  EXPECT_EQ(gguf.out.substr(0, gguf.out.find("prompt:")), hf.out.substr(0, hf.out.find("prompt:")));
}

TEST(Cli, ChatAnswersEachLineOfInput) {
  Result r = run_hexe("chat -m " + kQwen + " -n 6 --seed 1", "Hello\nAnd again\n");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("template qwen3"), std::string::npos) << r.out;
  size_t turns = 0;
  for (size_t at = 0; (at = r.out.find("generated", at)) != std::string::npos; ++at) ++turns;
  EXPECT_EQ(turns, 2u) << r.out;
}

TEST(Cli, RunAndBenchFollowACpuPlan) {
  const std::string plan = ::testing::TempDir() + "/hexe_cpu_plan.json";
  Result made = run_hexe("plan -m " + kQwen + " --profile ryzen-7950x-rtx4080 --strategy cpu -c 1024 -o " + plan);
  ASSERT_EQ(made.exit_code, 0) << made.out;
  Result r = run_hexe("run -m " + kQwen + " --plan " + plan + " -p 'Once upon a time' -n 4 --seed 7");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("plan 'cpu'"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("16 CPU threads, context 1024"), std::string::npos) << r.out;  // the 7950X's cores
  Result b = run_hexe("bench -m " + kQwen + " --strategy cpu --profile ryzen-7950x-rtx4080 -t 2 -p 16 -n 4 -r 1");
  ASSERT_EQ(b.exit_code, 0) << b.out;
  EXPECT_NE(b.out.find("pp16 predicted"), std::string::npos) << b.out;
  EXPECT_NE(b.out.find("measured/predicted"), std::string::npos) << b.out;
}

TEST(Cli, PlansTheCpuCannotRunAreRefusedWithTheReason) {
  Result gpu = run_hexe("run -m " + kQwen + " --strategy experts-cpu --profile ryzen-7950x-rtx4080 -n 2");
  EXPECT_NE(gpu.exit_code, 0);
  EXPECT_NE(gpu.out.find("places work on the GPU"), std::string::npos) << gpu.out;
  // A plan made for another model.
  const std::string plan = ::testing::TempDir() + "/hexe_mixtral_plan.json";
  ASSERT_EQ(run_hexe("plan -m " + kMixtral + " --profile ryzen-7950x-rtx4080 --strategy cpu -o " + plan).exit_code, 0);
  Result other = run_hexe("run -m " + kQwen + " --plan " + plan + " -n 2");
  EXPECT_NE(other.exit_code, 0);
  EXPECT_NE(other.out.find("the plan was made for"), std::string::npos) << other.out;
  Result bad = run_hexe("run -m " + kQwen + " --strategy fastest -n 2");
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.out.find("'fastest' is not one of"), std::string::npos) << bad.out;
}

TEST(Cli, InspectDescribesTheModel) {
  Result r = run_hexe("inspect " + kQwen);
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("qwen3moe"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("top-2"), std::string::npos) << r.out;
}

TEST(Cli, PerplexityPrintsTheFinalEstimateLikeLlamaCpp) {
  Result r = run_hexe("perplexity -m " + kModels + "/mixtral-a/mixtral-a-f32.gguf -f " + kModels +
                      "/mixtral-a/perplexity.txt -c 64");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("Final estimate: PPL = 26320.4"), std::string::npos) << r.out;
}

TEST(Cli, BadInputFailsWithAMessageNamingTheFile) {
  const std::string bad = ::testing::TempDir() + "/not_a_model.gguf";
  std::ofstream(bad) << "GGUF this is not a model";
  Result r = run_hexe("run -m " + bad + " -p hi -n 1");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.out.find("not_a_model.gguf"), std::string::npos) << r.out;
  Result missing = run_hexe("inspect /nonexistent/model.gguf");
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_NE(missing.out.find("/nonexistent/model.gguf"), std::string::npos) << missing.out;
}

}  // namespace
