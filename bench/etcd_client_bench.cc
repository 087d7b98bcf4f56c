// Round-trip of a lease keepalive and of a leader-race transaction against a local etcd, by
// pgha's etcd3 client and by etcdctl doing the same thing, in the same run.
//
// etcdctl is a new process per operation (that is how shell tooling and many health checks use
// it), so its figure includes process start-up and a gRPC connection; pgha's client keeps its
// HTTP connection. The ratio says what an agent gains by keeping a client in-process.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <map>
#include <memory>
#include <string>

#include "dcs/etcd3/client.h"
#include "support/etcd_cluster.h"

namespace {

using pgha::dcs::etcd3::ClientOptions;
using pgha::dcs::etcd3::Compare;
using pgha::dcs::etcd3::Etcd3Client;
using pgha::dcs::etcd3::Op;

std::unique_ptr<pgha::testing::EtcdCluster> g_cluster;
std::unique_ptr<Etcd3Client> g_client;
int64_t g_lease = 0;

std::string Endpoint() { return "http://" + g_cluster->Host(0); }

void BM_PghaKeepAlive(benchmark::State& state) {
  for (auto _ : state) {
    auto ttl = g_client->LeaseKeepAlive(g_lease);
    if (!ttl.ok() || *ttl <= 0) {
      state.SkipWithError("keepalive failed");
      break;
    }
  }
}

void BM_PghaLeaderTxn(benchmark::State& state) {
  int i = 0;
  for (auto _ : state) {
    std::string key = "/bench/leader" + std::to_string(i++ % 1000);
    auto txn = g_client->Txn(
        {Compare::Value(key, "pg-0")}, {Op::Put(key, "pg-0", g_lease)},
        {Op::Txn({Compare::CreateRevision(key, 0)}, {Op::Put(key, "pg-0", g_lease)}, {})});
    if (!txn.ok()) {
      state.SkipWithError("txn failed");
      break;
    }
  }
}

void BM_EtcdctlKeepAlive(benchmark::State& state) {
  char lease_hex[32];
  std::snprintf(lease_hex, sizeof(lease_hex), "%llx", static_cast<unsigned long long>(g_lease));
  for (auto _ : state) {
    std::string out;
    int rc = pgha::testing::RunCommand(
        {"etcdctl", "--endpoints=" + Endpoint(), "lease", "keep-alive", "--once", lease_hex}, &out,
        {{"ETCDCTL_API", "3"}});
    if (rc != 0) {
      state.SkipWithError(("etcdctl failed: " + out).c_str());
      break;
    }
  }
}

void BM_EtcdctlLeaderTxn(benchmark::State& state) {
  int i = 0;
  for (auto _ : state) {
    std::string key = "/bench/ctl" + std::to_string(i++ % 1000);
    // The same compare/success/failure shape, in etcdctl's txn syntax, fed on stdin.
    std::string script = "printf '%s' 'value(\"" + key + "\") = \"pg-0\"\n\nput " + key +
                         " pg-0\n\nput " + key + " pg-0\n\n' | etcdctl --endpoints=" + Endpoint() +
                         " txn >/dev/null";
    std::string out;
    int rc = pgha::testing::RunCommand({"sh", "-c", script}, &out, {{"ETCDCTL_API", "3"}});
    if (rc != 0) {
      state.SkipWithError(("etcdctl txn failed: " + out).c_str());
      break;
    }
  }
}

BENCHMARK(BM_PghaKeepAlive)->Unit(benchmark::kMicrosecond)->MinTime(2.0)->UseRealTime();
BENCHMARK(BM_EtcdctlKeepAlive)->Unit(benchmark::kMicrosecond)->MinTime(2.0)->UseRealTime();
BENCHMARK(BM_PghaLeaderTxn)->Unit(benchmark::kMicrosecond)->MinTime(2.0)->UseRealTime();
BENCHMARK(BM_EtcdctlLeaderTxn)->Unit(benchmark::kMicrosecond)->MinTime(2.0)->UseRealTime();

class CollectingReporter : public benchmark::ConsoleReporter {
 public:
  CollectingReporter() : ConsoleReporter(OO_Tabular) {}
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const auto& run : runs) {
      if (!run.error_occurred) {
        // "BM_PghaKeepAlive/min_time:2.000/real_time" -> "BM_PghaKeepAlive"
        std::string name = run.benchmark_name();
        per_op_us[name.substr(0, name.find('/'))] = run.GetAdjustedRealTime();
      }
    }
  }
  std::map<std::string, double> per_op_us;
};

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  g_cluster = std::make_unique<pgha::testing::EtcdCluster>(pgha::testing::EtcdClusterOptions{1});
  if (!g_cluster->ok()) {
    std::fprintf(stderr, "cannot start etcd: %s\n", g_cluster->error().c_str());
    return 1;
  }
  ClientOptions options;
  options.hosts = {g_cluster->Host(0)};
  g_client = std::make_unique<Etcd3Client>(options, pgha::dcs::etcd3::MakeHttplibTransport({}));
  auto lease = g_client->LeaseGrant(60);
  if (!lease.ok()) {
    std::fprintf(stderr, "lease grant failed: %s\n", lease.error().message().c_str());
    return 1;
  }
  g_lease = *lease;
  CollectingReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  auto ratio = [&](const char* ours, const char* peer) {
    auto a = reporter.per_op_us.find(ours);
    auto b = reporter.per_op_us.find(peer);
    if (a == reporter.per_op_us.end() || b == reporter.per_op_us.end()) {
      return;
    }
    std::printf("%-16s pgha %9.1f us   etcdctl %9.1f us   pgha/etcdctl = %.3f\n", ours + 7,
                a->second, b->second, a->second / b->second);
  };
  std::printf("\nround-trip per operation against one local etcd %s (same run):\n", "member");
  ratio("BM_PghaKeepAlive", "BM_EtcdctlKeepAlive");
  ratio("BM_PghaLeaderTxn", "BM_EtcdctlLeaderTxn");
  g_client.reset();
  g_cluster.reset();
  return 0;
}
