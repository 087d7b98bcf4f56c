#include "support/pgha_cluster.h"

#include <pwd.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <thread>

#include "support/ports.h"

namespace pgha::testing {

namespace fs = std::filesystem;
using std::chrono::milliseconds;

namespace {

// Recursively hands a directory to the postgres user: PostgreSQL refuses to run as root.
bool ChownToPostgres(const std::string& path) {
  passwd* pw = ::getpwnam("postgres");
  if (pw == nullptr) {
    return false;
  }
  if (::chown(path.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
    return false;
  }
  std::error_code ec;
  for (const auto& entry : fs::recursive_directory_iterator(path, ec)) {
    (void)::lchown(entry.path().c_str(), pw->pw_uid, pw->pw_gid);
  }
  return true;
}

}  // namespace

std::string PghaBinary() { return PGHA_BINARY; }

PghaCluster::PghaCluster(std::string pgha_binary, PghaClusterOptions options)
    : binary_(std::move(pgha_binary)),
      options_(options),
      dir_(std::make_unique<TempDirectory>("pgha-cluster")) {
  scope_ = "pgha-test-" + std::to_string(::getpid());
  if (dir_->path().empty()) {
    error_ = "cannot create a temporary directory";
    return;
  }
  ::chmod(dir_->path().c_str(), 0755);
  etcd_ = std::make_unique<EtcdCluster>(EtcdClusterOptions{options_.etcd_members, false, false});
  if (!etcd_->ok()) {
    error_ = "etcd: " + etcd_->error();
    return;
  }
  for (int i = 0; i < options_.nodes; ++i) {
    pg_ports_.push_back(FreePort());
    api_ports_.push_back(FreePort());
    agents_.push_back(std::make_unique<ChildProcess>());
    fs::create_directories(dir_->path() + "/" + Name(i));
    WriteConfig(i);
  }
  if (::geteuid() == 0 && !ChownToPostgres(dir_->path())) {
    error_ = "cannot hand the test directory to the postgres user";
  }
}

PghaCluster::~PghaCluster() {
  for (int i = 0; i < static_cast<int>(agents_.size()); ++i) {
    agents_[i]->Kill();
    int pid = PostmasterPid(i);
    if (pid > 0) {
      ::kill(pid, SIGKILL);
    }
  }
  // Give the killed postmasters' backends a moment to exit before the directory goes.
  std::this_thread::sleep_for(milliseconds(200));
}

std::string PghaCluster::DataDir(int node) const {
  return dir_->path() + "/" + Name(node) + "/data";
}

std::string PghaCluster::ConfigPath(int node) const {
  return dir_->path() + "/" + Name(node) + ".yml";
}

std::string PghaCluster::Log(int node) const {
  std::ifstream in(dir_->path() + "/" + Name(node) + ".log");
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::string PghaCluster::PostgresLog(int node, size_t max_bytes) const {
  std::ifstream in(dir_->path() + "/" + Name(node) + "/postgresql-" + Name(node) + ".log");
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return all.size() > max_bytes ? all.substr(all.size() - max_bytes) : all;
}

// The configuration comes from the generator `make up`, the containers and the chaos harness use
// (scripts/topology_config.sh), so that these tests run what users run; only the test's own
// settings (timings, extra DCS keys, a small and unsynced PostgreSQL) are passed in.
void PghaCluster::WriteConfig(int node) {
  std::string hosts;
  for (const auto& h : etcd_->Hosts()) {
    hosts += (hosts.empty() ? "" : ",") + h;
  }
  std::string extra_dcs;
  for (const auto& line : options_.extra_dcs) {
    extra_dcs += line + "\n";
  }
  auto number = [](double value) {
    std::ostringstream out;
    out << value;
    return out.str();
  };
  std::string rest = "127.0.0.1:" + std::to_string(api_ports_[node]);
  std::string pg = "127.0.0.1:" + std::to_string(pg_ports_[node]);
  std::string node_dir = dir_->path() + "/" + Name(node);
  std::map<std::string, std::string> env = {
      {"CONFIG_ORIGIN", "the integration tests' PghaCluster"},
      {"NODE_NAME", Name(node)},
      {"SCOPE", scope_},
      {"ETCD_HOSTS", hosts},
      {"REST_LISTEN", rest},
      {"REST_CONNECT", rest},
      {"RESTAPI_USER", "admin"},
      {"RESTAPI_PASSWORD", "test-rest-pw"},
      {"PG_LISTEN", pg},
      {"PG_CONNECT", pg},
      {"DATA_DIR", DataDir(node)},
      {"PG_BIN", "/usr/lib/postgresql/15/bin"},
      {"PGPASS_FILE", node_dir + "/pgpass"},
      {"POSTGRES_USER", "postgres"},
      {"POSTGRES_PASSWORD", kSuperuserPassword},
      {"REPLICATION_USER", "replicator"},
      {"REPLICATION_PASSWORD", "repl-pw"},
      {"REWIND_USER", "rewind_user"},
      {"REWIND_PASSWORD", "rewind-pw"},
      {"CLIENT_NETWORK", "127.0.0.1/32"},
      {"PGHA_TTL", number(options_.ttl)},
      {"PGHA_LOOP_WAIT", number(options_.loop_wait)},
      {"PGHA_RETRY_TIMEOUT", number(options_.retry_timeout)},
      {"PGHA_USE_PG_REWIND", options_.use_pg_rewind ? "true" : "false"},
      {"PGHA_WAL_KEEP_SIZE", "64MB"},
      {"PGHA_LOCAL_AUTH", "trust"},
      {"PGHA_EXTRA_DCS", extra_dcs},
      {"PGHA_LOCAL_PARAMETERS", "shared_buffers: 16MB\nfsync: 'off'\n"},
  };
  std::string config;
  int rc = RunCommand({"bash", "-c", ". \"$0\" && node_config",
                       std::string(PGHA_SOURCE_DIR) + "/scripts/topology_config.sh"},
                      &config, env);
  if (rc != 0) {
    error_ =
        "scripts/topology_config.sh node_config failed (" + std::to_string(rc) + "): " + config;
    return;
  }
  std::ofstream(ConfigPath(node)) << config;
}

bool PghaCluster::StartNode(int node) {
  std::vector<std::string> argv;
  if (::geteuid() == 0) {
    argv = {"runuser", "-u", "postgres", "--"};
  }
  argv.push_back(binary_);
  argv.push_back(ConfigPath(node));
  return agents_[node]->Start(argv, dir_->path() + "/" + Name(node) + ".log");
}

int PghaCluster::PostmasterPid(int node) const {
  std::ifstream in(DataDir(node) + "/postmaster.pid");
  int pid = 0;
  if (in >> pid) {
    return pid;
  }
  return 0;
}

void PghaCluster::KillNode(int node) {
  int pid = PostmasterPid(node);
  agents_[node]->Kill();
  if (pid > 0) {
    ::kill(pid, SIGKILL);
  }
}

void PghaCluster::SignalAgent(int node, int signal) { agents_[node]->Signal(signal); }

void PghaCluster::KillPostmaster(int node) {
  int pid = PostmasterPid(node);
  if (pid > 0) {
    ::kill(pid, SIGKILL);
  }
}

void PghaCluster::StopNode(int node, std::chrono::seconds grace) { agents_[node]->Stop(grace); }

std::string PghaCluster::Leader() const { return DcsValue("leader"); }

std::string PghaCluster::DcsValue(const std::string& name) const {
  std::string out;
  std::vector<std::string> argv = {"etcdctl",
                                   "--endpoints=" + etcd_->Hosts()[0] + "," + etcd_->Hosts().back(),
                                   "--command-timeout=2s",
                                   "get",
                                   "--print-value-only",
                                   "/service/" + scope_ + "/" + name};
  if (RunCommand(argv, &out, {{"ETCDCTL_API", "3"}}) != 0) {
    return "";
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) {
    out.pop_back();
  }
  return out;
}

std::optional<std::string> PghaCluster::Sql(int node, const std::string& sql, int timeout_s) const {
  std::string out;
  std::string conninfo =
      "host=127.0.0.1 port=" + std::to_string(pg_ports_[node]) +
      " user=postgres dbname=postgres connect_timeout=" + std::to_string(timeout_s);
  int rc = RunCommand({"psql", conninfo, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql},
                      &out, {{"PGPASSWORD", kSuperuserPassword}});
  if (rc != 0) {
    return std::nullopt;
  }
  std::string joined;
  size_t start = 0;
  while (start < out.size()) {
    size_t end = out.find('\n', start);
    std::string line =
        out.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (!line.empty()) {
      joined += (joined.empty() ? "" : ",") + line;
    }
    if (end == std::string::npos) {
      break;
    }
    start = end + 1;
  }
  return joined;
}

int PghaCluster::HttpStatus(int node, const std::string& path, const std::string& method) const {
  std::string out;
  RunCommand({"curl", "-s", "-o", "/dev/null", "-m", "3", "-w", "%{http_code}", "-X", method,
              "http://127.0.0.1:" + std::to_string(api_ports_[node]) + path},
             &out);
  try {
    return std::stoi(out);
  } catch (...) {
    return 0;
  }
}

std::string PghaCluster::HttpBody(int node, const std::string& path) const {
  std::string out;
  RunCommand(
      {"curl", "-s", "-m", "3", "http://127.0.0.1:" + std::to_string(api_ports_[node]) + path},
      &out);
  return out;
}

int PghaCluster::WaitForWritablePrimary(milliseconds timeout, int exclude) {
  int found = -1;
  WaitUntil(
      [&] {
        std::string leader = Leader();
        for (int i = 0; i < options_.nodes; ++i) {
          if (i == exclude || leader != Name(i)) {
            continue;
          }
          auto r =
              Sql(i, "CREATE TABLE IF NOT EXISTS pgha_probe(x int); SELECT pg_is_in_recovery()", 1);
          if (r && r->find('f') != std::string::npos) {
            found = i;
            return true;
          }
        }
        return false;
      },
      timeout);
  return found;
}

int PghaCluster::StartAndWaitForReplication(std::string* why, milliseconds timeout) {
  for (int i = 0; i < options_.nodes; ++i) {
    if (!StartNode(i)) {
      *why = Name(i) + " did not start";
      return -1;
    }
  }
  int primary = WaitForWritablePrimary(timeout);
  if (primary < 0) {
    *why = "no writable primary; log of " + Name(0) + ":\n" + Log(0);
    return -1;
  }
  for (int i = 0; i < options_.nodes; ++i) {
    if (i != primary && !WaitForStreamingReplica(i, timeout)) {
      *why = Name(i) + " does not stream; its log:\n" + Log(i);
      return -1;
    }
  }
  return primary;
}

std::string PghaCluster::AllLogs() const {
  std::string all;
  for (int i = 0; i < options_.nodes; ++i) {
    all += "----- log of " + Name(i) + "\n" + Log(i);
  }
  return all;
}

bool PghaCluster::WaitForStreamingReplica(int node, milliseconds timeout) {
  return WaitUntil(
      [&] {
        auto r = Sql(node, "SELECT status FROM pg_stat_wal_receiver", 1);
        return r && *r == "streaming";
      },
      timeout);
}

}  // namespace pgha::testing
