#include "config/diagnostics.hpp"

#include <algorithm>
#include <cstdio>
#include <tuple>

namespace cow::config::detail {

void Diagnostics::error(Pos pos, std::string_view key_path, std::string message) {
    if (errors_.size() >= kMaxReportedErrors) {
        ++dropped_;
        return;
    }
    errors_.push_back(
        ConfigError{file_, pos.line, pos.column, std::string(key_path), std::move(message)});
}

std::vector<ConfigError> Diagnostics::take() {
    // Positionless errors (an unreadable file) go last; everything else reads top to bottom.
    std::stable_sort(errors_.begin(), errors_.end(), [](const auto& a, const auto& b) {
        auto key = [](const ConfigError& e) { return std::tuple(e.line == 0, e.line, e.column); };
        return key(a) < key(b);
    });
    if (dropped_ > 0) {
        errors_.push_back(ConfigError{
            file_, 0, 0, "", "too many errors; " + std::to_string(dropped_) + " more not shown"});
        dropped_ = 0;
    }
    return std::move(errors_);
}

std::string join_path(std::string_view parent, std::string_view key) {
    std::string out;
    out.reserve(parent.size() + key.size() + 1);
    out += parent;
    if (!parent.empty()) out += '.';
    out += key;
    return out;
}

std::string quote(std::string_view text, std::size_t max_len) {
    bool cut = max_len != 0 && text.size() > max_len;
    if (cut) text = text.substr(0, max_len);
    std::string out = "\"";
    for (unsigned char c : text) {
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\t':
                out += "\\t";
                break;
            case '\r':
                out += "\\r";
                break;
            default:
                if (c < 0x20 || c == 0x7f) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\x%02x", c);
                    out += buf;
                } else {
                    out += static_cast<char>(c);
                }
        }
    }
    out += cut ? "...\"" : "\"";
    return out;
}

}  // namespace cow::config::detail
