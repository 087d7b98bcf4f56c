// pghactl: the operator's CLI (patronictl's job): list, topology, history, show-config, dsn,
// query, version, pause, resume, edit-config, restart, reinit. They read the DCS directly with the
// same configuration file patronictl reads (-c / PATRONICTL_CONFIG_FILE, or --dcs-url).
#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cctype>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "api/http/client.h"
#include "apps/etcd_from_config.h"
#include "cli/table.h"
#include "cli/views.h"
#include "common/log.h"
#include "common/strings.h"
#include "common/subprocess.h"
#include "common/time_format.h"
#include "config/config.h"
#include "config/yaml_json.h"
#include "dcs/etcd3/etcd3_dcs.h"
#include "model/codec.h"
#include "postgres/connection.h"

namespace {

using pgha::Error;
using pgha::Result;
using pgha::Status;

constexpr const char* kVersion = "0.1.0";

// patronictl reports failures as "Error: ..." and exits 1.
struct CtlError {
  std::string message;
};

[[noreturn]] void Fail(const std::string& message) { throw CtlError{message}; }

std::string DefaultConfigPath() {
  const char* home = std::getenv("HOME");
  return std::string(home ? home : "") + "/.config/patroni/patronictl.yaml";
}

// "etcd3://host:port", "host:port" or "host": patronictl's --dcs-url. pgha speaks etcd's v3 API
// only, so "etcd://" is read as etcd3 too.
Result<std::string> ParseDcsUrl(std::string url) {
  size_t scheme_end = url.find("://");
  if (scheme_end != std::string::npos) {
    std::string scheme = url.substr(0, scheme_end);
    if (scheme != "etcd3" && scheme != "etcd") {
      return Error::Invalid("Unknown dcs scheme: " + scheme + " (pgha supports etcd3)");
    }
    url = url.substr(scheme_end + 3);
  }
  if (size_t slash = url.find('/'); slash != std::string::npos) {
    url = url.substr(0, slash);
  }
  if (url.empty()) {
    url = "localhost";
  }
  if (url.find(':') == std::string::npos) {
    url += ":2379";
  }
  return url;
}

struct Context {
  std::string config_file;
  std::string dcs_url;
  bool insecure = false;
  pgha::config::Config config;
  bool loaded = false;

  void Load() {
    if (loaded) {
      return;
    }
    pgha::config::LoadOptions options;
    options.for_ctl = true;
    options.environment = pgha::config::CurrentEnvironment();
    bool readable = ::access(config_file.c_str(), R_OK) == 0;
    if (readable) {
      options.path = config_file;
    } else if (config_file != DefaultConfigPath()) {
      Fail("Provided config file " + config_file +
           " not existing or no read rights. Check the -c/--config-file parameter");
    }
    auto loaded_config = pgha::config::LoadConfig(options);
    if (!loaded_config.ok()) {
      Fail("invalid configuration: " + loaded_config.error().message());
    }
    config = *loaded_config;
    if (!dcs_url.empty()) {
      auto host = ParseDcsUrl(dcs_url);
      if (!host.ok()) {
        Fail(host.error().message());
      }
      config.etcd3 = {};
      config.etcd3.hosts = {*host};
    }
    loaded = true;
  }

  std::string Scope(const std::string& cluster_name) {
    Load();
    std::string scope = cluster_name.empty() ? config.scope : cluster_name;
    if (scope.empty()) {
      Fail("no cluster name given and no scope in the configuration");
    }
    return scope;
  }

  std::unique_ptr<pgha::dcs::etcd3::Etcd3Dcs> MakeDcs(const std::string& scope) {
    Load();
    if (config.etcd3.hosts.empty()) {
      Fail("no DCS configured: give -c patroni.yml (with an etcd3 section) or --dcs-url");
    }
    std::string prefix = "/" + config.namespace_ + "/" + scope + "/";
    return std::make_unique<pgha::dcs::etcd3::Etcd3Dcs>(
        pgha::dcs::etcd3::Etcd3DcsOptions{prefix, "", false},
        pgha::apps::MakeEtcdClient(config.etcd3, 10));
  }

  pgha::api::http::ClientOptions RestOptions() const {
    return pgha::api::http::CtlOptions(config, insecure);
  }

  pgha::model::ClusterSnapshot ReadCluster(const std::string& scope) {
    auto dcs = MakeDcs(scope);
    auto cluster = dcs->LoadCluster();
    if (!cluster.ok()) {
      Fail("cannot read the cluster from etcd: " + cluster.error().message());
    }
    for (const auto& problem : cluster->decode_errors) {
      std::cerr << "warning: " << problem << "\n";
    }
    return *cluster;
  }
};

std::string Timestamp() {
  std::time_t now = std::time(nullptr);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S", std::localtime(&now));
  return text;
}

void Print(const pgha::cli::Table& table, const std::string& fmt,
           const std::string& delimiter = "\t") {
  auto text = pgha::cli::RenderTable(table, fmt, delimiter);
  if (!text.ok()) {
    Fail(text.error().message());
  }
  std::cout << *text;
}

// patronictl's watching(): once, or every `interval` seconds (clearing the screen) until ^C.
template <typename F>
void Watching(bool w_flag, double interval, bool clear, F body) {
  if (w_flag && interval <= 0) {
    interval = 2;
  }
  if (interval > 0 && clear) {
    std::cout << "\033[H\033[2J";
  }
  body();
  while (interval > 0) {
    std::cout.flush();
    std::this_thread::sleep_for(std::chrono::duration<double>(interval));
    if (clear) {
      std::cout << "\033[H\033[2J";
    }
    body();
  }
}

struct ListOptions {
  std::vector<std::string> clusters;
  bool extended = false;
  bool timestamp = false;
  std::string fmt = "pretty";
  bool w_flag = false;
  double watch = 0;
};

void ListMembers(Context& ctx, const ListOptions& o, bool topology) {
  ctx.Load();
  std::vector<std::string> names = o.clusters;
  if (names.empty()) {
    if (ctx.config.scope.empty()) {
      std::cerr << "Listing members: No cluster names were provided\n";
      return;
    }
    names.push_back(ctx.config.scope);
  }
  std::string fmt = topology ? "topology" : o.fmt;
  Watching(o.w_flag, o.watch, true, [&] {
    if (o.timestamp) {
      std::cout << Timestamp() << "\n";
    }
    for (const auto& name : names) {
      auto cluster = ctx.ReadCluster(name);
      Print(pgha::cli::MembersTable(cluster, name, o.extended, topology), fmt);
      if (fmt == "pretty" || fmt == "topology") {
        auto info = pgha::cli::ServiceInfo(cluster);
        if (!info.empty()) {
          std::string joined;
          for (const auto& line : info) {
            joined += (joined.empty() ? "" : "\n ") + line;
          }
          std::cout << " " << joined << "\n";
        }
      }
    }
  });
}

struct QueryOptions {
  std::string cluster;
  std::string role, member, command, file, username, dbname, fmt = "tsv", delimiter = "\t";
  bool password_prompt = false;
  bool w_flag = false;
  double watch = 0;
};

std::string ReadPassword() {
  std::cerr << "Password: ";
  std::string password;
  std::getline(std::cin, password);
  return password;
}

void Query(Context& ctx, QueryOptions o) {
  if (!o.member.empty() && !o.role.empty()) {
    Fail("--role and --member are mutually exclusive options");
  }
  std::string role = !o.member.empty() ? "any" : o.role.empty() ? "leader" : o.role;
  if (!o.file.empty() && !o.command.empty()) {
    Fail("--file and --command are mutually exclusive options");
  }
  if (o.file.empty() && o.command.empty()) {
    Fail("You need to specify either --command or --file");
  }
  if (!o.file.empty()) {
    std::ifstream in(o.file);
    if (!in) {
      Fail("cannot read " + o.file);
    }
    std::stringstream text;
    text << in.rdbuf();
    o.command = text.str();
  }
  std::string password = o.password_prompt ? ReadPassword() : "";
  std::string scope = ctx.Scope(o.cluster);
  Watching(o.w_flag, o.watch, false, [&] {
    auto cluster = ctx.ReadCluster(scope);
    const pgha::model::Member* m = pgha::cli::SelectMember(cluster, role, o.member);
    std::string unavailable = !o.member.empty()
                                  ? "No connection to member " + o.member + " is available"
                                  : "No connection to role=" + role + " is available";
    auto report = [&](const std::string& message) {
      pgha::cli::Table table;
      table.rows.push_back({Timestamp(), message});
      Print(table, o.fmt, o.delimiter);
    };
    if (m == nullptr || m->host().empty()) {
      report(unavailable);
      return;
    }
    using pgha::postgres::QuoteConninfoValue;
    std::string conninfo = "host=" + QuoteConninfoValue(m->host()) +
                           " port=" + std::to_string(m->port() ? m->port() : 5432) +
                           " fallback_application_name='Patroni ctl' connect_timeout=5";
    if (!o.username.empty()) conninfo += " user=" + QuoteConninfoValue(o.username);
    if (!password.empty()) conninfo += " password=" + QuoteConninfoValue(password);
    if (!o.dbname.empty()) conninfo += " dbname=" + QuoteConninfoValue(o.dbname);
    auto conn = pgha::postgres::Connection::Open(conninfo);
    if (!conn.ok()) {
      report(conn.error().message());
      return;
    }
    if (role != "any" && role != "leader") {
      auto recovery = (*conn)->Query("SELECT pg_catalog.pg_is_in_recovery()");
      bool in_recovery = recovery.ok() && !recovery->empty() && (*recovery)[0][0] == "t";
      bool wants_replica = role == "replica" || role == "standby" || role == "standby-leader";
      if (in_recovery != wants_replica) {
        report(unavailable);
        return;
      }
    }
    auto result = (*conn)->QueryWithColumns(o.command);
    if (!result.ok()) {
      report(result.error().message());
      return;
    }
    pgha::cli::Table table;
    table.columns = result->columns;
    for (const auto& row : result->rows) {
      std::vector<pgha::cli::Cell> cells;
      for (const auto& value : row) {
        cells.push_back(value ? pgha::cli::Cell(*value) : pgha::cli::Cell(nullptr));
      }
      table.rows.push_back(std::move(cells));
    }
    Print(table, o.fmt, o.delimiter);
  });
}

// patronictl's toggle_pause: PATCH /config {"pause": true|null} to the first member that answers,
// the leader first; --wait then watches the member keys until every member shows the change.
int TogglePause(Context& ctx, const std::string& cluster_name, bool paused, bool wait) {
  std::string scope = ctx.Scope(cluster_name);
  auto cluster = ctx.ReadCluster(scope);
  if (cluster.EffectiveConfig().is_paused() == paused) {
    Fail(std::string("Cluster is ") + (paused ? "already" : "not") + " paused");
  }
  std::vector<const pgha::model::Member*> members;
  if (const auto* leader = cluster.LeaderMember(); leader && !leader->api_url().empty()) {
    members.push_back(leader);
  }
  for (const auto& m : cluster.members) {
    if (!m.api_url().empty() && (members.empty() || members.front() != &m)) {
      members.push_back(&m);
    }
  }
  std::string verb = paused ? "pause" : "resume";
  for (const auto* member : members) {
    auto response = pgha::api::http::CallMember(
        member->api_url(), "PATCH", "/config", paused ? R"({"pause": true})" : R"({"pause": null})",
        ctx.RestOptions());
    if (!response.ok()) {
      std::cerr << response.error().message() << "\nMember " << member->name
                << " is not accessible\n";
      continue;
    }
    if (response->status != 200) {
      std::cout << "Failed: " << verb << " cluster management status code=" << response->status
                << ", (" << response->body << ")\n";
      return 1;
    }
    if (wait) {
      std::cout << "'" << verb << "' request sent, waiting until it is recognized by all nodes\n";
      double loop_wait = std::max(0.5, cluster.EffectiveConfig().loop_wait());
      for (int attempt = 0;; ++attempt) {
        auto now = ctx.ReadCluster(scope);
        bool all = std::all_of(now.members.begin(), now.members.end(),
                               [&](const auto& m) { return m.is_paused() == paused; });
        if (all) {
          break;
        }
        if (attempt > 600) {
          Fail("members did not all report the change");
        }
        std::this_thread::sleep_for(std::chrono::duration<double>(loop_wait));
      }
    }
    std::cout << "Success: cluster management is " << (paused ? "paused" : "resumed") << "\n";
    return 0;
  }
  Fail("Can not find accessible cluster member");
}

// patronictl's apply_config_changes: "a.b.c=value" with the value read as YAML; a null value
// deletes the key; below postgresql.parameters the rest of the path is one GUC name (GUCs may
// contain dots).
void SetPath(nlohmann::json& config, const std::vector<std::string>& path, size_t at,
             const nlohmann::json& value, bool in_parameters) {
  if (in_parameters) {
    std::string name;
    for (size_t i = at; i < path.size(); ++i) {
      name += (i > at ? "." : "") + path[i];
    }
    if (value.is_null()) {
      config.erase(name);
    } else {
      config[name] = value;
    }
    return;
  }
  const std::string& key = path[at];
  if (at + 1 == path.size()) {
    if (value.is_null()) {
      config.erase(key);
    } else {
      config[key] = value;
    }
    return;
  }
  if (!config.contains(key) || !config[key].is_object()) {
    config[key] = nlohmann::json::object();
  }
  bool parameters = at == 1 && path[0] == "postgresql" && key == "parameters";
  SetPath(config[key], path, at + 1, value, parameters);
  if (config[key].empty()) {
    config.erase(key);
  }
}

std::string ReadFileOrStdin(const std::string& path) {
  std::stringstream text;
  if (path == "-") {
    text << std::cin.rdbuf();
  } else {
    std::ifstream in(path);
    if (!in) {
      Fail("cannot read " + path);
    }
    text << in.rdbuf();
  }
  return text.str();
}

nlohmann::json ParseYamlOrFail(const std::string& text, const std::string& what) {
  auto parsed = pgha::config::YamlToJson(text);
  if (!parsed.ok()) {
    Fail(what + ": " + parsed.error().message());
  }
  return *parsed;
}

// patronictl's confirmations: anything but y / yes aborts with `aborted`.
void ConfirmOrFail(const std::string& question, const std::string& aborted) {
  std::cout << question << " [y/N]: " << std::flush;
  std::string answer;
  std::getline(std::cin, answer);
  if (answer != "y" && answer != "Y" && answer != "yes") {
    Fail(aborted);
  }
}

std::string MemberNames(const std::vector<const pgha::model::Member*>& members) {
  std::string joined;
  for (const auto* m : members) {
    joined += (joined.empty() ? "" : ", ") + m->name;
  }
  return joined;
}

// "Failed: <verb> for member <name>, status code=503, (<body>)", as patronictl prints it.
void PrintMemberFailure(const std::string& verb, const pgha::model::Member& member,
                        const Result<pgha::api::http::ClientResponse>& response) {
  std::cout << "Failed: " << verb << " for member " << member.name << ", "
            << (response.ok() ? "status code=" + std::to_string(response->status) + ", (" +
                                    response->body + ")"
                              : response.error().message())
            << "\n";
}

struct EditOptions {
  std::string cluster;
  std::vector<std::string> sets, pg_sets;
  std::string apply, replace;
  bool force = false;
  bool quiet = false;
};

// patronictl's edit-config: the DCS config key is read, changed, shown as a diff, confirmed and
// written back with compare-and-swap (no REST call involved).
int EditConfig(Context& ctx, const EditOptions& o) {
  std::string scope = ctx.Scope(o.cluster);
  auto dcs = ctx.MakeDcs(scope);
  auto cluster = dcs->LoadCluster();
  if (!cluster.ok()) {
    Fail("cannot read the cluster from etcd: " + cluster.error().message());
  }
  nlohmann::json before = cluster->config ? cluster->config->data.raw() : nlohmann::json::object();
  nlohmann::json after = before;
  if (!o.replace.empty()) {
    after = ParseYamlOrFail(ReadFileOrStdin(o.replace), o.replace);
  }
  if (!o.apply.empty()) {
    after.merge_patch(ParseYamlOrFail(ReadFileOrStdin(o.apply), o.apply));
  }
  auto apply_pair = [&](const std::string& pair, const std::string& prefix) {
    size_t eq = pair.find('=');
    if (pair.empty() || eq == std::string::npos) {
      Fail("Invalid parameter setting " + pair);
    }
    std::vector<std::string> path;
    std::stringstream keys(prefix + std::string(pgha::Trim(pair.substr(0, eq))));
    for (std::string part; std::getline(keys, part, '.');) {
      path.push_back(part);
    }
    SetPath(after, path, 0, ParseYamlOrFail(pair.substr(eq + 1), pair), false);
  };
  for (const auto& pair : o.sets) {
    apply_pair(pair, "");
  }
  for (const auto& pair : o.pg_sets) {
    apply_pair(pair, "postgresql.parameters.");
  }
  std::string before_yaml = pgha::config::JsonToYaml(before);
  std::string after_yaml;
  if (o.sets.empty() && o.pg_sets.empty() && o.apply.empty() && o.replace.empty()) {
    // Interactive: the configuration in $EDITOR.
    char path[] = "/tmp/pghactl-config-XXXXXX.yaml";
    int fd = mkstemps(path, 5);
    if (fd < 0) {
      Fail("cannot create a temporary file");
    }
    ::close(fd);
    std::ofstream(path) << before_yaml;
    const char* editor = std::getenv("EDITOR");
    std::string command = std::string(editor ? editor : "editor") + " " + path;
    int rc = std::system(command.c_str());
    std::string edited = ReadFileOrStdin(path);
    std::remove(path);
    if (rc != 0) {
      Fail("the editor exited with status " + std::to_string(rc));
    }
    after = ParseYamlOrFail(edited, "the edited configuration");
  }
  after_yaml = pgha::config::JsonToYaml(after);
  if (after == before) {
    std::cout << "Not changed\n";
    return 0;
  }
  if (!o.quiet) {
    char a[] = "/tmp/pghactl-before-XXXXXX", b[] = "/tmp/pghactl-after-XXXXXX";
    int fa = mkstemp(a), fb = mkstemp(b);
    if (fa >= 0 && fb >= 0) {
      ::close(fa);
      ::close(fb);
      std::ofstream(a) << before_yaml;
      std::ofstream(b) << after_yaml;
      auto diff = pgha::RunProgram({"diff", "-u", "--label", "before", "--label", "after", a, b});
      std::cout << diff.output;
    }
    std::remove(a);
    std::remove(b);
  }
  if (auto valid = pgha::model::GlobalConfig::Validate(after); !valid.ok()) {
    Fail("the new configuration is invalid: " + valid.error().message());
  }
  if (auto adjusted = pgha::model::GlobalConfig::TimingAdjustment(after)) {
    std::cerr << "Warning: " << *adjusted << "\n";
  }
  if (!o.force) {
    ConfirmOrFail("Apply these changes?", "Aborted");
  }
  int64_t revision = cluster->config ? cluster->config->mod_revision : 0;
  auto written = dcs->SetConfigValue(after.dump(), revision);
  if (!written.ok()) {
    Fail("writing the config key failed: " + written.error().message());
  }
  if (!*written) {
    Fail("Config modification aborted due to concurrent changes");
  }
  std::cout << "Configuration changed\n";
  return 0;
}

// click.prompt: "question [default]: "; an empty answer takes the default.
std::string Prompt(const std::string& question, const std::string& default_value) {
  std::cout << question << " [" << default_value << "]: " << std::flush;
  std::string answer;
  if (!std::getline(std::cin, answer)) {
    Fail("Aborted!");
  }
  return answer.empty() ? default_value : answer;
}

// patronictl's parse_scheduled: "now" (or nothing) is immediate; a time without a zone is
// taken in the local zone.
std::optional<pgha::WallTime> ParseScheduled(const std::string& text) {
  if (text.empty() || text == "now") {
    return std::nullopt;
  }
  auto parsed = pgha::ParseIsoTimestamp(text);
  if (!parsed.ok()) {
    std::time_t now = std::time(nullptr);
    std::tm local{};
    localtime_r(&now, &local);
    long offset = local.tm_gmtoff / 60;
    std::string zone = fmt::format("{}{:02}:{:02}", offset < 0 ? '-' : '+', std::labs(offset) / 60,
                                   std::labs(offset) % 60);
    parsed = pgha::ParseIsoTimestamp(text + zone);
  }
  if (!parsed.ok()) {
    Fail("Unable to parse scheduled timestamp (" + text +
         "). It should be in an unambiguous format (e.g. ISO 8601)");
  }
  return *parsed;
}

struct RestartOptions {
  std::string cluster;
  std::vector<std::string> members;
  std::string role = "any";
  bool pending = false;
  std::string scheduled, pg_version;
  double timeout = 0;
  bool force = false;
};

std::vector<const pgha::model::Member*> MembersWithRole(const pgha::model::ClusterSnapshot& c,
                                                        const std::string& role) {
  std::vector<const pgha::model::Member*> out;
  if (role == "leader" || role == "primary" || role == "master" || role == "standby-leader") {
    if (const auto* m = pgha::cli::SelectMember(c, role, "")) {
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

// patronictl's get_members: the members with `role`, narrowed to `names` (each must exist),
// confirmed unless `force`.
std::vector<const pgha::model::Member*> ChooseMembers(const pgha::model::ClusterSnapshot& cluster,
                                                      const std::string& cluster_name,
                                                      const std::vector<std::string>& names,
                                                      const std::string& role, bool force,
                                                      const std::string& action) {
  std::vector<const pgha::model::Member*> chosen;
  for (const auto* m : MembersWithRole(cluster, role)) {
    if (names.empty() || std::find(names.begin(), names.end(), m->name) != names.end()) {
      chosen.push_back(m);
    }
  }
  for (const auto& name : names) {
    if (!cluster.FindMember(name)) {
      Fail(name + " is not a member of cluster");
    }
  }
  if (chosen.empty()) {
    Fail("No " + role + " among provided members");
  }
  if (!force) {
    Print(pgha::cli::MembersTable(cluster, cluster_name, false, false), "pretty");
    ConfirmOrFail("Are you sure you want to " + action + " members " + MemberNames(chosen) + "?",
                  "Aborted " + action);
  }
  return chosen;
}

// patronictl's restart: POST /restart to each chosen member, after a confirmation.
int RestartMembers(Context& ctx, const RestartOptions& o) {
  auto cluster = ctx.ReadCluster(o.cluster);
  auto chosen = ChooseMembers(cluster, o.cluster, o.members, o.role, o.force, "restart");
  nlohmann::json body = nlohmann::json::object();
  if (o.pending) body["restart_pending"] = true;
  if (!o.pg_version.empty()) body["postgres_version"] = o.pg_version;
  if (auto at = ParseScheduled(o.scheduled)) body["schedule"] = pgha::FormatIsoTimestamp(*at);
  if (o.timeout > 0) body["timeout"] = o.timeout;
  if (o.role != "any") body["role"] = o.role == "primary" ? "master" : o.role;
  int failures = 0;
  for (const auto* m : chosen) {
    auto response = pgha::api::http::CallMember(m->api_url(), "POST", "/restart", body.dump(),
                                                ctx.RestOptions());
    if (response.ok() && response->status == 200) {
      std::cout << "Success: restart on member " << m->name << "\n";
    } else if (response.ok() && response->status == 202) {
      std::cout << "Success: restart scheduled on member " << m->name << "\n";
    } else {
      ++failures;
      PrintMemberFailure("restart", *m, response);
    }
  }
  return failures == 0 ? 0 : 1;
}

// patronictl's reinit: POST /reinitialize to each named member; --wait polls GET /patroni until
// the member runs again.
int ReinitMembers(Context& ctx, const std::string& cluster_name,
                  const std::vector<std::string>& names, bool force, bool wait, bool from_leader) {
  auto cluster = ctx.ReadCluster(cluster_name);
  if (names.empty()) {
    Fail("name the members to reinitialize");
  }
  std::vector<const pgha::model::Member*> chosen;
  for (const auto& name : names) {
    const auto* m = cluster.FindMember(name);
    if (m == nullptr) {
      Fail(name + " is not a member of cluster");
    }
    chosen.push_back(m);
  }
  if (!force) {
    Print(pgha::cli::MembersTable(cluster, cluster_name, false, false), "pretty");
    ConfirmOrFail("Are you sure you want to reinitialize members " + MemberNames(chosen) + "?",
                  "Aborted reinitialize");
  }
  auto start_time = [&](const pgha::model::Member* m) {
    auto status =
        pgha::api::http::CallMember(m->api_url(), "GET", "/patroni", "", ctx.RestOptions());
    if (!status.ok() || status->status != 200) {
      return std::string();
    }
    auto parsed = nlohmann::json::parse(status->body, nullptr, false);
    return parsed.is_object() && parsed.value("state", "") == "running"
               ? parsed.value("postmaster_start_time", "")
               : std::string();
  };
  std::map<std::string, std::string> started_at;
  for (const auto* m : chosen) {
    started_at[m->name] = start_time(m);
  }
  int failures = 0;
  std::vector<const pgha::model::Member*> started;
  for (const auto* m : chosen) {
    nlohmann::json body = {{"force", force}};
    if (from_leader) {
      body["from-leader"] = true;
    }
    auto response = pgha::api::http::CallMember(m->api_url(), "POST", "/reinitialize", body.dump(),
                                                ctx.RestOptions());
    if (response.ok() && response->status == 200) {
      std::cout << "Success: reinitialize for member " << m->name << "\n";
      started.push_back(m);
    } else {
      ++failures;
      PrintMemberFailure("reinitialize", *m, response);
    }
  }
  if (wait && !started.empty()) {
    std::string joined = MemberNames(started);
    std::cout << "Waiting for reinitialize to complete on: " << joined << "\n";
    // Done when the member runs a new postmaster (the old one's status may still be published
    // for a moment after the request).
    for (const auto* m : started) {
      for (int attempt = 0;; ++attempt) {
        std::string now = start_time(m);
        if (!now.empty() && now != started_at[m->name]) {
          break;
        }
        if (attempt > 3600) {
          Fail("reinitialize of " + m->name + " did not finish within an hour");
        }
        std::this_thread::sleep_for(std::chrono::seconds(1));
      }
    }
    std::cout << "Reinitialize is completed on: " << joined << "\n";
  }
  return failures == 0 ? 0 : 1;
}

struct FailoverOptions {
  std::string cluster;
  std::string leader, candidate, scheduled;
  bool scheduled_given = false;
  bool force = false;
};

// patronictl's switchover / failover: checks and prompts, then POST /<action> to the leader
// (or to the candidate when there is none); the DCS key directly when no REST API answers.
int FailoverOrSwitchover(Context& ctx, std::string action, FailoverOptions o) {
  std::string scope = ctx.Scope(o.cluster);
  auto dcs = ctx.MakeDcs(scope);
  auto cluster = ctx.ReadCluster(scope);
  std::cout << "Current cluster topology\n";
  Print(pgha::cli::MembersTable(cluster, scope, false, false), "pretty");
  std::string current = cluster.leader ? cluster.leader->name : "";
  if (action == "switchover" && current.empty()) {
    Fail("This cluster has no leader");
  }
  if (o.leader.empty()) {
    o.leader = (o.force || action == "failover") ? current : Prompt("Primary", current);
  }
  if (!o.leader.empty() && !current.empty() && o.leader != current) {
    Fail("Member " + o.leader + " is not the leader of cluster " + scope);
  }
  std::vector<std::string> candidates;
  for (const auto& m : cluster.members) {
    if (m.name != o.leader && !m.nofailover()) {
      candidates.push_back(m.name);
    }
  }
  std::sort(candidates.begin(), candidates.end());
  if (candidates.empty()) {
    Fail("No candidates found to " + action + " to");
  }
  if (o.candidate.empty() && !o.force) {
    std::string listed;
    for (const auto& c : candidates) {
      listed += (listed.empty() ? "'" : ", '") + c + "'";
    }
    o.candidate = Prompt("Candidate [" + listed + "]", "");
  }
  std::string title = std::string(1, static_cast<char>(std::toupper(action[0]))) + action.substr(1);
  if (action == "failover" && o.candidate.empty()) {
    Fail("Failover could be performed only to a specific candidate");
  }
  if (!o.candidate.empty() && o.candidate == o.leader) {
    Fail(title + " target and source are the same.");
  }
  if (!o.candidate.empty() &&
      std::find(candidates.begin(), candidates.end(), o.candidate) == candidates.end()) {
    Fail("Member " + o.candidate + " does not exist in cluster " + scope);
  }
  std::optional<pgha::WallTime> scheduled_at;
  if (action == "switchover") {
    if (!o.scheduled_given && !o.force) {
      std::time_t in_an_hour = std::time(nullptr) + 3600;
      char example[32];
      std::strftime(example, sizeof example, "%Y-%m-%dT%H:%M", std::localtime(&in_an_hour));
      o.scheduled = Prompt(
          std::string("When should the switchover take place (e.g. ") + example + " ) ", "now");
    }
    scheduled_at = ParseScheduled(o.scheduled);
    if (scheduled_at && cluster.EffectiveConfig().is_paused()) {
      Fail("Can't schedule switchover in the paused state");
    }
  }
  std::string scheduled_text = scheduled_at ? pgha::FormatIsoTimestamp(*scheduled_at) : "";
  if (!o.force) {
    std::string demote = o.leader.empty() ? "" : ", demoting current leader " + o.leader;
    if (scheduled_at) {
      ConfirmOrFail("Are you sure you want to schedule " + action + " of cluster " + scope +
                        " at " + scheduled_text + demote + "?",
                    "Aborting scheduled " + action);
    } else {
      ConfirmOrFail("Are you sure you want to " + action + " cluster " + scope + demote + "?",
                    "Aborting " + action);
    }
  }
  auto text_or_null = [](const std::string& v) {
    return v.empty() ? nlohmann::json(nullptr) : nlohmann::json(v);
  };
  nlohmann::json body = {{"leader", text_or_null(o.leader)},
                         {"candidate", text_or_null(o.candidate)},
                         {"scheduled_at", text_or_null(scheduled_text)}};
  const pgha::model::Member* target =
      cluster.LeaderMember() ? cluster.LeaderMember() : cluster.FindMember(o.candidate);
  Result<pgha::api::http::ClientResponse> response = pgha::Error::Unavailable("no member to ask");
  if (target != nullptr) {
    response = pgha::api::http::CallMember(target->api_url(), "POST", "/" + action, body.dump(),
                                           ctx.RestOptions());
  }
  int exit_code = 0;
  if (response.ok() && (response->status == 200 || response->status == 202)) {
    std::cout << Timestamp() << " " << response->body << "\n";
  } else if (response.ok()) {
    std::cout << title << " failed, details: " << response->status << ", " << response->body
              << "\n";
    return 1;
  } else {
    std::cout << Timestamp() << " Could not " << action
              << " using Patroni api, falling back to DCS\n";
    pgha::model::Failover failover;
    if (!o.leader.empty()) failover.leader = o.leader;
    if (!o.candidate.empty()) failover.candidate = o.candidate;
    failover.scheduled_at = scheduled_at;
    auto written = dcs->SetFailoverValue(pgha::model::EncodeFailover(failover), std::nullopt);
    if (!written.ok() || !*written) {
      Fail("could not write the failover key either");
    }
  }
  Print(pgha::cli::MembersTable(ctx.ReadCluster(scope), scope, false, false), "pretty");
  return exit_code;
}

// patronictl's reload: POST /reload to each chosen member.
int ReloadMembers(Context& ctx, const std::string& cluster_name,
                  const std::vector<std::string>& names, const std::string& role, bool force) {
  auto cluster = ctx.ReadCluster(cluster_name);
  int failures = 0;
  for (const auto* m : ChooseMembers(cluster, cluster_name, names, role, force, "reload")) {
    auto response =
        pgha::api::http::CallMember(m->api_url(), "POST", "/reload", "", ctx.RestOptions());
    if (response.ok() && response->status == 200) {
      std::cout << "No changes to apply on member " << m->name << "\n";
    } else if (response.ok() && response->status == 202) {
      std::cout << "Reload request received for member " << m->name
                << " and will be processed within " << cluster.EffectiveConfig().loop_wait()
                << " seconds\n";
    } else {
      ++failures;
      PrintMemberFailure("reload", *m, response);
    }
  }
  return failures == 0 ? 0 : 1;
}

// patronictl's flush: withdraw scheduled restarts (DELETE /restart) or the scheduled switchover
// (DELETE /switchover, leader first; the DCS key directly when no member answers).
int Flush(Context& ctx, const std::string& cluster_name, const std::vector<std::string>& args,
          const std::string& role, bool force) {
  if (args.empty() || (args.back() != "restart" && args.back() != "switchover")) {
    Fail("flush needs a target: restart or switchover");
  }
  std::string target = args.back();
  std::vector<std::string> names(args.begin(), args.end() - 1);
  std::string scope = ctx.Scope(cluster_name);
  auto cluster = ctx.ReadCluster(scope);
  if (target == "restart") {
    for (const auto* m : ChooseMembers(cluster, scope, names, role, force, "flush")) {
      if (!m->data.value("scheduled_restart", nlohmann::json()).is_object()) {
        std::cout << "No scheduled restart for member " << m->name << "\n";
        continue;
      }
      auto response =
          pgha::api::http::CallMember(m->api_url(), "DELETE", "/restart", "", ctx.RestOptions());
      if (!response.ok() || response->status >= 400) {
        PrintMemberFailure("flush scheduled restart", *m, response);
      } else {
        std::cout << "Success: flush scheduled restart for member " << m->name << "\n";
      }
    }
    return 0;
  }
  if (!cluster.failover || !cluster.failover->scheduled_at) {
    std::cout << "No pending scheduled switchover\n";
    return 0;
  }
  std::vector<const pgha::model::Member*> order;
  if (const auto* leader = cluster.LeaderMember()) {
    order.push_back(leader);
  }
  for (const auto& m : cluster.members) {
    if (order.empty() || order[0] != &m) {
      order.push_back(&m);
    }
  }
  for (const auto* m : order) {
    auto response =
        pgha::api::http::CallMember(m->api_url(), "DELETE", "/switchover", "", ctx.RestOptions());
    if (response.ok() && (response->status == 200 || response->status == 404)) {
      std::cout << (response->status == 200 ? "Success: " : "Failed: ") << response->body << "\n";
      return response->status == 200 ? 0 : 1;
    }
    std::cout << "Failed: member=" << m->name << ", "
              << (response.ok() ? "status_code=" + std::to_string(response->status) + ", (" +
                                      response->body + ")"
                                : response.error().message())
              << "\n";
  }
  std::cout << Timestamp() << " Could not find any accessible member of cluster " << scope << "\n";
  auto written = ctx.MakeDcs(scope)->SetFailoverValue("{}", cluster.failover->mod_revision);
  return written.ok() && *written ? 0 : 1;
}

// patronictl's remove: three confirmations, then every key of the cluster is deleted.
int RemoveCluster(Context& ctx, const std::string& cluster_name) {
  auto dcs = ctx.MakeDcs(cluster_name);
  auto cluster = ctx.ReadCluster(cluster_name);
  Print(pgha::cli::MembersTable(cluster, cluster_name, false, false), "pretty");
  auto ask = [](const std::string& question) {
    std::cout << question << ": " << std::flush;
    std::string answer;
    if (!std::getline(std::cin, answer)) {
      Fail("Aborted!");
    }
    return answer;
  };
  if (ask("Please confirm the cluster name to remove") != cluster_name) {
    Fail("Cluster names specified do not match");
  }
  const std::string aware = "Yes I am aware";
  if (ask("You are about to remove all information in DCS for " + cluster_name +
          ", please type: \"" + aware + "\"") != aware) {
    Fail("You did not exactly type \"" + aware + "\"");
  }
  if (cluster.leader && !cluster.leader->name.empty() &&
      ask("This cluster currently is healthy. Please specify the leader name to continue") !=
          cluster.leader->name) {
    Fail("You did not specify the current leader of the cluster");
  }
  if (auto deleted = dcs->DeleteCluster(); !deleted.ok()) {
    Fail("could not remove the cluster: " + deleted.error().message());
  }
  return 0;
}

// patronictl's version: ours, then each member's agent and PostgreSQL versions.
int Version(Context& ctx, const std::string& cluster_name, const std::vector<std::string>& names) {
  std::cout << "pghactl version " << kVersion << " (patronictl 3.0.2 compatible)\n";
  if (cluster_name.empty()) {
    return 0;
  }
  std::cout << "\n";
  auto cluster = ctx.ReadCluster(cluster_name);
  for (const auto& m : cluster.members) {
    if (m.api_url().empty() ||
        (!names.empty() && std::find(names.begin(), names.end(), m.name) == names.end())) {
      continue;
    }
    auto response =
        pgha::api::http::CallMember(m.api_url(), "GET", "/patroni", "", ctx.RestOptions());
    auto body =
        response.ok() ? nlohmann::json::parse(response->body, nullptr, false) : nlohmann::json();
    if (!body.is_object()) {
      std::cout << m.name << ": failed to get version: "
                << (response.ok() ? "unreadable answer" : response.error().message()) << "\n";
      continue;
    }
    std::string version = body.contains("patroni") && body["patroni"].is_object()
                              ? body["patroni"].value("version", "")
                              : "";
    std::cout << m.name << ": Patroni " << version;
    if (auto pg = body.find("server_version"); pg != body.end() && pg->is_number_integer()) {
      int64_t v = pg->get<int64_t>();
      std::cout << " PostgreSQL "
                << (v >= 100000 ? fmt::format("{}.{}", v / 10000, v % 10000)
                                : fmt::format("{}.{}.{}", v / 10000, v / 100 % 100, v % 100));
    }
    std::cout << "\n";
  }
  return 0;
}

const std::vector<std::string> kRoles = {"leader",  "primary", "standby-leader", "replica",
                                         "standby", "any",     "master"};

}  // namespace

int main(int argc, char** argv) {
  // A member closing its REST connection early must give an error, not kill pghactl.
  ::signal(SIGPIPE, SIG_IGN);
  pgha::InitLogging("WARNING");
  CLI::App app{"pghactl: operate a pgha (or Patroni) cluster"};
  app.require_subcommand(1);
  Context ctx;
  app.add_option("-c,--config-file", ctx.config_file, "Configuration file")
      ->envname("PATRONICTL_CONFIG_FILE")
      ->default_str(DefaultConfigPath());
  ctx.config_file = DefaultConfigPath();
  app.add_option("-d,--dcs-url,--dcs", ctx.dcs_url, "The DCS connect url (etcd3://host:port)")
      ->envname("DCS_URL");
  app.add_flag("-k,--insecure", ctx.insecure, "Allow connections to SSL sites without certs");

  ListOptions list_options;
  auto add_list_options = [&](CLI::App* cmd, bool with_format) {
    cmd->add_option("cluster_names", list_options.clusters, "Clusters to list");
    if (with_format) {
      cmd->add_flag("-e,--extended", list_options.extended, "Show some extra information");
      cmd->add_flag("-t,--timestamp", list_options.timestamp, "Print timestamp");
      cmd->add_option("-f,--format", list_options.fmt, "Output format (pretty, tsv, json, yaml)");
    }
    cmd->add_flag("-W", list_options.w_flag, "Auto update the screen every 2 seconds");
    cmd->add_option("-w,--watch", list_options.watch, "Auto update the screen every X seconds");
  };
  auto* list = app.add_subcommand("list", "List the members of a cluster");
  add_list_options(list, true);
  auto* topology = app.add_subcommand("topology", "Print the cluster as a replication tree");
  add_list_options(topology, false);

  std::string cluster_name;
  std::string fmt = "pretty";
  auto* history = app.add_subcommand("history", "Show the history of failovers/switchovers");
  history->add_option("cluster_name", cluster_name);
  history->add_option("-f,--format", fmt, "Output format (pretty, tsv, json, yaml)");

  auto* show_config = app.add_subcommand("show-config", "Show the cluster's dynamic configuration");
  show_config->add_option("cluster_name", cluster_name);

  std::string role, member;
  auto* dsn = app.add_subcommand("dsn", "Print a DSN for a member (the leader by default)");
  dsn->add_option("cluster_name", cluster_name);
  dsn->add_option("-r,--role", role, "Give a dsn of any member with this role")
      ->check(CLI::IsMember(kRoles));
  dsn->add_option("-m,--member", member, "Generate a dsn for this member");

  QueryOptions query_options;
  auto* query = app.add_subcommand("query", "Run SQL on a member (the leader by default)");
  query->add_option("cluster_name", query_options.cluster);
  query->add_option("--format", query_options.fmt, "Output format (pretty, tsv, json, yaml)");
  query->add_option("-f,--file", query_options.file, "Execute the SQL commands from this file");
  query->add_flag("--password", query_options.password_prompt, "force password prompt");
  query->add_option("-U,--username", query_options.username, "database user name");
  query->add_flag("-W", query_options.w_flag, "Auto update the screen every 2 seconds");
  query->add_option("-w,--watch", query_options.watch, "Auto update every X seconds");
  query->add_option("-r,--role", query_options.role, "The role of the query")
      ->check(CLI::IsMember(kRoles));
  query->add_option("-m,--member", query_options.member, "Query a specific member");
  query->add_option("--delimiter", query_options.delimiter, "The column delimiter");
  query->add_option("-c,--command", query_options.command, "The SQL commands to execute");
  query->add_option("-d,--dbname", query_options.dbname, "database name to connect to");

  std::vector<std::string> member_names;
  auto* version = app.add_subcommand("version", "Print pghactl's version (and the members')");
  version->add_option("cluster_name", cluster_name);
  version->add_option("member_names", member_names);

  FailoverOptions switchover_options;
  auto* switchover = app.add_subcommand("switchover", "Switchover to a replica");
  switchover->add_option("cluster_name", switchover_options.cluster);
  switchover->add_option("--leader,--primary,--master", switchover_options.leader,
                         "The name of the current leader");
  switchover->add_option("--candidate", switchover_options.candidate, "The name of the candidate");
  switchover->add_option("--scheduled", switchover_options.scheduled,
                         "Timestamp of a scheduled switchover (e.g. ISO 8601)");
  switchover->add_flag("--force", switchover_options.force, "Do not ask for confirmation");
  FailoverOptions failover_options;
  auto* failover = app.add_subcommand("failover", "Failover to a replica");
  failover->add_option("cluster_name", failover_options.cluster);
  failover->add_option("--leader,--primary,--master", failover_options.leader,
                       "The name of the current leader");
  failover->add_option("--candidate", failover_options.candidate, "The name of the candidate");
  failover->add_flag("--force", failover_options.force, "Do not ask for confirmation");

  std::string member_role = "any";
  bool member_force = false;
  auto* reload = app.add_subcommand("reload", "Reload cluster member configuration");
  reload->add_option("cluster_name", cluster_name)->required();
  reload->add_option("member_names", member_names);
  reload->add_option("-r,--role", member_role, "Reload only members with this role")
      ->check(CLI::IsMember(kRoles));
  reload->add_flag("--force", member_force, "Do not ask for confirmation");
  auto* flush = app.add_subcommand("flush", "Discard scheduled events (restart or switchover)");
  flush->add_option("cluster_name", cluster_name)->required();
  flush->add_option("member_names_and_target", member_names,
                    "[member names...] restart|switchover");
  flush->add_option("-r,--role", member_role, "Flush only members with this role")
      ->check(CLI::IsMember(kRoles));
  flush->add_flag("--force", member_force, "Do not ask for confirmation");
  auto* remove = app.add_subcommand("remove", "Remove cluster from DCS");
  remove->add_option("cluster_name", cluster_name)->required();

  bool wait = false;
  auto* pause = app.add_subcommand("pause", "Disable auto failover (maintenance mode)");
  pause->add_option("cluster_name", cluster_name);
  pause->add_flag("--wait", wait, "Wait until every member is paused");
  auto* resume = app.add_subcommand("resume", "Resume auto failover");
  resume->add_option("cluster_name", cluster_name);
  resume->add_flag("--wait", wait, "Wait until every member is resumed");

  RestartOptions restart_options;
  auto* restart = app.add_subcommand("restart", "Restart PostgreSQL on members");
  restart->add_option("cluster_name", restart_options.cluster)->required();
  restart->add_option("member_names", restart_options.members);
  restart->add_option("-r,--role", restart_options.role, "Restart only members with this role")
      ->check(CLI::IsMember(kRoles));
  restart->add_flag("--pending", restart_options.pending, "Restart if pending");
  restart->add_option("--scheduled", restart_options.scheduled, "Timestamp of a scheduled restart");
  restart->add_option("--pg-version", restart_options.pg_version,
                      "Restart if the PostgreSQL version is older than this (e.g. 15.6)");
  restart->add_option("--timeout", restart_options.timeout, "Seconds to wait for the restart");
  restart->add_flag("--force", restart_options.force, "Do not ask for confirmation");

  std::vector<std::string> reinit_members;
  bool reinit_force = false, reinit_wait = false, reinit_from_leader = false;
  auto* reinit = app.add_subcommand("reinit", "Reinitialize replicas (clone them again)");
  reinit->add_option("cluster_name", cluster_name)->required();
  reinit->add_option("member_names", reinit_members);
  reinit->add_flag("--force", reinit_force, "Do not ask for confirmation; also stop a long action");
  reinit->add_flag("--wait", reinit_wait, "Wait until reinitialization completes");
  reinit->add_flag("--from-leader", reinit_from_leader,
                   "Clone from the leader even when a member is tagged clonefrom");

  EditOptions edit;
  auto* edit_config = app.add_subcommand("edit-config", "Edit the cluster's dynamic configuration");
  edit_config->add_option("cluster_name", edit.cluster);
  edit_config->add_option("-s,--set", edit.sets, "Set a key: -s loop_wait=5 (null deletes)");
  edit_config->add_option("-p,--pg", edit.pg_sets, "Set a PostgreSQL parameter: -p work_mem=8MB");
  edit_config->add_option("--apply", edit.apply, "Apply a YAML patch from a file (- for stdin)");
  edit_config->add_option("--replace", edit.replace, "Replace with a YAML file (- for stdin)");
  edit_config->add_flag("--force", edit.force, "Do not ask for confirmation");
  edit_config->add_flag("-q,--quiet", edit.quiet, "Do not show the diff");

  CLI11_PARSE(app, argc, argv);

  try {
    if (list->parsed()) {
      ListMembers(ctx, list_options, false);
    } else if (topology->parsed()) {
      ListMembers(ctx, list_options, true);
    } else if (history->parsed()) {
      auto cluster = ctx.ReadCluster(ctx.Scope(cluster_name));
      Print(pgha::cli::HistoryTable(cluster), fmt);
    } else if (show_config->parsed()) {
      auto cluster = ctx.ReadCluster(ctx.Scope(cluster_name));
      if (!cluster.config) {
        Fail("the cluster has no dynamic configuration in the DCS");
      }
      std::cout << pgha::config::JsonToYaml(cluster.config->data.raw()) << "\n";
    } else if (dsn->parsed()) {
      if (!member.empty() && !role.empty()) {
        Fail("--role and --member are mutually exclusive options");
      }
      std::string effective = !member.empty() ? "any" : role.empty() ? "leader" : role;
      auto cluster = ctx.ReadCluster(ctx.Scope(cluster_name));
      const auto* m = pgha::cli::SelectMember(cluster, effective, member);
      if (m == nullptr) {
        Fail("Can not find a suitable member");
      }
      std::cout << "host=" << m->host() << " port=" << (m->port() ? m->port() : 5432) << "\n";
    } else if (query->parsed()) {
      Query(ctx, query_options);
    } else if (pause->parsed() || resume->parsed()) {
      return TogglePause(ctx, cluster_name, pause->parsed(), wait);
    } else if (reinit->parsed()) {
      return ReinitMembers(ctx, cluster_name, reinit_members, reinit_force, reinit_wait,
                           reinit_from_leader);
    } else if (restart->parsed()) {
      return RestartMembers(ctx, restart_options);
    } else if (edit_config->parsed()) {
      return EditConfig(ctx, edit);
    } else if (version->parsed()) {
      return Version(ctx, cluster_name, member_names);
    } else if (switchover->parsed()) {
      switchover_options.scheduled_given = switchover->count("--scheduled") > 0;
      return FailoverOrSwitchover(ctx, "switchover", switchover_options);
    } else if (failover->parsed()) {
      std::string action = failover_options.leader.empty() ? "failover" : "switchover";
      return FailoverOrSwitchover(ctx, action, failover_options);
    } else if (reload->parsed()) {
      return ReloadMembers(ctx, cluster_name, member_names, member_role, member_force);
    } else if (flush->parsed()) {
      return Flush(ctx, cluster_name, member_names, member_role, member_force);
    } else if (remove->parsed()) {
      return RemoveCluster(ctx, cluster_name);
    }
  } catch (const CtlError& e) {
    std::cerr << "Error: " << e.message << "\n";
    return 1;
  }
  return 0;
}
