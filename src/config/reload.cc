#include "config/reload.h"

namespace pgha::config {

Reloaded MergeReload(const Config& running, Config fresh) {
  Reloaded out;
  auto keep = [&out](const char* what, bool changed) {
    if (changed) {
      out.kept.emplace_back(what);
    }
  };
  auto section = [](const Config& config, const char* name) {
    return config.raw.value(name, nlohmann::json());
  };
  keep("name", fresh.name != running.name);
  keep("scope", fresh.scope != running.scope);
  keep("namespace", fresh.namespace_ != running.namespace_);
  keep("postgresql.data_dir", fresh.postgresql.data_dir != running.postgresql.data_dir);
  keep("etcd3", section(fresh, "etcd3") != section(running, "etcd3"));
  keep("restapi", section(fresh, "restapi") != section(running, "restapi"));
  fresh.name = running.name;
  fresh.scope = running.scope;
  fresh.namespace_ = running.namespace_;
  fresh.postgresql.data_dir = running.postgresql.data_dir;
  fresh.etcd3 = running.etcd3;
  fresh.restapi = running.restapi;
  // The raw sections too, so that GET /config-like views and the next reload see what runs.
  for (const char* name : {"etcd3", "restapi"}) {
    if (running.raw.contains(name)) {
      fresh.raw[name] = running.raw[name];
    } else {
      fresh.raw.erase(name);
    }
  }
  // bootstrap only matters before the cluster exists; the watchdog device is opened once.
  fresh.bootstrap = running.bootstrap;
  fresh.watchdog = running.watchdog;
  out.config = std::move(fresh);
  return out;
}

}  // namespace pgha::config
