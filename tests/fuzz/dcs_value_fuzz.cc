// Any bytes as any DCS value, and as a watch-stream message: decoders return a value or an
// error, never crash; what decodes re-encodes to something that decodes the same.
#include <cstdint>
#include <string>

#include "dcs/etcd3/client.h"
#include "model/codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace pgha::model;
  std::string value(reinterpret_cast<const char*>(data), size);
  (void)DecodeLeader(value);
  if (auto m = DecodeMember("fuzz", value); m.ok()) {
    (void)m->wal_position();
    (void)m->host();
    (void)m->port();
    (void)m->failover_priority();
  }
  if (auto c = DecodeConfig(value); c.ok()) {
    (void)c->ttl();
    (void)c->maximum_lag_on_failover();
    (void)c->synchronous_mode();
    (void)GlobalConfig::Validate(c->raw());
  }
  (void)DecodeInitialize(value);
  if (auto s = DecodeStatus(value); s.ok()) {
    auto again = DecodeStatus(EncodeStatus(*s));
    if (!again.ok() || again->optime != s->optime) {
      __builtin_trap();
    }
  }
  (void)DecodeLegacyOptime(value);
  if (auto h = DecodeHistory(value); h.ok()) {
    auto again = DecodeHistory(EncodeHistory(*h));
    if (!again.ok() || again->size() != h->size()) {
      __builtin_trap();
    }
  }
  (void)DecodeFailover(value);
  (void)DecodeSync(value);
  (void)DecodeFailsafe(value);
  if (auto n = DecodeHandoverNotice(value); n.ok()) {
    auto again = DecodeHandoverNotice(EncodeHandoverNotice(*n));
    if (!again.ok() || again->leader != n->leader || again->reason != n->reason) {
      __builtin_trap();
    }
  }
  if (auto r = DecodeRouterPresence("fuzz", value); r.ok()) {
    auto again = DecodeRouterPresence("fuzz", EncodeRouterPresence(*r));
    if (!again.ok() || again->acknowledged != r->acknowledged) {
      __builtin_trap();
    }
  }
  auto parsed = nlohmann::json::parse(value, nullptr, false);
  if (!parsed.is_discarded()) {
    (void)pgha::dcs::etcd3::ParseWatchResponse(parsed);
    (void)pgha::dcs::etcd3::ParseKeyValue(parsed);
  }
  std::vector<KeyValue> keys = {
      {"leader", value},     {"members/x", value},     {"config", value},
      {"status", value},     {"history", value},       {"failover", value},
      {"sync", value},       {"failsafe", value},      {"optime/leader", value},
      {"initialize", value}, {"pgha/handover", value}, {"pgha/routers/x", value}};
  (void)BuildSnapshot(keys, 1);
  return 0;
}
