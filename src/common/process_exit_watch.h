// ProcessExitWatch: tells, from its own thread, when a process exits — the HA loop sleeps until
// loop_wait or an event instead of polling the postmaster every fraction of a second (polling
// five times a second was most of an idle agent's CPU).
//
// Uses a pidfd (Linux 5.3+), so the kernel reports the exit the moment it happens; where pidfds
// are not available it checks the process every 200 ms on the watch's thread.
//
// Thread-safety: Watch() and Stop() from one thread (the loop); `on_exit` runs on the watch's
// thread and must not block.
#pragma once

#include <sys/types.h>

#include <functional>
#include <thread>

namespace pgha {

class ProcessExitWatch {
 public:
  explicit ProcessExitWatch(std::function<void()> on_exit);
  ~ProcessExitWatch();
  ProcessExitWatch(const ProcessExitWatch&) = delete;
  ProcessExitWatch& operator=(const ProcessExitWatch&) = delete;

  // Watches `pid` (a no-op when it is already watched); calls on_exit once when it exits, at
  // once when it is gone already.
  void Watch(pid_t pid);
  // Stops watching; on_exit is not called for the previous pid after this returns.
  void Stop();
  pid_t watched() const { return pid_; }

 private:
  std::function<void()> on_exit_;
  pid_t pid_ = 0;
  int cancel_fd_ = -1;  // eventfd that ends the thread's wait
  std::thread thread_;
};

}  // namespace pgha
