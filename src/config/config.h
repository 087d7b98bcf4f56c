// The node's local configuration: a patroni.yml (a file or a directory of YAML files), the
// PATRONI_* environment and the seed's Spilo-style variables, merged into one validated,
// immutable Config.
//
// Precedence, lowest first: built-in defaults < Spilo-style variables < the YAML file(s) <
// PATRONI_* variables. When no path is given and PATRONI_CONFIGURATION is set, its YAML is the
// whole configuration and no other variable is read (Patroni's rule).
//
// Thread-safety: Config is an immutable value once loaded.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "config/environment.h"

namespace pgha::config {

struct HostPort {
  std::string host;
  int port = 0;
  std::string ToString() const;
};

// "host:port", "[::1]:port", ":port" (any address) or "port".
Result<HostPort> ParseHostPort(const std::string& text, int default_port);

struct BasicAuth {
  std::string username;
  std::string password;
};

struct RestApiConfig {
  std::string listen;           // as configured, "0.0.0.0:8008"
  HostPort listen_address;      // parsed
  std::string connect_address;  // what peers and patronictl use; derived from listen if unset
  std::optional<BasicAuth> authentication;
  std::string certfile, keyfile, keyfile_password, cafile, ciphers;
  std::string verify_client;  // "", "none", "optional", "required"
  std::vector<std::string> allowlist;
  bool allowlist_include_members = false;
  std::map<std::string, std::string> http_extra_headers;
  std::map<std::string, std::string> https_extra_headers;
};

struct Etcd3Config {
  std::vector<std::string> hosts;  // "host:port"
  std::string protocol = "http";
  std::string username, password;
  std::string cacert, cert, key;
  bool use_proxies = false;
};

struct PgUser {
  std::string username;
  std::string password;
  std::map<std::string, std::string> ssl;  // sslmode, sslcert, ... passed through to libpq
};

struct PostgresqlConfig {
  std::string listen;
  HostPort listen_address;
  std::string connect_address;
  std::string proxy_address;
  std::string data_dir;
  std::string config_dir;  // defaults to data_dir
  std::string bin_dir;
  std::map<std::string, std::string> bin_name;
  std::string pgpass;
  std::string database = "postgres";
  PgUser superuser;
  PgUser replication;
  std::optional<PgUser> rewind;
  nlohmann::json parameters = nlohmann::json::object();
  std::vector<std::string> pg_hba;
  std::vector<std::string> pg_ident;
  std::map<std::string, std::string> callbacks;
  std::string pre_promote;  // run before promotion; a failure keeps this node a replica
  std::string before_stop;  // run before PostgreSQL is stopped (not for an immediate stop)
  std::vector<std::string> create_replica_methods;
  nlohmann::json recovery_conf = nlohmann::json::object();
  std::optional<bool> use_pg_rewind;  // local override of the dynamic setting
  bool remove_data_directory_on_rewind_failure = false;
  bool remove_data_directory_on_diverged_timelines = false;
  int pg_ctl_timeout = 60;
  bool use_unix_socket = false;
  bool use_unix_socket_repl = false;
  nlohmann::json raw = nlohmann::json::object();  // the whole section, for method sections

  // Path of a PostgreSQL program: bin_name overrides, then bin_dir, then plain name (PATH).
  std::string BinaryPath(const std::string& program) const;
  // The options section of a replica creation method (postgresql.<method>); empty when none.
  nlohmann::json MethodOptions(const std::string& method) const;
  // Whether `method` can create a replica with no leader to copy from: a restore from a backup
  // marked no_leader (or Patroni's older no_master).
  bool MethodWorksWithoutLeader(const std::string& method) const;
};

struct BootstrapConfig {
  nlohmann::json dcs = nlohmann::json::object();  // initial dynamic configuration
  std::string method = "initdb";
  nlohmann::json initdb = nlohmann::json::array();
  std::string post_bootstrap;
  nlohmann::json raw = nlohmann::json::object();
};

struct WatchdogConfig {
  std::string mode = "automatic";  // off | automatic | required
  std::string device = "/dev/watchdog";
  double safety_margin = 5;
  // default: the Linux watchdog ioctls; testing: Patroni's named-pipe device for its suite.
  std::string driver = "default";
};

struct LogConfig {
  std::string level = "INFO";
  std::string dir;
  std::string format;
};

struct CtlConfig {
  bool insecure = false;
  std::string cacert, certfile, keyfile, keyfile_password;
  std::optional<BasicAuth> authentication;
};

struct Tags {
  nlohmann::json raw = nlohmann::json::object();  // what the member key advertises
  bool nofailover = false;
  int64_t failover_priority = 1;
  bool noloadbalance = false;
  bool clonefrom = false;
  bool nosync = false;
  bool nostream = false;
  std::string replicatefrom;
};

struct Config {
  std::string name;
  std::string scope;
  std::string namespace_ = "service";  // normalised: no leading or trailing '/'
  RestApiConfig restapi;
  Etcd3Config etcd3;
  PostgresqlConfig postgresql;
  BootstrapConfig bootstrap;
  WatchdogConfig watchdog;
  LogConfig log;
  CtlConfig ctl;
  Tags tags;
  nlohmann::json raw;                 // the merged tree, as the user wrote it
  std::vector<std::string> warnings;  // unknown keys and variables, adjusted values

  // "/service/pg-ha/"
  std::string KeyPrefix() const;
};

struct LoadOptions {
  std::optional<std::string> path;  // a YAML file or a directory of *.yml / *.yaml files
  Environment environment;
  // pghactl needs only the DCS section and scope, not a whole node configuration.
  bool for_ctl = false;
};

// Reads, merges and validates. Errors name the key, the bad value and the rule it breaks.
Result<Config> LoadConfig(const LoadOptions& options);

// Validates an already merged tree (used by LoadConfig, tests and the fuzz target).
Result<Config> ConfigFromTree(const nlohmann::json& tree, bool for_ctl = false);

// bootstrap.initdb as initdb's arguments, by Patroni's rules: a list of flags and single-key
// mappings with string values, or one mapping; pgdata, nosync, pwfile, sync-only and version are
// refused (pgha chooses the data directory and writes the password file itself).
Result<std::vector<std::string>> InitdbArguments(const nlohmann::json& options);

// Reads one YAML file or a directory of them (sorted by name, merged in order).
Result<nlohmann::json> ReadYamlPath(const std::string& path);

}  // namespace pgha::config
