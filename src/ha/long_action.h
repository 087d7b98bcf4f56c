// The work the agent runs off its loop thread. While one runs, the HA decision only keeps the
// lock (ha/decide.h), the member's state is derived from it, and REST requests that would start
// another are refused.
#pragma once

#include <string_view>

namespace pgha::ha {

enum class LongAction {
  kNone,
  kBootstrap,         // initdb (or a custom bootstrap) and the first start
  kBasebackup,        // creating a replica
  kRewind,            // pg_rewind before following a new leader
  kDemote,            // a primary's handover: stop, hand the lock over, follow
  kReinitialize,      // POST /reinitialize: remove the data directory and clone again
  kRestart,           // POST /restart
  kCopyLogicalSlots,  // a replica copying the leader's logical slots
};

// The name logs, REST errors ("restart in progress") and the decision's messages use.
constexpr std::string_view LongActionName(LongAction action) {
  switch (action) {
    case LongAction::kNone:
      return "";
    case LongAction::kBootstrap:
      return "bootstrap";
    case LongAction::kBasebackup:
      return "basebackup";
    case LongAction::kRewind:
      return "rewind";
    case LongAction::kDemote:
      return "demote";
    case LongAction::kReinitialize:
      return "reinitialize";
    case LongAction::kRestart:
      return "restart";
    case LongAction::kCopyLogicalSlots:
      return "copy logical slots";
  }
  return "";
}

}  // namespace pgha::ha
