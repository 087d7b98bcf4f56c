// Runs a program to completion with a deadline, capturing its output. Used for PostgreSQL's
// tools (initdb, pg_ctl, pg_basebackup, pg_rewind, pg_controldata) and callbacks.
#pragma once

#include <chrono>
#include <functional>
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
// `on_line`, when given, sees each output line as it arrives (lines end at \n or \r), for
// progress reports of long programs such as pg_basebackup.
ProgramResult RunProgram(const std::vector<std::string>& argv,
                         std::chrono::milliseconds timeout = std::chrono::minutes(10),
                         const std::map<std::string, std::string>& env = {},
                         const std::string& input = "",
                         const std::function<void(const std::string&)>& on_line = {});

}  // namespace pgha
