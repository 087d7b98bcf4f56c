#include "cli/pause.h"

#include <algorithm>

namespace pgha::cli {
namespace {

// How long --wait reads the member keys before it gives up.
constexpr int kMaxWaitRounds = 600;

Status WaitUntilEveryMemberShows(CtlContext& ctx, bool paused, double loop_wait) {
  for (int round = 0;; ++round) {
    auto now = ReadCluster(ctx);
    if (!now.ok()) {
      return now.error();
    }
    if (std::all_of(now->members.begin(), now->members.end(),
                    [&](const auto& m) { return m.is_paused() == paused; })) {
      return OkStatus();
    }
    if (round >= kMaxWaitRounds) {
      return Error::Timeout("members did not all report the change");
    }
    ctx.clock.SleepFor(std::chrono::duration_cast<std::chrono::nanoseconds>(
        std::chrono::duration<double>(loop_wait)));
  }
}

}  // namespace

Result<int> SetPaused(CtlContext& ctx, bool paused, bool wait) {
  auto cluster = ReadCluster(ctx);
  if (!cluster.ok()) {
    return cluster.error();
  }
  if (cluster->EffectiveConfig().is_paused() == paused) {
    return Error::Invalid(std::string("Cluster is ") + (paused ? "already" : "not") + " paused");
  }
  std::vector<const model::Member*> members;
  if (const auto* leader = cluster->LeaderMember(); leader && !leader->api_url().empty()) {
    members.push_back(leader);
  }
  for (const auto& m : cluster->members) {
    if (!m.api_url().empty() && (members.empty() || members.front() != &m)) {
      members.push_back(&m);
    }
  }
  const std::string verb = paused ? "pause" : "resume";
  for (const auto* member : members) {
    auto response = ctx.api.Call(member->api_url(), "PATCH", "/config",
                                 paused ? R"({"pause": true})" : R"({"pause": null})");
    if (!response.ok()) {
      ctx.terminal.PrintError(response.error().message() + "\nMember " + member->name +
                              " is not accessible\n");
      continue;
    }
    if (response->status != 200) {
      ctx.terminal.Print("Failed: " + verb + " cluster management status code=" +
                         std::to_string(response->status) + ", (" + response->body + ")\n");
      return 1;
    }
    if (wait) {
      ctx.terminal.Print("'" + verb +
                         "' request sent, waiting until it is recognized by all nodes\n");
      PGHA_RETURN_IF_ERROR(WaitUntilEveryMemberShows(
          ctx, paused, std::max(0.5, cluster->EffectiveConfig().loop_wait())));
    }
    ctx.terminal.Print(std::string("Success: cluster management is ") +
                       (paused ? "paused" : "resumed") + "\n");
    return 0;
  }
  return Error::Unavailable("Can not find accessible cluster member");
}

}  // namespace pgha::cli
