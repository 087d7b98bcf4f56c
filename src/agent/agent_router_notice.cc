// The leader's notice to the routers before a planned stop of PostgreSQL (switchover, graceful
// stop): announce, wait until every router present acknowledged it or the bound passed, and
// withdraw it once the handover is over (model/handover_notice.h). The notice never decides
// anything: a DCS that cannot take it, or a router that never answers, delays the stop by at
// most the bound.

#include <fmt/ranges.h>

#include "agent/agent.h"
#include "common/log.h"

namespace pgha::agent {

using std::chrono::duration;
using std::chrono::milliseconds;

int64_t Agent::AnnounceHandover(model::HandoverReason reason, const std::string& candidate,
                                milliseconds wait) {
  model::HandoverNotice notice;
  notice.leader = config_->name;
  notice.candidate = candidate;
  notice.reason = reason;
  notice.wait_seconds = duration<double>(wait).count();
  auto announced = dcs_.AnnounceHandover(model::EncodeHandoverNotice(notice));
  if (!announced.ok()) {
    PGHA_LOG_WARN("could not tell the routers of the {}: {}", model::HandoverReasonName(reason),
                  announced.error().message());
    return 0;
  }
  return *announced;
}

void Agent::AwaitRouters(int64_t notice_revision, MonoTime announced_at, MonoTime deadline) {
  if (notice_revision == 0) {
    return;
  }
  std::vector<std::string> pending;
  while (true) {
    auto cluster = dcs_.LoadCluster();
    if (cluster.ok()) {
      pending = model::RoutersYetToAcknowledge(cluster->routers, notice_revision);
      if (pending.empty()) {
        if (!cluster->routers.empty()) {
          PGHA_LOG_INFO("{} router(s) acknowledged the handover notice within {:.3f} s of it",
                        cluster->routers.size(),
                        duration<double>(clock_.Now() - announced_at).count());
        }
        return;
      }
    }
    if (clock_.Now() >= deadline) {
      break;
    }
    clock_.SleepFor(milliseconds(20));
  }
  PGHA_LOG_WARN("going on without the acknowledgement of router(s) {} after {:.1f} s",
                fmt::join(pending, ", "), duration<double>(clock_.Now() - announced_at).count());
}

void Agent::WithdrawHandover(int64_t notice_revision) {
  if (notice_revision == 0) {
    return;
  }
  if (auto withdrawn = dcs_.WithdrawHandover(); !withdrawn.ok()) {
    // It is on this process's lease: it goes when the lease does. Until then routers that see
    // another leader ignore it.
    PGHA_LOG_WARN("could not withdraw the handover notice: {}", withdrawn.error().message());
  }
}

}  // namespace pgha::agent
