// Quorum commit: the planner's steps from recorded states, and a simulation that applies them
// cycle after cycle and checks the safety rule after every single write.
#include "ha/quorum.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <random>

namespace pgha::ha {
namespace {

using Set = std::set<std::string>;

model::Member Member(const std::string& name, nlohmann::json tags = nlohmann::json::object()) {
  model::Member m;
  m.name = name;
  m.data = {{"role", "replica"}, {"state", "running"}, {"tags", tags}};
  return m;
}

model::ClusterSnapshot Cluster(std::optional<QuorumKey> key, const std::string& key_leader = "a") {
  model::ClusterSnapshot c;
  c.leader = model::Leader{"a", 1, 1};
  c.members = {Member("a"), Member("b"), Member("c"), Member("d")};
  if (key) {
    model::SyncState s;
    s.mod_revision = 3;
    s.leader = key_leader;
    s.sync_standby.assign(key->voters.begin(), key->voters.end());
    s.quorum = key->quorum;
    c.sync = s;
  }
  return c;
}

SyncSettings Quorum(int64_t count = 1, bool strict = false) {
  return {.enabled = true, .strict = strict, .quorum = true, .node_count = count};
}

QuorumNames Any(int64_t n, Set names) { return {n, std::move(names), false}; }

QuorumState State(Set active, Set confirmed, bool caught_up = true) {
  return {std::move(active), std::move(confirmed), caught_up};
}

TEST(QuorumTest, FormatsAnyLists) {
  EXPECT_EQ(FormatQuorumStandbyNames(Any(2, {"b", "c", "pg-3"})), "ANY 2 (b,c,\"pg-3\")");
  EXPECT_EQ(FormatQuorumStandbyNames(Any(0, {})), "");
  EXPECT_EQ(FormatQuorumStandbyNames({1, {}, true}), "*");
}

TEST(QuorumTest, SafetyRule) {
  EXPECT_TRUE(QuorumSafe({}, Any(0, {}), 0));  // only the leader may take over
  EXPECT_TRUE(QuorumSafe({1, {"b", "c"}}, Any(1, {"b", "c"}), 2));
  EXPECT_FALSE(QuorumSafe({0, {"b", "c"}}, Any(1, {"b", "c"}), 2));  // b alone may miss c's acks
  EXPECT_FALSE(QuorumSafe({1, {"b", "c"}}, Any(1, {"b", "c"}), 0));  // nobody caught up yet
  EXPECT_TRUE(QuorumSafe({0, {"b", "c"}}, Any(2, {"b", "c"}), 2));
  EXPECT_FALSE(QuorumSafe({1, {"b"}}, Any(1, {"b", "c", "d"}), 3));  // acks on c or d unseen
  EXPECT_FALSE(QuorumSafe({0, {"b"}}, {1, {}, true}, 1));
}

TEST(QuorumTest, FirstStandbyIsListedBeforeTheKeyNamesItAndOnlyOnceConfirmed) {
  auto cluster = Cluster(QuorumKey{});
  auto steps = PlanQuorumReplication(cluster, "a", Quorum(), State({"b"}, {}), Any(0, {}));
  EXPECT_FALSE(steps.key_before);  // the empty key is safe whatever PostgreSQL runs
  ASSERT_TRUE(steps.standby_names);
  EXPECT_EQ(*steps.standby_names, Any(1, {"b"}));
  // Listed but not confirmed: the key stays empty.
  steps = PlanQuorumReplication(cluster, "a", Quorum(), State({"b"}, {}), Any(1, {"b"}));
  EXPECT_FALSE(steps.key_before || steps.key_after || steps.standby_names);
  steps = PlanQuorumReplication(cluster, "a", Quorum(), State({"b"}, {"b"}), Any(1, {"b"}));
  ASSERT_TRUE(steps.key_after);
  EXPECT_EQ(*steps.key_after, (QuorumKey{0, {"b"}}));
}

TEST(QuorumTest, NewStandbyJoinsTheVotersBeforeSynchronousStandbyNames) {
  auto cluster = Cluster(QuorumKey{0, {"b"}});
  auto steps =
      PlanQuorumReplication(cluster, "a", Quorum(), State({"b", "c"}, {"b"}), Any(1, {"b"}));
  ASSERT_TRUE(steps.key_before);
  EXPECT_EQ(*steps.key_before, (QuorumKey{1, {"b", "c"}}));
  ASSERT_TRUE(steps.standby_names);
  EXPECT_EQ(*steps.standby_names, Any(1, {"b", "c"}));
  EXPECT_FALSE(steps.key_after);
}

TEST(QuorumTest, DepartingStandbyLeavesSynchronousStandbyNamesFirstAndTheKeyOnceCaughtUp) {
  auto cluster = Cluster(QuorumKey{1, {"b", "c"}});
  auto steps =
      PlanQuorumReplication(cluster, "a", Quorum(), State({"b"}, {"b"}), Any(1, {"b", "c"}));
  EXPECT_FALSE(steps.key_before);  // 1 of (b,c) is still safe for ANY 1 (b)
  ASSERT_TRUE(steps.standby_names);
  EXPECT_EQ(*steps.standby_names, Any(1, {"b"}));
  // b may miss commits only c acknowledged until it passes the change point.
  steps = PlanQuorumReplication(cluster, "a", Quorum(), State({"b"}, {"b"}, false), Any(1, {"b"}));
  EXPECT_FALSE(steps.key_after || steps.key_before || steps.standby_names);
  steps = PlanQuorumReplication(cluster, "a", Quorum(), State({"b"}, {"b"}, true), Any(1, {"b"}));
  ASSERT_TRUE(steps.key_after);
  EXPECT_EQ(*steps.key_after, (QuorumKey{0, {"b"}}));
}

TEST(QuorumTest, LastStandbyLeavesTheKeyBeforeSynchronousStandbyNames) {
  auto cluster = Cluster(QuorumKey{0, {"b"}});
  auto steps = PlanQuorumReplication(cluster, "a", Quorum(), State({}, {}), Any(1, {"b"}));
  ASSERT_TRUE(steps.key_before);
  EXPECT_EQ(*steps.key_before, QuorumKey{});
  ASSERT_TRUE(steps.standby_names);
  EXPECT_EQ(*steps.standby_names, Any(0, {}));
}

TEST(QuorumTest, StrictModeWithoutStandbysWaitsForAny) {
  auto steps =
      PlanQuorumReplication(Cluster(QuorumKey{}), "a", Quorum(1, true), State({}, {}), Any(0, {}));
  ASSERT_TRUE(steps.standby_names);
  EXPECT_EQ(FormatQuorumStandbyNames(*steps.standby_names), "*");
}

TEST(QuorumTest, AKeyOfAnotherLeaderIsTakenOverNamingNobody) {
  auto cluster = Cluster(QuorumKey{1, {"a", "c"}}, "b");
  auto steps = PlanQuorumReplication(cluster, "a", Quorum(), State({"b", "c"}, {}), Any(0, {}));
  ASSERT_TRUE(steps.key_before);
  EXPECT_EQ(*steps.key_before, QuorumKey{});
  ASSERT_TRUE(steps.standby_names);
  EXPECT_EQ(*steps.standby_names, Any(1, {"b", "c"}));
}

TEST(QuorumTest, SynchronousNodeCountTwoOfThree) {
  auto cluster = Cluster(QuorumKey{2, {"b", "c", "d"}});
  auto steps = PlanQuorumReplication(
      cluster, "a", Quorum(2), State({"b", "c", "d"}, {"b", "c", "d"}), Any(1, {"b", "c", "d"}));
  EXPECT_FALSE(steps.key_before);  // raising numsync only makes the key more than safe
  ASSERT_TRUE(steps.standby_names);
  EXPECT_EQ(*steps.standby_names, Any(2, {"b", "c", "d"}));
  steps = PlanQuorumReplication(cluster, "a", Quorum(2), State({"b", "c", "d"}, {"b", "c", "d"}),
                                Any(2, {"b", "c", "d"}));
  ASSERT_TRUE(steps.key_after);
  EXPECT_EQ(*steps.key_after, (QuorumKey{1, {"b", "c", "d"}}));
  // And back to one: the quorum rises before numsync falls.
  cluster = Cluster(QuorumKey{1, {"b", "c", "d"}});
  steps = PlanQuorumReplication(cluster, "a", Quorum(1), State({"b", "c", "d"}, {"b", "c", "d"}),
                                Any(2, {"b", "c", "d"}));
  ASSERT_TRUE(steps.key_before);
  EXPECT_EQ(*steps.key_before, (QuorumKey{2, {"b", "c", "d"}}));
  EXPECT_EQ(*steps.standby_names, Any(1, {"b", "c", "d"}));
}

TEST(QuorumTest, NofailoverStandbysOnlyFillUpToTheNodeCount) {
  auto cluster = Cluster(QuorumKey{});
  cluster.members[2] = Member("c", {{"nofailover", true}});
  std::vector<WalSender> senders = {{"b", "quorum", 100}, {"c", "quorum", 100}};
  SyncTracking tracking;
  auto state = CurrentQuorumState(cluster, "a", senders, Quorum(1), 100, tracking);
  EXPECT_EQ(state.active, (Set{"b"}));
  state = CurrentQuorumState(cluster, "a", senders, Quorum(2), 100, tracking);
  EXPECT_EQ(state.active, (Set{"b", "c"}));
}

TEST(QuorumTest, ListedStandbyIsConfirmedAtOrPastThePositionOfTheChange) {
  auto cluster = Cluster(QuorumKey{});
  SyncTracking tracking;
  tracking.standby_names = std::vector<std::string>{"b", "c"};
  tracking.position_at_change = 500;
  std::vector<WalSender> senders = {
      {"b", "quorum", 500}, {"c", "quorum", 499}, {"d", "async", 900}};
  auto state = CurrentQuorumState(cluster, "a", senders, Quorum(), 900, tracking);
  EXPECT_EQ(state.active, (Set{"b", "c", "d"}));
  EXPECT_EQ(state.confirmed, (Set{"b"}));
  EXPECT_FALSE(state.caught_up);
}

// A cluster of the leader and three standbys driven through random events (standbys come and
// go, synchronous_node_count changes, standbys confirm); after every single write the rule must
// hold for the key in the DCS and what PostgreSQL runs, and once nothing changes the state must
// settle at voters = names = the eligible standbys.
TEST(QuorumTest, RandomHistoriesKeepTheRuleAfterEveryWrite) {
  std::mt19937 rng(20261126);
  const std::vector<std::string> standbys = {"b", "c", "d"};
  for (int history = 0; history < 2000; ++history) {
    QuorumKey key;
    QuorumNames running;
    Set ready;      // listed standbys holding every commit acknowledged before they were listed
    Set caught_up;  // listed standbys past the latest change
    Set eligible = {"b", "c"};
    int64_t count = 1;
    bool strict = rng() % 2;
    auto check = [&](const char* when) {
      int64_t confirmed = 0;
      for (const auto& n : running.names) {
        confirmed += ready.count(n);
      }
      ASSERT_TRUE(QuorumSafe(key, running, confirmed))
          << when << ": key " << key.quorum << " of " << key.voters.size() << ", ANY "
          << running.numsync << " of " << running.names.size() << ", confirmed " << confirmed;
    };
    for (int cycle = 0; cycle < 40; ++cycle) {
      if (cycle < 30) {  // events, then quiet cycles to settle
        switch (rng() % 4) {
          case 0: {
            const auto& s = standbys[rng() % standbys.size()];
            if (eligible.count(s)) {
              eligible.erase(s);
            } else {
              eligible.insert(s);
            }
            break;
          }
          case 1:
            count = 1 + rng() % 3;
            break;
          default:
            break;
        }
      }
      // Listed standbys that stream confirm and catch up, sometimes a cycle late.
      for (const auto& n : running.names) {
        if (eligible.count(n) && (cycle >= 30 || rng() % 2)) {
          ready.insert(n);
          caught_up.insert(n);
        }
      }
      Set confirmed;
      bool all_caught_up = true;
      for (const auto& n : eligible) {
        if (ready.count(n)) {
          confirmed.insert(n);
        }
        if (running.names.count(n) && !caught_up.count(n)) {
          all_caught_up = false;
        }
      }
      auto cluster = Cluster(key);
      auto steps = PlanQuorumReplication(cluster, "a", Quorum(count, strict),
                                         State(eligible, confirmed, all_caught_up), running);
      if (steps.key_before) {
        key = *steps.key_before;
        check("after key_before");
      }
      if (steps.standby_names) {
        running = *steps.standby_names;
        Set still;
        for (const auto& n : ready) {
          if (running.names.count(n)) {
            still.insert(n);
          }
        }
        ready = still;
        caught_up.clear();
        check("after synchronous_standby_names");
      }
      if (steps.key_after && !steps.key_before) {
        key = *steps.key_after;
        check("after key_after");
      }
      if (HasFatalFailure()) {
        return;
      }
    }
    int64_t numsync = std::min<int64_t>(count, static_cast<int64_t>(eligible.size()));
    EXPECT_EQ(running.names, eligible);
    EXPECT_EQ(running.numsync, eligible.empty() && strict ? 1 : numsync);
    if (!eligible.empty()) {
      EXPECT_EQ(key.voters, eligible);
      EXPECT_EQ(key.quorum, static_cast<int64_t>(eligible.size()) - numsync);
    } else {
      EXPECT_TRUE(key.voters.empty());
    }
  }
}

// The guarantee itself, on simulated data: a primary commits, standbys stream at random speeds
// and come and go, PostgreSQL acknowledges a commit once `numsync` of the listed standbys have
// flushed it, and the leader runs the planner with the bookkeeping the agent uses. After every
// step, any voter that could win the race if the primary died now — it sees `quorum` other
// voters no further ahead than itself, and none ahead — must hold every acknowledged commit.
class QuorumSimulation {
 public:
  explicit QuorumSimulation(uint32_t seed) : rng_(seed) {}

  void Run(int cycles) {
    for (int cycle = 0; cycle < cycles && !::testing::Test::HasFatalFailure(); ++cycle) {
      now_ += std::chrono::milliseconds(500 + rng_() % 1000);
      if (rng_() % 3 == 0) {
        const auto& s = kStandbys[rng_() % kStandbys.size()];
        streaming_[s] = !streaming_[s];
      }
      if (rng_() % 8 == 0) {
        count_ = 1 + rng_() % 3;
      }
      for (int step = 0; step < 3; ++step) {
        Replicate();
        CheckCandidates("after replication");
      }
      LeaderCycle();
    }
  }

 private:
  const std::vector<std::string> kStandbys = {"b", "c", "d"};

  void Replicate() {
    primary_ += 1 + rng_() % 5;
    for (const auto& s : kStandbys) {
      if (streaming_[s] && flushed_[s] < primary_) {
        flushed_[s] += rng_() % (primary_ - flushed_[s] + 1);
      }
    }
    // PostgreSQL releases waiting commits under what it runs now.
    auto running = RunningQuorumNames(tracking_);
    for (uint64_t lsn = acked_ + 1; lsn <= primary_; ++lsn) {
      int64_t holding = 0;
      for (const auto& s : kStandbys) {
        bool listed = running.any_standby ? streaming_[s] : running.names.count(s) > 0;
        holding += listed && flushed_[s] >= lsn;
      }
      int64_t needed = running.any_standby ? 1 : running.numsync;
      if (holding < needed) {
        break;
      }
      acked_ = lsn;
    }
  }

  void LeaderCycle() {
    model::ClusterSnapshot cluster = Cluster(key_);
    SyncSettings settings = Quorum(count_);
    SettlePositionAtChange(tracking_, now_, primary_);
    auto running = RunningQuorumNames(tracking_);
    std::vector<WalSender> senders;
    for (const auto& s : kStandbys) {
      if (streaming_[s]) {
        bool listed = running.any_standby || running.names.count(s);
        senders.push_back({s, listed ? "quorum" : "async", flushed_[s]});
      }
    }
    auto state = CurrentQuorumState(cluster, "a", senders, settings, primary_, tracking_);
    auto steps = PlanQuorumReplication(cluster, "a", settings, state, running);
    if (steps.key_before) {
      key_ = *steps.key_before;
      CheckCandidates("after key_before");
    }
    if (steps.standby_names) {
      NoteStandbyNamesChanged(tracking_, *steps.standby_names, now_);
      Replicate();
      CheckCandidates("after synchronous_standby_names");
    }
    if (steps.key_after && !steps.key_before) {
      key_ = *steps.key_after;
      CheckCandidates("after key_after");
    }
  }

  void CheckCandidates(const char* when) {
    if (key_.voters.empty()) {
      return;  // only the primary may take over
    }
    std::vector<std::string> voters(key_.voters.begin(), key_.voters.end());
    for (const auto& candidate : voters) {
      std::vector<std::string> others;
      for (const auto& v : voters) {
        if (v != candidate) {
          others.push_back(v);
        }
      }
      // Every set of other voters that might answer the candidate.
      for (uint32_t mask = 0; mask < (1u << others.size()); ++mask) {
        int64_t votes = 0;
        bool ahead = false;
        for (size_t i = 0; i < others.size(); ++i) {
          if (mask & (1u << i)) {
            ahead |= flushed_[others[i]] > flushed_[candidate];
            ++votes;
          }
        }
        if (!ahead && votes >= key_.quorum) {
          ASSERT_GE(flushed_[candidate], acked_)
              << when << ": " << candidate << " could take over seeing " << votes << " of "
              << key_.quorum << " voters without commit " << acked_ << "; runs "
              << FormatQuorumStandbyNames(RunningQuorumNames(tracking_));
        }
      }
    }
  }

  std::mt19937 rng_;
  MonoTime now_{};
  uint64_t primary_ = 100;
  uint64_t acked_ = 100;
  std::map<std::string, uint64_t> flushed_ = {{"b", 100}, {"c", 100}, {"d", 100}};
  std::map<std::string, bool> streaming_ = {{"b", true}, {"c", true}, {"d", false}};
  int64_t count_ = 1;
  QuorumKey key_;
  SyncTracking tracking_ = [] {
    SyncTracking t;
    t.standby_names = std::vector<std::string>{};
    return t;
  }();
};

TEST(QuorumTest, SimulatedCommitsAreOnEveryVoterThatCouldTakeOver) {
  for (uint32_t seed = 1; seed <= 300 && !HasFatalFailure(); ++seed) {
    SCOPED_TRACE(seed);
    QuorumSimulation(seed).Run(60);
  }
}

}  // namespace
}  // namespace pgha::ha
