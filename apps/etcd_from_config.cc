#include "apps/etcd_from_config.h"

#include <chrono>

namespace pgha::apps {

std::shared_ptr<dcs::etcd3::Etcd3Client> MakeEtcdClient(const config::Etcd3Config& etcd3,
                                                        double retry_timeout_seconds) {
  namespace e = dcs::etcd3;
  e::ClientOptions options;
  options.hosts = etcd3.hosts;
  options.protocol = etcd3.protocol;
  options.username = etcd3.username;
  options.password = etcd3.password;
  options.discover_members = !etcd3.use_proxies;
  options.request_timeout =
      std::chrono::milliseconds(static_cast<int64_t>(retry_timeout_seconds * 1000));
  e::TlsOptions tls{etcd3.cacert, etcd3.cert, etcd3.key, true};
  return std::make_shared<e::Etcd3Client>(options, e::MakeHttplibTransport(tls));
}

}  // namespace pgha::apps
