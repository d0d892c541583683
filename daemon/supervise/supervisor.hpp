// The supervisor coordinates: it owns the pools and their worker slots, and is the only place
// that feeds events to the worker FSM (apply) and carries out the actions it returns. What it
// coordinates lives in units of their own: the Lineage (who owns each pid, orphans), the
// Launcher (spawn plans and batches), the Rollout (rolling restarts), the TimerQueue, and
// pool_graph (depends_on queries); the ordering by depends_on is in ordering.cpp, reload in
// reload.cpp. Single-threaded: everything runs on the loop.
// supervisor.cpp runs to about 700 lines because apply(), reaping with its crash drain, and
// settle() each carry out one decision across several units; cut further, one transition's
// effects would be spread over files.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <variant>
#include <vector>

#include <boost/json.hpp>
#include <sys/types.h>
#include <unistd.h>

#include "config/config.hpp"
#include "config/plan.hpp"
#include "daemon/os/notify_message.hpp"
#include "daemon/os/sys.hpp"
#include "daemon/supervise/events.hpp"
#include "daemon/supervise/launcher.hpp"
#include "daemon/supervise/lineage.hpp"
#include "daemon/supervise/pool_graph.hpp"
#include "daemon/supervise/rolling.hpp"
#include "daemon/supervise/timer_queue.hpp"
#include "daemon/supervise/worker.hpp"
#include "daemon/supervise/worker_fsm.hpp"

namespace cow {

class Supervisor {
  public:
    Supervisor(Sys& sys, std::shared_ptr<const config::Config> cfg, SupervisorSetup setup = {});
    ~Supervisor();
    Supervisor(const Supervisor&) = delete;
    Supervisor& operator=(const Supervisor&) = delete;

    // Starts every autostart pool whose dependencies run; the rest follow in settle().
    void boot();
    // With a slice set, pools start `slice` workers per call to drain_starts, so a thousand
    // spawns never hold the loop (and control replies, and reaping) for a second.
    void set_start_slice(std::size_t slice) { start_slice_ = slice; }
    // Returns how many are still queued.
    std::size_t drain_starts(std::size_t n, Millis budget = std::chrono::hours(1));
    bool starts_queued() const { return !start_queue_.empty(); }

    // Resolves "all", "web" or "web.2" to workers; the error names what was not found.
    using TargetError = pool_graph::TargetError;
    std::variant<std::vector<Worker*>, TargetError> resolve(std::string_view target) {
        return pool_graph::resolve(pools_, target);
    }

    // Operator events: start, stop, restart.
    // `why` names a stop for the cause of the exit it brings ("recycle: ...", "reload"); an
    // operator's verb by default.
    void command(const std::vector<Worker*>& targets, fsm::EventType ev, std::string_view why = {});
    // A failed liveness probe: the running worker is stopped and restarted, and the exit
    // counts like a crash (RESTARTS, max_restarts, fatal). `why` is its exit's detail.
    void unhealthy(Worker& w, const std::string& why);
    // A readiness probe passed for the worker's current process: running, as READY=1 makes it.
    void probe_ready(Worker& w);
    // sd_notify from a process: accepted for a worker from itself or its descendants.
    void on_notify(pid_t sender, const NotifyMessage& msg);

    // Resizes a pool: new indexes start, the highest ones stop and are removed once gone.
    // Returns the old size.
    int scale(Pool& pool, int size);

    // Rolling restart of some workers of one pool: each running worker gets a successor
    // that must come up (running: ready or start_timeout) before the old process is
    // stopped, `batch` at a time. A successor that fails stops the roll, and the old
    // process keeps serving. Workers that are not running are simply restarted.
    using RollCallbacks = cow::RollCallbacks;
    bool rolling(const Pool& pool) const { return rollout_->rolling(pool); }
    bool rolling_any() const { return rollout_->any(); }
    void start_roll(Pool& pool, const std::vector<Worker*>& workers, int batch, RollCallbacks cb);
    // Stops a roll of the pool: replacements not yet ready are stopped and the old processes
    // they were to replace keep serving; the roll's on_done gets `why`. Returns how many old
    // processes were kept that way.
    int cancel_roll(Pool& pool, const std::string& why);

    // Switches to a new config (validated, sockets bound): adds, removes, resizes and
    // restarts pools as the plan says (rolling where there are sockets or readiness).
    // Returns how many rolls were started; cb.on_done is called once for each.
    int apply_reload(std::shared_ptr<const config::Config> next, const config::ReloadPlan& plan,
                     std::map<std::string, ListenSockets> sockets, const RollCallbacks& cb);

    // Sends a signal to each target's main process, or (tree) to its whole tree. Returns how
    // many workers were signalled.
    int signal(const std::vector<Worker*>& targets, int sig, bool tree);

    // The reaper reports every reaped pid here, then calls after_reap() once per batch.
    void on_reaped(pid_t pid, int wait_status);
    // The daemon's own commands (os/helpers.hpp) are children that are never orphans.
    void helper_started(pid_t pid) { lineage_.add_helper(pid); }
    void helper_reaped(pid_t pid) { lineage_.drop_helper(pid); }
    // The children we know of, for a reap of each by pid (daemon/os/reaper.hpp).
    std::vector<pid_t> known_children() const {
        auto pids = lineage_.known_pids();
        for (const auto& p : pools_)
            if (p->tpl.pid > 0) pids.push_back(p->tpl.pid);
        for (const auto& [pid, pool] : retired_templates_)
            pids.push_back(pid);
        return pids;
    }
    // spawn: template pools whose template is loading: has it said ready? (on_timers asks.)
    void poll_templates();
    void after_reap();
    // Adopts descendants that reparented to us without any reap telling us (their parent was
    // reaped by someone else): run before showing trees or orphans.
    void refresh_orphans() { adopt_orphans(); }
    // Fires every timer due at sys.now().
    void on_timers();
    std::optional<fsm::TimePoint> next_deadline() const;

    // Shutdown: dependents stop before their dependencies; done when no descendant remains.
    void begin_shutdown();
    bool shutting_down() const { return shutting_down_; }
    bool quiescent();
    // SIGKILL every tree; `why` goes into the causes of the exits it brings.
    void kill_everything(const std::string& why = "shutdown deadline");

    // In-place upgrade (handover.cpp): why the slots cannot be handed over right now ("" when
    // they can), the state the next image takes up, the fds it names, and, in the next image,
    // taking that state up in place of boot(). restore_state returns why it could not.
    std::string handover_blocker() const;
    boost::json::object save_state() const;
    std::vector<int> handover_fds() const;
    std::string restore_state(const boost::json::object& state);

    // Callbacks run after each batch of events (reaping, timers, commands).
    struct Waiter {
        std::function<bool()> done;
        fsm::TimePoint deadline;
        std::function<void(bool timed_out)> finish;
    };
    void add_waiter(Waiter w);
    void settle();  // starts dependents, stages shutdown, runs satisfied or expired waiters

    const std::vector<std::unique_ptr<Pool>>& pools() const { return pools_; }
    const std::map<pid_t, Orphan>& orphans() const { return lineage_.orphans(); }
    const config::Config& config() const { return *cfg_; }
    // What happened, for `cowctl events`: the units below and the daemon emit into it too.
    EventLog& events() { return events_; }
    Sys& sys() { return sys_; }
    fsm::TimePoint now() const { return sys_.now(); }
    Worker* find_worker(std::uint64_t id) const {
        auto it = by_id_.find(id);
        return it == by_id_.end() ? nullptr : it->second;
    }
    std::uint64_t reaped() const { return lineage_.reaped_count(); }
    // Bumped whenever a process joins or leaves the pid table.
    std::uint64_t pid_epoch() const { return lineage_.epoch(); }
    // Processes of ours that no worker cgroup holds (kill_mode: group, or no cgroups): what a
    // successor could not find if we were SIGKILLed. pid and the name to log.
    std::vector<std::pair<pid_t, std::string>> uncontained() const {
        return lineage_.uncontained();
    }
    std::size_t live_processes() const { return lineage_.live_processes(); }
    void set_stdin(int fd) { launcher_.set_stdin(fd); }  // /dev/null, opened once by the daemon
    void set_notify_address(std::string a) { launcher_.setup().notify_address = std::move(a); }
    // Orphans traced back to this worker slot, of any generation, are still running.
    bool has_orphans(const Worker& w) const { return lineage_.has_orphans(w); }
    // The depends_on graph (pool_graph.hpp), over this supervisor's pools.
    static bool pool_up(const Pool& p) { return pool_graph::up(p); }
    static bool pool_busy(const Pool& p) { return pool_graph::busy(p); }
    Pool* find_pool(std::string_view name) const { return pool_graph::find(pools_, name); }
    std::vector<Pool*> dependencies_of(const Pool& pool) const {
        return pool_graph::dependencies_of(pools_, pool);
    }
    std::vector<Pool*> dependents_of(const Pool& pool) const {
        return pool_graph::dependents_of(pools_, pool);
    }
    bool deps_up(const Pool& pool) const { return pool_graph::deps_up(pools_, pool); }
    // The worker's start waits for its pool's depends_on to run.
    bool start_held(const Worker& w) const;

    // Observers, wired by the daemon. They run after the batch of events that caused them
    // (settle()), in order, so that none ever sees a batch half applied; a worker removed
    // meanwhile is skipped.
    std::function<void(const Worker&, fsm::State from, fsm::State to, const fsm::Actions&)>
        on_transition;
    // An essential pool's worker went fatal or finished: shut down with this exit code.
    std::function<void(int code, const std::string& why)> on_essential_exit;
    // Every worker of every pool has finished by policy (one-shot jobs): exit with this code.
    std::function<void(int code)> on_all_finished;

  private:
    friend class Rollout;  // drives one worker's replacement through apply() and reinstate()

    // spawn: template (templates.cpp).
    void template_spawn(Worker& w);
    void start_template(Pool& p);
    bool template_wanted(const Pool& p) const;
    void read_fork_answers(Pool& p);
    void fork_answered(Pool& p, const Pool::Template::Fork& f, const spawn::TemplateReply* reply,
                       const std::string& why);
    void fail_forks(Pool& p, const std::string& why);
    bool forks_in_flight() const;
    void fail_held(Pool& p, const std::string& why);
    void retire_template(Pool& p, int sig);
    void renew_template(Pool& p);
    bool template_reaped(pid_t pid, const ExitInfo& info);
    void release_stopped_held();
    std::map<pid_t, std::string> retired_templates_;  // pid -> pool: gone, not yet reaped

    Pool& add_pool(std::shared_ptr<const config::PoolConfig> pc);
    Worker& add_worker(Pool& pool, int index);
    void start_pool(Pool& p, const char* why);

    void apply(Worker& w, const fsm::Event& ev);
    void do_spawn(Worker& w);
    void flush_spawns();
    void signal_tree(Worker& w, int sig);
    bool tree_gone(const Worker& w);
    void remember_swept(Worker& w, std::vector<ProcId> found);
    void arm(Worker& w, Millis after) { timers_.arm(w, sys_.now() + after); }

    void adopt_orphans();
    void reinstate(Worker& w, fsm::State from, std::string reason);
    void note_transition(Worker& w, fsm::State from, const fsm::Actions& a, fsm::TimePoint now,
                         pid_t shown);
    void stop_in_order(Worker& w, bool whole_pool, fsm::TimePoint now);
    bool dependents_held(Pool& pool, fsm::TimePoint now);
    bool dependencies_held(Pool& pool, fsm::TimePoint now);
    void hold_start(Worker& w);
    void remove_retired();
    void terminate_orphan(Orphan& o, Millis grace) { lineage_.terminate(o, grace); }
    void kill_orphan(Orphan& o);
    void orphan_event(const Orphan& o, std::string_view what, const std::string& how);
    void check_finished(const Worker& w, const fsm::Actions& a);
    void deliver_notices();
    void essential_exit(const Worker& w);
    void stage_shutdown();
    void start_dependents();
    std::string stop_reason(const Worker& w) const;
    void record_orphan_exit(const Orphan& o, const ExitInfo& info);
    void file_exit(Worker& w, ExitRecord r, const std::string& who);
    OomEvidence oom_evidence(const std::vector<SentSignal>& sent, const std::string& cgroup,
                             pid_t pid, const ExitInfo& info);
    // An exit of the slot's main process, or of its predecessor under a rolling restart.
    void record_exit(Worker& w, pid_t pid, const ExitInfo& info, fsm::TimePoint now,
                     const Worker::Predecessor* pred = nullptr);

    Sys& sys_;
    EventLog events_;
    std::shared_ptr<const config::Config> cfg_;
    std::vector<std::unique_ptr<Pool>> pools_;
    std::unordered_map<std::uint64_t, Worker*> by_id_;
    Lineage lineage_;
    Launcher launcher_;
    std::unique_ptr<Rollout> rollout_;
    TimerQueue timers_;
    std::vector<Waiter> waiters_;
    std::unordered_set<std::uint64_t> crash_draining_;  // workers whose crash leftovers go first
    bool adopted_this_turn_ = false;                    // children scanned since the last settle()
    std::uint64_t next_worker_id_ = 1;
    bool adoption_deferred_ = false;  // a scan for orphans waits for template answers
    bool shutting_down_ = false;
    bool any_finished_ = false;
    std::unordered_set<std::uint64_t> essential_waiting_;  // finished; kept orphans still run
    // What the observers are to hear once the batch is over.
    struct Notice {
        std::uint64_t worker_id = 0;
        fsm::State from{}, to{};
        fsm::Actions actions;
        bool essential_exit = false;  // else a transition
        int code = 0;
        std::string why;
    };
    std::deque<Notice> notices_;
    oom::Counters oom_seen_;  // the container's and machine's counters when last read
    OomEvidence oom_recent_;
    fsm::TimePoint oom_recent_until_{};
    static constexpr Millis kOomWindow{1000};
    std::size_t start_slice_ = 0;
    std::deque<std::uint64_t> start_queue_;
    static constexpr std::size_t kSpawnBatch = 8;
};

}  // namespace cow
