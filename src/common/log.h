// Logging facade over spdlog. Lines look like Patroni's: "2026-11-25 20:00:00,123 INFO: ...".
//
// Thread-safety: the logger is thread-safe; InitLogging must run before other threads start.
#pragma once

#include <spdlog/spdlog.h>

#include <string>

namespace pgha {

// level: Patroni's names (DEBUG, INFO, WARNING, ERROR, CRITICAL), case-insensitive.
// Unknown names fall back to INFO and say so.
void InitLogging(const std::string& level = "INFO");
// Patroni's level names (DEBUG, INFO, WARNING, ERROR, CRITICAL); unknown names mean INFO.
void SetLogLevel(const std::string& level);

}  // namespace pgha

#define PGHA_LOG_DEBUG(...) spdlog::debug(__VA_ARGS__)
#define PGHA_LOG_INFO(...) spdlog::info(__VA_ARGS__)
#define PGHA_LOG_WARN(...) spdlog::warn(__VA_ARGS__)
#define PGHA_LOG_ERROR(...) spdlog::error(__VA_ARGS__)
