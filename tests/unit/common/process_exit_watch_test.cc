#include "common/process_exit_watch.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace pgha {
namespace {

using std::chrono::milliseconds;

pid_t StartSleeper() {
  pid_t pid = ::fork();
  if (pid == 0) {
    ::execlp("sleep", "sleep", "30", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return pid;
}

bool WaitFor(const std::atomic<int>& calls, int expected, milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (calls.load() < expected && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  return calls.load() >= expected;
}

TEST(ProcessExitWatchTest, TellsOnceWhenTheProcessExits) {
  std::atomic<int> calls{0};
  ProcessExitWatch watch([&] { ++calls; });
  pid_t pid = StartSleeper();
  ASSERT_GT(pid, 0);
  watch.Watch(pid);
  watch.Watch(pid);  // the same pid again: still one watch
  std::this_thread::sleep_for(milliseconds(100));
  EXPECT_EQ(calls.load(), 0);
  auto killed = std::chrono::steady_clock::now();
  ::kill(pid, SIGKILL);
  // Not reaped yet: a zombie has exited all the same.
  ASSERT_TRUE(WaitFor(calls, 1, milliseconds(2000)));
  EXPECT_LT(std::chrono::steady_clock::now() - killed, milliseconds(500));
  ::waitpid(pid, nullptr, 0);
  std::this_thread::sleep_for(milliseconds(50));
  EXPECT_EQ(calls.load(), 1);
}

TEST(ProcessExitWatchTest, TellsAtOnceWhenTheProcessIsGoneAlready) {
  std::atomic<int> calls{0};
  ProcessExitWatch watch([&] { ++calls; });
  pid_t pid = StartSleeper();
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  watch.Watch(pid);
  EXPECT_TRUE(WaitFor(calls, 1, milliseconds(2000)));
}

TEST(ProcessExitWatchTest, StopAndAnotherPidEndTheOldWatchSilently) {
  std::atomic<int> calls{0};
  ProcessExitWatch watch([&] { ++calls; });
  pid_t first = StartSleeper();
  pid_t second = StartSleeper();
  watch.Watch(first);
  watch.Watch(second);
  EXPECT_EQ(watch.watched(), second);
  ::kill(first, SIGKILL);
  ::waitpid(first, nullptr, 0);
  watch.Stop();
  EXPECT_EQ(watch.watched(), 0);
  ::kill(second, SIGKILL);
  ::waitpid(second, nullptr, 0);
  std::this_thread::sleep_for(milliseconds(100));
  EXPECT_EQ(calls.load(), 0);
}

}  // namespace
}  // namespace pgha
