#include "agent/watchdog.h"

#include <gtest/gtest.h>

#include <vector>

namespace pgha::agent {
namespace {

// Records what the agent asked of the device.
struct FakeDevice final : WatchdogDevice {
  std::vector<std::string>* log;
  bool can_open = true;
  bool settable = true;  // a device whose timeout cannot be changed keeps 60 s
  bool open = false;
  int timeout = 60;
  explicit FakeDevice(std::vector<std::string>* l) : log(l) {}
  Status Open() override {
    if (!can_open) return Error::Unavailable("no such device");
    open = true;
    log->push_back("open");
    return OkStatus();
  }
  bool IsOpen() const override { return open; }
  Status Keepalive() override {
    log->push_back("ping");
    return OkStatus();
  }
  Status SetTimeout(int seconds) override {
    if (settable) timeout = seconds;
    log->push_back("timeout=" + std::to_string(seconds));
    return OkStatus();
  }
  Result<int> GetTimeout() override { return timeout; }
  Status Close() override {
    open = false;
    log->push_back("magic close");
    return OkStatus();
  }
  bool CanBeDisabled() override { return true; }
  std::string Describe() const override { return "fake"; }
};

config::WatchdogConfig Mode(const std::string& mode) {
  config::WatchdogConfig c;
  c.mode = mode;
  c.safety_margin = 5;
  return c;
}

TEST(WatchdogTest, TimeoutIsTtlLessTheSafetyMargin) {
  EXPECT_EQ(WatchdogTimeout(20, 5), 15);
  EXPECT_EQ(WatchdogTimeout(30, 5), 25);
  EXPECT_EQ(WatchdogTimeout(30, -1), 15);  // Patroni's "-1: half the ttl"
}

TEST(WatchdogTest, ActivatePingAdjustAndCloseAsPatroni) {
  std::vector<std::string> log;
  Watchdog watchdog(Mode("required"), std::make_unique<FakeDevice>(&log));
  ASSERT_TRUE(watchdog.Activate(20, 2));
  EXPECT_TRUE(watchdog.active());
  watchdog.Keepalive(20);
  watchdog.Keepalive(30);  // the ttl changed in the DCS: the next ping carries the new timeout
  watchdog.Disable();
  EXPECT_FALSE(watchdog.active());
  EXPECT_EQ(log, (std::vector<std::string>{"open", "timeout=15", "ping", "ping", "ping",
                                           "timeout=25", "magic close"}));
}

TEST(WatchdogTest, RequiredRefusesWhatAutomaticOnlyWarnsAbout) {
  std::vector<std::string> log;
  auto missing = std::make_unique<FakeDevice>(&log);
  missing->can_open = false;
  EXPECT_FALSE(Watchdog(Mode("required"), std::move(missing)).Activate(20, 2));
  // A device that keeps 60 s, more than the 15 s the ttl allows: required refuses; automatic
  // goes on without it (and closes it).
  auto unsafe = std::make_unique<FakeDevice>(&log);
  unsafe->settable = false;
  EXPECT_FALSE(Watchdog(Mode("required"), std::move(unsafe)).Activate(20, 2));
  auto unsafe_too = std::make_unique<FakeDevice>(&log);
  unsafe_too->settable = false;
  Watchdog automatic(Mode("automatic"), std::move(unsafe_too));
  EXPECT_TRUE(automatic.Activate(20, 2));
  EXPECT_FALSE(automatic.active());
  // A loop_wait longer than the timeout leaves no slack.
  EXPECT_FALSE(Watchdog(Mode("required"), std::make_unique<FakeDevice>(&log)).Activate(6, 5));
  EXPECT_TRUE(Watchdog(Mode("off"), nullptr).Activate(20, 2));
}

}  // namespace
}  // namespace pgha::agent
