// The router's session mode (router/session_mode.h) in front of a real PostgreSQL 15, with the
// routes given by hand as the topology watcher would give them: SCRAM, md5 and trust logins
// against the secret the auth query fetches, as the server's pg_hba.conf allows them, a query held
// while writes are held, a session carried to a new server connection with its SET when its server
// went away meanwhile, a pause that waits for a transaction under way and cuts it at pause_timeout,
// and the client's way out of the failed transaction it is then in.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include <atomic>
#include <thread>

#include "apps/auth_query.h"
#include "postgres/connection.h"
#include "router/proxy.h"
#include "support/local_postgres_fixture.h"

namespace pgha::postgres {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ::testing::HasSubstr;

class SessionModeTest : public testing::LocalPostgresFixture {
 protected:
  void SetUp() override {
    LocalPostgresFixture::SetUp();
    StartPrimary();
    admin_ = Open("user=postgres");
    ASSERT_NE(admin_, nullptr);
    for (const char* sql : {"SET password_encryption = 'scram-sha-256'",
                            "CREATE ROLE scram_user LOGIN PASSWORD 'correct horse'",
                            "CREATE TABLE t(a int)", "GRANT ALL ON t TO scram_user"}) {
      auto done = admin_->Execute(sql);
      ASSERT_TRUE(done.ok()) << sql << ": " << done.error().message();
    }
    router::RouterSettings settings;
    settings.mode = router::ProxyMode::kSession;
    settings.write_listen = {"127.0.0.1", 0};
    settings.read_listen = {"127.0.0.1", 0};
    settings.pause_timeout = milliseconds(1000);
    settings.connect_hold_timeout = seconds(20);
    proxy_ = std::make_unique<router::Proxy>(settings);
    // pgha-router's own auth query, as the superuser of the node's file (postgres, trusted on
    // loopback here).
    proxy_->SetSecretLookup(apps::MakeAuthQueryLookup(config_, settings));
    proxy_->SetDrainedListener([this] { ++drained_calls_; });
    ASSERT_TRUE(proxy_->Start().ok());
    routes_.leader = "n1";
    routes_.primary = router::Backend{"n1", "127.0.0.1", port_, ""};
    proxy_->Apply(routes_);
    paused_ = routes_;
    paused_.primary.reset();
    paused_.no_primary_reason = "a switchover is announced";
  }

  void TearDown() override {
    if (proxy_) {
      proxy_->Stop();
    }
    LocalPostgresFixture::TearDown();
  }

  std::unique_ptr<Connection> Open(const std::string& who, int port = 0) {
    auto conn =
        Connection::Open(fmt::format("host=127.0.0.1 port={} dbname=postgres "
                                     "sslmode=disable {}",
                                     port == 0 ? port_ : port, who));
    EXPECT_TRUE(conn.ok()) << conn.error().message();
    return conn.ok() ? std::move(*conn) : nullptr;
  }

  std::unique_ptr<Connection> ThroughRouter() {
    return Open("user=scram_user password='correct horse'", proxy_->write_port());
  }

  std::string One(Connection& conn, const std::string& sql) {
    auto rows = conn.Query(sql);
    EXPECT_TRUE(rows.ok()) << rows.error().message();
    return rows.ok() && !rows->empty() && rows->front()[0] ? *rows->front()[0] : "";
  }

  std::unique_ptr<Connection> admin_;
  std::unique_ptr<router::Proxy> proxy_;
  router::Routes routes_, paused_;
  std::atomic<int> drained_calls_{0};
};

TEST_F(SessionModeTest, TheRouterChecksThePasswordItselfAndLogsInWithTheRevealedKey) {
  auto client = ThroughRouter();
  ASSERT_NE(client, nullptr);
  EXPECT_EQ(One(*client, "SELECT current_user"), "scram_user");
  auto wrong = Connection::Open(fmt::format(
      "host=127.0.0.1 port={} dbname=postgres sslmode=disable user=scram_user password=wrong",
      proxy_->write_port()));
  ASSERT_FALSE(wrong.ok());
  EXPECT_THAT(wrong.error().message(),
              HasSubstr("password authentication failed for user \"scram_user\""));
  auto nobody = Connection::Open(
      fmt::format("host=127.0.0.1 port={} dbname=postgres sslmode=disable user=nobody password=x",
                  proxy_->write_port()));
  ASSERT_FALSE(nobody.ok());
  EXPECT_THAT(nobody.error().message(),
              HasSubstr("password authentication failed for user \"nobody\""));
  EXPECT_EQ(proxy_->Stats().session.logins_refused, 2);
}

TEST_F(SessionModeTest, Md5AndTrustLoginsGoAsTheServersPgHbaAllowsAndTheirSessionsMove) {
  for (const char* sql :
       {"SET password_encryption = 'md5'", "CREATE ROLE md5_user LOGIN PASSWORD 'battery staple'",
        "CREATE ROLE trusted_user LOGIN", "CREATE ROLE no_password_user LOGIN",
        "SET password_encryption = 'scram-sha-256'",
        "CREATE ROLE clear_user LOGIN PASSWORD 'in the clear'"}) {
    auto done = admin_->Execute(sql);
    ASSERT_TRUE(done.ok()) << sql << ": " << done.error().message();
  }
  auto through_router = [&](const std::string& who) {
    return Connection::Open(fmt::format("host=127.0.0.1 port={} dbname=postgres sslmode=disable {}",
                                        proxy_->write_port(), who));
  };
  // md5: the router checks the client's md5 answer and answers the server's challenge itself.
  auto md5 = through_router("user=md5_user password='battery staple'");
  ASSERT_TRUE(md5.ok()) << md5.error().message();
  EXPECT_EQ(One(**md5, "SELECT current_user"), "md5_user");
  auto md5_wrong = through_router("user=md5_user password='battery'");
  ASSERT_FALSE(md5_wrong.ok());
  EXPECT_THAT(md5_wrong.error().message(),
              HasSubstr("password authentication failed for user \"md5_user\""));
  // A role without a password, trusted by the server: nothing is asked.
  auto trusted = through_router("user=trusted_user");
  ASSERT_TRUE(trusted.ok()) << trusted.error().message();
  EXPECT_EQ(One(**trusted, "SELECT current_user"), "trusted_user");
  // A role without a password that the server does not trust: the server's own refusal.
  auto untrusted = through_router("user=no_password_user");
  ASSERT_FALSE(untrusted.ok());
  EXPECT_THAT(untrusted.error().message(),
              HasSubstr("password authentication failed for user \"no_password_user\""));
  // A server that wants the password in clear: the router never has it, and says what to change.
  auto clear = through_router("user=clear_user password='in the clear'");
  ASSERT_FALSE(clear.ok());
  EXPECT_THAT(clear.error().message(), HasSubstr("a clear-text password"));
  // A refusal of the server's own for a login it otherwise allows, word for word.
  auto no_database = through_router("user=trusted_user dbname=no_such_database");
  ASSERT_FALSE(no_database.ok());
  EXPECT_THAT(no_database.error().message(),
              HasSubstr("database \"no_such_database\" does not exist"));
  EXPECT_EQ(proxy_->Stats().session.logins_refused, 2) << "md5_user's and no_password_user's";

  // Both sessions carry on on a new server connection, logged in again without the client.
  for (auto* client : {md5->get(), trusted->get()}) {
    std::string backend = One(*client, "SELECT pg_backend_pid()");
    EXPECT_EQ(One(*admin_, "SELECT pg_terminate_backend(" + backend + ")"), "t");
    for (int i = 0; i < 100; ++i) {  // until the router has seen its server go
      if (One(*admin_, "SELECT count(*) FROM pg_stat_activity WHERE pid = " + backend) == "0") {
        break;
      }
      std::this_thread::sleep_for(milliseconds(50));
    }
    std::this_thread::sleep_for(milliseconds(200));
    std::string moved = One(*client, "SELECT pg_backend_pid()");
    EXPECT_FALSE(moved.empty());
    EXPECT_NE(moved, backend);
  }
  EXPECT_EQ(proxy_->Stats().session.moved, 2);
}

TEST_F(SessionModeTest, ACopyUnderWayWhenItsServerGoesEndsTheSessionAsAPinnedOne) {
  std::string conninfo = fmt::format(
      "host=127.0.0.1 port={} dbname=postgres sslmode=disable user=scram_user "
      "password='correct horse'",
      proxy_->write_port());
  std::unique_ptr<PGconn, decltype(&PQfinish)> conn(PQconnectdb(conninfo.c_str()), &PQfinish);
  ASSERT_EQ(PQstatus(conn.get()), CONNECTION_OK) << PQerrorMessage(conn.get());
  PGresult* started = PQexec(conn.get(), "COPY t FROM STDIN");
  ASSERT_EQ(PQresultStatus(started), PGRES_COPY_IN) << PQerrorMessage(conn.get());
  PQclear(started);
  ASSERT_EQ(PQputCopyData(conn.get(), "1\n", 2), 1);
  ASSERT_EQ(PQflush(conn.get()), 0);
  std::string backend =
      One(*admin_, "SELECT pid FROM pg_stat_activity WHERE query = 'COPY t FROM STDIN'");
  ASSERT_FALSE(backend.empty());
  EXPECT_EQ(One(*admin_, "SELECT pg_terminate_backend(" + backend + ")"), "t");
  (void)PQputCopyEnd(conn.get(), nullptr);
  std::string said;
  while (PGresult* result = PQgetResult(conn.get())) {
    if (PQresultStatus(result) == PGRES_FATAL_ERROR) {
      said += PQresultErrorMessage(result);
    }
    PQclear(result);
  }
  said += PQerrorMessage(conn.get());
  EXPECT_THAT(said, HasSubstr("this session was in a COPY, which cannot be carried"));
  EXPECT_THAT(said, HasSubstr("administrator command"));
  EXPECT_EQ(proxy_->Stats().session.pinned_closed, 1);
  EXPECT_EQ(proxy_->Stats().session.transactions_lost, 0);
  EXPECT_EQ(One(*admin_, "SELECT count(*) FROM t"), "0") << "the COPY never committed";
}

TEST_F(SessionModeTest, AQueryWaitsOutAPauseAndTheSessionMovesWithItsSetting) {
  auto client = ThroughRouter();
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->Execute("SET application_name = 'carried'").ok());
  std::string first_backend = One(*client, "SELECT pg_backend_pid()");

  proxy_->Apply(paused_);
  EXPECT_TRUE(proxy_->Drained());  // nothing under way
  std::atomic<bool> answered{false};
  std::string setting, backend;
  std::thread query([&] {
    auto rows = client->Query("SELECT current_setting('application_name'), pg_backend_pid()");
    if (rows.ok() && rows->size() == 1) {
      setting = rows->front()[0].value_or("");
      backend = rows->front()[1].value_or("");
    }
    answered = true;
  });
  std::this_thread::sleep_for(milliseconds(500));
  EXPECT_FALSE(answered) << "a query ran while writes were held";
  // The old server ends the session meanwhile, as a primary that stops does.
  EXPECT_EQ(One(*admin_, "SELECT pg_terminate_backend(" + first_backend + ")"), "t");
  std::this_thread::sleep_for(milliseconds(200));
  proxy_->Apply(routes_);
  query.join();
  EXPECT_EQ(setting, "carried");
  EXPECT_NE(backend, first_backend);
  EXPECT_FALSE(backend.empty());
  EXPECT_EQ(proxy_->Stats().session.moved, 1);
  EXPECT_EQ(proxy_->Stats().session.transactions_lost, 0);
}

TEST_F(SessionModeTest, APauseWaitsForATransactionUnderWayAndCutsItAtPauseTimeout) {
  auto client = ThroughRouter();
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->Execute("BEGIN").ok());
  ASSERT_TRUE(client->Execute("INSERT INTO t VALUES (1)").ok());
  proxy_->Apply(paused_);
  EXPECT_FALSE(proxy_->Drained());
  // The listener is told just after the last transaction ends: wait for both.
  for (int i = 0; i < 100 && !(proxy_->Drained() && drained_calls_.load() > 0); ++i) {
    std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_TRUE(proxy_->Drained()) << "pause_timeout (1 s) did not cut the transaction";
  EXPECT_GE(drained_calls_.load(), 1);
  EXPECT_EQ(proxy_->Stats().session.pause_timeouts, 1);
  proxy_->Apply(routes_);
  // The transaction is gone: the client learns it at its next statement, leaves the failed
  // block with ROLLBACK and carries on; the row was never committed.
  auto next = client->Execute("INSERT INTO t VALUES (2)");
  ASSERT_FALSE(next.ok());
  EXPECT_THAT(next.error().message(), HasSubstr("pause_timeout"));
  EXPECT_TRUE(client->Execute("ROLLBACK").ok());
  EXPECT_EQ(One(*client, "SELECT count(*) FROM t"), "0");
  EXPECT_EQ(One(*admin_, "SELECT count(*) FROM t"), "0");
}

}  // namespace
}  // namespace pgha::postgres
