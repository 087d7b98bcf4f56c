// A libpq connection with Result-returning queries. One per thread; not thread-safe.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/result.h"

struct pg_conn;
struct pg_result;

namespace pgha::postgres {

using Row = std::vector<std::optional<std::string>>;

struct ResultSet {
  std::vector<std::string> columns;
  std::vector<Row> rows;
};

class Connection {
 public:
  // `conninfo` is a libpq connection string; `connect_timeout` is added when absent.
  static Result<std::unique_ptr<Connection>> Open(const std::string& conninfo);
  // The same, giving up at `deadline` whatever the server does (a server that accepts and then
  // says nothing included); libpq's connect_timeout counts each address separately.
  // `fallback_application_name` names the session unless the conninfo does.
  static Result<std::unique_ptr<Connection>> Open(const std::string& conninfo, MonoTime deadline,
                                                  const std::string& fallback_application_name);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs a statement with text parameters; returns all rows (text values, nullopt for NULL).
  Result<std::vector<Row>> Query(const std::string& sql,
                                 const std::vector<std::string>& params = {});
  // The same, with the column names (for printing arbitrary queries).
  Result<ResultSet> QueryWithColumns(const std::string& sql,
                                     const std::vector<std::string>& params = {});
  // The same, giving up at `deadline` with a Timeout error; the connection is then broken
  // (ok() is false) since the server may still be sending the answer.
  Result<ResultSet> QueryWithColumns(const std::string& sql, MonoTime deadline);
  Status Execute(const std::string& sql, const std::vector<std::string>& params = {});
  bool ok() const;
  // The SQLSTATE of the server's error for the last failed statement; empty when the last
  // statement succeeded or failed without an answer from the server (a lost connection).
  const std::string& LastSqlState() const { return last_sqlstate_; }
  // "host:port" as the connection resolved them (a socket directory for Unix sockets).
  std::string ServerAddress() const;

 private:
  explicit Connection(pg_conn* conn) : conn_(conn) {}
  Result<ResultSet> TakeResult(pg_result* result);
  pg_conn* conn_;
  bool broken_ = false;
  std::string last_sqlstate_;
};

// Quotes a libpq connection-string value ('...' with \ and ' escaped).
std::string QuoteConninfoValue(const std::string& value);
// Quotes an SQL identifier and literal.
std::string QuoteIdent(const std::string& ident);
std::string QuoteLiteral(const std::string& literal);

}  // namespace pgha::postgres
