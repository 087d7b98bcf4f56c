// FakeClock: time that moves only when a test moves it, so TTLs, retry_timeout and polling loops
// run in no real time. A SleepFor (a long action polling) waits until the test has moved the
// clock past its end: the test alone decides how fast time goes, so a lease the test's cycles
// renew never expires behind its back.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

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
  void SleepFor(std::chrono::nanoseconds duration) const override {
    std::unique_lock<std::mutex> lock(mutex_);
    if (advance_on_sleep_) {
      elapsed_ += duration;
      return;
    }
    auto until = elapsed_ + duration;
    advanced_.wait(lock, [&] { return elapsed_ >= until; });
  }
  // For single-threaded code under test (pghactl's waits): a sleep moves time itself, since no
  // test thread runs beside it to do so.
  void AdvanceOnSleep() const {
    std::lock_guard<std::mutex> lock(mutex_);
    advance_on_sleep_ = true;
  }
  void Advance(std::chrono::nanoseconds duration) const {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      elapsed_ += duration;
    }
    advanced_.notify_all();
  }

 private:
  mutable std::mutex mutex_;  // guards elapsed_ and advance_on_sleep_
  mutable std::condition_variable advanced_;
  mutable std::chrono::nanoseconds elapsed_{0};
  mutable bool advance_on_sleep_ = false;
};

}  // namespace pgha::testing
