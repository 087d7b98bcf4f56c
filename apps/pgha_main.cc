// pgha: the node agent (Patroni's job). `pgha patroni.yml` runs one node; `--validate-config`
// checks a configuration and exits.
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <iostream>
#include <thread>

#include "agent/agent.h"
#include "agent/http_peer_client.h"
#include "api/dcs_controller.h"
#include "api/http/server.h"
#include "apps/etcd_from_config.h"
#include "common/log.h"
#include "config/config.h"
#include "config/yaml_json.h"
#include "dcs/etcd3/etcd3_dcs.h"
#include "postgres/local_postgres.h"

namespace {
constexpr const char* kVersion = "0.1.0";
}

int main(int argc, char** argv) {
  CLI::App app{"pgha: PostgreSQL high-availability agent (Patroni-compatible)"};
  std::string config_path;
  bool validate = false;
  bool print = false;
  app.add_option("config", config_path, "patroni.yml, or a directory of YAML files");
  app.add_flag("--validate-config", validate, "check the configuration and exit");
  app.add_flag("--print-config", print, "print the effective configuration (YAML) and exit");
  app.set_version_flag("--version", std::string("pgha ") + kVersion);
  CLI11_PARSE(app, argc, argv);

  pgha::config::LoadOptions options;
  if (!config_path.empty()) {
    options.path = config_path;
  }
  options.environment = pgha::config::CurrentEnvironment();
  auto config = pgha::config::LoadConfig(options);
  if (!config.ok()) {
    std::cerr << "pgha: invalid configuration: " << config.error().message() << "\n";
    return 2;
  }
  for (const auto& warning : config->warnings) {
    std::cerr << "pgha: warning: " << warning << "\n";
  }
  if (print) {
    std::cout << pgha::config::JsonToYaml(config->raw);
    return 0;
  }
  if (validate) {
    std::cout << "configuration is valid: member " << config->name << " of cluster "
              << config->scope << ", keys under " << config->KeyPrefix() << "\n";
    return 0;
  }
  if (::geteuid() == 0) {
    std::cerr << "pgha: refusing to run as root: PostgreSQL must run as an unprivileged user. "
                 "Run pgha as the postgres user, e.g. `runuser -u postgres -- pgha "
              << (config_path.empty() ? "<config>" : config_path) << "`\n";
    return 2;
  }
  pgha::InitLogging(config->log.level);
  // Orphaned postmasters (pg_ctl exits after starting them) become our children, so their
  // death is seen and reaped at once instead of leaving a zombie that blocks a restart.
  (void)::prctl(PR_SET_CHILD_SUBREAPER, 1);

  // Signals are taken by one thread with sigwait; every other thread blocks them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  pgha::model::GlobalConfig bootstrap_dynamic(config->bootstrap.dcs);
  auto client = pgha::apps::MakeEtcdClient(config->etcd3, bootstrap_dynamic.retry_timeout());
  pgha::dcs::etcd3::Etcd3Dcs dcs({config->KeyPrefix(), config->name, true}, client);
  // The configuration as an immutable snapshot: a reload makes a new one (agent/agent.h).
  auto snapshot = std::make_shared<const pgha::config::Config>(*config);
  pgha::postgres::LocalPostgres postgres(snapshot);
  pgha::agent::HttpPeerClient peers(pgha::api::http::PeerOptions(*config));
  pgha::agent::Agent agent(snapshot, dcs, postgres, peers, pgha::SystemClock::Instance());
  // The REST API's writes use their own uncached DCS handle, apart from the HA loop's.
  pgha::dcs::etcd3::Etcd3Dcs api_dcs(
      {config->KeyPrefix(), config->name, false},
      pgha::apps::MakeEtcdClient(config->etcd3, bootstrap_dynamic.retry_timeout()));
  agent.SetConfigSource([options] { return pgha::config::LoadConfig(options); });
  pgha::api::DcsController controller(
      api_dcs, peers,
      pgha::api::AgentHooks{
          [&agent](std::chrono::seconds timeout) { return agent.RestartPostgres(timeout); },
          [&agent](bool force, bool from_leader) { return agent.Reinitialize(force, from_leader); },
          [&agent] { return agent.Reload(); },
          [&agent](pgha::WallTime at, const nlohmann::json& shown,
                   const pgha::model::RestartConditions& conditions, std::chrono::seconds timeout) {
            return agent.ScheduleRestart(at, shown, conditions, timeout);
          },
          [&agent] { return agent.CancelScheduledRestart(); },
          [&agent](const std::string& name, const std::string& conn_url, const std::string& api_url,
                   const std::map<std::string, uint64_t>& slots) {
            agent.AcceptFailsafeLeader(name, conn_url, api_url, slots);
          }});
  pgha::api::http::RestServer rest(
      config->restapi,
      [&agent] {
        return pgha::api::ApiState{agent.CurrentStatus(), agent.CurrentCluster()};
      },
      &controller);
  if (auto started = rest.Start(); !started.ok()) {
    PGHA_LOG_ERROR("{}", started.error().message());
    return 1;
  }
  std::thread signal_thread([&] {
    while (true) {
      int sig = 0;
      if (sigwait(&signals, &sig) != 0) {
        continue;
      }
      if (sig == SIGHUP) {
        PGHA_LOG_INFO("SIGHUP received; reloading the configuration");
        (void)agent.Reload();
        continue;
      }
      PGHA_LOG_INFO("received {}; stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
      agent.RequestStop();
      return;
    }
  });
  agent.Run();
  rest.Stop();
  if (signal_thread.joinable()) {
    pthread_kill(signal_thread.native_handle(), SIGTERM);
    signal_thread.join();
  }
  (void)dcs.ReleaseLease();
  if (auto fatal = agent.FatalError(); !fatal.empty()) {
    PGHA_LOG_ERROR("pgha stopped: {}", fatal);
    return 1;
  }
  PGHA_LOG_INFO("pgha stopped");
  return 0;
}
