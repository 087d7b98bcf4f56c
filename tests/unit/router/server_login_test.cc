// The session mode's login to a server without sockets: the router proving itself with a
// client's ClientKey to a server side played by scram.h's ServerExchange, answering an md5
// challenge from the stored hash, and the ways a server can refuse or misbehave.
#include "router/server_login.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "router/pg_bytes.h"

namespace pgha::router {
namespace {

using Next = ServerLogin::Next;
using ::testing::HasSubstr;

std::string ParameterStatus(const std::string& name, const std::string& value) {
  return Frame('S', name + '\0' + value + '\0');
}

std::string BackendKeyData(uint32_t pid, uint32_t secret) {
  std::string body;
  PutInt32(body, pid);
  PutInt32(body, secret);
  return Frame('K', body);
}

std::string ReadyForQuery() { return Frame('Z', "I"); }

std::string Md5Request() {
  std::string body;
  PutInt32(body, static_cast<uint32_t>(AuthCode::kMd5Password));
  body += "salt";
  return Frame('R', body);
}

// The one message of `bytes` (what the router sent the server).
Message Only(const std::string& bytes) {
  MessageReader reader;
  reader.Feed(bytes);
  auto message = reader.Next();
  EXPECT_TRUE(message.has_value());
  EXPECT_FALSE(reader.Next().has_value());
  return message.value_or(Message{});
}

class ServerLoginTest : public ::testing::Test {
 protected:
  scram::Verifier verifier_ = scram::MakeVerifier("correct horse", "0123456789abcdef", 4096);
  std::string client_key_ = scram::ClientKeyOf("correct horse", verifier_);
  StoredSecret secret_ = [this] {
    StoredSecret secret;
    secret.kind = StoredSecret::Kind::kScram;
    secret.scram = verifier_;
    return secret;
  }();
  std::vector<std::pair<std::string, std::string>> parameters_ = {{"user", "alice"},
                                                                  {"database", "app"}};

  // The server's side of SCRAM with `server_verifier`, up to the router's client-final-message;
  // returns the server's exchange for the last step.
  scram::ServerExchange Exchange(ServerLogin& login, const scram::Verifier& server_verifier,
                                 Next* after_first = nullptr) {
    scram::ServerExchange server(server_verifier, scram::RandomNonce());
    EXPECT_EQ(login.Feed(AuthenticationSasl({"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"})), Next::kRead);
    auto initial = ParseSaslInitialResponse(Only(login.TakeOutput()));
    EXPECT_TRUE(initial.has_value());
    EXPECT_EQ(initial->mechanism, "SCRAM-SHA-256");
    auto server_first = server.OnClientFirst(initial->data);
    EXPECT_TRUE(server_first.ok());
    Next next = login.Feed(AuthenticationSaslContinue(server_first.value_or("")));
    if (after_first) *after_first = next;
    return server;
  }
};

TEST_F(ServerLoginTest, TheClientKeyLogsInAndTheGreetingIsKept) {
  ServerLogin login(parameters_, client_key_, secret_);
  EXPECT_EQ(login.Start(), StartupMessage(parameters_));
  Next after_first = Next::kFailed;
  auto server = Exchange(login, verifier_, &after_first);
  ASSERT_EQ(after_first, Next::kRead) << login.failure();
  Message client_final = Only(login.TakeOutput());
  EXPECT_EQ(client_final.type, 'p');
  auto server_final = server.OnClientFinal(client_final.body);
  ASSERT_TRUE(server_final.ok()) << "the server accepts the router's proof";
  EXPECT_EQ(
      login.Feed(AuthenticationSaslFinal(*server_final) + AuthenticationOk() +
                 ParameterStatus("server_version", "15.8") + ParameterStatus("TimeZone", "UTC") +
                 BackendKeyData(4242, 77) + ReadyForQuery()),
      Next::kReady)
      << login.failure();
  std::string types;
  for (const auto& message : login.greeting()) types += message.type;
  EXPECT_EQ(types, "RSSKZ");
  ASSERT_TRUE(login.backend_key().has_value());
  EXPECT_EQ(login.backend_key()->process_id, 4242u);
  EXPECT_EQ(login.backend_key()->secret, 77u);
}

TEST_F(ServerLoginTest, AServerHoldingAnotherVerifierSaysTheCachedOneIsOutdated) {
  ServerLogin login(parameters_, client_key_, secret_);
  (void)login.Start();
  Next after_first = Next::kRead;
  (void)Exchange(login, scram::MakeVerifier("new password", "fedcba9876543210", 4096),
                 &after_first);
  EXPECT_EQ(after_first, Next::kFailed);
  EXPECT_TRUE(login.verifier_outdated());
}

TEST_F(ServerLoginTest, AServerThatCannotProveItKnowsTheVerifierIsRefused) {
  ServerLogin login(parameters_, client_key_, secret_);
  (void)login.Start();
  (void)Exchange(login, verifier_);
  (void)login.TakeOutput();
  EXPECT_EQ(login.Feed(AuthenticationSaslFinal("v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")),
            Next::kFailed);
  EXPECT_FALSE(login.verifier_outdated());
}

TEST_F(ServerLoginTest, AnAcceptanceBeforeTheServerProvedItselfIsRefused) {
  ServerLogin login(parameters_, client_key_, secret_);
  (void)login.Start();
  (void)Exchange(login, verifier_);
  EXPECT_EQ(login.Feed(AuthenticationOk() + ReadyForQuery()), Next::kFailed);
  EXPECT_THAT(login.failure(), HasSubstr("before proving"));
}

TEST_F(ServerLoginTest, TrustLogsInWithoutAnExchange) {
  ServerLogin login(parameters_, client_key_, secret_);
  (void)login.Start();
  EXPECT_EQ(login.Feed(AuthenticationOk() + ReadyForQuery()), Next::kReady);
  EXPECT_TRUE(login.TakeOutput().empty());
}

TEST_F(ServerLoginTest, AServerGoingAwayIsRetryableAndOtherRefusalsAreNot) {
  ServerLogin starting(parameters_, client_key_, secret_);
  (void)starting.Start();
  EXPECT_EQ(starting.Feed(FatalErrorResponse("57P03", "the database system is starting up")),
            Next::kFailed);
  EXPECT_TRUE(starting.retryable());
  ASSERT_TRUE(starting.server_error().has_value());
  EXPECT_EQ(starting.server_error()->message, "the database system is starting up");

  ServerLogin no_database(parameters_, client_key_, secret_);
  (void)no_database.Start();
  EXPECT_EQ(no_database.Feed(FatalErrorResponse("3D000", "database \"app\" does not exist")),
            Next::kFailed);
  EXPECT_FALSE(no_database.retryable());
}

TEST_F(ServerLoginTest, AServerAskingForWhatTheLoginCannotAnswerIsRefusedWithTheRemedy) {
  std::string cleartext;
  PutInt32(cleartext, static_cast<uint32_t>(AuthCode::kCleartextPassword));
  for (const std::string& request : {Md5Request(), Frame('R', cleartext)}) {
    ServerLogin login(parameters_, client_key_, secret_);
    (void)login.Start();
    EXPECT_EQ(login.Feed(request), Next::kFailed);
    EXPECT_THAT(login.failure(), HasSubstr("use scram-sha-256 in pg_hba.conf"));
    EXPECT_FALSE(login.server_error().has_value());
  }
  StoredSecret md5;
  md5.kind = StoredSecret::Kind::kMd5;
  md5.md5 = Md5Secret("correct horse", "alice").substr(3);
  ServerLogin scram_asked(parameters_, "", md5);
  (void)scram_asked.Start();
  EXPECT_EQ(scram_asked.Feed(AuthenticationSasl({"SCRAM-SHA-256"})), Next::kFailed);
  EXPECT_THAT(scram_asked.failure(), HasSubstr("is stored as md5"));
}

TEST_F(ServerLoginTest, AnMd5ChallengeIsAnsweredFromTheStoredHash) {
  StoredSecret md5;
  md5.kind = StoredSecret::Kind::kMd5;
  md5.md5 = Md5Secret("correct horse", "alice").substr(3);
  ServerLogin login(parameters_, "", md5);
  (void)login.Start();
  EXPECT_EQ(login.Feed(Md5Request()), Next::kRead);
  auto answer = ParsePasswordMessage(Only(login.TakeOutput()));
  ASSERT_TRUE(answer.has_value());
  // What libpq would send knowing the password.
  EXPECT_EQ(*answer, Md5Response(Md5Secret("correct horse", "alice").substr(3), "salt"));
  EXPECT_EQ(login.Feed(AuthenticationOk() + BackendKeyData(1, 2) + ReadyForQuery()), Next::kReady)
      << login.failure();
}

TEST_F(ServerLoginTest, ARoleWithoutAPasswordGetsTheServersRefusalWhenAPasswordIsAsked) {
  ServerLogin login(parameters_, "", StoredSecret{});
  (void)login.Start();
  EXPECT_EQ(login.Feed(AuthenticationSasl({"SCRAM-SHA-256"})), Next::kFailed);
  ASSERT_TRUE(login.server_error().has_value());
  EXPECT_EQ(login.server_error()->sqlstate, "28P01");
  EXPECT_EQ(login.server_error()->message, "password authentication failed for user \"alice\"");
  EXPECT_FALSE(login.retryable());
  ServerLogin trusted(parameters_, "", StoredSecret{});
  (void)trusted.Start();
  EXPECT_EQ(trusted.Feed(AuthenticationOk() + ReadyForQuery()), Next::kReady);
}

TEST_F(ServerLoginTest, WhatNoServerSendsIsRefused) {
  for (const std::string& bytes :
       {std::string("HTTP/1.1 200 OK\r\n\r\n"), ParameterStatus("a", "b"),  // before authenticating
        ReadyForQuery(),                                                    // the same
        AuthenticationSasl({"SCRAM-SHA-256-PLUS"}), AuthenticationSaslContinue("r=x,s=y,i=1")}) {
    ServerLogin login(parameters_, client_key_, secret_);
    (void)login.Start();
    EXPECT_EQ(login.Feed(bytes), Next::kFailed) << bytes;
    EXPECT_FALSE(login.failure().empty());
    EXPECT_EQ(login.Feed(AuthenticationOk() + ReadyForQuery()), Next::kFailed)
        << "a failed login stays failed";
  }
}

}  // namespace
}  // namespace pgha::router
