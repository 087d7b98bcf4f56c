#include "model/handover_notice.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "model/codec.h"

namespace pgha::model {

using nlohmann::json;

const char* HandoverReasonName(HandoverReason reason) {
  return reason == HandoverReason::kShutdown ? "shutdown" : "switchover";
}

std::string EncodeHandoverNotice(const HandoverNotice& notice) {
  nlohmann::ordered_json out;
  out["leader"] = notice.leader;
  if (!notice.candidate.empty()) {
    out["candidate"] = notice.candidate;
  }
  out["reason"] = HandoverReasonName(notice.reason);
  out["wait"] = notice.wait_seconds;
  return out.dump();
}

Result<HandoverNotice> DecodeHandoverNotice(std::string_view value) {
  auto parsed = ParseJson(value, "handover notice");
  if (!parsed.ok()) {
    return parsed.error();
  }
  if (!parsed->is_object()) {
    return Error::Invalid("handover notice is not a JSON object");
  }
  HandoverNotice notice;
  auto leader = parsed->find("leader");
  if (leader == parsed->end() || !leader->is_string() || leader->get<std::string>().empty()) {
    return Error::Invalid("handover notice names no leader");
  }
  notice.leader = leader->get<std::string>();
  if (auto candidate = parsed->find("candidate"); candidate != parsed->end()) {
    if (!candidate->is_string()) {
      return Error::Invalid("handover notice's candidate is not a string");
    }
    notice.candidate = candidate->get<std::string>();
  }
  auto reason = parsed->find("reason");
  if (reason == parsed->end() || !reason->is_string()) {
    return Error::Invalid("handover notice gives no reason");
  }
  if (*reason == "switchover") {
    notice.reason = HandoverReason::kSwitchover;
  } else if (*reason == "shutdown") {
    notice.reason = HandoverReason::kShutdown;
  } else {
    return Error::Invalid(
        fmt::format("handover notice's reason '{}' is neither switchover nor shutdown",
                    reason->get<std::string>()));
  }
  if (auto wait = parsed->find("wait"); wait != parsed->end()) {
    if (!wait->is_number() || wait->get<double>() < 0) {
      return Error::Invalid("handover notice's wait is not a number of seconds");
    }
    notice.wait_seconds = wait->get<double>();
  }
  return notice;
}

std::string EncodeRouterPresence(const RouterPresence& router) {
  nlohmann::ordered_json out;
  out["acknowledged"] = router.acknowledged;
  return out.dump();
}

Result<RouterPresence> DecodeRouterPresence(const std::string& name, std::string_view value) {
  auto parsed = ParseJson(value, "router key");
  if (!parsed.ok()) {
    return parsed.error();
  }
  auto acknowledged = parsed->is_object() ? parsed->find("acknowledged") : parsed->end();
  if (acknowledged == parsed->end() || !acknowledged->is_number_integer()) {
    return Error::Invalid("router key has no integer 'acknowledged'");
  }
  return RouterPresence{name, acknowledged->get<int64_t>()};
}

std::vector<std::string> RoutersYetToAcknowledge(const std::vector<RouterPresence>& routers,
                                                 int64_t notice_revision) {
  std::vector<std::string> pending;
  for (const auto& router : routers) {
    if (router.acknowledged < notice_revision) {
      pending.push_back(router.name);
    }
  }
  return pending;
}

}  // namespace pgha::model
