// What a reload (SIGHUP, POST /reload) may change: everything but the settings that name the node
// or where it keeps its data and talks to others. Those keep their running values until pgha
// restarts, as Patroni's do; the reload says which ones it kept.
#pragma once

#include <string>
#include <vector>

#include "config/config.h"

namespace pgha::config {

struct Reloaded {
  Config config;  // `fresh` with the running values of what needs a restart
  // The settings that differ in `fresh` but need a restart of pgha ("name", "etcd3", ...).
  std::vector<std::string> kept;
};

Reloaded MergeReload(const Config& running, Config fresh);

}  // namespace pgha::config
