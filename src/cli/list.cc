#include "cli/list.h"

#include "cli/views.h"

namespace pgha::cli {

Status ListMembers(const ListOptions& options, const std::string& configured_scope,
                   const ClusterReader& read_cluster, Terminal& terminal, const Clock& clock) {
  std::vector<std::string> names = options.clusters;
  if (names.empty()) {
    if (configured_scope.empty()) {
      terminal.PrintError("Listing members: No cluster names were provided\n");
      return OkStatus();
    }
    names.push_back(configured_scope);
  }
  std::string fmt = options.topology ? "topology" : options.fmt;
  return Watching(options.watch, true, terminal, clock, [&]() -> Status {
    if (options.timestamp) {
      terminal.Print(LocalTimestampSeconds(clock.WallNow()) + "\n");
    }
    for (const auto& name : names) {
      auto cluster = read_cluster(name);
      if (!cluster.ok()) {
        return cluster.error();
      }
      auto text =
          RenderTable(MembersTable(*cluster, name, options.extended, options.topology), fmt);
      if (!text.ok()) {
        return text.error();
      }
      terminal.Print(*text);
      if (fmt != "pretty" && fmt != "topology") {
        continue;
      }
      std::string lines;
      for (const auto& line : ServiceInfo(*cluster)) {
        lines += (lines.empty() ? " " : "\n ") + line;
      }
      if (!lines.empty()) {
        terminal.Print(lines + "\n");
      }
    }
    return OkStatus();
  });
}

}  // namespace pgha::cli
