// SCRAM-SHA-256 at both ends: RFC 7677's example exchange (password "pencil"), the router
// proving a client's identity to a server with the ClientKey alone, and the refusals.
#include "router/scram.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace pgha::router::scram {
namespace {

using ::testing::HasSubstr;

// RFC 7677, section 3. The verifier is what PostgreSQL would store for "pencil" with that salt
// and count (its StoredKey and ServerKey computed independently of this code, with Python's
// hashlib and hmac).
constexpr const char* kVerifier =
    "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
    "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=";
constexpr const char* kClientFirst = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
constexpr const char* kServerNonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
constexpr const char* kServerFirst =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
constexpr const char* kClientFinal =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
constexpr const char* kServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

Verifier RfcVerifier() {
  auto verifier = ParseVerifier(kVerifier);
  EXPECT_TRUE(verifier.ok()) << verifier.error().ToString();
  return verifier.value();
}

TEST(ScramTest, VerifierOfAPasswordIsWhatPostgresStores) {
  Verifier parsed = RfcVerifier();
  EXPECT_EQ(parsed.iterations, 4096);
  EXPECT_EQ(parsed.salt.size(), 16u);
  Verifier made = MakeVerifier("pencil", parsed.salt, 4096);
  EXPECT_EQ(FormatVerifier(made), kVerifier);
}

TEST(ScramTest, ServerSideOfTheRfcExampleAcceptsTheProofAndSigns) {
  ServerExchange server(RfcVerifier(), kServerNonce);
  auto first = server.OnClientFirst(kClientFirst);
  ASSERT_TRUE(first.ok()) << first.error().ToString();
  EXPECT_EQ(first.value(), kServerFirst);
  EXPECT_FALSE(server.authenticated());
  auto final_message = server.OnClientFinal(kClientFinal);
  ASSERT_TRUE(final_message.ok()) << final_message.error().ToString();
  EXPECT_EQ(final_message.value(), kServerFinal);
  ASSERT_TRUE(server.authenticated());
  EXPECT_EQ(server.client_key(), ClientKeyOf("pencil", RfcVerifier()));
}

TEST(ScramTest, ClientSideWithTheClientKeyAloneSendsTheRfcProof) {
  ClientExchange client(ClientKeyOf("pencil", RfcVerifier()), RfcVerifier(),
                        "rOprNGfwEbeRWgbNEkqO");
  // The user name is left empty, as libpq does: PostgreSQL takes it from the startup packet. The
  // RFC's exchange names "user", so the proof below is recomputed for the empty name.
  EXPECT_EQ(client.ClientFirst(), "n,,n=,r=rOprNGfwEbeRWgbNEkqO");
  auto final_message = client.OnServerFirst(kServerFirst);
  ASSERT_TRUE(final_message.ok()) << final_message.error().ToString();
  EXPECT_THAT(final_message.value(),
              HasSubstr("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p="));
}

// A client that knows the password, the router in the middle holding only the verifier, and a
// server: the key the router learns from the client lets it log in to the server, and both
// signatures check out.
TEST(ScramTest, TheRouterLogsInToAServerWithTheKeyItLearnedFromTheClient) {
  Verifier verifier = MakeVerifier("s3cret pass", "0123456789abcdef", 4096);
  // Client -> router.
  ServerExchange router_side(verifier, RandomNonce());
  ClientExchange client(ClientKeyOf("s3cret pass", verifier), verifier, RandomNonce());
  auto server_first = router_side.OnClientFirst(client.ClientFirst());
  ASSERT_TRUE(server_first.ok()) << server_first.error().ToString();
  auto client_final = client.OnServerFirst(server_first.value());
  ASSERT_TRUE(client_final.ok()) << client_final.error().ToString();
  auto server_final = router_side.OnClientFinal(client_final.value());
  ASSERT_TRUE(server_final.ok()) << server_final.error().ToString();
  EXPECT_TRUE(client.OnServerFinal(server_final.value()).ok());
  ASSERT_TRUE(router_side.authenticated());

  // Router -> a server holding the same verifier, with the learned key and no password.
  ServerExchange node(verifier, RandomNonce());
  ClientExchange router_as_client(router_side.client_key(), verifier, RandomNonce());
  auto node_first = node.OnClientFirst(router_as_client.ClientFirst());
  ASSERT_TRUE(node_first.ok());
  auto router_final = router_as_client.OnServerFirst(node_first.value());
  ASSERT_TRUE(router_final.ok());
  auto node_final = node.OnClientFinal(router_final.value());
  ASSERT_TRUE(node_final.ok()) << node_final.error().ToString();
  EXPECT_TRUE(router_as_client.OnServerFinal(node_final.value()).ok());
}

TEST(ScramTest, AWrongPasswordIsRefusedAndNoKeyIsKept) {
  Verifier verifier = MakeVerifier("right", "saltsaltsaltsalt", 4096);
  ServerExchange router_side(verifier, RandomNonce());
  ClientExchange client(ClientKeyOf("wrong", verifier), verifier, RandomNonce());
  auto server_first = router_side.OnClientFirst(client.ClientFirst());
  ASSERT_TRUE(server_first.ok());
  auto client_final = client.OnServerFirst(server_first.value());
  ASSERT_TRUE(client_final.ok());
  auto refused = router_side.OnClientFinal(client_final.value());
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(refused.error().IsPermissionDenied());
  EXPECT_FALSE(router_side.authenticated());
  EXPECT_TRUE(router_side.client_key().empty());
}

TEST(ScramTest, AServerWithAnotherVerifierIsNotAnsweredWithAProof) {
  Verifier ours = MakeVerifier("pw", "saltsaltsaltsalt", 4096);
  Verifier theirs = MakeVerifier("pw", "another salt....", 4096);
  ServerExchange node(theirs, RandomNonce());
  ClientExchange router(ClientKeyOf("pw", ours), ours, RandomNonce());
  auto node_first = node.OnClientFirst(router.ClientFirst());
  ASSERT_TRUE(node_first.ok());
  auto refused = router.OnServerFirst(node_first.value());
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(refused.error().IsConflict());
}

TEST(ScramTest, AForgedServerSignatureIsRefused) {
  ClientExchange client(ClientKeyOf("pencil", RfcVerifier()), RfcVerifier(),
                        "rOprNGfwEbeRWgbNEkqO");
  client.ClientFirst();
  ASSERT_TRUE(client.OnServerFirst(kServerFirst).ok());
  EXPECT_TRUE(client.OnServerFinal("v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
                  .error()
                  .IsPermissionDenied());
  EXPECT_THAT(client.OnServerFinal("e=invalid-proof").error().message(),
              HasSubstr("invalid-proof"));
}

TEST(ScramTest, MalformedClientMessagesAreRefused) {
  for (const char* first : {"", "n", "x,,n=,r=abc", "p=tls-server-end-point,,n=,r=abc",
                            "n,a=someone,n=,r=abc", "n,,r=abc", "n,,n=,r=", "n,,n=,r=a,b",
                            "n,,n=,r=abc,m=ext", "n,,n=,r=abc,", "n,,n=,r=ab\x01"}) {
    ServerExchange server(RfcVerifier(), kServerNonce);
    auto answer = server.OnClientFirst(first);
    EXPECT_FALSE(answer.ok()) << first;
  }
  // A proof before the client-first-message, a changed nonce, a changed gs2 header, a short
  // proof.
  ServerExchange early(RfcVerifier(), kServerNonce);
  EXPECT_FALSE(early.OnClientFinal(kClientFinal).ok());
  for (const char* final_message :
       {"c=biws,r=rOprNGfwEbeRWgbNEkqO,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        "c=eSws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=AAAA",
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0", "p=abc"}) {
    ServerExchange server(RfcVerifier(), kServerNonce);
    ASSERT_TRUE(server.OnClientFirst(kClientFirst).ok());
    auto answer = server.OnClientFinal(final_message);
    ASSERT_FALSE(answer.ok()) << final_message;
    EXPECT_TRUE(answer.error().IsInvalid()) << final_message;
    EXPECT_FALSE(server.authenticated());
  }
}

TEST(ScramTest, MalformedVerifiersAreRefusedWithoutEchoingThem) {
  for (const char* text :
       {"", "md5abcdef", "SCRAM-SHA-256", "SCRAM-SHA-256$", "SCRAM-SHA-256$4096:c2FsdA==",
        "SCRAM-SHA-256$0:c2FsdA==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
        "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
        "SCRAM-SHA-256$99999999999:c2FsdA==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
        "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
        "SCRAM-SHA-256$4096:c2FsdA==$c2hvcnQ=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
        "SCRAM-SHA-256$4096:!!!!$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
        "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="}) {
    auto parsed = ParseVerifier(text);
    ASSERT_FALSE(parsed.ok()) << text;
    EXPECT_THAT(parsed.error().message(), ::testing::Not(HasSubstr("WG5d8oPm")));
  }
}

TEST(ScramTest, NoncesAreFreshAndPrintable) {
  std::string a = RandomNonce();
  std::string b = RandomNonce();
  EXPECT_NE(a, b);
  EXPECT_EQ(a.size(), 24u);
  EXPECT_EQ(a.find(','), std::string::npos);
}

}  // namespace
}  // namespace pgha::router::scram
