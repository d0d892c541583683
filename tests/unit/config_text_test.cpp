// The config room's text helpers: shell-style splitting of command strings and "did you mean".
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "config/shell_split.hpp"
#include "config/suggest.hpp"

namespace cow::config::detail {
namespace {

using Words = std::vector<std::string>;

Words split(std::string_view text) {
    ShellSplit s = shell_split(text);
    EXPECT_FALSE(s.error) << text << ": " << *s.error;
    return s.words;
}

std::string split_error(std::string_view text) {
    ShellSplit s = shell_split(text);
    EXPECT_TRUE(s.words.empty());
    return s.error.value_or("(no error)");
}

TEST(ConfigShellSplit, Whitespace) {
    EXPECT_EQ(split(""), Words{});
    EXPECT_EQ(split("  \t\n "), Words{});
    EXPECT_EQ(split("/bin/sleep 1000"), (Words{"/bin/sleep", "1000"}));
    EXPECT_EQ(split("  a \t b\nc  "), (Words{"a", "b", "c"}));
}

TEST(ConfigShellSplit, SingleQuotesAreLiteral) {
    EXPECT_EQ(split("echo 'a  b' 'x\\y' '$HOME' '\"'"),
              (Words{"echo", "a  b", "x\\y", "$HOME", "\""}));
    EXPECT_EQ(split("''"), (Words{""}));
    EXPECT_EQ(split("a '' b"), (Words{"a", "", "b"}));
}

TEST(ConfigShellSplit, DoubleQuotesEscapeOnlyFourCharacters) {
    EXPECT_EQ(split(R"("a \"b\" \\ \$ \`")"), (Words{"a \"b\" \\ $ `"}));
    EXPECT_EQ(split(R"("\n\t\x")"), (Words{R"(\n\t\x)"}));
    EXPECT_EQ(split("\"a\\\nb\""), (Words{"ab"}));
    EXPECT_EQ(split("\"it's\""), (Words{"it's"}));
    EXPECT_EQ(split("\"\""), (Words{""}));
}

TEST(ConfigShellSplit, BackslashOutsideQuotes) {
    EXPECT_EQ(split(R"(a\ b \'c\' \\ \$x)"), (Words{"a b", "'c'", "\\", "$x"}));
    EXPECT_EQ(split("one\\\ntwo"), (Words{"onetwo"}));
    EXPECT_EQ(split("a \\\n b"), (Words{"a", "b"}));
}

TEST(ConfigShellSplit, AdjacentPartsJoin) {
    EXPECT_EQ(split(R"(--name='a b'"c d"e)"), (Words{"--name=a bc de"}));
}

TEST(ConfigShellSplit, ShellSyntaxIsJustText) {
    EXPECT_EQ(
        split("a | b; c && d > out $HOME ~ *.txt # note"),
        (Words{"a", "|", "b;", "c", "&&", "d", ">", "out", "$HOME", "~", "*.txt", "#", "note"}));
}

TEST(ConfigShellSplit, MalformedStrings) {
    EXPECT_EQ(split_error("echo 'abc"), "unterminated single quote starting at character 6");
    EXPECT_EQ(split_error("echo \"abc"), "unterminated double quote starting at character 6");
    EXPECT_EQ(split_error("echo \"abc\\\""), "unterminated double quote starting at character 6");
    EXPECT_EQ(split_error("echo abc\\"), "trailing backslash at character 9 escapes nothing");
}

TEST(ConfigSuggest, EditDistance) {
    EXPECT_EQ(edit_distance("", ""), 0u);
    EXPECT_EQ(edit_distance("abc", ""), 3u);
    EXPECT_EQ(edit_distance("kitten", "sitting"), 3u);
    EXPECT_EQ(edit_distance("workers", "wokrers"), 1u);  // a transposition is one edit
    EXPECT_EQ(edit_distance("workers", "wokers"), 1u);
    EXPECT_EQ(edit_distance("ca", "abc"), 3u);  // optimal string alignment, not full Damerau
}

TEST(ConfigSuggest, PicksTheCloseCandidate) {
    const std::string_view keys[] = {"command", "workers",      "cwd",
                                     "env",     "stop_timeout", "start_timeout"};
    EXPECT_EQ(suggest("wokers", keys), "workers");
    EXPECT_EQ(suggest("WORKERS", keys), "workers");
    EXPECT_EQ(suggest("comand", keys), "command");
    EXPECT_EQ(suggest("stop-timeout", keys), "stop_timeout");
    EXPECT_EQ(suggest("ev", keys), "env");
    EXPECT_EQ(suggest("work", keys), "workers");
    EXPECT_EQ(suggest("commands", keys), "command");
    EXPECT_EQ(suggest("banana", keys), std::nullopt);
    EXPECT_EQ(suggest("xy", keys), std::nullopt);  // two edits reach anything this short
    EXPECT_EQ(suggest("", keys), std::nullopt);
    EXPECT_EQ(suggest("workers", keys), std::nullopt);
    EXPECT_EQ(suggest(std::string(1000, 'w'), keys), std::nullopt);
}

TEST(ConfigSuggest, DidYouMeanText) {
    const std::string_view levels[] = {"info", "warn"};
    EXPECT_EQ(did_you_mean("warning", levels), "; did you mean \"warn\"?");
    EXPECT_EQ(did_you_mean("quiet", levels), "");
}

}  // namespace
}  // namespace cow::config::detail
