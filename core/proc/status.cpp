#include "core/proc/status.hpp"

#include <limits>

#include "core/proc/text.hpp"

namespace cow::proc {
namespace {

std::optional<std::array<std::uint32_t, 4>> four_ids(std::optional<std::string_view> value) {
    if (!value) return std::nullopt;
    std::string_view rest = *value;
    std::array<std::uint32_t, 4> ids{};
    for (auto& id : ids) {
        auto n = text::to_number<std::uint32_t>(text::next_token(rest));
        if (!n) return std::nullopt;
        id = *n;
    }
    return ids;
}

}  // namespace

std::optional<std::uint64_t> parse_kb(std::string_view value) {
    std::string_view rest = value;
    auto n = text::to_number<std::uint64_t>(text::next_token(rest));
    if (!n || text::next_token(rest) != "kB" || !text::trim(rest).empty()) return std::nullopt;
    if (*n > std::numeric_limits<std::uint64_t>::max() / 1024) return std::nullopt;
    return *n * 1024;
}

Status parse_status(std::string_view content) {
    Status st;
    while (!content.empty()) {
        std::string_view line = text::next_line(content);
        auto colon = line.find(':');
        if (colon == std::string_view::npos || colon == 0) continue;
        std::string_view value = line.substr(colon + 1);
        if (!value.empty() && value.front() == '\t') value.remove_prefix(1);
        st.fields.emplace_back(std::string(line.substr(0, colon)), std::string(value));
    }
    return st;
}

std::optional<std::string_view> Status::get(std::string_view key) const {
    for (const auto& [k, v] : fields) {
        if (k == key) return std::string_view(v);
    }
    return std::nullopt;
}

std::optional<std::uint64_t> Status::bytes(std::string_view key) const {
    auto v = get(key);
    return v ? parse_kb(*v) : std::nullopt;
}

std::optional<std::uint64_t> Status::number(std::string_view key) const {
    auto v = get(key);
    return v ? text::to_number<std::uint64_t>(text::trim(*v)) : std::nullopt;
}

std::optional<char> Status::state() const {
    auto v = get("State");
    if (!v) return std::nullopt;
    auto t = text::trim(*v);
    if (t.empty()) return std::nullopt;
    return t.front();
}

std::optional<pid_t> Status::ppid() const {
    auto v = get("PPid");
    return v ? text::to_number<pid_t>(text::trim(*v)) : std::nullopt;
}

std::optional<std::array<std::uint32_t, 4>> Status::uid() const {
    return four_ids(get("Uid"));
}
std::optional<std::array<std::uint32_t, 4>> Status::gid() const {
    return four_ids(get("Gid"));
}

std::optional<std::vector<std::uint32_t>> Status::groups() const {
    auto v = get("Groups");
    if (!v) return std::nullopt;
    std::vector<std::uint32_t> out;
    std::string_view rest = *v;
    for (auto tok = text::next_token(rest); !tok.empty(); tok = text::next_token(rest)) {
        auto n = text::to_number<std::uint32_t>(tok);
        if (!n) return std::nullopt;
        out.push_back(*n);
    }
    return out;
}

std::optional<bool> Status::no_new_privs() const {
    auto n = number("NoNewPrivs");
    if (!n || *n > 1) return std::nullopt;
    return *n == 1;
}

std::optional<std::uint64_t> Status::cap_eff() const {
    auto v = get("CapEff");
    return v ? text::to_number<std::uint64_t>(text::trim(*v), 16) : std::nullopt;
}

}  // namespace cow::proc
