#include "common/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include "common/strings.h"

namespace pgha {

void InitLogging(const std::string& level) {
  auto logger = spdlog::stderr_color_mt("pgha");
  logger->set_pattern("%Y-%m-%d %H:%M:%S,%e %^%l%$: %v");
  spdlog::set_default_logger(logger);
  SetLogLevel(level);
}

void SetLogLevel(const std::string& level) {
  std::string name = ToLower(level);
  spdlog::level::level_enum parsed = spdlog::level::info;
  bool known = true;
  if (name == "debug") {
    parsed = spdlog::level::debug;
  } else if (name == "info") {
    parsed = spdlog::level::info;
  } else if (name == "warning" || name == "warn") {
    parsed = spdlog::level::warn;
  } else if (name == "error") {
    parsed = spdlog::level::err;
  } else if (name == "critical" || name == "fatal") {
    parsed = spdlog::level::critical;
  } else {
    known = false;
  }
  spdlog::set_level(parsed);
  if (!known) {
    spdlog::warn("unknown log level '{}', using INFO", level);
  }
}

}  // namespace pgha
