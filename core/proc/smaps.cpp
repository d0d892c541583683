#include "core/proc/smaps.hpp"

#include <algorithm>
#include <cctype>

#include "core/proc/status.hpp"
#include "core/proc/text.hpp"

namespace cow::proc {
namespace {

constexpr std::string_view kDeleted = " (deleted)";

bool valid_perms(std::string_view p) {
    return p.size() == 4 && (p[0] == 'r' || p[0] == '-') && (p[1] == 'w' || p[1] == '-') &&
           (p[2] == 'x' || p[2] == '-') && (p[3] == 'p' || p[3] == 's');
}

bool valid_dev(std::string_view d) {
    auto colon = d.find(':');
    if (colon == std::string_view::npos) return false;
    return text::to_number<std::uint32_t>(d.substr(0, colon), 16) &&
           text::to_number<std::uint32_t>(d.substr(colon + 1), 16);
}

// "start-end perms offset dev inode [pathname]", all fields strict, so that no field line can
// be mistaken for a header whatever its name.
std::optional<Mapping> parse_header(std::string_view line) {
    std::string_view rest = line;
    std::string_view range = text::next_token(rest);
    auto dash = range.find('-');
    if (dash == std::string_view::npos) return std::nullopt;
    auto start = text::to_number<std::uint64_t>(range.substr(0, dash), 16);
    auto end = text::to_number<std::uint64_t>(range.substr(dash + 1), 16);
    if (!start || !end || *start > *end) return std::nullopt;

    std::string_view perms = text::next_token(rest);
    auto offset = text::to_number<std::uint64_t>(text::next_token(rest), 16);
    std::string_view dev = text::next_token(rest);
    auto inode = text::to_number<std::uint64_t>(text::next_token(rest));
    if (!valid_perms(perms) || !offset || !valid_dev(dev) || !inode) return std::nullopt;

    while (!rest.empty() && text::is_blank(rest.front()))
        rest.remove_prefix(1);
    Mapping m;
    m.start = *start;
    m.end = *end;
    m.perms = std::string(perms);
    m.offset = *offset;
    m.dev = std::string(dev);
    m.inode = *inode;
    m.pathname = std::string(rest);
    return m;
}

struct Field {
    std::string_view name;
    std::string_view value;
};

// "Name: value", where Name is [A-Za-z0-9_]+ as every smaps field name so far.
std::optional<Field> parse_field(std::string_view line) {
    auto colon = line.find(':');
    if (colon == 0 || colon == std::string_view::npos) return std::nullopt;
    std::string_view name = line.substr(0, colon);
    for (char c : name) {
        bool ok =
            (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
        if (!ok) return std::nullopt;
    }
    return Field{name, line.substr(colon + 1)};
}

void note_skip(SmapsIssues* issues, std::string_view line) {
    if (!issues) return;
    if (issues->skipped_lines++ == 0) issues->first_skipped = std::string(line.substr(0, 120));
}

bool is_size_field(std::string_view name) {
    if (name == "Size" || name == "KernelPageSize" || name == "MMUPageSize") return true;
    return std::any_of(kMemFields.begin(), kMemFields.end(),
                       [&](const MemField& f) { return f.kernel_name == name; });
}

// False when a field we know to be a size does not read as "N kB" (say, a cut-off last line):
// that is damage to report, not an attribute to keep.
bool apply_field(Mapping& m, const Field& f) {
    if (auto bytes = parse_kb(f.value)) {
        if (f.name == "Size") {
            m.size = *bytes;
        } else if (f.name == "KernelPageSize") {
            m.kernel_page_size = *bytes;
        } else if (f.name == "MMUPageSize") {
            m.mmu_page_size = *bytes;
        } else {
            m.counters.add(f.name, *bytes);
        }
    } else if (is_size_field(f.name)) {
        return false;
    } else if (f.name == "VmFlags") {
        m.vmflags = std::string(text::trim(f.value));
    } else {
        m.attributes.emplace_back(std::string(f.name), std::string(text::trim(f.value)));
    }
    return true;
}

// A line that starts like "7f00-" but is no valid header: a damaged header. The fields after it
// belong to that unknown mapping and must not be credited to the previous one.
bool looks_like_header(std::string_view line) {
    std::size_t n = 0;
    while (n < line.size() && std::isxdigit(static_cast<unsigned char>(line[n])))
        ++n;
    return n > 0 && n < line.size() && line[n] == '-';
}

}  // namespace

bool Mapping::deleted() const {
    return std::string_view(pathname).ends_with(kDeleted);
}

std::string_view Mapping::path() const {
    std::string_view p = pathname;
    if (deleted()) p.remove_suffix(kDeleted.size());
    return p;
}

std::vector<Mapping> parse_smaps(std::string_view content, SmapsIssues* issues) {
    std::vector<Mapping> out;
    bool in_mapping = false;
    while (!content.empty()) {
        std::string_view line = text::next_line(content);
        if (text::trim(line).empty()) continue;
        if (auto header = parse_header(line)) {
            out.push_back(std::move(*header));
            in_mapping = true;
        } else if (auto field = parse_field(line); field && in_mapping) {
            if (!apply_field(out.back(), *field)) note_skip(issues, line);
        } else {
            if (looks_like_header(line)) in_mapping = false;
            note_skip(issues, line);
        }
    }
    return out;
}

std::optional<MemCounters> parse_smaps_rollup(std::string_view content, SmapsIssues* issues) {
    MemCounters c;
    while (!content.empty()) {
        std::string_view line = text::next_line(content);
        if (text::trim(line).empty() || parse_header(line)) continue;
        auto field = parse_field(line);
        auto bytes = field ? parse_kb(field->value) : std::nullopt;
        if (bytes) {
            c.add(field->name, *bytes);
        } else {
            note_skip(issues, line);
        }
    }
    if (!c.has("Rss")) return std::nullopt;
    return c;
}

MemCounters sum(const std::vector<Mapping>& mappings) {
    MemCounters total;
    for (const auto& m : mappings)
        total += m.counters;
    return total;
}

}  // namespace cow::proc
