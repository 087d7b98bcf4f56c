#include "postgres/connection.h"

#include <fmt/format.h>
#include <libpq-fe.h>
#include <poll.h>

#include <algorithm>
#include <cerrno>

namespace pgha::postgres {

namespace {

std::string TrimmedMessage(std::string message) {
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) {
    message.pop_back();
  }
  return message;
}

// Waits until the socket is ready for `events` or the deadline passes; false on timeout.
bool WaitForSocket(int socket, short events, MonoTime deadline) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      return false;
    }
    pollfd fd{socket, events, 0};
    int ready = ::poll(&fd, 1, static_cast<int>(std::min<int64_t>(left.count(), 60000)));
    if (ready > 0) {
      return true;
    }
    if (ready < 0 && errno != EINTR) {
      return true;  // let libpq report the socket's error
    }
  }
}

}  // namespace

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
    std::string message = TrimmedMessage(PQerrorMessage(conn));
    PQfinish(conn);
    return Error::Unavailable(message);
  }
  return std::unique_ptr<Connection>(new Connection(conn));
}

Result<std::unique_ptr<Connection>> Connection::Open(const std::string& conninfo, MonoTime deadline,
                                                     const std::string& fallback_application_name) {
  // dbname expands to the whole conninfo or URI; the later keyword fills in only the fallback.
  const char* keywords[] = {"dbname", "fallback_application_name", nullptr};
  const char* values[] = {conninfo.c_str(), fallback_application_name.c_str(), nullptr};
  PGconn* conn = PQconnectStartParams(keywords, values, 1);
  if (conn == nullptr) {
    return Error::Unavailable("libpq could not allocate a connection");
  }
  if (PQstatus(conn) == CONNECTION_BAD) {
    std::string message = TrimmedMessage(PQerrorMessage(conn));
    PQfinish(conn);
    return Error::Unavailable(message);
  }
  PostgresPollingStatusType polling = PGRES_POLLING_WRITING;
  while (polling != PGRES_POLLING_OK) {
    if (polling == PGRES_POLLING_FAILED) {
      std::string message = TrimmedMessage(PQerrorMessage(conn));
      PQfinish(conn);
      return Error::Unavailable(message);
    }
    short events = polling == PGRES_POLLING_READING ? POLLIN : POLLOUT;
    if (!WaitForSocket(PQsocket(conn), events, deadline)) {
      PQfinish(conn);
      return Error::Timeout("no answer from the server before the deadline while connecting");
    }
    polling = PQconnectPoll(conn);
  }
  return std::unique_ptr<Connection>(new Connection(conn));
}

std::string Connection::ServerAddress() const {
  const char* host = PQhost(conn_);
  const char* port = PQport(conn_);
  return fmt::format("{}:{}", host != nullptr ? host : "", port != nullptr ? port : "");
}

Connection::~Connection() {
  if (conn_ != nullptr) {
    PQfinish(conn_);
  }
}

bool Connection::ok() const { return !broken_ && PQstatus(conn_) == CONNECTION_OK; }

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
  return TakeResult(result);
}

Result<ResultSet> Connection::QueryWithColumns(const std::string& sql, MonoTime deadline) {
  last_sqlstate_.clear();
  if (broken_) {
    return Error::Unavailable("the connection was abandoned after a timeout");
  }
  if (PQsendQuery(conn_, sql.c_str()) == 0) {
    return Error::Unavailable(TrimmedMessage(PQerrorMessage(conn_)));
  }
  // Collect every result of the statement; the last error or the last rows win.
  PGresult* last = nullptr;
  for (;;) {
    while (PQisBusy(conn_) != 0) {
      if (!WaitForSocket(PQsocket(conn_), POLLIN, deadline)) {
        if (last != nullptr) {
          PQclear(last);
        }
        broken_ = true;
        return Error::Timeout("no answer from the server before the deadline");
      }
      if (PQconsumeInput(conn_) == 0) {
        if (last != nullptr) {
          PQclear(last);
        }
        return Error::Unavailable(TrimmedMessage(PQerrorMessage(conn_)));
      }
    }
    PGresult* next = PQgetResult(conn_);
    if (next == nullptr) {
      break;
    }
    if (last != nullptr) {
      PQclear(last);
    }
    last = next;
  }
  if (last == nullptr) {
    return Error::Unavailable(TrimmedMessage(PQerrorMessage(conn_)));
  }
  return TakeResult(last);
}

Result<ResultSet> Connection::TakeResult(PGresult* result) {
  auto status = PQresultStatus(result);
  last_sqlstate_.clear();
  if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
    std::string message = TrimmedMessage(PQresultErrorMessage(result));
    if (const char* sqlstate = PQresultErrorField(result, PG_DIAG_SQLSTATE)) {
      last_sqlstate_ = sqlstate;
    }
    PQclear(result);
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
  rows.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    Row row;
    row.reserve(static_cast<size_t>(columns));
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
