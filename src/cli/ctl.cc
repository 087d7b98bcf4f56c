#include "cli/ctl.h"

#include <fmt/format.h>

#include <cstdlib>
#include <ctime>

#include "cli/views.h"
#include "common/time_format.h"

namespace pgha::cli {

Result<model::ClusterSnapshot> ReadCluster(CtlContext& ctx) {
  auto cluster = ctx.dcs.LoadCluster();
  if (!cluster.ok()) {
    return Error::Unavailable("cannot read the cluster from etcd: " + cluster.error().message());
  }
  for (const auto& problem : cluster->decode_errors) {
    ctx.terminal.PrintError("warning: " + problem + "\n");
  }
  return cluster;
}

void PrintMembers(CtlContext& ctx, const model::ClusterSnapshot& cluster) {
  auto text = RenderTable(MembersTable(cluster, ctx.scope, false, false), "pretty");
  ctx.terminal.Print(text.ok() ? *text : text.error().message() + "\n");
}

Result<std::string> Prompt(CtlContext& ctx, const std::string& question,
                           const std::string& default_value) {
  ctx.terminal.Print(question + " [" + default_value + "]: ");
  auto answer = ctx.terminal.ReadLine();
  if (!answer) {
    return Error::Invalid("Aborted!");
  }
  return answer->empty() ? default_value : *answer;
}

Status Confirm(CtlContext& ctx, const std::string& question, const std::string& aborted) {
  ctx.terminal.Print(question + " [y/N]: ");
  auto answer = ctx.terminal.ReadLine();
  if (!answer || (*answer != "y" && *answer != "Y" && *answer != "yes")) {
    return Error::Invalid(aborted);
  }
  return OkStatus();
}

std::string MemberNames(const std::vector<const model::Member*>& members) {
  std::string joined;
  for (const auto* m : members) {
    joined += (joined.empty() ? "" : ", ") + m->name;
  }
  return joined;
}

void PrintMemberFailure(CtlContext& ctx, const std::string& verb, const model::Member& member,
                        const Result<MemberResponse>& response) {
  ctx.terminal.Print(fmt::format(
      "Failed: {} for member {}, {}\n", verb, member.name,
      response.ok() ? fmt::format("status code={}, ({})", response->status, response->body)
                    : response.error().message()));
}

std::string FormatLocalTime(WallTime at, const char* format) {
  std::time_t seconds = std::chrono::system_clock::to_time_t(at);
  std::tm local{};
  localtime_r(&seconds, &local);
  char text[64];
  return std::string(text, std::strftime(text, sizeof text, format, &local));
}

std::string LocalTimestamp(WallTime at) {
  auto micros = std::chrono::duration_cast<std::chrono::microseconds>(at.time_since_epoch()) %
                std::chrono::seconds(1);
  // Python's "%f" gives six digits and patronictl drops the last one.
  return fmt::format("{}.{:06}", LocalTimestampSeconds(at), micros.count()).substr(0, 25);
}

std::string LocalTimestampSeconds(WallTime at) { return FormatLocalTime(at, "%Y-%m-%d %H:%M:%S"); }

Result<std::optional<WallTime>> ParseScheduled(const std::string& text) {
  if (text.empty() || text == "now") {
    return std::optional<WallTime>();
  }
  auto parsed = ParseIsoTimestamp(text);
  if (!parsed.ok()) {
    std::time_t now = std::time(nullptr);
    std::tm local{};
    localtime_r(&now, &local);
    long offset = local.tm_gmtoff / 60;
    std::string zone = fmt::format("{}{:02}:{:02}", offset < 0 ? '-' : '+', std::labs(offset) / 60,
                                   std::labs(offset) % 60);
    parsed = ParseIsoTimestamp(text + zone);
  }
  if (!parsed.ok()) {
    return Error::Invalid("Unable to parse scheduled timestamp (" + text +
                          "). It should be in an unambiguous format (e.g. ISO 8601)");
  }
  return std::optional<WallTime>(*parsed);
}

}  // namespace pgha::cli
