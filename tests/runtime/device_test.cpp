// CPU device: ops run in order on the stream, events complete after earlier ops, errors surface.
#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <vector>

#include "runtime/engine/device.h"

namespace hexe {

TEST(CpuDevice, RunsOpsInOrderAndEventsWaitForThem) {
  CpuDevice dev("cpu-test", 1);
  std::vector<int> seen;
  for (int i = 0; i < 100; ++i) dev.enqueue([&seen, i] { seen.push_back(i); });
  Event e = dev.record();
  e.wait();
  ASSERT_EQ(seen.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(seen[i], i);
  EXPECT_TRUE(e.ready());
}

TEST(CpuDevice, OpsUseTheDevicePool) {
  CpuDevice dev("cpu-test", 2);
  std::atomic<int> ran{0};
  dev.enqueue([&] { dev.cpu_pool()->run([&](int, int) { ran++; }); });
  dev.synchronize();
  EXPECT_EQ(ran.load(), 2);
}

TEST(CpuDevice, AnOpThatThrowsIsReportedAtSynchronize) {
  CpuDevice dev("cpu-test", 1);
  dev.enqueue([] { throw std::runtime_error("boom"); });
  EXPECT_THROW(dev.synchronize(), std::runtime_error);
  dev.synchronize();  // reported once
}

}  // namespace hexe
