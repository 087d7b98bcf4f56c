#include "config/environment.h"

#include <set>

#include "common/strings.h"
#include "config/yaml_json.h"

extern char** environ;

namespace pgha::config {

using nlohmann::json;

namespace {

// Suffixes that Patroni maps generically: PATRONI_<SECTION>_<SUFFIX> -> section.suffix.
const std::set<std::string>& DcsSuffixes() {
  static const std::set<std::string> suffixes = {"HOST",
                                                 "HOSTS",
                                                 "PORT",
                                                 "USE_PROXIES",
                                                 "PROTOCOL",
                                                 "SRV",
                                                 "SRV_SUFFIX",
                                                 "URL",
                                                 "PROXY",
                                                 "CACERT",
                                                 "CERT",
                                                 "KEY",
                                                 "VERIFY",
                                                 "TOKEN",
                                                 "CHECKS",
                                                 "DC",
                                                 "CONSISTENCY",
                                                 "REGISTER_SERVICE",
                                                 "SERVICE_CHECK_INTERVAL",
                                                 "SERVICE_CHECK_TLS_SERVER_NAME",
                                                 "SERVICE_TAGS",
                                                 "NAMESPACE",
                                                 "CONTEXT",
                                                 "USE_ENDPOINTS",
                                                 "SCOPE_LABEL",
                                                 "ROLE_LABEL",
                                                 "POD_IP",
                                                 "PORTS",
                                                 "LABELS",
                                                 "BYPASS_API_SERVICE",
                                                 "RETRIABLE_HTTP_CODES",
                                                 "KEY_PASSWORD",
                                                 "USE_SSL",
                                                 "SET_ACLS",
                                                 "GROUP",
                                                 "DATABASE",
                                                 "LEADER_LABEL_VALUE",
                                                 "FOLLOWER_LABEL_VALUE",
                                                 "STANDBY_LEADER_LABEL_VALUE",
                                                 "TMP_ROLE_LABEL",
                                                 "AUTH_DATA",
                                                 "BOOTSTRAP_LABELS"};
  return suffixes;
}

const std::set<std::string>& ListValued() {
  static const std::set<std::string> keys = {"HOSTS", "PORTS", "SERVICE_TAGS",
                                             "RETRIABLE_HTTP_CODES", "ALLOWLIST"};
  return keys;
}

json ScalarFromEnv(const std::string& value) { return json(value); }

void Set(json& root, std::initializer_list<std::string> path, json value) {
  json* node = &root;
  for (const auto& key : path) {
    if (!node->is_object()) {
      *node = json::object();
    }
    node = &(*node)[key];
  }
  *node = std::move(value);
}

bool StartsWith(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

const std::set<std::string>& RestApiKeys() {
  static const std::set<std::string> keys = {"LISTEN",
                                             "CONNECT_ADDRESS",
                                             "CERTFILE",
                                             "KEYFILE",
                                             "KEYFILE_PASSWORD",
                                             "CAFILE",
                                             "CIPHERS",
                                             "VERIFY_CLIENT",
                                             "HTTP_EXTRA_HEADERS",
                                             "HTTPS_EXTRA_HEADERS",
                                             "ALLOWLIST",
                                             "ALLOWLIST_INCLUDE_MEMBERS",
                                             "REQUEST_QUEUE_SIZE",
                                             "SERVER_TOKENS",
                                             "THREAD_POOL_SIZE"};
  return keys;
}

const std::set<std::string>& CtlKeys() {
  static const std::set<std::string> keys = {"INSECURE", "CACERT", "CERTFILE", "KEYFILE",
                                             "KEYFILE_PASSWORD"};
  return keys;
}

const std::set<std::string>& PostgresqlKeys() {
  static const std::set<std::string> keys = {
      "LISTEN", "CONNECT_ADDRESS", "PROXY_ADDRESS", "CONFIG_DIR", "DATA_DIR", "PGPASS", "BIN_DIR"};
  return keys;
}

const std::set<std::string>& BinNames() {
  static const std::set<std::string> keys = {
      "PG_CTL", "INITDB", "PG_CONTROLDATA", "PG_BASEBACKUP", "POSTGRES", "PG_ISREADY", "PG_REWIND"};
  return keys;
}

const std::set<std::string>& AuthKeys() {
  static const std::set<std::string> keys = {
      "USERNAME",    "PASSWORD", "SSLMODE",   "SSLKEY",         "SSLPASSWORD", "SSLCERT",
      "SSLROOTCERT", "SSLCRL",   "SSLCRLDIR", "SSLNEGOTIATION", "GSSENCMODE",  "CHANNEL_BINDING"};
  return keys;
}

const std::set<std::string>& LogKeys() {
  static const std::set<std::string> keys = {"TYPE",
                                             "LEVEL",
                                             "TRACEBACK_LEVEL",
                                             "FORMAT",
                                             "DATEFORMAT",
                                             "STATIC_FIELDS",
                                             "MAX_QUEUE_SIZE",
                                             "DIR",
                                             "MODE",
                                             "FILE_NUM",
                                             "FILE_SIZE",
                                             "LOGGERS",
                                             "DEDUPLICATE_HEARTBEAT_LOGS"};
  return keys;
}

// Variables that Patroni reads itself rather than through the config tree, and Spilo names that
// happen to start with PATRONI_; none of them deserve an "unknown variable" warning.
const std::set<std::string>& KnownNonTree() {
  static const std::set<std::string> keys = {"PATRONI_CONFIGURATION", "PATRONI_RESTAPI_PORT",
                                             "PATRONICTL_CONFIG_FILE", "PATRONI_CONFIG_FILE"};
  return keys;
}

// Applies one PATRONI_* variable; returns false when the name means nothing to Patroni.
bool ApplyPatroniVariable(const std::string& name, const std::string& value, json& out) {
  std::string rest = name.substr(std::string("PATRONI_").size());
  auto lower = [](const std::string& s) { return ToLower(s); };

  if (rest == "NAME" || rest == "NAMESPACE" || rest == "SCOPE" || rest == "THREAD_POOL_SIZE" ||
      rest == "THREAD_STACK_SIZE") {
    Set(out, {lower(rest)}, ScalarFromEnv(value));
    return true;
  }
  // Old names Patroni still maps.
  if (rest == "LOGLEVEL") {
    Set(out, {"log", "level"}, value);
    return true;
  }
  if (rest == "LOGFORMAT") {
    Set(out, {"log", "format"}, value);
    return true;
  }
  if (rest == "LOG_DATEFMT") {
    Set(out, {"log", "dateformat"}, value);
    return true;
  }
  if (StartsWith(rest, "RESTAPI_")) {
    std::string key = rest.substr(8);
    if (key == "USERNAME" || key == "PASSWORD") {
      Set(out, {"restapi", "authentication", lower(key)}, value);
      return true;
    }
    if (RestApiKeys().count(key)) {
      if (key == "ALLOWLIST") {
        Set(out, {"restapi", "allowlist"}, json(ParseEnvironmentList(value)));
      } else {
        Set(out, {"restapi", lower(key)}, ScalarFromEnv(value));
      }
      return true;
    }
    return false;
  }
  if (StartsWith(rest, "CTL_")) {
    std::string key = rest.substr(4);
    if (key == "USERNAME" || key == "PASSWORD") {
      Set(out, {"ctl", "authentication", lower(key)}, value);
      return true;
    }
    if (CtlKeys().count(key)) {
      Set(out, {"ctl", lower(key)}, ScalarFromEnv(value));
      return true;
    }
    return false;
  }
  if (StartsWith(rest, "POSTGRESQL_BIN_")) {
    std::string key = rest.substr(15);
    if (BinNames().count(key)) {
      Set(out, {"postgresql", "bin_name", lower(key)}, value);
      return true;
    }
    return false;
  }
  if (StartsWith(rest, "POSTGRESQL_")) {
    std::string key = rest.substr(11);
    if (PostgresqlKeys().count(key)) {
      Set(out, {"postgresql", lower(key)}, value);
      return true;
    }
    return false;
  }
  for (const char* user : {"REPLICATION_", "SUPERUSER_", "REWIND_"}) {
    if (StartsWith(rest, user)) {
      std::string key = rest.substr(std::string(user).size());
      if (AuthKeys().count(key)) {
        std::string role = lower(std::string(user).substr(0, std::string(user).size() - 1));
        Set(out, {"postgresql", "authentication", role, lower(key)}, value);
        return true;
      }
      return false;
    }
  }
  if (StartsWith(rest, "LOG_")) {
    std::string key = rest.substr(4);
    if (LogKeys().count(key)) {
      Set(out, {"log", lower(key)}, ScalarFromEnv(value));
      return true;
    }
    return false;
  }
  // Generic DCS rule: PATRONI_<SECTION>_<SUFFIX>, where SUFFIX may itself contain '_'.
  for (size_t pos = rest.find('_'); pos != std::string::npos; pos = rest.find('_', pos + 1)) {
    std::string section = rest.substr(0, pos);
    std::string suffix = rest.substr(pos + 1);
    if (!section.empty() && DcsSuffixes().count(suffix)) {
      if (ListValued().count(suffix)) {
        Set(out, {lower(section), lower(suffix)}, json(ParseEnvironmentList(value)));
      } else {
        Set(out, {lower(section), lower(suffix)}, ScalarFromEnv(value));
      }
      return true;
    }
  }
  // Patroni picks up credentials for etcd/etcd3 (and a few other DCSs) too.
  for (const char* section : {"ETCD3_", "ETCD_", "CONSUL_", "ZOOKEEPER_", "KUBERNETES_"}) {
    if (StartsWith(rest, section)) {
      std::string key = rest.substr(std::string(section).size());
      if (key == "USERNAME" || key == "PASSWORD") {
        std::string sec = lower(std::string(section).substr(0, std::string(section).size() - 1));
        Set(out, {sec, lower(key)}, value);
        return true;
      }
    }
  }
  return false;
}

}  // namespace

Environment CurrentEnvironment() {
  Environment env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    std::string item(*entry);
    size_t eq = item.find('=');
    if (eq != std::string::npos) {
      env[item.substr(0, eq)] = item.substr(eq + 1);
    }
  }
  return env;
}

std::vector<std::string> ParseEnvironmentList(const std::string& value) {
  auto trimmed = std::string(Trim(value));
  if (!trimmed.empty() && trimmed.front() == '[') {
    auto parsed = YamlToJson(trimmed);
    if (parsed.ok() && parsed->is_array()) {
      std::vector<std::string> items;
      for (const auto& item : *parsed) {
        items.push_back(item.is_string() ? item.get<std::string>() : item.dump());
      }
      return items;
    }
  }
  std::vector<std::string> items;
  for (auto& item : SplitAndTrim(trimmed, ',')) {
    // Patroni's own examples quote each host: 'a:2379','b:2379'.
    if (item.size() >= 2 && (item.front() == '\'' || item.front() == '"') &&
        item.back() == item.front()) {
      item = item.substr(1, item.size() - 2);
    }
    items.push_back(item);
  }
  return items;
}

json PatroniEnvironmentOverlay(const Environment& env, std::vector<std::string>* warnings) {
  json out = json::object();
  for (const auto& [name, value] : env) {
    if (!StartsWith(name, "PATRONI_") || KnownNonTree().count(name)) {
      continue;
    }
    if (!ApplyPatroniVariable(name, value, out) && warnings != nullptr) {
      warnings->push_back("environment variable " + name + " is not a Patroni setting; ignored");
    }
  }
  return out;
}

json SpiloEnvironmentDefaults(const Environment& env) {
  json out = json::object();
  auto get = [&env](const char* name) -> const std::string* {
    auto it = env.find(name);
    return it == env.end() || it->second.empty() ? nullptr : &it->second;
  };
  if (auto* v = get("SCOPE")) {
    Set(out, {"scope"}, *v);
  }
  if (auto* v = get("PATRONI_NAME")) {
    Set(out, {"name"}, *v);
  }
  if (auto* v = get("NAMESPACE")) {
    if (*v != "default") {
      Set(out, {"namespace"}, *v);
    }
  }
  // <DCS>_<PARAM> for etcd3 (the seed's ETCD3_HOSTS) and etcd v2-style ETCD_HOST(S) as Spilo does.
  for (const char* param : {"HOSTS", "HOST", "PROTOCOL", "CACERT", "CERT", "KEY", "USERNAME",
                            "PASSWORD", "URL", "PROXY"}) {
    std::string name = std::string("ETCD3_") + param;
    if (auto* v = get(name.c_str())) {
      std::string key = ToLower(param);
      if (std::string(param) == "HOSTS") {
        Set(out, {"etcd3", key}, json(ParseEnvironmentList(*v)));
      } else {
        Set(out, {"etcd3", key}, *v);
      }
    }
  }
  std::string api_port;
  if (auto* v = get("PATRONI_RESTAPI_PORT")) {
    api_port = *v;
  } else if (auto* v2 = get("APIPORT")) {
    api_port = *v2;
  }
  if (!api_port.empty()) {
    Set(out, {"restapi", "listen"}, "0.0.0.0:" + api_port);
  }
  if (auto* v = get("PGVERSION")) {
    Set(out, {"postgresql", "bin_dir"}, "/usr/lib/postgresql/" + *v + "/bin");
  }
  if (auto* v = get("PGDATA")) {
    Set(out, {"postgresql", "data_dir"}, *v);
  }
  if (auto* v = get("PGPORT")) {
    Set(out, {"postgresql", "listen"}, "0.0.0.0:" + *v);
  }
  // The seed's .env.postgres names the superuser with the postgres image's variables.
  if (auto* v = get("POSTGRES_USER")) {
    Set(out, {"postgresql", "authentication", "superuser", "username"}, *v);
  }
  if (auto* v = get("POSTGRES_PASSWORD")) {
    Set(out, {"postgresql", "authentication", "superuser", "password"}, *v);
  }
  if (auto* v = get("PGUSER_SUPERUSER")) {
    Set(out, {"postgresql", "authentication", "superuser", "username"}, *v);
  }
  if (auto* v = get("PGPASSWORD_SUPERUSER")) {
    Set(out, {"postgresql", "authentication", "superuser", "password"}, *v);
  }
  if (auto* v = get("PGUSER_STANDBY")) {
    Set(out, {"postgresql", "authentication", "replication", "username"}, *v);
  }
  if (auto* v = get("PGPASSWORD_STANDBY")) {
    Set(out, {"postgresql", "authentication", "replication", "password"}, *v);
  }
  return out;
}

}  // namespace pgha::config
