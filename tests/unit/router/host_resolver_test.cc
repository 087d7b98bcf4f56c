// HostResolver with a lookup function the test controls: answers from the cache, one lookup per
// name at a time, and a name that never answers holding up no other. Real threads and short
// waits: a process test.
#include "router/host_resolver.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

namespace pgha::router {
namespace {

using std::chrono::milliseconds;
using State = HostResolver::Answer::State;
using ::testing::ElementsAre;

// Lookups of names listed in `held` wait until Release(); every call is counted by name.
// Shared with the resolver's detached threads, so it outlives the test body if it must.
struct FakeDns {
  std::mutex mutex;
  std::condition_variable released;
  bool open = false;
  std::map<std::string, int> calls;
  std::map<std::string, std::string> held_or_failing;  // name -> "hold" or "fail"

  Result<std::vector<std::string>> Resolve(const std::string& host) {
    std::unique_lock lock(mutex);
    ++calls[host];
    auto how = held_or_failing.find(host);
    if (how != held_or_failing.end() && how->second == "hold") {
      released.wait(lock, [this] { return open; });
    }
    if (how != held_or_failing.end() && how->second == "fail") {
      return Error::Unavailable("Name or service not known");
    }
    return std::vector<std::string>{"10.0.0." + std::to_string(calls.size())};
  }
  void Release() {
    std::lock_guard lock(mutex);
    open = true;
    released.notify_all();
  }
  int Calls(const std::string& host) {
    std::lock_guard lock(mutex);
    return calls[host];
  }
};

class HostResolverTest : public ::testing::Test {
 protected:
  void TearDown() override { dns_->Release(); }

  HostResolver Make(milliseconds fresh_for = milliseconds(60000)) {
    return HostResolver([dns = dns_](const std::string& host) { return dns->Resolve(host); },
                        fresh_for);
  }

  // Looks up `host` until the answer is no longer pending, for at most 2 s.
  static HostResolver::Answer Settled(HostResolver& resolver, const std::string& host) {
    auto deadline = std::chrono::steady_clock::now() + milliseconds(2000);
    auto answer = resolver.Lookup(host);
    while (answer.state == State::kPending && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(milliseconds(1));
      answer = resolver.Lookup(host);
    }
    return answer;
  }

  // Waits (2 s at most) until `host` was looked up `count` times: a lookup's thread may start
  // a moment after the call that started it returned.
  void WaitForCalls(const std::string& host, int count) {
    auto deadline = std::chrono::steady_clock::now() + milliseconds(2000);
    while (dns_->Calls(host) < count && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(milliseconds(1));
    }
  }

  std::shared_ptr<FakeDns> dns_ = std::make_shared<FakeDns>();
};

TEST_F(HostResolverTest, AnAddressIsItsOwnAnswer) {
  auto resolver = Make();
  auto v4 = resolver.Lookup("127.0.0.1");
  EXPECT_EQ(v4.state, State::kResolved);
  EXPECT_THAT(v4.addresses, ElementsAre("127.0.0.1"));
  EXPECT_EQ(resolver.Lookup("::1").state, State::kResolved);
  EXPECT_TRUE(dns_->calls.empty());
}

TEST_F(HostResolverTest, ANameIsLookedUpOnceAndThenAnsweredFromTheCache) {
  auto resolver = Make();
  EXPECT_EQ(resolver.Lookup("pg-0").state, State::kPending) << "the first lookup never blocks";
  auto answer = Settled(resolver, "pg-0");
  ASSERT_EQ(answer.state, State::kResolved);
  EXPECT_THAT(answer.addresses, ElementsAre("10.0.0.1"));
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(resolver.Lookup("pg-0").state, State::kResolved);
  }
  EXPECT_EQ(dns_->Calls("pg-0"), 1);
}

TEST_F(HostResolverTest, ANameThatNeverAnswersHoldsUpNoOtherName) {
  dns_->held_or_failing["pg-0"] = "hold";
  auto resolver = Make();
  EXPECT_EQ(resolver.Lookup("pg-0").state, State::kPending);
  EXPECT_EQ(Settled(resolver, "pg-1").state, State::kResolved);
  EXPECT_EQ(resolver.Lookup("pg-0").state, State::kPending);
  WaitForCalls("pg-0", 1);  // its thread may start after pg-1's answer came
  EXPECT_EQ(dns_->Calls("pg-0"), 1) << "one lookup of a name at a time";
  dns_->Release();
  EXPECT_EQ(Settled(resolver, "pg-0").state, State::kResolved);
}

TEST_F(HostResolverTest, AFailedLookupIsReportedAndTriedAgainOnceItIsNoLongerFresh) {
  dns_->held_or_failing["gone"] = "fail";
  auto resolver = Make(milliseconds(50));
  auto answer = Settled(resolver, "gone");
  EXPECT_EQ(answer.state, State::kFailed);
  EXPECT_THAT(answer.error, ::testing::HasSubstr("Name or service not known"));
  EXPECT_EQ(resolver.Lookup("gone").state, State::kFailed) << "fresh: no second lookup yet";
  EXPECT_EQ(dns_->Calls("gone"), 1);
  std::this_thread::sleep_for(milliseconds(60));
  (void)Settled(resolver, "gone");
  EXPECT_EQ(dns_->Calls("gone"), 2);
}

TEST_F(HostResolverTest, TheLastAddressesAreGivenWhileANewerLookupRuns) {
  auto resolver = Make(milliseconds(20));
  ASSERT_EQ(Settled(resolver, "pg-2").state, State::kResolved);
  dns_->held_or_failing["pg-2"] = "hold";
  std::this_thread::sleep_for(milliseconds(30));
  auto answer = resolver.Lookup("pg-2");  // starts the second lookup, which is held
  EXPECT_EQ(answer.state, State::kResolved);
  EXPECT_THAT(answer.addresses, ElementsAre("10.0.0.1"));
  WaitForCalls("pg-2", 2);
  EXPECT_EQ(dns_->Calls("pg-2"), 2) << "the newer lookup runs meanwhile";
  EXPECT_EQ(resolver.Lookup("pg-2").state, State::kResolved) << "still, while it is held";
}

}  // namespace
}  // namespace pgha::router
