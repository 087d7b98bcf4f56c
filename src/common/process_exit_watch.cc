#include "common/process_exit_watch.h"

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

namespace pgha {

ProcessExitWatch::ProcessExitWatch(std::function<void()> on_exit) : on_exit_(std::move(on_exit)) {}

ProcessExitWatch::~ProcessExitWatch() { Stop(); }

void ProcessExitWatch::Stop() {
  if (thread_.joinable()) {
    uint64_t one = 1;
    (void)!::write(cancel_fd_, &one, sizeof one);
    thread_.join();
  }
  if (cancel_fd_ >= 0) {
    ::close(cancel_fd_);
    cancel_fd_ = -1;
  }
  pid_ = 0;
}

void ProcessExitWatch::Watch(pid_t pid) {
  if (pid == pid_ && thread_.joinable()) {
    return;
  }
  Stop();
  pid_ = pid;
  cancel_fd_ = ::eventfd(0, EFD_CLOEXEC);
  // glibc 2.36's <sys/pidfd.h> lacks C linkage for C++; the system call is the same.
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  int open_error = pidfd < 0 ? errno : 0;
  thread_ = std::thread([this, pid, pidfd, open_error, cancel_fd = cancel_fd_] {
    bool exited = false;
    if (pidfd >= 0) {
      pollfd fds[2] = {{pidfd, POLLIN, 0}, {cancel_fd, POLLIN, 0}};
      while (true) {
        int ready = ::poll(fds, 2, -1);
        if (ready < 0 && errno == EINTR) {
          continue;
        }
        exited = ready > 0 && (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0;
        break;
      }
      ::close(pidfd);
    } else if (open_error == ESRCH) {
      exited = true;  // gone before we looked
    } else {
      // No pidfds here (old kernel, seccomp): look every 200 ms.
      pollfd cancel = {cancel_fd, POLLIN, 0};
      while (::poll(&cancel, 1, 200) == 0) {
        if (::kill(pid, 0) != 0 && errno == ESRCH) {
          exited = true;
          break;
        }
      }
    }
    if (exited) {
      on_exit_();
    }
  });
}

}  // namespace pgha
