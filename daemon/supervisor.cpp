#include "daemon/supervisor.hpp"

#include <algorithm>
#include <cstring>

#include <spdlog/spdlog.h>

#include "core/names.hpp"
#include "core/signal_names.hpp"

extern char** environ;

namespace cow {

using fsm::Event;
using fsm::EventType;
using fsm::State;

namespace {
constexpr std::size_t kDeadLeaderMemory = 4096;
}

Supervisor::Supervisor(Sys& sys, std::shared_ptr<const config::Config> cfg)
    : sys_(sys), cfg_(std::move(cfg)) {
    for (const auto& pc : cfg_->pools)
        add_pool(std::make_shared<const config::PoolConfig>(pc));
}

Supervisor::~Supervisor() = default;

Pool& Supervisor::add_pool(std::shared_ptr<const config::PoolConfig> pc) {
    auto pool = std::make_unique<Pool>();
    pool->cfg = std::move(pc);
    pool->policy = fsm::policy_from(*pool->cfg);
    pool->use_cgroup = sys_.cgroups() != nullptr && pool->cfg->kill_mode != config::KillMode::group;
    build_spawn_template(*pool);
    for (int i = 0; i < pool->cfg->workers; ++i)
        add_worker(*pool, i);
    pools_.push_back(std::move(pool));
    return *pools_.back();
}

void Supervisor::build_spawn_template(Pool& pool) {
    const auto& pc = *pool.cfg;
    pool.argv = pc.command;
    // The daemon's environment, overlaid with the pool's env and our own variables. Variables
    // the daemon sets per worker are dropped from the inherited part.
    auto overridden = [&](std::string_view entry) {
        auto eq = entry.find('=');
        std::string_view key = entry.substr(0, eq);
        if (key == "COWHERD_POOL" || key == "COWHERD_WORKER" || key == "NOTIFY_SOCKET" ||
            key == "COWHERD_SOCKET" || key.starts_with("LISTEN_"))
            return true;
        for (const auto& [k, v] : pc.env)
            if (k == key) return true;
        return false;
    };
    pool.env.clear();
    for (char** e = environ; e && *e; ++e)
        if (!overridden(*e)) pool.env.emplace_back(*e);
    for (const auto& [k, v] : pc.env)
        pool.env.push_back(k + "=" + v);
    pool.env.push_back("COWHERD_POOL=" + pc.name);

    std::string path_env;
    for (const auto& e : pool.env)
        if (e.starts_with("PATH=")) path_env = e.substr(5);
    pool.exec_paths = spawn::exec_candidates(pc.command.at(0), path_env);
}

Worker& Supervisor::add_worker(Pool& pool, int index) {
    auto w = std::make_unique<Worker>();
    w->pool = &pool;
    w->index = index;
    w->id = next_worker_id_++;
    w->name = worker_name(pool.name(), index);
    w->env_worker = "COWHERD_WORKER=" + std::to_string(index);
    w->state_since = sys_.now();
    by_id_[w->id] = w.get();
    pool.workers.push_back(std::move(w));
    return *pool.workers.back();
}

bool Supervisor::pool_up(const Pool& p) {
    for (const auto& w : p.workers)
        if (w->slot.state != State::running) return false;
    return true;
}

void Supervisor::start_pool(Pool& p, const char* why) {
    p.waiting_for_deps = false;
    const auto now = sys_.now();
    if (why) spdlog::info("pool {}: {}", p.name(), why);
    for (auto& w : p.workers)
        apply(*w, Event{EventType::start, now, {}});
}

void Supervisor::boot() {
    for (auto& pool : pools_) {
        if (!pool->cfg->autostart) continue;
        if (pool->cfg->depends_on.empty()) {
            start_pool(*pool, nullptr);
        } else {
            pool->waiting_for_deps = true;
            for (auto& w : pool->workers)
                w->last_reason = "waiting for depends_on";
        }
    }
    start_dependents();
}

void Supervisor::start_dependents() {
    if (shutting_down_) return;
    // Iterate until no change: a pool with no workers is up at once and may release others.
    for (bool changed = true; changed;) {
        changed = false;
        for (auto& pool : pools_) {
            if (!pool->waiting_for_deps) continue;
            bool ready = true;
            for (const auto& dep : pool->cfg->depends_on) {
                for (auto& other : pools_)
                    if (other->name() == dep && !pool_up(*other)) ready = false;
            }
            if (ready) {
                start_pool(*pool, "dependencies are running; starting");
                changed = true;
            }
        }
    }
}

std::variant<std::vector<Worker*>, Supervisor::TargetError> Supervisor::resolve(
    std::string_view target) {
    std::vector<Worker*> out;
    if (target == "all") {
        for (auto& p : pools_)
            for (auto& w : p->workers)
                out.push_back(w.get());
        return out;
    }
    if (!valid_name(target))
        return TargetError{"invalid_argument",
                           "invalid name \"" + std::string(target.substr(0, 80)) +
                               "\": expected POOL, POOL.N or all ([A-Za-z0-9_.-]{1,64})"};
    for (auto& p : pools_) {
        if (p->name() == target) {
            for (auto& w : p->workers)
                out.push_back(w.get());
            return out;
        }
    }
    if (auto ref = split_worker_name(target)) {
        for (auto& p : pools_) {
            if (p->name() != ref->pool) continue;
            for (auto& w : p->workers)
                if (w->index == ref->index) return std::vector<Worker*>{w.get()};
            return TargetError{"no_such_worker", "pool " + p->name() + " has no worker " +
                                                     std::to_string(ref->index) + " (it has " +
                                                     std::to_string(p->workers.size()) + ")"};
        }
    }
    return TargetError{"no_such_pool", "no pool named \"" + std::string(target) + "\""};
}

void Supervisor::command(const std::vector<Worker*>& targets, EventType ev) {
    const auto now = sys_.now();
    for (Worker* w : targets) {
        if (ev != EventType::stop) w->pool->waiting_for_deps = false;
        apply(*w, Event{ev, now, {}});
    }
}

int Supervisor::signal(const std::vector<Worker*>& targets, int sig, bool tree) {
    int n = 0;
    for (Worker* w : targets) {
        if (!w->alive()) continue;
        if (tree)
            signal_tree(*w, sig);
        else
            sys_.kill_child(w->pid, sig);
        ++n;
    }
    return n;
}

void Supervisor::signal_tree(Worker& w, int sig) {
    cgroup::Cgroups* cg = sys_.cgroups();
    if (cg && !w.cgroup.empty()) {
        // The cgroup holds the whole tree whatever it did (setsid, double fork).
        if (sig == SIGKILL)
            cg->kill(w.cgroup);
        else
            cg->signal(w.cgroup, sig);
        return;
    }
    if (w.alive()) {
        sys_.kill_group(w.pid, sig);
        sys_.kill_descendants(w.pid, sig);
    }
    for (auto& [pid, o] : orphans_) {
        if (o.worker_id != w.id) continue;
        sys_.kill_child(pid, sig);
        if (o.group_leader) sys_.kill_group(pid, sig);
    }
}

void Supervisor::apply(Worker& w, const Event& ev) {
    const State from = w.slot.state;
    const pid_t pid_before = w.pid;
    fsm::Actions a = fsm::step(w.slot, ev, w.pool->policy);

    if (a.counted_restart) ++w.restarts;
    if (a.signal) {
        signal_tree(w, *a.signal);
        // A stopped process cannot act on TERM; systemd and s6 follow with CONT likewise.
        if (*a.signal != SIGKILL && *a.signal != SIGCONT) signal_tree(w, SIGCONT);
        if (*a.signal == SIGKILL)
            spdlog::warn("{} pid {}: {}", w.name, pid_before ? pid_before : w.last_pid, a.reason);
    }
    if (a.cancel_timer) disarm(w);
    if (a.arm) arm(w, *a.arm);
    if (!a.reason.empty()) w.last_reason = a.reason;

    if (w.slot.state != from) {
        w.state_since = ev.now;
        const pid_t shown = pid_before ? pid_before : w.last_pid;
        auto level = (w.slot.state == State::fatal || w.slot.state == State::backoff)
                         ? spdlog::level::warn
                         : spdlog::level::info;
        spdlog::log(level, "{} pid {} {} -> {}: {}", w.name, shown, fsm::to_string(from),
                    fsm::to_string(w.slot.state), a.reason);
        if (on_transition) on_transition(w, from, a);
        check_finished(w, a);
    }
    if (a.spawn) do_spawn(w);
}

void Supervisor::check_finished(const Worker& w, const fsm::Actions& a) {
    if (!a.gave_up && !a.finished) return;
    if (a.finished) any_finished_ = true;
    if (!w.pool->cfg->essential || shutting_down_) return;
    int code = w.last_exit ? w.last_exit->shell_code() : (w.last_error.empty() ? 1 : 127);
    std::string why = "essential pool " + w.pool->name() + ": " + w.name + " " +
                      std::string(fsm::to_string(w.slot.state)) + " (" + w.last_reason + ")";
    if (on_essential_exit) on_essential_exit(code, why);
}

void Supervisor::do_spawn(Worker& w) {
    Pool& pool = *w.pool;
    spawn::Plan plan;
    plan.exec_paths = pool.exec_paths;
    plan.display_path = pool.argv.at(0);
    plan.argv.reserve(pool.argv.size() + 1);
    for (auto& a : pool.argv)
        plan.argv.push_back(a.data());
    plan.envp.reserve(pool.env.size() + 2);
    for (auto& e : pool.env)
        plan.envp.push_back(e.data());
    plan.envp.push_back(w.env_worker.data());
    if (!pool.cfg->cwd.empty()) plan.cwd = pool.cfg->cwd.c_str();
    if (stdin_fd_ >= 0) plan.stdin_fd = stdin_fd_;

    // Each generation gets its own cgroup, so the orphans of one never mix with the next.
    std::string cg_path, cg_procs;
    if (pool.use_cgroup) {
        int err = 0;
        cg_path = sys_.cgroups()->create(w.name + "-g" + std::to_string(w.generation + 1), err);
        if (cg_path.empty()) {
            spdlog::warn("{}: cannot create its cgroup ({}); starting it without one", w.name,
                         std::strerror(err));
        } else {
            cg_procs = cg_path + "/cgroup.procs";
            plan.cgroup_procs = cg_procs.c_str();
        }
    }

    const auto now = sys_.now();
    spawn::Result r = sys_.spawn(plan);
    if (!r.ok) {
        if (r.pid > 0) failed_spawns_.insert(r.pid);
        if (!cg_path.empty()) release_cgroup(cg_path);
        w.last_error = r.message;
        spdlog::error("{} spawn failed: {}", w.name, r.message);
        apply(w, Event{EventType::spawn_failed, now, {}});
        return;
    }
    w.pid = r.pid;
    w.last_pid = r.pid;
    ++w.generation;
    w.started_at = now;
    w.last_error.clear();
    w.cgroup = cg_path;
    if (!cg_path.empty()) cgroup_owner_[cg_path] = Owner{w.id, w.generation, w.name};
    by_pid_[r.pid] = &w;
    spdlog::debug("{} spawned pid {} (generation {})", w.name, r.pid, w.generation);
    apply(w, Event{EventType::spawned, now, {}});
}

void Supervisor::arm(Worker& w, Millis after) {
    w.timer_at = sys_.now() + after;
    ++w.timer_seq;
    timers_.push(TimerEntry{*w.timer_at, w.id, w.timer_seq});
}

void Supervisor::disarm(Worker& w) {
    // The heap entry stays; its sequence number no longer matches and it is dropped when due.
    w.timer_at.reset();
    ++w.timer_seq;
}

void Supervisor::on_reaped(pid_t pid, int wait_status) {
    if (failed_spawns_.erase(pid)) return;
    const ExitInfo info = decode_wait_status(wait_status);
    if (auto o = orphans_.find(pid); o != orphans_.end()) {
        spdlog::info("orphan pid {} ({}) from {} {}", pid, o->second.comm, o->second.from,
                     describe(info));
        batch_deaths_.push_back(Owner{o->second.worker_id, o->second.generation, o->second.from});
        orphans_.erase(o);
        return;
    }
    auto it = by_pid_.find(pid);
    if (it == by_pid_.end()) {
        // A descendant that reparented to us and died before our next scan adopted it.
        spdlog::debug("reaped pid {} (a descendant, not a worker): {}", pid, describe(info));
        return;
    }
    Worker& w = *it->second;
    by_pid_.erase(it);
    w.pid = 0;
    const auto now = sys_.now();
    w.last_exit = info;
    w.last_exit_pid = pid;
    w.last_exit_at = now;
    Owner me{w.id, w.generation, w.name};
    batch_deaths_.push_back(me);
    dead_leaders_[pid] = me;
    dead_leader_order_.push_back(pid);
    while (dead_leader_order_.size() > kDeadLeaderMemory) {
        dead_leaders_.erase(dead_leader_order_.front());
        dead_leader_order_.pop_front();
    }
    if (w.slot.state == State::stopping) {
        // Hold the exit until the rest of the tree is gone too (checked in after_reap).
        w.draining = true;
        w.drain_exit = info;
        return;
    }
    const std::string old_cgroup = w.cgroup;
    w.cgroup.clear();
    if (!old_cgroup.empty()) release_cgroup(old_cgroup);
    apply(w, Event{EventType::exited, now, info});
}

void Supervisor::release_cgroup(const std::string& path) {
    cgroup::Cgroups* cg = sys_.cgroups();
    if (!cg) return;
    if (!cg->populated(path).value_or(false) && cg->remove(path)) {
        cgroup_owner_.erase(path);
        dead_cgroups_.erase(path);
    } else {
        dead_cgroups_.insert(path);  // orphans live on in it; removed once they are gone
    }
}

std::optional<Supervisor::Owner> Supervisor::owner_of(const ProcInfo& info) const {
    if (!info.cgroup.empty())
        if (auto it = cgroup_owner_.find(info.cgroup); it != cgroup_owner_.end()) return it->second;
    for (pid_t key : {info.sid, info.pgid}) {
        if (auto it = dead_leaders_.find(key); it != dead_leaders_.end()) return it->second;
        if (auto it = by_pid_.find(key); it != by_pid_.end())
            return Owner{it->second->id, it->second->generation, it->second->name};
    }
    // Only one death in this batch: whatever was just reparented came from it.
    if (batch_deaths_.size() == 1) return batch_deaths_.front();
    return std::nullopt;
}

void Supervisor::adopt_orphans() {
    for (pid_t pid : sys_.children()) {
        if (by_pid_.count(pid) || orphans_.count(pid) || failed_spawns_.count(pid)) continue;
        auto info = sys_.proc_info(pid);
        if (!info) continue;  // gone already; the reaper will see it
        Orphan o;
        o.pid = pid;
        o.starttime = info->starttime;
        o.comm = info->comm;
        o.group_leader = info->pgid == pid;
        o.adopted_at = sys_.now();
        const Worker* w = nullptr;
        if (auto owner = owner_of(*info)) {
            o.from = owner->name;
            o.worker_id = owner->worker_id;
            o.generation = owner->generation;
            w = find_worker(owner->worker_id);
        } else {
            o.from = "unknown";
        }
        if (w) {
            o.policy = w->pool->cfg->orphans;
            o.grace = w->pool->cfg->stop_timeout;
            o.cgroup = info->cgroup;
            // A dead generation's cgroup holds only leftovers; the live one holds the worker.
            o.own_cgroup = !info->cgroup.empty() && info->cgroup != w->cgroup;
        }
        auto& rec = orphans_[pid] = std::move(o);
        // Orphans of a worker being stopped, or of a daemon shutting down, always go.
        const bool stopping = w && (w->slot.state == State::stopping || w->draining);
        if (rec.policy == config::OrphanPolicy::kill || stopping || shutting_down_) {
            spdlog::info("adopted orphan pid {} ({}) from {}: sending TERM, KILL in {}", pid,
                         rec.comm, rec.from, format_duration(rec.grace));
            terminate_orphan(rec, rec.grace);
        } else {
            spdlog::info("adopted orphan pid {} ({}) from {}: keeping it (orphans: keep)", pid,
                         rec.comm, rec.from);
        }
    }
}

void Supervisor::terminate_orphan(Orphan& o, Millis grace) {
    if (o.terminating) return;
    o.terminating = true;
    for (int sig : {SIGTERM, SIGCONT}) {
        sys_.kill_child(o.pid, sig);
        if (o.group_leader) sys_.kill_group(o.pid, sig);
        if (o.own_cgroup && sys_.cgroups()) sys_.cgroups()->signal(o.cgroup, sig);
    }
    o.kill_at = sys_.now() + grace;
}

void Supervisor::kill_orphan(Orphan& o) {
    spdlog::warn("orphan pid {} ({}) from {} outlived its grace; sending KILL", o.pid, o.comm,
                 o.from);
    sys_.kill_child(o.pid, SIGKILL);
    if (o.group_leader) sys_.kill_group(o.pid, SIGKILL);
    if (o.own_cgroup && sys_.cgroups()) sys_.cgroups()->kill(o.cgroup);
    o.kill_at.reset();
}

bool Supervisor::tree_gone(const Worker& w) {
    if (!w.cgroup.empty() && sys_.cgroups()) {
        // populated 0 is the definition of "stopped" when a cgroup holds the tree.
        return !sys_.cgroups()->populated(w.cgroup).value_or(false);
    }
    for (const auto& [pid, o] : orphans_)
        if (o.worker_id == w.id) return false;
    return true;
}

void Supervisor::after_reap() {
    if (!batch_deaths_.empty() || !orphans_.empty()) adopt_orphans();
    batch_deaths_.clear();
    const auto now = sys_.now();
    for (auto& p : pools_) {
        for (auto& w : p->workers) {
            if (!w->draining || !tree_gone(*w)) continue;
            w->draining = false;
            const std::string old = w->cgroup;
            w->cgroup.clear();
            if (!old.empty()) release_cgroup(old);
            apply(*w, Event{EventType::exited, now, w->drain_exit});
        }
    }
    if (!dead_cgroups_.empty()) {
        std::vector<std::string> paths(dead_cgroups_.begin(), dead_cgroups_.end());
        for (const auto& path : paths)
            release_cgroup(path);
    }
}

void Supervisor::on_timers() {
    const auto now = sys_.now();
    while (!timers_.empty() && timers_.top().at <= now) {
        TimerEntry t = timers_.top();
        timers_.pop();
        auto it = by_id_.find(t.worker_id);
        if (it == by_id_.end()) continue;
        Worker& w = *it->second;
        if (w.timer_seq != t.seq || !w.timer_at) continue;  // disarmed or re-armed since
        w.timer_at.reset();
        apply(w, Event{EventType::timer, now, {}});
    }
    for (auto& [pid, o] : orphans_)
        if (o.kill_at && *o.kill_at <= now) kill_orphan(o);
}

std::optional<fsm::TimePoint> Supervisor::next_deadline() const {
    std::optional<fsm::TimePoint> next;
    auto consider = [&](fsm::TimePoint t) {
        if (!next || t < *next) next = t;
    };
    // Stale heap entries may sit on top; they only cause one harmless early wakeup each.
    if (!timers_.empty()) consider(timers_.top().at);
    for (const auto& wt : waiters_)
        consider(wt.deadline);
    for (const auto& [pid, o] : orphans_)
        if (o.kill_at) consider(*o.kill_at);
    return next;
}

void Supervisor::begin_shutdown() {
    if (shutting_down_) return;
    shutting_down_ = true;
    spdlog::info("shutting down: stopping {} pools, dependents first", pools_.size());
    for (auto& [pid, o] : orphans_)
        terminate_orphan(o, o.grace);
    stage_shutdown();
}

void Supervisor::stage_shutdown() {
    const auto now = sys_.now();
    auto busy = [](const Pool& p) {
        for (const auto& w : p.workers)
            if (w->alive() || w->draining || w->slot.state == State::stopping) return true;
        return false;
    };
    for (bool changed = true; changed;) {
        changed = false;
        for (auto& pool : pools_) {
            if (pool->stop_sent) continue;
            // A pool stops only after every pool that depends on it has stopped.
            bool dependents_done = true;
            for (auto& other : pools_) {
                if (other.get() == pool.get()) continue;
                const auto& deps = other->cfg->depends_on;
                if (std::find(deps.begin(), deps.end(), pool->name()) != deps.end() &&
                    (!other->stop_sent || busy(*other)))
                    dependents_done = false;
            }
            if (!dependents_done) continue;
            pool->stop_sent = true;
            pool->waiting_for_deps = false;
            for (auto& w : pool->workers)
                apply(*w, Event{EventType::stop, now, {}});
            changed = true;
        }
    }
}

bool Supervisor::quiescent() {
    if (!by_pid_.empty() || !orphans_.empty()) return false;
    for (auto& p : pools_)
        for (auto& w : p->workers)
            if (w->draining) return false;
    // Anything still below us (a grandchild whose parent is alive) will reparent to us; only
    // an empty children list means the whole tree is gone.
    return sys_.children().empty();
}

void Supervisor::kill_everything() {
    for (auto& p : pools_)
        for (auto& w : p->workers)
            if (w->alive() || w->draining) signal_tree(*w, SIGKILL);
    for (auto& [pid, o] : orphans_)
        kill_orphan(o);
    for (pid_t pid : sys_.children())
        sys_.kill_child(pid, SIGKILL);
    sys_.kill_all_but_self();
}

void Supervisor::add_waiter(Waiter w) {
    waiters_.push_back(std::move(w));
}

void Supervisor::settle() {
    start_dependents();
    if (shutting_down_) stage_shutdown();
    if (any_finished_ && !shutting_down_) {
        any_finished_ = false;
        bool all = true;
        int code = 0;
        std::size_t count = 0;
        for (auto& p : pools_) {
            for (auto& w : p->workers) {
                ++count;
                if (w->slot.state != State::exited) {
                    all = false;
                    break;
                }
                if (code == 0 && w->last_exit && !w->last_exit->success())
                    code = w->last_exit->shell_code();
            }
            if (!all) break;
        }
        if (all && count > 0 && on_all_finished) on_all_finished(code);
    }
    if (waiters_.empty()) return;
    const auto now = sys_.now();
    // A finish callback may add waiters; collect first, then run.
    std::vector<Waiter> ready;
    std::vector<bool> timed_out;
    for (auto it = waiters_.begin(); it != waiters_.end();) {
        bool done = it->done();
        if (done || now >= it->deadline) {
            timed_out.push_back(!done);
            ready.push_back(std::move(*it));
            it = waiters_.erase(it);
        } else {
            ++it;
        }
    }
    for (std::size_t i = 0; i < ready.size(); ++i)
        ready[i].finish(timed_out[i]);
}

}  // namespace cow
