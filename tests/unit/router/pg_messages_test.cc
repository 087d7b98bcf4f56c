// The message framing and the SCRAM login messages of the router's session mode.
#include "router/pg_messages.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace pgha::router {
namespace {

using ::testing::ElementsAre;

TEST(PgMessagesTest, AReaderReturnsMessagesHoweverTheStreamIsCut) {
  std::string stream = AuthenticationSasl({"SCRAM-SHA-256", "SCRAM-SHA-256-PLUS"}) +
                       AuthenticationSaslContinue("r=abc,s=c2FsdA==,i=4096") + AuthenticationOk() +
                       Frame('Z', "I");
  for (size_t piece = 1; piece <= stream.size(); ++piece) {
    MessageReader reader;
    std::vector<Message> messages;
    for (size_t at = 0; at < stream.size(); at += piece) {
      reader.Feed(std::string_view(stream).substr(at, piece));
      while (auto message = reader.Next()) {
        messages.push_back(*message);
      }
    }
    ASSERT_EQ(messages.size(), 4u) << "piece " << piece;
    EXPECT_FALSE(reader.failed());
    auto sasl = ParseAuthentication(messages[0]);
    ASSERT_TRUE(sasl.has_value());
    EXPECT_EQ(sasl->code, static_cast<int32_t>(AuthCode::kSasl));
    EXPECT_THAT(SaslMechanisms(sasl->data), ElementsAre("SCRAM-SHA-256", "SCRAM-SHA-256-PLUS"));
    EXPECT_EQ(ParseAuthentication(messages[1])->data, "r=abc,s=c2FsdA==,i=4096");
    EXPECT_EQ(ParseAuthentication(messages[2])->code, 0);
    EXPECT_EQ(messages[3].type, 'Z');
    EXPECT_EQ(messages[3].body, "I");
  }
}

TEST(PgMessagesTest, ViewsGiveEachFrameAsItCameAndStayValidUntilTheNextFeed) {
  std::string first = Frame('T', "row description");
  std::string second = Frame('D', std::string("a\0b", 3));
  std::string third = Frame('Z', "I");
  MessageReader reader;
  reader.Feed(first + second + third.substr(0, 2));
  auto a = reader.NextView();
  auto b = reader.NextView();
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->type, 'T');
  EXPECT_EQ(a->body, "row description");
  EXPECT_EQ(a->frame, first);
  EXPECT_EQ(b->frame, second) << "both views still valid: nothing was fed in between";
  EXPECT_EQ(b->body, std::string_view("a\0b", 3));
  EXPECT_FALSE(reader.NextView().has_value()) << "the third is cut";
  reader.Feed(third.substr(2));
  auto c = reader.NextView();
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->frame, third);
  EXPECT_FALSE(reader.NextView().has_value());
  reader.Feed(first);
  auto copied = reader.Next();
  ASSERT_TRUE(copied.has_value());
  EXPECT_EQ(copied->type, 'T');
  EXPECT_EQ(copied->body, "row description");
}

TEST(PgMessagesTest, ALengthUnderFourOrOverTheLimitStopsTheReader) {
  MessageReader short_length;
  short_length.Feed(std::string("Q\0\0\0\3", 5));
  EXPECT_FALSE(short_length.Next().has_value());
  EXPECT_TRUE(short_length.failed());

  MessageReader limited(100);
  limited.Feed(Frame('Q', std::string(97, 'x')));  // 101 bytes of length
  EXPECT_FALSE(limited.Next().has_value());
  EXPECT_TRUE(limited.failed());
  limited.Feed(Frame('Q', "x"));  // nothing is read after a violation
  EXPECT_FALSE(limited.Next().has_value());
}

TEST(PgMessagesTest, SaslInitialResponseRoundTrips) {
  MessageReader reader;
  reader.Feed(SaslInitialResponse("SCRAM-SHA-256", "n,,n=,r=abc") + SaslResponse("c=biws"));
  auto initial = ParseSaslInitialResponse(*reader.Next());
  ASSERT_TRUE(initial.has_value());
  EXPECT_EQ(initial->mechanism, "SCRAM-SHA-256");
  EXPECT_EQ(initial->data, "n,,n=,r=abc");
  EXPECT_EQ(reader.Next()->body, "c=biws");
}

TEST(PgMessagesTest, MalformedSaslInitialResponsesAreRefused) {
  // No mechanism, no terminator, a length that is not the data's, a negative length.
  for (std::string body : {std::string("\0\0\0\0\0", 5), std::string("SCRAM"),
                           std::string("M\0\0\0\0\x09"
                                       "abc",
                                       9),
                           std::string("M\0\xff\xff\xff\xfe", 6)}) {
    EXPECT_FALSE(ParseSaslInitialResponse(Message{'p', body}).has_value());
  }
  // -1: no data.
  auto none = ParseSaslInitialResponse(Message{'p', std::string("M\0\xff\xff\xff\xff", 6)});
  ASSERT_TRUE(none.has_value());
  EXPECT_EQ(none->data, "");
  EXPECT_FALSE(ParseSaslInitialResponse(Message{'Q', "x"}).has_value());
}

TEST(PgMessagesTest, StartupMessageHasTheProtocolAndParameters) {
  std::string startup = StartupMessage({{"user", "app"}, {"database", "db"}});
  EXPECT_EQ(startup, std::string("\0\0\0\x1e\0\3\0\0user\0app\0database\0db\0\0", 30));
}

TEST(PgMessagesTest, ErrorResponseGivesItsSqlstateAndMessage) {
  std::string body = std::string("SFATAL\0C28P01\0Mpassword authentication failed\0\0", 48);
  auto error = ParseErrorResponse(Message{'E', body});
  ASSERT_TRUE(error.has_value());
  EXPECT_EQ(error->sqlstate, "28P01");
  EXPECT_EQ(error->message, "password authentication failed");
  EXPECT_FALSE(ParseErrorResponse(Message{'R', body}).has_value());
  EXPECT_EQ(ParseErrorResponse(Message{'E', std::string("C28P", 4)})->sqlstate, "");
}

}  // namespace
}  // namespace pgha::router
