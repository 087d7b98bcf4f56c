// patronictl's watching(): `list` and `query` print once, or again every few seconds until the
// operator interrupts them.
#pragma once

#include <functional>

#include "cli/ctl.h"
#include "common/clock.h"
#include "common/result.h"

namespace pgha::cli {

struct WatchOptions {
  bool w_flag = false;  // -W: every 2 s
  double interval = 0;  // -w SECONDS; 0 with no -W prints once
};

// Runs `round` once, or every interval until a round fails, which ends the watch with its
// error (patronictl ends on the exception). With `clear_screen` the terminal is cleared before
// each round of a watch, as `list` does.
Status Watching(const WatchOptions& options, bool clear_screen, Terminal& terminal,
                const Clock& clock, const std::function<Status()>& round);

}  // namespace pgha::cli
