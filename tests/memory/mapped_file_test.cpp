// MappedFile: maps files read-only, names the path and errno text on failure, accepts hints.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "memory/error.h"
#include "memory/mapped_file.h"

namespace hexe::mem {
namespace {

class MappedFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("hexe_mapped_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string write(const std::string& name, const std::string& content) {
    std::string p = (dir_ / name).string();
    std::ofstream(p, std::ios::binary) << content;
    return p;
  }
  std::filesystem::path dir_;
};

TEST_F(MappedFileTest, MapsTheBytes) {
  const std::string content = "hello mapped world\n";
  const std::string p = write("a.bin", content);
  MappedFile m = MappedFile::open(p);
  ASSERT_EQ(m.size(), content.size());
  EXPECT_EQ(std::memcmp(m.data(), content.data(), content.size()), 0);
  EXPECT_EQ(m.path(), p);
  EXPECT_TRUE(m.is_open());
}

TEST_F(MappedFileTest, OpenErrorsNameThePathAndReason) {
  const std::string missing = (dir_ / "missing.gguf").string();
  try {
    MappedFile::open(missing);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), missing + ": cannot open: " + std::strerror(ENOENT));
  }
  try {
    MappedFile::open(dir_.string());
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("is a directory"), std::string::npos) << e.what();
  }
}

TEST_F(MappedFileTest, EmptyFileMapsToNothing) {
  MappedFile m = MappedFile::open(write("empty", ""));
  EXPECT_EQ(m.size(), 0u);
  EXPECT_EQ(m.data(), nullptr);
  EXPECT_FALSE(m.advise_willneed());
}

TEST_F(MappedFileTest, MovesKeepThePointer) {
  MappedFile a = MappedFile::open(write("b.bin", std::string(10000, 'x')));
  const uint8_t* p = a.data();
  MappedFile b = std::move(a);
  EXPECT_EQ(b.data(), p);
  EXPECT_EQ(a.data(), nullptr);
  EXPECT_EQ(a.size(), 0u);
  MappedFile c;
  c = std::move(b);
  EXPECT_EQ(c.data(), p);
  EXPECT_EQ(c.data()[9999], 'x');
}

TEST_F(MappedFileTest, AdviceIsAcceptedOnRanges) {
  MappedFile m = MappedFile::open(write("c.bin", std::string(3 * 4096 + 5, 'y')));
  EXPECT_TRUE(m.advise_sequential());
  EXPECT_TRUE(m.advise_random());
  EXPECT_TRUE(m.advise(Advice::Normal));
  EXPECT_TRUE(m.advise_willneed(4097, 100));   // an unaligned start is rounded down to a page
  EXPECT_TRUE(m.advise_willneed(0, uint64_t(1) << 40));  // clamped to the file
  EXPECT_FALSE(m.advise_willneed(m.size(), 1));          // empty range
  m.advise_hugepage();  // may be refused for file pages; must not fail otherwise
  EXPECT_STREQ(advice_name(Advice::WillNeed), "willneed");
}

// page_out advises only the whole pages inside the range, and what is read afterwards is the file.
TEST_F(MappedFileTest, PageOutTakesWholePagesAndKeepsTheBytes) {
  const uint64_t page = uint64_t(::sysconf(_SC_PAGESIZE));
  std::string content(4 * page + 100, '\0');
  for (size_t i = 0; i < content.size(); ++i) content[i] = char(i * 131 % 251);
  MappedFile m = MappedFile::open(write("d.bin", content));
  uint64_t sum = 0;
  for (uint64_t i = 0; i < m.size(); ++i) sum += m.data()[i];  // fault every page in
  EXPECT_EQ(page_out(m.data() + 1, page), 0u);             // no whole page inside
  EXPECT_EQ(page_out(m.data(), 0), 0u);
  const uint64_t advised = page_out(m.data() + 10, 3 * page);  // pages 1 and 2 only
  EXPECT_TRUE(advised == 2 * page || advised == 0) << advised;  // 0: a kernel without MADV_PAGEOUT
  EXPECT_EQ(std::memcmp(m.data(), content.data(), content.size()), 0);
  uint64_t again = 0;
  for (uint64_t i = 0; i < m.size(); ++i) again += m.data()[i];
  EXPECT_EQ(again, sum);
}

}  // namespace
}  // namespace hexe::mem
