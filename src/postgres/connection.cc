#include "postgres/connection.h"

#include <fmt/format.h>
#include <libpq-fe.h>

namespace pgha::postgres {

Result<std::unique_ptr<Connection>> Connection::Open(const std::string& conninfo) {
  std::string full = conninfo;
  if (full.find("connect_timeout") == std::string::npos) {
    full += " connect_timeout=3";
  }
  PGconn* conn = PQconnectdb(full.c_str());
  if (conn == nullptr) {
    return Error::Unavailable("libpq could not allocate a connection");
  }
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string message = PQerrorMessage(conn);
    PQfinish(conn);
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
      message.pop_back();
    }
    return Error::Unavailable(message);
  }
  return std::unique_ptr<Connection>(new Connection(conn));
}

Connection::~Connection() {
  if (conn_ != nullptr) {
    PQfinish(conn_);
  }
}

bool Connection::ok() const { return PQstatus(conn_) == CONNECTION_OK; }

Result<std::vector<Row>> Connection::Query(const std::string& sql,
                                           const std::vector<std::string>& params) {
  auto result = QueryWithColumns(sql, params);
  if (!result.ok()) {
    return result.error();
  }
  return std::move(result->rows);
}

Result<ResultSet> Connection::QueryWithColumns(const std::string& sql,
                                               const std::vector<std::string>& params) {
  std::vector<const char*> values;
  for (const auto& p : params) {
    values.push_back(p.c_str());
  }
  PGresult* result = PQexecParams(conn_, sql.c_str(), static_cast<int>(values.size()), nullptr,
                                  values.data(), nullptr, nullptr, 0);
  auto status = PQresultStatus(result);
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
    std::string message = PQresultErrorMessage(result);
    PQclear(result);
    while (!message.empty() && message.back() == '\n') {
      message.pop_back();
    }
    if (PQstatus(conn_) != CONNECTION_OK) {
      return Error::Unavailable(message);
    }
    return Error::Invalid(message);
  }
  ResultSet set;
  std::vector<Row>& rows = set.rows;
  int n = PQntuples(result);
  int columns = PQnfields(result);
  for (int c = 0; c < columns; ++c) {
    set.columns.emplace_back(PQfname(result, c));
  }
  for (int i = 0; i < n; ++i) {
    Row row;
    for (int c = 0; c < columns; ++c) {
      if (PQgetisnull(result, i, c)) {
        row.emplace_back(std::nullopt);
      } else {
        row.emplace_back(
            std::string(PQgetvalue(result, i, c), static_cast<size_t>(PQgetlength(result, i, c))));
      }
    }
    rows.push_back(std::move(row));
  }
  PQclear(result);
  return set;
}

Status Connection::Execute(const std::string& sql, const std::vector<std::string>& params) {
  auto rows = Query(sql, params);
  return rows.ok() ? OkStatus() : Status(rows.error());
}

std::string QuoteConninfoValue(const std::string& value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\'' || c == '\\') {
      out += '\\';
    }
    out += c;
  }
  return out + "'";
}

std::string QuoteIdent(const std::string& ident) {
  std::string out = "\"";
  for (char c : ident) {
    if (c == '"') {
      out += '"';
    }
    out += c;
  }
  return out + "\"";
}

std::string QuoteLiteral(const std::string& literal) {
  std::string out = "'";
  for (char c : literal) {
    if (c == '\'') {
      out += '\'';
    }
    out += c;
  }
  return out + "'";
}

}  // namespace pgha::postgres
