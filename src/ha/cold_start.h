// The cold-start rule: when every node starts with no leader key, the member that was primary
// last (the latest timeline, then the latest WAL position) takes the lock again, whatever the
// order in which the nodes come up. Patroni lets the first healthy node that sees no leader win,
// so a stale replica that starts first can lead and leave the real last primary to a rewind
// that may fail (its newer timeline cannot be followed by an older one).
//
// A cold start lasts from the first cycle that finds an initialized cluster without a leader
// until a leader key appears or ttl has passed (HaInput::cold_start_until). Meanwhile the lock
// waits until every member registered in the DCS (pgha/members/*) reports a running
// PostgreSQL's position; a member that never comes back delays the start by at most ttl.
//
// Thread-safety: pure functions over values.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ha/decide.h"

namespace pgha::ha {

// Whether the cold-start rule applies to this cycle.
bool InColdStart(const HaInput& input);

// The registered members, other than this one, whose position is not known yet: no answer from
// their REST API, or no running PostgreSQL (a member tagged nofailover that answers is not
// waited for: it cannot lead).
std::vector<std::string> MembersNotHeardFrom(const HaInput& input);

// The cold-start order: a later timeline is ahead whatever the positions (a promotion happened
// there last), then the later position.
bool IsAheadOf(int64_t timeline, uint64_t position, int64_t other_timeline,
               uint64_t other_position);

}  // namespace pgha::ha
