// Failover timings of a 3-node pgha cluster (real etcd, real PostgreSQL 15), over several
// trials: from the fault to the first successful write on a primary.
//   node crash       kill -9 of the primary's agent and postmaster together
//   graceful stop    SIGTERM to the primary's agent
//   postmaster crash kill -9 of the primary's postmaster only; the agent lives
// Usage: failover_bench [--ttl 6] [--loop-wait 1] [--retry-timeout 2] [--trials 3]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "postgres/connection.h"
#include "support/pgha_cluster.h"

namespace {

using pgha::testing::PghaCluster;
using Clock = std::chrono::steady_clock;

bool TryWrite(PghaCluster& cluster, int node) {
  std::string conninfo = "host=127.0.0.1 port=" + std::to_string(cluster.PgPort(node)) +
                         " user=postgres dbname=postgres connect_timeout=1 password=" +
                         PghaCluster::kSuperuserPassword;
  auto conn = pgha::postgres::Connection::Open(conninfo);
  return conn.ok() && (*conn)->Execute("INSERT INTO bench_writes VALUES (now())").ok();
}

// Polls every node (but `skip`) every 20 ms until one takes a write; returns seconds.
double SecondsToFirstWrite(PghaCluster& cluster, Clock::time_point fault, int skip) {
  while (Clock::now() - fault < std::chrono::seconds(180)) {
    for (int i = 0; i < 3; ++i) {
      if (i != skip && TryWrite(cluster, i)) {
        return std::chrono::duration<double>(Clock::now() - fault).count();
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return -1;
}

int CurrentPrimary(PghaCluster& cluster) {
  return cluster.WaitForWritablePrimary(std::chrono::seconds(120));
}

bool Heal(PghaCluster& cluster, int node) {
  if (!cluster.StartNode(node)) {
    return false;
  }
  return cluster.WaitForStreamingReplica(node, std::chrono::seconds(120));
}

struct Series {
  const char* name;
  std::vector<double> seconds;
};

void Print(const Series& s) {
  if (s.seconds.empty()) {
    std::printf("%-18s no successful trial\n", s.name);
    return;
  }
  auto sorted = s.seconds;
  std::sort(sorted.begin(), sorted.end());
  std::printf("%-18s median %6.2f s   min %6.2f s   max %6.2f s   (%zu trials)\n", s.name,
              sorted[sorted.size() / 2], sorted.front(), sorted.back(), sorted.size());
}

}  // namespace

int main(int argc, char** argv) {
  pgha::testing::PghaClusterOptions options;
  int trials = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    double value = std::atof(argv[i + 1]);
    if (flag == "--ttl") {
      options.ttl = value;
    } else if (flag == "--loop-wait") {
      options.loop_wait = value;
    } else if (flag == "--retry-timeout") {
      options.retry_timeout = value;
    } else if (flag == "--trials") {
      trials = static_cast<int>(value);
    }
  }
  PghaCluster cluster(pgha::testing::PghaBinary(), options);
  if (!cluster.ok()) {
    std::fprintf(stderr, "cannot build the cluster: %s\n", cluster.error().c_str());
    return 1;
  }
  for (int i = 0; i < 3; ++i) {
    cluster.StartNode(i);
  }
  int primary = CurrentPrimary(cluster);
  if (primary < 0) {
    std::fprintf(stderr, "no primary\n");
    return 1;
  }
  for (int i = 0; i < 3; ++i) {
    if (i != primary && !cluster.WaitForStreamingReplica(i, std::chrono::seconds(120))) {
      std::fprintf(stderr, "%s does not stream\n", cluster.Name(i).c_str());
      return 1;
    }
  }
  (void)cluster.Sql(primary, "CREATE TABLE bench_writes(at timestamptz)");
  Series crash{"node crash", {}};
  Series term{"graceful stop", {}};
  Series postmaster{"postmaster crash", {}};
  for (int t = 0; t < trials; ++t) {
    primary = CurrentPrimary(cluster);
    auto fault = Clock::now();
    cluster.KillNode(primary);
    double s = SecondsToFirstWrite(cluster, fault, primary);
    if (s >= 0) {
      crash.seconds.push_back(s);
    }
    Heal(cluster, primary);

    primary = CurrentPrimary(cluster);
    fault = Clock::now();
    std::thread stopper([&] { cluster.StopNode(primary); });
    s = SecondsToFirstWrite(cluster, fault, primary);
    stopper.join();
    if (s >= 0) {
      term.seconds.push_back(s);
    }
    Heal(cluster, primary);

    primary = CurrentPrimary(cluster);
    fault = Clock::now();
    cluster.KillPostmaster(primary);
    s = SecondsToFirstWrite(cluster, fault, -1);
    if (s >= 0) {
      postmaster.seconds.push_back(s);
    }
    CurrentPrimary(cluster);
  }
  std::printf("\npgha, 3 nodes, ttl=%g loop_wait=%g retry_timeout=%g: fault -> first write\n",
              options.ttl, options.loop_wait, options.retry_timeout);
  Print(crash);
  Print(term);
  Print(postmaster);
  return 0;
}
