// Host names of backends (a member's conn_url host: an address, or a name such as a container's)
// resolved off the data path. Each name resolves on a thread of its own, one resolution at a
// time, so a name whose DNS answer never comes (the container of a killed member, whose name
// the container network's DNS no longer answers promptly) holds up no other name: the clients
// of the new leader connect while the old leader's name is still being looked up. asio's own
// asynchronous resolver runs every lookup of an io_context on one shared thread, one after the
// other, which is what made them wait.
//
// Lookup never blocks. An address is its own answer. A name answered less than `fresh_for` ago
// is answered from the cache; an older answer starts a new lookup and, while it runs, the last
// good addresses are still given (for at most `usable_for`), so a busy port does not wait for DNS
// once a second. A failed lookup is answered as failed until `fresh_for` passes.
//
// Thread-safety: every method may be called from any thread. `resolve` runs on threads of the
// resolver's own and must stay callable until the last one returns (they are detached).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"

namespace pgha::router {

class HostResolver {
 public:
  // Addresses (IPv4 or IPv6, as text) for a host name; an error when it has none.
  using ResolveFunction = std::function<Result<std::vector<std::string>>(const std::string& host)>;

  explicit HostResolver(ResolveFunction resolve = SystemResolve,
                        std::chrono::milliseconds fresh_for = std::chrono::seconds(1),
                        std::chrono::milliseconds usable_for = std::chrono::seconds(30));

  struct Answer {
    enum class State { kPending, kResolved, kFailed };
    State state = State::kPending;
    std::vector<std::string> addresses;  // kResolved
    std::string error;                   // kFailed
  };
  Answer Lookup(const std::string& host);

  // getaddrinfo, TCP addresses only.
  static Result<std::vector<std::string>> SystemResolve(const std::string& host);

  struct Shared;

 private:
  std::shared_ptr<Shared> shared_;
};

}  // namespace pgha::router
