#include "agent/watchdog.h"

#include <fcntl.h>
#include <linux/watchdog.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>

#include "common/log.h"

namespace pgha::agent {

namespace {

Error Errno(const std::string& what) {
  return Error::Unavailable(what + ": " + std::strerror(errno));
}

class LinuxWatchdogDevice : public WatchdogDevice {
 public:
  explicit LinuxWatchdogDevice(std::string path) : path_(std::move(path)) {}
  ~LinuxWatchdogDevice() override {
    if (fd_ >= 0) {
      (void)Close();
    }
  }

  Status Open() override {
    if (fd_ >= 0) return OkStatus();
    // Non-blocking: a named pipe with no reader fails at once instead of hanging the loop; not
    // inherited, or PostgreSQL would hold the device open after the agent closed it.
    fd_ = ::open(path_.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd_ < 0) return Errno("cannot open watchdog device " + path_);
    return OkStatus();
  }
  bool IsOpen() const override { return fd_ >= 0; }

  Status Keepalive() override { return Write("1", "keepalive"); }

  Status SetTimeout(int seconds) override {
    if (fd_ < 0) return Error::Unavailable("watchdog device is not open");
    int value = seconds;
    if (::ioctl(fd_, WDIOC_SETTIMEOUT, &value) != 0) return Errno("WDIOC_SETTIMEOUT");
    return OkStatus();
  }

  Result<int> GetTimeout() override {
    if (fd_ < 0) return Error::Unavailable("watchdog device is not open");
    int value = 0;
    if (::ioctl(fd_, WDIOC_GETTIMEOUT, &value) != 0) return Errno("WDIOC_GETTIMEOUT");
    return value;
  }

  Status Close() override {
    if (fd_ < 0) return OkStatus();
    Status status = CanBeDisabled() ? Write("V", "magic close") : OkStatus();
    ::close(fd_);
    fd_ = -1;
    return status;
  }

  bool CanBeDisabled() override { return (Support() & WDIOF_MAGICCLOSE) != 0; }

  std::string Describe() const override { return "Linux watchdog device " + path_; }

 protected:
  virtual unsigned Support() {
    struct watchdog_info info {};
    if (fd_ < 0 || ::ioctl(fd_, WDIOC_GETSUPPORT, &info) != 0) return 0;
    return info.options;
  }

  Status Write(const char* byte, const char* what) {
    if (fd_ < 0) return Error::Unavailable("watchdog device is not open");
    if (::write(fd_, byte, 1) != 1) return Errno(std::string("watchdog ") + what);
    return OkStatus();
  }

  std::string path_;
  int fd_ = -1;
};

// Patroni's test driver: the same device protocol on a named pipe, the timeout ioctl turned
// into a "Ctimeout=N" line its harness reads.
class TestingWatchdogDevice final : public LinuxWatchdogDevice {
 public:
  using LinuxWatchdogDevice::LinuxWatchdogDevice;

  Status SetTimeout(int seconds) override {
    if (fd_ < 0) return Error::Unavailable("watchdog device is not open");
    std::string line = "Ctimeout=" + std::to_string(seconds) + "\n";
    if (::write(fd_, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
      return Errno("watchdog set timeout");
    }
    timeout_ = seconds;
    return OkStatus();
  }
  Result<int> GetTimeout() override { return timeout_; }
  std::string Describe() const override { return "watchdog test harness " + path_; }

 private:
  unsigned Support() override { return WDIOF_MAGICCLOSE | WDIOF_SETTIMEOUT; }
  int timeout_ = 60;
};

}  // namespace

std::unique_ptr<WatchdogDevice> MakeWatchdogDevice(const std::string& driver,
                                                   const std::string& device) {
  if (driver == "testing") return std::make_unique<TestingWatchdogDevice>(device);
  return std::make_unique<LinuxWatchdogDevice>(device);
}

int WatchdogTimeout(double ttl, double safety_margin) {
  if (safety_margin == -1) return static_cast<int>(std::floor(ttl / 2));
  return static_cast<int>(std::floor(ttl - safety_margin));
}

Watchdog::Watchdog(const config::WatchdogConfig& config, std::unique_ptr<WatchdogDevice> device)
    : mode_(config.mode), safety_margin_(config.safety_margin), device_(std::move(device)) {}

bool Watchdog::Activate(double ttl, double loop_wait) {
  if (!enabled()) return true;
  if (active()) return true;
  int timeout = WatchdogTimeout(ttl, safety_margin_);
  auto fail = [this](const std::string& why) {
    if (device_ && device_->IsOpen()) (void)device_->Close();
    if (required()) {
      PGHA_LOG_ERROR("configuration requires a watchdog, but it could not be activated: {}", why);
      return false;
    }
    if (!warned_) {
      PGHA_LOG_WARN("watchdog not activated: {}", why);
      warned_ = true;
    }
    return true;
  };
  if (timeout - loop_wait < 0) {
    return fail(fmt::format("the watchdog timeout {} s leaves no time for a loop_wait of {} s",
                            timeout, loop_wait));
  }
  if (!device_) return fail("no watchdog device");
  if (auto opened = device_->Open(); !opened.ok()) return fail(opened.error().message());
  if (auto set = device_->SetTimeout(timeout); !set.ok()) {
    PGHA_LOG_WARN("{}: cannot set the timeout: {}", device_->Describe(), set.error().message());
  }
  auto actual = device_->GetTimeout();
  if (!actual.ok() || *actual > timeout) {
    return fail(fmt::format("{} keeps a timeout of {} s, more than the safe {} s",
                            device_->Describe(), actual.ok() ? *actual : -1, timeout));
  }
  (void)device_->Keepalive();
  timeout_ = *actual;
  warned_ = false;
  PGHA_LOG_INFO("{} activated with {} second timeout, timing slack {} seconds", device_->Describe(),
                timeout_, timeout - loop_wait);
  return true;
}

void Watchdog::Keepalive(double ttl) {
  if (!active()) return;
  if (auto pinged = device_->Keepalive(); !pinged.ok()) {
    PGHA_LOG_ERROR("error while sending a watchdog keepalive: {}", pinged.error().message());
    return;
  }
  int timeout = WatchdogTimeout(ttl, safety_margin_);
  if (timeout != timeout_ && device_->SetTimeout(timeout).ok()) {
    timeout_ = timeout;
    PGHA_LOG_INFO("{} updated with {} second timeout", device_->Describe(), timeout_);
  }
}

void Watchdog::Disable() {
  if (!active()) return;
  if (auto closed = device_->Close(); !closed.ok()) {
    PGHA_LOG_ERROR("error while disabling the watchdog: {}", closed.error().message());
  } else {
    PGHA_LOG_INFO("watchdog disabled");
  }
}

}  // namespace pgha::agent
