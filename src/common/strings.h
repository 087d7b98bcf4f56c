// Small string helpers shared by the codecs and the config loader.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace pgha {

std::string_view Trim(std::string_view s);
std::string ToLower(std::string_view s);
std::string ToUpper(std::string_view s);
std::vector<std::string> Split(std::string_view s, char separator);
// Splits and trims; empty pieces are dropped.
std::vector<std::string> SplitAndTrim(std::string_view s, char separator);

// A command line split as Python's shlex.split does (POSIX rules: whitespace separates, single
// quotes keep everything, double quotes keep all but \" \\ \$ \`, a backslash escapes outside
// quotes). Patroni splits callback commands this way. An unclosed quote is an error.
Result<std::vector<std::string>> SplitCommandLine(std::string_view line);

// RFC 3986 percent-encoding of everything but unreserved characters, for URL parts.
std::string PercentEncode(std::string_view text);

std::string Base64Encode(std::string_view bytes);
// Standard alphabet with padding; whitespace is not accepted.
Result<std::string> Base64Decode(std::string_view text);

// The smallest key greater than every key with this prefix (etcd's range_end for a prefix).
// An all-0xff prefix yields "\0", meaning "to the end of the key space".
std::string PrefixRangeEnd(std::string_view prefix);

// Parses a signed 64-bit decimal integer; the whole string must be the number.
std::optional<int64_t> ParseInt64(std::string_view s);
std::optional<uint64_t> ParseUint64(std::string_view s);

}  // namespace pgha
