#include "config/shell_split.hpp"

namespace cow::config::detail {
namespace {

bool is_blank(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

std::string at(std::size_t offset) {
    return "character " + std::to_string(offset + 1);
}

}  // namespace

ShellSplit shell_split(std::string_view text) {
    ShellSplit out;
    std::string word;
    bool in_word = false;  // distinguishes '' (an empty word) from no word at all
    std::size_t i = 0;
    const std::size_t n = text.size();
    auto fail = [&](std::string message) {
        out.words.clear();
        out.error = std::move(message);
        return out;
    };
    while (i < n) {
        char c = text[i];
        if (is_blank(c)) {
            if (in_word) {
                out.words.push_back(std::move(word));
                word.clear();
                in_word = false;
            }
            ++i;
        } else if (c == '\'') {
            std::size_t close = text.find('\'', i + 1);
            if (close == std::string_view::npos)
                return fail("unterminated single quote starting at " + at(i));
            word.append(text.substr(i + 1, close - i - 1));
            in_word = true;
            i = close + 1;
        } else if (c == '"') {
            std::size_t open = i++;
            for (;;) {
                if (i >= n) return fail("unterminated double quote starting at " + at(open));
                char d = text[i];
                if (d == '"') {
                    ++i;
                    break;
                }
                if (d == '\\' && i + 1 < n) {
                    char e = text[i + 1];
                    if (e == '"' || e == '\\' || e == '$' || e == '`') {
                        word += e;
                        i += 2;
                        continue;
                    }
                    if (e == '\n') {
                        i += 2;
                        continue;
                    }
                }
                word += d;
                ++i;
            }
            in_word = true;
        } else if (c == '\\') {
            if (i + 1 >= n) return fail("trailing backslash at " + at(i) + " escapes nothing");
            if (text[i + 1] != '\n') {
                word += text[i + 1];
                in_word = true;
            }
            i += 2;
        } else {
            word += c;
            in_word = true;
            ++i;
        }
    }
    if (in_word) out.words.push_back(std::move(word));
    return out;
}

}  // namespace cow::config::detail
