#include "cli/watch.h"

#include <chrono>

namespace pgha::cli {

namespace {
constexpr const char* kClearScreen = "\033[H\033[2J";
}

Status Watching(const WatchOptions& options, bool clear_screen, Terminal& terminal,
                const Clock& clock, const std::function<Status()>& round) {
  double interval = options.w_flag && options.interval <= 0 ? 2 : options.interval;
  bool watching = interval > 0;
  while (true) {
    if (watching && clear_screen) {
      terminal.Print(kClearScreen);
    }
    if (Status status = round(); !status.ok() || !watching) {
      return status;
    }
    clock.SleepFor(std::chrono::duration_cast<std::chrono::nanoseconds>(
        std::chrono::duration<double>(interval)));
  }
}

}  // namespace pgha::cli
