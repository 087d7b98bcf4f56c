// pgha-fence, the real program, guarding stand-in "postmasters" (sh with a child sleep).
#include "agent/fence.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

namespace pgha::agent {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// A process with a child of its own, as a postmaster has backends. It leads its own process
// group, so that Reap can take the child too: a `sleep` left behind would hold the test's output
// pipe open, and ctest would wait for it.
pid_t StartPostmasterStandIn() {
  pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);
    ::execlp("sh", "sh", "-c", "sleep 30 & wait", static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::setpgid(pid, pid);                             // both sides: whichever runs first
  std::this_thread::sleep_for(milliseconds(100));  // let it fork its child
  return pid;
}

// true when `pid` (our child) died by SIGKILL within `limit`.
bool KilledWithin(pid_t pid, milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
    }
    std::this_thread::sleep_for(milliseconds(10));
  }
  return false;
}

void Reap(pid_t pid) {
  ::kill(-pid, SIGKILL);
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
}

std::string DataDir();

// FencesFor reads /proc; a process just spawned may take a moment to show its command line.
bool FencesAre(const std::vector<pid_t>& expected) {
  auto deadline = std::chrono::steady_clock::now() + milliseconds(2000);
  while (std::chrono::steady_clock::now() < deadline) {
    if (FencesFor(DataDir()) == expected) {
      return true;
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
  ADD_FAILURE() << "fences: " << ::testing::PrintToString(FencesFor(DataDir()));
  return false;
}

std::string DataDir() { return "/tmp/pgha-fence-test-" + std::to_string(::getpid()); }

TEST(FenceTest, KillsThePostmasterWhenTheDeadlinePassesUnrenewed) {
  auto fence = Fence::Start(PGHA_FENCE_BINARY, DataDir());
  ASSERT_TRUE(fence.ok()) << fence.error().message();
  pid_t postmaster = StartPostmasterStandIn();
  (*fence)->Arm(std::chrono::steady_clock::now() + milliseconds(300), postmaster);
  EXPECT_FALSE(KilledWithin(postmaster, milliseconds(150)));
  EXPECT_TRUE(KilledWithin(postmaster, milliseconds(2000)));
}

TEST(FenceTest, RenewalMovesTheDeadlineAndDisarmingStopsIt) {
  auto fence = Fence::Start(PGHA_FENCE_BINARY, DataDir());
  ASSERT_TRUE(fence.ok());
  pid_t postmaster = StartPostmasterStandIn();
  (*fence)->Arm(std::chrono::steady_clock::now() + milliseconds(300), postmaster);
  std::this_thread::sleep_for(milliseconds(100));
  (*fence)->Arm(std::chrono::steady_clock::now() + milliseconds(800), postmaster);
  EXPECT_FALSE(KilledWithin(postmaster, milliseconds(500)));
  (*fence)->Disarm();
  EXPECT_FALSE(KilledWithin(postmaster, milliseconds(800)));
  Reap(postmaster);
}

TEST(FenceTest, ANewAgentStopsTheFenceItsPredecessorLeft) {
  auto first = Fence::Start(PGHA_FENCE_BINARY, DataDir());
  ASSERT_TRUE(first.ok());
  pid_t old_fence = (*first)->pid();
  EXPECT_TRUE(FencesAre({old_fence}));
  auto second = Fence::Start(PGHA_FENCE_BINARY, DataDir());
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(KilledWithin(old_fence, milliseconds(2000)));
  EXPECT_TRUE(FencesAre({(*second)->pid()}));
}

TEST(FenceTest, AMissingProgramIsAnError) {
  EXPECT_FALSE(Fence::Start("/nonexistent/pgha-fence", DataDir()).ok());
}

class PlanFenceTest : public ::testing::Test {
 protected:
  FenceInput Primary() {
    FenceInput in;
    in.primary_running = true;
    in.last_renewal = t0_;
    in.ttl = 30;
    in.safety_margin = 5;
    in.now = t0_ + seconds(1);
    return in;
  }
  MonoTime t0_ = MonoTime() + seconds(1000);
};

TEST_F(PlanFenceTest, ArmsTtlMinusTheSafetyMarginAfterTheRenewalStarted) {
  FencePlan plan = PlanFence(Primary());
  ASSERT_EQ(plan.kind, FencePlan::Kind::kArm);
  EXPECT_EQ(plan.deadline, t0_ + seconds(25));
}

TEST_F(PlanFenceTest, TheMarginIsAtMostAQuarterOfTtl) {
  FenceInput in = Primary();
  in.ttl = 6;  // min(5, 6/4) = 1.5
  FencePlan plan = PlanFence(in);
  ASSERT_EQ(plan.kind, FencePlan::Kind::kArm);
  EXPECT_EQ(plan.deadline, t0_ + milliseconds(4500));
}

TEST_F(PlanFenceTest, DisarmsWhenNotARunningPrimaryOrPausedOrNeverRenewed) {
  FenceInput replica = Primary();
  replica.primary_running = false;
  EXPECT_EQ(PlanFence(replica).kind, FencePlan::Kind::kDisarm);
  FenceInput paused = Primary();
  paused.paused = true;
  EXPECT_EQ(PlanFence(paused).kind, FencePlan::Kind::kDisarm);
  FenceInput never = Primary();
  never.last_renewal.reset();
  EXPECT_EQ(PlanFence(never).kind, FencePlan::Kind::kDisarm);
}

TEST_F(PlanFenceTest, APassedDeadlineIsNotArmedAgainOnWhateverRunsNow) {
  FenceInput in = Primary();
  in.now = t0_ + seconds(25);
  EXPECT_EQ(PlanFence(in).kind, FencePlan::Kind::kLeaveAsIs);
  in.now = t0_ + seconds(40);
  EXPECT_EQ(PlanFence(in).kind, FencePlan::Kind::kLeaveAsIs);
}

TEST_F(PlanFenceTest, AFailsafeConfirmationLaterThanTheRenewalExtendsTheDeadline) {
  FenceInput in = Primary();
  in.failsafe_confirmed_at = t0_ + seconds(10);
  in.now = t0_ + seconds(26);  // past the renewal's deadline, not the confirmation's
  FencePlan plan = PlanFence(in);
  ASSERT_EQ(plan.kind, FencePlan::Kind::kArm);
  EXPECT_EQ(plan.deadline, t0_ + seconds(35));

  in.failsafe_confirmed_at = t0_ - seconds(10);  // older than the renewal: the renewal counts
  in.now = t0_ + seconds(1);
  EXPECT_EQ(PlanFence(in).deadline, t0_ + seconds(25));

  in.last_renewal.reset();  // failsafe only (the DCS was away since this agent started)
  in.failsafe_confirmed_at = t0_;
  EXPECT_EQ(PlanFence(in).deadline, t0_ + seconds(25));
}

}  // namespace
}  // namespace pgha::agent
