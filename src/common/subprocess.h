// Runs a program to completion with a deadline, capturing its output. Used for PostgreSQL's
// tools (initdb, pg_ctl, pg_basebackup, pg_rewind, pg_controldata) and callbacks.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace pgha {

struct ProgramResult {
  int exit_code = -1;  // -1: could not start, or killed at the deadline
  bool timed_out = false;
  std::string output;  // stdout and stderr together (truncated at 1 MiB)
};

// argv[0] is looked up in PATH. `env` adds to (or overrides) the inherited environment.
// `input` is written to the program's stdin. The program runs in its own process group, which
// is killed when the deadline passes.
ProgramResult RunProgram(const std::vector<std::string>& argv,
                         std::chrono::milliseconds timeout = std::chrono::minutes(10),
                         const std::map<std::string, std::string>& env = {},
                         const std::string& input = "");

}  // namespace pgha
