// The session mode's client login without sockets: a client that knows the password (scram.h's
// client side and an md5 answer, as libpq computes them) against the router's side, a role
// without a password, and every refusal PostgreSQL would give.
#include "router/client_login.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "router/pg_bytes.h"

namespace pgha::router {
namespace {

using Next = ClientLogin::Next;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;

std::string Startup(const std::vector<std::pair<std::string, std::string>>& parameters,
                    uint32_t minor = 0) {
  std::string body;
  PutInt32(body, (3u << 16) | minor);
  for (const auto& [name, value] : parameters) {
    body += name + '\0' + value + '\0';
  }
  body += '\0';
  std::string out;
  PutInt32(out, static_cast<uint32_t>(body.size() + 4));
  return out + body;
}

std::string Request(uint32_t code) {
  std::string out;
  PutInt32(out, 8);
  PutInt32(out, code);
  return out;
}
const std::string kSslRequest = Request(80877103);
const std::string kGssEncRequest = Request(80877104);

// The messages of `bytes` (the router's output), in order.
std::vector<Message> Messages(const std::string& bytes) {
  MessageReader reader;
  reader.Feed(bytes);
  std::vector<Message> out;
  while (auto message = reader.Next()) {
    out.push_back(*message);
  }
  EXPECT_FALSE(reader.failed());
  return out;
}

// A FATAL ErrorResponse's SQLSTATE and message, from the router's output.
ServerError ErrorIn(const std::string& bytes) {
  auto messages = Messages(bytes);
  EXPECT_EQ(messages.size(), 1u);
  auto error = messages.empty() ? std::nullopt : ParseErrorResponse(messages.back());
  EXPECT_TRUE(error.has_value());
  return error.value_or(ServerError{});
}

// The data of the only authentication request in the router's output.
AuthenticationRequest AuthenticationIn(const std::string& bytes) {
  auto messages = Messages(bytes);
  EXPECT_EQ(messages.size(), 1u);
  auto request = messages.empty() ? std::nullopt : ParseAuthentication(messages.back());
  EXPECT_TRUE(request.has_value());
  return request.value_or(AuthenticationRequest{});
}

StoredSecret ScramSecret(const scram::Verifier& verifier) {
  StoredSecret secret;
  secret.kind = StoredSecret::Kind::kScram;
  secret.scram = verifier;
  return secret;
}

class ClientLoginTest : public ::testing::Test {
 protected:
  // Startup as `user`, then the SCRAM exchange with `password` against `verifier` (what the
  // auth query found; nullopt: nothing). Returns how the login ends.
  Next LogIn(ClientLogin& login, const std::string& user, const std::string& password,
             std::optional<scram::Verifier> verifier) {
    EXPECT_EQ(login.Feed(Startup({{"user", user}, {"database", "app"}})), Next::kLookUpSecret);
    EXPECT_EQ(login.OnSecret(verifier ? std::optional(ScramSecret(*verifier)) : std::nullopt),
              Next::kRead);
    auto sasl = AuthenticationIn(login.TakeOutput());
    EXPECT_EQ(sasl.code, static_cast<int32_t>(AuthCode::kSasl));
    EXPECT_THAT(SaslMechanisms(sasl.data), ElementsAre("SCRAM-SHA-256"));
    // The client knows the password and reads the salt and count from the server's first message
    // (libpq does); the router's mock gives the same salt for an unknown role as here.
    scram::Verifier salted = verifier ? *verifier : scram::MockVerifier(user);
    scram::ClientExchange client(scram::ClientKeyOf(password, salted), salted,
                                 scram::RandomNonce());
    EXPECT_EQ(login.Feed(SaslInitialResponse("SCRAM-SHA-256", client.ClientFirst())), Next::kRead);
    auto server_first = AuthenticationIn(login.TakeOutput());
    EXPECT_EQ(server_first.code, static_cast<int32_t>(AuthCode::kSaslContinue));
    last_server_first_ = server_first.data;
    auto client_final = client.OnServerFirst(server_first.data);
    EXPECT_TRUE(client_final.ok());
    Next end = login.Feed(SaslResponse(client_final.value_or("")));
    last_output_ = login.TakeOutput();
    if (end == Next::kAuthenticated) {
      auto server_final = AuthenticationIn(last_output_);
      EXPECT_EQ(server_final.code, static_cast<int32_t>(AuthCode::kSaslFinal));
      EXPECT_TRUE(client.OnServerFinal(server_final.data).ok()) << "the router proved itself";
    }
    return end;
  }

  scram::Verifier verifier_ = scram::MakeVerifier("correct horse", "0123456789abcdef", 4096);
  std::string last_server_first_;
  std::string last_output_;
};

TEST_F(ClientLoginTest, TheRightPasswordLogsInAndLeavesTheClientKeyForTheServers) {
  ClientLogin login(false);
  EXPECT_EQ(LogIn(login, "alice", "correct horse", verifier_), Next::kAuthenticated);
  EXPECT_EQ(login.client_key(), scram::ClientKeyOf("correct horse", verifier_));
  EXPECT_EQ(login.user(), "alice");
  EXPECT_EQ(login.database(), "app");
  EXPECT_THAT(login.startup_parameters(),
              ElementsAre(Pair("user", "alice"), Pair("database", "app")));
}

TEST_F(ClientLoginTest, AWrongPasswordIsRefusedAsPostgresRefusesIt) {
  ClientLogin login(false);
  EXPECT_EQ(LogIn(login, "alice", "wrong horse", verifier_), Next::kClose);
  auto error = ErrorIn(last_output_);
  EXPECT_EQ(error.sqlstate, "28P01");
  EXPECT_EQ(error.message, "password authentication failed for user \"alice\"");
  EXPECT_TRUE(login.client_key().empty());
}

TEST_F(ClientLoginTest, AnUnknownRoleGoesThroughTheSameExchangeAndEndsTheSameWay) {
  ClientLogin first(false);
  EXPECT_EQ(LogIn(first, "nobody", "any password", std::nullopt), Next::kClose);
  auto error = ErrorIn(last_output_);
  EXPECT_EQ(error.sqlstate, "28P01");
  EXPECT_EQ(error.message, "password authentication failed for user \"nobody\"");
  // The salt (",s=...,") of a made-up verifier is the same each time, as a real one's is.
  auto salt = [](const std::string& server_first) {
    auto at = server_first.find(",s=");
    return server_first.substr(at, server_first.find(",i=") - at);
  };
  std::string first_salt = salt(last_server_first_);
  ClientLogin second(false);
  EXPECT_EQ(LogIn(second, "nobody", "any password", std::nullopt), Next::kClose);
  EXPECT_EQ(salt(last_server_first_), first_salt);
}

TEST_F(ClientLoginTest, BytesInPiecesLogInAsBytesAtOnce) {
  ClientLogin login(false);
  std::string startup = Startup({{"user", "alice"}});
  for (size_t i = 0; i + 1 < startup.size(); ++i) {
    EXPECT_EQ(login.Feed(startup.substr(i, 1)), Next::kRead);
  }
  EXPECT_EQ(login.Feed(startup.substr(startup.size() - 1)), Next::kLookUpSecret);
  EXPECT_EQ(login.database(), "alice") << "the database defaults to the user's name";
}

TEST_F(ClientLoginTest, AnSslRequestIsAnsweredNWithoutACertificateAndTheLoginGoesOn) {
  ClientLogin login(false);
  EXPECT_EQ(login.Feed(kSslRequest + Startup({{"user", "alice"}})), Next::kLookUpSecret);
  EXPECT_EQ(login.TakeOutput(), "N");
}

TEST_F(ClientLoginTest, AnSslRequestIsAnsweredSWithACertificateAndTheLoginGoesOnInside) {
  ClientLogin login(true);
  EXPECT_EQ(login.Feed(kSslRequest), Next::kStartTls);
  EXPECT_EQ(login.TakeOutput(), "S");
  EXPECT_EQ(login.Feed(Startup({{"user", "alice"}})), Next::kLookUpSecret);
}

TEST_F(ClientLoginTest, CleartextSentAlongWithAnSslRequestIsRefused) {
  ClientLogin login(true);
  EXPECT_EQ(login.Feed(kSslRequest + Startup({{"user", "alice"}})), Next::kClose);
  EXPECT_EQ(ErrorIn(login.TakeOutput()).sqlstate, "08P01");
}

TEST_F(ClientLoginTest, GssEncryptionIsRefusedWithNAndTheLoginGoesOn) {
  ClientLogin login(true);
  EXPECT_EQ(login.Feed(kGssEncRequest), Next::kRead);
  EXPECT_EQ(login.TakeOutput(), "N");
  EXPECT_EQ(login.Feed(kSslRequest), Next::kStartTls) << "libpq asks for TLS next";
}

TEST_F(ClientLoginTest, ACancelRequestIsRecognisedWithItsKey) {
  ClientLogin login(false);
  std::string cancel;
  PutInt32(cancel, 16);
  PutInt32(cancel, 80877102);
  PutInt32(cancel, 4242);
  PutInt32(cancel, 77);
  EXPECT_EQ(login.Feed(cancel), Next::kCancel);
  ASSERT_TRUE(login.cancel_key().has_value());
  EXPECT_EQ(login.cancel_key()->process_id, 4242u);
  EXPECT_EQ(login.cancel_key()->secret, 77u);
  EXPECT_TRUE(login.TakeOutput().empty()) << "a cancel request gets no answer";
}

TEST_F(ClientLoginTest, ANewerMinorVersionAndUnknownProtocolOptionsAreNegotiatedDown) {
  ClientLogin login(false);
  EXPECT_EQ(login.Feed(Startup({{"user", "alice"}, {"_pq_.compression", "on"}}, 2)),
            Next::kLookUpSecret);
  auto messages = Messages(login.TakeOutput());
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].type, 'v');
  EXPECT_EQ(GetInt32(messages[0].body, 0), 0u) << "3.0 is spoken";
  EXPECT_EQ(GetInt32(messages[0].body, 4), 1u);
  EXPECT_EQ(messages[0].body.substr(8), std::string("_pq_.compression") + '\0');
  EXPECT_THAT(login.startup_parameters(), ElementsAre(Pair("user", "alice")));
}

TEST_F(ClientLoginTest, StartupPacketsPostgresRefusesAreRefused) {
  struct Case {
    std::string bytes;
    std::string sqlstate;
    std::string says;
  };
  std::string no_terminator = Startup({{"user", "alice"}});
  no_terminator.pop_back();
  no_terminator.back() = 'x';
  no_terminator[3] = static_cast<char>(no_terminator.size());
  for (const auto& c : std::vector<Case>{
           {Startup({{"database", "app"}}), "28000", "no PostgreSQL user name"},
           {Startup({{"user", "rep"}, {"replication", "true"}}), "0A000", "replication"},
           {no_terminator, "08P01", "terminator"},
           {"GET / HTTP/1.1\r\nHost: router\r\n\r\n", "08P01", "invalid startup packet"},
       }) {
    ClientLogin login(false);
    EXPECT_EQ(login.Feed(c.bytes), Next::kClose) << c.says;
    auto error = ErrorIn(login.TakeOutput());
    EXPECT_EQ(error.sqlstate, c.sqlstate) << c.says;
    EXPECT_THAT(error.message, HasSubstr(c.says));
    EXPECT_EQ(login.Feed("more"), Next::kClose) << "a refused login stays refused";
  }
}

TEST_F(ClientLoginTest, ASecondSslRequestIsRefused) {
  ClientLogin login(false);
  EXPECT_EQ(login.Feed(kSslRequest + kSslRequest), Next::kClose);
  std::string output = login.TakeOutput();
  ASSERT_FALSE(output.empty());
  EXPECT_EQ(output[0], 'N') << "the first had its answer";
  EXPECT_THAT(ErrorIn(output.substr(1)).message, HasSubstr("twice"));
}

TEST_F(ClientLoginTest, SaslMessagesPostgresRefusesAreRefused) {
  std::string oversized = "p";
  PutInt32(oversized, 0x7fffffff);
  for (const auto& [message, sqlstate] : std::vector<std::pair<std::string, std::string>>{
           {SaslInitialResponse("SCRAM-SHA-256-PLUS", "p=tls-server-end-point,,n=,r=x"), "28000"},
           {SaslInitialResponse("SCRAM-SHA-256", "not a client-first message"), "08P01"},
           {Frame('Q', std::string("SELECT 1") + '\0'), "08P01"},
           {oversized, "08P01"},
       }) {
    ClientLogin login(false);
    ASSERT_EQ(login.Feed(Startup({{"user", "alice"}})), Next::kLookUpSecret);
    ASSERT_EQ(login.OnSecret(ScramSecret(verifier_)), Next::kRead);
    (void)login.TakeOutput();
    EXPECT_EQ(login.Feed(message), Next::kClose) << message;
    EXPECT_EQ(ErrorIn(login.TakeOutput()).sqlstate, sqlstate) << message;
    EXPECT_TRUE(login.client_key().empty());
  }
}

TEST_F(ClientLoginTest, AClientThatQuitsAtThePasswordPromptIsClosedWithoutAnError) {
  ClientLogin login(false);
  ASSERT_EQ(login.Feed(Startup({{"user", "alice"}})), Next::kLookUpSecret);
  ASSERT_EQ(login.OnSecret(ScramSecret(verifier_)), Next::kRead);
  (void)login.TakeOutput();
  EXPECT_EQ(login.Feed(Frame('X', "")), Next::kClose);
  EXPECT_TRUE(login.TakeOutput().empty());
}

TEST_F(ClientLoginTest, AnMd5SecretIsCheckedWithAnMd5ChallengeAndLeavesNoClientKey) {
  StoredSecret md5;
  md5.kind = StoredSecret::Kind::kMd5;
  md5.md5 = Md5Secret("battery staple", "bob").substr(3);
  for (const auto& [password, expected] : std::vector<std::pair<std::string, Next>>{
           {"battery staple", Next::kAuthenticated}, {"battery stapler", Next::kClose}}) {
    ClientLogin login(false);
    ASSERT_EQ(login.Feed(Startup({{"user", "bob"}})), Next::kLookUpSecret);
    ASSERT_EQ(login.OnSecret(md5), Next::kRead);
    auto challenge = AuthenticationIn(login.TakeOutput());
    ASSERT_EQ(challenge.code, static_cast<int32_t>(AuthCode::kMd5Password));
    ASSERT_EQ(challenge.data.size(), 4u) << "a 4-byte salt";
    // What libpq sends: md5(md5(password || user) || salt).
    std::string answer = Md5Response(Md5Secret(password, "bob").substr(3), challenge.data);
    EXPECT_EQ(login.Feed(PasswordMessage(answer)), expected) << password;
    std::string output = login.TakeOutput();
    if (expected == Next::kAuthenticated) {
      EXPECT_TRUE(output.empty()) << "AuthenticationOk comes with the server's greeting";
      EXPECT_TRUE(login.client_key().empty());
      EXPECT_EQ(login.secret().kind, StoredSecret::Kind::kMd5);
    } else {
      auto error = ErrorIn(output);
      EXPECT_EQ(error.sqlstate, "28P01");
      EXPECT_EQ(error.message, "password authentication failed for user \"bob\"");
    }
  }
  ClientLogin malformed(false);
  ASSERT_EQ(malformed.Feed(Startup({{"user", "bob"}})), Next::kLookUpSecret);
  ASSERT_EQ(malformed.OnSecret(md5), Next::kRead);
  (void)malformed.TakeOutput();
  EXPECT_EQ(malformed.Feed(Frame('p', "no terminator")), Next::kClose);
  EXPECT_EQ(ErrorIn(malformed.TakeOutput()).sqlstate, "08P01");
}

TEST_F(ClientLoginTest, ARoleWithoutAPasswordIsAskedNothingAndTheServerDecides) {
  ClientLogin login(false);
  ASSERT_EQ(login.Feed(Startup({{"user", "carol"}})), Next::kLookUpSecret);
  EXPECT_EQ(login.OnSecret(StoredSecret{}), Next::kAuthenticated);
  EXPECT_TRUE(login.TakeOutput().empty());
  EXPECT_EQ(login.secret().kind, StoredSecret::Kind::kNone);
  EXPECT_TRUE(login.client_key().empty());
}

}  // namespace
}  // namespace pgha::router
