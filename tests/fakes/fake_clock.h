// FakeClock: time that moves only when a test (or a SleepFor of the code under test) moves it,
// so TTLs, retry_timeout and polling loops run in no real time.
#pragma once

#include <chrono>
#include <mutex>
#include <thread>

#include "common/clock.h"

namespace pgha::testing {

class FakeClock final : public Clock {
 public:
  MonoTime Now() const override {
    std::lock_guard<std::mutex> lock(mutex_);
    return MonoTime() + elapsed_ + std::chrono::hours(1);
  }
  WallTime WallNow() const override {
    std::lock_guard<std::mutex> lock(mutex_);
    // 2026-12-01T00:00:00Z plus what has passed.
    return WallTime() + std::chrono::seconds(1796083200) +
           std::chrono::duration_cast<WallTime::duration>(elapsed_);
  }
  // Moves time on, and lets other threads run (a long action polling while the test thread
  // plays another member).
  void SleepFor(std::chrono::nanoseconds duration) const override {
    Advance(duration);
    std::this_thread::yield();
  }
  void Advance(std::chrono::nanoseconds duration) const {
    std::lock_guard<std::mutex> lock(mutex_);
    elapsed_ += duration;
  }

 private:
  mutable std::mutex mutex_;  // guards elapsed_
  mutable std::chrono::nanoseconds elapsed_{0};
};

}  // namespace pgha::testing
