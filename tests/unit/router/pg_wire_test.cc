// The protocol pieces the L4 router reads and writes.
#include "router/pg_wire.h"

#include <gtest/gtest.h>

namespace pgha::router {
namespace {

std::string Int32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

std::string Startup() {
  std::string body = Int32(3 << 16) + std::string("user\0postgres\0\0", 15);
  return Int32(static_cast<uint32_t>(body.size() + 4)) + body;
}

std::string StartupMessageForKeyTests() { return Startup(); }

TEST(PgWireTest, ClassifiesClientOpenings) {
  EXPECT_EQ(ParseClientOpening("").kind, ClientOpening::kIncomplete);
  EXPECT_EQ(ParseClientOpening(Int32(8)).kind, ClientOpening::kIncomplete);
  EXPECT_EQ(ParseClientOpening(Int32(8) + Int32(80877103)).kind, ClientOpening::kSslRequest);
  EXPECT_EQ(ParseClientOpening(Int32(8) + Int32(80877104)).kind, ClientOpening::kGssEncRequest);
  EXPECT_EQ(ParseClientOpening(Int32(16) + Int32(80877102) + Int32(7) + Int32(9)).kind,
            ClientOpening::kCancelRequest);
  auto startup = Startup();
  EXPECT_EQ(ParseClientOpening(startup).kind, ClientOpening::kStartup);
  EXPECT_EQ(ParseClientOpening(startup).length, startup.size());
  EXPECT_EQ(ParseClientOpening(startup.substr(0, startup.size() - 1)).kind,
            ClientOpening::kIncomplete);
}

TEST(PgWireTest, RefusesWhatNoServerWouldAccept) {
  EXPECT_EQ(ParseClientOpening("GET / HTTP/1.1\r\n\r\n").kind, ClientOpening::kInvalid);
  EXPECT_EQ(ParseClientOpening(Int32(4) + Int32(3 << 16)).kind, ClientOpening::kInvalid);
  EXPECT_EQ(ParseClientOpening(Int32(20000) + Int32(3 << 16)).kind, ClientOpening::kInvalid);
  EXPECT_EQ(ParseClientOpening(Int32(12) + Int32(80877103) + Int32(0)).kind,
            ClientOpening::kInvalid);  // SSL, wrong size
  EXPECT_EQ(ParseClientOpening(Int32(8) + Int32(2 << 16)).kind, ClientOpening::kInvalid);  // v2
}

TEST(PgWireTest, FatalErrorResponseIsWellFormed) {
  std::string e = FatalErrorResponse("53300", "too many");
  ASSERT_GE(e.size(), 5u);
  EXPECT_EQ(e[0], 'E');
  EXPECT_EQ(static_cast<size_t>(static_cast<unsigned char>(e[4])) + 1, e.size());
  EXPECT_NE(e.find(std::string("C53300\0", 7)), std::string::npos);
  EXPECT_NE(e.find(std::string("Mtoo many\0", 10)), std::string::npos);
  EXPECT_EQ(e.back(), '\0');
  // A NUL in the message cannot end its field early.
  EXPECT_EQ(FatalErrorResponse("XX000", std::string("a\0b", 3)).find(std::string("Mab\0", 4)) !=
                std::string::npos,
            true);
}

TEST(PgWireTest, ServerGreetingsThatMeanTryElsewhere) {
  for (const char* state : {"57P01", "57P02", "57P03"}) {
    auto verdict = ClassifyServerGreeting(FatalErrorResponse(state,
                                                             "the database system is "
                                                             "shutting down"));
    EXPECT_EQ(verdict.kind, ServerGreeting::kRetryable) << state;
    EXPECT_EQ(verdict.sqlstate, state);
  }
  auto auth_failed = ClassifyServerGreeting(FatalErrorResponse("28P01", "password"));
  EXPECT_EQ(auth_failed.kind, ServerGreeting::kPassOn);
  EXPECT_EQ(auth_failed.sqlstate, "28P01");
  std::string auth_request = "R" + Int32(8) + Int32(0);
  EXPECT_EQ(ClassifyServerGreeting(auth_request).kind, ServerGreeting::kPassOn);
  std::string partial = FatalErrorResponse("57P03", "starting up");
  EXPECT_EQ(ClassifyServerGreeting(partial.substr(0, 3)).kind, ServerGreeting::kIncomplete);
  EXPECT_EQ(ClassifyServerGreeting(partial.substr(0, 10)).kind, ServerGreeting::kIncomplete);
  EXPECT_EQ(ClassifyServerGreeting("").kind, ServerGreeting::kIncomplete);
  EXPECT_EQ(ClassifyServerGreeting("E" + Int32(2)).kind, ServerGreeting::kPassOn);  // insane
}

TEST(PgWireTest, CancelRequestKey) {
  auto key = CancelRequestKey(Int32(16) + Int32(80877102) + Int32(4242) + Int32(99));
  ASSERT_TRUE(key);
  EXPECT_EQ(key->process_id, 4242u);
  EXPECT_EQ(key->secret, 99u);
  EXPECT_FALSE(CancelRequestKey(Int32(16) + Int32(80877103) + Int32(1) + Int32(2)));
  EXPECT_FALSE(CancelRequestKey(StartupMessageForKeyTests()));
}

TEST(PgWireTest, TheScannerFindsTheSessionKeyHoweverTheBytesArrive) {
  std::string stream = "R" + Int32(8) + Int32(0) +                             // AuthenticationOk
                       "S" + Int32(4 + 9) + std::string("a\0b\0c\0\0\0", 9) +  // ParameterStatus
                       "K" + Int32(12) + Int32(777) + Int32(31337) +           // BackendKeyData
                       "Z" + Int32(5) + "I";                                   // ReadyForQuery
  for (size_t piece : {1u, 2u, 3u, 7u, 1000u}) {
    BackendKeyScanner scanner;
    for (size_t at = 0; at < stream.size() && !scanner.done(); at += piece) {
      scanner.Feed(std::string_view(stream).substr(at, piece));
    }
    ASSERT_TRUE(scanner.done()) << piece;
    ASSERT_TRUE(scanner.key()) << piece;
    EXPECT_EQ(scanner.key()->process_id, 777u);
    EXPECT_EQ(scanner.key()->secret, 31337u);
  }
  BackendKeyScanner failed;
  failed.Feed(FatalErrorResponse("28P01", "password authentication failed"));
  EXPECT_TRUE(failed.done());
  EXPECT_FALSE(failed.key());
  BackendKeyScanner garbage;
  garbage.Feed(std::string("X\0\0\0\1", 5));
  EXPECT_TRUE(garbage.done());
  EXPECT_FALSE(garbage.key());
}

}  // namespace
}  // namespace pgha::router
