#include "config/fields.hpp"

#include <filesystem>
#include <unordered_map>
#include <vector>

#include "config/suggest.hpp"
#include "core/signal_names.hpp"

namespace cow::config::detail {
namespace {

constexpr std::string_view kDurationExample = "a duration like 100ms, 10s, 5m";

// Signal names offered in "did you mean"; parse_signal itself knows them all.
constexpr std::string_view kCommonSignals[] = {"TERM", "INT",  "HUP",   "QUIT", "KILL",
                                               "USR1", "USR2", "WINCH", "CONT", "STOP",
                                               "ABRT", "ALRM", "PWR"};

bool all_digits(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s)
        if (c < '0' || c > '9') return false;
    return true;
}

std::string join_choices(std::span<const std::string_view> choices) {
    std::string out;
    for (std::size_t i = 0; i < choices.size(); ++i) {
        if (i > 0) out += i + 1 == choices.size() ? " or " : ", ";
        out += choices[i];
    }
    return out;
}

}  // namespace

std::string describe(const Node& node) {
    switch (node.kind) {
        case Node::Kind::null:
            return node.text.empty() ? "nothing" : "null";
        case Node::Kind::scalar:
            return quote(node.text);
        case Node::Kind::sequence:
            return "a list";
        case Node::Kind::mapping:
            return "a mapping";
    }
    return "?";
}

void report_expected(Diagnostics& diag, const Field& f, std::string_view what,
                     std::string_view suffix) {
    std::string msg = "expected ";
    msg += what;
    msg += ", got ";
    msg += describe(f.node);
    msg += suffix;
    diag.error(f.pos, f.path, std::move(msg));
}

std::optional<std::string> read_string(Diagnostics& diag, const Field& f, std::string_view what) {
    if (!f.node.is_scalar()) {
        report_expected(diag, f, what);
        return std::nullopt;
    }
    return f.node.text;
}

std::optional<long long> read_int(Diagnostics& diag, const Field& f, long long lo, long long hi) {
    std::string what = "an integer in " + std::to_string(lo) + ".." + std::to_string(hi);
    if (f.node.is_scalar()) {
        std::string_view t = f.node.text;
        bool negative = !t.empty() && t.front() == '-';
        if (!t.empty() && (t.front() == '-' || t.front() == '+')) t.remove_prefix(1);
        // 18 digits cannot overflow a long long; anything longer is out of range anyway.
        if (all_digits(t) && t.size() <= 18) {
            long long v = 0;
            for (char c : t)
                v = v * 10 + (c - '0');
            if (negative) v = -v;
            if (v >= lo && v <= hi) return v;
        }
    }
    report_expected(diag, f, what);
    return std::nullopt;
}

std::optional<bool> read_bool(Diagnostics& diag, const Field& f) {
    if (f.node.is_scalar()) {
        static constexpr std::string_view kTrue[] = {"true", "True", "TRUE", "yes", "Yes",
                                                     "YES",  "on",   "On",   "ON"};
        static constexpr std::string_view kFalse[] = {"false", "False", "FALSE", "no", "No",
                                                      "NO",    "off",   "Off",   "OFF"};
        for (auto w : kTrue)
            if (f.node.text == w) return true;
        for (auto w : kFalse)
            if (f.node.text == w) return false;
    }
    report_expected(diag, f, "true or false");
    return std::nullopt;
}

std::optional<Millis> read_duration(Diagnostics& diag, const Field& f, bool positive) {
    if (f.node.is_scalar()) {
        if (auto d = parse_duration(f.node.text)) {
            if (!positive || d->count() > 0) return *d;
            report_expected(diag, f, "a duration greater than 0");
            return std::nullopt;
        }
        if (all_digits(f.node.text)) {
            report_expected(diag, f, kDurationExample, " (a unit is required)");
            return std::nullopt;
        }
    }
    report_expected(diag, f, kDurationExample);
    return std::nullopt;
}

std::optional<std::uint64_t> read_size(Diagnostics& diag, const Field& f, bool positive) {
    if (f.node.is_scalar()) {
        if (auto n = parse_size(f.node.text)) {
            if (!positive || *n > 0) return *n;
            report_expected(diag, f, "a size greater than 0");
            return std::nullopt;
        }
    }
    report_expected(diag, f, "a size like 512MiB, 2GiB or 100MB");
    return std::nullopt;
}

std::optional<int> read_signal(Diagnostics& diag, const Field& f) {
    if (f.node.is_scalar()) {
        if (auto s = parse_signal(f.node.text)) return *s;
        std::string_view name = f.node.text;
        if (name.size() > 3 && (name.starts_with("SIG") || name.starts_with("sig")))
            name.remove_prefix(3);
        report_expected(diag, f, "a signal name like TERM, SIGINT or 15",
                        did_you_mean(name, kCommonSignals));
        return std::nullopt;
    }
    report_expected(diag, f, "a signal name like TERM, SIGINT or 15");
    return std::nullopt;
}

std::optional<mode_t> read_mode(Diagnostics& diag, const Field& f) {
    constexpr std::string_view what = "an octal permission mode like \"0600\"";
    if (f.node.is_scalar()) {
        std::string_view t = f.node.text;
        if (t.starts_with("0o")) t.remove_prefix(2);  // YAML 1.2 octal
        bool octal = !t.empty() && t.size() <= 8;
        mode_t mode = 0;
        for (char c : t) {
            if (c < '0' || c > '7') octal = false;
            mode = mode * 8 + static_cast<mode_t>(c - '0');
        }
        if (octal && mode <= 0777) return mode;
        if (octal) {
            report_expected(diag, f, std::string(what) + " with no bits beyond 0777");
            return std::nullopt;
        }
    }
    report_expected(diag, f, what);
    return std::nullopt;
}

std::optional<std::size_t> read_choice(Diagnostics& diag, const Field& f,
                                       std::span<const std::string_view> choices) {
    std::string what = "one of " + join_choices(choices);
    if (!f.node.is_scalar()) {
        report_expected(diag, f, what);
        return std::nullopt;
    }
    for (std::size_t i = 0; i < choices.size(); ++i)
        if (f.node.text == choices[i]) return i;
    report_expected(diag, f, what, did_you_mean(f.node.text, choices));
    return std::nullopt;
}

std::optional<std::string> read_path(Diagnostics& diag, const Field& f,
                                     const std::string& base_dir) {
    auto text = read_string(diag, f, "a path");
    if (!text) return std::nullopt;
    if (text->empty()) {
        report_expected(diag, f, "a non-empty path");
        return std::nullopt;
    }
    if (text->find('\0') != std::string::npos) {
        diag.error(f.pos, f.path, "path contains a NUL character");
        return std::nullopt;
    }
    if (text->front() == '~') {
        diag.error(f.pos, f.path,
                   "\"~\" is not expanded (no shell reads this); write the path in full");
        return std::nullopt;
    }
    std::filesystem::path p(*text);
    if (p.is_relative()) {
        if (base_dir.empty()) {
            diag.error(f.pos, f.path,
                       "relative path, but there is no directory to resolve it against");
            return std::nullopt;
        }
        p = std::filesystem::path(base_dir) / p;
    }
    std::string out = p.lexically_normal().string();
    while (out.size() > 1 && out.back() == '/')
        out.pop_back();
    return out;
}

bool for_each_entry(Diagnostics& diag, const Field& f, std::string_view what,
                    const EntryVisitor& visit) {
    if (f.node.is_null()) return true;
    if (!f.node.is_mapping()) {
        report_expected(diag, f, what);
        return false;
    }
    std::unordered_map<std::string_view, Pos> seen;
    for (const auto& [key, value] : f.node.entries) {
        if (!key->is_scalar()) {
            Field kf{*key, key->pos, f.path};
            report_expected(diag, kf, "a string key");
            continue;
        }
        std::string path = join_path(f.path, key->text);
        auto [it, fresh] = seen.emplace(key->text, key->pos);
        if (!fresh) {
            diag.error(key->pos, path,
                       "duplicate key (first set at line " + std::to_string(it->second.line) + ")");
            continue;
        }
        Pos pos = value->is_null() && value->text.empty() ? key->pos : value->pos;
        visit(key->text, key->pos, Field{*value, pos, std::move(path)});
    }
    return true;
}

bool for_each_item(Diagnostics& diag, const Field& f, std::string_view what,
                   const ItemVisitor& visit) {
    if (!f.node.is_sequence()) {
        report_expected(diag, f, what);
        return false;
    }
    for (std::size_t i = 0; i < f.node.items.size(); ++i) {
        const Node& item = *f.node.items[i];
        visit(i, Field{item, item.pos, f.path + "[" + std::to_string(i) + "]"});
    }
    return true;
}

bool read_fields(Diagnostics& diag, const Field& f, std::string_view what,
                 std::span<const FieldReader> readers, std::span<const std::string_view> planned,
                 const UnknownKeyHint& hint) {
    std::vector<std::string_view> keys;
    keys.reserve(readers.size());
    for (const auto& r : readers)
        keys.push_back(r.key);
    return for_each_entry(diag, f, what, [&](const std::string& key, Pos key_pos, const Field& v) {
        for (const auto& r : readers) {
            if (r.key == key) {
                r.read(v);
                return;
            }
        }
        for (auto p : planned) {
            if (p == key) {
                diag.error(key_pos, v.path, "not supported by this version of cowherd");
                return;
            }
        }
        std::string msg = "unknown key";
        std::string extra = hint ? hint(key) : std::string();
        if (!extra.empty()) {
            msg += extra;
        } else if (key == "<<") {
            msg += "; YAML merge keys (<<) are not supported";
        } else {
            msg += did_you_mean(key, keys);
        }
        diag.error(key_pos, v.path, std::move(msg));
    });
}

}  // namespace cow::config::detail
