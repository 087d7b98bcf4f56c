#include "router/host_resolver.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include <map>
#include <optional>
#include <system_error>
#include <thread>

#include "common/mutex.h"

namespace pgha::router {

using Steady = std::chrono::steady_clock;

namespace {

bool IsAddress(const std::string& host) {
  unsigned char buffer[sizeof(in6_addr)];
  return ::inet_pton(AF_INET, host.c_str(), buffer) == 1 ||
         ::inet_pton(AF_INET6, host.c_str(), buffer) == 1;
}

struct Entry {
  bool in_flight = false;
  std::optional<Steady::time_point> answered_at;  // the last lookup's end
  bool failed = false;                            // ... and whether it found nothing
  std::string error;
  std::optional<Steady::time_point> resolved_at;  // the last lookup that found addresses
  std::vector<std::string> addresses;             // ... and what it found
};

}  // namespace

struct HostResolver::Shared {
  ResolveFunction resolve;
  std::chrono::milliseconds fresh_for;
  std::chrono::milliseconds usable_for;
  Mutex mutex;
  std::map<std::string, Entry> entries GUARDED_BY(mutex);
};

HostResolver::HostResolver(ResolveFunction resolve, std::chrono::milliseconds fresh_for,
                           std::chrono::milliseconds usable_for)
    : shared_(std::make_shared<Shared>()) {
  shared_->resolve = std::move(resolve);
  shared_->fresh_for = fresh_for;
  shared_->usable_for = usable_for;
}

HostResolver::Answer HostResolver::Lookup(const std::string& host) {
  Answer answer;
  if (IsAddress(host)) {
    answer.state = Answer::State::kResolved;
    answer.addresses = {host};
    return answer;
  }
  auto now = Steady::now();
  MutexLock lock(shared_->mutex);
  Entry& entry = shared_->entries[host];
  bool fresh = entry.answered_at && now - *entry.answered_at < shared_->fresh_for;
  if (fresh && entry.failed) {
    answer.state = Answer::State::kFailed;
    answer.error = entry.error;
    return answer;
  }
  if (!fresh && !entry.in_flight) {
    entry.in_flight = true;
    try {
      std::thread([shared = shared_, host] {
        auto found = shared->resolve(host);
        MutexLock done(shared->mutex);
        Entry& resolved = shared->entries[host];
        resolved.in_flight = false;
        resolved.answered_at = Steady::now();
        resolved.failed = !found.ok() || found->empty();
        if (resolved.failed) {
          resolved.error = found.ok() ? "no address" : found.error().message();
        } else {
          resolved.resolved_at = resolved.answered_at;
          resolved.addresses = std::move(found).value();
        }
      }).detach();
    } catch (const std::system_error& error) {
      // Out of threads (a process limit): this lookup fails; the next one tries again.
      entry.in_flight = false;
      answer.state = Answer::State::kFailed;
      answer.error = std::string("cannot start a lookup of ") + host + ": " + error.what();
      return answer;
    }
  }
  if (entry.resolved_at && now - *entry.resolved_at < shared_->usable_for &&
      (fresh || entry.in_flight)) {
    answer.state = Answer::State::kResolved;
    answer.addresses = entry.addresses;
  }
  return answer;
}

Result<std::vector<std::string>> HostResolver::SystemResolve(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &found);
  if (rc != 0) {
    return Error::Unavailable("cannot resolve " + host + ": " + ::gai_strerror(rc));
  }
  std::vector<std::string> addresses;
  for (addrinfo* a = found; a != nullptr; a = a->ai_next) {
    char text[INET6_ADDRSTRLEN] = {};
    const void* raw =
        a->ai_family == AF_INET
            ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr)
            : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_addr);
    if ((a->ai_family == AF_INET || a->ai_family == AF_INET6) &&
        ::inet_ntop(a->ai_family, raw, text, sizeof(text)) != nullptr) {
      addresses.emplace_back(text);
    }
  }
  ::freeaddrinfo(found);
  if (addresses.empty()) {
    return Error::Unavailable("cannot resolve " + host + ": no address");
  }
  return addresses;
}

}  // namespace pgha::router
