// Small text helpers shared by the /proc parsers. Internal to core/proc.
#pragma once

#include <charconv>
#include <optional>
#include <string_view>
#include <system_error>

namespace cow::proc::text {

inline bool is_blank(char c) {
    return c == ' ' || c == '\t';
}

inline std::string_view trim(std::string_view s) {
    while (!s.empty() && (is_blank(s.front()) || s.front() == '\n'))
        s.remove_prefix(1);
    while (!s.empty() && (is_blank(s.back()) || s.back() == '\n'))
        s.remove_suffix(1);
    return s;
}

// Pops the next line off `rest` (without its '\n'). The last line need not end in '\n'.
inline std::string_view next_line(std::string_view& rest) {
    auto nl = rest.find('\n');
    std::string_view line = rest.substr(0, nl);
    rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
    return line;
}

// Pops the next blank-separated token; empty when none is left.
inline std::string_view next_token(std::string_view& rest) {
    while (!rest.empty() && is_blank(rest.front()))
        rest.remove_prefix(1);
    std::size_t n = 0;
    while (n < rest.size() && !is_blank(rest[n]))
        ++n;
    std::string_view token = rest.substr(0, n);
    rest.remove_prefix(n);
    return token;
}

// The whole of `s` must be the number: no sign for unsigned types, no trailing junk.
template <class T>
std::optional<T> to_number(std::string_view s, int base = 10) {
    T value{};
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value, base);
    if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return std::nullopt;
    return value;
}

}  // namespace cow::proc::text
