// Builds the etcd3 client the way both pgha and pghactl read the `etcd3` section.
#pragma once

#include <memory>

#include "config/config.h"
#include "dcs/etcd3/client.h"

namespace pgha::apps {

std::shared_ptr<dcs::etcd3::Etcd3Client> MakeEtcdClient(const config::Etcd3Config& etcd3,
                                                        double retry_timeout_seconds);

}  // namespace pgha::apps
