// What earlier runs of the PostgreSQL tests left running: a test binary that died without its
// TearDown (an abort, a debugger session ended) leaves its postmaster up and its directory behind.
// Each LocalPostgresFixture names its process in its directory; a directory whose process is gone
// is abandoned, and the next fixture stops its postmaster and removes it.
#pragma once

#include <string>

namespace pgha::testing {

// The name of the file, in a fixture's directory, that holds the pid of the test that made it.
inline constexpr const char* kOwnerFile = "owner.pid";

// Writes this process's pid into dir/owner.pid.
void MarkOwnedByThisProcess(const std::string& dir);

// For every directory named prefix* whose owner is gone: its postmaster (the one running in its
// data/ directory, nothing else) is stopped as the fixture's TearDown would stop it (immediate),
// and the directory is removed. A directory without an owner file is left alone. Returns how many
// were cleared.
int ClearAbandonedPostgres(const std::string& prefix);

}  // namespace pgha::testing
