// The plan `cowherd --check` prints: one line for the daemon, one or two per pool.
#include <algorithm>
#include <cstdio>

#include "config/config.hpp"
#include "config/diagnostics.hpp"
#include "config/sections.hpp"
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
    if (p.backoff != Backoff{})
        add("backoff=" + exact_duration(p.backoff.initial) + ".." + exact_duration(p.backoff.max));
    if (p.max_restarts != MaxRestarts{}) {
        add("max_restarts=" + std::to_string(p.max_restarts.count) + "/" +
            exact_duration(p.max_restarts.within));
    }
    if (p.ready == Ready::notify) add("ready=notify");
    if (p.watchdog.count() > 0) add("watchdog=" + exact_duration(p.watchdog));
    for (const auto& s : p.sockets)
        add("socket " + s.name + "=" + s.listen);
    if (p.memory.max_private)
        add("max_private=" + std::to_string(*p.memory.max_private >> 20) + "MiB/" +
            exact_duration(p.memory.check_every));
    return out;
}

}  // namespace

std::string summarize(const Config& cfg) {
    std::string out = "config OK";
    if (!cfg.source_path.empty()) out += ": " + cfg.source_path;
    out += '\n';

    char mode[16];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(cfg.daemon.socket_mode));
    out += "daemon: socket " + cfg.daemon.socket + " (" + mode + "), log " + cfg.daemon.log_level +
           ", shutdown_timeout " + exact_duration(cfg.daemon.shutdown_timeout) + "\n";

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
