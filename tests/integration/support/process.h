// ChildProcess: a server the test started, and only that one. It runs in its own process group,
// its output goes to a log file, and the destructor kills it, so a failing test leaves nothing
// behind.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace pgha::testing {

class ChildProcess {
 public:
  ChildProcess() = default;
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess();

  // Starts argv[0] (looked up in PATH) with extra environment variables; stdout and stderr are
  // appended to log_path. Returns false (and says why on stderr) when it cannot start.
  bool Start(const std::vector<std::string>& argv, const std::string& log_path,
             const std::map<std::string, std::string>& env = {});
  // Sends a signal to the process group; no-op when not running.
  void Signal(int signal);
  // SIGKILL and reap.
  void Kill();
  // SIGTERM, wait up to `grace`, then SIGKILL.
  void Stop(std::chrono::milliseconds grace = std::chrono::seconds(5));
  bool Running();
  pid_t pid() const { return pid_; }

 private:
  bool Reap(bool block);
  pid_t pid_ = -1;
};

// Polls `predicate` every 20 ms until it holds or `timeout` passes.
bool WaitUntil(const std::function<bool()>& predicate, std::chrono::milliseconds timeout);

// Runs a command to completion; returns its exit code (or -1), capturing output.
int RunCommand(const std::vector<std::string>& argv, std::string* output = nullptr,
               const std::map<std::string, std::string>& env = {});

// A fresh directory under $TMPDIR, removed with everything in it when the object goes away.
class TempDirectory {
 public:
  explicit TempDirectory(const std::string& prefix);
  ~TempDirectory();
  TempDirectory(const TempDirectory&) = delete;
  TempDirectory& operator=(const TempDirectory&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace pgha::testing
