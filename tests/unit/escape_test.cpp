// core/escape: what cowctl (and the daemon) print of text that echoes user input.
#include "core/escape.hpp"

#include <gtest/gtest.h>

using namespace cow;

TEST(EscapeInvisible, VisibleTextIsUnchanged) {
    for (const char* s : {"", "web.2", "no pool named \"web\"", "a\\b \\u200b", "caf\xc3\xa9",
                          "\xe6\x97\xa5\xe6\x9c\xac", "\xf0\x9f\x90\x84 cow", "~!@#$%^&*()"})
        EXPECT_EQ(escape_invisible(s), s) << s;
}

TEST(EscapeInvisible, ControlCharactersAreEscaped) {
    EXPECT_EQ(escape_invisible("web\x1b[31mred"), "web\\x1b[31mred");
    EXPECT_EQ(escape_invisible("a\nb\rc\td"), "a\\nb\\rc\\td");
    EXPECT_EQ(escape_invisible(std::string_view("a\0b", 3)), "a\\x00b");
    EXPECT_EQ(escape_invisible("del\x7f"), "del\\x7f");
    EXPECT_EQ(escape_invisible("\xc2\x85"), "\\u0085") << "C1 control NEL";
    EXPECT_EQ(escape_invisible("\xc2\x9b"
                               "31m"),
              "\\u009b31m")
        << "C1 CSI";
}

TEST(EscapeInvisible, NewlinesCanBeKeptForMultiLineMessages) {
    EXPECT_EQ(escape_invisible("errors:\nline 1\x1b\n", Newlines::keep), "errors:\nline 1\\x1b\n");
    EXPECT_EQ(escape_invisible("a\r\nb", Newlines::keep), "a\\r\nb");
    EXPECT_EQ(escape_invisible("a\tb", Newlines::keep), "a\\tb");
}

TEST(EscapeInvisible, InvisibleCodePointsAreEscaped) {
    EXPECT_EQ(escape_invisible("web\xe2\x80\x8b"), "web\\u200b") << "zero-width space";
    EXPECT_EQ(escape_invisible("\xe2\x80\x8dx"), "\\u200dx") << "zero-width joiner";
    EXPECT_EQ(escape_invisible("\xe2\x80\xaegnp"), "\\u202egnp") << "right-to-left override";
    EXPECT_EQ(escape_invisible("\xe2\x81\xa6x\xe2\x81\xa9"), "\\u2066x\\u2069") << "isolates";
    EXPECT_EQ(escape_invisible("\xef\xbb\xbfweb"), "\\ufeffweb") << "byte order mark";
    EXPECT_EQ(escape_invisible("w\xc2\xa0"
                               "b"),
              "w\\u00a0b")
        << "no-break space";
    EXPECT_EQ(escape_invisible("w\xc2\xad"
                               "b"),
              "w\\u00adb")
        << "soft hyphen";
    EXPECT_EQ(escape_invisible("w\xe3\x80\x80"), "w\\u3000") << "ideographic space";
    EXPECT_EQ(escape_invisible("x\xef\xb8\x8f"), "x\\ufe0f") << "variation selector";
    EXPECT_EQ(escape_invisible("x\xf3\xa0\x81\x81"), "x\\U000e0041") << "tag letter A";
}

TEST(EscapeInvisible, InvalidUtf8IsEscapedBytewise) {
    EXPECT_EQ(escape_invisible("a\xff"
                               "b"),
              "a\\xffb");
    EXPECT_EQ(escape_invisible("\xe2\x80"), "\\xe2\\x80") << "truncated";
    EXPECT_EQ(escape_invisible("\xc0\xaf"), "\\xc0\\xaf") << "overlong";
    EXPECT_EQ(escape_invisible("\xed\xa0\x80"), "\\xed\\xa0\\x80") << "surrogate";
}

TEST(EscapeInvisible, IsIdempotent) {
    const std::string once = escape_invisible(
        "web\xe2\x80\x8b \x1b[2J\n\xff\xef\xbb\xbf\xf3\xa0\x81\x81 caf\xc3\xa9 a\\b");
    EXPECT_EQ(escape_invisible(once), once);
    EXPECT_EQ(escape_invisible(once, Newlines::keep), once);
}
