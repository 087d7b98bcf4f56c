// The agent's own policies that need no I/O.
#include "agent/agent.h"

#include <gtest/gtest.h>

namespace pgha::agent {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(RewindRetryDueTest, AFailedRewindWaitsFiveSecondsAtShortLoopWaits) {
  MonoTime failed = MonoTime() + seconds(100);
  EXPECT_FALSE(RewindRetryDue(failed, 1, failed, 1));
  EXPECT_FALSE(RewindRetryDue(failed, 1, failed + milliseconds(4999), 1));
  EXPECT_TRUE(RewindRetryDue(failed, 1, failed + seconds(5), 1));
  EXPECT_TRUE(RewindRetryDue(failed, 1, failed + seconds(60), 0.5));
}

TEST(RewindRetryDueTest, AtLongerLoopWaitsOneLoopWait) {
  MonoTime failed = MonoTime() + seconds(100);
  EXPECT_FALSE(RewindRetryDue(failed, 1, failed + seconds(9), 10));
  EXPECT_TRUE(RewindRetryDue(failed, 1, failed + seconds(10), 10));
}

TEST(RewindRetryDueTest, RepeatedFailuresBackOffUpToFiveMinutes) {
  EXPECT_EQ(RewindRetryDelay(0, 1), 5);
  EXPECT_EQ(RewindRetryDelay(1, 1), 5);
  EXPECT_EQ(RewindRetryDelay(2, 1), 10);
  EXPECT_EQ(RewindRetryDelay(3, 1), 20);
  EXPECT_EQ(RewindRetryDelay(6, 1), 160);
  EXPECT_EQ(RewindRetryDelay(7, 1), 300);
  EXPECT_EQ(RewindRetryDelay(1000, 1), 300);
  EXPECT_EQ(RewindRetryDelay(2, 10), 20);
  MonoTime failed = MonoTime() + seconds(100);
  EXPECT_FALSE(RewindRetryDue(failed, 3, failed + seconds(19), 1));
  EXPECT_TRUE(RewindRetryDue(failed, 3, failed + seconds(20), 1));
}

}  // namespace
}  // namespace pgha::agent
