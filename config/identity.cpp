#include "config/identity.hpp"

#include <algorithm>
#include <array>

#include <grp.h>
#include <pwd.h>
#include <sys/resource.h>
#include <unistd.h>

namespace cow::config::detail {
namespace {

struct Lim {
    std::string_view name;
    int resource;
    bool bytes;  // sizes like 512MiB make sense
};
constexpr std::array<Lim, 16> kLimits{{
    {"as", RLIMIT_AS, true},
    {"core", RLIMIT_CORE, true},
    {"cpu", RLIMIT_CPU, false},
    {"data", RLIMIT_DATA, true},
    {"fsize", RLIMIT_FSIZE, true},
    {"locks", RLIMIT_LOCKS, false},
    {"memlock", RLIMIT_MEMLOCK, true},
    {"msgqueue", RLIMIT_MSGQUEUE, true},
    {"nice", RLIMIT_NICE, false},
    {"nofile", RLIMIT_NOFILE, false},
    {"nproc", RLIMIT_NPROC, false},
    {"rss", RLIMIT_RSS, true},
    {"rtprio", RLIMIT_RTPRIO, false},
    {"rttime", RLIMIT_RTTIME, false},
    {"sigpending", RLIMIT_SIGPENDING, false},
    {"stack", RLIMIT_STACK, true},
}};

bool all_digits(std::string_view s) {
    return !s.empty() && s.size() < 10 &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::optional<gid_t> resolve_group(const std::string& name) {
    if (all_digits(name)) return static_cast<gid_t>(std::stoul(name));
    group g{}, *res = nullptr;
    std::vector<char> buf(16384);
    if (getgrnam_r(name.c_str(), &g, buf.data(), buf.size(), &res) != 0 || !res)
        return std::nullopt;
    return g.gr_gid;
}

std::optional<std::uint64_t> limit_value(Diagnostics& diag, const Field& v, bool bytes) {
    if (v.node.is_scalar() && (v.node.text == "unlimited" || v.node.text == "infinity"))
        return RLIM_INFINITY;
    if (bytes) return read_size(diag, v, false);
    auto n = read_int(diag, v, 0, (1LL << 62));
    if (!n) return std::nullopt;
    return static_cast<std::uint64_t>(*n);
}

}  // namespace

void read_user(Diagnostics& diag, const Field& f, Identity& id) {
    auto name = read_string(diag, f, "a user name or uid");
    if (!name) return;
    passwd pw{}, *res = nullptr;
    std::vector<char> buf(16384);
    int rc = all_digits(*name) ? getpwuid_r(static_cast<uid_t>(std::stoul(*name)), &pw, buf.data(),
                                            buf.size(), &res)
                               : getpwnam_r(name->c_str(), &pw, buf.data(), buf.size(), &res);
    id.set = true;
    id.user = *name;
    if (rc != 0 || !res) {
        if (all_digits(*name)) {
            id.uid = static_cast<uid_t>(std::stoul(*name));  // a bare uid needs `group`
            id.user = *name;
            return;
        }
        diag.error(f.pos, f.path, "no user named " + quote(*name) + " on this system");
        return;
    }
    id.uid = pw.pw_uid;
    if (id.group.empty()) id.gid = pw.pw_gid;  // an explicit `group` wins, in either order
    id.user = pw.pw_name;
    id.home = pw.pw_dir ? pw.pw_dir : "";
    id.shell = pw.pw_shell ? pw.pw_shell : "";
}

void read_group(Diagnostics& diag, const Field& f, Identity& id) {
    auto name = read_string(diag, f, "a group name or gid");
    if (!name) return;
    auto gid = resolve_group(*name);
    if (!gid) {
        diag.error(f.pos, f.path, "no group named " + quote(*name) + " on this system");
        return;
    }
    id.set = true;
    id.group = *name;
    id.gid = *gid;
}

void read_supplementary(Diagnostics& diag, const Field& f, Identity& id) {
    id.groups.clear();
    for_each_item(diag, f, "a list of groups", [&](std::size_t, const Field& item) {
        auto name = read_string(diag, item, "a group name or gid");
        if (!name) return;
        if (auto gid = resolve_group(*name))
            id.groups.push_back(*gid);
        else
            diag.error(item.pos, item.path, "no group named " + quote(*name) + " on this system");
    });
}

void read_rlimits(Diagnostics& diag, const Field& f, std::vector<Rlimit>& out) {
    for_each_entry(
        diag, f, "a mapping like {nofile: 65536, core: 0}",
        [&](const std::string& key, Pos key_pos, const Field& v) {
            auto it = std::find_if(kLimits.begin(), kLimits.end(),
                                   [&](const Lim& l) { return l.name == key; });
            if (it == kLimits.end()) {
                std::string known;
                for (const auto& l : kLimits)
                    known += (known.empty() ? "" : ", ") + std::string(l.name);
                diag.error(key_pos, v.path, "unknown limit " + quote(key) + "; known: " + known);
                return;
            }
            Rlimit r;
            r.resource = it->resource;
            r.name = key;
            if (v.node.is_scalar()) {
                auto n = limit_value(diag, v, it->bytes);
                if (!n) return;
                r.soft = r.hard = *n;
            } else {
                bool have_soft = false, have_hard = false;
                const FieldReader readers[] = {
                    {"soft",
                     [&](const Field& x) {
                         if (auto n = limit_value(diag, x, it->bytes))
                             r.soft = *n, have_soft = true;
                     }},
                    {"hard",
                     [&](const Field& x) {
                         if (auto n = limit_value(diag, x, it->bytes))
                             r.hard = *n, have_hard = true;
                     }},
                };
                if (!read_fields(diag, v, "a value, or {soft: N, hard: N}", readers)) return;
                if (!have_soft || !have_hard) {
                    diag.error(v.pos, v.path, "give both soft and hard, or a single value");
                    return;
                }
                if (r.soft > r.hard) {
                    diag.error(v.pos, v.path, "soft is above hard");
                    return;
                }
            }
            out.push_back(std::move(r));
        });
}

void finish_identity(Diagnostics& diag, const Field& pool, Identity& id, bool explicit_groups,
                     Pos groups_pos) {
    if (!id.set) {
        if (explicit_groups)
            diag.error(groups_pos, join_path(pool.path, "supplementary_groups"),
                       "needs user or group");
        return;
    }
    if (id.user.empty()) {
        // Only a group: keep our uid, switch the group.
        id.uid = geteuid();
    } else if (id.group.empty() && id.home.empty() && id.shell.empty() && all_digits(id.user)) {
        // A bare uid with no passwd entry has no primary group to take: gid 0 would be root's.
        passwd pw{}, *res = nullptr;
        std::vector<char> buf(16384);
        if (getpwuid_r(id.uid, &pw, buf.data(), buf.size(), &res) != 0 || !res) {
            diag.error(pool.pos, join_path(pool.path, "user"),
                       "uid " + id.user + " has no passwd entry, so it has no primary group: " +
                           "set \"group\" too");
            return;
        }
    }
    if (!explicit_groups) {
        // initgroups semantics: the user's groups from /etc/group (never root's own).
        if (!id.user.empty() && !all_digits(id.user)) {
            int n = 64;
            std::vector<gid_t> gs(static_cast<std::size_t>(n));
            if (getgrouplist(id.user.c_str(), id.gid, gs.data(), &n) < 0) {
                gs.resize(static_cast<std::size_t>(n));
                getgrouplist(id.user.c_str(), id.gid, gs.data(), &n);
            }
            gs.resize(static_cast<std::size_t>(n));
            id.groups = gs;
        } else {
            id.groups = {id.gid};
        }
    }
    // Even "switching" to our own ids calls setgroups, which needs root: refuse it here rather
    // than fail every start.
    if (geteuid() != 0) {
        diag.error(pool.pos, join_path(pool.path, id.user.empty() ? "group" : "user"),
                   "running a pool as a user or group needs cowherd to run as root (it runs "
                   "as uid " +
                       std::to_string(geteuid()) + ")");
    }
}

}  // namespace cow::config::detail
