#include "daemon/supervisor.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include "core/escape.hpp"
#include "core/names.hpp"
#include "core/signal_names.hpp"
#include "daemon/output_hooks.hpp"
#include "daemon/rolling.hpp"

extern char** environ;

namespace cow {

using fsm::Event;
using fsm::EventType;
using fsm::State;

namespace {
constexpr std::size_t kDeadLeaderMemory = 4096;
// After stop_timeout the leftovers of a crash got SIGKILL; this long more and the replacement
// starts whatever is still there (a process stuck in the kernel).
constexpr Millis kDrainGrace{2000};
}  // namespace

Supervisor::Supervisor(Sys& sys, std::shared_ptr<const config::Config> cfg, SupervisorSetup setup)
    : sys_(sys), cfg_(std::move(cfg)), setup_(std::move(setup)) {
    // This daemon's cgroup names are its own: a successor never reuses the name of a cgroup
    // whose leftovers a predecessor's death left behind, so no new worker is born among them.
    char tag[32];
    std::snprintf(
        tag, sizeof tag, "%llx",
        static_cast<unsigned long long>(
            std::chrono::duration_cast<std::chrono::milliseconds>(sys_.now().time_since_epoch())
                .count()));
    cgroup_tag_ = tag;
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

Worker& Supervisor::add_worker(Pool& pool, int index) {
    auto w = std::make_unique<Worker>();
    w->pool = &pool;
    w->index = index;
    w->id = next_worker_id_++;
    w->name = worker_name(pool.name(), index);
    w->env_worker = "COWHERD_WORKER=" + std::to_string(index);
    w->listen_pid_env = "LISTEN_PID=" + std::string(24, '\0');
    w->state_since = sys_.now();
    by_id_[w->id] = w.get();
    pool.workers.push_back(std::move(w));
    return *pool.workers.back();
}

bool Supervisor::pool_up(const Pool& p) {
    for (const auto& w : p.workers)
        if (!w->serving() && !w->retiring) return false;
    return true;
}

void Supervisor::start_pool(Pool& p, const char* why) {
    p.waiting_for_deps = false;
    const auto now = sys_.now();
    if (why) spdlog::info("pool {}: {}", p.name(), why);
    for (auto& w : p.workers) {
        if (w->retiring) continue;  // scaled away while the pool waited
        if (start_slice_ > 0) {
            start_queue_.push_back(w->id);
            w->last_reason = "queued to start";
        } else {
            apply(*w, Event{EventType::start, now, {}});
        }
    }
}

std::size_t Supervisor::drain_starts(std::size_t n, Millis budget) {
    const auto now = sys_.now();
    std::size_t started = 0;
    // At least one per turn; then stop at n, or once the budget is spent (about 0.5 ms a spawn
    // here), so that a control request waits for one short slice, not for 64 spawns.
    while (started < n && !start_queue_.empty() && (started == 0 || sys_.now() - now < budget)) {
        Worker* w = find_worker(start_queue_.front());
        start_queue_.pop_front();
        if (!w || shutting_down_) continue;
        // A few at a time go to spawn_all together, so that every core spawns.
        batching_ = true;
        apply(*w, Event{EventType::start, now, {}});
        ++started;
        if (pending_.size() >= kSpawnBatch || start_queue_.empty()) flush_spawns();
    }
    flush_spawns();
    return start_queue_.size();
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
    const auto now = sys_.now();
    for (auto& pool : pools_) {
        // Operator starts that waited for their pool's dependencies.
        if (!pool->start_after_deps.empty() && deps_up(*pool)) {
            auto ids = std::move(pool->start_after_deps);
            pool->start_after_deps.clear();
            for (auto id : ids)
                if (Worker* w = find_worker(id); w && w->pool == pool.get() && !w->retiring)
                    apply(*w, Event{EventType::start, now, {}});
        }
        // Operator stops that waited for the pools that depend on this one to be down.
        if (!pool->stop_after_dependents.empty()) {
            bool busy = false;
            for (Pool* d : dependents_of(*pool))
                busy |= pool_busy(*d) || !d->stop_after_dependents.empty();
            if (!busy) {
                auto ids = std::move(pool->stop_after_dependents);
                pool->stop_after_dependents.clear();
                for (auto id : ids)
                    if (Worker* w = find_worker(id); w && w->pool == pool.get())
                        apply(*w, Event{EventType::stop, now, {}});
            }
        }
    }
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
    // A pool a reload removed is on its way out: no verb reaches it (it could be revived, or
    // taken for a pool of the same name that a later reload added).
    if (target == "all") {
        for (auto& p : pools_)
            if (!p->removed)
                for (auto& w : p->workers)
                    out.push_back(w.get());
        return out;
    }
    if (!valid_name(target))
        return TargetError{"invalid_argument",
                           "invalid name \"" + escape_invisible(target.substr(0, 80)) +
                               "\": expected POOL, POOL.N or all ([A-Za-z0-9_.-]{1,64})"};
    for (auto& p : pools_) {
        if (p->name() == target && !p->removed) {
            for (auto& w : p->workers)
                out.push_back(w.get());
            return out;
        }
    }
    if (auto ref = split_worker_name(target)) {
        for (auto& p : pools_) {
            if (p->name() != ref->pool || p->removed) continue;
            for (auto& w : p->workers)
                if (w->index == ref->index) return std::vector<Worker*>{w.get()};
            return TargetError{"no_such_worker", "pool " + p->name() + " has no worker " +
                                                     std::to_string(ref->index) + " (it has " +
                                                     std::to_string(p->workers.size()) + ")"};
        }
    }
    return TargetError{"no_such_pool", "no pool named \"" + escape_invisible(target) + "\""};
}

Pool* Supervisor::find_pool(std::string_view name) const {
    for (const auto& p : pools_)
        if (p && p->name() == name && !p->removed) return p.get();
    return nullptr;
}

// depends_on, as systemd's Requires= with After= reads: what a pool needs, transitively, and
// what needs it.
std::vector<Pool*> Supervisor::dependencies_of(const Pool& pool) const {
    std::vector<Pool*> out;
    std::vector<const Pool*> todo{&pool};
    while (!todo.empty()) {
        const Pool* p = todo.back();
        todo.pop_back();
        for (const auto& dep : p->cfg->depends_on) {
            Pool* d = find_pool(dep);
            if (!d || d == &pool || std::find(out.begin(), out.end(), d) != out.end()) continue;
            out.push_back(d);
            todo.push_back(d);
        }
    }
    return out;
}

std::vector<Pool*> Supervisor::dependents_of(const Pool& pool) const {
    std::vector<Pool*> out;
    std::vector<const Pool*> todo{&pool};
    while (!todo.empty()) {
        const Pool* p = todo.back();
        todo.pop_back();
        for (const auto& other : pools_) {
            if (!other || other->removed || other.get() == &pool) continue;
            const auto& deps = other->cfg->depends_on;
            if (std::find(deps.begin(), deps.end(), p->name()) == deps.end()) continue;
            if (std::find(out.begin(), out.end(), other.get()) != out.end()) continue;
            out.push_back(other.get());
            todo.push_back(other.get());
        }
    }
    return out;
}

bool Supervisor::deps_up(const Pool& pool) const {
    for (const auto& dep : pool.cfg->depends_on)
        if (const Pool* d = find_pool(dep); d && !pool_up(*d)) return false;
    return true;
}

void Supervisor::command(const std::vector<Worker*>& targets, EventType ev) {
    const auto now = sys_.now();
    // An operator's word overrides a start still queued from boot.
    if (!start_queue_.empty())
        for (Worker* w : targets)
            std::erase(start_queue_, w->id);
    if (ev == EventType::stop) {
        for (Worker* w : targets) {
            Pool& p = *w->pool;
            // A single worker stopped leaves its pool's dependents alone.
            const bool whole = std::count_if(targets.begin(), targets.end(), [&](Worker* t) {
                                   return t->pool == &p;
                               }) == static_cast<long>(p.workers.size());
            stop_in_order(*w, whole, now);
        }
        return;
    }

    // Starting (or restarting) a pool starts what it depends on first, each dependency after
    // its own; its own workers start once those are up (start_dependents releases them).
    for (Worker* w : targets) {
        if (w->retiring) continue;  // scaled away and on its way out: nothing revives it
        w->pool->stop_after_dependents.clear();
        if (!dependencies_held(*w->pool, now)) {
            w->pool->waiting_for_deps = false;
            apply(*w, Event{ev, now, {}});
        } else {
            // A restart's stop goes now; its start waits with the others.
            if (ev == EventType::restart) apply(*w, Event{EventType::stop, now, {}});
            hold_start(*w);
        }
    }
}

void Supervisor::hold_start(Worker& w) {
    Pool& p = *w.pool;
    p.waiting_for_deps = false;
    if (std::find(p.start_after_deps.begin(), p.start_after_deps.end(), w.id) ==
        p.start_after_deps.end())
        p.start_after_deps.push_back(w.id);
    w.last_reason = "waiting for depends_on";
}

// Asks every direct dependency of the pool to start (in order, recursively); true while any of
// them is not up yet.
bool Supervisor::dependencies_held(Pool& pool, fsm::TimePoint now) {
    bool held = false;
    for (const auto& dep : pool.cfg->depends_on) {
        Pool* d = find_pool(dep);
        if (!d || pool_up(*d)) continue;
        held = true;
        const bool deeper = dependencies_held(*d, now);
        for (auto& dw : d->workers) {
            if (dw->retiring) continue;
            if (dw->slot.want == fsm::Want::up &&
                std::find(d->start_after_deps.begin(), d->start_after_deps.end(), dw->id) ==
                    d->start_after_deps.end())
                continue;  // on its way up already
            if (deeper) {
                hold_start(*dw);
                continue;
            }
            if (std::find(d->start_after_deps.begin(), d->start_after_deps.end(), dw->id) !=
                d->start_after_deps.end())
                continue;  // released by start_dependents once its own are up
            spdlog::info("pool {}: starting {} first (depends_on)", pool.name(), dw->name);
            apply(*dw, Event{EventType::start, now, {}});
        }
    }
    return held;
}

bool Supervisor::start_held(const Worker& w) const {
    return held_for_deps(w);
}

// Stopping a pool stops what depends on it first, each dependent after its own dependents;
// a worker whose pool still has dependents running waits (start_dependents releases it).
void Supervisor::stop_in_order(Worker& w, bool whole_pool, fsm::TimePoint now) {
    Pool& p = *w.pool;
    p.waiting_for_deps = false;
    p.start_after_deps.clear();
    if (!whole_pool || !dependents_held(p, now)) {
        apply(w, Event{EventType::stop, now, {}});
        return;
    }
    if (std::find(p.stop_after_dependents.begin(), p.stop_after_dependents.end(), w.id) ==
        p.stop_after_dependents.end())
        p.stop_after_dependents.push_back(w.id);
    w.last_reason = "stopping after the pools that depend on it";
}

// Asks every direct dependent of the pool to stop (in order, recursively); true while any of
// them is still running, stopping or waiting for its own dependents.
bool Supervisor::dependents_held(Pool& pool, fsm::TimePoint now) {
    bool held = false;
    for (auto& other : pools_) {
        if (!other || other->removed || other.get() == &pool) continue;
        const auto& deps = other->cfg->depends_on;
        if (std::find(deps.begin(), deps.end(), pool.name()) == deps.end()) continue;
        for (auto& dw : other->workers) {
            if (dw->slot.want == fsm::Want::down && !dw->alive() && !dw->draining) continue;
            if (std::find(other->stop_after_dependents.begin(), other->stop_after_dependents.end(),
                          dw->id) != other->stop_after_dependents.end())
                continue;  // already waiting its turn
            spdlog::info("pool {}: stopping {} first (depends_on)", pool.name(), dw->name);
            stop_in_order(*dw, true, now);
        }
        held |= pool_busy(*other) || !other->stop_after_dependents.empty();
    }
    return held;
}

bool Supervisor::pool_busy(const Pool& p) {
    for (const auto& w : p.workers)
        if (w->alive() || w->draining || w->slot.state == State::stopping) return true;
    return false;
}

int Supervisor::signal(const std::vector<Worker*>& targets, int sig, bool tree) {
    int n = 0;
    for (Worker* w : targets) {
        if (tree && (w->alive() || has_orphans(*w))) {
            signal_tree(*w, sig);
            ++n;
        } else if (w->alive()) {
            sys_.kill_child(w->pid, sig);
            ++n;
        }
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
        // Orphans of earlier generations (kept ones) live in their own, dead cgroups.
        for (auto& [pid, o] : orphans_) {
            if (o.worker_id != w.id || o.cgroup == w.cgroup) continue;
            sys_.kill_child(pid, sig);
            if (o.group_leader) sys_.kill_group(pid, sig);
            if (o.own_cgroup)
                sig == SIGKILL ? (void)cg->kill(o.cgroup) : (void)cg->signal(o.cgroup, sig);
        }
        return;
    }
    if (w.alive()) {
        // Descendants whose parent exited reparented to us without a word (no SIGCHLD of
        // ours): adopt them now so that the loop below reaches them. Once per loop turn: a
        // stop of a thousand workers signals each twice, and one scan serves them all.
        if (!adopted_this_turn_) adopt_orphans();
        sys_.kill_group(w.pid, sig);
        remember_swept(w, sys_.kill_descendants(w.pid, sig));
    } else {
        // The main process is gone (stop_scope: main): what the sweep found before it went.
        for (const ProcId& id : w.swept)
            sys_.signal_proc(id, sig);
    }
    for (auto& [pid, o] : orphans_) {
        if (o.worker_id != w.id) continue;
        sys_.kill_child(pid, sig);
        if (o.group_leader) sys_.kill_group(pid, sig);
    }
}

void Supervisor::remember_swept(Worker& w, std::vector<ProcId> found) {
    if (w.swept_generation != w.generation) w.swept.clear();
    w.swept_generation = w.generation;
    // Keep the earlier finds that still live (one may have reparented to us since), drop the rest.
    for (const ProcId& id : w.swept)
        if (std::find(found.begin(), found.end(), id) == found.end() && still_there(id))
            found.push_back(id);
    w.swept = std::move(found);
}

bool Supervisor::still_there(const ProcId& id) {
    auto info = sys_.proc_info(id.pid);
    if (!info || info->starttime != id.starttime) return false;
    // A zombie is gone unless it is ours to reap: then the reaper will hear of it.
    return info->state != 'Z' || info->ppid == self_pid_;
}

void Supervisor::apply(Worker& w, const Event& ev) {
    const State from = w.slot.state;
    const pid_t pid_before = w.pid;
    fsm::Actions a = fsm::step(w.slot, ev, w.pool->policy);

    if (a.counted_restart) ++w.restarts;
    if (a.signal) {
        // stop_scope: main signals the main process alone, which then ends its children its
        // own way (postgres' smart shutdown, gunicorn's graceful one); whatever is left when it
        // is gone gets the signal then (on_reaped), and SIGKILL still reaches every process.
        if (*a.signal != SIGKILL && w.alive() &&
            w.pool->cfg->stop_scope == config::StopScope::main) {
            // Without a cgroup, what the main process leaves is found now, while its
            // descendants are still below it (signal 0 only looks).
            if (w.cgroup.empty()) {
                if (!adopted_this_turn_) adopt_orphans();
                remember_swept(w, sys_.kill_descendants(w.pid, 0));
            }
            sys_.kill_child(w.pid, *a.signal);
            if (*a.signal != SIGCONT) sys_.kill_child(w.pid, SIGCONT);
        } else {
            signal_tree(w, *a.signal);
            // A stopped process cannot act on TERM; systemd and s6 follow with CONT likewise.
            if (*a.signal != SIGKILL && *a.signal != SIGCONT) signal_tree(w, SIGCONT);
        }
        if (*a.signal == SIGKILL)
            spdlog::warn("{} pid {}: {}", w.name, pid_before ? pid_before : w.last_pid, a.reason);
    }
    // An operator's stop or restart ends what the slot left running too, kept orphans
    // included: with no process of its own left, nothing else would ever signal them.
    if ((ev.type == EventType::stop || ev.type == EventType::restart) && !w.alive())
        for (auto& [opid, o] : orphans_)
            if (o.worker_id == w.id) terminate_orphan(o, o.grace);
    if (a.cancel_timer) disarm(w);
    if (a.arm) arm(w, *a.arm);
    if (!a.reason.empty()) w.last_reason = a.reason;

    // A rolling restart in progress: the successor is up (retire the old process), or the
    // slot is being stopped (retire it too), or the successor failed (put the old one back).
    if (w.pred && !w.pred->signaled && w.slot.state != from) {
        if (w.slot.state == State::running || w.slot.want == fsm::Want::down) {
            retire_pred(w);
        } else if (w.slot.state == State::backoff || w.slot.state == State::fatal ||
                   w.slot.state == State::exited) {
            // The slot never sat in that state: the old process takes over at once, and the
            // one transition logged and observed is from where the successor was.
            rollback(w, a.reason, from);
            return;
        }
    }

    if (w.slot.state != from)
        note_transition(w, from, a, ev.now, pid_before ? pid_before : w.last_pid);
    if (a.spawn) do_spawn(w);
}

void Supervisor::note_transition(Worker& w, State from, const fsm::Actions& a, fsm::TimePoint now,
                                 pid_t shown) {
    w.state_since = now;
    auto level = (w.slot.state == State::fatal || w.slot.state == State::backoff)
                     ? spdlog::level::warn
                     : spdlog::level::info;
    spdlog::log(level, "{} pid {} {} -> {}: {}", w.name, shown, fsm::to_string(from),
                fsm::to_string(w.slot.state), a.reason);
    notices_.push_back(Notice{.worker_id = w.id, .from = from, .to = w.slot.state, .actions = a});
    check_finished(w, a);
}

// The slot's process is the predecessor again (its successor failed or was discarded): the
// FSM hears of it like of any other change of process, and carries the slot back to running.
void Supervisor::reinstate(Worker& w, State from, std::string reason) {
    fsm::Actions a = fsm::step(w.slot, Event{EventType::reinstate, sys_.now(), {}}, w.pool->policy);
    if (a.cancel_timer) disarm(w);
    if (a.arm) arm(w, *a.arm);
    a.reason = std::move(reason);
    w.last_reason = a.reason;
    if (w.slot.state != from) note_transition(w, from, a, sys_.now(), w.pid);
}

void Supervisor::check_finished(const Worker& w, const fsm::Actions& a) {
    if (!a.gave_up && !a.finished) return;
    if (a.finished) any_finished_ = true;
    if (!w.pool->cfg->essential || shutting_down_) return;
    // A one-shot that left kept orphans (a script that daemonizes) has not finished its job
    // while they run: the exit waits for them (settle()).
    if (a.finished && has_orphans(w)) {
        essential_waiting_.insert(w.id);
        return;
    }
    essential_exit(w);
}

void Supervisor::essential_exit(const Worker& w) {
    int code = w.last_exit ? w.last_exit->shell_code() : (w.last_error.empty() ? 1 : 127);
    std::string why = "essential pool " + w.pool->name() + ": " + w.name + " " +
                      std::string(fsm::to_string(w.slot.state)) + " (" + w.last_reason + ")";
    notices_.push_back(
        Notice{.worker_id = w.id, .essential_exit = true, .code = code, .why = std::move(why)});
}

void Supervisor::deliver_notices() {
    // An observer may cause more (a shutdown stops every pool): those are delivered too.
    while (!notices_.empty()) {
        Notice n = std::move(notices_.front());
        notices_.pop_front();
        if (n.essential_exit) {
            // The first essential exit decides the shutdown; later ones have nothing to add.
            if (on_essential_exit && !shutting_down_) on_essential_exit(n.code, n.why);
            continue;
        }
        const Worker* w = find_worker(n.worker_id);
        if (w && on_transition) on_transition(*w, n.from, n.to, n.actions);
    }
}

void Supervisor::do_spawn(Worker& w) {
    auto p = prepare_spawn(w);
    if (batching_) {
        pending_.push_back(std::move(p));
        return;
    }
    spawn::Result r = sys_.spawn(p->plan);
    const bool ok = record_spawn(*p, r);
    apply(w, Event{ok ? EventType::spawned : EventType::spawn_failed, p->now, {}});
}

void Supervisor::flush_spawns() {
    batching_ = false;
    if (pending_.empty()) return;
    std::vector<spawn::Plan*> plans;
    plans.reserve(pending_.size());
    for (auto& p : pending_)
        plans.push_back(&p->plan);
    auto results = sys_.spawn_all(plans);
    auto batch = std::move(pending_);
    pending_.clear();
    // Every result is on record before any event runs: an event may stop the others (an
    // essential pool's failure shuts down), and a stop must find their processes.
    std::vector<bool> ok(batch.size());
    for (std::size_t i = 0; i < batch.size(); ++i)
        ok[i] = record_spawn(*batch[i], results.at(i));
    for (std::size_t i = 0; i < batch.size(); ++i)
        apply(*batch[i]->w,
              Event{ok[i] ? EventType::spawned : EventType::spawn_failed, batch[i]->now, {}});
}

std::unique_ptr<Supervisor::PendingSpawn> Supervisor::prepare_spawn(Worker& w) {
    Pool& pool = *w.pool;
    auto pending = std::make_unique<PendingSpawn>();
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
    if (!pool.cfg->cwd.empty()) plan.cwd = pool.cfg->cwd.c_str();
    // Identity and limits, resolved when the config was loaded.
    const auto& pc = *pool.cfg;
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

bool Supervisor::record_spawn(PendingSpawn& pending, const spawn::Result& r) {
    Worker& w = *pending.w;
    spawn::Plan& plan = pending.plan;
    const std::string& cg_path = pending.cg_path;
    const auto now = pending.now;
    if (setup_.output) setup_.output->after_spawn(w, r.ok ? r.pid : 0);
    if (plan.cgroup_fd >= 0) ::close(plan.cgroup_fd);
    plan.cgroup_fd = -1;
    if (!r.ok) {
        if (r.pid > 0) failed_spawns_.insert(r.pid);
        if (!cg_path.empty()) release_cgroup(cg_path);
        w.last_error = r.message;
        spdlog::error("{} spawn failed: {}", w.name, r.message);
        return false;
    }
    w.pid = r.pid;
    w.last_pid = r.pid;
    ++w.generation;
    w.started_at = now;
    w.last_error.clear();
    w.cgroup = cg_path;
    if (!cg_path.empty()) cgroup_owner_[cg_path] = Owner{w.id, w.generation, w.name};
    by_pid_[r.pid] = &w;
    ++pid_epoch_;
    spdlog::debug("{} spawned pid {} (generation {})", w.name, r.pid, w.generation);
    return true;
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
    ++reaped_;
    ++pid_epoch_;
    if (failed_spawns_.erase(pid)) return;
    const ExitInfo info = decode_wait_status(wait_status);
    if (auto p = pred_by_pid_.find(pid); p != pred_by_pid_.end()) {
        Worker& w = *p->second;
        pred_by_pid_.erase(p);
        if (w.pred && w.pred->pid == pid) {
            spdlog::info("{} old pid {} {} ({})", w.name, pid, describe(info),
                         w.pred->signaled ? "replaced" : "died during its replacement");
            // Its leftovers are traced back to its generation, whose orphan policy applies.
            Owner old{w.id, w.pred->generation, w.name};
            batch_deaths_.push_back(old);
            remember_dead_leader(pid, old);
            const std::string cg = w.pred->cgroup;
            w.pred.reset();
            if (!cg.empty()) release_cgroup(cg);
        }
        return;
    }
    if (auto o = orphans_.find(pid); o != orphans_.end()) {
        spdlog::info("orphan pid {} ({}) from {} {}", pid, o->second.comm, o->second.from,
                     describe(info));
        batch_deaths_.push_back(Owner{o->second.worker_id, o->second.generation, o->second.from});
        orphans_.erase(o);
        any_finished_ = true;  // a kept orphan may have been all that held the daemon up
        return;
    }
    auto it = by_pid_.find(pid);
    if (it == by_pid_.end()) {
        // A descendant that reparented to us and died before our next scan adopted it.
        spdlog::debug("reaped pid {} (a descendant, not a worker): {}", pid, describe(info));
        adopt_due_ = true;  // its own children, if any, are ours now
        return;
    }
    Worker& w = *it->second;
    by_pid_.erase(it);
    w.pid = 0;
    const auto now = sys_.now();
    w.last_exit = info;
    w.last_exit_pid = pid;
    ++w.exits[info.code ? "code=\"" + std::to_string(*info.code) + "\""
                        : "signal=\"" + std::string(signal_name(info.signal.value_or(0))) + "\""];
    w.last_exit_at = now;
    Owner me{w.id, w.generation, w.name};
    batch_deaths_.push_back(me);
    remember_dead_leader(pid, me);
    if (w.slot.state == State::stopping) {
        // Hold the exit until the rest of the tree is gone too (checked in after_reap).
        w.draining = true;
        w.drain_exit = info;
        // stop_scope: main: the main process is gone; what it left gets the signal now.
        if (w.pool->cfg->stop_scope == config::StopScope::main && !w.slot.killed) {
            signal_tree(w, w.pool->cfg->stop_signal);
            signal_tree(w, SIGCONT);
        }
        return;
    }
    // A crash: what it left running goes before its replacement comes, so that two
    // generations never hold the same listener or files (nginx retries a busy port; most
    // programs just fail). Bounded by stop_timeout; after_reap applies the exit once they
    // are gone, at once when there are none.
    // The usual crash leaves nothing: an empty cgroup restarts at once, without waiting for
    // the loop's scan of our children (half a millisecond at 1000 workers).
    const bool left_nothing = !w.cgroup.empty() && sys_.cgroups() && !has_orphans(w) &&
                              !sys_.cgroups()->populated(w.cgroup).value_or(true);
    if (w.pool->cfg->orphans == config::OrphanPolicy::kill && !shutting_down_ && !left_nothing) {
        w.draining = true;
        w.drain_exit = info;
        w.drain_until = now + w.pool->cfg->stop_timeout + kDrainGrace;
        w.last_reason = "pid " + std::to_string(pid) + " " + describe(info) +
                        "; stopping what it left running before it restarts";
        disarm(w);
        crash_draining_.insert(w.id);
        return;
    }
    const std::string old_cgroup = w.cgroup;
    w.cgroup.clear();
    apply(w, Event{EventType::exited, now, info});
    // After the restart: the replacement is born in a cgroup of its own and need not wait
    // for the old one's rmdir.
    if (!old_cgroup.empty()) release_cgroup(old_cgroup);
}

std::vector<std::pair<pid_t, std::string>> Supervisor::uncontained() const {
    std::vector<std::pair<pid_t, std::string>> out;
    for (const auto& [pid, w] : by_pid_)
        if (w->cgroup.empty()) out.emplace_back(pid, w->name);
    for (const auto& [pid, w] : pred_by_pid_)
        if (w->pred && w->pred->cgroup.empty()) out.emplace_back(pid, w->name + " (replaced)");
    // An orphan of a kill_mode: group pool sits in the daemon's own cgroup, which no successor
    // searches: only a worker cgroup of ours contains it.
    for (const auto& [pid, o] : orphans_)
        if (o.cgroup.empty() || !cgroup_owner_.count(o.cgroup))
            out.emplace_back(pid, o.from + " orphan");
    return out;
}

void Supervisor::remember_dead_leader(pid_t pid, const Owner& owner) {
    dead_leaders_[pid] = owner;
    dead_leader_order_.push_back(pid);
    while (dead_leader_order_.size() > kDeadLeaderMemory) {
        dead_leaders_.erase(dead_leader_order_.front());
        dead_leader_order_.pop_front();
    }
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
    // A daemon-style double fork: its session or group leader may be a zombie still hanging
    // under the worker; follow ppid links up from it.
    for (pid_t key : {info.sid, info.pgid}) {
        pid_t at = key;
        for (int depth = 0; depth < 64 && at > 1 && at != self_pid_; ++depth) {
            if (auto it = by_pid_.find(at); it != by_pid_.end())
                return Owner{it->second->id, it->second->generation, it->second->name};
            auto up = sys_.proc_info(at);
            if (!up) break;
            at = up->ppid;
        }
    }
    // A descendant a tree signal found (it may have called setsid, out of every group we know).
    for (const auto& p : pools_)
        for (const auto& w : p->workers)
            for (const ProcId& id : w->swept)
                if (id.pid == info.pid && id.starttime == info.starttime)
                    return Owner{w->id, w->swept_generation, w->name};
    // Without a cgroup, a double-forked, setsid daemon is in no group or session of ours and
    // its parents are gone; what it inherited from its worker still names it.
    if (auto env = sys_.worker_env(info.pid)) {
        for (const auto& p : pools_) {
            if (p->name() != env->first) continue;
            for (const auto& w : p->workers) {
                if (w->index != env->second) continue;
                // Born after the current generation's main process: that generation's. Before
                // it: an earlier, dead generation's.
                std::uint64_t gen = w->generation;
                if (w->alive()) {
                    auto main = sys_.proc_info(w->pid);
                    if (main && info.starttime < main->starttime && gen > 0) --gen;
                }
                return Owner{w->id, gen, w->name};
            }
        }
    }
    // Only one death in this batch: whatever was just reparented came from it.
    if (batch_deaths_.size() == 1) return batch_deaths_.front();
    return std::nullopt;
}

bool Supervisor::has_orphans(const Worker& w) const {
    for (const auto& [pid, o] : orphans_)
        if (o.worker_id == w.id) return true;
    return false;
}

bool Supervisor::known_child(pid_t pid) const {
    return by_pid_.count(pid) || pred_by_pid_.count(pid) || orphans_.count(pid) ||
           failed_spawns_.count(pid);
}

void Supervisor::adopt_orphans() {
    adopted_this_turn_ = true;
    for (pid_t pid : sys_.children()) {
        // A process that belongs to a worker in any role (its main process, the old process a
        // roll is replacing, a failed spawn) is never an orphan.
        if (known_child(pid)) continue;
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
            // Only a worker cgroup of ours: a process of a kill_mode: group pool lives in the
            // daemon's own cgroup, and signalling that would signal the daemon.
            o.own_cgroup =
                cgroup_owner_.count(info->cgroup) && (info->cgroup != w->cgroup || !w->alive());
        }
        auto& rec = orphans_[pid] = std::move(o);
        ++pid_epoch_;
        // Orphans of a worker being stopped, or of a daemon shutting down, always go.
        const bool stopping = w && (w->slot.state == State::stopping || w->draining);
        if (w && !stopping && !shutting_down_ && w->pid != 0 && rec.generation == w->generation) {
            // Its parent exited but its worker lives (a daemonizing child): still the worker's,
            // as it would be inside the worker's cgroup; the policy applies when the worker dies.
            spdlog::info("adopted pid {} ({}) from {}: kept while {} runs", pid, rec.comm, rec.from,
                         rec.from);
            continue;
        }
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
    if (has_orphans(w)) return false;
    if (!w.cgroup.empty() && sys_.cgroups()) {
        // populated 0 is the definition of "stopped" when a cgroup holds the tree.
        return !sys_.cgroups()->populated(w.cgroup).value_or(false);
    }
    for (const ProcId& id : w.swept)
        if (still_there(id)) return false;
    return true;
}

void Supervisor::after_reap() {
    if (!batch_deaths_.empty() || !orphans_.empty() || adopt_due_) adopt_orphans();
    // Adopted earlier while their worker lived: that worker is dead now, so its policy applies.
    for (const Owner& dead : batch_deaths_) {
        const Worker* w = find_worker(dead.worker_id);
        if (w && w->pid != 0 && w->generation == dead.generation) continue;  // an orphan died
        for (auto& [pid, o] : orphans_)
            if (o.worker_id == dead.worker_id && o.generation == dead.generation &&
                !o.terminating && (o.policy == config::OrphanPolicy::kill || shutting_down_))
                terminate_orphan(o, o.grace);
    }
    batch_deaths_.clear();
    adopt_due_ = false;
    const auto now = sys_.now();
    for (auto& p : pools_) {
        for (auto& w : p->workers) {
            if (!w->draining || !tree_gone(*w)) continue;
            w->draining = false;
            w->drain_until.reset();
            crash_draining_.erase(w->id);
            w->swept.clear();
            const std::string old = w->cgroup;
            w->cgroup.clear();
            // Restart first: the replacement is born in a cgroup of its own and need not wait
            // for the old one's rmdir (about a millisecond of the kernel's).
            apply(*w, Event{EventType::exited, now, w->drain_exit});
            if (!old.empty()) release_cgroup(old);
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
    // A crash's leftovers that outlived stop_timeout and KILL: the replacement waits no more.
    for (auto it = crash_draining_.begin(); it != crash_draining_.end();) {
        Worker* w = find_worker(*it);
        if (!w || !w->draining || !w->drain_until) {
            it = crash_draining_.erase(it);
            continue;
        }
        if (*w->drain_until > now) {
            ++it;
            continue;
        }
        it = crash_draining_.erase(it);
        spdlog::warn("{}: leftovers of pid {} still there after stop_timeout; starting anyway",
                     w->name, w->last_exit_pid);
        signal_tree(*w, SIGKILL);
        w->draining = false;
        w->drain_until.reset();
        w->swept.clear();
        const std::string old = w->cgroup;
        w->cgroup.clear();
        if (!old.empty()) release_cgroup(old);
        apply(*w, Event{EventType::exited, now, w->drain_exit});
    }
    for (auto& [pid, w] : pred_by_pid_) {
        if (!w->pred || !w->pred->kill_at || *w->pred->kill_at > now) continue;
        spdlog::warn("{} old pid {} did not stop within stop_timeout; sending KILL", w->name, pid);
        w->pred->kill_at.reset();
        sys_.kill_group(pid, SIGKILL);
        if (!w->pred->cgroup.empty() && sys_.cgroups()) sys_.cgroups()->kill(w->pred->cgroup);
    }
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
    for (const auto& [pid, w] : pred_by_pid_)
        if (w->pred && w->pred->kill_at) consider(*w->pred->kill_at);
    for (std::uint64_t id : crash_draining_)
        if (const Worker* w = find_worker(id); w && w->drain_until) consider(*w->drain_until);
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
    auto busy = [](const Pool& p) { return pool_busy(p); };
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
    if (!by_pid_.empty() || !orphans_.empty() || !pred_by_pid_.empty()) return false;
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
    for (auto& [pid, w] : pred_by_pid_)
        sys_.kill_group(pid, SIGKILL);
    for (pid_t pid : sys_.children())
        sys_.kill_child(pid, SIGKILL);
    sys_.kill_all_but_self();
}

void Supervisor::add_waiter(Waiter w) {
    waiters_.push_back(std::move(w));
}

void Supervisor::settle() {
    adopted_this_turn_ = false;
    advance_rolls();
    remove_retired();
    start_dependents();
    if (shutting_down_) stage_shutdown();
    for (auto it = essential_waiting_.begin(); it != essential_waiting_.end();) {
        const Worker* w = find_worker(*it);
        if (w && w->slot.state == State::exited && has_orphans(*w)) {
            ++it;
            continue;
        }
        it = essential_waiting_.erase(it);
        // Restarted or removed meanwhile: nothing finished after all.
        if (w && w->slot.state == State::exited && !shutting_down_) essential_exit(*w);
    }
    // Every worker has finished and nothing they left (kept orphans) runs: the job is done.
    if (any_finished_ && !shutting_down_ && orphans_.empty()) {
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
    deliver_notices();
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

namespace cow {

// ---- sd_notify ----

// The worker a process may speak for: itself, or the worker whose tree it is in (its cgroup,
// or else its chain of parents). A process that is neither gets nothing.
Worker* Supervisor::owner_of_pid(pid_t pid) {
    if (auto it = by_pid_.find(pid); it != by_pid_.end()) return it->second;
    auto info = sys_.proc_info(pid);
    if (!info) return nullptr;
    if (!info->cgroup.empty())
        if (auto it = cgroup_owner_.find(info->cgroup); it != cgroup_owner_.end()) {
            Worker* w = find_worker(it->second.worker_id);
            return w && w->generation == it->second.generation && w->alive() ? w : nullptr;
        }
    pid_t p = info->ppid;
    for (int hops = 0; hops < 32 && p > 1; ++hops) {
        if (auto it = by_pid_.find(p); it != by_pid_.end()) return it->second;
        auto up = sys_.proc_info(p);
        if (!up) return nullptr;
        p = up->ppid;
    }
    return nullptr;
}

void Supervisor::on_notify(pid_t sender, const NotifyMessage& msg) {
    Worker* w = owner_of_pid(sender);
    if (!w) {
        spdlog::debug("notify from pid {} ignored: not a worker or a worker's descendant", sender);
        return;
    }
    const auto now = sys_.now();
    if (msg.status) w->status_text = *msg.status;
    if (msg.stopping) w->said_stopping = true;
    if (w->pool->cfg->ready != config::Ready::notify) return;
    if (msg.extend_usec)
        apply(*w, Event{EventType::extend, now, {}, Millis(*msg.extend_usec / 1000)});
    if (msg.ready) apply(*w, Event{EventType::ready, now, {}});
    if (msg.watchdog) apply(*w, Event{EventType::ping, now, {}});
}

// ---- rolling replacement of one worker ----

void Supervisor::begin_replace(Worker& w) {
    if (w.slot.state != State::running || !w.alive() || w.pred) {
        apply(w, Event{EventType::restart, sys_.now(), {}});
        return;
    }
    Worker::Predecessor p;
    p.pid = w.pid;
    p.generation = w.generation;
    p.cgroup = w.cgroup;
    p.started_at = w.started_at;
    by_pid_.erase(w.pid);
    pred_by_pid_[w.pid] = &w;
    w.pred = p;
    w.pid = 0;
    w.cgroup.clear();
    w.status_text.clear();
    w.said_stopping = false;
    apply(w, Event{EventType::replace, sys_.now(), {}});
}

void Supervisor::retire_pred(Worker& w) {
    auto& p = *w.pred;
    const int sig = w.pool->cfg->stop_signal;
    spdlog::info("{} pid {} replaces pid {}; stopping the old one", w.name, w.pid, p.pid);
    for (int s : {sig, SIGCONT}) {
        // Unreaped, so its group is still its own; its cgroup is its generation's alone.
        sys_.kill_group(p.pid, s);
        if (!p.cgroup.empty() && sys_.cgroups()) sys_.cgroups()->signal(p.cgroup, s);
    }
    p.signaled = true;
    p.kill_at = sys_.now() + w.pool->cfg->stop_timeout;
}

void Supervisor::rollback(Worker& w, const std::string& why, State from) {
    auto p = *w.pred;
    w.pred.reset();
    pred_by_pid_.erase(p.pid);
    const pid_t failed = w.last_pid;
    if (!w.cgroup.empty()) release_cgroup(w.cgroup);
    w.pid = p.pid;
    w.last_pid = p.pid;
    w.generation = p.generation;
    w.cgroup = p.cgroup;
    w.started_at = p.started_at;
    by_pid_[p.pid] = &w;
    ++w.roll_failures;
    // The FSM's reason speaks of a retry that will not happen; say what the successor did.
    const std::string what = !w.last_error.empty() ? w.last_error
                             : w.last_exit         ? describe(*w.last_exit)
                                                   : why;
    w.roll_error =
        "replacement pid " + std::to_string(failed) + " " + what + " before it was ready";
    reinstate(w, from, w.roll_error + "; the old process keeps serving");
}

// ---- scaling ----

int Supervisor::scale(Pool& pool, int size) {
    const int old = static_cast<int>(std::count_if(pool.workers.begin(), pool.workers.end(),
                                                   [](const auto& w) { return !w->retiring; }));
    const auto now = sys_.now();
    // Down: the highest indexes stop gracefully and leave once gone.
    for (auto& w : pool.workers) {
        if (w->index < size || w->retiring) continue;
        w->retiring = true;
        std::erase(pool.start_after_deps, w->id);  // a held start goes with it
        apply(*w, Event{EventType::stop, now, {}});
    }
    // Up: new indexes (or ones still retiring from an earlier scale down, revived).
    for (int i = 0; i < size; ++i) {
        Worker* w = nullptr;
        for (auto& x : pool.workers)
            if (x->index == i) w = x.get();
        if (!w) w = &add_worker(pool, i);
        if (w->retiring || i >= old) {
            w->retiring = false;
            // New workers follow depends_on like the rest: while a dependency is not up they
            // wait for it (with the pool, if the whole pool waits), and start_dependents
            // releases them.
            if (pool.waiting_for_deps) continue;
            if (!deps_up(pool)) {
                hold_start(*w);
                continue;
            }
            apply(*w, Event{EventType::start, now, {}});
        }
    }
    std::sort(pool.workers.begin(), pool.workers.end(),
              [](const auto& a, const auto& b) { return a->index < b->index; });
    spdlog::info("pool {} scaled from {} to {} workers", pool.name(), old, size);
    return old;
}

void Supervisor::remove_retired() {
    for (auto& p : pools_) {
        auto& ws = p->workers;
        for (auto it = ws.begin(); it != ws.end();) {
            Worker& w = **it;
            const bool gone = w.retiring && !w.alive() && !w.draining && !w.pred &&
                              (w.slot.state == State::stopped || w.slot.state == State::exited ||
                               w.slot.state == State::fatal);
            if (!gone) {
                ++it;
                continue;
            }
            if (setup_.output) setup_.output->worker_removed(w);
            by_id_.erase(w.id);
            it = ws.erase(it);
        }
    }
    std::erase_if(pools_, [this](const std::unique_ptr<Pool>& p) {
        if (!p->removed || !p->workers.empty()) return false;
        spdlog::info("pool {} is gone", p->name());
        if (setup_.output) setup_.output->pool_removed(p->name());
        return true;
    });
}

}  // namespace cow
