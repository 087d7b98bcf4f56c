// Clock: the only way pgha code reads time, so tests can drive TTLs, loop_wait and
// scheduled actions with a FakeClock and never sleep (Envoy's TimeSource).
//
// Thread-safety: implementations must be safe to call from any thread.
#pragma once

#include <chrono>
#include <thread>

namespace pgha {

using MonoTime = std::chrono::steady_clock::time_point;
using WallTime = std::chrono::system_clock::time_point;

class Clock {
 public:
  virtual ~Clock() = default;
  // Monotonic time, for deadlines and intervals.
  virtual MonoTime Now() const = 0;
  // Calendar time, for timestamps written to the DCS and shown to users.
  virtual WallTime WallNow() const = 0;
  // A pause between polls: a fake clock advances instead of sleeping.
  virtual void SleepFor(std::chrono::nanoseconds duration) const = 0;
};

class SystemClock final : public Clock {
 public:
  MonoTime Now() const override { return std::chrono::steady_clock::now(); }
  WallTime WallNow() const override { return std::chrono::system_clock::now(); }
  void SleepFor(std::chrono::nanoseconds duration) const override {
    std::this_thread::sleep_for(duration);
  }
  static SystemClock& Instance();
};

}  // namespace pgha
