#include "cli/version.h"

#include <fmt/format.h>

#include <algorithm>

namespace pgha::cli {
namespace {

// server_version 150020 -> "15.20"; 90624 -> "9.6.24".
std::string PostgresVersionText(int64_t v) {
  return v >= 100000 ? fmt::format("{}.{}", v / 10000, v % 10000)
                     : fmt::format("{}.{}.{}", v / 10000, v / 100 % 100, v % 100);
}

}  // namespace

Result<int> PrintMemberVersions(CtlContext& ctx, const std::vector<std::string>& names) {
  auto cluster = ReadCluster(ctx);
  if (!cluster.ok()) {
    return cluster.error();
  }
  for (const auto& m : cluster->members) {
    if (m.api_url().empty() ||
        (!names.empty() && std::find(names.begin(), names.end(), m.name) == names.end())) {
      continue;
    }
    auto response = ctx.api.Call(m.api_url(), "GET", "/patroni", "");
    auto body =
        response.ok() ? nlohmann::json::parse(response->body, nullptr, false) : nlohmann::json();
    if (!body.is_object()) {
      ctx.terminal.Print(m.name + ": failed to get version: " +
                         (response.ok() ? "unreadable answer" : response.error().message()) + "\n");
      continue;
    }
    std::string version;
    if (auto agent = body.find("patroni"); agent != body.end() && agent->is_object()) {
      if (auto v = agent->find("version"); v != agent->end() && v->is_string()) {
        version = v->get<std::string>();
      }
    }
    std::string line = m.name + ": Patroni " + version;
    if (auto pg = body.find("server_version"); pg != body.end() && pg->is_number_integer()) {
      line += " PostgreSQL " + PostgresVersionText(pg->get<int64_t>());
    }
    ctx.terminal.Print(line + "\n");
  }
  return 0;
}

}  // namespace pgha::cli
