// pghactl query: SQL on the member a role or a name selects, printed as patronictl prints it.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "cli/ctl.h"
#include "cli/list.h"
#include "cli/watch.h"
#include "common/result.h"
#include "postgres/connection.h"

namespace pgha::cli {

// A connection to a member's PostgreSQL; pghactl's is libpq's.
class SqlSession {
 public:
  virtual ~SqlSession() = default;
  // `sql` may hold several statements; the last one's rows are the answer.
  virtual Result<postgres::ResultSet> Query(const std::string& sql) = 0;
  // The SQLSTATE of the last failure, when the server sent one.
  virtual std::string LastSqlState() const = 0;
};
using SqlConnector =
    std::function<Result<std::unique_ptr<SqlSession>>(const std::string& conninfo)>;

struct QueryOptions {
  std::string cluster{};  // the configuration's scope when empty
  std::string role{};     // leader (default), primary, replica, standby, any...
  std::string member{};   // or one member by name
  std::string command{};  // -c SQL
  std::string file{};     // or --file with the SQL
  std::string username{};
  std::string dbname{};
  bool password_prompt = false;  // --password: asked on the terminal
  std::string fmt = "tsv";
  std::string delimiter = "\t";
  WatchOptions watch{};
};

// A member that cannot be reached or a statement that fails is a line of the output, as in
// patronictl: a timestamp and "ERROR, SQLSTATE: " with the server's SQLSTATE, or the message
// when there is none (a refused connection). Wrong options are an Error.
Status Query(QueryOptions options, const std::string& configured_scope,
             const ClusterReader& read_cluster, const SqlConnector& connect, Terminal& terminal,
             const Clock& clock);

}  // namespace pgha::cli
