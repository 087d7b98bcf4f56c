// ISO-8601 timestamps as Patroni writes and reads them ("2026-11-25T19:43:35.502715+00:00").
#pragma once

#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/result.h"

namespace pgha {

// "2026-11-25T19:43:35.502715+00:00" (UTC, microseconds); `separator` ' ' gives PostgreSQL's
// style used for postmaster_start_time.
std::string FormatIsoTimestamp(WallTime t, char separator = 'T');

// Accepts "YYYY-MM-DD[T ]HH:MM[:SS[.ffffff]][Z|+HH:MM|+HHMM|+HH]"; a timestamp without a
// zone is refused, since a switchover time that means different instants on different nodes is
// dangerous.
Result<WallTime> ParseIsoTimestamp(std::string_view text);

}  // namespace pgha
