// pgha-fence: kills PostgreSQL when the leader's lease may run out elsewhere before the agent
// renewed it. The agent starts it and writes to its stdin, after every renewal,
//   arm <deadline, CLOCK_MONOTONIC nanoseconds> <postmaster pid>
// or `disarm` when this node is no primary holding the lock. When a deadline passes unrenewed —
// the agent frozen (SIGSTOP, a stall), killed, or starved — it stops the postmaster, kills every
// backend and then the postmaster, so no write commits here after the lease could have expired.
// It runs apart from the agent because a frozen agent can demote nothing; Patroni leaves this to
// a watchdog device, which these machines do not have.
//
// usage: pgha-fence <data directory>   (the argument names the node it guards; a restarted agent
// finds and stops a fence its predecessor left running)
#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

namespace {

int64_t MonotonicNanos() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<int64_t>(now.tv_sec) * 1000000000 + now.tv_nsec;
}

void Log(const std::string& what) {
  time_t now = time(nullptr);
  char stamp[32];
  strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", gmtime(&now));
  std::string line = std::string(stamp) + " pgha-fence: " + what + "\n";
  (void)!write(STDERR_FILENO, line.data(), line.size());
}

std::vector<pid_t> ChildrenOf(pid_t parent) {
  std::vector<pid_t> children;
  DIR* proc = opendir("/proc");
  if (proc == nullptr) {
    return children;
  }
  while (dirent* entry = readdir(proc)) {
    char* end = nullptr;
    long pid = strtol(entry->d_name, &end, 10);
    if (pid <= 0 || *end != '\0') {
      continue;
    }
    std::string path = std::string("/proc/") + entry->d_name + "/stat";
    FILE* stat = fopen(path.c_str(), "r");
    if (stat == nullptr) {
      continue;
    }
    char buffer[512];
    size_t n = fread(buffer, 1, sizeof buffer - 1, stat);
    fclose(stat);
    buffer[n] = '\0';
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses; the last ')' ends it.
    const char* close = strrchr(buffer, ')');
    char state = 0;
    long ppid = 0;
    if (close != nullptr && sscanf(close + 1, " %c %ld", &state, &ppid) == 2 && ppid == parent) {
      children.push_back(static_cast<pid_t>(pid));
    }
  }
  closedir(proc);
  return children;
}

// Stop the postmaster first so that it forks nothing more, then kill what it forked, then it.
void KillPostgres(pid_t postmaster) {
  if (kill(postmaster, SIGSTOP) != 0) {
    Log("postmaster " + std::to_string(postmaster) + " is gone already");
    return;
  }
  auto children = ChildrenOf(postmaster);
  for (pid_t child : children) {
    kill(child, SIGKILL);
  }
  kill(postmaster, SIGKILL);
  Log("killed postmaster " + std::to_string(postmaster) + " and " +
      std::to_string(children.size()) + " backends");
}

}  // namespace

int main(int argc, char** /*argv: the data directory, for FencesFor*/) {
  if (argc != 2) {
    fprintf(stderr, "usage: pgha-fence <data directory>\n");
    return 2;
  }
  // Its own session: a signal for the agent's terminal or process group must not end the fence.
  (void)setsid();
  signal(SIGPIPE, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  signal(SIGINT, SIG_IGN);
  bool armed = false;
  int64_t deadline = 0;
  pid_t postmaster = 0;
  int input = STDIN_FILENO;
  std::string pending;
  while (true) {
    int timeout_ms = -1;
    if (armed) {
      int64_t left = deadline - MonotonicNanos();
      timeout_ms = left <= 0 ? 0 : static_cast<int>(left / 1000000 + 1);
    } else if (input < 0) {
      return 0;  // the agent is gone and nothing is armed
    }
    pollfd fd = {input, POLLIN, 0};
    int ready = poll(&fd, 1, timeout_ms);
    if (ready < 0 && errno != EINTR) {
      Log(std::string("poll failed: ") + strerror(errno));
      return 1;
    }
    if (ready > 0 && input >= 0) {
      char buffer[256];
      ssize_t n = read(input, buffer, sizeof buffer);
      if (n <= 0) {
        input = -1;  // the agent exited or died; what is armed stays armed
        if (armed) {
          Log("the agent is gone; fencing at the armed deadline unless it was renewed");
        }
      } else {
        pending.append(buffer, static_cast<size_t>(n));
        size_t newline;
        while ((newline = pending.find('\n')) != std::string::npos) {
          std::string line = pending.substr(0, newline);
          pending.erase(0, newline + 1);
          long long at = 0;
          int pid = 0;
          if (sscanf(line.c_str(), "arm %lld %d", &at, &pid) == 2 && pid > 0) {
            armed = true;
            deadline = at;
            postmaster = pid;
          } else if (line == "disarm") {
            armed = false;
          } else {
            Log("ignoring a line it does not understand: " + line);
          }
        }
      }
    }
    if (armed && MonotonicNanos() >= deadline) {
      Log("the leader lock was not renewed in time: stopping PostgreSQL");
      KillPostgres(postmaster);
      armed = false;
    }
  }
}
