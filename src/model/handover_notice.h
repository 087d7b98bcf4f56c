// pgha's own keys for a planned handover, below pgha/ under the cluster prefix (Patroni reads
// only the keys it knows and ignores these):
//  - pgha/handover: written by the leader, on its lease, just before it stops PostgreSQL in a
//    switchover or a graceful stop. Routers hold new write connections from then on, so that a
//    client waits for the next primary instead of reaching one that is shutting down.
//  - pgha/routers/<name>: each router's own key, on its lease, naming the revision of the last
//    notice it has acted on. The leader waits, up to a bound, until every router present has
//    acknowledged its notice; a router that never answers delays nothing past that bound.
// The notice's identity is the mod_revision of pgha/handover: a new notice always has a new one.
//
// Thread-safety: values and pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace pgha::model {

inline constexpr const char* kHandoverKey = "pgha/handover";
inline constexpr const char* kRoutersPrefix = "pgha/routers/";

enum class HandoverReason { kSwitchover, kShutdown };

struct HandoverNotice {
  std::string leader;     // the member that is about to stop
  std::string candidate;  // who should lead next; "" when the healthiest replica will
  HandoverReason reason = HandoverReason::kSwitchover;
  double wait_seconds = 0;   // how long the leader waits for acknowledgements
  int64_t mod_revision = 0;  // the notice's identity (set when read from the DCS)
};

// A router's key: the notice it has acted on (0: none yet).
struct RouterPresence {
  std::string name;
  int64_t acknowledged = 0;
};

std::string EncodeHandoverNotice(const HandoverNotice& notice);
Result<HandoverNotice> DecodeHandoverNotice(std::string_view value);
std::string EncodeRouterPresence(const RouterPresence& router);
Result<RouterPresence> DecodeRouterPresence(const std::string& name, std::string_view value);

const char* HandoverReasonName(HandoverReason reason);

// The routers that have not yet acknowledged the notice with this revision, by name.
std::vector<std::string> RoutersYetToAcknowledge(const std::vector<RouterPresence>& routers,
                                                 int64_t notice_revision);

}  // namespace pgha::model
