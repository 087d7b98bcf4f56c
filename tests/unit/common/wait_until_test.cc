// WaitUntil (common/mutex.h): the one loop every condition-variable wait with a deadline goes
// through (the agent's cycle wait and REST requests, the etcd cache, the router's topology).
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "common/mutex.h"

namespace pgha {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

struct Flag {
  Mutex mutex;
  std::condition_variable_any cv;
  bool set GUARDED_BY(mutex) = false;
  int checks GUARDED_BY(mutex) = 0;

  bool Wait(steady_clock::time_point deadline) {
    MutexLock lock(mutex);
    return WaitUntil(cv, lock, deadline, [&]() REQUIRES(mutex) {
      ++checks;
      return set;
    });
  }
  int Checks() {
    MutexLock lock(mutex);
    return checks;
  }
};

TEST(WaitUntilTest, AConditionThatHoldsReturnsAtOnceEvenPastTheDeadline) {
  Flag flag;
  {
    MutexLock lock(flag.mutex);
    flag.set = true;
  }
  EXPECT_TRUE(flag.Wait(steady_clock::now() - milliseconds(1)));
  EXPECT_EQ(flag.Checks(), 1);
}

TEST(WaitUntilTest, TheDeadlinePassesWithTheConditionFalse) {
  Flag flag;
  auto deadline = steady_clock::now() + milliseconds(30);
  EXPECT_FALSE(flag.Wait(deadline));
  EXPECT_GE(steady_clock::now(), deadline);
}

TEST(WaitUntilTest, ANotifyWithoutTheConditionKeepsWaitingAndTheConditionEndsIt) {
  Flag flag;
  std::thread setter([&] {
    for (int i = 0; i < 3; ++i) {
      std::this_thread::sleep_for(milliseconds(5));
      flag.cv.notify_all();  // a wake-up for nothing: the wait goes on
    }
    {
      MutexLock lock(flag.mutex);
      flag.set = true;
    }
    flag.cv.notify_all();
  });
  // Far enough that only the condition can end the wait.
  EXPECT_TRUE(flag.Wait(steady_clock::now() + std::chrono::seconds(60)));
  setter.join();
  EXPECT_GE(flag.Checks(), 2);
}

}  // namespace
}  // namespace pgha
