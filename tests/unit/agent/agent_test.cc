// The agent's own policies that need no I/O.
#include "agent/agent.h"

#include <gtest/gtest.h>

namespace pgha::agent {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(RewindRetryDueTest, AFailedRewindWaitsFiveSecondsAtShortLoopWaits) {
  MonoTime failed = MonoTime() + seconds(100);
  EXPECT_FALSE(RewindRetryDue(failed, failed, 1));
  EXPECT_FALSE(RewindRetryDue(failed, failed + milliseconds(4999), 1));
  EXPECT_TRUE(RewindRetryDue(failed, failed + seconds(5), 1));
  EXPECT_TRUE(RewindRetryDue(failed, failed + seconds(60), 0.5));
}

TEST(RewindRetryDueTest, AtLongerLoopWaitsOneLoopWait) {
  MonoTime failed = MonoTime() + seconds(100);
  EXPECT_FALSE(RewindRetryDue(failed, failed + seconds(9), 10));
  EXPECT_TRUE(RewindRetryDue(failed, failed + seconds(10), 10));
}

}  // namespace
}  // namespace pgha::agent
