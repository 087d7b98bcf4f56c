#include <nlohmann/json.hpp>

#include "ha/peer_client.h"
#include "model/global_config.h"

namespace pgha::ha {

PeerStatus PeerStatusFromJson(const std::string& name, const std::string& body) {
  PeerStatus peer;
  peer.name = name;
  auto json = nlohmann::json::parse(body, nullptr, false);
  if (!json.is_object()) {
    return peer;  // unreachable for the race: an answer we cannot read proves nothing
  }
  peer.reachable = true;
  auto text = [&json](const char* key) {
    auto it = json.find(key);
    return it != json.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  auto lsn = [](const nlohmann::json& object, const char* key) -> uint64_t {
    auto it = object.find(key);
    if (it != object.end() && it->is_number_unsigned()) {
      return it->get<uint64_t>();
    }
    if (it != object.end() && it->is_number_integer() && it->get<int64_t>() > 0) {
      return static_cast<uint64_t>(it->get<int64_t>());
    }
    return 0;
  };
  std::string role = text("role");
  peer.running = text("state") == "running";
  peer.is_primary = role == "master" || role == "primary";
  if (auto xlog = json.find("xlog"); xlog != json.end() && xlog->is_object()) {
    peer.wal_position = peer.is_primary ? lsn(*xlog, "location")
                                        : std::max(lsn(*xlog, "received_location"),
                                                   lsn(*xlog, "replayed_location"));
  }
  if (auto tl = json.find("timeline"); tl != json.end() && tl->is_number_integer()) {
    peer.timeline = tl->get<int64_t>();
  }
  if (auto tags = json.find("tags"); tags != json.end() && tags->is_object()) {
    if (auto nf = tags->find("nofailover"); nf != tags->end()) {
      peer.nofailover = model::JsonAsBool(*nf).value_or(false);
    }
    if (auto fp = tags->find("failover_priority"); fp != tags->end()) {
      peer.failover_priority = static_cast<int64_t>(model::JsonAsNumber(*fp).value_or(1));
    }
    if (peer.nofailover) {
      peer.failover_priority = 0;
    }
  }
  return peer;
}

}  // namespace pgha::ha
