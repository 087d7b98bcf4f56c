#include "ha/cold_start.h"

#include <algorithm>

namespace pgha::ha {

bool InColdStart(const HaInput& in) {
  return in.cold_start_until && in.now < *in.cold_start_until && in.cluster.IsUnlocked();
}

std::vector<std::string> MembersNotHeardFrom(const HaInput& in) {
  std::vector<std::string> missing;
  for (const auto& name : in.cluster.registered_members) {
    if (name == in.local.name) {
      continue;
    }
    auto peer = std::find_if(in.peers.begin(), in.peers.end(),
                             [&name](const PeerStatus& p) { return p.name == name; });
    bool heard = peer != in.peers.end() && peer->reachable && (peer->running || peer->nofailover);
    if (!heard) {
      missing.push_back(name);
    }
  }
  return missing;
}

bool IsAheadOf(int64_t timeline, uint64_t position, int64_t other_timeline,
               uint64_t other_position) {
  if (timeline != other_timeline) {
    return timeline > other_timeline;
  }
  return position > other_position;
}

}  // namespace pgha::ha
