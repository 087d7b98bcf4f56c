#include "agent/callback_runner.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

#include "common/log.h"
#include "common/strings.h"

namespace pgha::agent {

CallbackRunner::CallbackRunner(std::string scope) : scope_(std::move(scope)) {
  main_.worker = std::thread([this] { Work(main_); });
  reload_.worker = std::thread([this] { Work(reload_); });
}

CallbackRunner::~CallbackRunner() {
  {
    MutexLock lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  // A callback still running is left to finish on its own (it may be recording the shutdown);
  // the workers only stop waiting for it.
  main_.worker.join();
  reload_.worker.join();
}

void CallbackRunner::Call(const std::map<std::string, std::string>& callbacks,
                          const std::string& action, const std::string& role) {
  auto it = callbacks.find(action);
  if (it == callbacks.end()) {
    return;
  }
  auto words = SplitCommandLine(it->second);
  if (!words.ok() || words->empty()) {
    PGHA_LOG_ERROR("callback {}: cannot run '{}'", action, it->second);
    return;
  }
  words->insert(words->end(), {action, role, scope_});
  Slot& slot = action == "on_reload" ? reload_ : main_;
  {
    MutexLock lock(mutex_);
    if (slot.running > 0) {
      PGHA_LOG_INFO("callback {}: killing the previous callback (pid {})", action, slot.running);
      ::kill(-slot.running, SIGKILL);
    }
    slot.pending = std::move(*words);
  }
  wake_.notify_all();
}

void CallbackRunner::Work(Slot& slot) {
  MutexLock lock(mutex_);
  while (true) {
    while (!stopping_ && !slot.pending.has_value()) {
      wake_.wait(lock);
    }
    if (!slot.pending) {
      return;  // stopping, nothing left to start
    }
    std::vector<std::string> argv = std::move(*slot.pending);
    slot.pending.reset();
    std::vector<char*> args;
    for (auto& a : argv) {
      args.push_back(a.data());
    }
    args.push_back(nullptr);
    pid_t pid = ::fork();
    if (pid == 0) {
      ::setpgid(0, 0);
      // The agent blocks these for its signal thread; the callback must get them normally.
      sigset_t all;
      sigfillset(&all);
      ::sigprocmask(SIG_UNBLOCK, &all, nullptr);
      ::execvp(args[0], args.data());
      ::_exit(127);
    }
    if (pid < 0) {
      PGHA_LOG_ERROR("callback {}: fork failed", argv[argv.size() - 3]);
      continue;
    }
    ::setpgid(pid, pid);
    slot.running = pid;
    int status = 0;
    while (true) {
      lock.unlock();
      pid_t done = ::waitpid(pid, &status, WNOHANG);
      lock.lock();
      if (done == pid || (done < 0 && errno != EINTR)) {
        break;
      }
      if (slot.pending) {
        // A newer callback killed this one: reap it, then start the newer.
        lock.unlock();
        while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        lock.lock();
        break;
      }
      if (stopping_) {
        break;  // shutting down: leave it running, as Patroni does
      }
      lock.unlock();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      lock.lock();
    }
    slot.running = 0;
    if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
      PGHA_LOG_WARN("callback {} exited with {}", argv[argv.size() - 3], WEXITSTATUS(status));
    }
  }
}

}  // namespace pgha::agent
