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
#include <map>
#include <sstream>

#include "api/http/client.h"
#include "apps/etcd_from_config.h"
#include "cli/ctl.h"
#include "cli/edit_config.h"
#include "cli/list.h"
#include "cli/member_actions.h"
#include "cli/pause.h"
#include "cli/query.h"
#include "cli/remove.h"
#include "cli/switchover.h"
#include "cli/table.h"
#include "cli/version.h"
#include "cli/views.h"
#include "common/log.h"
#include "common/strings.h"
#include "common/subprocess.h"
#include "common/time_format.h"
#include "config/config.h"
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

  // A cluster's keys through one etcd client per cluster for the whole run: a watching `list`
  // or `query` reads every round, and a new client would discover the etcd members each time.
  Result<pgha::model::ClusterSnapshot> LoadCluster(const std::string& scope) {
    auto& dcs = dcs_by_scope[scope];
    if (!dcs) {
      dcs = MakeDcs(scope);
    }
    auto cluster = dcs->LoadCluster();
    if (!cluster.ok()) {
      return Error::Unavailable("cannot read the cluster from etcd: " + cluster.error().message());
    }
    for (const auto& problem : cluster->decode_errors) {
      std::cerr << "warning: " << problem << "\n";
    }
    return *cluster;
  }

  pgha::model::ClusterSnapshot ReadCluster(const std::string& scope) {
    auto cluster = LoadCluster(scope);
    if (!cluster.ok()) {
      Fail(cluster.error().message());
    }
    return *cluster;
  }

 private:
  std::map<std::string, std::unique_ptr<pgha::dcs::etcd3::Etcd3Dcs>> dcs_by_scope;
};

// The verbs of src/cli reach the members through the HTTP client that honours the
// configuration's REST credentials and certificates.
class RestMemberApi final : public pgha::cli::MemberApi {
 public:
  explicit RestMemberApi(pgha::api::http::ClientOptions options) : options_(std::move(options)) {}
  Result<pgha::cli::MemberResponse> Call(const std::string& api_url, const std::string& method,
                                         const std::string& path,
                                         const std::string& body) override {
    auto response = pgha::api::http::CallMember(api_url, method, path, body, options_);
    if (!response.ok()) {
      return response.error();
    }
    return pgha::cli::MemberResponse{response->status, response->body};
  }

 private:
  pgha::api::http::ClientOptions options_;
};

class StdTerminal final : public pgha::cli::Terminal {
 public:
  void Print(std::string_view text) override { std::cout << text << std::flush; }
  void PrintError(std::string_view text) override { std::cerr << text; }
  std::optional<std::string> ReadLine() override {
    std::string line;
    if (!std::getline(std::cin, line)) {
      return std::nullopt;
    }
    return line;
  }
};

// Runs a verb of src/cli on the cluster `cluster_name` (the configuration's scope when empty):
// its Error is patronictl's "Error: ..." and exit status 1.
template <typename Verb>
int RunVerb(Context& ctx, const std::string& cluster_name, Verb verb) {
  std::string scope = ctx.Scope(cluster_name);
  auto dcs = ctx.MakeDcs(scope);
  RestMemberApi api(ctx.RestOptions());
  StdTerminal terminal;
  pgha::cli::CtlContext verb_context{scope, *dcs, api, terminal, pgha::SystemClock::Instance()};
  Result<int> result = verb(verb_context);
  if (!result.ok()) {
    Fail(result.error().message());
  }
  return *result;
}

void Print(const pgha::cli::Table& table, const std::string& fmt,
           const std::string& delimiter = "\t") {
  auto text = pgha::cli::RenderTable(table, fmt, delimiter);
  if (!text.ok()) {
    Fail(text.error().message());
  }
  std::cout << *text;
}

// `query` runs its SQL through libpq.
class LibpqSession final : public pgha::cli::SqlSession {
 public:
  explicit LibpqSession(std::unique_ptr<pgha::postgres::Connection> conn)
      : conn_(std::move(conn)) {}
  // The simple protocol, as psycopg2's execute: a file may hold several statements. patronictl
  // sets no statement timeout, so neither does pghactl.
  Result<pgha::postgres::ResultSet> Query(const std::string& sql) override {
    return conn_->QueryWithColumns(sql, pgha::MonoTime::max());
  }
  std::string LastSqlState() const override { return conn_->LastSqlState(); }

 private:
  std::unique_ptr<pgha::postgres::Connection> conn_;
};

Result<std::unique_ptr<pgha::cli::SqlSession>> ConnectLibpq(const std::string& conninfo) {
  auto conn = pgha::postgres::Connection::Open(conninfo);
  if (!conn.ok()) {
    return conn.error();
  }
  return std::unique_ptr<pgha::cli::SqlSession>(std::make_unique<LibpqSession>(std::move(*conn)));
}

// A read-only verb of src/cli that reads clusters by name: its Error is patronictl's "Error: ...".
template <typename Verb>
void RunReader(Context& ctx, Verb verb) {
  ctx.Load();
  StdTerminal terminal;
  pgha::cli::ClusterReader read = [&](const std::string& scope) { return ctx.LoadCluster(scope); };
  Status status = verb(read, terminal);
  if (!status.ok()) {
    Fail(status.error().message());
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

// edit-config without changes on the command line: the configuration in $EDITOR.
Result<std::string> EditInEditor(const std::string& yaml) {
  char path[] = "/tmp/pghactl-config-XXXXXX.yaml";
  int fd = mkstemps(path, 5);
  if (fd < 0) {
    return Error::Internal("cannot create a temporary file");
  }
  ::close(fd);
  std::ofstream(path) << yaml;
  const char* editor = std::getenv("EDITOR");
  std::string command = std::string(editor ? editor : "editor") + " " + path;
  int rc = std::system(command.c_str());
  std::stringstream edited;
  edited << std::ifstream(path).rdbuf();
  std::remove(path);
  if (rc != 0) {
    return Error::Invalid("the editor exited with status " + std::to_string(rc));
  }
  return edited.str();
}

std::string UnifiedDiff(const std::string& before, const std::string& after) {
  char a[] = "/tmp/pghactl-before-XXXXXX", b[] = "/tmp/pghactl-after-XXXXXX";
  int fa = mkstemp(a), fb = mkstemp(b);
  std::string output;
  if (fa >= 0 && fb >= 0) {
    ::close(fa);
    ::close(fb);
    std::ofstream(a) << before;
    std::ofstream(b) << after;
    output = pgha::RunProgram({"diff", "-u", "--label", "before", "--label", "after", a, b}).output;
  }
  std::remove(a);
  std::remove(b);
  return output;
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

  pgha::cli::ListOptions list_options;
  auto add_list_options = [&](CLI::App* cmd, bool with_format) {
    cmd->add_option("cluster_names", list_options.clusters, "Clusters to list");
    if (with_format) {
      cmd->add_flag("-e,--extended", list_options.extended, "Show some extra information");
      cmd->add_flag("-t,--timestamp", list_options.timestamp, "Print timestamp");
      cmd->add_option("-f,--format", list_options.fmt, "Output format (pretty, tsv, json, yaml)");
    }
    cmd->add_flag("-W", list_options.watch.w_flag, "Auto update the screen every 2 seconds");
    cmd->add_option("-w,--watch", list_options.watch.interval,
                    "Auto update the screen every X seconds");
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

  pgha::cli::QueryOptions query_options;
  auto* query = app.add_subcommand("query", "Run SQL on a member (the leader by default)");
  query->add_option("cluster_name", query_options.cluster);
  query->add_option("--format", query_options.fmt, "Output format (pretty, tsv, json, yaml)");
  query->add_option("-f,--file", query_options.file, "Execute the SQL commands from this file");
  query->add_flag("--password", query_options.password_prompt, "force password prompt");
  query->add_option("-U,--username", query_options.username, "database user name");
  query->add_flag("-W", query_options.watch.w_flag, "Auto update the screen every 2 seconds");
  query->add_option("-w,--watch", query_options.watch.interval, "Auto update every X seconds");
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

  std::string handover_cluster;
  pgha::cli::HandoverOptions switchover_options;
  auto* switchover = app.add_subcommand("switchover", "Switchover to a replica");
  switchover->add_option("cluster_name", handover_cluster);
  switchover->add_option("--leader,--primary,--master", switchover_options.leader,
                         "The name of the current leader");
  switchover->add_option("--candidate", switchover_options.candidate, "The name of the candidate");
  switchover->add_option("--scheduled", switchover_options.scheduled,
                         "Timestamp of a scheduled switchover (e.g. ISO 8601)");
  switchover->add_flag("--force", switchover_options.force, "Do not ask for confirmation");
  pgha::cli::HandoverOptions failover_options;
  auto* failover = app.add_subcommand("failover", "Failover to a replica");
  failover->add_option("cluster_name", handover_cluster);
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

  pgha::cli::RestartOptions restart_options;
  auto* restart = app.add_subcommand("restart", "Restart PostgreSQL on members");
  restart->add_option("cluster_name", cluster_name)->required();
  restart->add_option("member_names", restart_options.members);
  restart->add_option("-r,--role", restart_options.role, "Restart only members with this role")
      ->check(CLI::IsMember(kRoles));
  restart->add_flag("--pending", restart_options.pending, "Restart if pending");
  restart->add_option("--scheduled", restart_options.scheduled, "Timestamp of a scheduled restart");
  restart->add_option("--pg-version", restart_options.pg_version,
                      "Restart if the PostgreSQL version is older than this (e.g. 15.6)");
  restart->add_option("--timeout", restart_options.timeout, "Seconds to wait for the restart");
  restart->add_flag("--force", restart_options.force, "Do not ask for confirmation");

  pgha::cli::ReinitOptions reinit_options;
  auto* reinit = app.add_subcommand("reinit", "Reinitialize replicas (clone them again)");
  reinit->add_option("cluster_name", cluster_name)->required();
  reinit->add_option("member_names", reinit_options.members);
  reinit->add_flag("--force", reinit_options.force,
                   "Do not ask for confirmation; also stop a long action");
  reinit->add_flag("--wait", reinit_options.wait, "Wait until reinitialization completes");
  reinit->add_flag("--from-leader", reinit_options.from_leader,
                   "Clone from the leader even when a member is tagged clonefrom");

  pgha::cli::EditConfigOptions edit;
  std::string edit_apply, edit_replace;
  auto* edit_config = app.add_subcommand("edit-config", "Edit the cluster's dynamic configuration");
  edit_config->add_option("cluster_name", cluster_name);
  edit_config->add_option("-s,--set", edit.sets, "Set a key: -s loop_wait=5 (null deletes)");
  edit_config->add_option("-p,--pg", edit.pg_sets, "Set a PostgreSQL parameter: -p work_mem=8MB");
  edit_config->add_option("--apply", edit_apply, "Apply a YAML patch from a file (- for stdin)");
  edit_config->add_option("--replace", edit_replace, "Replace with a YAML file (- for stdin)");
  edit_config->add_flag("--force", edit.force, "Do not ask for confirmation");
  edit_config->add_flag("-q,--quiet", edit.quiet, "Do not show the diff");

  CLI11_PARSE(app, argc, argv);

  try {
    if (list->parsed() || topology->parsed()) {
      list_options.topology = topology->parsed();
      RunReader(ctx, [&](const pgha::cli::ClusterReader& read, pgha::cli::Terminal& terminal) {
        return pgha::cli::ListMembers(list_options, ctx.config.scope, read, terminal,
                                      pgha::SystemClock::Instance());
      });
    } else if (history->parsed()) {
      auto cluster = ctx.ReadCluster(ctx.Scope(cluster_name));
      Print(pgha::cli::HistoryTable(cluster), fmt);
    } else if (show_config->parsed() || dsn->parsed()) {
      if (dsn->parsed() && !member.empty() && !role.empty()) {
        Fail("--role and --member are mutually exclusive options");  // before reading the DCS
      }
      auto cluster = ctx.ReadCluster(ctx.Scope(cluster_name));
      auto text = show_config->parsed() ? pgha::cli::ShowConfig(cluster)
                                        : pgha::cli::Dsn(cluster, role, member);
      if (!text.ok()) {
        Fail(text.error().message());
      }
      std::cout << *text << "\n";
    } else if (query->parsed()) {
      RunReader(ctx, [&](const pgha::cli::ClusterReader& read, pgha::cli::Terminal& terminal) {
        return pgha::cli::Query(query_options, ctx.config.scope, read, ConnectLibpq, terminal,
                                pgha::SystemClock::Instance());
      });
    } else if (pause->parsed() || resume->parsed()) {
      return RunVerb(ctx, cluster_name, [&](pgha::cli::CtlContext& c) {
        return pgha::cli::SetPaused(c, pause->parsed(), wait);
      });
    } else if (reinit->parsed()) {
      return RunVerb(ctx, cluster_name, [&](pgha::cli::CtlContext& c) {
        return pgha::cli::ReinitMembers(c, reinit_options);
      });
    } else if (restart->parsed()) {
      return RunVerb(ctx, cluster_name, [&](pgha::cli::CtlContext& c) {
        return pgha::cli::RestartMembers(c, restart_options);
      });
    } else if (edit_config->parsed()) {
      if (!edit_replace.empty()) {
        edit.replace_yaml = ReadFileOrStdin(edit_replace);
      }
      if (!edit_apply.empty()) {
        edit.apply_yaml = ReadFileOrStdin(edit_apply);
      }
      return RunVerb(ctx, cluster_name, [&](pgha::cli::CtlContext& c) {
        return pgha::cli::EditConfig(c, edit, EditInEditor, UnifiedDiff);
      });
    } else if (version->parsed()) {
      std::cout << "pghactl version " << kVersion << " (patronictl 3.0.2 compatible)\n";
      if (cluster_name.empty()) {
        return 0;
      }
      std::cout << "\n";
      return RunVerb(ctx, cluster_name, [&](pgha::cli::CtlContext& c) {
        return pgha::cli::PrintMemberVersions(c, member_names);
      });
    } else if (switchover->parsed() || failover->parsed()) {
      // patronictl runs a failover that names the leader as a switchover.
      auto kind = switchover->parsed() || !failover_options.leader.empty()
                      ? pgha::cli::Handover::kSwitchover
                      : pgha::cli::Handover::kFailover;
      auto& options = switchover->parsed() ? switchover_options : failover_options;
      options.scheduled_given = switchover->count("--scheduled") > 0;
      return RunVerb(ctx, handover_cluster, [&](pgha::cli::CtlContext& c) {
        return pgha::cli::RunHandover(c, kind, options);
      });
    } else if (reload->parsed()) {
      return RunVerb(ctx, cluster_name, [&](pgha::cli::CtlContext& c) {
        return pgha::cli::ReloadMembers(c, member_names, member_role, member_force);
      });
    } else if (flush->parsed()) {
      if (member_names.empty()) {
        Fail("flush needs a target: restart or switchover");
      }
      std::string target = member_names.back();
      member_names.pop_back();
      return RunVerb(ctx, cluster_name, [&](pgha::cli::CtlContext& c) {
        return pgha::cli::Flush(c, target, member_names, member_role, member_force);
      });
    } else if (remove->parsed()) {
      return RunVerb(ctx, cluster_name,
                     [&](pgha::cli::CtlContext& c) { return pgha::cli::RemoveCluster(c); });
    }
  } catch (const CtlError& e) {
    std::cerr << "Error: " << e.message << "\n";
    return 1;
  }
  return 0;
}
