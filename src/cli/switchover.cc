#include "cli/switchover.h"

#include <fmt/format.h>

#include <algorithm>

#include "common/time_format.h"
#include "model/codec.h"

namespace pgha::cli {
namespace {

struct Plan {
  std::string leader;
  std::string candidate;
  std::optional<WallTime> scheduled_at;
};

std::vector<std::string> Candidates(const model::ClusterSnapshot& cluster,
                                    const std::string& leader) {
  std::vector<std::string> candidates;
  for (const auto& m : cluster.members) {
    if (m.name != leader && !m.nofailover()) {
      candidates.push_back(m.name);
    }
  }
  std::sort(candidates.begin(), candidates.end());
  return candidates;
}

// The checks and prompts of patronictl's _do_failover_or_switchover, in its order.
Result<Plan> Decide(CtlContext& ctx, const model::ClusterSnapshot& cluster, Handover kind,
                    HandoverOptions o) {
  const bool switchover = kind == Handover::kSwitchover;
  const std::string action = switchover ? "switchover" : "failover";
  const std::string title = switchover ? "Switchover" : "Failover";
  std::string current = cluster.leader ? cluster.leader->name : "";
  if (switchover && current.empty()) {
    return Error::Invalid("This cluster has no leader");
  }
  if (o.leader.empty()) {
    if (o.force || !switchover) {
      o.leader = current;
    } else {
      auto answer = Prompt(ctx, "Primary", current);
      if (!answer.ok()) {
        return answer.error();
      }
      o.leader = *answer;
    }
  }
  if (!o.leader.empty() && !current.empty() && o.leader != current) {
    return Error::Invalid("Member " + o.leader + " is not the leader of cluster " + ctx.scope);
  }
  auto candidates = Candidates(cluster, o.leader);
  if (candidates.empty()) {
    return Error::Invalid("No candidates found to " + action + " to");
  }
  if (o.candidate.empty() && !o.force) {
    std::string listed;
    for (const auto& c : candidates) {
      listed += (listed.empty() ? "'" : ", '") + c + "'";
    }
    auto answer = Prompt(ctx, "Candidate [" + listed + "]", "");
    if (!answer.ok()) {
      return answer.error();
    }
    o.candidate = *answer;
  }
  if (!switchover && o.candidate.empty()) {
    return Error::Invalid("Failover could be performed only to a specific candidate");
  }
  if (!o.candidate.empty() && o.candidate == o.leader) {
    return Error::Invalid(title + " target and source are the same.");
  }
  if (!o.candidate.empty() &&
      std::find(candidates.begin(), candidates.end(), o.candidate) == candidates.end()) {
    return Error::Invalid("Member " + o.candidate + " does not exist in cluster " + ctx.scope);
  }
  Plan plan{o.leader, o.candidate, std::nullopt};
  if (switchover) {
    if (!o.scheduled_given && !o.force) {
      std::string example =
          FormatLocalTime(ctx.clock.WallNow() + std::chrono::hours(1), "%Y-%m-%dT%H:%M");
      auto answer =
          Prompt(ctx, std::string("When should the switchover take place (e.g. ") + example + " ) ",
                 "now");
      if (!answer.ok()) {
        return answer.error();
      }
      o.scheduled = *answer;
    }
    auto scheduled = ParseScheduled(o.scheduled);
    if (!scheduled.ok()) {
      return scheduled.error();
    }
    plan.scheduled_at = *scheduled;
    if (plan.scheduled_at && cluster.EffectiveConfig().is_paused()) {
      return Error::Invalid("Can't schedule switchover in the paused state");
    }
  }
  if (!o.force) {
    std::string demote = o.leader.empty() ? "" : ", demoting current leader " + o.leader;
    Status confirmed =
        plan.scheduled_at
            ? Confirm(ctx,
                      "Are you sure you want to schedule " + action + " of cluster " + ctx.scope +
                          " at " + FormatIsoTimestamp(*plan.scheduled_at) + demote + "?",
                      "Aborting scheduled " + action)
            : Confirm(ctx,
                      "Are you sure you want to " + action + " cluster " + ctx.scope + demote + "?",
                      "Aborting " + action);
    if (!confirmed.ok()) {
      return confirmed.error();
    }
  }
  return plan;
}

nlohmann::json TextOrNull(const std::string& text) {
  return text.empty() ? nlohmann::json(nullptr) : nlohmann::json(text);
}

}  // namespace

Result<int> RunHandover(CtlContext& ctx, Handover kind, HandoverOptions options) {
  const std::string action = kind == Handover::kSwitchover ? "switchover" : "failover";
  auto cluster = ReadCluster(ctx);
  if (!cluster.ok()) {
    return cluster.error();
  }
  ctx.terminal.Print("Current cluster topology\n");
  PrintMembers(ctx, *cluster);
  auto plan = Decide(ctx, *cluster, kind, std::move(options));
  if (!plan.ok()) {
    return plan.error();
  }
  std::string scheduled_text = plan->scheduled_at ? FormatIsoTimestamp(*plan->scheduled_at) : "";
  nlohmann::json body = {{"leader", TextOrNull(plan->leader)},
                         {"candidate", TextOrNull(plan->candidate)},
                         {"scheduled_at", TextOrNull(scheduled_text)}};
  const model::Member* target =
      cluster->LeaderMember() ? cluster->LeaderMember() : cluster->FindMember(plan->candidate);
  Result<MemberResponse> response = Error::Unavailable("no member to ask");
  if (target != nullptr) {
    response = ctx.api.Call(target->api_url(), "POST", "/" + action, body.dump());
  }
  if (response.ok() && (response->status == 200 || response->status == 202)) {
    ctx.terminal.Print(LocalTimestamp(ctx.clock.WallNow()) + " " + response->body + "\n");
  } else if (response.ok()) {
    ctx.terminal.Print(fmt::format("{} failed, details: {}, {}\n",
                                   kind == Handover::kSwitchover ? "Switchover" : "Failover",
                                   response->status, response->body));
    return 1;
  } else {
    ctx.terminal.Print(LocalTimestamp(ctx.clock.WallNow()) + " Could not " + action +
                       " using Patroni api, falling back to DCS\n");
    model::Failover failover;
    if (!plan->leader.empty()) failover.leader = plan->leader;
    if (!plan->candidate.empty()) failover.candidate = plan->candidate;
    failover.scheduled_at = plan->scheduled_at;
    auto written = ctx.dcs.SetFailoverValue(model::EncodeFailover(failover), std::nullopt);
    if (!written.ok() || !*written) {
      return Error::Unavailable("could not write the failover key either" +
                                (written.ok() ? std::string() : ": " + written.error().message()));
    }
  }
  auto after = ReadCluster(ctx);
  if (!after.ok()) {
    return after.error();
  }
  PrintMembers(ctx, *after);
  return 0;
}

}  // namespace pgha::cli
