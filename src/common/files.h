// Whole-file reads that report failure instead of throwing.
#pragma once

#include <optional>
#include <string>

namespace pgha {

// Reads everything `fd` has left with read(2); nullopt on a read error. An istreambuf_iterator
// over an ifstream throws instead (libstdc++'s filebuf::underflow), for example when a /proc
// entry's process exits while it is read (ESRCH) — which must not end the agent.
std::optional<std::string> ReadAll(int fd);

// The whole file at `path`; nullopt when it cannot be opened or read.
std::optional<std::string> ReadWholeFile(const std::string& path);

}  // namespace pgha
