#include "common/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>

namespace pgha {

namespace {
constexpr size_t kMaxOutput = 1u << 20;
}

ProgramResult RunProgram(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
                         const std::map<std::string, std::string>& env, const std::string& input,
                         const std::function<void(const std::string&)>& on_line) {
  ProgramResult result;
  if (argv.empty()) {
    result.output = "no program given";
    return result;
  }
  int out_pipe[2];
  int in_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) {
    result.output = "pipe failed";
    return result;
  }
  if (::pipe2(in_pipe, O_CLOEXEC) != 0) {
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    result.output = "pipe failed";
    return result;
  }
  std::vector<char*> args;
  for (const auto& a : argv) {
    args.push_back(const_cast<char*>(a.c_str()));
  }
  args.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) {
    result.output = "fork failed";
    return result;
  }
  if (pid == 0) {
    ::setpgid(0, 0);
    ::dup2(in_pipe[0], STDIN_FILENO);
    ::dup2(out_pipe[1], STDOUT_FILENO);
    ::dup2(out_pipe[1], STDERR_FILENO);
    for (const auto& [k, v] : env) {
      ::setenv(k.c_str(), v.c_str(), 1);
    }
    ::execvp(args[0], args.data());
    const char msg[] = "exec failed\n";
    (void)!::write(STDERR_FILENO, msg, sizeof(msg) - 1);
    ::_exit(127);
  }
  ::setpgid(pid, pid);
  ::close(out_pipe[1]);
  ::close(in_pipe[0]);
  if (!input.empty()) {
    (void)!::write(in_pipe[1], input.data(), input.size());
  }
  ::close(in_pipe[1]);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::array<char, 8192> buffer;
  std::string pending;  // a partial line, for on_line
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      result.timed_out = true;
      ::kill(-pid, SIGKILL);
      break;
    }
    pollfd pfd{out_pipe[0], POLLIN, 0};
    int ready = ::poll(&pfd, 1, static_cast<int>(std::min<int64_t>(left.count(), 1000)));
    if (ready < 0 && errno != EINTR) {
      break;
    }
    if (ready <= 0) {
      continue;
    }
    ssize_t n = ::read(out_pipe[0], buffer.data(), buffer.size());
    if (n <= 0) {
      break;  // EOF: the program (and anything holding its stdout) closed it
    }
    if (result.output.size() < kMaxOutput) {
      result.output.append(buffer.data(), static_cast<size_t>(n));
    }
    if (on_line) {
      pending.append(buffer.data(), static_cast<size_t>(n));
      size_t end;
      while ((end = pending.find_first_of("\r\n")) != std::string::npos) {
        if (end > 0) {
          on_line(pending.substr(0, end));
        }
        pending.erase(0, end + 1);
      }
    }
  }
  ::close(out_pipe[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!result.timed_out && WIFEXITED(status)) {
    result.exit_code = WEXITSTATUS(status);
  }
  return result;
}

}  // namespace pgha
