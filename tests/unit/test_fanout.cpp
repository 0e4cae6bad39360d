// fanout.hpp: the request line and its parsing, the reply pattern.
#include <gtest/gtest.h>

#include "conclab/fanout.hpp"

namespace fanout = conclab::fanout;

TEST(Fanout, RequestIsTheCountAndANewline) {
  EXPECT_EQ(fanout::request(4000), "4000\n");
  EXPECT_EQ(fanout::request(1), "1\n");
}

TEST(Fanout, ParseCountTakesPlainDecimalsWithinTheLimit) {
  EXPECT_EQ(fanout::parse_count("4000", 16384), 4000);
  EXPECT_EQ(fanout::parse_count("4000\r", 16384), 4000);
  EXPECT_EQ(fanout::parse_count("16384", 16384), 16384);
  EXPECT_EQ(fanout::parse_count("1", 16384), 1);
}

TEST(Fanout, ParseCountRefusesEverythingElse) {
  for (const char* bad : {"", "0", "-1", "+5", " 5", "5 ", "05", "16385", "abc", "4k", "99999999999999", "1.5",
                          "\r", "123456789012345", "1\n"})
    EXPECT_EQ(fanout::parse_count(bad, 16384), std::nullopt) << '"' << bad << '"';
  EXPECT_EQ(fanout::parse_count("100", 99), std::nullopt);
}

TEST(Fanout, ReplyIsAFixedPatternOfTheRightLength) {
  EXPECT_EQ(fanout::reply(0), "");
  EXPECT_EQ(fanout::reply(20), "0123456789abcdef0123");
  EXPECT_EQ(fanout::reply(fanout::kLargestMaxBytes).size(), static_cast<std::size_t>(fanout::kLargestMaxBytes));
  EXPECT_THROW((void)fanout::reply(-1), std::out_of_range);
  EXPECT_THROW((void)fanout::reply(fanout::kLargestMaxBytes + 1), std::out_of_range);
}
