// LocalPostgres against a real PostgreSQL 15: the agent's hands on its own node (initdb, start,
// observe, stop, crash recovery, timeline history). PostgreSQL refuses to run as root, so this
// binary runs as the postgres user: started as root, main() runs it again through runuser.
#include <arpa/inet.h>
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>

#include "config/config.h"
#include "config/yaml_json.h"
#include "postgres/connection.h"
#include "postgres/local_postgres.h"
#include "router/pg_messages.h"
#include "router/scram.h"
#include "support/abandoned_postgres.h"
#include "support/local_postgres_fixture.h"
#include "support/ports.h"

namespace pgha::postgres {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;

class LocalPostgresTest : public testing::LocalPostgresFixture {};

TEST_F(LocalPostgresTest, InitdbStartObserveAndStop) {
  EXPECT_FALSE(postgres_->DataInitialized());
  StartPrimary();
  EXPECT_TRUE(postgres_->DataInitialized());
  EXPECT_EQ(postgres_->SystemIdentifier().size(), 19u) << postgres_->SystemIdentifier();

  Observation obs = postgres_->Observe();
  EXPECT_TRUE(obs.running);
  EXPECT_FALSE(obs.in_recovery);
  EXPECT_EQ(obs.timeline, 1);
  EXPECT_GT(obs.wal_position, 0u);
  EXPECT_EQ(obs.server_version / 10000, 15);
  EXPECT_EQ(obs.receiver_timeline, 0);

  ASSERT_TRUE(postgres_->Stop("fast", seconds(60)).ok());
  EXPECT_FALSE(postgres_->PostmasterAlive());
  EXPECT_FALSE(postgres_->PostmasterPid().has_value());
  EXPECT_EQ(postgres_->ControlState(), "shut down");
  EXPECT_GT(postgres_->LatestCheckpointLocation(), 0u);
  EXPECT_FALSE(postgres_->Observe().running);
}

// pghactl query prints the server's SQLSTATE of a failed statement, as patronictl does, and runs
// a file of several statements through the simple protocol.
TEST_F(LocalPostgresTest, AConnectionKeepsTheSqlstateOfTheLastFailure) {
  StartPrimary();
  auto conn =
      Connection::Open(fmt::format("host=127.0.0.1 port={} user=postgres dbname=postgres", port_));
  ASSERT_TRUE(conn.ok()) << conn.error().message();
  auto bad = (*conn)->QueryWithColumns("SELECT no_such_column", MonoTime::max());
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.error().message(), HasSubstr("no_such_column"));
  EXPECT_EQ((*conn)->LastSqlState(), "42703");
  auto two = (*conn)->QueryWithColumns("SELECT 1 AS a; SELECT 2 AS b", MonoTime::max());
  ASSERT_TRUE(two.ok()) << two.error().message();
  EXPECT_EQ(two->columns, std::vector<std::string>{"b"});
  EXPECT_EQ((*conn)->LastSqlState(), "");
  auto division = (*conn)->QueryWithColumns("SELECT 1/0", std::vector<std::string>{});
  ASSERT_FALSE(division.ok());
  EXPECT_EQ((*conn)->LastSqlState(), "22012");
}

// The router's session mode checks clients' SCRAM proofs against the verifier PostgreSQL stores
// in pg_authid: the same password, salt and iteration count give that verifier byte for byte.
TEST_F(LocalPostgresTest, TheRoutersScramVerifierIsTheOnePostgresStores) {
  StartPrimary();
  auto conn =
      Connection::Open(fmt::format("host=127.0.0.1 port={} user=postgres dbname=postgres", port_));
  ASSERT_TRUE(conn.ok()) << conn.error().message();
  auto created = (*conn)->QueryWithColumns(
      "SET password_encryption = 'scram-sha-256'; "
      "CREATE ROLE scram_user LOGIN PASSWORD 'pencil and paper'",
      MonoTime::max());
  ASSERT_TRUE(created.ok()) << created.error().message();
  auto stored = (*conn)->QueryWithColumns(
      "SELECT rolpassword FROM pg_authid WHERE rolname = 'scram_user'", MonoTime::max());
  ASSERT_TRUE(stored.ok()) << stored.error().message();
  ASSERT_EQ(stored->rows.size(), 1u);
  ASSERT_TRUE(stored->rows[0][0].has_value());
  const std::string& text = *stored->rows[0][0];
  auto parsed = router::scram::ParseVerifier(text);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message();
  EXPECT_EQ(parsed->iterations, 4096);
  EXPECT_EQ(router::scram::FormatVerifier(
                router::scram::MakeVerifier("pencil and paper", parsed->salt, parsed->iterations)),
            text);
}

// A plaintext protocol connection to the test's server, for speaking the login by hand.
class RawSession {
 public:
  explicit RawSession(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval timeout{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
  }
  ~RawSession() { ::close(fd_); }
  bool connected() const { return connected_; }
  bool Send(const std::string& bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
           static_cast<ssize_t>(bytes.size());
  }
  // The next message from the server; nullopt when the connection ends or 5 s pass.
  std::optional<router::Message> Receive() {
    while (true) {
      if (auto message = reader_.Next()) {
        return message;
      }
      char buffer[4096];
      ssize_t n = ::recv(fd_, buffer, sizeof(buffer), 0);
      if (n <= 0) {
        return std::nullopt;
      }
      reader_.Feed(std::string_view(buffer, static_cast<size_t>(n)));
    }
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  router::MessageReader reader_;
};

// What the router's session mode rests on, against a real server: a client logs in to the
// router with its password (SCRAM), the router learns the ClientKey from the proof, and with that
// key alone it logs in to PostgreSQL as the client's role; a key that is not the role's is
// refused by PostgreSQL itself.
TEST_F(LocalPostgresTest, TheRouterLogsInToPostgresWithTheKeyALoginRevealed) {
  namespace scram = router::scram;
  StartPrimary();
  auto conn =
      Connection::Open(fmt::format("host=127.0.0.1 port={} user=postgres dbname=postgres", port_));
  ASSERT_TRUE(conn.ok()) << conn.error().message();
  ASSERT_TRUE((*conn)
                  ->QueryWithColumns("SET password_encryption = 'scram-sha-256'; "
                                     "CREATE ROLE scram_user LOGIN PASSWORD 'correct horse'",
                                     MonoTime::max())
                  .ok());
  auto stored = (*conn)->QueryWithColumns(
      "SELECT rolpassword FROM pg_authid WHERE rolname = 'scram_user'", MonoTime::max());
  ASSERT_TRUE(stored.ok() && stored->rows.size() == 1 && stored->rows[0][0].has_value());
  auto verifier = scram::ParseVerifier(*stored->rows[0][0]);
  ASSERT_TRUE(verifier.ok()) << verifier.error().message();

  // The client, who knows the password, logs in to the router.
  scram::ServerExchange router_side(*verifier, scram::RandomNonce());
  scram::ClientExchange client(scram::ClientKeyOf("correct horse", *verifier), *verifier,
                               scram::RandomNonce());
  auto server_first = router_side.OnClientFirst(client.ClientFirst());
  ASSERT_TRUE(server_first.ok());
  auto client_final = client.OnServerFirst(*server_first);
  ASSERT_TRUE(client_final.ok());
  ASSERT_TRUE(router_side.OnClientFinal(*client_final).ok());
  ASSERT_TRUE(router_side.authenticated());

  // The router logs in to PostgreSQL with the learned key; `key` decides what PostgreSQL says.
  auto login = [&](const std::string& key) -> std::string {
    RawSession session(port_);
    if (!session.connected() ||
        !session.Send(router::StartupMessage({{"user", "scram_user"}, {"database", "postgres"}}))) {
      return "no connection";
    }
    scram::ClientExchange router_as_client(key, *verifier, scram::RandomNonce());
    while (auto message = session.Receive()) {
      if (auto error = router::ParseErrorResponse(*message)) {
        return "error " + error->sqlstate;
      }
      if (message->type == 'Z') {
        return "ready";
      }
      auto request = router::ParseAuthentication(*message);
      if (!request) {
        continue;  // ParameterStatus, BackendKeyData
      }
      switch (static_cast<router::AuthCode>(request->code)) {
        case router::AuthCode::kSasl: {
          auto mechanisms = router::SaslMechanisms(request->data);
          if (std::find(mechanisms.begin(), mechanisms.end(), "SCRAM-SHA-256") ==
              mechanisms.end()) {
            return "no SCRAM-SHA-256 offered";
          }
          session.Send(
              router::SaslInitialResponse("SCRAM-SHA-256", router_as_client.ClientFirst()));
          break;
        }
        case router::AuthCode::kSaslContinue: {
          auto final_message = router_as_client.OnServerFirst(request->data);
          if (!final_message.ok()) {
            return final_message.error().message();
          }
          session.Send(router::SaslResponse(*final_message));
          break;
        }
        case router::AuthCode::kSaslFinal:
          if (!router_as_client.OnServerFinal(request->data).ok()) {
            return "the server's signature is wrong";
          }
          break;
        case router::AuthCode::kOk:
          break;
        default:
          return "unexpected authentication request " + std::to_string(request->code);
      }
    }
    return "connection ended";
  };
  EXPECT_EQ(login(router_side.client_key()), "ready");
  EXPECT_EQ(login(scram::ClientKeyOf("wrong horse", *verifier)), "error 28P01");
}

// A test binary that died before its TearDown left its server running: the next fixture stops it
// and removes its directory, and leaves a directory whose test still runs alone.
TEST_F(LocalPostgresTest, AServerLeftByADeadTestIsStoppedAndItsDirectoryRemoved) {
  StartPrimary();
  auto postmaster = postgres_->PostmasterPid();
  ASSERT_TRUE(postmaster.has_value());
  EXPECT_EQ(pgha::testing::ClearAbandonedPostgres(dir_), 0) << "this test still runs";
  EXPECT_TRUE(postgres_->PostmasterAlive());

  pid_t gone = ::fork();
  ASSERT_GE(gone, 0);
  if (gone == 0) {
    ::_exit(0);
  }
  ASSERT_EQ(::waitpid(gone, nullptr, 0), gone);
  std::ofstream(fs::path(dir_) / pgha::testing::kOwnerFile) << gone << "\n";

  EXPECT_EQ(pgha::testing::ClearAbandonedPostgres(dir_), 1);
  EXPECT_FALSE(fs::exists(dir_));
  // Its parent is init, which reaps it in its own time (as KillPostmaster waits for).
  for (int i = 0; i < 100 && ::kill(*postmaster, 0) == 0; ++i) {
    std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_NE(::kill(*postmaster, 0), 0) << "the abandoned postmaster still runs";
}

TEST_F(LocalPostgresTest, CrashRecoveryBringsAKilledPrimaryToACleanShutdown) {
  StartPrimary();
  KillPostmaster();
  EXPECT_EQ(postgres_->ControlState(), "in production");

  auto recovered = postgres_->CrashRecover();
  ASSERT_TRUE(recovered.ok()) << recovered.error().message();
  EXPECT_EQ(postgres_->ControlState(), "shut down");
}

// A node killed while it started as a replica keeps standby.signal, which single-user mode
// refuses ("standby mode is not supported by single-user servers"): recovery must drop it.
TEST_F(LocalPostgresTest, CrashRecoveryDropsTheSignalFilesAKilledReplicaStartLeft) {
  StartPrimary();
  KillPostmaster();
  std::ofstream(DataFile("standby.signal")).flush();
  std::ofstream(DataFile("recovery.signal")).flush();
  ASSERT_TRUE(postgres_->StandbySignalPresent());

  auto recovered = postgres_->CrashRecover();
  ASSERT_TRUE(recovered.ok()) << recovered.error().message();
  EXPECT_EQ(postgres_->ControlState(), "shut down");
  EXPECT_FALSE(postgres_->StandbySignalPresent());
  EXPECT_FALSE(fs::exists(DataFile("recovery.signal")));
}

TEST_F(LocalPostgresTest, CrashRecoveryLeavesACleanlyStoppedDirectoryAlone) {
  StartPrimary();
  ASSERT_TRUE(postgres_->Stop("fast", seconds(60)).ok());
  std::ofstream(DataFile("standby.signal")).flush();
  ASSERT_TRUE(postgres_->CrashRecover().ok());
  // Nothing to recover: a replica stopped cleanly keeps its role for its next start.
  EXPECT_TRUE(postgres_->StandbySignalPresent());
}

TEST_F(LocalPostgresTest, PromotionWritesTheTimelineHistory) {
  StartPrimary();
  ASSERT_TRUE(postgres_->Stop("fast", seconds(60)).ok());
  ASSERT_TRUE(postgres_->WriteConfig(dynamic_, true, nullptr).ok());
  ASSERT_TRUE(postgres_->StandbySignalPresent());
  auto started = postgres_->Start(seconds(60));
  ASSERT_TRUE(started.ok()) << started.error().message();
  EXPECT_TRUE(postgres_->Observe().in_recovery);

  auto promoted = postgres_->Promote(seconds(60));
  ASSERT_TRUE(promoted.ok()) << promoted.error().message();
  Observation obs = postgres_->Observe();
  EXPECT_FALSE(obs.in_recovery);
  EXPECT_EQ(obs.timeline, 2);
  auto history = postgres_->TimelineHistory(2);
  ASSERT_EQ(history.size(), 1u);
  EXPECT_EQ(history[0].timeline, 1);
  EXPECT_GT(history[0].lsn, 0u);
}

// A standby cluster fed by its WAL archive alone (standby_cluster with a restore_command and no
// host): its leader runs as a standby with the archive settings and no primary_conninfo.
TEST_F(LocalPostgresTest, AStandbyFedByItsArchiveAloneRunsWithoutAPrimary) {
  StartPrimary();
  ASSERT_TRUE(postgres_->Stop("fast", seconds(60)).ok());
  std::string restore = fmt::format("cp {}/archive/%f %p", dir_);
  nlohmann::json raw = config_.bootstrap.dcs;
  raw["standby_cluster"] = {{"restore_command", restore}};
  model::Member source;
  source.name = model::kStandbyClusterSource;
  ASSERT_TRUE(postgres_->WriteConfig(model::GlobalConfig(raw), true, &source).ok());
  auto started = postgres_->Start(seconds(60));
  ASSERT_TRUE(started.ok()) << started.error().message();
  EXPECT_TRUE(postgres_->Observe().in_recovery);
  auto conn =
      Connection::Open(fmt::format("host=127.0.0.1 port={} user=postgres dbname=postgres", port_));
  ASSERT_TRUE(conn.ok()) << conn.error().message();
  auto settings = (*conn)->QueryWithColumns(
      "SELECT current_setting('primary_conninfo'), current_setting('restore_command')",
      MonoTime::max());
  ASSERT_TRUE(settings.ok()) << settings.error().message();
  ASSERT_EQ(settings->rows.size(), 1u);
  EXPECT_EQ(settings->rows[0][0].value_or("?"), "");
  EXPECT_EQ(settings->rows[0][1].value_or("?"), restore);
}

}  // namespace
}  // namespace pgha::postgres
