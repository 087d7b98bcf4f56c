// Readers for the golden data a real Patroni 3.0.2 cluster produced (tests/compat/patroni-3.0.2).
#pragma once

#include <string>
#include <vector>

#include "model/cluster.h"

namespace pgha::testing {

// The "etcdctl get --prefix" section of a *-dcs.txt file, keys relative to /service/pg-ha/.
std::vector<model::KeyValue> ReadDcsDump(const std::string& file);

// One `curl -i` exchange of a *-rest-*.txt file.
struct Exchange {
  std::string method;
  std::string target;  // path with query
  int status = 0;
  std::string body;
};
std::vector<Exchange> ReadExchanges(const std::string& file);
// The body of the first exchange for `target` (GET), or "" when the file has none.
std::string GoldenBody(const std::string& file, const std::string& target);

// The text between "=== <command>" and the next "===" line of a *-patronictl.txt file.
std::string ReadCtlOutput(const std::string& file, const std::string& command);

// A whole file (the output of one command, as switchover-*-patronictl.txt).
std::string ReadCompatText(const std::string& file);

}  // namespace pgha::testing
