// A PostgreSQL 15 of its own for a test: a temporary directory, a free port, LocalPostgres on a
// node configuration whose pg_hba trusts local and loopback connections except a few roles:
// scram_user and no_password_user must log in with SCRAM, md5_user with md5, clear_user with a
// clear-text password. TearDown stops the postmaster (immediate) and removes
// the directory; SetUp first clears what a test that died before its TearDown left
// (support/abandoned_postgres.h). The test binary runs as the postgres user
// (run_as_postgres_main.cc).
#pragma once

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "config/config.h"
#include "config/yaml_json.h"
#include "model/global_config.h"
#include "postgres/local_postgres.h"
#include "support/abandoned_postgres.h"
#include "support/ports.h"

namespace pgha::postgres::testing {

class LocalPostgresFixture : public ::testing::Test {
 protected:
  static constexpr const char* kDirectoryPrefix = "/tmp/pgha-localpg-";

  void SetUp() override {
    // Once per test binary: what it clears was left by binaries that had ended before it began.
    static const int abandoned_cleared = pgha::testing::ClearAbandonedPostgres(kDirectoryPrefix);
    (void)abandoned_cleared;
    std::string pattern = std::string(kDirectoryPrefix) + "XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    pgha::testing::MarkOwnedByThisProcess(dir_);
    int port = pgha::testing::FreePort();
    port_ = port;
    auto tree = config::YamlToJson(fmt::format(R"(
scope: localpg
name: n1
restapi: {{listen: 127.0.0.1:8008}}
etcd3: {{hosts: 127.0.0.1:2379}}
bootstrap:
  dcs: {{postgresql: {{use_pg_rewind: true, parameters: {{wal_keep_size: 16MB}}}}}}
  initdb: [{{encoding: UTF8}}]
postgresql:
  listen: 127.0.0.1:{port}
  data_dir: {dir}/data
  bin_dir: /usr/lib/postgresql/15/bin
  parameters: {{shared_buffers: 16MB, fsync: 'off', unix_socket_directories: '{dir}'}}
  authentication:
    superuser: {{username: postgres, password: pw}}
    replication: {{username: replicator, password: pw}}
  pg_hba: [local all all trust, host all scram_user 127.0.0.1/32 scram-sha-256,
           host all no_password_user 127.0.0.1/32 scram-sha-256,
           host all md5_user 127.0.0.1/32 md5, host all clear_user 127.0.0.1/32 password,
           host all all 127.0.0.1/32 trust]
)",
                                               fmt::arg("port", port), fmt::arg("dir", dir_)));
    ASSERT_TRUE(tree.ok()) << tree.error().message();
    auto config = config::ConfigFromTree(*tree);
    ASSERT_TRUE(config.ok()) << config.error().message();
    config_ = *config;
    postgres_ = std::make_unique<LocalPostgres>(std::make_shared<const config::Config>(config_));
    dynamic_ = model::GlobalConfig(config_.bootstrap.dcs);
  }

  void TearDown() override {
    if (postgres_ && postgres_->PostmasterAlive()) {
      (void)postgres_->Stop("immediate", std::chrono::seconds(30));
    }
    postgres_.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // A primary that ran and accepted a write.
  void StartPrimary() {
    ASSERT_TRUE(postgres_->Initdb().ok());
    ASSERT_TRUE(postgres_->WriteConfig(dynamic_, false, nullptr).ok());
    auto started = postgres_->Start(std::chrono::seconds(60));
    ASSERT_TRUE(started.ok()) << started.error().message();
  }

  // kill -9, as a crash or the fence would.
  void KillPostmaster() {
    auto pid = postgres_->PostmasterPid();
    ASSERT_TRUE(pid.has_value());
    ASSERT_EQ(::kill(*pid, SIGKILL), 0);
    for (int i = 0; i < 100 && postgres_->PostmasterAlive(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSERT_FALSE(postgres_->PostmasterAlive());
  }

  std::string DataFile(const std::string& name) const { return dir_ + "/data/" + name; }

  std::string dir_;
  int port_ = 0;
  config::Config config_;
  model::GlobalConfig dynamic_;
  std::unique_ptr<LocalPostgres> postgres_;
};

}  // namespace pgha::postgres::testing
