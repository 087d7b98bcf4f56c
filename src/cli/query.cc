#include "cli/query.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "cli/views.h"

namespace pgha::cli {

namespace {

Result<std::string> ReadSqlFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return Error::Invalid("cannot read " + path);
  }
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string MemberConninfo(const model::Member& member, const QueryOptions& options,
                           const std::string& password) {
  using postgres::QuoteConninfoValue;
  std::string conninfo = "host=" + QuoteConninfoValue(member.host()) +
                         " port=" + std::to_string(member.port() ? member.port() : 5432) +
                         " fallback_application_name='Patroni ctl' connect_timeout=5";
  if (!options.username.empty()) conninfo += " user=" + QuoteConninfoValue(options.username);
  if (!password.empty()) conninfo += " password=" + QuoteConninfoValue(password);
  if (!options.dbname.empty()) conninfo += " dbname=" + QuoteConninfoValue(options.dbname);
  return conninfo;
}

// patronictl's line for a database error: the SQLSTATE, or the message on one line.
std::string SqlFailure(const std::string& sqlstate, const Error& error) {
  std::string what = sqlstate;
  if (what.empty()) {
    what = error.message();
    std::replace(what.begin(), what.end(), '\n', ' ');
  }
  return "ERROR, SQLSTATE: " + what;
}

Table AnswerTable(const postgres::ResultSet& answer) {
  Table table;
  table.columns = answer.columns;
  for (const auto& row : answer.rows) {
    std::vector<Cell> cells;
    for (const auto& value : row) {
      cells.push_back(value ? Cell(*value) : Cell(nullptr));
    }
    table.rows.push_back(std::move(cells));
  }
  return table;
}

}  // namespace

Status Query(QueryOptions options, const std::string& configured_scope,
             const ClusterReader& read_cluster, const SqlConnector& connect, Terminal& terminal,
             const Clock& clock) {
  if (!options.member.empty() && !options.role.empty()) {
    return Error::Invalid("--role and --member are mutually exclusive options");
  }
  std::string role = !options.member.empty() ? "any"
                     : options.role.empty()  ? "leader"
                                             : options.role;
  if (!options.file.empty() && !options.command.empty()) {
    return Error::Invalid("--file and --command are mutually exclusive options");
  }
  if (options.file.empty() && options.command.empty()) {
    return Error::Invalid("You need to specify either --command or --file");
  }
  if (!options.file.empty()) {
    auto text = ReadSqlFile(options.file);
    if (!text.ok()) {
      return text.error();
    }
    options.command = *text;
  }
  std::string password;
  if (options.password_prompt) {
    terminal.PrintError("Password: ");
    password = terminal.ReadLine().value_or("");
  }
  std::string scope = options.cluster.empty() ? configured_scope : options.cluster;
  if (scope.empty()) {
    return Error::Invalid("no cluster name given and no scope in the configuration");
  }
  auto print = [&](const Table& table) -> Status {
    auto text = RenderTable(table, options.fmt, options.delimiter);
    if (!text.ok()) {
      return text.error();
    }
    terminal.Print(*text);
    return OkStatus();
  };
  auto report = [&](const std::string& message) -> Status {
    Table table;
    table.rows.push_back({LocalTimestampSeconds(clock.WallNow()), message});
    return print(table);
  };
  std::string unavailable = !options.member.empty()
                                ? "No connection to member " + options.member + " is available"
                                : "No connection to role=" + role + " is available";
  return Watching(options.watch, false, terminal, clock, [&]() -> Status {
    auto cluster = read_cluster(scope);
    if (!cluster.ok()) {
      return cluster.error();
    }
    const model::Member* member = SelectMember(*cluster, role, options.member);
    if (member == nullptr || member->host().empty()) {
      return report(unavailable);
    }
    auto session = connect(MemberConninfo(*member, options, password));
    if (!session.ok()) {
      return report(SqlFailure("", session.error()));
    }
    if (role != "any" && role != "leader") {
      // The DCS may be behind: the member must be in the role asked for now.
      auto recovery = (*session)->Query("SELECT pg_catalog.pg_is_in_recovery()");
      if (!recovery.ok()) {
        return report(SqlFailure((*session)->LastSqlState(), recovery.error()));
      }
      bool in_recovery =
          !recovery->rows.empty() && !recovery->rows[0].empty() && recovery->rows[0][0] == "t";
      bool wants_replica = role == "replica" || role == "standby" || role == "standby-leader";
      if (in_recovery != wants_replica) {
        return report(unavailable);
      }
    }
    auto answer = (*session)->Query(options.command);
    if (!answer.ok()) {
      return report(SqlFailure((*session)->LastSqlState(), answer.error()));
    }
    return print(AnswerTable(*answer));
  });
}

}  // namespace pgha::cli
