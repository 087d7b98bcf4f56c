#include "support/etcd_cluster.h"

#include <filesystem>
#include <thread>

#include "support/ports.h"

namespace pgha::testing {

EtcdCluster::EtcdCluster(EtcdClusterOptions options)
    : options_(options), dir_(std::make_unique<TempDirectory>("pgha-etcd")) {
  if (dir_->path().empty()) {
    error_ = "cannot create a temporary directory";
    return;
  }
  if (options_.tls && !MakeCertificates()) {
    return;
  }
  for (int i = 0; i < options_.members; ++i) {
    client_ports_.push_back(FreePort());
    peer_ports_.push_back(FreePort());
    processes_.push_back(std::make_unique<ChildProcess>());
  }
  int started = options_.started_members < 0 ? options_.members : options_.started_members;
  for (int i = 0; i < started; ++i) {
    if (!StartMember(i)) {
      return;
    }
  }
  if (!WaitHealthy()) {
    error_ = "etcd did not become healthy; logs in " + dir_->path();
    return;
  }
  if (options_.auth) {
    std::string out;
    auto args = EtcdctlArgs(Host(0));
    auto add = args;
    add.insert(add.end(), {"user", "add", std::string("root:") + kRootPassword});
    auto grant = args;
    grant.insert(grant.end(), {"user", "grant-role", "root", "root"});
    auto enable = args;
    enable.insert(enable.end(), {"auth", "enable"});
    if (RunCommand(add, &out) != 0 || RunCommand(grant, &out) != 0 ||
        RunCommand(enable, &out) != 0) {
      error_ = "enabling etcd auth failed: " + out;
      return;
    }
  }
  ok_ = true;
}

EtcdCluster::~EtcdCluster() {
  for (auto& p : processes_) {
    p->Kill();
  }
  processes_.clear();
}

std::vector<std::string> EtcdCluster::Hosts() const {
  std::vector<std::string> hosts;
  for (int i = 0; i < options_.members; ++i) {
    hosts.push_back(Host(i));
  }
  return hosts;
}

std::string EtcdCluster::Host(int member) const {
  return "127.0.0.1:" + std::to_string(client_ports_[member]);
}

std::vector<std::string> EtcdCluster::EtcdctlArgs(const std::string& endpoints) const {
  std::vector<std::string> args = {"etcdctl", "--endpoints=" + Protocol() + "://" + endpoints,
                                   "--command-timeout=2s", "--dial-timeout=1s"};
  if (options_.tls) {
    args.insert(args.end(),
                {"--cacert=" + ca_file(), "--cert=" + client_cert(), "--key=" + client_key()});
  }
  return args;
}

bool EtcdCluster::StartMember(int member) {
  std::string name = "m" + std::to_string(member);
  std::string initial;
  for (int i = 0; i < options_.members; ++i) {
    initial += (i ? "," : "") + std::string("m") + std::to_string(i) +
               "=http://127.0.0.1:" + std::to_string(peer_ports_[i]);
  }
  std::string data = dir_->path() + "/" + name;
  bool existing = std::filesystem::exists(data + "/member");
  std::string client_url = Protocol() + "://" + Host(member);
  std::vector<std::string> argv = {
      "etcd",
      "--name=" + name,
      "--data-dir=" + data,
      "--listen-client-urls=" + client_url,
      "--advertise-client-urls=" + client_url,
      "--listen-peer-urls=http://127.0.0.1:" + std::to_string(peer_ports_[member]),
      "--initial-advertise-peer-urls=http://127.0.0.1:" + std::to_string(peer_ports_[member]),
      "--initial-cluster=" + initial,
      "--initial-cluster-token=pgha-test-" + std::to_string(client_ports_[0]),
      "--initial-cluster-state=" + std::string(existing ? "existing" : "new"),
      "--heartbeat-interval=100",
      "--election-timeout=1000",
      "--logger=zap",
      "--log-level=warn",
  };
  if (options_.tls) {
    argv.insert(argv.end(), {"--cert-file=" + dir_->path() + "/server.pem",
                             "--key-file=" + dir_->path() + "/server-key.pem",
                             "--trusted-ca-file=" + ca_file(), "--client-cert-auth"});
  }
  if (!processes_[member]->Start(argv, dir_->path() + "/" + name + ".log",
                                 {{"ETCD_UNSUPPORTED_ARCH", ""}})) {
    error_ = "cannot start etcd (is etcd-server installed?)";
    return false;
  }
  return true;
}

void EtcdCluster::KillMember(int member) { processes_[member]->Kill(); }

void EtcdCluster::SignalMember(int member, int signal) { processes_[member]->Signal(signal); }

bool EtcdCluster::WaitHealthy(int member, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    bool all = true;
    for (int i = 0; i < options_.members; ++i) {
      if ((member >= 0 && i != member) || !processes_[i]->Running()) {
        continue;
      }
      auto args = EtcdctlArgs(Host(i));
      args.insert(args.end(), {"endpoint", "health"});
      std::string out;
      if (RunCommand(args, &out, {{"ETCDCTL_API", "3"}}) != 0) {
        all = false;
        break;
      }
    }
    if (all) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

bool EtcdCluster::MakeCertificates() {
  const std::string d = dir_->path();
  auto run = [&](std::vector<std::string> argv) {
    std::string out;
    if (RunCommand(argv, &out) != 0) {
      error_ = "openssl failed: " + out;
      return false;
    }
    return true;
  };
  std::string ext = d + "/san.cnf";
  {
    FILE* f = std::fopen(ext.c_str(), "w");
    if (f == nullptr) {
      error_ = "cannot write " + ext;
      return false;
    }
    std::fputs("subjectAltName=IP:127.0.0.1,DNS:localhost\n", f);
    std::fclose(f);
  }
  return run({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
              "/CN=pgha-test-ca", "-keyout", d + "/ca-key.pem", "-out", d + "/ca.pem"}) &&
         run({"openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
              "-keyout", d + "/server-key.pem", "-out", d + "/server.csr"}) &&
         run({"openssl", "x509", "-req", "-in", d + "/server.csr", "-CA", d + "/ca.pem", "-CAkey",
              d + "/ca-key.pem", "-CAcreateserial", "-days", "2", "-extfile", ext, "-out",
              d + "/server.pem"}) &&
         run({"openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=root", "-keyout",
              d + "/client-key.pem", "-out", d + "/client.csr"}) &&
         run({"openssl", "x509", "-req", "-in", d + "/client.csr", "-CA", d + "/ca.pem", "-CAkey",
              d + "/ca-key.pem", "-CAcreateserial", "-days", "2", "-out", d + "/client.pem"});
}

}  // namespace pgha::testing
