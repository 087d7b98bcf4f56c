#include "config/config.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "common/strings.h"
#include "config/yaml_json.h"
#include "model/global_config.h"

namespace pgha::config {

using nlohmann::json;
namespace fs = std::filesystem;

std::string HostPort::ToString() const {
  if (host.find(':') != std::string::npos) {
    return fmt::format("[{}]:{}", host, port);
  }
  return fmt::format("{}:{}", host, port);
}

Result<HostPort> ParseHostPort(const std::string& text, int default_port) {
  std::string s(Trim(text));
  HostPort out{"", default_port};
  std::string port_text;
  if (!s.empty() && s.front() == '[') {
    size_t close = s.find(']');
    if (close == std::string::npos) {
      return Error::Invalid(fmt::format("'{}' has an unclosed '['", text));
    }
    out.host = s.substr(1, close - 1);
    std::string rest = s.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') {
        return Error::Invalid(fmt::format("'{}' is not host:port", text));
      }
      port_text = rest.substr(1);
    }
  } else if (std::count(s.begin(), s.end(), ':') == 1) {
    size_t colon = s.find(':');
    out.host = s.substr(0, colon);
    port_text = s.substr(colon + 1);
  } else if (!s.empty() && std::all_of(s.begin(), s.end(), ::isdigit)) {
    port_text = s;
  } else {
    out.host = s;
  }
  if (!port_text.empty()) {
    auto port = ParseInt64(port_text);
    if (!port || *port < 1 || *port > 65535) {
      return Error::Invalid(
          fmt::format("'{}' has an invalid port '{}' (1-65535)", text, port_text));
    }
    out.port = static_cast<int>(*port);
  }
  if (out.port == 0) {
    return Error::Invalid(fmt::format("'{}' has no port", text));
  }
  if (out.host.empty()) {
    out.host = "0.0.0.0";
  }
  return out;
}

std::string PostgresqlConfig::BinaryPath(const std::string& program) const {
  auto it = bin_name.find(program);
  std::string name = it != bin_name.end() ? it->second : program;
  if (name.find('/') != std::string::npos || bin_dir.empty()) {
    return name;
  }
  return (fs::path(bin_dir) / name).string();
}

std::string Config::KeyPrefix() const { return "/" + namespace_ + "/" + scope + "/"; }

namespace {

// Known keys per section, for "unknown key" warnings. Sections whose keys are free-form
// (parameters, tags, bootstrap.dcs, callbacks, ...) are not listed and so are not checked.
const std::map<std::string, std::set<std::string>>& Schema() {
  static const std::map<std::string, std::set<std::string>> schema = {
      {"",
       {"name",
        "scope",
        "namespace",
        "restapi",
        "ctl",
        "etcd3",
        "etcd",
        "consul",
        "zookeeper",
        "exhibitor",
        "kubernetes",
        "raft",
        "bootstrap",
        "postgresql",
        "watchdog",
        "tags",
        "log",
        "citus",
        "thread_pool_size",
        "thread_stack_size",
        "synchronous_mode",
        "synchronous_mode_strict",
        "pgha",
        "router"}},
      {"restapi",
       {"listen", "connect_address", "authentication", "certfile", "keyfile", "keyfile_password",
        "cafile", "ciphers", "verify_client", "http_extra_headers", "https_extra_headers",
        "allowlist", "allowlist_include_members", "request_queue_size", "server_tokens",
        "thread_pool_size", "proxy_address"}},
      {"restapi.authentication", {"username", "password"}},
      {"ctl", {"insecure", "cacert", "certfile", "keyfile", "keyfile_password", "authentication"}},
      {"ctl.authentication", {"username", "password"}},
      {"etcd3",
       {"host", "hosts", "url", "proxy", "srv", "srv_suffix", "protocol", "username", "password",
        "cacert", "cert", "key", "use_proxies", "retry_timeout"}},
      {"bootstrap", {"dcs", "method", "initdb", "post_bootstrap", "post_init", "users", "pg_hba"}},
      {"postgresql",
       {"listen",
        "connect_address",
        "proxy_address",
        "data_dir",
        "config_dir",
        "bin_dir",
        "bin_name",
        "pgpass",
        "authentication",
        "callbacks",
        "create_replica_methods",
        "create_replica_method",
        "basebackup",
        "recovery_conf",
        "custom_conf",
        "parameters",
        "pg_hba",
        "pg_ident",
        "pg_ctl_timeout",
        "use_pg_rewind",
        "rewind",
        "remove_data_directory_on_rewind_failure",
        "remove_data_directory_on_diverged_timelines",
        "replica_method",
        "pre_promote",
        "before_stop",
        "use_unix_socket",
        "use_unix_socket_repl",
        "database",
        "use_slots",
        "name",
        "scope",
        "retry_timeout",
        "schedule_restart"}},
      {"postgresql.authentication", {"superuser", "replication", "rewind"}},
      {"watchdog", {"mode", "device", "safety_margin", "driver"}},
      {"log",
       {"type", "level", "traceback_level", "format", "dateformat", "static_fields",
        "max_queue_size", "dir", "mode", "file_num", "file_size", "loggers",
        "deduplicate_heartbeat_logs"}},
  };
  return schema;
}

void WarnUnknownKeys(const json& tree, const std::string& path, std::vector<std::string>* out) {
  auto it = Schema().find(path);
  if (it == Schema().end() || !tree.is_object()) {
    return;
  }
  std::set<std::string> extra_allowed;
  if (path == "postgresql") {
    // Custom replica-creation methods have sections named after them.
    if (auto m = tree.find("create_replica_methods"); m != tree.end() && m->is_array()) {
      for (const auto& name : *m) {
        if (name.is_string()) {
          extra_allowed.insert(name.get<std::string>());
        }
      }
    }
  }
  if (path == "bootstrap") {
    if (auto m = tree.find("method"); m != tree.end() && m->is_string()) {
      extra_allowed.insert(m->get<std::string>());
    }
  }
  for (const auto& [key, value] : tree.items()) {
    std::string child = path.empty() ? key : path + "." + key;
    if (!it->second.count(key) && !extra_allowed.count(key)) {
      out->push_back(fmt::format("unknown configuration key '{}' ignored", child));
      continue;
    }
    WarnUnknownKeys(value, child, out);
  }
}

// Keys Patroni 3.0.2 knows that pgha accepts but does not act on: said at every start, with
// what happens instead, so that no setting is ignored without a word.
void WarnUnimplementedKeys(const json& tree, std::vector<std::string>* out) {
  static const std::vector<std::pair<std::vector<std::string>, std::string>> kUnimplemented = {
      {{"postgresql", "config_dir"},
       "pgha keeps postgresql.conf, pg_hba.conf and pg_ident.conf in the data directory"},
      {{"postgresql", "custom_conf"},
       "pgha writes postgresql.conf itself and includes "
       "postgresql.base.conf only"},
      {{"postgresql", "pg_ident"}, "pg_ident.conf is left as initdb wrote it"},
      {{"postgresql", "use_unix_socket_repl"},
       "replication connections use TCP to the member's connect_address"},
      {{"postgresql", "remove_data_directory_on_diverged_timelines"},
       "a diverged replica is rewound (use_pg_rewind) or left for `pghactl reinit`"},
      {{"postgresql", "replica_method"}, "use create_replica_methods (a list)"},
      {{"postgresql", "create_replica_method"}, "use create_replica_methods (a list)"},
      {{"log", "dir"}, "pgha logs to standard error; redirect it (systemd, docker) to a file"},
      {{"log", "file_num"}, "pgha logs to standard error"},
      {{"log", "file_size"}, "pgha logs to standard error"},
      {{"citus"}, "pgha has no Citus support"},
      {{"bootstrap", "dcs", "max_timelines_history"}, "the history key keeps every timeline"},
      {{"bootstrap", "dcs", "check_timeline"},
       "a replica's timeline is not compared with the history key before it races"},
      {{"bootstrap", "dcs", "primary_stop_timeout"},
       "a primary's stop is bounded by pg_ctl_timeout and the lock's remaining ttl"},
      {{"bootstrap", "dcs", "master_stop_timeout"},
       "a primary's stop is bounded by pg_ctl_timeout and the lock's remaining ttl"},
  };
  for (const auto& [path, what] : kUnimplemented) {
    const json* node = &tree;
    std::string name;
    for (const auto& part : path) {
      if (!node->is_object() || !node->contains(part)) {
        node = nullptr;
        break;
      }
      node = &node->at(part);
      name += (name.empty() ? "" : ".") + part;
    }
    if (node != nullptr && !node->is_null()) {
      out->push_back(
          fmt::format("{} is not implemented by pgha and has no effect: {}", name, what));
    }
  }
}

// Typed readers. Each names the full key in its error.
class Reader {
 public:
  Reader(const json& node, std::string path) : node_(node), path_(std::move(path)) {}

  bool Has(const char* key) const {
    return node_.is_object() && node_.contains(key) && !node_.at(key).is_null();
  }
  std::string Key(const char* key) const { return path_.empty() ? key : path_ + "." + key; }

  Result<std::string> String(const char* key, const std::string& fallback = "") const {
    if (!Has(key)) {
      return fallback;
    }
    const json& v = node_.at(key);
    if (v.is_string()) {
      return v.get<std::string>();
    }
    if (v.is_number() || v.is_boolean()) {
      return v.dump();  // YAML turned `port: 5432` into a number; Patroni takes it as text
    }
    return Error::Invalid(fmt::format("{}: expected a string, got '{}'", Key(key), v.dump()));
  }

  Result<bool> Bool(const char* key, bool fallback) const {
    if (!Has(key)) {
      return fallback;
    }
    auto v = model::JsonAsBool(node_.at(key));
    if (!v) {
      return Error::Invalid(
          fmt::format("{}: expected true or false, got '{}'", Key(key), node_.at(key).dump()));
    }
    return *v;
  }

  Result<int64_t> Int(const char* key, int64_t fallback, int64_t minimum) const {
    if (!Has(key)) {
      return fallback;
    }
    const json& v = node_.at(key);
    std::optional<int64_t> n;
    if (v.is_number_integer()) {
      n = v.get<int64_t>();
    } else if (v.is_string()) {
      n = ParseInt64(Trim(v.get<std::string>()));
    }
    if (!n) {
      return Error::Invalid(fmt::format("{}: expected an integer, got '{}'", Key(key), v.dump()));
    }
    if (*n < minimum) {
      return Error::Invalid(
          fmt::format("{}: {} is below the minimum of {}", Key(key), *n, minimum));
    }
    return *n;
  }

  Result<double> Number(const char* key, double fallback) const {
    if (!Has(key)) {
      return fallback;
    }
    auto n = model::JsonAsNumber(node_.at(key));
    if (!n) {
      return Error::Invalid(
          fmt::format("{}: expected a number, got '{}'", Key(key), node_.at(key).dump()));
    }
    return *n;
  }

  Result<std::vector<std::string>> StringList(const char* key) const {
    std::vector<std::string> out;
    if (!Has(key)) {
      return out;
    }
    const json& v = node_.at(key);
    if (v.is_string()) {
      return ParseEnvironmentList(v.get<std::string>());
    }
    if (!v.is_array()) {
      return Error::Invalid(fmt::format("{}: expected a list, got '{}'", Key(key), v.dump()));
    }
    for (const auto& item : v) {
      if (item.is_string()) {
        out.push_back(item.get<std::string>());
      } else if (item.is_number()) {
        out.push_back(item.dump());
      } else {
        return Error::Invalid(
            fmt::format("{}: list items must be strings, got '{}'", Key(key), item.dump()));
      }
    }
    return out;
  }

  Result<std::map<std::string, std::string>> StringMap(const char* key) const {
    std::map<std::string, std::string> out;
    if (!Has(key)) {
      return out;
    }
    const json& v = node_.at(key);
    if (!v.is_object()) {
      return Error::Invalid(fmt::format("{}: expected a mapping, got '{}'", Key(key), v.dump()));
    }
    for (const auto& [k, item] : v.items()) {
      out[k] = item.is_string() ? item.get<std::string>() : item.dump();
    }
    return out;
  }

  Reader Child(const char* key) const {
    static const json kEmpty = json::object();
    if (Has(key)) {
      return Reader(node_.at(key), Key(key));
    }
    return Reader(kEmpty, Key(key));
  }

  Status RequireMapping() const {
    if (!node_.is_object()) {
      return Error::Invalid(fmt::format("{}: expected a mapping, got '{}'",
                                        path_.empty() ? "configuration" : path_, node_.dump()));
    }
    return OkStatus();
  }

  const json& node() const { return node_; }

 private:
  const json& node_;
  std::string path_;
};

#define PGHA_ASSIGN(lhs, expr)            \
  do {                                    \
    auto pgha_value_ = (expr);            \
    if (!pgha_value_.ok()) {              \
      return pgha_value_.error();         \
    }                                     \
    lhs = std::move(pgha_value_).value(); \
  } while (false)

std::string NormaliseNamespace(const std::string& ns) {
  std::vector<std::string> parts = SplitAndTrim(ns, '/');
  std::string out;
  for (const auto& p : parts) {
    out += (out.empty() ? "" : "/") + p;
  }
  return out.empty() ? "service" : out;
}

Result<PgUser> ReadUser(const Reader& auth, const char* role, const std::string& default_name) {
  PgUser user;
  Reader r = auth.Child(role);
  PGHA_RETURN_IF_ERROR(r.RequireMapping());
  PGHA_ASSIGN(user.username, r.String("username", default_name));
  PGHA_ASSIGN(user.password, r.String("password"));
  if (r.node().is_object()) {
    for (const auto& [k, v] : r.node().items()) {
      if (k != "username" && k != "password") {
        user.ssl[k] = v.is_string() ? v.get<std::string>() : v.dump();
      }
    }
  }
  return user;
}

Status ReadRestApi(const Reader& r, bool for_ctl, RestApiConfig* out,
                   std::vector<std::string>* warnings) {
  PGHA_RETURN_IF_ERROR(r.RequireMapping());
  PGHA_ASSIGN(out->listen, r.String("listen"));
  if (out->listen.empty()) {
    if (for_ctl) {
      out->listen = "127.0.0.1:8008";
    } else {
      return Error::Invalid("restapi.listen: required (e.g. 0.0.0.0:8008)");
    }
  }
  auto listen = ParseHostPort(out->listen, 8008);
  if (!listen.ok()) {
    return listen.error().WithContext("restapi.listen");
  }
  out->listen_address = *listen;
  PGHA_ASSIGN(out->connect_address, r.String("connect_address"));
  if (out->connect_address.empty()) {
    HostPort connect = out->listen_address;
    if (connect.host == "0.0.0.0" || connect.host == "::" || connect.host == "*") {
      connect.host = "127.0.0.1";
      if (!for_ctl) {
        warnings->push_back(
            "restapi.connect_address is not set and restapi.listen is a wildcard; peers will "
            "be told 127.0.0.1, which works on one machine only");
      }
    }
    out->connect_address = connect.ToString();
  } else {
    auto connect = ParseHostPort(out->connect_address, 8008);
    if (!connect.ok()) {
      return connect.error().WithContext("restapi.connect_address");
    }
  }
  Reader auth = r.Child("authentication");
  if (r.Has("authentication")) {
    PGHA_RETURN_IF_ERROR(auth.RequireMapping());
    BasicAuth basic;
    PGHA_ASSIGN(basic.username, auth.String("username"));
    PGHA_ASSIGN(basic.password, auth.String("password"));
    if (basic.username.empty()) {
      return Error::Invalid("restapi.authentication.username: required when authentication is set");
    }
    out->authentication = basic;
  }
  PGHA_ASSIGN(out->certfile, r.String("certfile"));
  PGHA_ASSIGN(out->keyfile, r.String("keyfile"));
  PGHA_ASSIGN(out->keyfile_password, r.String("keyfile_password"));
  PGHA_ASSIGN(out->cafile, r.String("cafile"));
  PGHA_ASSIGN(out->ciphers, r.String("ciphers"));
  PGHA_ASSIGN(out->verify_client, r.String("verify_client"));
  if (!out->verify_client.empty() && out->verify_client != "none" &&
      out->verify_client != "optional" && out->verify_client != "required") {
    return Error::Invalid(fmt::format(
        "restapi.verify_client: '{}' must be none, optional or required", out->verify_client));
  }
  if (!out->verify_client.empty() && out->verify_client != "none" && out->cafile.empty()) {
    return Error::Invalid("restapi.cafile: required when restapi.verify_client is " +
                          out->verify_client);
  }
  if (out->certfile.empty() != out->keyfile.empty() && !out->certfile.empty()) {
    // Patroni accepts a certfile holding the key too; only a lone keyfile is an error.
  } else if (out->certfile.empty() && !out->keyfile.empty()) {
    return Error::Invalid("restapi.certfile: required when restapi.keyfile is set");
  }
  PGHA_ASSIGN(out->allowlist, r.StringList("allowlist"));
  PGHA_ASSIGN(out->allowlist_include_members, r.Bool("allowlist_include_members", false));
  PGHA_ASSIGN(out->http_extra_headers, r.StringMap("http_extra_headers"));
  PGHA_ASSIGN(out->https_extra_headers, r.StringMap("https_extra_headers"));
  return OkStatus();
}

Status ReadEtcd3(const json& tree, bool for_ctl, Etcd3Config* out) {
  for (const char* other : {"etcd", "consul", "zookeeper", "exhibitor", "kubernetes", "raft"}) {
    if (tree.contains(other) && !tree.contains("etcd3")) {
      return Error::Invalid(fmt::format(
          "{}: pgha supports the etcd3 DCS only; configure an 'etcd3' section (etcd >= 3.4 "
          "with the v3 API){}",
          other,
          std::string(other) == "etcd" ? " — Patroni's 'etcd' section uses the v2 API" : ""));
    }
  }
  if (!tree.contains("etcd3")) {
    if (for_ctl) {
      return OkStatus();
    }
    return Error::Invalid(
        "etcd3: required (hosts of the etcd cluster, e.g. etcd3: {hosts: "
        "['127.0.0.1:2379']}), or set ETCD3_HOSTS / PATRONI_ETCD3_HOSTS");
  }
  Reader r(tree.at("etcd3"), "etcd3");
  PGHA_RETURN_IF_ERROR(r.RequireMapping());
  PGHA_ASSIGN(out->protocol, r.String("protocol", "http"));
  out->protocol = ToLower(out->protocol);
  if (out->protocol != "http" && out->protocol != "https") {
    return Error::Invalid(fmt::format("etcd3.protocol: '{}' must be http or https", out->protocol));
  }
  PGHA_ASSIGN(out->hosts, r.StringList("hosts"));
  std::string host;
  PGHA_ASSIGN(host, r.String("host"));
  if (!host.empty()) {
    out->hosts.push_back(host);
  }
  std::string url;
  PGHA_ASSIGN(url, r.String("url"));
  if (url.empty()) {
    PGHA_ASSIGN(url, r.String("proxy"));
  }
  if (!url.empty()) {
    size_t scheme = url.find("://");
    if (scheme != std::string::npos) {
      out->protocol = ToLower(url.substr(0, scheme));
      url = url.substr(scheme + 3);
    }
    while (!url.empty() && url.back() == '/') {
      url.pop_back();
    }
    out->hosts.push_back(url);
  }
  if (out->hosts.empty()) {
    return Error::Invalid("etcd3.hosts: at least one etcd endpoint is required (host:port)");
  }
  for (auto& h : out->hosts) {
    // Accept full URLs in hosts as well; keep host:port only.
    size_t scheme = h.find("://");
    if (scheme != std::string::npos) {
      out->protocol = ToLower(h.substr(0, scheme));
      h = h.substr(scheme + 3);
    }
    while (!h.empty() && h.back() == '/') {
      h.pop_back();
    }
    auto parsed = ParseHostPort(h, 2379);
    if (!parsed.ok()) {
      return parsed.error().WithContext("etcd3.hosts");
    }
    h = parsed->ToString();
  }
  PGHA_ASSIGN(out->username, r.String("username"));
  PGHA_ASSIGN(out->password, r.String("password"));
  PGHA_ASSIGN(out->cacert, r.String("cacert"));
  PGHA_ASSIGN(out->cert, r.String("cert"));
  PGHA_ASSIGN(out->key, r.String("key"));
  PGHA_ASSIGN(out->use_proxies, r.Bool("use_proxies", false));
  if (!out->cert.empty() && out->key.empty()) {
    // etcd client certificates may carry the key in the same file, as Patroni allows.
  }
  return OkStatus();
}

Status ReadPostgresql(const Reader& r, const std::string& scope, PostgresqlConfig* out) {
  PGHA_RETURN_IF_ERROR(r.RequireMapping());
  out->raw = r.node();
  PGHA_ASSIGN(out->listen, r.String("listen"));
  if (out->listen.empty()) {
    return Error::Invalid("postgresql.listen: required (e.g. 0.0.0.0:5432)");
  }
  // listen may name several addresses: "127.0.0.1,10.0.0.5:5432"; the port comes last.
  std::string last = out->listen;
  if (auto comma = last.rfind(','); comma != std::string::npos) {
    last = last.substr(comma + 1);
  }
  auto listen = ParseHostPort(last, 5432);
  if (!listen.ok()) {
    return listen.error().WithContext("postgresql.listen");
  }
  out->listen_address = *listen;
  PGHA_ASSIGN(out->connect_address, r.String("connect_address"));
  if (out->connect_address.empty()) {
    HostPort connect = out->listen_address;
    if (connect.host == "0.0.0.0" || connect.host == "::" || connect.host == "*") {
      connect.host = "127.0.0.1";
    }
    out->connect_address = connect.ToString();
  } else if (auto c = ParseHostPort(out->connect_address, 5432); !c.ok()) {
    return c.error().WithContext("postgresql.connect_address");
  }
  PGHA_ASSIGN(out->proxy_address, r.String("proxy_address"));
  PGHA_ASSIGN(out->data_dir, r.String("data_dir"));
  if (out->data_dir.empty()) {
    return Error::Invalid("postgresql.data_dir: required");
  }
  PGHA_ASSIGN(out->config_dir, r.String("config_dir", out->data_dir));
  PGHA_ASSIGN(out->bin_dir, r.String("bin_dir"));
  PGHA_ASSIGN(out->bin_name, r.StringMap("bin_name"));
  PGHA_ASSIGN(out->pgpass, r.String("pgpass"));
  PGHA_ASSIGN(out->database, r.String("database", "postgres"));
  Reader auth = r.Child("authentication");
  PGHA_RETURN_IF_ERROR(auth.RequireMapping());
  PGHA_ASSIGN(out->superuser, ReadUser(auth, "superuser", "postgres"));
  PGHA_ASSIGN(out->replication, ReadUser(auth, "replication", "replicator"));
  if (auth.Has("rewind")) {
    PgUser rewind;
    PGHA_ASSIGN(rewind, ReadUser(auth, "rewind", "rewind_user"));
    out->rewind = rewind;
  }
  if (r.Has("parameters")) {
    if (!r.node().at("parameters").is_object()) {
      return Error::Invalid(fmt::format("postgresql.parameters: expected a mapping, got '{}'",
                                        r.node().at("parameters").dump()));
    }
    out->parameters = r.node().at("parameters");
  }
  PGHA_ASSIGN(out->pg_hba, r.StringList("pg_hba"));
  PGHA_ASSIGN(out->pg_ident, r.StringList("pg_ident"));
  PGHA_ASSIGN(out->pre_promote, r.String("pre_promote"));
  PGHA_ASSIGN(out->before_stop, r.String("before_stop"));
  PGHA_ASSIGN(out->callbacks, r.StringMap("callbacks"));
  for (const auto& [name, command] : out->callbacks) {
    static const std::set<std::string> kKnown = {"on_reload", "on_restart", "on_role_change",
                                                 "on_start", "on_stop"};
    if (!kKnown.count(name)) {
      return Error::Invalid(
          fmt::format("postgresql.callbacks.{}: unknown callback (on_start, on_stop, on_restart, "
                      "on_reload, on_role_change)",
                      name));
    }
    auto words = SplitCommandLine(command);
    if (!words.ok() || words->empty()) {
      return Error::Invalid(fmt::format("postgresql.callbacks.{}: '{}' is not a command ({})", name,
                                        command, words.ok() ? "empty" : words.error().message()));
    }
  }
  PGHA_ASSIGN(out->create_replica_methods, r.StringList("create_replica_methods"));
  if (out->create_replica_methods.empty()) {
    out->create_replica_methods = {"basebackup"};
  }
  if (r.Has("recovery_conf")) {
    out->recovery_conf = r.node().at("recovery_conf");
  }
  if (r.Has("use_pg_rewind")) {
    bool v = false;
    PGHA_ASSIGN(v, r.Bool("use_pg_rewind", false));
    out->use_pg_rewind = v;
  }
  PGHA_ASSIGN(out->remove_data_directory_on_rewind_failure,
              r.Bool("remove_data_directory_on_rewind_failure", false));
  PGHA_ASSIGN(out->remove_data_directory_on_diverged_timelines,
              r.Bool("remove_data_directory_on_diverged_timelines", false));
  int64_t timeout = 60;
  PGHA_ASSIGN(timeout, r.Int("pg_ctl_timeout", 60, 1));
  out->pg_ctl_timeout = static_cast<int>(std::min<int64_t>(timeout, 86400));
  PGHA_ASSIGN(out->use_unix_socket, r.Bool("use_unix_socket", false));
  PGHA_ASSIGN(out->use_unix_socket_repl, r.Bool("use_unix_socket_repl", false));
  (void)scope;
  return OkStatus();
}

// Python's truthiness, which decides whether Patroni advertises a flag tag ("false" is true).
bool JsonTruthy(const json& value) {
  if (value.is_boolean()) {
    return value.get<bool>();
  }
  if (value.is_number()) {
    return value.get<double>() != 0;
  }
  if (value.is_string() || value.is_array() || value.is_object()) {
    return !value.empty() && !(value.is_string() && value.get<std::string>().empty());
  }
  return false;
}

Status ReadTags(const json& tree, Tags* out) {
  if (!tree.contains("tags") || tree.at("tags").is_null()) {
    return OkStatus();
  }
  Reader r(tree.at("tags"), "tags");
  PGHA_RETURN_IF_ERROR(r.RequireMapping());
  // As Patroni: the boolean tags are advertised only when set, other tags always.
  out->raw = json::object();
  for (const auto& [key, value] : tree.at("tags").items()) {
    bool known_flag =
        key == "clonefrom" || key == "nofailover" || key == "noloadbalance" || key == "nosync";
    if (!known_flag || JsonTruthy(value)) {
      out->raw[key] = value;
    }
  }
  PGHA_ASSIGN(out->nofailover, r.Bool("nofailover", false));
  PGHA_ASSIGN(out->noloadbalance, r.Bool("noloadbalance", false));
  PGHA_ASSIGN(out->clonefrom, r.Bool("clonefrom", false));
  PGHA_ASSIGN(out->nosync, r.Bool("nosync", false));
  PGHA_ASSIGN(out->nostream, r.Bool("nostream", false));
  PGHA_ASSIGN(out->failover_priority, r.Int("failover_priority", out->nofailover ? 0 : 1, 0));
  if (out->nofailover && r.Has("failover_priority") && out->failover_priority > 0) {
    return Error::Invalid(
        "tags.failover_priority: must be 0 when tags.nofailover is true (the two contradict)");
  }
  if (out->nofailover) {
    out->failover_priority = 0;
  }
  PGHA_ASSIGN(out->replicatefrom, r.String("replicatefrom"));
  return OkStatus();
}

}  // namespace

Result<json> ReadYamlPath(const std::string& path) {
  std::error_code ec;
  auto read_file = [](const fs::path& file) -> Result<json> {
    std::ifstream in(file);
    if (!in) {
      return Error::NotFound(fmt::format("cannot read configuration file {}", file.string()));
    }
    std::stringstream buffer;
    buffer << in.rdbuf();
    auto parsed = YamlToJson(buffer.str());
    if (!parsed.ok()) {
      return parsed.error().WithContext(file.string());
    }
    if (parsed->is_null()) {
      return json::object();
    }
    if (!parsed->is_object()) {
      return Error::Invalid(fmt::format("{}: the top level must be a mapping", file.string()));
    }
    return parsed;
  };
  if (fs::is_directory(path, ec)) {
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(path, ec)) {
      auto ext = entry.path().extension().string();
      if (entry.is_regular_file() && (ext == ".yml" || ext == ".yaml")) {
        files.push_back(entry.path());
      }
    }
    if (ec) {
      return Error::Unavailable(fmt::format("cannot list {}: {}", path, ec.message()));
    }
    std::sort(files.begin(), files.end());
    json merged = json::object();
    for (const auto& file : files) {
      auto part = read_file(file);
      if (!part.ok()) {
        return part.error();
      }
      DeepMerge(merged, *part);
    }
    return merged;
  }
  if (!fs::exists(path, ec)) {
    return Error::NotFound(fmt::format("configuration file {} does not exist", path));
  }
  return read_file(path);
}

json PostgresqlConfig::MethodOptions(const std::string& method) const {
  auto it = raw.find(method);
  return it != raw.end() && it->is_object() ? *it : json::object();
}

bool PostgresqlConfig::MethodWorksWithoutLeader(const std::string& method) const {
  json options = MethodOptions(method);
  for (const char* key : {"no_leader", "no_master"}) {
    if (auto it = options.find(key); it != options.end()) {
      // Patroni's parse_bool, and "1" as the acceptance suite writes it.
      if (model::JsonAsBool(*it).value_or(false)) {
        return true;
      }
    }
  }
  return false;
}

Result<std::vector<std::string>> InitdbArguments(const json& options) {
  // Patroni refuses these: pgha chooses the data directory, and the password file is its own.
  static const std::set<std::string> kNotAllowed = {"pgdata", "nosync", "pwfile", "sync-only",
                                                    "version"};
  auto allowed = [](const std::string& name) -> Status {
    if (kNotAllowed.count(name)) {
      return Error::Invalid(
          fmt::format("bootstrap.initdb: {} option for initdb is not allowed", name));
    }
    return OkStatus();
  };
  std::vector<std::string> argv;
  if (options.is_object()) {  // {encoding: UTF8, locale: C}: empty values are left out
    for (const auto& [k, v] : options.items()) {
      PGHA_RETURN_IF_ERROR(allowed(k));
      std::string value = v.is_string() ? v.get<std::string>() : v.dump();
      if (!k.empty() && !v.is_null() && !value.empty() && value != "false") {
        argv.push_back("--" + k + "=" + value);
      }
    }
    return argv;
  }
  if (!options.is_array()) {
    return Error::Invalid("bootstrap.initdb: options must be a list or a mapping");
  }
  for (const auto& option : options) {
    if (option.is_string()) {
      PGHA_RETURN_IF_ERROR(allowed(option.get<std::string>()));
      argv.push_back("--" + option.get<std::string>());
    } else if (option.is_object() && option.size() == 1 && option.begin().value().is_string()) {
      PGHA_RETURN_IF_ERROR(allowed(option.begin().key()));
      argv.push_back("--" + option.begin().key() + "=" + option.begin().value().get<std::string>());
    } else {
      return Error::Invalid(
          fmt::format("bootstrap.initdb: '{}' must be a string or a single key with a string value",
                      option.dump()));
    }
  }
  return argv;
}

Result<Config> ConfigFromTree(const json& tree, bool for_ctl) {
  Config config;
  if (!tree.is_object()) {
    return Error::Invalid("configuration: the top level must be a mapping");
  }
  config.raw = tree;
  Reader root(tree, "");
  PGHA_ASSIGN(config.scope, root.String("scope"));
  // pghactl may name the cluster on its command line and the DCS with --dcs-url.
  if (config.scope.empty() && !for_ctl) {
    return Error::Invalid("scope: required (the cluster name, e.g. pg-ha; or set SCOPE)");
  }
  if (config.scope.find('/') != std::string::npos) {
    return Error::Invalid(fmt::format("scope: '{}' must not contain '/'", config.scope));
  }
  PGHA_ASSIGN(config.name, root.String("name"));
  if (config.name.empty() && !for_ctl) {
    return Error::Invalid("name: required (this member's name, e.g. pg-0; or set PATRONI_NAME)");
  }
  if (config.name.find('/') != std::string::npos) {
    return Error::Invalid(fmt::format("name: '{}' must not contain '/'", config.name));
  }
  std::string ns;
  PGHA_ASSIGN(ns, root.String("namespace", "/service/"));
  config.namespace_ = NormaliseNamespace(ns);

  WarnUnknownKeys(tree, "", &config.warnings);
  WarnUnimplementedKeys(tree, &config.warnings);
  PGHA_RETURN_IF_ERROR(ReadEtcd3(tree, for_ctl, &config.etcd3));
  PGHA_RETURN_IF_ERROR(
      ReadRestApi(root.Child("restapi"), for_ctl, &config.restapi, &config.warnings));

  if (!for_ctl) {
    if (!tree.contains("postgresql")) {
      return Error::Invalid("postgresql: required (listen, data_dir, authentication)");
    }
    PGHA_RETURN_IF_ERROR(
        ReadPostgresql(root.Child("postgresql"), config.scope, &config.postgresql));
  }

  Reader bootstrap = root.Child("bootstrap");
  PGHA_RETURN_IF_ERROR(bootstrap.RequireMapping());
  config.bootstrap.raw = bootstrap.node();
  if (bootstrap.Has("dcs")) {
    config.bootstrap.dcs = bootstrap.node().at("dcs");
    PGHA_RETURN_IF_ERROR(model::GlobalConfig::Validate(config.bootstrap.dcs, "bootstrap.dcs"));
    if (auto adjusted =
            model::GlobalConfig::TimingAdjustment(config.bootstrap.dcs, "bootstrap.dcs")) {
      config.warnings.push_back(*adjusted);
    }
  }
  PGHA_ASSIGN(config.bootstrap.method, bootstrap.String("method", "initdb"));
  if (bootstrap.Has("initdb")) {
    const json& initdb = bootstrap.node().at("initdb");
    if (auto arguments = InitdbArguments(initdb); !arguments.ok()) {
      return arguments.error();
    }
    config.bootstrap.initdb = initdb;
  }
  PGHA_ASSIGN(config.bootstrap.post_bootstrap, bootstrap.String("post_bootstrap"));
  if (config.bootstrap.post_bootstrap.empty()) {
    PGHA_ASSIGN(config.bootstrap.post_bootstrap, bootstrap.String("post_init"));
  }

  Reader watchdog = root.Child("watchdog");
  PGHA_RETURN_IF_ERROR(watchdog.RequireMapping());
  if (watchdog.Has("mode")) {
    const json& mode = watchdog.node().at("mode");
    if (mode.is_boolean()) {
      config.watchdog.mode = mode.get<bool>() ? "automatic" : "off";  // YAML read `off` as false
    } else {
      PGHA_ASSIGN(config.watchdog.mode, watchdog.String("mode"));
      config.watchdog.mode = ToLower(config.watchdog.mode);
    }
    if (config.watchdog.mode != "off" && config.watchdog.mode != "automatic" &&
        config.watchdog.mode != "required") {
      return Error::Invalid(fmt::format("watchdog.mode: '{}' must be off, automatic or required",
                                        config.watchdog.mode));
    }
  }
  PGHA_ASSIGN(config.watchdog.device, watchdog.String("device", "/dev/watchdog"));
  PGHA_ASSIGN(config.watchdog.safety_margin, watchdog.Number("safety_margin", 5));
  PGHA_ASSIGN(config.watchdog.driver, watchdog.String("driver", "default"));
  if (config.watchdog.driver != "default" && config.watchdog.driver != "testing") {
    return Error::Invalid(fmt::format(
        "watchdog.driver: '{}' must be default (Linux /dev/watchdog) or testing (a named pipe)",
        config.watchdog.driver));
  }

  Reader log = root.Child("log");
  PGHA_RETURN_IF_ERROR(log.RequireMapping());
  PGHA_ASSIGN(config.log.level, log.String("level", "INFO"));
  PGHA_ASSIGN(config.log.dir, log.String("dir"));
  PGHA_ASSIGN(config.log.format, log.String("format"));

  Reader ctl = root.Child("ctl");
  PGHA_RETURN_IF_ERROR(ctl.RequireMapping());
  PGHA_ASSIGN(config.ctl.insecure, ctl.Bool("insecure", false));
  PGHA_ASSIGN(config.ctl.cacert, ctl.String("cacert"));
  PGHA_ASSIGN(config.ctl.certfile, ctl.String("certfile"));
  PGHA_ASSIGN(config.ctl.keyfile, ctl.String("keyfile"));
  PGHA_ASSIGN(config.ctl.keyfile_password, ctl.String("keyfile_password"));
  if (ctl.Has("authentication")) {
    Reader a = ctl.Child("authentication");
    PGHA_RETURN_IF_ERROR(a.RequireMapping());
    BasicAuth basic;
    PGHA_ASSIGN(basic.username, a.String("username"));
    PGHA_ASSIGN(basic.password, a.String("password"));
    config.ctl.authentication = basic;
  } else {
    config.ctl.authentication = config.restapi.authentication;
  }

  PGHA_RETURN_IF_ERROR(ReadTags(tree, &config.tags));
  return config;
}

Result<Config> LoadConfig(const LoadOptions& options) {
  std::vector<std::string> warnings;
  json tree = json::object();
  auto configuration = options.environment.find("PATRONI_CONFIGURATION");
  if (!options.path && configuration != options.environment.end()) {
    auto parsed = YamlToJson(configuration->second);
    if (!parsed.ok()) {
      return parsed.error().WithContext("PATRONI_CONFIGURATION");
    }
    if (!parsed->is_object()) {
      return Error::Invalid("PATRONI_CONFIGURATION: the top level must be a mapping");
    }
    tree = std::move(parsed).value();
  } else {
    tree = SpiloEnvironmentDefaults(options.environment);
    if (options.path) {
      auto file = ReadYamlPath(*options.path);
      if (!file.ok()) {
        return file.error();
      }
      DeepMerge(tree, *file);
    }
    DeepMerge(tree, PatroniEnvironmentOverlay(options.environment, &warnings));
  }
  auto config = ConfigFromTree(tree, options.for_ctl);
  if (!config.ok()) {
    return config.error();
  }
  config->warnings.insert(config->warnings.begin(), warnings.begin(), warnings.end());
  return config;
}

}  // namespace pgha::config
