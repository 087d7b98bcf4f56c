#include "router/settings.h"

#include <fmt/format.h>

#include <functional>
#include <set>

#include "common/strings.h"
#include "common/units.h"

namespace pgha::router {
namespace {

using json = nlohmann::json;

// A YAML scalar as text: numbers and booleans as written, strings unquoted.
Result<std::string> ScalarText(const json& value) {
  if (value.is_string()) {
    return value.get<std::string>();
  }
  if (value.is_number_integer() || value.is_number_unsigned()) {
    return std::to_string(value.get<int64_t>());
  }
  if (value.is_number_float()) {
    return fmt::format("{}", value.get<double>());
  }
  if (value.is_boolean()) {
    return std::string(value.get<bool>() ? "true" : "false");
  }
  return Error::Invalid("expected a single value, got " + value.dump());
}

Result<config::HostPort> ParseListen(const std::string& text) {
  auto parsed = config::ParseHostPort(text, 0);
  if (!parsed.ok()) {
    return parsed.error();
  }
  if (parsed->host.empty()) {
    parsed->host = "0.0.0.0";
  }
  return parsed;
}

Result<size_t> ParseCount(const std::string& text, int64_t min, int64_t max) {
  auto n = ParseInt(text);
  if (!n.ok()) {
    return n.error();
  }
  if (*n < min || *n > max) {
    return Error::Invalid(fmt::format("'{}' is not between {} and {}", text, min, max));
  }
  return static_cast<size_t>(*n);
}

Result<std::chrono::milliseconds> ParsePositiveDuration(const std::string& text) {
  auto d = ParseDuration(text);
  if (!d.ok()) {
    return d.error();
  }
  if (d->count() <= 0) {
    return Error::Invalid("'" + text + "' must be longer than zero");
  }
  return d;
}

Result<bool> ParseBool(const std::string& text) {
  std::string lower = ToLower(text);
  if (lower == "true" || lower == "on" || lower == "yes" || lower == "1") {
    return true;
  }
  if (lower == "false" || lower == "off" || lower == "no" || lower == "0") {
    return false;
  }
  return Error::Invalid("'" + text + "' is not true or false");
}

Result<std::string> Text(const std::string& text) { return text; }

Result<std::string> NonEmpty(const std::string& text) {
  if (text.empty()) {
    return Error::Invalid("must not be empty");
  }
  return text;
}

using Apply = std::function<Status(const std::string& text, RouterSettings& out)>;

template <typename T, typename Parse>
Apply Setter(T RouterSettings::*field, Parse parse) {
  return [field, parse](const std::string& text, RouterSettings& out) -> Status {
    auto value = parse(text);
    if (!value.ok()) {
      return value.error();
    }
    out.*field = *value;
    return OkStatus();
  };
}

const std::map<std::string, Apply>& Keys() {
  static const std::map<std::string, Apply> keys = {
      {"name", Setter(&RouterSettings::name,
                      [](const std::string& t) -> Result<std::string> {
                        if (t.empty() || t.find('/') != std::string::npos) {
                          return Error::Invalid("'" + t + "' is empty or holds a '/'");
                        }
                        return t;
                      })},
      {"write_listen", Setter(&RouterSettings::write_listen, ParseListen)},
      {"read_listen", Setter(&RouterSettings::read_listen, ParseListen)},
      {"stats_listen", Setter(&RouterSettings::stats_listen, ParseListen)},
      {"max_replica_lag", Setter(&RouterSettings::max_replica_lag_bytes,
                                 [](const std::string& t) -> Result<int64_t> {
                                   auto bytes = ParseSizeBytes(t);
                                   if (bytes.ok() && *bytes < 0) {
                                     return Error::Invalid("'" + t + "' is negative");
                                   }
                                   return bytes;
                                 })},
      {"read_fallback", Setter(&RouterSettings::read_fallback,
                               [](const std::string& t) -> Result<ReadFallback> {
                                 if (t == "primary") {
                                   return ReadFallback::kPrimary;
                                 }
                                 if (t == "reject") {
                                   return ReadFallback::kReject;
                                 }
                                 return Error::Invalid("'" + t + "' is not primary or reject");
                               })},
      {"on_leader_change", Setter(&RouterSettings::on_leader_change,
                                  [](const std::string& t) -> Result<OnLeaderChange> {
                                    if (t == "close") {
                                      return OnLeaderChange::kClose;
                                    }
                                    if (t == "keep") {
                                      return OnLeaderChange::kKeep;
                                    }
                                    return Error::Invalid("'" + t + "' is not close or keep");
                                  })},
      {"connect_hold_timeout",
       Setter(&RouterSettings::connect_hold_timeout, ParsePositiveDuration)},
      {"connect_timeout", Setter(&RouterSettings::connect_timeout, ParsePositiveDuration)},
      {"check_interval", Setter(&RouterSettings::check_interval, ParsePositiveDuration)},
      {"switchover_hold", Setter(&RouterSettings::switchover_hold, ParsePositiveDuration)},
      {"drain_timeout", Setter(&RouterSettings::drain_timeout, ParsePositiveDuration)},
      {"maxconn", Setter(&RouterSettings::maxconn,
                         [](const std::string& t) { return ParseCount(t, 1, 1000000); })},
      {"threads",
       Setter(&RouterSettings::threads, [](const std::string& t) { return ParseCount(t, 1, 64); })},
      {"buffer_size", Setter(&RouterSettings::buffer_bytes,
                             [](const std::string& t) -> Result<size_t> {
                               auto bytes = ParseSizeBytes(t);
                               if (!bytes.ok()) {
                                 return bytes.error();
                               }
                               if (*bytes < 1024 || *bytes > 16 * 1024 * 1024) {
                                 return Error::Invalid("'" + t + "' is not between 1kB and 16MB");
                               }
                               return static_cast<size_t>(*bytes);
                             })},
      {"tcp_keepalive", Setter(&RouterSettings::tcp_keepalive, ParseBool)},
      {"mode", Setter(&RouterSettings::mode,
                      [](const std::string& t) -> Result<ProxyMode> {
                        if (t == "l4") {
                          return ProxyMode::kL4;
                        }
                        if (t == "session") {
                          return ProxyMode::kSession;
                        }
                        return Error::Invalid("'" + t + "' is not l4 or session");
                      })},
      {"pause_timeout", Setter(&RouterSettings::pause_timeout, ParsePositiveDuration)},
      {"auth_user", Setter(&RouterSettings::auth_user, Text)},
      {"auth_password", Setter(&RouterSettings::auth_password, Text)},
      {"auth_dbname", Setter(&RouterSettings::auth_dbname, NonEmpty)},
      {"auth_query", Setter(&RouterSettings::auth_query, NonEmpty)},
      {"auth_cache_ttl", Setter(&RouterSettings::auth_cache_ttl, ParsePositiveDuration)},
      {"tls_certificate", Setter(&RouterSettings::tls_certificate, Text)},
      {"tls_key", Setter(&RouterSettings::tls_key, Text)},
  };
  return keys;
}

std::string KnownKeys() {
  std::string out;
  for (const auto& [key, apply] : Keys()) {
    out += (out.empty() ? "" : ", ") + key;
  }
  return out;
}

}  // namespace

Result<RouterSettings> ParseRouterSettings(const json& section,
                                           const std::map<std::string, std::string>& environment) {
  RouterSettings settings;
  if (!section.is_null() && !section.is_object()) {
    return Error::Invalid("router: expected a mapping of settings, got " + section.dump());
  }
  if (section.is_object()) {
    for (const auto& [key, value] : section.items()) {
      auto it = Keys().find(key);
      if (it == Keys().end()) {
        return Error::Invalid("router." + key + ": unknown setting (known: " + KnownKeys() + ")");
      }
      auto text = ScalarText(value);
      Status applied = text.ok() ? it->second(*text, settings) : Status(text.error());
      if (!applied.ok()) {
        return applied.error().WithContext("router." + key);
      }
    }
  }
  const std::string prefix = "PGHA_ROUTER_";
  for (const auto& [name, value] : environment) {
    if (name.rfind(prefix, 0) != 0) {
      continue;
    }
    std::string key = ToLower(name.substr(prefix.size()));
    auto it = Keys().find(key);
    if (it == Keys().end()) {
      return Error::Invalid(name + ": not a router setting (known: " + KnownKeys() + ")");
    }
    if (auto applied = it->second(value, settings); !applied.ok()) {
      return applied.error().WithContext(name);
    }
  }
  if (settings.tls_certificate.empty() != settings.tls_key.empty()) {
    return Error::Invalid("router: tls_certificate and tls_key go together");
  }
  if (settings.write_listen.port == settings.read_listen.port &&
      settings.write_listen.host == settings.read_listen.host) {
    return Error::Invalid("router: write_listen and read_listen are the same address " +
                          settings.write_listen.ToString());
  }
  return settings;
}

const char* ReadFallbackName(ReadFallback value) {
  return value == ReadFallback::kPrimary ? "primary" : "reject";
}

const char* OnLeaderChangeName(OnLeaderChange value) {
  return value == OnLeaderChange::kClose ? "close" : "keep";
}

const char* ProxyModeName(ProxyMode value) { return value == ProxyMode::kL4 ? "l4" : "session"; }

}  // namespace pgha::router
