#include "config/prescan.hpp"

#include <vector>

#include "config/config.hpp"

namespace cow::config::detail {
namespace {

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\r';
}
bool is_flow_indicator(char c) {
    return c == ',' || c == '[' || c == ']' || c == '{' || c == '}';
}

class DepthScanner {
  public:
    DepthScanner(std::string_view text, int limit) : text_(text), limit_(limit) {}

    DepthEstimate run() {
        std::size_t start = 0;
        while (start <= text_.size() && !done()) {
            std::size_t end = text_.find('\n', start);
            if (end == std::string_view::npos) end = text_.size();
            ++line_no_;
            scan_line(text_.substr(start, end - start));
            start = end + 1;
        }
        return best_;
    }

  private:
    struct Level {
        int col;
        bool seq;
    };

    std::string_view text_;
    int limit_;
    int line_no_ = 0;
    DepthEstimate best_;

    std::vector<Level> stack_;  // open block collections, by column
    int flow_ = 0;              // open [ and {
    char quote_ = 0;            // inside a '...' or "..." scalar, which may span lines
    bool token_start_ = true;   // the next non-blank character starts a token
    bool in_plain_ = false;     // inside an unquoted scalar
    bool plain_open_ = false;   // a block-context plain scalar may continue on the next line

    bool block_scalar_ = false;  // skipping the body of a | or > scalar
    int block_parent_ = -1;      // its body must be indented past this column
    int block_indent_ = -1;      // the body's indentation, -1 until its first non-blank line

    bool done() const { return best_.depth > limit_; }
    int top_col() const { return stack_.empty() ? -1 : stack_.back().col; }

    void note(int col) {
        int depth = static_cast<int>(stack_.size()) + flow_;
        if (depth > best_.depth) best_ = {depth, Pos{line_no_, col + 1}};
    }

    void pop_above(int col) {
        while (!stack_.empty() && stack_.back().col > col)
            stack_.pop_back();
    }

    void open_seq(int col) {
        pop_above(col);
        if (!stack_.empty() && stack_.back().col == col && stack_.back().seq) return;
        // A "- " at its parent key's column still nests one level deeper.
        stack_.push_back({col, true});
        note(col);
    }

    void open_map(int col) {
        pop_above(col);
        // A key at the column of a sequence written under its parent key ends that sequence.
        if (!stack_.empty() && stack_.back().col == col && stack_.back().seq) stack_.pop_back();
        if (!stack_.empty() && stack_.back().col == col) return;
        stack_.push_back({col, false});
        note(col);
    }

    static int indentation(std::string_view line) {
        int n = 0;
        while (static_cast<std::size_t>(n) < line.size() && line[n] == ' ')
            ++n;
        return n;
    }

    static bool blank(std::string_view line) {
        for (char c : line)
            if (!is_space(c)) return false;
        return true;
    }

    void scan_line(std::string_view line) {
        if (block_scalar_ && skip_block_scalar_line(line)) return;
        if (quote_ != 0 || flow_ > 0) {
            // Inside a multi-line quoted scalar or flow collection indentation means nothing.
            scan_inline(line, 0, -1);
            if (flow_ == 0 && quote_ == 0) plain_open_ = in_plain_;
            return;
        }
        int ind = indentation(line);
        std::string_view rest = line.substr(ind);
        while (!rest.empty() && is_space(rest.front()))
            rest.remove_prefix(1);
        if (rest.empty()) return;
        if (rest.front() == '#') {
            plain_open_ = false;  // a comment line ends a plain scalar
            return;
        }
        if (ind == 0 && (line.starts_with("---") || line.starts_with("...")) &&
            (line.size() == 3 || is_space(line[3]))) {
            stack_.clear();
            plain_open_ = false;
            if (line[0] == '.') return;
            int c = 3;
            while (static_cast<std::size_t>(c) < line.size() && is_space(line[c]))
                ++c;
            if (static_cast<std::size_t>(c) < line.size()) block_content(line, c);
            return;
        }
        if (ind == 0 && line[0] == '%') return;  // a directive
        if (plain_open_ && ind > top_col()) {
            // A continuation line of a plain scalar: quotes and brackets here are text.
            token_start_ = false;
            in_plain_ = true;
            scan_inline(line, ind, -1);
            plain_open_ = flow_ == 0 && quote_ == 0 && in_plain_;
            return;
        }
        block_content(line, ind);
    }

    // Returns true while `line` belongs to the body of a block scalar.
    bool skip_block_scalar_line(std::string_view line) {
        if (blank(line)) return true;
        int ind = indentation(line);
        if (block_indent_ < 0 && ind > block_parent_) block_indent_ = ind;
        if (block_indent_ >= 0 && ind >= block_indent_) return true;
        block_scalar_ = false;
        return false;
    }

    // A block-context line from column `c`: "- " and "? " indicators, then a key or a value.
    void block_content(std::string_view line, int c) {
        const int n = static_cast<int>(line.size());
        pop_above(c);
        while (c < n && (line[c] == '-' || line[c] == '?' || line[c] == ':') &&
               (c + 1 == n || is_space(line[c + 1]))) {
            if (line[c] == '-')
                open_seq(c);
            else
                open_map(c);
            if (done()) return;
            ++c;
            while (c < n && is_space(line[c]))
                ++c;
            if (c == n || line[c] == '#') {
                plain_open_ = false;
                return;
            }
        }
        token_start_ = true;
        in_plain_ = false;
        scan_inline(line, c, c);
        plain_open_ = flow_ == 0 && quote_ == 0 && in_plain_;
    }

    // Scans from `from` to the end of the line. `key_col` is the column where a block mapping
    // key would start, or -1 when this line cannot open one.
    void scan_inline(std::string_view line, int from, int key_col) {
        const int n = static_cast<int>(line.size());
        bool prev_blank = true;  // the line break before counts as blank for '#'
        for (int i = from; i < n && !done(); ++i) {
            const char ch = line[i];
            const bool blank_before = prev_blank;
            prev_blank = is_space(ch);
            if (quote_ == '\'') {
                if (ch == '\'') {
                    if (i + 1 < n && line[i + 1] == '\'') {
                        ++i;
                    } else {
                        quote_ = 0;
                    }
                }
                continue;
            }
            if (quote_ == '"') {
                if (ch == '\\') {
                    ++i;
                } else if (ch == '"') {
                    quote_ = 0;
                }
                continue;
            }
            if (prev_blank) continue;
            if (ch == '#' && blank_before) {
                in_plain_ = false;  // a comment ends a plain scalar
                return;
            }
            const bool flow = flow_ > 0;
            const char next = i + 1 < n ? line[i + 1] : ' ';
            if (ch == ':' &&
                (is_space(next) || (flow && (is_flow_indicator(next) || !in_plain_)))) {
                if (!flow && key_col >= 0) {
                    open_map(key_col);
                    key_col = -1;
                }
                token_start_ = true;
                in_plain_ = false;
                continue;
            }
            if (flow) {
                if (ch == '[' || ch == '{') {
                    ++flow_;
                    note(i);
                    token_start_ = true;
                    in_plain_ = false;
                    continue;
                }
                if (ch == ']' || ch == '}') {
                    --flow_;
                    token_start_ = false;
                    in_plain_ = false;
                    continue;
                }
                if (ch == ',') {
                    token_start_ = true;
                    in_plain_ = false;
                    continue;
                }
            }
            if (!token_start_) continue;  // the middle of a plain scalar
            if (ch == '\'' || ch == '"') {
                quote_ = ch;
                token_start_ = false;
                in_plain_ = false;
            } else if (!flow && (ch == '[' || ch == '{')) {
                ++flow_;
                note(i);
            } else if (!flow && (ch == '|' || ch == '>')) {
                start_block_scalar(line.substr(i + 1));
                return;
            } else if (ch == '&' || ch == '!' || ch == '*') {
                // An anchor or tag is followed by the node it names; an alias is the node.
                while (i + 1 < n && !is_space(line[i + 1]) &&
                       !(flow && is_flow_indicator(line[i + 1])))
                    ++i;
                if (ch == '*') token_start_ = false;
            } else {
                in_plain_ = true;
                token_start_ = false;
            }
        }
    }

    void start_block_scalar(std::string_view header) {
        block_scalar_ = true;
        block_parent_ = top_col();
        block_indent_ = -1;
        for (char c : header) {
            if (c >= '1' && c <= '9') {
                block_indent_ = (block_parent_ < 0 ? 0 : block_parent_) + (c - '0');
                break;
            }
            if (c != '+' && c != '-') break;
        }
        token_start_ = false;
        in_plain_ = false;
    }
};

}  // namespace

DepthEstimate estimate_depth(std::string_view text, int limit) {
    return DepthScanner(text, limit).run();
}

std::string too_big_message() {
    return "larger than " + std::to_string(kMaxConfigBytes) +
           " bytes (1 MiB), the most a config may be";
}

std::optional<PrescanIssue> prescan(std::string_view text) {
    if (text.size() > kMaxConfigBytes) {
        return PrescanIssue{{}, too_big_message()};
    }
    if (auto nul = text.find('\0'); nul != std::string_view::npos) {
        std::string_view before = text.substr(0, nul);
        int line = 1;
        for (char c : before)
            line += c == '\n';
        auto line_start = before.rfind('\n');
        int column =
            static_cast<int>(nul - (line_start == std::string_view::npos ? 0 : line_start + 1) + 1);
        return PrescanIssue{{line, column}, "NUL byte in the file; a config must be UTF-8 text"};
    }
    DepthEstimate d = estimate_depth(text, kMaxConfigDepth);
    if (d.depth > kMaxConfigDepth) {
        return PrescanIssue{
            d.where, "nesting is deeper than " + std::to_string(kMaxConfigDepth) + " levels"};
    }
    return std::nullopt;
}

}  // namespace cow::config::detail
