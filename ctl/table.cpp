#include "ctl/table.hpp"

#include <algorithm>
#include <cstdlib>

#include <unistd.h>

#include "core/protocol_names.hpp"

namespace cow::ctl {
namespace {

std::size_t visible_width(const std::string& s) {
    std::size_t w = 0;
    bool esc = false;
    for (unsigned char c : s) {
        if (esc) {
            if (c == 'm') esc = false;
            continue;
        }
        if (c == 0x1b) {
            esc = true;
            continue;
        }
        if ((c & 0xC0) != 0x80) ++w;  // count UTF-8 lead bytes only
    }
    return w;
}

}  // namespace

Style detect_style() {
    Style s;
    const char* no_color = std::getenv("NO_COLOR");
    s.color = isatty(STDOUT_FILENO) && !(no_color && no_color[0]);
    return s;
}

std::string colored(const Style& s, std::string_view text, const char* ansi) {
    if (!s.color || !ansi) return std::string(text);
    return std::string("\x1b[") + ansi + "m" + std::string(text) + "\x1b[0m";
}

const char* state_color(std::string_view state) {
    namespace st = proto::state;
    if (state == st::running) return "32";
    if (state == st::starting || state == st::stopping) return "33";
    if (state == st::backoff) return "35";
    if (state == st::fatal) return "1;31";
    if (state == st::exited) return "36";
    return nullptr;
}

std::string Table::render() const {
    std::vector<std::size_t> width(headers_.size(), 0);
    for (std::size_t i = 0; i < headers_.size(); ++i)
        width[i] = headers_[i].size();
    for (const auto& r : rows_)
        for (std::size_t i = 0; i < r.size() && i < width.size(); ++i)
            width[i] = std::max(width[i], visible_width(r[i]));
    std::string out;
    auto line = [&](const std::vector<std::string>& cells) {
        std::string l;
        for (std::size_t i = 0; i < cells.size() && i < width.size(); ++i) {
            l += cells[i];
            if (i + 1 < cells.size()) l.append(width[i] - visible_width(cells[i]) + 2, ' ');
        }
        while (!l.empty() && l.back() == ' ')
            l.pop_back();
        out += l + "\n";
    };
    line(headers_);
    for (const auto& r : rows_)
        line(r);
    return out;
}

}  // namespace cow::ctl
