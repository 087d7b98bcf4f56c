// pghactl list / topology: the members of one or more clusters, as patronictl prints them.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "cli/ctl.h"
#include "cli/watch.h"
#include "common/result.h"
#include "model/cluster.h"

namespace pgha::cli {

// A cluster's keys by its name: every cluster has its own prefix in the DCS.
using ClusterReader = std::function<Result<model::ClusterSnapshot>(const std::string& scope)>;

struct ListOptions {
  std::vector<std::string> clusters{};  // the configuration's scope when empty
  bool extended = false;                // -e
  bool timestamp = false;               // -t
  std::string fmt = "pretty";           // -f
  bool topology = false;                // `topology`: replicas under the member they follow
  WatchOptions watch{};
};

// With no cluster named and no scope configured, patronictl says so on stderr and succeeds.
Status ListMembers(const ListOptions& options, const std::string& configured_scope,
                   const ClusterReader& read_cluster, Terminal& terminal, const Clock& clock);

}  // namespace pgha::cli
