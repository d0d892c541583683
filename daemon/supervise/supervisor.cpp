#include "daemon/supervise/supervisor.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>

#include <fcntl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include "core/escape.hpp"
#include "core/names.hpp"
#include "core/protocol_names.hpp"
#include "core/signal_names.hpp"
#include "daemon/supervise/output_hooks.hpp"

namespace cow {

using fsm::Event;
using fsm::EventType;
using fsm::State;

namespace {
// After stop_timeout the leftovers of a crash got SIGKILL; this long more and the replacement
// starts whatever is still there (a process stuck in the kernel).
constexpr Millis kDrainGrace{2000};
}  // namespace

Supervisor::Supervisor(Sys& sys, std::shared_ptr<const config::Config> cfg, SupervisorSetup setup)
    : sys_(sys),
      cfg_(std::move(cfg)),
      lineage_(sys, pools_, [this](std::uint64_t id) { return find_worker(id); }),
      launcher_(sys, lineage_, std::move(setup)),
      rollout_(std::make_unique<Rollout>(*this)) {
    for (const auto& pc : cfg_->pools)
        add_pool(std::make_shared<const config::PoolConfig>(pc));
    oom_seen_ = sys_.oom_counters("");
}

Supervisor::~Supervisor() {
    for (auto& p : pools_) {
        if (p->tpl.sock >= 0) ::close(p->tpl.sock);
        for (const auto& f : p->tpl.forks)
            if (f.go >= 0) ::close(f.go);
    }
}

Pool& Supervisor::add_pool(std::shared_ptr<const config::PoolConfig> pc) {
    auto pool = std::make_unique<Pool>();
    pool->cfg = std::move(pc);
    pool->policy = fsm::policy_from(*pool->cfg);
    pool->use_cgroup = sys_.cgroups() != nullptr && pool->cfg->kill_mode != config::KillMode::group;
    launcher_.build_template(*pool);
    for (int i = 0; i < pool->cfg->workers; ++i)
        add_worker(*pool, i);
    pools_.push_back(std::move(pool));
    return *pools_.back();
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
        launcher_.open_batch();
        apply(*w, Event{EventType::start, now, {}});
        ++started;
        if (launcher_.queued() >= kSpawnBatch || start_queue_.empty()) flush_spawns();
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

int Supervisor::signal(const std::vector<Worker*>& targets, int sig, bool tree) {
    int n = 0;
    for (Worker* w : targets) {
        if (sig != 0 && sig != SIGCONT && w->alive())
            w->sent.push_back(SentSignal{sig, "cowctl signal"});
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
        for (auto& [pid, o] : lineage_.orphans()) {
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
    for (auto& [pid, o] : lineage_.orphans()) {
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
        if (std::find(found.begin(), found.end(), id) == found.end() && lineage_.still_there(id))
            found.push_back(id);
    w.swept = std::move(found);
}

void Supervisor::apply(Worker& w, const Event& ev) {
    const State from = w.slot.state;
    const pid_t pid_before = w.pid;
    fsm::Actions a = fsm::step(w.slot, ev, w.pool->policy);

    if (a.counted_restart) ++w.restarts;
    // The exit's cause (found at reap) goes into the transition's reason, and so into the log
    // line, `status` and the observers.
    if (const ExitRecord* last = w.last_main_exit();
        ev.type == EventType::exited && last && last->cause.cause != ExitCause::exited) {
        const std::string plain = describe(ev.exit);
        if (auto at = a.reason.find(plain); at != std::string::npos)
            a.reason.replace(at, plain.size(), describe(ev.exit, last->cause));
    }
    if (a.signal) {
        if (*a.signal != SIGCONT) w.sent.push_back(SentSignal{*a.signal, stop_reason(w)});
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
        for (auto& [opid, o] : lineage_.orphans())
            if (o.worker_id == w.id) terminate_orphan(o, o.grace);
    if (a.cancel_timer) TimerQueue::disarm(w);
    if (a.arm) arm(w, *a.arm);
    if (!a.reason.empty()) w.last_reason = a.reason;

    // A rolling restart in progress: the successor is up (retire the old process), or the
    // slot is being stopped (retire it too), or the successor failed (put the old one back).
    if (w.pred && !w.pred->signaled && w.slot.state != from) {
        if (w.slot.state == State::running || w.slot.want == fsm::Want::down) {
            rollout_->retire_pred(w);
        } else if (w.slot.state == State::backoff || w.slot.state == State::fatal ||
                   w.slot.state == State::exited) {
            // The slot never sat in that state: the old process takes over at once, and the
            // one transition logged and observed is from where the successor was.
            rollout_->rollback(w, a.reason, from);
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
    events_.emit(now, proto::event::transition, w.pool->name(), w.name,
                 fmt::format("{} pid {} {} -> {}: {}", w.name, shown, fsm::to_string(from),
                             fsm::to_string(w.slot.state), a.reason),
                 {{"pid", shown},
                  {"generation", w.generation},
                  {"from", fsm::to_string(from)},
                  {"to", fsm::to_string(w.slot.state)},
                  {"reason", a.reason}});
    notices_.push_back(Notice{.worker_id = w.id, .from = from, .to = w.slot.state, .actions = a});
    check_finished(w, a);
}

// The slot's process is the predecessor again (its successor failed or was discarded): the
// FSM hears of it like of any other change of process, and carries the slot back to running.
void Supervisor::reinstate(Worker& w, State from, std::string reason) {
    fsm::Actions a = fsm::step(w.slot, Event{EventType::reinstate, sys_.now(), {}}, w.pool->policy);
    if (a.cancel_timer) TimerQueue::disarm(w);
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
    if (w.pool->cfg->spawn == config::SpawnMode::template_) return template_spawn(w);
    if (auto r = launcher_.launch(w))
        apply(w, Event{r->ok ? EventType::spawned : EventType::spawn_failed, r->at, {}});
}

void Supervisor::flush_spawns() {
    for (const auto& r : launcher_.flush())
        apply(*r.w, Event{r.ok ? EventType::spawned : EventType::spawn_failed, r.at, {}});
}

void Supervisor::on_reaped(pid_t pid, int wait_status) {
    if (template_reaped(pid, decode_wait_status(wait_status))) return;
    auto reaped = lineage_.reaped(pid);
    using Kind = Lineage::Reaped::Kind;
    if (reaped.kind == Kind::failed_spawn) return;
    const ExitInfo info = decode_wait_status(wait_status);
    if (reaped.kind == Kind::predecessor) {
        Worker& w = *reaped.worker;
        if (w.pred && w.pred->pid == pid) {
            spdlog::info("{} old pid {} {} ({})", w.name, pid, describe(info),
                         w.pred->signaled ? "replaced" : "died during its replacement");
            record_exit(w, pid, info, sys_.now(), &*w.pred);
            // Its leftovers are traced back to its generation, whose orphan policy applies.
            lineage_.leader_died(pid, Lineage::Owner{w.id, w.pred->generation, w.name});
            const std::string cg = w.pred->cgroup;
            w.pred.reset();
            if (!cg.empty()) lineage_.release_cgroup(cg);
        }
        return;
    }
    if (reaped.kind == Kind::orphan) {
        const Orphan& o = *reaped.orphan;
        spdlog::info("orphan pid {} ({}) from {} {}", pid, o.comm, o.from, describe(info));
        orphan_event(o, "gone", describe(info));
        if (o.policy == config::OrphanPolicy::keep) record_orphan_exit(o, info);
        lineage_.orphan_died(Lineage::Owner{o.worker_id, o.generation, o.from});
        any_finished_ = true;  // a kept orphan may have been all that held the daemon up
        return;
    }
    if (reaped.kind == Kind::stranger) {
        // A descendant that reparented to us and died before our next scan adopted it; its
        // own children, if any, are ours now (the Lineage looks at the end of the batch).
        spdlog::debug("reaped pid {} (a descendant, not a worker): {}", pid, describe(info));
        return;
    }
    Worker& w = *reaped.worker;
    w.pid = 0;
    const auto now = sys_.now();
    w.last_exit = info;
    w.last_exit_pid = pid;
    w.last_exit_at = now;
    record_exit(w, pid, info, now);
    lineage_.leader_died(pid, Lineage::Owner{w.id, w.generation, w.name});
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
        TimerQueue::disarm(w);
        crash_draining_.insert(w.id);
        return;
    }
    const std::string old_cgroup = w.cgroup;
    w.cgroup.clear();
    apply(w, Event{EventType::exited, now, info});
    // After the restart: the replacement is born in a cgroup of its own and need not wait
    // for the old one's rmdir.
    if (!old_cgroup.empty()) lineage_.release_cgroup(old_cgroup);
}

// The Lineage finds and traces them; each pool's orphan policy is applied here.
void Supervisor::adopt_orphans() {
    // A worker a template has just forked is our child before the template's answer names
    // it: a scan now would take it for an orphan. It waits for the answers (milliseconds).
    if (forks_in_flight()) {
        adoption_deferred_ = true;
        return;
    }
    adoption_deferred_ = false;
    adopted_this_turn_ = true;
    for (pid_t pid : lineage_.adopt()) {
        Orphan& rec = lineage_.orphans().at(pid);
        const Worker* w = rec.worker_id ? find_worker(rec.worker_id) : nullptr;
        // Orphans of a worker being stopped, or of a daemon shutting down, always go.
        const bool stopping = w && (w->slot.state == State::stopping || w->draining);
        if (w && !stopping && !shutting_down_ && w->pid != 0 && rec.generation == w->generation) {
            // Its parent exited but its worker lives (a daemonizing child): still the worker's,
            // as it would be inside the worker's cgroup; the policy applies when the worker dies.
            spdlog::info("adopted pid {} ({}) from {}: kept while {} runs", pid, rec.comm, rec.from,
                         rec.from);
            orphan_event(rec, "adopted", "kept while " + rec.from + " runs");
            continue;
        }
        if (rec.policy == config::OrphanPolicy::kill || stopping || shutting_down_) {
            spdlog::info("adopted orphan pid {} ({}) from {}: sending TERM, KILL in {}", pid,
                         rec.comm, rec.from, format_duration(rec.grace));
            orphan_event(rec, "adopted", "sending TERM, KILL in " + format_duration(rec.grace));
            terminate_orphan(rec, rec.grace);
        } else {
            spdlog::info("adopted orphan pid {} ({}) from {}: keeping it (orphans: keep)", pid,
                         rec.comm, rec.from);
            orphan_event(rec, "adopted", "keeping it (orphans: keep)");
        }
    }
}

void Supervisor::unhealthy(Worker& w, const std::string& why) {
    if (w.slot.state != State::running) return;
    w.stop_reason = why;
    Event ev{EventType::restart, sys_.now(), {}};
    ev.unhealthy = true;
    apply(w, ev);
}

// Why cowherd is stopping the worker's current process, for the cause of its exit.
std::string Supervisor::stop_reason(const Worker& w) const {
    if (shutting_down_) return "shutdown";
    switch (w.slot.stop_cause) {
        case fsm::StopCause::watchdog:
            return "watchdog";
        case fsm::StopCause::start_failed:
            return "start timeout";
        case fsm::StopCause::liveness:  // the probe's own words, set by unhealthy()
        case fsm::StopCause::requested:
            break;
    }
    return w.stop_reason.empty() ? "stop" : w.stop_reason;
}

// The kernel's OOM counters, read only for a SIGKILL that cowherd did not send. The container's
// and the machine's counters are shared by every worker: a rise seen by one death explains the
// other SIGKILLs of the same moment too (kOomWindow), not only the first one classified. The
// machine's counter is used only where our cgroup has none.
OomEvidence Supervisor::oom_evidence(const std::vector<SentSignal>& sent, const std::string& cgroup,
                                     pid_t pid, const ExitInfo& info) {
    if (info.signal.value_or(0) != SIGKILL) return {};
    for (const auto& s : sent)
        if (s.signal == SIGKILL) return {};
    const auto now = sys_.now();
    const oom::Counters c = sys_.oom_counters(cgroup);
    OomEvidence e;
    e.kernel = sys_.oom_record(pid).value_or("");
    e.worker = c.worker.value_or(0) > 0;  // the generation's own cgroup: any kill is this one's
    auto rose = [](const std::optional<std::uint64_t>& cur, std::optional<std::uint64_t>& seen) {
        const bool up = cur && seen && *cur > *seen;
        if (cur) seen = cur;
        return up;
    };
    e.container = rose(c.container, oom_seen_.container);
    e.machine = rose(c.machine, oom_seen_.machine);
    // The machine's count is only a guess, and a poor one where our own cgroup's count is there
    // to say the kill was not among us.
    if (c.container) e.machine = false;
    if (e.container || e.machine) {
        oom_recent_ = e;
        oom_recent_until_ = now + kOomWindow;
    } else if (now < oom_recent_until_) {
        e.container = oom_recent_.container;
        e.machine = oom_recent_.machine;
    }
    return e;
}

void Supervisor::record_exit(Worker& w, pid_t pid, const ExitInfo& info, fsm::TimePoint now,
                             const Worker::Predecessor* pred) {
    ExitRecord r;
    r.pid = pid;
    r.generation = pred ? pred->generation : w.generation;
    r.started_at = pred ? pred->started_at : w.started_at;
    r.ended_at = now;
    r.info = info;
    const auto& sent = pred ? pred->sent : w.sent;
    r.cause =
        classify_exit(info, sent, oom_evidence(sent, pred ? pred->cgroup : w.cgroup, pid, info));
    file_exit(w, std::move(r), fmt::format("pid {}", pid));
}

// The record goes to the slot's history, its count to the metrics, and it is an event.
void Supervisor::file_exit(Worker& w, ExitRecord r, const std::string& who) {
    std::string key = "cause=\"" + std::string(to_string(r.cause.cause)) + "\",";
    key += r.info.code ? "code=\"" + std::to_string(*r.info.code) + "\""
                       : "signal=\"" + std::string(signal_name(r.info.signal.value_or(0))) + "\"";
    ++w.exits[key];
    const std::string what = fmt::format("{} {} {}", w.name, who, describe(r.info, r.cause));
    // The transition's line says it too; these two get a line of their own to grep for.
    if (r.cause.cause == ExitCause::oom_killed || r.cause.cause == ExitCause::killed_externally)
        spdlog::warn("{}", what);
    events_.emit(r.ended_at, proto::event::exit, w.pool->name(), w.name, what, exit_fields(r));
    w.history.push_back(std::move(r));
    if (w.history.size() > Worker::kHistory)
        w.history.erase(w.history.begin(), w.history.end() - Worker::kHistory);
}

// A kept orphan is the slot's as much as its main process (a daemonized service): its exit gets
// a record in the slot's history, an event and a count, just the same, marked with its name.
void Supervisor::record_orphan_exit(const Orphan& o, const ExitInfo& info) {
    Worker* w = o.worker_id ? find_worker(o.worker_id) : nullptr;
    if (!w) return;
    const auto now = sys_.now();
    ExitRecord r;
    r.pid = o.pid;
    r.generation = o.generation;
    r.started_at = o.adopted_at;
    // Its age, from its start time (ticks since boot): longer than since it was adopted.
    timespec boot{};
    const long tick = ::sysconf(_SC_CLK_TCK);
    if (o.starttime && tick > 0 && ::clock_gettime(CLOCK_BOOTTIME, &boot) == 0) {
        const auto up = std::chrono::seconds(boot.tv_sec) + std::chrono::nanoseconds(boot.tv_nsec);
        const auto born = std::chrono::milliseconds(o.starttime * 1000 / tick);
        if (up > born)
            r.started_at = now - std::chrono::duration_cast<fsm::Clock::duration>(up - born);
    }
    r.ended_at = now;
    r.info = info;
    r.orphan = o.comm;
    // Cowherd ends a kept orphan only with its slot (stop, restart, shutdown): TERM, then KILL.
    std::vector<SentSignal> sent;
    if (o.terminating)
        sent = {{SIGTERM, "ended with " + o.from},
                {SIGCONT, "ended with " + o.from},
                {SIGKILL, "ended with " + o.from}};
    r.cause = classify_exit(info, sent, oom_evidence(sent, o.cgroup, o.pid, info));
    file_exit(*w, std::move(r), fmt::format("orphan pid {} ({})", o.pid, o.comm));
}

void Supervisor::orphan_event(const Orphan& o, std::string_view what, const std::string& how) {
    const Worker* w = o.worker_id ? find_worker(o.worker_id) : nullptr;
    const std::string pool = w ? w->pool->name() : o.from.substr(0, o.from.rfind('.'));
    events_.emit(sys_.now(), proto::event::orphan, pool, o.from,
                 fmt::format("orphan pid {} ({}) from {} {}: {}", o.pid, o.comm, o.from, what, how),
                 {{"pid", o.pid}, {"comm", o.comm}, {"what", what}, {"detail", how}});
}

void Supervisor::kill_orphan(Orphan& o) {
    spdlog::warn("orphan pid {} ({}) from {} outlived its grace; sending KILL", o.pid, o.comm,
                 o.from);
    lineage_.kill(o);
}

bool Supervisor::tree_gone(const Worker& w) {
    if (lineage_.has_orphans(w)) return false;
    if (!w.cgroup.empty() && sys_.cgroups()) {
        // populated 0 is the definition of "stopped" when a cgroup holds the tree.
        return !sys_.cgroups()->populated(w.cgroup).value_or(false);
    }
    for (const ProcId& id : w.swept)
        if (lineage_.still_there(id)) return false;
    return true;
}

void Supervisor::after_reap() {
    if (lineage_.scan_due()) adopt_orphans();
    // Adopted earlier while their worker lived: that worker is dead now, so its policy applies.
    for (const Lineage::Owner& dead : lineage_.batch_deaths()) {
        const Worker* w = find_worker(dead.worker_id);
        if (w && w->pid != 0 && w->generation == dead.generation) continue;  // an orphan died
        for (auto& [pid, o] : lineage_.orphans())
            if (o.worker_id == dead.worker_id && o.generation == dead.generation &&
                !o.terminating && (o.policy == config::OrphanPolicy::kill || shutting_down_))
                terminate_orphan(o, o.grace);
    }
    lineage_.end_batch();
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
            if (!old.empty()) lineage_.release_cgroup(old);
        }
    }
    lineage_.release_dead_cgroups();
}

void Supervisor::on_timers() {
    poll_templates();
    const auto now = sys_.now();
    auto find = [this](std::uint64_t id) { return find_worker(id); };
    while (Worker* w = timers_.pop_due(now, find))
        apply(*w, Event{EventType::timer, now, {}});
    for (auto& [pid, o] : lineage_.orphans())
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
        if (!old.empty()) lineage_.release_cgroup(old);
        apply(*w, Event{EventType::exited, now, w->drain_exit});
    }
    for (auto& [pid, w] : lineage_.predecessors()) {
        if (!w->pred || !w->pred->kill_at || *w->pred->kill_at > now) continue;
        spdlog::warn("{} old pid {} did not stop within stop_timeout; sending KILL", w->name, pid);
        w->pred->kill_at.reset();
        w->pred->sent.push_back(SentSignal{SIGKILL, "rolling restart"});
        sys_.kill_group(pid, SIGKILL);
        if (!w->pred->cgroup.empty() && sys_.cgroups()) sys_.cgroups()->kill(w->pred->cgroup);
    }
}

std::optional<fsm::TimePoint> Supervisor::next_deadline() const {
    std::optional<fsm::TimePoint> next;
    auto consider = [&](fsm::TimePoint t) {
        if (!next || t < *next) next = t;
    };
    if (auto t = timers_.next()) consider(*t);
    for (const auto& wt : waiters_)
        consider(wt.deadline);
    for (const auto& [pid, o] : lineage_.orphans())
        if (o.kill_at) consider(*o.kill_at);
    for (const auto& [pid, w] : lineage_.predecessors())
        if (w->pred && w->pred->kill_at) consider(*w->pred->kill_at);
    for (std::uint64_t id : crash_draining_)
        if (const Worker* w = find_worker(id); w && w->drain_until) consider(*w->drain_until);
    // A loading template is looked at every 20 ms (a fixed time, not "20 ms from now", which
    // every control request would push back): nothing else says it is ready.
    for (const auto& p : pools_) {
        if (p->tpl.state == Pool::Template::State::starting || !p->tpl.forks.empty()) {
            consider(p->tpl.next_poll);
            if (p->tpl.deadline) consider(*p->tpl.deadline);
        }
        if (p->tpl.state == Pool::Template::State::down && p->tpl.restart_at)
            consider(*p->tpl.restart_at);
    }
    return next;
}

bool Supervisor::quiescent() {
    if (!lineage_.empty()) return false;
    for (auto& p : pools_)
        for (auto& w : p->workers)
            if (w->draining) return false;
    // Anything still below us (a grandchild whose parent is alive) will reparent to us; only
    // an empty children list means the whole tree is gone.
    return sys_.children().empty();
}

void Supervisor::kill_everything(const std::string& why) {
    for (auto& p : pools_)
        for (auto& w : p->workers)
            if (w->alive() || w->draining) {
                w->sent.push_back(SentSignal{SIGKILL, why});
                signal_tree(*w, SIGKILL);
            }
    for (auto& [pid, o] : lineage_.orphans())
        kill_orphan(o);
    for (auto& [pid, w] : lineage_.predecessors()) {
        if (w->pred) w->pred->sent.push_back(SentSignal{SIGKILL, why});
        sys_.kill_group(pid, SIGKILL);
    }
    for (pid_t pid : sys_.children())
        sys_.kill_child(pid, SIGKILL);
    sys_.kill_all_but_self();
}

void Supervisor::add_waiter(Waiter w) {
    waiters_.push_back(std::move(w));
}

void Supervisor::settle() {
    adopted_this_turn_ = false;
    release_stopped_held();
    rollout_->advance();
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
    if (any_finished_ && !shutting_down_ && lineage_.orphans().empty()) {
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

void Supervisor::probe_ready(Worker& w) {
    if (w.slot.state == State::starting && w.alive())
        apply(w, Event{EventType::ready, sys_.now(), {}});
}

void Supervisor::on_notify(pid_t sender, const NotifyMessage& msg) {
    Worker* w = lineage_.speaker(sender);
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

// ---- rolling restarts and scaling ----

void Supervisor::start_roll(Pool& pool, const std::vector<Worker*>& workers, int batch,
                            RollCallbacks cb) {
    if (workers.size() ==
        static_cast<std::size_t>(std::count_if(pool.workers.begin(), pool.workers.end(),
                                               [](const auto& w) { return !w->retiring; })))
        renew_template(pool);
    rollout_->start(pool, workers, batch, std::move(cb));
}

int Supervisor::cancel_roll(Pool& pool, const std::string& why) {
    return rollout_->cancel(pool, why);
}

int Supervisor::scale(Pool& pool, int size) {
    const int old = static_cast<int>(std::count_if(pool.workers.begin(), pool.workers.end(),
                                                   [](const auto& w) { return !w->retiring; }));
    const auto now = sys_.now();
    // Down: the highest indexes stop gracefully and leave once gone.
    for (auto& w : pool.workers) {
        if (w->index < size || w->retiring) continue;
        w->retiring = true;
        w->stop_reason = "scale down";
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
    events_.emit(now, proto::event::scale, pool.name(), {},
                 fmt::format("pool {} scaled from {} to {} workers", pool.name(), old, size),
                 {{"from", old}, {"to", size}});
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
            if (auto* out = launcher_.setup().output) out->worker_removed(w);
            by_id_.erase(w.id);
            it = ws.erase(it);
        }
    }
    std::erase_if(pools_, [this](const std::unique_ptr<Pool>& p) {
        if (!p->removed || !p->workers.empty()) return false;
        retire_template(*p, SIGTERM);
        spdlog::info("pool {} is gone", p->name());
        if (auto* out = launcher_.setup().output) {
            if (p->tpl.log) out->worker_removed(*p->tpl.log);
            out->pool_removed(p->name());
        }
        return true;
    });
}

}  // namespace cow
