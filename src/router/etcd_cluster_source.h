// The router's ClusterSource over the etcd3 DCS client that the agent uses: its watch-fed cache
// of the cluster prefix, woken on every key.
#pragma once

#include "dcs/etcd3/etcd3_dcs.h"
#include "router/topology.h"

namespace pgha::router {

class EtcdClusterSource final : public ClusterSource {
 public:
  explicit EtcdClusterSource(dcs::etcd3::Etcd3Dcs& dcs) : dcs_(dcs) {}
  Result<model::ClusterSnapshot> CachedCluster() override { return dcs_.CachedCluster(); }
  Status Ping() override { return dcs_.Ping(); }
  MonoTime LastChangeAt() override { return dcs_.last_change_at(); }
  void SetChangeListener(std::function<void()> on_change) override {
    dcs_.SetChangeListener(std::move(on_change));
  }
  Status PublishRouter(const std::string& name, const std::string& value) override {
    return dcs_.KeepRouterKey(name, value);
  }

 private:
  dcs::etcd3::Etcd3Dcs& dcs_;
};

}  // namespace pgha::router
