// pgha-router: the cluster's front door. Writes on 5000 go to the member holding the leader key,
// reads on 5001 to the replicas, as etcd says the moment it changes (docs/router.md). Reads a
// node's patroni.yml (scope, namespace, etcd3, restapi/ctl credentials) plus its `router:`
// section and PGHA_ROUTER_* variables. SIGHUP reloads the router settings; SIGTERM drains.
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <array>
#include <atomic>
#include <iostream>
#include <thread>

#include "api/http/client.h"
#include "apps/auth_query.h"
#include "apps/etcd_from_config.h"
#include "common/log.h"
#include "config/config.h"
#include "config/environment.h"
#include "dcs/etcd3/etcd3_dcs.h"
#include "router/etcd_cluster_source.h"
#include "router/proxy.h"
#include "router/rest_member_checker.h"
#include "router/settings.h"
#include "router/stats.h"
#include "router/topology.h"

namespace {

constexpr const char* kVersion = "0.1.0";

struct Loaded {
  pgha::config::Config config;
  pgha::router::RouterSettings settings;
};

struct Overrides {
  std::string write_listen, read_listen, stats_listen;
};

pgha::Result<Loaded> Load(const std::string& path, const Overrides& overrides) {
  pgha::config::LoadOptions options;
  if (!path.empty()) {
    options.path = path;
  }
  options.environment = pgha::config::CurrentEnvironment();
  options.for_ctl = true;  // the DCS section and scope; a node's other settings are not needed
  auto config = pgha::config::LoadConfig(options);
  if (!config.ok()) {
    return config.error();
  }
  if (config->scope.empty()) {
    return pgha::Error::Invalid("scope is not set (the cluster to route for)");
  }
  nlohmann::json section = config->raw.contains("router") ? config->raw["router"] : nullptr;
  if (!overrides.write_listen.empty() || !overrides.read_listen.empty() ||
      !overrides.stats_listen.empty()) {
    if (!section.is_object()) {
      section = nlohmann::json::object();
    }
    if (!overrides.write_listen.empty()) section["write_listen"] = overrides.write_listen;
    if (!overrides.read_listen.empty()) section["read_listen"] = overrides.read_listen;
    if (!overrides.stats_listen.empty()) section["stats_listen"] = overrides.stats_listen;
  }
  auto settings = pgha::router::ParseRouterSettings(section, options.environment);
  if (!settings.ok()) {
    return settings.error();
  }
  if (settings->name.empty()) {
    // Unique per router of a cluster as long as no two share a host and a write port.
    std::array<char, 256> host{};
    if (::gethostname(host.data(), host.size() - 1) != 0) {
      host = {'r', 'o', 'u', 't', 'e', 'r'};
    }
    settings->name = std::string(host.data()) + "-" + std::to_string(settings->write_listen.port);
  }
  return Loaded{std::move(*config), *settings};
}

// The router's REST checks: a node's peer credentials, with a deadline inside one interval.
pgha::api::http::ClientOptions CheckOptions(const pgha::config::Config& config) {
  auto options = pgha::api::http::PeerOptions(config);
  options.connect_timeout = std::chrono::seconds(1);
  options.read_timeout = std::chrono::seconds(1);
  return options;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"pgha-router: PostgreSQL write/read router driven by the cluster's etcd keys"};
  std::string config_path;
  Overrides overrides;
  bool validate = false;
  app.add_option("config", config_path, "a node's patroni.yml (scope, etcd3, restapi, router)")
      ->envname("PGHA_ROUTER_CONFIG");
  app.add_option("--write-listen", overrides.write_listen, "address for writes (0.0.0.0:5000)");
  app.add_option("--read-listen", overrides.read_listen, "address for reads (0.0.0.0:5001)");
  app.add_option("--stats-listen", overrides.stats_listen,
                 "address for /, /metrics and /health (0.0.0.0:8484)");
  app.add_flag("--validate-config", validate, "check the configuration and exit");
  app.set_version_flag("--version", std::string("pgha-router ") + kVersion);
  CLI11_PARSE(app, argc, argv);

  auto loaded = Load(config_path, overrides);
  if (!loaded.ok()) {
    std::cerr << "pgha-router: invalid configuration: " << loaded.error().message() << "\n";
    return 2;
  }
  const auto& config = loaded->config;
  if (validate) {
    std::cout << "configuration is valid: routing cluster " << config.scope << " (keys under "
              << config.KeyPrefix() << "), writes on " << loaded->settings.write_listen.ToString()
              << ", reads on " << loaded->settings.read_listen.ToString() << "\n";
    return 0;
  }
  pgha::InitLogging(config.log.level);
  for (const auto& warning : config.warnings) {
    PGHA_LOG_WARN("{}", warning);
  }

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  auto settings = std::make_shared<const pgha::router::RouterSettings>(loaded->settings);
  // A ping must give up well inside the check interval's rhythm; 2 s at most.
  double etcd_deadline = std::min(2.0, std::max(0.5, 2 * settings->check_interval.count() / 1e3));
  pgha::dcs::etcd3::Etcd3DcsOptions dcs_options;
  dcs_options.prefix = config.KeyPrefix();
  dcs_options.use_cache = true;
  dcs_options.wake_on_every_key = true;
  pgha::dcs::etcd3::Etcd3Dcs dcs(dcs_options,
                                 pgha::apps::MakeEtcdClient(config.etcd3, etcd_deadline));
  dcs.SetTimings(30, 10, etcd_deadline);
  pgha::router::EtcdClusterSource source(dcs);
  pgha::router::RestMemberChecker checker(CheckOptions(config));

  pgha::router::Proxy proxy(*settings);
  // The watcher exists only below; a refusal before then has nobody to tell.
  std::atomic<pgha::router::TopologyWatcher*> watcher_for_refusals{nullptr};
  proxy.SetRefusalListener([&watcher_for_refusals](const std::string&) {
    if (auto* watcher = watcher_for_refusals.load()) {
      watcher->RecheckMembers();
    }
  });
  proxy.SetSecretLookup(pgha::apps::MakeAuthQueryLookup(config, *settings));
  std::atomic<pgha::router::TopologyWatcher*> watcher_for_drains{nullptr};
  proxy.SetDrainedListener([&watcher_for_drains] {
    if (auto* watcher = watcher_for_drains.load()) {
      watcher->RecheckAcknowledgement();
    }
  });
  if (auto started = proxy.Start(); !started.ok()) {
    PGHA_LOG_ERROR("{}", started.error().message());
    return 1;
  }
  PGHA_LOG_INFO("routing cluster {}: writes on {} ({} mode), reads on {}", config.scope,
                settings->write_listen.ToString(), pgha::router::ProxyModeName(settings->mode),
                settings->read_listen.ToString());
  pgha::router::TopologyWatcher watcher(
      source, checker, pgha::SystemClock::Instance(), settings,
      [&proxy](const pgha::router::Routes& routes) { proxy.Apply(routes); });
  watcher.SetAcknowledgementGate([&proxy] { return proxy.Drained(); });
  watcher.Start();
  watcher_for_refusals = &watcher;
  watcher_for_drains = &watcher;

  std::atomic<bool> draining{false};
  const auto started_at = pgha::SystemClock::Instance().Now();
  auto view = [&] {
    pgha::router::RouterView v;
    v.proxy = proxy.Stats();
    v.topology = watcher.Status();
    v.now = pgha::SystemClock::Instance().Now();
    v.started = started_at;
    v.draining = draining.load();
    return v;
  };
  auto stats = std::make_unique<pgha::router::StatsServer>(settings->stats_listen, view);
  if (auto started = stats->Start(); !started.ok()) {
    PGHA_LOG_ERROR("stats port: {}", started.error().message());
    return 1;
  }

  while (true) {
    int sig = 0;
    if (sigwait(&signals, &sig) != 0) {
      continue;
    }
    if (sig == SIGHUP) {
      auto reloaded = Load(config_path, overrides);
      if (!reloaded.ok()) {
        PGHA_LOG_ERROR("reload refused, keeping the running settings: {}",
                       reloaded.error().message());
        continue;
      }
      if (reloaded->config.KeyPrefix() != config.KeyPrefix() ||
          reloaded->config.etcd3.hosts != config.etcd3.hosts) {
        PGHA_LOG_WARN("scope, namespace and etcd3 hosts take effect at the next start only");
      }
      if (auto applied = proxy.Reload(reloaded->settings); !applied.ok()) {
        PGHA_LOG_ERROR("reload refused, keeping the running settings: {}",
                       applied.error().message());
        continue;
      }
      auto next = std::make_shared<const pgha::router::RouterSettings>(reloaded->settings);
      if (next->stats_listen.ToString() != settings->stats_listen.ToString()) {
        auto moved = std::make_unique<pgha::router::StatsServer>(next->stats_listen, view);
        if (auto started = moved->Start(); started.ok()) {
          stats->Stop();
          stats = std::move(moved);
        } else {
          PGHA_LOG_ERROR("stats port stays on {}: {}", settings->stats_listen.ToString(),
                         started.error().message());
        }
      }
      watcher.SetSettings(next);
      settings = next;
      PGHA_LOG_INFO("settings reloaded; open connections kept");
      continue;
    }
    break;
  }
  // Drain: no new clients; the open ones finish, up to drain_timeout, or a second signal.
  draining = true;
  proxy.StopAccepting();
  PGHA_LOG_INFO("draining {} open connections (up to {} ms)", proxy.ActiveConnections(),
                settings->drain_timeout.count());
  auto deadline = std::chrono::steady_clock::now() + settings->drain_timeout;
  timespec poll{0, 100 * 1000 * 1000};
  while (proxy.ActiveConnections() > 0 && std::chrono::steady_clock::now() < deadline) {
    int sig = sigtimedwait(&signals, nullptr, &poll);
    if (sig == SIGTERM || sig == SIGINT) {
      PGHA_LOG_INFO("second stop signal: closing the remaining connections");
      break;
    }
  }
  watcher_for_refusals = nullptr;
  watcher_for_drains = nullptr;
  watcher.Stop();
  // This router's key goes with its lease: no leader waits for a router that is gone.
  (void)dcs.ReleaseLease();
  proxy.CloseAll();
  proxy.Stop();
  stats->Stop();
  PGHA_LOG_INFO("pgha-router stopped");
  return 0;
}
