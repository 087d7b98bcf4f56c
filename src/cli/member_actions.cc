#include "cli/member_actions.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "cli/views.h"
#include "common/time_format.h"

namespace pgha::cli {
namespace {

// How long reinit --wait waits for each member, in one-second polls.
constexpr int kReinitWaitSeconds = 3600;

std::vector<const model::Member*> MembersWithRole(const model::ClusterSnapshot& c,
                                                  const std::string& role) {
  std::vector<const model::Member*> out;
  if (role == "leader" || role == "primary" || role == "master" || role == "standby-leader") {
    if (const auto* m = SelectMember(c, role, "")) {
      out.push_back(m);
    }
    return out;
  }
  std::string leader = c.leader ? c.leader->name : "";
  for (const auto& m : c.members) {
    if (role == "any" || m.name != leader) {
      out.push_back(&m);
    }
  }
  return out;
}

// The start time of the postmaster a member runs, "" when it runs none or does not answer.
std::string PostmasterStartTime(CtlContext& ctx, const model::Member& member) {
  auto status = ctx.api.Call(member.api_url(), "GET", "/patroni", "");
  if (!status.ok() || status->status != 200) {
    return "";
  }
  auto parsed = nlohmann::json::parse(status->body, nullptr, false);
  if (!parsed.is_object() || !parsed.contains("state") || parsed["state"] != "running" ||
      !parsed.contains("postmaster_start_time") || !parsed["postmaster_start_time"].is_string()) {
    return "";
  }
  return parsed["postmaster_start_time"].get<std::string>();
}

Result<int> FlushSwitchover(CtlContext& ctx, const model::ClusterSnapshot& cluster) {
  if (!cluster.failover || !cluster.failover->scheduled_at) {
    ctx.terminal.Print("No pending scheduled switchover\n");
    return 0;
  }
  std::vector<const model::Member*> order;
  if (const auto* leader = cluster.LeaderMember()) {
    order.push_back(leader);
  }
  for (const auto& m : cluster.members) {
    if (order.empty() || order[0] != &m) {
      order.push_back(&m);
    }
  }
  for (const auto* m : order) {
    auto response = ctx.api.Call(m->api_url(), "DELETE", "/switchover", "");
    if (response.ok() && (response->status == 200 || response->status == 404)) {
      ctx.terminal.Print((response->status == 200 ? "Success: " : "Failed: ") + response->body +
                         "\n");
      return response->status == 200 ? 0 : 1;
    }
    ctx.terminal.Print(fmt::format(
        "Failed: member={}, {}\n", m->name,
        response.ok() ? fmt::format("status_code={}, ({})", response->status, response->body)
                      : response.error().message()));
  }
  ctx.terminal.Print(LocalTimestamp(ctx.clock.WallNow()) +
                     " Could not find any accessible member of cluster " + ctx.scope + "\n");
  auto written = ctx.dcs.SetFailoverValue("{}", cluster.failover->mod_revision);
  return written.ok() && *written ? 0 : 1;
}

}  // namespace

Result<std::vector<const model::Member*>> ChooseMembers(CtlContext& ctx,
                                                        const model::ClusterSnapshot& cluster,
                                                        const std::vector<std::string>& names,
                                                        const std::string& role, bool force,
                                                        const std::string& action) {
  for (const auto& name : names) {
    if (!cluster.FindMember(name)) {
      return Error::Invalid(name + " is not a member of cluster");
    }
  }
  std::vector<const model::Member*> chosen;
  for (const auto* m : MembersWithRole(cluster, role)) {
    if (names.empty() || std::find(names.begin(), names.end(), m->name) != names.end()) {
      chosen.push_back(m);
    }
  }
  if (chosen.empty()) {
    return Error::Invalid("No " + role + " among provided members");
  }
  if (!force) {
    PrintMembers(ctx, cluster);
    PGHA_RETURN_IF_ERROR(
        Confirm(ctx, "Are you sure you want to " + action + " members " + MemberNames(chosen) + "?",
                "Aborted " + action));
  }
  return chosen;
}

Result<int> RestartMembers(CtlContext& ctx, const RestartOptions& o) {
  auto cluster = ReadCluster(ctx);
  if (!cluster.ok()) {
    return cluster.error();
  }
  auto scheduled = ParseScheduled(o.scheduled);
  if (!scheduled.ok()) {
    return scheduled.error();
  }
  auto chosen = ChooseMembers(ctx, *cluster, o.members, o.role, o.force, "restart");
  if (!chosen.ok()) {
    return chosen.error();
  }
  nlohmann::json body = nlohmann::json::object();
  if (o.pending) body["restart_pending"] = true;
  if (!o.pg_version.empty()) body["postgres_version"] = o.pg_version;
  if (*scheduled) body["schedule"] = FormatIsoTimestamp(**scheduled);
  if (o.timeout > 0) body["timeout"] = o.timeout;
  if (o.role != "any") body["role"] = o.role == "primary" ? "master" : o.role;
  int failures = 0;
  for (const auto* m : *chosen) {
    auto response = ctx.api.Call(m->api_url(), "POST", "/restart", body.dump());
    if (response.ok() && response->status == 200) {
      ctx.terminal.Print("Success: restart on member " + m->name + "\n");
    } else if (response.ok() && response->status == 202) {
      ctx.terminal.Print("Success: restart scheduled on member " + m->name + "\n");
    } else {
      ++failures;
      PrintMemberFailure(ctx, "restart", *m, response);
    }
  }
  return failures == 0 ? 0 : 1;
}

Result<int> ReinitMembers(CtlContext& ctx, const ReinitOptions& o) {
  if (o.members.empty()) {
    return Error::Invalid("name the members to reinitialize");
  }
  auto cluster = ReadCluster(ctx);
  if (!cluster.ok()) {
    return cluster.error();
  }
  std::vector<const model::Member*> chosen;
  for (const auto& name : o.members) {
    const auto* m = cluster->FindMember(name);
    if (m == nullptr) {
      return Error::Invalid(name + " is not a member of cluster");
    }
    chosen.push_back(m);
  }
  if (!o.force) {
    PrintMembers(ctx, *cluster);
    PGHA_RETURN_IF_ERROR(
        Confirm(ctx, "Are you sure you want to reinitialize members " + MemberNames(chosen) + "?",
                "Aborted reinitialize"));
  }
  std::map<std::string, std::string> started_at;
  for (const auto* m : chosen) {
    started_at[m->name] = PostmasterStartTime(ctx, *m);
  }
  int failures = 0;
  std::vector<const model::Member*> started;
  for (const auto* m : chosen) {
    nlohmann::json body = {{"force", o.force}};
    if (o.from_leader) {
      body["from-leader"] = true;
    }
    auto response = ctx.api.Call(m->api_url(), "POST", "/reinitialize", body.dump());
    if (response.ok() && response->status == 200) {
      ctx.terminal.Print("Success: reinitialize for member " + m->name + "\n");
      started.push_back(m);
    } else {
      ++failures;
      PrintMemberFailure(ctx, "reinitialize", *m, response);
    }
  }
  if (o.wait && !started.empty()) {
    std::string joined = MemberNames(started);
    ctx.terminal.Print("Waiting for reinitialize to complete on: " + joined + "\n");
    // Done when the member runs a new postmaster (the old one's status may still be published
    // for a moment after the request).
    for (const auto* m : started) {
      for (int second = 0;; ++second) {
        std::string now = PostmasterStartTime(ctx, *m);
        if (!now.empty() && now != started_at[m->name]) {
          break;
        }
        if (second >= kReinitWaitSeconds) {
          return Error::Timeout("reinitialize of " + m->name + " did not finish within an hour");
        }
        ctx.clock.SleepFor(std::chrono::seconds(1));
      }
    }
    ctx.terminal.Print("Reinitialize is completed on: " + joined + "\n");
  }
  return failures == 0 ? 0 : 1;
}

Result<int> ReloadMembers(CtlContext& ctx, const std::vector<std::string>& names,
                          const std::string& role, bool force) {
  auto cluster = ReadCluster(ctx);
  if (!cluster.ok()) {
    return cluster.error();
  }
  auto chosen = ChooseMembers(ctx, *cluster, names, role, force, "reload");
  if (!chosen.ok()) {
    return chosen.error();
  }
  int failures = 0;
  for (const auto* m : *chosen) {
    auto response = ctx.api.Call(m->api_url(), "POST", "/reload", "");
    if (response.ok() && response->status == 200) {
      ctx.terminal.Print("No changes to apply on member " + m->name + "\n");
    } else if (response.ok() && response->status == 202) {
      ctx.terminal.Print(fmt::format(
          "Reload request received for member {} and will be processed within {} seconds\n",
          m->name, cluster->EffectiveConfig().loop_wait()));
    } else {
      ++failures;
      PrintMemberFailure(ctx, "reload", *m, response);
    }
  }
  return failures == 0 ? 0 : 1;
}

Result<int> Flush(CtlContext& ctx, const std::string& target, const std::vector<std::string>& names,
                  const std::string& role, bool force) {
  if (target != "restart" && target != "switchover") {
    return Error::Invalid("flush needs a target: restart or switchover");
  }
  auto cluster = ReadCluster(ctx);
  if (!cluster.ok()) {
    return cluster.error();
  }
  if (target == "switchover") {
    return FlushSwitchover(ctx, *cluster);
  }
  auto chosen = ChooseMembers(ctx, *cluster, names, role, force, "flush");
  if (!chosen.ok()) {
    return chosen.error();
  }
  for (const auto* m : *chosen) {
    if (!m->data.value("scheduled_restart", nlohmann::json()).is_object()) {
      ctx.terminal.Print("No scheduled restart for member " + m->name + "\n");
      continue;
    }
    auto response = ctx.api.Call(m->api_url(), "DELETE", "/restart", "");
    if (!response.ok() || response->status >= 400) {
      PrintMemberFailure(ctx, "flush scheduled restart", *m, response);
    } else {
      ctx.terminal.Print("Success: flush scheduled restart for member " + m->name + "\n");
    }
  }
  return 0;
}

}  // namespace pgha::cli
