// Watchdog: Patroni's `watchdog` section. While this node is the primary holding the lock, a
// watchdog device (Linux /dev/watchdog, or the named pipe of Patroni's test driver) is kept
// alive after every lock renewal; if the agent stops renewing (frozen, killed), the device
// resets the machine ttl - safety_margin seconds after the last ping, before the lock can
// expire and another node promote. pgha-fence (agent/fence.h) guards the same moment without a
// device.
//
// Modes: off; automatic (used when it can be activated, warned about otherwise); required (no
// leadership without it: the agent refuses to promote or bootstrap).
//
// Thread-safety: the loop's thread only.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "common/result.h"
#include "config/config.h"

namespace pgha::agent {

// The device's interface; the Linux one speaks ioctls, the testing one writes commands.
class WatchdogDevice {
 public:
  virtual ~WatchdogDevice() = default;
  virtual Status Open() = 0;
  virtual bool IsOpen() const = 0;
  virtual Status Keepalive() = 0;
  virtual Status SetTimeout(int seconds) = 0;
  virtual Result<int> GetTimeout() = 0;
  // Writes the magic close character first when the device supports it (so it stops counting).
  virtual Status Close() = 0;
  virtual bool CanBeDisabled() = 0;
  virtual std::string Describe() const = 0;
};

// `driver`: "default" (Linux) or "testing".
std::unique_ptr<WatchdogDevice> MakeWatchdogDevice(const std::string& driver,
                                                   const std::string& device);

// Patroni's timeout: ttl - safety_margin, or ttl / 2 when safety_margin is -1.
int WatchdogTimeout(double ttl, double safety_margin);

class Watchdog {
 public:
  Watchdog(const config::WatchdogConfig& config, std::unique_ptr<WatchdogDevice> device);

  bool enabled() const { return mode_ != "off"; }
  bool required() const { return mode_ == "required"; }
  bool active() const { return device_ && device_->IsOpen(); }

  // Opens the device with the timeout for `ttl`. False when it could not be activated safely
  // (no device, a timeout it cannot keep, timings leaving no slack) and the mode is required;
  // in automatic mode such a failure is logged and true is returned.
  bool Activate(double ttl, double loop_wait);
  // After a lock renewal: pings, and applies a changed ttl.
  void Keepalive(double ttl);
  // Not the primary any more, paused, or shutting down: magic close.
  void Disable();

 private:
  std::string mode_;
  double safety_margin_;
  std::unique_ptr<WatchdogDevice> device_;
  int timeout_ = 0;
  bool warned_ = false;
};

}  // namespace pgha::agent
