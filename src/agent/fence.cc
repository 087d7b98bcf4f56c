#include "agent/fence.h"

#include <fmt/format.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>
#include <vector>

#include "common/files.h"
#include "common/log.h"

extern char** environ;

namespace pgha::agent {

namespace fs = std::filesystem;

FencePlan PlanFence(const FenceInput& in) {
  std::optional<MonoTime> renewed = in.last_renewal;
  if (in.failsafe_confirmed_at && (!renewed || *in.failsafe_confirmed_at > *renewed)) {
    renewed = in.failsafe_confirmed_at;  // every member holds this node for the leader until then
  }
  if (!in.primary_running || !renewed || in.paused) {
    return {};
  }
  // The lock lasts at least ttl from the start of its last renewal; fence with a margin before
  // that, so PostgreSQL is down before any other member may take the lock.
  double margin = std::min(in.safety_margin, in.ttl / 4);
  MonoTime deadline = *renewed + std::chrono::duration_cast<MonoTime::duration>(
                                     std::chrono::duration<double>(in.ttl - margin));
  // A deadline already passed was armed before and has fired (or is firing) on the postmaster
  // of that time. Arming it again would kill whatever runs now — after a demotion, the replica
  // this node restarted as, whose recovery the published status cannot see yet.
  if (deadline <= in.now) {
    return {FencePlan::Kind::kLeaveAsIs, {}};
  }
  return {FencePlan::Kind::kArm, deadline};
}

std::vector<pid_t> FencesFor(const std::string& data_dir) {
  std::vector<pid_t> found;
  std::error_code ec;
  // increment(ec), not ++: a range-for over /proc throws if reading the directory fails.
  for (auto it = fs::directory_iterator("/proc", ec); !ec && it != fs::directory_iterator();
       it.increment(ec)) {
    const auto& entry = *it;
    const std::string name = entry.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) {
      continue;
    }
    // A process may exit while it is looked at: its entry then reads as nothing.
    std::string all = ReadWholeFile(entry.path() / "cmdline").value_or("");
    std::vector<std::string> args;
    size_t start = 0;
    for (size_t i = 0; i < all.size(); ++i) {
      if (all[i] == '\0') {
        args.push_back(all.substr(start, i - start));
        start = i + 1;
      }
    }
    if (args.size() == 2 && fs::path(args[0]).filename() == "pgha-fence" && args[1] == data_dir) {
      found.push_back(static_cast<pid_t>(std::stol(name)));
    }
  }
  return found;
}

Result<std::unique_ptr<Fence>> Fence::Start(const std::string& program,
                                            const std::string& data_dir) {
  for (pid_t stale : FencesFor(data_dir)) {
    PGHA_LOG_INFO("stopping the fence a previous agent left running (pid {})", stale);
    ::kill(stale, SIGKILL);
  }
  int sockets[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sockets) != 0) {
    return Error::Internal(fmt::format("socketpair for the fence: {}", std::strerror(errno)));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, sockets[1], STDIN_FILENO);
  std::vector<std::string> argv_storage = {program, data_dir};
  std::vector<char*> argv = {argv_storage[0].data(), argv_storage[1].data(), nullptr};
  pid_t pid = 0;
  int rc = posix_spawn(&pid, program.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(sockets[1]);
  if (rc != 0) {
    ::close(sockets[0]);
    return Error::Unavailable(fmt::format("cannot start {}: {}", program, std::strerror(rc)));
  }
  return std::unique_ptr<Fence>(new Fence(pid, sockets[0]));
}

Fence::~Fence() {
  Send("disarm");
  ::close(socket_);  // the fence exits when its input closes while disarmed
  for (int i = 0; i < 200; ++i) {
    if (::waitpid(pid_, nullptr, WNOHANG) != 0) {
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, nullptr, 0);
}

void Fence::Arm(MonoTime deadline, pid_t postmaster) {
  auto nanos =
      std::chrono::duration_cast<std::chrono::nanoseconds>(deadline.time_since_epoch()).count();
  Send(fmt::format("arm {} {}", nanos, postmaster));
}

void Fence::Disarm() { Send("disarm"); }

void Fence::Send(const std::string& line) {
  if (line == last_sent_) {
    return;
  }
  std::string message = line + "\n";
  if (::send(socket_, message.data(), message.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(message.size())) {
    if (!broken_) {
      PGHA_LOG_ERROR("the fence process (pid {}) does not take commands: {}", pid_,
                     std::strerror(errno));
    }
    broken_ = true;
    return;
  }
  broken_ = false;
  last_sent_ = line;
}

}  // namespace pgha::agent
