// EtcdCluster: a real etcd cluster (Debian's etcd-server) on loopback, on ephemeral ports, in a
// temporary directory, for integration tests. Members can be killed and restarted; the
// destructor kills every member it started and removes the directory.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "support/process.h"

namespace pgha::testing {

struct EtcdClusterOptions {
  int members = 3;
  bool tls = false;   // client URLs over https, client certificates required
  bool auth = false;  // enable etcd auth with user root / password "root-password"
  // How many members start at once (the others with StartMember); -1 for all of them.
  int started_members = -1;
};

class EtcdCluster {
 public:
  explicit EtcdCluster(EtcdClusterOptions options = {});
  ~EtcdCluster();

  // False when the cluster could not be started; `error()` says why.
  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }

  // "127.0.0.1:port" of each member's client URL.
  std::vector<std::string> Hosts() const;
  std::string Host(int member) const;
  std::string Protocol() const { return options_.tls ? "https" : "http"; }

  void KillMember(int member);
  // SIGSTOP / SIGCONT: a stopped member keeps its connections open and answers nothing, as a
  // member behind a partition that drops packets.
  void SignalMember(int member, int signal);
  bool StartMember(int member);
  // Waits until `member` (or, with -1, every running member) answers a health check.
  bool WaitHealthy(int member = -1, int timeout_ms = 20000);

  // TLS material (when options.tls).
  std::string ca_file() const { return dir_->path() + "/ca.pem"; }
  std::string client_cert() const { return dir_->path() + "/client.pem"; }
  std::string client_key() const { return dir_->path() + "/client-key.pem"; }

  static constexpr const char* kRootPassword = "root-password";

 private:
  bool MakeCertificates();
  std::vector<std::string> EtcdctlArgs(const std::string& endpoints) const;

  EtcdClusterOptions options_;
  std::unique_ptr<TempDirectory> dir_;
  std::vector<int> client_ports_;
  std::vector<int> peer_ports_;
  std::vector<std::unique_ptr<ChildProcess>> processes_;
  bool ok_ = false;
  std::string error_;
};

}  // namespace pgha::testing
