// The plan `cowherd --check` prints: one line for the daemon, one or two per pool, and
// warnings about commands this host cannot run.
#include "config/summary.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include <sys/stat.h>
#include <unistd.h>

#include "config/diagnostics.hpp"
#include "config/sections.hpp"
#include "core/escape.hpp"
#include "core/signal_names.hpp"

namespace cow::config {
namespace {

using detail::exact_duration;

std::string argv_text(const std::vector<std::string>& argv) {
    std::string out = "[";
    for (std::size_t i = 0; i < argv.size(); ++i) {
        if (i > 0) out += ", ";
        out += detail::quote(argv[i], 0);
    }
    return out + "]";
}

std::string pad(std::string s, std::size_t width) {
    if (s.size() < width) s.append(width - s.size(), ' ');
    return s;
}

// Only what differs from the defaults, so the common case stays on one line.
std::string extras(const PoolConfig& p) {
    std::string out;
    auto add = [&](const std::string& item) {
        if (!out.empty()) out += "  ";
        out += item;
    };
    if (!p.cwd.empty()) add("cwd=" + p.cwd);
    if (!p.env.empty())
        add("env=" + std::to_string(p.env.size()) + (p.env.size() == 1 ? " var" : " vars"));
    if (!p.depends_on.empty()) {
        std::string deps;
        for (const auto& d : p.depends_on)
            deps += (deps.empty() ? "" : ",") + d;
        add("depends_on=" + deps);
    }
    if (p.essential) add("essential");
    if (!p.autostart) add("autostart=false");
    if (p.kill_mode != KillMode::auto_) add("kill_mode=" + std::string(to_string(p.kill_mode)));
    if (p.orphans != OrphanPolicy::kill) add("orphans=" + std::string(to_string(p.orphans)));
    if (p.stop_scope != StopScope::main) add("stop_scope=" + std::string(to_string(p.stop_scope)));
    if (p.backoff != Backoff{})
        add("backoff=" + exact_duration(p.backoff.initial) + ".." + exact_duration(p.backoff.max));
    if (p.max_restarts != MaxRestarts{}) {
        add("max_restarts=" + std::to_string(p.max_restarts.count) + "/" +
            exact_duration(p.max_restarts.within));
    }
    if (p.ready == Ready::notify) add("ready=notify");
    if (p.watchdog.count() > 0) add("watchdog=" + exact_duration(p.watchdog));
    static constexpr const char* kKinds[] = {"http", "tcp", "exec"};
    if (p.readiness) add(std::string("readiness=") + kKinds[static_cast<int>(p.readiness->kind)]);
    if (p.liveness) add(std::string("liveness=") + kKinds[static_cast<int>(p.liveness->kind)]);
    if (!p.on_exit.empty()) add("on_exit");
    if (!p.on_fatal.empty()) add("on_fatal");
    if (p.spawn == SpawnMode::template_) {
        add("spawn=template");
        if (p.template_threads) add("template_threads=allow");
        if (p.template_timeout != PoolConfig{}.template_timeout)
            add("template_timeout=" + exact_duration(p.template_timeout));
    }
    for (const auto& s : p.sockets)
        add("socket " + s.name + "=" + s.listen);
    if (p.memory.max_private)
        add("max_private=" + std::to_string(*p.memory.max_private >> 20) + "MiB/" +
            exact_duration(p.memory.check_every));
    auto sink = [&](const char* name, const OutputSink& s) {
        if (s == OutputSink{}) return;
        std::string v = std::string(name) + "=" + std::string(to_string(s.kind));
        if (s.kind == OutputSink::Kind::file) {
            if (s.per_worker) v += ",per_worker";
            v += ",max " + std::to_string(s.max_size >> 20) + "MiB,keep " + std::to_string(s.keep);
        }
        add(v);
    };
    sink("stdout", p.stdout_sink);
    sink("stderr", p.stderr_sink);
    if (p.backpressure == Backpressure::drop) add("log_backpressure=drop");
    // Who the workers run as: worth seeing before a root daemon starts them.
    const auto& id = p.identity;
    if (id.set) {
        std::string groups;
        for (gid_t g : id.groups)
            groups += (groups.empty() ? "" : ",") + std::to_string(g);
        add("uid=" + std::to_string(id.uid) + (id.user.empty() ? "" : "(" + id.user + ")") +
            " gid=" + std::to_string(id.gid) + (id.group.empty() ? "" : "(" + id.group + ")") +
            " groups=" + (groups.empty() ? "none" : groups));
    }
    if (p.umask) {
        char m[8];
        std::snprintf(m, sizeof m, "%04o", static_cast<unsigned>(*p.umask));
        add(std::string("umask=") + m);
    }
    if (!p.rlimits.empty()) {
        std::string names;
        for (const auto& r : p.rlimits)
            names += (names.empty() ? "" : ",") + r.name;
        add("rlimits=" + names);
    }
    if (p.no_new_privs) add("no_new_privs");
    if (p.oom_score_adj) add("oom_score_adj=" + std::to_string(*p.oom_score_adj));
    if (p.clear_env) add("clear_env");
    if (!p.env_remove.empty())
        add("env_remove=" + std::to_string(p.env_remove.size()) +
            (p.env_remove.size() == 1 ? " var" : " vars"));
    return out;
}

// The PATH a pool's worker gets, as Supervisor builds its environment.
std::string worker_path(const PoolConfig& p, const std::string& daemon_path) {
    for (const auto& [k, v] : p.env)
        if (k == "PATH") return v;
    if (p.clear_env) return "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    if (std::find(p.env_remove.begin(), p.env_remove.end(), "PATH") != p.env_remove.end())
        return "";
    return daemon_path;
}

// Why `path` cannot be executed, or "" when it can.
std::string not_runnable(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        return errno == ENOENT || errno == ENOTDIR
                   ? "does not exist"
                   : std::string("cannot be read: ") + std::strerror(errno);
    }
    if (S_ISDIR(st.st_mode)) return "is a directory";
    if (!S_ISREG(st.st_mode)) return "is not a regular file";
    if (::access(path.c_str(), X_OK) != 0) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
        return std::string("is not executable (mode ") + mode + ")";
    }
    return "";
}

}  // namespace

std::vector<std::string> command_warnings(const Config& cfg, const std::string& daemon_path) {
    std::vector<std::string> out;
    for (const auto& p : cfg.pools) {
        if (p.command.empty()) continue;
        const std::string& file = p.command[0];
        const std::string base = p.cwd.empty() ? "" : p.cwd + "/";
        auto in_cwd = [&](const std::string& path) {
            return path.starts_with('/') ? path : base + path;
        };
        const std::string pool = "pool " + p.name + ": command ";
        if (file.find('/') != std::string::npos) {
            const std::string path = in_cwd(file);
            if (auto why = not_runnable(path); !why.empty())
                out.push_back(pool + escape_invisible(path) + " " + why);
            continue;
        }
        // As execvp: the first executable candidate wins.
        std::string path_env = worker_path(p, daemon_path);
        if (path_env.empty()) path_env = "/usr/local/bin:/usr/bin:/bin";
        std::string first_bad;
        bool found = false;
        for (std::size_t start = 0; start <= path_env.size() && !found;) {
            std::size_t end = path_env.find(':', start);
            if (end == std::string::npos) end = path_env.size();
            std::string dir = path_env.substr(start, end - start);
            start = end + 1;
            const std::string candidate = in_cwd((dir.empty() ? "." : dir) + "/" + file);
            auto why = not_runnable(candidate);
            if (why.empty())
                found = true;
            else if (first_bad.empty() && why != "does not exist")
                first_bad = escape_invisible(candidate) + " " + why;
        }
        if (found) continue;
        out.push_back(pool + escape_invisible(file) + " is not found in PATH " +
                      escape_invisible(path_env) +
                      (first_bad.empty() ? "" : " (" + first_bad + ")"));
    }
    return out;
}

std::string summarize(const Config& cfg) {
    std::string out = "config OK";
    if (!cfg.source_path.empty()) out += ": " + cfg.source_path;
    out += '\n';

    char mode[16];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(cfg.daemon.socket_mode));
    out += "daemon: socket " + cfg.daemon.socket + " (" + mode + "), log " + cfg.daemon.log_level +
           ", shutdown_timeout " + exact_duration(cfg.daemon.shutdown_timeout);
    const auto& d = cfg.daemon;
    if (d.socket_group) out += ", socket_group " + d.socket_group_name;
    if (d.readonly_group) out += ", readonly_group " + d.readonly_group_name;
    if (!d.log_file.empty()) out += ", log_file " + d.log_file;
    if (d.log_format != "text") out += ", log_format " + d.log_format;
    if (!d.log_dir.empty()) out += ", log_dir " + d.log_dir;
    if (!d.metrics.empty()) out += ", metrics " + d.metrics;
    out += "\n";

    out += "pools (" + std::to_string(cfg.pools.size()) + "):\n";
    struct Row {
        std::string cells[5];
        std::string command, extra;
    };
    std::vector<Row> rows;
    std::size_t width[5] = {};
    for (const auto& p : cfg.pools) {
        Row r;
        r.cells[0] = p.name;
        r.cells[1] = std::to_string(p.workers) + (p.workers == 1 ? " worker" : " workers");
        r.cells[2] = "restart=" + std::string(to_string(p.restart));
        r.cells[3] = "start_timeout=" + exact_duration(p.start_timeout);
        r.cells[4] = "stop=" + std::string(signal_name(p.stop_signal)) + "/" +
                     exact_duration(p.stop_timeout);
        r.command = argv_text(p.command);
        r.extra = extras(p);
        for (int i = 0; i < 5; ++i)
            width[i] = std::max(width[i], r.cells[i].size());
        rows.push_back(std::move(r));
    }
    for (const auto& r : rows) {
        std::string line = "  ";
        for (int i = 0; i < 5; ++i)
            line += pad(r.cells[i], width[i]) + "  ";
        line += r.command;
        out += line + "\n";
        if (!r.extra.empty()) out += "  " + std::string(width[0] + 2, ' ') + r.extra + "\n";
    }
    return out;
}

}  // namespace cow::config
