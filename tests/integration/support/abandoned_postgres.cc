#include "support/abandoned_postgres.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>

namespace pgha::testing {
namespace fs = std::filesystem;

namespace {

std::optional<pid_t> FirstLineAsPid(const fs::path& file) {
  std::ifstream in(file);
  long pid = 0;
  if (!(in >> pid) || pid <= 0) {
    return std::nullopt;
  }
  return static_cast<pid_t>(pid);
}

// A zombie is gone too: its parent has not reaped it yet, but it runs nothing.
bool Alive(pid_t pid) {
  if (::kill(pid, 0) != 0 && errno != EPERM) {
    return false;
  }
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  auto after_name = line.rfind(')');
  return after_name == std::string::npos || line.substr(after_name + 1, 3) != " Z ";
}

// A pid is reused after its process ends: the postmaster is known by its working directory,
// which PostgreSQL sets to its data directory.
bool RunsIn(pid_t pid, const fs::path& data) {
  std::error_code ec;
  auto cwd = fs::read_symlink("/proc/" + std::to_string(pid) + "/cwd", ec);
  return !ec && fs::equivalent(cwd, data, ec) && !ec;
}

}  // namespace

void MarkOwnedByThisProcess(const std::string& dir) {
  std::ofstream(fs::path(dir) / kOwnerFile) << ::getpid() << "\n";
}

int ClearAbandonedPostgres(const std::string& prefix) {
  fs::path parent = fs::path(prefix).parent_path();
  std::string stem = fs::path(prefix).filename().string();
  std::error_code ec;
  int cleared = 0;
  for (const auto& entry : fs::directory_iterator(parent, ec)) {
    const fs::path dir = entry.path();
    if (dir.filename().string().rfind(stem, 0) != 0 || !entry.is_directory(ec)) {
      continue;
    }
    auto owner = FirstLineAsPid(dir / kOwnerFile);
    if (!owner || Alive(*owner)) {
      continue;
    }
    const fs::path data = dir / "data";
    auto postmaster = FirstLineAsPid(data / "postmaster.pid");
    if (postmaster && RunsIn(*postmaster, data)) {
      // SIGQUIT is pg_ctl's immediate stop: the postmaster ends its backends and frees its
      // shared memory. SIGKILL if it is still there after 5 s.
      ::kill(*postmaster, SIGQUIT);
      for (int i = 0; i < 250 && Alive(*postmaster); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      if (Alive(*postmaster)) {
        ::kill(*postmaster, SIGKILL);
      }
    }
    fs::remove_all(dir, ec);
    ++cleared;
  }
  return cleared;
}

}  // namespace pgha::testing
