// StopStringMatcher on hand-made text pieces: stops spanning pieces, held-back prefixes, several
// stops, a stop at the very start, include_stop_str_in_output, validation.
#include "api/stop_strings.h"

#include <gtest/gtest.h>

namespace ds {
namespace {

// Feeds `pieces`; returns the text handed out (flushed at the end when nothing stopped) and
// the piece index at which it stopped (-1: never).
std::pair<std::string, int> run(StopStringMatcher& m, const std::vector<std::string>& pieces,
                                std::vector<std::string>* handed = nullptr) {
  std::string out;
  int stopped_at = -1;
  for (size_t i = 0; i < pieces.size(); ++i) {
    StopStringMatcher::Result r = m.push(pieces[i]);
    if (handed) handed->push_back(r.text);
    out += r.text;
    if (r.stopped && stopped_at < 0) stopped_at = static_cast<int>(i);
  }
  out += m.flush();
  return {out, stopped_at};
}

TEST(StopStrings, StopSpanningPiecesIsCutAndNeverHandedOut) {
  StopStringMatcher m({"STOP"}, false);
  std::vector<std::string> handed;
  auto [text, at] = run(m, {"Hello S", "T", "O", "P and more", "ignored"}, &handed);
  EXPECT_EQ(text, "Hello ");
  EXPECT_EQ(at, 3);
  // "S", "ST", "STO" were held back, never handed out.
  EXPECT_EQ(handed, (std::vector<std::string>{"Hello ", "", "", "", ""}));
}

TEST(StopStrings, HeldPrefixIsReleasedWhenItStopsMatching) {
  StopStringMatcher m({"</s>"}, false);
  std::vector<std::string> handed;
  auto [text, at] = run(m, {"a <", "/", "x> b", "<"}, &handed);
  EXPECT_EQ(at, -1);
  EXPECT_EQ(handed, (std::vector<std::string>{"a ", "", "</x> b", ""}));
  EXPECT_EQ(text, "a </x> b<");  // the trailing "<" comes with flush()
}

TEST(StopStrings, SeveralStopsTheEarliestWins) {
  StopStringMatcher m({"world", "lo w", "xyz"}, false);
  auto [text, at] = run(m, {"hel", "lo wor", "ld"});
  EXPECT_EQ(text, "hel");
  EXPECT_EQ(at, 1);
  // Two complete in one piece: the earlier start wins whatever the list order.
  StopStringMatcher m2({"cd", "bc"}, false);
  StopStringMatcher::Result r = m2.push("abcd");
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.text, "a");
  EXPECT_EQ(r.stop, 1);
  // A shorter stop inside a longer one's partial match stops at once.
  StopStringMatcher m3({"abcd", "bc"}, false);
  auto [t3, at3] = run(m3, {"x a", "b", "c", "d"});
  EXPECT_EQ(t3, "x a");
  EXPECT_EQ(at3, 2);
}

TEST(StopStrings, StopAtTheVeryStart) {
  StopStringMatcher m({"\n\n"}, false);
  auto [text, at] = run(m, {"\n", "\nrest"});
  EXPECT_EQ(text, "");
  EXPECT_EQ(at, 1);
  StopStringMatcher m2({"Hi"}, false);
  StopStringMatcher::Result r = m2.push("Hi there");
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.text, "");
  EXPECT_TRUE(m2.push("more").text.empty());
  EXPECT_EQ(m2.flush(), "");
}

TEST(StopStrings, IncludeStopStrInOutput) {
  StopStringMatcher m({"STOP"}, true);
  std::vector<std::string> handed;
  auto [text, at] = run(m, {"Hello S", "T", "OP and more"}, &handed);
  EXPECT_EQ(text, "Hello STOP");
  EXPECT_EQ(at, 2);
  // Nothing is held back: those bytes belong to the output either way.
  EXPECT_EQ(handed, (std::vector<std::string>{"Hello S", "T", "OP"}));
}

TEST(StopStrings, LongStreamsKeepASmallWindow) {
  StopStringMatcher m({"needle"}, false);
  std::string all;
  for (int i = 0; i < 1000; ++i) {
    const std::string piece = "hay" + std::to_string(i) + " ";
    all += piece;
    EXPECT_EQ(m.push(piece).text, piece);  // nothing to hold: no suffix starts "needle"
  }
  StopStringMatcher::Result r = m.push("nee");
  EXPECT_EQ(r.text, "");
  r = m.push("dle!");
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.text, "");
}

TEST(StopStrings, Validation) {
  EXPECT_TRUE(StopStringMatcher::validate({}).isOk());
  EXPECT_TRUE(StopStringMatcher::validate(std::vector<std::string>(16, "x")).isOk());
  Status many = StopStringMatcher::validate(std::vector<std::string>(17, "x"));
  EXPECT_EQ(many.code(), DS_INVALID_ARGUMENT);
  EXPECT_NE(many.message().find("at most 16"), std::string::npos) << many.message();
  Status empty = StopStringMatcher::validate({"a", ""});
  EXPECT_NE(empty.message().find("stop[1] is empty"), std::string::npos) << empty.message();
  EXPECT_FALSE(StopStringMatcher::validate({std::string(1025, 'a')}).isOk());
}

}  // namespace
}  // namespace ds
