// Numbers with units, parsed the way Patroni and PostgreSQL accept them: "16kB", "64MB",
// "1GB", "10s", "500ms", "5min". A bare number is in the base unit.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace pgha {

// Parses `value` as an integer in `base_unit` ("B", "kB", "MB", "us", "ms", "s", "min", "h",
// "d", or "" for a plain number). A unit in the value is converted into the base unit and
// rounded to the nearest integer, as PostgreSQL does for GUCs. Units are case-sensitive, as in
// PostgreSQL ("kB", not "KB"). Errors name the value and what was expected.
Result<int64_t> ParseInt(std::string_view value, std::string_view base_unit = "");

// Like ParseInt but keeps the fraction ("0.5s" in base unit "ms" is 500).
Result<double> ParseReal(std::string_view value, std::string_view base_unit = "");

// A size in bytes: "16kB", "64MB", "1048576".
Result<int64_t> ParseSizeBytes(std::string_view value);

// A duration: "10s", "500ms", "1.5" (seconds when no unit is given).
Result<std::chrono::milliseconds> ParseDuration(std::string_view value);

// "1.5 s", "250 ms": for logs and messages.
std::string FormatDuration(std::chrono::milliseconds d);

}  // namespace pgha
