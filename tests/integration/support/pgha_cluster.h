// PghaCluster: a real pgha cluster for integration tests — an etcd cluster, and N nodes of
// (pgha + PostgreSQL 15) running as the postgres OS user, on ephemeral loopback ports, in a
// temporary directory. Nodes can be killed (agent and postmaster), stopped and restarted. The
// destructor kills every agent and postmaster it started and removes the directory.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "support/etcd_cluster.h"
#include "support/process.h"

namespace pgha::testing {

struct PghaClusterOptions {
  int nodes = 3;
  int etcd_members = 3;
  double ttl = 6;
  double loop_wait = 1;
  double retry_timeout = 2;
  bool use_pg_rewind = true;
  // More bootstrap.dcs settings, one "key: value" per line (e.g. "synchronous_mode: true").
  std::vector<std::string> extra_dcs;
};

class PghaCluster {
 public:
  PghaCluster(std::string pgha_binary, PghaClusterOptions options = {});
  ~PghaCluster();

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }

  std::string Name(int node) const { return "pg-" + std::to_string(node); }
  int PgPort(int node) const { return pg_ports_[node]; }
  int ApiPort(int node) const { return api_ports_[node]; }
  std::string DataDir(int node) const;
  std::string ConfigPath(int node) const;
  EtcdCluster& etcd() { return *etcd_; }
  const std::string& scope() const { return scope_; }

  bool StartNode(int node);
  // SIGKILL to the agent and to its postmaster at once (a node crash).
  void KillNode(int node);
  // SIGKILL to the postmaster only; the agent lives on.
  void KillPostmaster(int node);
  // A signal to the agent alone (SIGSTOP / SIGCONT to freeze and thaw it).
  void SignalAgent(int node, int signal);
  // SIGTERM to the agent; waits for it to exit.
  void StopNode(int node, std::chrono::seconds grace = std::chrono::seconds(60));

  // The leader key's value ("" when none or unreadable).
  std::string Leader() const;
  // The value of the cluster's key `name` ("leader", "sync", ...); "" when none or unreadable.
  std::string DcsValue(const std::string& name) const;
  // Waits until some node holds the lock and accepts writes; returns it (or -1).
  int WaitForWritablePrimary(std::chrono::milliseconds timeout, int exclude = -1);
  // Waits until `node` runs as a replica that streams from the current leader.
  bool WaitForStreamingReplica(int node, std::chrono::milliseconds timeout);
  // Starts every node and waits until one is a writable primary and the others stream; returns
  // the primary, or -1 with `why` saying what did not happen (and that node's log).
  int StartAndWaitForReplication(std::string* why,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(60));
  // Every node's agent log under a heading, for a failed test's output.
  std::string AllLogs() const;

  // Runs SQL on a node as the superuser; nullopt when it fails. Returns the first column of
  // every row joined by ','.
  std::optional<std::string> Sql(int node, const std::string& sql, int timeout_s = 3) const;
  // HTTP status of `method path` on a node's REST API (0 when unreachable).
  int HttpStatus(int node, const std::string& path, const std::string& method = "GET") const;
  std::string HttpBody(int node, const std::string& path) const;
  std::string Log(int node) const;
  // The last lines of the node's PostgreSQL server log.
  std::string PostgresLog(int node, size_t max_bytes = 6000) const;

  static constexpr const char* kSuperuserPassword = "test-superuser-pw";

 private:
  void WriteConfig(int node);
  int PostmasterPid(int node) const;

  std::string binary_;
  PghaClusterOptions options_;
  std::string scope_;
  std::unique_ptr<TempDirectory> dir_;
  std::unique_ptr<EtcdCluster> etcd_;
  std::vector<int> pg_ports_;
  std::vector<int> api_ports_;
  std::vector<std::unique_ptr<ChildProcess>> agents_;
  std::string error_;
};

// The pgha binary next to the test binary's build tree (set by CMake).
std::string PghaBinary();

}  // namespace pgha::testing
