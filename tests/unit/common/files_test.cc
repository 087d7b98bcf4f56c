#include "common/files.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <string>

namespace pgha {
namespace {

TEST(FilesTest, ReadsAWholeFileAndReportsAMissingOne) {
  std::string path = ::testing::TempDir() + "/pgha-files-test-" + std::to_string(::getpid());
  std::string content(20000, 'x');
  content += std::string("\0tail", 5);
  std::ofstream(path, std::ios::binary) << content;
  EXPECT_EQ(ReadWholeFile(path), content);
  ::unlink(path.c_str());
  EXPECT_FALSE(ReadWholeFile(path).has_value());
}

// The fence's scan of /proc opens a process's cmdline, and the process may be gone by the time
// it is read: the read fails (ESRCH). An ifstream read through istreambuf_iterator threw there
// and ended the agent at start; ReadAll reports it.
TEST(FilesTest, AProcessGoneBetweenOpenAndReadIsAFailureNotAnException) {
  pid_t child = ::fork();
  if (child == 0) {
    ::pause();
    ::_exit(0);
  }
  ASSERT_GT(child, 0);
  std::string path = "/proc/" + std::to_string(child) + "/cmdline";
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  EXPECT_FALSE(ReadAll(fd).has_value());
  ::close(fd);

  fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  EXPECT_LT(fd, 0);  // reaped: the entry is gone
  EXPECT_FALSE(ReadWholeFile(path).has_value());
}

}  // namespace
}  // namespace pgha
