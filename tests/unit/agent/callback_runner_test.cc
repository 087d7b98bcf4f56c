// CallbackRunner runs real (tiny) processes: Patroni's argument order, one at a time, a newer
// callback kills an older one still running.
#include "agent/callback_runner.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace pgha::agent {
namespace {

class CallbackRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("pgha-callbacks-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    out_ = (dir_ / "calls").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  // A callback command that appends its arguments, after `delay` seconds, to the output file.
  std::string Recorder(int delay = 0) const {
    return "/bin/sh -c 'sleep " + std::to_string(delay) + "; echo \"$0 $*\" >> " + out_ + "'";
  }
  // Waits (up to 10 s) until the output file has `lines` lines; returns its content.
  std::string WaitForLines(size_t lines) const {
    for (int i = 0; i < 200; ++i) {
      std::ifstream in(out_);
      std::stringstream text;
      text << in.rdbuf();
      std::string s = text.str();
      if (static_cast<size_t>(std::count(s.begin(), s.end(), '\n')) >= lines) {
        return s;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return "timed out";
  }
  std::filesystem::path dir_;
  std::string out_;
};

TEST_F(CallbackRunnerTest, CallsWithActionRoleAndScope) {
  CallbackRunner runner("pg-ha");
  runner.Call({{"on_role_change", Recorder()}}, "on_role_change", "master");
  EXPECT_EQ(WaitForLines(1), "on_role_change master pg-ha\n");
  runner.Call({{"on_role_change", Recorder()}}, "on_start", "replica");  // not configured
  runner.Call({{"on_reload", Recorder()}}, "on_reload", "replica");
  EXPECT_EQ(WaitForLines(2), "on_role_change master pg-ha\non_reload replica pg-ha\n");
}

TEST_F(CallbackRunnerTest, ANewerCallbackKillsTheOneStillRunning) {
  auto started = std::chrono::steady_clock::now();
  {
    CallbackRunner runner("pg-ha");
    runner.Call({{"on_stop", Recorder(30)}}, "on_stop", "master");
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    runner.Call({{"on_start", Recorder()}}, "on_start", "replica");
    EXPECT_EQ(WaitForLines(1), "on_start replica pg-ha\n");
  }
  // Neither the killed callback nor the runner's shutdown waited for the 30 s sleep.
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(10));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(WaitForLines(1), "on_start replica pg-ha\n");
}

}  // namespace
}  // namespace pgha::agent
