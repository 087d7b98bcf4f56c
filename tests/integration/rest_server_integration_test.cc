// The REST server on a real socket: what curl (as HAProxy, patronictl or an attacker would)
// gets back over HTTP and HTTPS, including client certificates and Basic authentication.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <iostream>
#include <memory>
#include <thread>

#include "api/http/server.h"
#include "support/ports.h"
#include "support/process.h"

namespace pgha::api::http {
namespace {

using pgha::testing::FreePort;
using pgha::testing::RunCommand;
using pgha::testing::TempDirectory;
using pgha::testing::WaitUntil;

ApiState LeaderState() {
  ApiState state;
  state.node.scope = "pg-ha";
  state.node.name = "pg-0";
  state.node.state = "running";
  state.node.role = "master";
  state.node.postgres_running = true;
  state.node.has_lock = true;
  auto cluster = std::make_shared<model::ClusterSnapshot>();
  cluster->leader = model::Leader{"pg-0", 1, 1};
  cluster->members.push_back(
      {"pg-0", 1, 1, {{"conn_url", "postgres://127.0.0.1:5432/postgres"}, {"state", "running"}}});
  state.cluster = cluster;
  return state;
}

config::RestApiConfig PlainConfig() {
  config::RestApiConfig config;
  config.listen_address = {"127.0.0.1", FreePort()};
  config.authentication = config::BasicAuth{"admin", "secret"};
  return config;
}

// "<status code> <body>" of one curl call; curl's exit code when it fails outright.
std::string Curl(std::vector<std::string> args) {
  std::vector<std::string> argv = {"curl", "-s", "-m", "10", "-w", " %{http_code}"};
  argv.insert(argv.end(), args.begin(), args.end());
  std::string output;
  int rc = RunCommand(argv, &output);
  if (rc != 0) {
    return "curl exit " + std::to_string(rc);
  }
  size_t space = output.rfind(' ');
  return output.substr(space + 1) + " " + output.substr(0, space);
}

std::string Url(const config::RestApiConfig& config, const std::string& path,
                const std::string& scheme = "http") {
  return scheme + "://127.0.0.1:" + std::to_string(config.listen_address.port) + path;
}

TEST(RestServerTest, PlainHttpAnswersAsPatroni) {
  auto config = PlainConfig();
  RestServer server(config, LeaderState);
  ASSERT_TRUE(server.Start().ok());
  EXPECT_EQ(Curl({"-X", "OPTIONS", Url(config, "/primary")}), "200 ");
  EXPECT_EQ(Curl({"-X", "OPTIONS", Url(config, "/replica")}), "503 ");
  EXPECT_EQ(Curl({"-I", Url(config, "/primary")}).substr(0, 4), "200 ");
  EXPECT_EQ(Curl({Url(config, "/cluster")}).substr(0, 18), "200 {\"members\": [{");
  // Unsafe methods: credentials first, then the body.
  std::string unauthorised = Curl({"-X", "POST", "-d", "{}", Url(config, "/restart")});
  EXPECT_EQ(unauthorised.substr(0, 4), "401 ") << unauthorised;
  std::string headers;
  RunCommand({"curl", "-s", "-i", "-X", "POST", "-d", "{}", Url(config, "/restart")}, &headers);
  EXPECT_NE(headers.find("WWW-Authenticate: Basic realm=\"Patroni\""), std::string::npos);
  EXPECT_EQ(Curl({"-X", "POST", "-u", "admin:secret", "-d", "{x", Url(config, "/switchover")}),
            "400 the body is not valid JSON");
  EXPECT_EQ(Curl({"-X", "POST", Url(config, "/nonsense")}).substr(0, 4), "501 ");
  EXPECT_EQ(Curl({"-X", "POST", "-u", "admin:secret", Url(config, "/reload")}).substr(0, 4),
            "503 ");
  TempDirectory dir("pgha-rest-big");
  std::ofstream(dir.path() + "/big") << std::string(2 << 20, 'x');
  EXPECT_EQ(Curl({"-X", "POST", "-u", "admin:secret", "--data-binary", "@" + dir.path() + "/big",
                  Url(config, "/switchover")}),
            "413 request body too large");
  // Still serving after all that.
  EXPECT_EQ(Curl({"-X", "OPTIONS", Url(config, "/primary")}), "200 ");
}

// A reload replaces the agent's configuration while requests are served (before the snapshot,
// it was move-assigned in place under the server's feet). The server answers from its own copy:
// the caller's object may change or go away at any time. Under the tsan and asan presets a
// server that kept a reference fails this test (a data race; a use after free).
TEST(RestServerTest, RequestsAreServedFromTheServersOwnCopyOfTheConfiguration) {
  auto config = std::make_unique<config::RestApiConfig>(PlainConfig());
  config->http_extra_headers = {{"X-Pgha-Test", "first"}};
  const std::string url = Url(*config, "/patroni");
  RestServer server(*config, LeaderState);
  ASSERT_TRUE(server.Start().ok());
  std::atomic<bool> done{false};
  std::vector<std::string> answers[2];
  std::thread clients[2];
  for (int c = 0; c < 2; ++c) {
    clients[c] = std::thread([&, c] {
      for (int i = 0; i < 15; ++i) {
        std::string headers;
        RunCommand({"curl", "-s", "-m", "5", "-D", "-", "-o", "/dev/null", url}, &headers);
        answers[c].push_back(headers);
      }
    });
  }
  std::thread reloads([&] {
    for (int i = 0; !done; ++i) {
      // What a reload did to the shared configuration: new values, new storage.
      auto next = std::make_unique<config::RestApiConfig>(*config);
      next->http_extra_headers = {{"X-Pgha-Test", "reloaded-" + std::to_string(i)}};
      config = std::move(next);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  for (auto& t : clients) {
    t.join();
  }
  done = true;
  reloads.join();
  for (const auto& per_client : answers) {
    ASSERT_EQ(per_client.size(), 15U);
    for (const auto& headers : per_client) {
      EXPECT_NE(headers.find("X-Pgha-Test: first"), std::string::npos) << headers;
    }
  }
}

TEST(RestServerTest, TakenPortAndBadAllowlistAreClearErrors) {
  auto config = PlainConfig();
  RestServer first(config, LeaderState);
  ASSERT_TRUE(first.Start().ok());
  RestServer second(config, LeaderState);
  auto status = second.Start();
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.error().message().find("cannot listen"), std::string::npos);
  auto listed = PlainConfig();
  listed.allowlist = {"no-such-host.invalid"};
  RestServer third(listed, LeaderState);
  status = third.Start();
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.error().message().find("no-such-host.invalid"), std::string::npos);
}

TEST(RestServerTest, AllowlistGuardsUnsafeMethodsOnly) {
  auto config = PlainConfig();
  config.allowlist = {"10.0.0.0/8"};
  RestServer server(config, LeaderState);
  ASSERT_TRUE(server.Start().ok());
  EXPECT_EQ(Curl({"-X", "POST", "-u", "admin:secret", Url(config, "/reload")}).substr(0, 4),
            "403 ");
  EXPECT_EQ(Curl({Url(config, "/patroni")}).substr(0, 4), "200 ");
}

// A connected TCP socket to the server that sends nothing (or what the test writes).
class RawConnection {
 public:
  explicit RawConnection(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  }
  ~RawConnection() { close(fd_); }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;
  bool connected() const { return connected_; }
  void Send(const std::string& bytes) { (void)write(fd_, bytes.data(), bytes.size()); }
  // What the server sent within `timeout_ms`, until it closed or went quiet.
  std::string Receive(int timeout_ms) {
    std::string out;
    pollfd p{fd_, POLLIN, 0};
    char buffer[4096];
    while (poll(&p, 1, timeout_ms) > 0) {
      ssize_t n = read(fd_, buffer, sizeof buffer);
      if (n <= 0) break;
      out.append(buffer, static_cast<size_t>(n));
    }
    return out;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

// Idle, slow and half-sent clients hold connections open; the health checks still answer
// (with curl's own 3 s limit, which a starved server misses: before, 8 idle connections made
// /primary take 4.5 s and 64 made it time out).
TEST(RestServerTest, IdleAndSlowClientsDoNotStarveHealthChecks) {
  auto config = PlainConfig();
  RestServer server(config, LeaderState);
  ASSERT_TRUE(server.Start().ok());
  std::vector<std::unique_ptr<RawConnection>> held;
  for (int i = 0; i < 1000; ++i) {
    held.push_back(std::make_unique<RawConnection>(config.listen_address.port));
    ASSERT_TRUE(held.back()->connected()) << "connection " << i;
    if (i % 10 == 1) held.back()->Send("GET /pat");  // a request that never finishes
    if (i % 10 == 2) held.back()->Send("POST /switchover HTTP/1.1\r\nContent-Length: 100\r\n\r\n{");
  }
  for (int round = 0; round < 5; ++round) {
    auto started = std::chrono::steady_clock::now();
    std::vector<std::string> argv = {"curl",
                                     "-s",
                                     "-m",
                                     "3",
                                     "-o",
                                     "/dev/null",
                                     "-w",
                                     "%{http_code}",
                                     "-X",
                                     "OPTIONS",
                                     Url(config, "/primary")};
    std::string code;
    ASSERT_EQ(RunCommand(argv, &code), 0) << "the health check did not answer within 3 s";
    EXPECT_EQ(code, "200");
    std::cout << "OPTIONS /primary with " << server.open_connections() << " connections held open: "
              << std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() -
                                                           started)
                     .count()
              << " ms (curl included)" << std::endl;
  }
}

// Over the bound, a new connection gets a 503 at once and is closed; the held ones go on.
TEST(RestServerTest, ConnectionsOverTheBoundAreRefusedClearly) {
  auto config = PlainConfig();
  RestServer server(config, LeaderState);
  ASSERT_TRUE(server.Start(20).ok());
  std::vector<std::unique_ptr<RawConnection>> held;
  for (int i = 0; i < 20; ++i) {
    held.push_back(std::make_unique<RawConnection>(config.listen_address.port));
  }
  for (int i = 0; i < 50 && server.open_connections() < 20; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(server.open_connections(), 20u);
  RawConnection extra(config.listen_address.port);
  std::string answer = extra.Receive(2000);
  EXPECT_EQ(answer.substr(0, 12), "HTTP/1.1 503") << answer;
  EXPECT_NE(answer.find("too many connections"), std::string::npos) << answer;
  // A held connection that finishes its request is still served.
  held[0]->Send("GET /patroni HTTP/1.1\r\n\r\n");
  EXPECT_EQ(held[0]->Receive(2000).substr(0, 12), "HTTP/1.1 200");
}

// A program the agent starts (PostgreSQL, a callback) does not inherit the listening socket or
// a client's connection: a paused agent's postmaster outlives it, and holding the port would
// keep the next agent from listening.
TEST(RestServerTest, ChildProcessesDoNotInheritTheSockets) {
  auto config = PlainConfig();
  RestServer server(config, LeaderState);
  ASSERT_TRUE(server.Start().ok());
  // The server's side of this connection is open while the child runs.
  RawConnection held(config.listen_address.port);
  ASSERT_TRUE(WaitUntil([&] { return server.open_connections() == 1; }, std::chrono::seconds(5)));
  std::string port = std::to_string(config.listen_address.port);
  std::string users;
  ASSERT_EQ(RunCommand({"sh", "-c", "ss -Htanp \"sport = :" + port + "\""}, &users), 0);
  EXPECT_NE(users.find("LISTEN"), std::string::npos) << users;
  EXPECT_EQ(users.find("\"sh\""), std::string::npos) << users;
  EXPECT_EQ(users.find("\"ss\""), std::string::npos) << users;
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto run = [&](const std::string& command) {
      std::string output;
      ASSERT_EQ(RunCommand({"sh", "-c", "cd " + dir_.path() + " && " + command}, &output), 0)
          << command << "\n"
          << output;
    };
    run("openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 "
        "-subj /CN=test-ca 2>/dev/null");
    for (const std::string name : {"server", "client"}) {
      run("openssl req -newkey rsa:2048 -nodes -keyout " + name + ".key -out " + name +
          ".csr -subj /CN=127.0.0.1 2>/dev/null");
      run("printf 'subjectAltName=IP:127.0.0.1' > san.ext && openssl x509 -req -in " + name +
          ".csr -CA ca.crt -CAkey ca.key -CAcreateserial -out " + name +
          ".crt -days 2 -extfile san.ext 2>/dev/null");
    }
  }

  config::RestApiConfig TlsConfig(const std::string& verify_client) {
    auto config = PlainConfig();
    config.certfile = dir_.path() + "/server.crt";
    config.keyfile = dir_.path() + "/server.key";
    config.cafile = dir_.path() + "/ca.crt";
    config.verify_client = verify_client;
    return config;
  }

  std::vector<std::string> Trust() { return {"--cacert", dir_.path() + "/ca.crt"}; }
  std::vector<std::string> ClientCert() {
    return {"--cert", dir_.path() + "/client.crt", "--key", dir_.path() + "/client.key"};
  }

  TempDirectory dir_{"pgha-rest-tls"};
};

std::vector<std::string> Concat(std::vector<std::string> a, const std::vector<std::string>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

TEST_F(TlsTest, OptionalClientCertificateGuardsUnsafeMethods) {
  auto config = TlsConfig("optional");
  RestServer server(config, LeaderState);
  ASSERT_TRUE(server.Start().ok());
  EXPECT_EQ(Curl(Concat(Trust(), {"-X", "OPTIONS", Url(config, "/primary", "https")})), "200 ");
  EXPECT_EQ(
      Curl(Concat(Trust(), {"-X", "POST", "-u", "admin:secret", Url(config, "/reload", "https")}))
          .substr(0, 4),
      "403 ");
  EXPECT_EQ(Curl(Concat(Concat(Trust(), ClientCert()),
                        {"-X", "POST", "-u", "admin:secret", Url(config, "/reload", "https")}))
                .substr(0, 4),
            "503 ");
  // Plain HTTP to the HTTPS port is refused, and the server keeps serving.
  EXPECT_NE(Curl({Url(config, "/patroni")}).substr(0, 4), "200 ");
  EXPECT_EQ(Curl(Concat(Trust(), {Url(config, "/patroni", "https")})).substr(0, 4), "200 ");
}

TEST_F(TlsTest, RequiredClientCertificateGuardsEverything) {
  auto config = TlsConfig("required");
  RestServer server(config, LeaderState);
  ASSERT_TRUE(server.Start().ok());
  EXPECT_EQ(Curl(Concat(Trust(), {Url(config, "/patroni", "https")})).substr(0, 9), "curl exit");
  EXPECT_EQ(
      Curl(Concat(Concat(Trust(), ClientCert()), {Url(config, "/patroni", "https")})).substr(0, 4),
      "200 ");
}

TEST_F(TlsTest, UnreadableKeyIsAClearError) {
  auto config = TlsConfig("none");
  config.keyfile = dir_.path() + "/ca.key";  // does not match the certificate
  RestServer server(config, LeaderState);
  auto status = server.Start();
  ASSERT_FALSE(status.ok());
  EXPECT_NE(status.error().message().find("restapi.keyfile"), std::string::npos)
      << status.error().message();
}

}  // namespace
}  // namespace pgha::api::http
