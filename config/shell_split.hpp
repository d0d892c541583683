// Splits a command string into argv the way sh would tokenise it, without running a shell:
// no variables, globs, ~, pipes, redirections or comments. Those characters are kept as text.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace cow::config::detail {

struct ShellSplit {
    std::vector<std::string> words;
    std::optional<std::string> error;  // set instead of words when the string is malformed
};

// Words are separated by unquoted spaces, tabs and newlines. '...' keeps everything literally.
// "..." keeps everything but lets a backslash escape " \ $ ` and a newline (which it removes).
// A backslash outside quotes escapes any character; before a newline it joins the lines.
// Quoted and unquoted parts next to each other form one word, and '' is an empty word.
ShellSplit shell_split(std::string_view text);

}  // namespace cow::config::detail
