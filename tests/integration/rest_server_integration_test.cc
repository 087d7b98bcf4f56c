// The REST server on a real socket: what curl (as HAProxy, patronictl or an attacker would)
// gets back over HTTP and HTTPS, including client certificates and Basic authentication.
#include <gtest/gtest.h>

#include <fstream>

#include "api/http/server.h"
#include "support/ports.h"
#include "support/process.h"

namespace pgha::api::http {
namespace {

using pgha::testing::FreePort;
using pgha::testing::RunCommand;
using pgha::testing::TempDirectory;

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
