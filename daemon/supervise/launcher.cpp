#include "daemon/supervise/launcher.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <tuple>

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon/spawn/template_protocol.hpp"
#include "daemon/supervise/output_hooks.hpp"

extern char** environ;

namespace cow {

Launcher::Launcher(Sys& sys, Lineage& lineage, SupervisorSetup setup)
    : sys_(sys), lineage_(lineage), setup_(std::move(setup)) {
    // This daemon's cgroup names are its own: a successor never reuses the name of a cgroup
    // whose leftovers a predecessor's death left behind, so no new worker is born among them.
    char tag[32];
    std::snprintf(
        tag, sizeof tag, "%llx",
        static_cast<unsigned long long>(
            std::chrono::duration_cast<std::chrono::milliseconds>(sys_.now().time_since_epoch())
                .count()));
    cgroup_tag_ = tag;
}

Launcher::~Launcher() {
    for (auto& [id, f] : forks_)
        if (f.go >= 0) ::close(f.go);
}

void Launcher::build_template(Pool& pool) {
    const auto& pc = *pool.cfg;
    pool.argv = pc.command;
    // The daemon's environment, overlaid with the pool's env and our own variables. Variables
    // the daemon sets per worker are dropped from the inherited part.
    auto overridden = [&](std::string_view entry) {
        auto eq = entry.find('=');
        std::string_view key = entry.substr(0, eq);
        if (key == "COWHERD_POOL" || key == "COWHERD_WORKER" || key == "NOTIFY_SOCKET" ||
            key == "COWHERD_SOCKET" || key == "COWHERD_PROBE_PORT" || key.starts_with("LISTEN_"))
            return true;
        for (const auto& [k, v] : pc.env)
            if (k == key) return true;
        return false;
    };
    pool.env.clear();
    auto removed = [&](std::string_view entry) {
        std::string_view key = entry.substr(0, entry.find('='));
        // A worker running as another user gets that user's HOME/USER/LOGNAME/SHELL.
        if (pc.identity.set && !pc.identity.user.empty() &&
            (key == "HOME" || key == "USER" || key == "LOGNAME" || key == "SHELL"))
            return true;
        return std::find(pc.env_remove.begin(), pc.env_remove.end(), key) != pc.env_remove.end();
    };
    if (!pc.clear_env) {
        for (char** e = environ; e && *e; ++e)
            if (!overridden(*e) && !removed(*e)) pool.env.emplace_back(*e);
    } else {
        bool has_path = false;
        for (const auto& [k, v] : pc.env)
            has_path |= k == "PATH";
        if (!has_path)
            pool.env.emplace_back(
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    }
    if (pc.identity.set && !pc.identity.user.empty()) {
        // The user's own, unless the pool's env sets them (which then wins, once).
        const auto& id = pc.identity;
        auto add = [&](const char* key, const std::string& value) {
            for (const auto& [k, v] : pc.env)
                if (k == key) return;
            if (!value.empty()) pool.env.push_back(std::string(key) + "=" + value);
        };
        add("HOME", id.home);
        add("USER", id.user);
        add("LOGNAME", id.user);
        add("SHELL", id.shell);
    }
    for (const auto& [k, v] : pc.env)
        pool.env.push_back(k + "=" + v);
    pool.env.push_back("COWHERD_POOL=" + pc.name);
    // Socket activation (sd_listen_fds): fds 3.. in config order, with their names. A pool
    // that a reload left without sockets lets go of its old ones (its workers hold copies).
    if (auto it = setup_.sockets.find(pc.name); it != setup_.sockets.end())
        pool.sockets = it->second;
    else
        pool.sockets.clear();
    if (!pool.sockets.empty()) {
        std::string names;
        for (const auto& sc : pc.sockets)
            names += (names.empty() ? "" : ":") + sc.name;
        pool.env.push_back("LISTEN_FDS=" + std::to_string(pool.sockets.size()));
        pool.env.push_back("LISTEN_FDNAMES=" + names);
    }
    if (pc.ready == config::Ready::notify && !setup_.notify_address.empty()) {
        pool.env.push_back("NOTIFY_SOCKET=" + setup_.notify_address);
        if (pc.watchdog.count() > 0)
            pool.env.push_back("WATCHDOG_USEC=" + std::to_string(pc.watchdog.count() * 1000));
    }

    std::string path_env;
    for (const auto& e : pool.env)
        if (e.starts_with("PATH=")) path_env = e.substr(5);
    pool.exec_paths = spawn::exec_candidates(pc.command.at(0), path_env);
}

std::optional<Launcher::Launched> Launcher::launch(Worker& w) {
    auto p = prepare(w);
    if (batching_) {
        pending_.push_back(std::move(p));
        return std::nullopt;
    }
    spawn::Result r = sys_.spawn(p->plan);
    return Launched{&w, record(*p, r), p->now};
}

std::vector<Launcher::Launched> Launcher::flush() {
    batching_ = false;
    std::vector<Launched> out;
    if (pending_.empty()) return out;
    std::vector<spawn::Plan*> plans;
    plans.reserve(pending_.size());
    for (auto& p : pending_)
        plans.push_back(&p->plan);
    auto results = sys_.spawn_all(plans);
    auto batch = std::move(pending_);
    pending_.clear();
    out.reserve(batch.size());
    for (std::size_t i = 0; i < batch.size(); ++i)
        out.push_back(Launched{batch[i]->w, record(*batch[i], results.at(i)), batch[i]->now});
    return out;
}

// Where it runs, as whom and with what limits: the same for a worker and a template.
void Launcher::process_settings(spawn::Plan& plan, const config::PoolConfig& pc) const {
    if (!pc.cwd.empty()) plan.cwd = pc.cwd.c_str();
    // Identity and limits, resolved when the config was loaded.
    if (pc.identity.set) {
        plan.set_ids = true;
        plan.uid = pc.identity.uid;
        plan.gid = pc.identity.gid;
        plan.groups = pc.identity.groups;
    }
    for (const auto& rl : pc.rlimits)
        plan.rlimits.push_back({rl.resource, rl.soft, rl.hard});
    if (pc.umask) plan.umask = static_cast<int>(*pc.umask);
    plan.no_new_privs = pc.no_new_privs;
    if (pc.oom_score_adj) {
        plan.set_oom_score_adj = true;
        plan.oom_score_adj = *pc.oom_score_adj;
    }
    if (stdin_fd_ >= 0) plan.stdin_fd = stdin_fd_;
}

std::unique_ptr<Launcher::Pending> Launcher::prepare(Worker& w) {
    Pool& pool = *w.pool;
    auto pending = std::make_unique<Pending>();
    pending->w = &w;
    spawn::Plan& plan = pending->plan;
    plan.exec_paths = pool.exec_paths;
    plan.display_path = pool.argv.at(0);
    plan.argv.reserve(pool.argv.size() + 1);
    for (auto& a : pool.argv)
        plan.argv.push_back(a.data());
    plan.envp.reserve(pool.env.size() + 2);
    for (auto& e : pool.env)
        plan.envp.push_back(e.data());
    plan.envp.push_back(w.env_worker.data());
    const auto& probe = pool.cfg->readiness ? pool.cfg->readiness : pool.cfg->liveness;
    const auto& other = pool.cfg->readiness ? pool.cfg->liveness : pool.cfg->readiness;
    const std::optional<int> base = probe && probe->port   ? probe->port
                                    : other && other->port ? other->port
                                                           : std::nullopt;
    if (base) {
        // The generation this spawn will be: record() counts it once the process exists.
        pending->probe_port_env = "COWHERD_PROBE_PORT=" + std::to_string(config::probe_port(
                                                              *base, w.index, w.generation + 1));
        plan.envp.push_back(pending->probe_port_env.data());
    }
    process_settings(plan, *pool.cfg);
    if (!pool.sockets.empty()) {
        for (const auto& s : pool.sockets)
            plan.pass_fds.push_back(s->fd());
        // The child writes its own pid here (LISTEN_PID must name the process that reads it).
        plan.envp.push_back(w.listen_pid_env.data());
        plan.listen_pid_slot = w.listen_pid_env.data();
        plan.listen_pid_prefix = 11;
    }

    // Each generation gets its own cgroup, so the orphans of one never mix with the next.
    std::string& cg_path = pending->cg_path;
    std::string& cg_procs = pending->cg_procs;
    if (pool.use_cgroup) {
        int err = 0;
        cg_path = sys_.cgroups()->create(
            w.name + "-" + cgroup_tag_ + "g" + std::to_string(w.generation + 1), err);
        if (cg_path.empty()) {
            spdlog::warn("{}: cannot create its cgroup ({}); starting it without one", w.name,
                         std::strerror(err));
        } else {
            cg_procs = cg_path + "/cgroup.procs";
            plan.cgroup_procs = cg_procs.c_str();
            plan.cgroup_fd = ::open(cg_path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        }
    }

    if (setup_.output) {
        auto [out, err] = setup_.output->before_spawn(w);
        plan.stdout_fd = out;
        plan.stderr_fd = err;
    }
    pending->now = sys_.now();
    return pending;
}

bool Launcher::record(Pending& pending, const spawn::Result& r) {
    Worker& w = *pending.w;
    spawn::Plan& plan = pending.plan;
    const std::string& cg_path = pending.cg_path;
    const auto now = pending.now;
    if (setup_.output) setup_.output->after_spawn(w, r.ok ? r.pid : 0);
    if (plan.cgroup_fd >= 0) ::close(plan.cgroup_fd);
    plan.cgroup_fd = -1;
    if (!r.ok) {
        if (r.pid > 0) lineage_.add_failed_spawn(r.pid);
        if (!cg_path.empty()) lineage_.release_cgroup(cg_path);
        w.last_error = r.message;
        spdlog::error("{} spawn failed: {}", w.name, r.message);
        return false;
    }
    w.pid = r.pid;
    w.last_pid = r.pid;
    ++w.generation;
    w.started_at = now;
    w.last_error.clear();
    w.sent.clear();
    w.stop_reason.clear();
    w.cgroup = cg_path;
    if (!cg_path.empty()) lineage_.own_cgroup(cg_path, Lineage::Owner{w.id, w.generation, w.name});
    lineage_.add_main(r.pid, w);
    spdlog::debug("{} spawned pid {} (generation {})", w.name, r.pid, w.generation);
    return true;
}

pid_t Launcher::spawn_template(Pool& pool, int sock, Worker& log, std::string& why) {
    const auto& pc = *pool.cfg;
    // The pool's environment, without what only a worker gets (its sockets, readiness).
    std::vector<std::string> env;
    for (const auto& e : pool.env)
        if (!e.starts_with("LISTEN_") && !e.starts_with("NOTIFY_SOCKET=") &&
            !e.starts_with("WATCHDOG_USEC="))
            env.push_back(e);
    env.emplace_back("COWHERD_TEMPLATE_FD=3");
    if (pc.template_threads) env.emplace_back("COWHERD_TEMPLATE_THREADS=allow");
    spawn::Plan plan;
    plan.exec_paths = pool.exec_paths;
    plan.display_path = pool.argv.at(0);
    for (auto& a : pool.argv)
        plan.argv.push_back(a.data());
    for (auto& e : env)
        plan.envp.push_back(e.data());
    process_settings(plan, pc);
    plan.pass_fds.push_back(sock);
    // What it prints while it loads (an import error, a warning) is the pool's to show.
    if (setup_.output) std::tie(plan.stdout_fd, plan.stderr_fd) = setup_.output->before_spawn(log);
    spawn::Result r = sys_.spawn(plan);
    if (setup_.output) setup_.output->after_spawn(log, r.ok ? r.pid : 0);
    if (!r.ok) {
        if (r.pid > 0) lineage_.add_failed_spawn(r.pid);
        why = r.message;
        return 0;
    }
    return r.pid;
}

bool Launcher::request_fork(Worker& w, int sock, std::uint64_t id) {
    auto p = prepare(w);
    spawn::Plan& plan = p->plan;
    std::vector<std::string> env;
    for (char* e : plan.envp)
        if (e && !std::string_view(e).starts_with("LISTEN_PID=")) env.emplace_back(e);
    int go[2] = {-1, -1};
    spawn::Result r;
    if (::pipe2(go, O_CLOEXEC) != 0) {
        r.message = std::string("template: pipe: ") + std::strerror(errno);
    } else {
        // Without capture (output: inherit) the worker writes where the daemon does.
        std::vector<int> fds{go[0], plan.stdout_fd >= 0 ? plan.stdout_fd : 1,
                             plan.stderr_fd >= 0 ? plan.stderr_fd : 2};
        for (int fd : plan.pass_fds)
            fds.push_back(fd);
        const int err = spawn::send_fork(sock, spawn::encode_fork(id, env), fds);
        ::close(go[0]);
        if (err == 0) {
            forks_[w.id] = TemplateFork{std::move(p), go[1]};
            return true;
        }
        ::close(go[1]);
        r.message = std::string("template: send: ") + std::strerror(err);
    }
    record(*p, r);
    return false;
}

// A spawn's capture and cgroup let go as for a spawn that failed, without the failure's log.
void Launcher::let_go(Pending& p) {
    if (setup_.output) setup_.output->after_spawn(*p.w, 0);
    if (p.plan.cgroup_fd >= 0) ::close(p.plan.cgroup_fd);
    p.plan.cgroup_fd = -1;
    if (!p.cg_path.empty()) lineage_.release_cgroup(p.cg_path);
}

int Launcher::detach_fork(Worker& w) {
    auto it = forks_.find(w.id);
    if (it == forks_.end()) return -1;
    const int go = it->second.go;
    let_go(*it->second.p);
    forks_.erase(it);
    return go;
}

Launcher::Answered Launcher::answer_fork(Worker& w, const spawn::TemplateReply* reply,
                                         const std::string& why, bool run) {
    Answered out;
    out.launched = Launched{&w, false, sys_.now()};
    auto it = forks_.find(w.id);
    if (it == forks_.end()) return out;
    TemplateFork f = std::move(it->second);
    forks_.erase(it);
    Pending& p = *f.p;
    out.launched.at = p.now;
    spawn::Result r;
    if (reply && reply->kind == spawn::TemplateReply::Kind::forked) {
        r.ok = true;
        r.pid = reply->pid;
    } else {
        r.message = "template: " + (reply ? reply->why : why);
    }
    if (r.ok && !run) {
        // Stopped before it was recorded: it never runs.
        out.cancelled = r.pid;
        ::close(f.go);
        let_go(p);
        return out;
    }
    if (r.ok && !p.cg_procs.empty()) {
        // Before it runs: what it starts is born in its cgroup.
        const std::string pid = std::to_string(r.pid);
        const int fd = ::open(p.cg_procs.c_str(), O_WRONLY | O_CLOEXEC);
        if (fd < 0 || ::write(fd, pid.data(), pid.size()) < 0)
            spdlog::warn("{}: cannot move pid {} into its cgroup: {}", w.name, r.pid,
                         std::strerror(errno));
        if (fd >= 0) ::close(fd);
    }
    out.launched.ok = record(p, r);
    if (r.ok && ::write(f.go, "g", 1) != 1)
        spdlog::warn("{}: cannot start pid {}: {}", w.name, r.pid, std::strerror(errno));
    ::close(f.go);  // without the byte: cancelled, it exits
    return out;
}

}  // namespace cow
