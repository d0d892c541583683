#include "config/plan.hpp"

namespace cow::config {
namespace {

std::vector<std::string> pool_keys(const PoolConfig& a, const PoolConfig& b) {
    std::vector<std::string> k;
    auto check = [&](bool same, const char* name) {
        if (!same) k.emplace_back(name);
    };
    check(a.command == b.command, "command");
    check(a.workers == b.workers, "workers");
    check(a.cwd == b.cwd, "cwd");
    check(a.env == b.env, "env");
    check(a.autostart == b.autostart, "autostart");
    check(a.restart == b.restart, "restart");
    check(a.start_timeout == b.start_timeout, "start_timeout");
    check(a.backoff == b.backoff, "backoff");
    check(a.max_restarts == b.max_restarts, "max_restarts");
    check(a.stop_signal == b.stop_signal, "stop_signal");
    check(a.stop_timeout == b.stop_timeout, "stop_timeout");
    check(a.kill_mode == b.kill_mode, "kill_mode");
    check(a.spawn == b.spawn, "spawn");
    check(a.template_threads == b.template_threads, "template_threads");
    check(a.template_timeout == b.template_timeout, "template_timeout");
    check(a.orphans == b.orphans, "orphans");
    check(a.stop_scope == b.stop_scope, "stop_scope");
    check(a.essential == b.essential, "essential");
    check(a.depends_on == b.depends_on, "depends_on");
    check(a.memory == b.memory, "memory");
    check(a.sockets == b.sockets, "sockets");
    check(a.ready == b.ready, "ready");
    check(a.watchdog == b.watchdog, "watchdog");
    check(a.readiness == b.readiness, "readiness");
    check(a.liveness == b.liveness, "liveness");
    check(a.on_exit == b.on_exit && a.on_fatal == b.on_fatal && a.hook_timeout == b.hook_timeout,
          "hooks");
    check(a.stdout_sink == b.stdout_sink, "stdout");
    check(a.stderr_sink == b.stderr_sink, "stderr");
    check(a.backpressure == b.backpressure, "log_backpressure");
    check(a.log_ring == b.log_ring, "log_ring");
    check(a.identity == b.identity, "user/group");
    check(a.umask == b.umask, "umask");
    check(a.rlimits == b.rlimits, "rlimits");
    check(a.no_new_privs == b.no_new_privs, "no_new_privs");
    check(a.oom_score_adj == b.oom_score_adj, "oom_score_adj");
    check(a.clear_env == b.clear_env, "clear_env");
    check(a.env_remove == b.env_remove, "env_remove");
    return k;
}

// Probes and hooks are read from the pool's config each time they run, so a change to them
// needs no new process, unless it moves the probe port a process was given in its environment
// (COWHERD_PROBE_PORT).
bool in_place(const PoolConfig& a, const PoolConfig& b, const std::vector<std::string>& keys) {
    auto port = [](const PoolConfig& p) {
        if (p.readiness && p.readiness->port) return p.readiness->port;
        if (p.liveness && p.liveness->port) return p.liveness->port;
        return std::optional<int>{};
    };
    if (port(a) != port(b)) return false;
    for (const auto& k : keys)
        if (k != "workers" && k != "readiness" && k != "liveness" && k != "hooks") return false;
    return true;
}

}  // namespace

ReloadPlan plan_reload(const Config& running, const Config& next) {
    ReloadPlan plan;
    for (const auto& np : next.pools) {
        PoolChange c;
        c.name = np.name;
        c.new_workers = np.workers;
        const PoolConfig* op = running.find_pool(np.name);
        if (!op) {
            c.kind = PoolChange::Kind::added;
        } else {
            c.old_workers = op->workers;
            c.keys = pool_keys(*op, np);
            if (c.keys.empty())
                c.kind = PoolChange::Kind::unchanged;
            else if (c.keys.size() == 1 && c.keys[0] == "workers")
                c.kind = PoolChange::Kind::resized;
            else if (in_place(*op, np, c.keys))
                c.kind = PoolChange::Kind::updated;
            else
                c.kind = PoolChange::Kind::changed;
        }
        plan.pools.push_back(std::move(c));
    }
    for (const auto& op : running.pools) {
        if (next.find_pool(op.name)) continue;
        PoolChange c;
        c.name = op.name;
        c.kind = PoolChange::Kind::removed;
        c.old_workers = op.workers;
        plan.pools.push_back(std::move(c));
    }
    const auto& a = running.daemon;
    const auto& b = next.daemon;
    if (a.socket != b.socket) plan.daemon_keys.emplace_back("socket");
    if (a.socket_mode != b.socket_mode) plan.daemon_keys.emplace_back("socket_mode");
    if (a.log_level != b.log_level) plan.daemon_keys.emplace_back("log_level");
    if (a.shutdown_timeout != b.shutdown_timeout) plan.daemon_keys.emplace_back("shutdown_timeout");
    if (a.log_format != b.log_format) plan.daemon_keys.emplace_back("log_format");
    if (a.log_file != b.log_file) plan.daemon_keys.emplace_back("log_file");
    if (a.log_dir != b.log_dir) plan.daemon_keys.emplace_back("log_dir");
    if (a.log_line_max != b.log_line_max) plan.daemon_keys.emplace_back("log_line_max");
    if (a.metrics != b.metrics) plan.daemon_keys.emplace_back("metrics");
    if (a.socket_group != b.socket_group) plan.daemon_keys.emplace_back("socket_group");
    if (a.readonly_group != b.readonly_group) plan.daemon_keys.emplace_back("readonly_group");
    if (a.memory_sample_every != b.memory_sample_every) plan.daemon_keys.emplace_back("memory");
    return plan;
}

std::string_view to_string(PoolChange::Kind k) {
    switch (k) {
        case PoolChange::Kind::added:
            return "added";
        case PoolChange::Kind::removed:
            return "removed";
        case PoolChange::Kind::unchanged:
            return "unchanged";
        case PoolChange::Kind::resized:
            return "resized";
        case PoolChange::Kind::updated:
            return "updated";
        case PoolChange::Kind::changed:
            return "changed";
    }
    return "unchanged";
}

}  // namespace cow::config
