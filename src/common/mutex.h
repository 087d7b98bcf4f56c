// Mutex and MutexLock: std::mutex and a scoped lock that clang's thread-safety analysis
// understands (common/thread_annotations.h). Wait on a condition with WaitUntil below (a
// std::condition_variable_any and the MutexLock itself): the analysis then knows the mutex is
// held again after the wait.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "common/thread_annotations.h"

namespace pgha {

class CAPABILITY("mutex") Mutex {
 public:
  void lock() ACQUIRE() { mutex_.lock(); }
  void unlock() RELEASE() { mutex_.unlock(); }
  bool try_lock() TRY_ACQUIRE(true) { return mutex_.try_lock(); }

 private:
  std::mutex mutex_;
};

// A mutex that can be waited for until a deadline (a scrape waits for the one in progress only
// until its own deadline).
class CAPABILITY("mutex") TimedMutex {
 public:
  void lock() ACQUIRE() { mutex_.lock(); }
  void unlock() RELEASE() { mutex_.unlock(); }
  // On the system clock: libstdc++ waits for a steady-clock deadline with
  // pthread_mutex_clocklock, which ThreadSanitizer does not see, and then reports the unlock as
  // one of a mutex nobody locked.
  bool TryLockUntil(std::chrono::system_clock::time_point deadline) TRY_ACQUIRE(true) {
    return mutex_.try_lock_until(deadline);
  }

 private:
  std::timed_mutex mutex_;
};

class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mutex) ACQUIRE(mutex) : mutex_(mutex) { mutex_.lock(); }
  ~MutexLock() RELEASE() {
    if (held_) {
      mutex_.unlock();
    }
  }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  // For condition_variable_any, and to let go early.
  void lock() ACQUIRE() {
    mutex_.lock();
    held_ = true;
  }
  void unlock() RELEASE() {
    held_ = false;
    mutex_.unlock();
  }

 private:
  Mutex& mutex_;
  bool held_ = true;
};

// Waits on `cv` with `lock` held until `done()` holds or `deadline` passes, whichever is first,
// through spurious wake-ups; returns done(). `done` runs with the lock held: declare the lambda
// REQUIRES(the mutex) so that the analysis checks its body, which this template cannot.
template <typename Clock, typename Duration, typename Done>
bool WaitUntil(std::condition_variable_any& cv, MutexLock& lock,
               std::chrono::time_point<Clock, Duration> deadline,
               Done done) NO_THREAD_SAFETY_ANALYSIS {
  while (!done()) {
    if (cv.wait_until(lock, deadline) == std::cv_status::timeout) {
      return done();
    }
  }
  return true;
}

}  // namespace pgha
