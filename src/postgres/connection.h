// A libpq connection with Result-returning queries. One per thread; not thread-safe.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

struct pg_conn;

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
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Runs a statement with text parameters; returns all rows (text values, nullopt for NULL).
  Result<std::vector<Row>> Query(const std::string& sql,
                                 const std::vector<std::string>& params = {});
  // The same, with the column names (for printing arbitrary queries).
  Result<ResultSet> QueryWithColumns(const std::string& sql,
                                     const std::vector<std::string>& params = {});
  Status Execute(const std::string& sql, const std::vector<std::string>& params = {});
  bool ok() const;

 private:
  explicit Connection(pg_conn* conn) : conn_(conn) {}
  pg_conn* conn_;
};

// Quotes a libpq connection-string value ('...' with \ and ' escaped).
std::string QuoteConninfoValue(const std::string& value);
// Quotes an SQL identifier and literal.
std::string QuoteIdent(const std::string& ident);
std::string QuoteLiteral(const std::string& literal);

}  // namespace pgha::postgres
