// load_file / load_text: bounds, then YAML, then the schema, then checks across pools.
#include <cerrno>
#include <cstdint>
#include <filesystem>
#include <system_error>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.hpp"
#include "config/diagnostics.hpp"
#include "config/fields.hpp"
#include "config/prescan.hpp"
#include "config/sections.hpp"
#include "config/yaml_tree.hpp"
#include "core/names.hpp"
#include "core/paths.hpp"

namespace cow::config {
namespace {

using detail::Diagnostics;
using detail::Field;
using detail::FieldReader;
using detail::Node;
using detail::Pos;

bool all_digits(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s)
        if (c < '0' || c > '9') return false;
    return true;
}

// valid_name() is the contract (design §3.8); these are the names it lets through that would
// still be ambiguous or unsafe once used on the command line or in file names.
std::optional<std::string> pool_name_problem(std::string_view name) {
    if (!valid_name(name)) {
        return "invalid pool name " + detail::quote(name) +
               ": use 1 to 64 characters from A-Z, a-z, 0-9, \"_\", \".\" and \"-\"";
    }
    if (name == "all") return std::string("\"all\" is reserved: cowctl uses it for every pool");
    if (name.front() == '-') {
        return "pool name " + detail::quote(name) +
               " starts with \"-\", which cowctl would read as an option";
    }
    if (name.find_first_not_of('.') == std::string_view::npos)
        return "pool name " + detail::quote(name) + " is only dots";
    auto dot = name.rfind('.');
    if (dot != std::string_view::npos && all_digits(name.substr(dot + 1))) {
        std::string msg = "pool name " + detail::quote(name) + " ends in \".<digits>\"";
        if (dot > 0) {
            msg += ", so it would read as worker " + std::string(name.substr(dot + 1)) +
                   " of pool " + detail::quote(name.substr(0, dot));
        }
        return msg + " (worker names are POOL.N)";
    }
    return std::nullopt;
}

void read_pools(Diagnostics& diag, const Field& f, const std::string& base_dir,
                std::vector<detail::PoolEntry>& slots) {
    bool too_many = false;
    bool any = false;
    bool is_map = detail::for_each_entry(
        diag, f, "a mapping of pool names to pool settings",
        [&](const std::string& name, Pos key_pos, const Field& v) {
            any = true;
            if (slots.size() >= static_cast<std::size_t>(kMaxPools)) {
                if (!too_many) {
                    diag.error(
                        key_pos, v.path,
                        "too many pools; at most " + std::to_string(kMaxPools) + " are allowed");
                }
                too_many = true;
                return;
            }
            if (detail::is_pool_key(name) && !v.node.is_mapping() && !v.node.is_null()) {
                // `pools: {command: ...}`: the pool name was left out.
                diag.error(key_pos, v.path,
                           detail::quote(name) +
                               " is a pool setting, but the keys of \"pools\" are pool names: "
                               "write pools: {NAME: {" +
                               name + ": ...}}");
                return;
            }
            if (auto problem = pool_name_problem(name)) diag.error(key_pos, v.path, *problem);
            detail::PoolEntry& slot = slots.emplace_back();
            slot.pool.name = name;
            detail::read_pool(diag, v, base_dir, slot.pool, slot.deps);
        });
    if (is_map && !any) diag.error(f.pos, f.path, "no pools defined; at least one is required");
}

void read_config(Diagnostics& diag, const Node& root, const std::string& base_dir, Config& cfg) {
    if (root.is_null()) {
        diag.error(root.pos, "", "the config is empty; it needs at least a \"pools\" mapping");
        return;
    }
    std::vector<detail::PoolEntry> slots;
    bool have_pools = false;
    const FieldReader readers[] = {
        {"daemon", [&](const Field& v) { detail::read_daemon(diag, v, base_dir, cfg.daemon); }},
        {"pools",
         [&](const Field& v) {
             have_pools = true;
             read_pools(diag, v, base_dir, slots);
         }},
    };
    auto misplaced = [](std::string_view key) -> std::string {
        if (detail::is_daemon_key(key)) return "; it belongs under \"daemon:\"";
        if (detail::is_pool_key(key)) return "; pool settings belong under \"pools: NAME:\"";
        return "";
    };
    Field top{root, root.pos, ""};
    if (!detail::read_fields(diag, top, "a mapping with \"daemon\" and \"pools\"", readers, {},
                             misplaced))
        return;
    if (!have_pools) diag.error(root.pos, "pools", "missing required key");
    detail::check_dependencies(diag, slots);
    cfg.pools.reserve(slots.size());
    for (auto& s : slots)
        cfg.pools.push_back(std::move(s.pool));
}

LoadResult failed(Diagnostics& diag) {
    LoadResult r;
    r.errors = diag.take();
    return r;
}

LoadResult load(std::string_view text, Diagnostics& diag, const std::string& base_dir,
                std::string source_path) {
    if (auto issue = detail::prescan(text)) {
        diag.error(issue->pos, "", std::move(issue->message));
        return failed(diag);
    }
    detail::NodePtr root = detail::parse_yaml(text, diag);
    if (!root) return failed(diag);
    auto cfg = std::make_shared<Config>();
    cfg->source_path = std::move(source_path);
    cfg->source_text = std::string(text);
    cfg->daemon.socket = default_socket_path();
    read_config(diag, *root, base_dir, *cfg);
    if (diag.has_errors()) return failed(diag);
    LoadResult r;
    r.config = std::move(cfg);
    return r;
}

// Reads at most one byte past the limit, so /dev/zero or a huge file cannot exhaust memory.
bool read_capped(const std::string& path, std::string& out, Diagnostics& diag) {
    auto fail = [&](std::string what, int err) {
        diag.error({}, "", what + ": " + std::error_code(err, std::generic_category()).message());
        return false;
    };
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) return fail("cannot open", errno);
    struct stat st {};
    if (::fstat(fd, &st) == 0) {
        if (S_ISDIR(st.st_mode)) {
            ::close(fd);
            diag.error({}, "", "is a directory, not a config file");
            return false;
        }
        if (S_ISREG(st.st_mode) && static_cast<std::uintmax_t>(st.st_size) > kMaxConfigBytes) {
            ::close(fd);
            diag.error({}, "", detail::too_big_message());
            return false;
        }
    }
    out.clear();
    char buf[65536];
    while (out.size() <= kMaxConfigBytes) {
        ssize_t got = ::read(fd, buf, sizeof buf);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            int err = errno;
            ::close(fd);
            return fail("cannot read", err);
        }
        if (got == 0) break;
        out.append(buf, static_cast<std::size_t>(got));
    }
    ::close(fd);
    return true;  // an oversized read is reported by the prescan, with the same message
}

std::string absolute_dir(const std::string& dir) {
    std::error_code ec;
    auto abs = std::filesystem::absolute(dir.empty() ? std::string(".") : dir, ec);
    if (ec) return std::filesystem::path(dir).is_absolute() ? dir : std::string();
    std::string out = abs.lexically_normal().string();
    while (out.size() > 1 && out.back() == '/')
        out.pop_back();
    return out;
}

}  // namespace

LoadResult load_text(std::string_view text, const std::string& filename,
                     const std::string& base_dir) {
    Diagnostics diag(filename.empty() ? "<config>" : filename);
    return load(text, diag, absolute_dir(base_dir), "");
}

LoadResult load_as_file(std::string_view text, const std::string& path) {
    Diagnostics diag(path);
    std::error_code ec;
    auto abs = std::filesystem::absolute(path, ec);
    if (ec) return load(text, diag, "", path);
    abs = abs.lexically_normal();
    return load(text, diag, abs.parent_path().string(), abs.string());
}

LoadResult load_file(const std::string& path) {
    Diagnostics diag(path);
    std::string text;
    if (!read_capped(path, text, diag)) return failed(diag);
    std::error_code ec;
    auto abs = std::filesystem::absolute(path, ec);
    if (ec) return load(text, diag, "", path);
    abs = abs.lexically_normal();
    return load(text, diag, abs.parent_path().string(), abs.string());
}

}  // namespace cow::config
