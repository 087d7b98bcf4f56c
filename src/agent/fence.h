// Fence: the agent's side of pgha-fence (apps/pgha_fence_main.cc), the separate process that
// kills PostgreSQL when this primary's leader lock may expire elsewhere and the agent has not
// renewed it — because the agent is frozen, killed or starved, and so can demote nothing itself.
//
// Thread-safety: Arm and Disarm from the loop's thread only.
#pragma once

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/result.h"

namespace pgha::agent {

class Fence {
 public:
  // Starts `program` for the node whose data directory is `data_dir`, first killing a fence a
  // previous agent of the same node left behind (it would fence at its predecessor's deadline).
  static Result<std::unique_ptr<Fence>> Start(const std::string& program,
                                              const std::string& data_dir);
  ~Fence();
  Fence(const Fence&) = delete;
  Fence& operator=(const Fence&) = delete;

  // PostgreSQL (`postmaster` and its backends) dies at `deadline` unless armed again before.
  void Arm(MonoTime deadline, pid_t postmaster);
  void Disarm();
  pid_t pid() const { return pid_; }

 private:
  Fence(pid_t pid, int socket) : pid_(pid), socket_(socket) {}
  void Send(const std::string& line);

  pid_t pid_;
  int socket_;
  std::string last_sent_;
  bool broken_ = false;
};

// What the agent does with its fence after a cycle.
struct FenceInput {
  bool primary_running = false;  // this node holds the lock and its PostgreSQL runs as primary
  bool paused = false;           // the operator runs things by hand (Patroni's watchdog is off too)
  std::optional<MonoTime> last_renewal;  // when the last successful lock renewal started
  // failsafe_mode with the DCS away: when every member last accepted this node as the leader.
  std::optional<MonoTime> failsafe_confirmed_at;
  double ttl = 30;
  double safety_margin = 5;
  MonoTime now;
};
struct FencePlan {
  enum class Kind { kDisarm, kLeaveAsIs, kArm };
  Kind kind = Kind::kDisarm;
  MonoTime deadline;  // kArm
};
FencePlan PlanFence(const FenceInput& in);

// Every running pgha-fence guarding `data_dir` (by its command line).
std::vector<pid_t> FencesFor(const std::string& data_dir);

}  // namespace pgha::agent
