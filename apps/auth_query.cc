#include "apps/auth_query.h"

#include "common/clock.h"
#include "common/log.h"
#include "postgres/connection.h"

namespace pgha::apps {

router::SessionMode::SecretLookup MakeAuthQueryLookup(const config::Config& config,
                                                      const router::RouterSettings& settings) {
  std::string user = settings.auth_user;
  std::string password = settings.auth_password;
  if (user.empty()) {
    const auto& raw = config.raw;
    auto superuser = nlohmann::json::json_pointer("/postgresql/authentication/superuser");
    if (raw.contains(superuser) && raw[superuser].is_object()) {
      user = raw[superuser].value("username", "");
      password = raw[superuser].value("password", "");
    }
  }
  std::string dbname = settings.auth_dbname;
  std::string query = settings.auth_query;
  auto timeout = settings.connect_timeout;
  return [user, password, dbname, query, timeout](
             const router::Backend& primary,
             const std::string& role) -> Result<std::optional<router::StoredSecret>> {
    if (user.empty()) {
      return Error::Invalid(
          "router.auth_user is not set and the file names no postgresql superuser");
    }
    using postgres::QuoteConninfoValue;
    std::string conninfo =
        "host=" + QuoteConninfoValue(primary.host) + " port=" + std::to_string(primary.port) +
        " user=" + QuoteConninfoValue(user) + " dbname=" + QuoteConninfoValue(dbname);
    if (!password.empty()) {
      conninfo += " password=" + QuoteConninfoValue(password);
    }
    auto deadline = SystemClock::Instance().Now() + 2 * timeout;
    auto connection = postgres::Connection::Open(conninfo, deadline, "pgha-router");
    if (!connection.ok()) {
      return connection.error();
    }
    auto rows = (*connection)->Query(query, {role});
    if (!rows.ok()) {
      return rows.error();
    }
    if (rows->empty() || rows->front().empty()) {
      return std::optional<router::StoredSecret>();
    }
    // PgBouncer's queries give (name, secret); a lone column is the secret.
    const auto& column = rows->front().back();
    auto secret =
        router::ParseStoredSecret(column ? std::optional<std::string_view>(*column) : std::nullopt);
    if (!secret.ok()) {
      PGHA_LOG_WARN("session mode: role \"{}\" cannot log in through the router: {}", role,
                    secret.error().message());
      return std::optional<router::StoredSecret>();
    }
    return std::optional<router::StoredSecret>(*secret);
  };
}

}  // namespace pgha::apps
