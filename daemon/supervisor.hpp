// The supervisor: pools, the pid -> worker table, adopted orphans, timers, and the converge
// loop that feeds the worker FSM and carries out its actions. Single-threaded: everything runs
// on the loop.
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
#include "daemon/notify.hpp"
#include "daemon/sys.hpp"
#include "daemon/worker.hpp"
#include "daemon/worker_fsm.hpp"

namespace cow {

// What the daemon prepared before the supervisor starts any worker.
class OutputHooks;

struct SupervisorSetup {
    std::string notify_address;     // NOTIFY_SOCKET for pools with ready: notify
    OutputHooks* output = nullptr;  // worker stdout/stderr capture; null: inherit ours
    std::map<std::string, ListenSockets> sockets;  // per pool name, bound already
};

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
    struct TargetError {
        std::string code;  // "no_such_pool" | "no_such_worker" | "invalid_argument"
        std::string message;
    };
    std::variant<std::vector<Worker*>, TargetError> resolve(std::string_view target);

    // Operator events: start, stop, restart.
    void command(const std::vector<Worker*>& targets, fsm::EventType ev);
    // sd_notify from a process: accepted for a worker from itself or its descendants.
    void on_notify(pid_t sender, const NotifyMessage& msg);

    // Resizes a pool: new indexes start, the highest ones stop and are removed once gone.
    // Returns the old size.
    int scale(Pool& pool, int size);

    // Rolling restart of some workers of one pool: each running worker gets a successor
    // that must come up (running: ready or start_timeout) before the old process is
    // stopped, `batch` at a time. A successor that fails stops the roll, and the old
    // process keeps serving. Workers that are not running are simply restarted.
    struct RollCallbacks {
        std::function<void(const boost::json::object& progress)> on_progress;
        std::function<void(bool ok, const std::string& why)> on_done;
    };
    bool rolling(const Pool& pool) const;  // a roll of this pool is in progress
    bool rolling_any() const { return !rolls_.empty(); }
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
    void kill_everything();  // SIGKILL every tree (shutdown deadline)

    // Callbacks run after each batch of events (reaping, timers, commands).
    struct Waiter {
        std::function<bool()> done;
        fsm::TimePoint deadline;
        std::function<void(bool timed_out)> finish;
    };
    void add_waiter(Waiter w);
    void settle();  // starts dependents, stages shutdown, runs satisfied or expired waiters

    const std::vector<std::unique_ptr<Pool>>& pools() const { return pools_; }
    const std::map<pid_t, Orphan>& orphans() const { return orphans_; }
    const config::Config& config() const { return *cfg_; }
    Sys& sys() { return sys_; }
    fsm::TimePoint now() const { return sys_.now(); }
    Worker* find_worker(std::uint64_t id) const {
        auto it = by_id_.find(id);
        return it == by_id_.end() ? nullptr : it->second;
    }
    std::uint64_t reaped() const { return reaped_; }
    // Bumped whenever a process joins or leaves the pid table.
    std::uint64_t pid_epoch() const { return pid_epoch_; }
    // Processes of ours that no worker cgroup holds (kill_mode: group, or no cgroups): what a
    // successor could not find if we were SIGKILLed. pid and the name to log.
    std::vector<std::pair<pid_t, std::string>> uncontained()
        const;  // every child reaped, of any kind
    std::size_t live_processes() const { return by_pid_.size() + orphans_.size(); }
    void set_stdin(int fd) { stdin_fd_ = fd; }  // /dev/null, opened once by the daemon
    void set_notify_address(std::string a) { setup_.notify_address = std::move(a); }
    // Orphans traced back to this worker slot, of any generation, are still running.
    bool has_orphans(const Worker& w) const;
    // True when every worker of the pool runs (a pool of 0 counts as up).
    static bool pool_up(const Pool& p);
    // A worker of the pool still has a process, or is stopping.
    static bool pool_busy(const Pool& p);
    Pool* find_pool(std::string_view name) const;
    std::vector<Pool*> dependencies_of(const Pool& pool) const;  // transitively
    std::vector<Pool*> dependents_of(const Pool& pool) const;    // transitively
    bool deps_up(const Pool& pool) const;
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
    Pool& add_pool(std::shared_ptr<const config::PoolConfig> pc);
    void build_spawn_template(Pool& pool);
    Worker& add_worker(Pool& pool, int index);
    void start_pool(Pool& p, const char* why);

    void apply(Worker& w, const fsm::Event& ev);
    void do_spawn(Worker& w);
    // A spawn prepared on the loop thread; during drain_starts they go to Sys::spawn_all in
    // batches, otherwise one at a time.
    struct PendingSpawn {
        Worker* w = nullptr;
        spawn::Plan plan;
        std::string cg_path, cg_procs;  // the plan points into cg_procs: never moved
        fsm::TimePoint now{};
    };
    static constexpr std::size_t kSpawnBatch = 8;
    std::unique_ptr<PendingSpawn> prepare_spawn(Worker& w);
    // Puts a spawn's result on record (pid, cgroup, output); the caller applies the event.
    bool record_spawn(PendingSpawn& pending, const spawn::Result& r);
    void flush_spawns();
    void signal_tree(Worker& w, int sig);
    bool tree_gone(const Worker& w);
    void remember_swept(Worker& w, std::vector<ProcId> found);
    bool still_there(const ProcId& id);
    void arm(Worker& w, Millis after);
    void disarm(Worker& w);

    void adopt_orphans();
    // The pid is one of ours already: a worker's main process, a predecessor under
    // replacement, an adopted orphan or a failed spawn.
    bool known_child(pid_t pid) const;
    Worker* owner_of_pid(pid_t pid);
    void begin_replace(Worker& w);
    void retire_pred(Worker& w);
    void rollback(Worker& w, const std::string& why, fsm::State from);
    void reinstate(Worker& w, fsm::State from, std::string reason);
    void note_transition(Worker& w, fsm::State from, const fsm::Actions& a, fsm::TimePoint now,
                         pid_t shown);
    void stop_in_order(Worker& w, bool whole_pool, fsm::TimePoint now);
    bool dependents_held(Pool& pool, fsm::TimePoint now);
    bool dependencies_held(Pool& pool, fsm::TimePoint now);
    void hold_start(Worker& w);
    void discard_successor(Worker& w, const std::string& why);
    void advance_rolls();
    void remove_retired();
    void terminate_orphan(Orphan& o, Millis grace);
    void kill_orphan(Orphan& o);
    void release_cgroup(const std::string& path);
    void check_finished(const Worker& w, const fsm::Actions& a);
    void deliver_notices();
    void essential_exit(const Worker& w);
    void stage_shutdown();
    void start_dependents();

    struct TimerEntry {
        fsm::TimePoint at;
        std::uint64_t worker_id;
        std::uint64_t seq;
        bool operator>(const TimerEntry& o) const { return at > o.at; }
    };
    struct Owner {
        std::uint64_t worker_id = 0;
        std::uint64_t generation = 0;
        std::string name;
    };
    std::optional<Owner> owner_of(const ProcInfo& info) const;
    void remember_dead_leader(pid_t pid, const Owner& owner);

    Sys& sys_;
    std::shared_ptr<const config::Config> cfg_;
    std::vector<std::unique_ptr<Pool>> pools_;
    std::unordered_map<pid_t, Worker*> by_pid_;
    std::unordered_map<pid_t, Worker*> pred_by_pid_;  // processes being replaced
    std::unordered_map<std::uint64_t, Worker*> by_id_;
    std::unordered_set<pid_t> failed_spawns_;  // children that died before exec; reap silently
    std::priority_queue<TimerEntry, std::vector<TimerEntry>, std::greater<>> timers_;
    std::vector<Waiter> waiters_;
    std::map<pid_t, Orphan> orphans_;
    // Leaders reaped recently, and every live or draining generation cgroup: how orphans are
    // traced back to the worker they came from.
    std::unordered_map<pid_t, Owner> dead_leaders_;
    std::deque<pid_t> dead_leader_order_;
    std::unordered_map<std::string, Owner> cgroup_owner_;
    std::unordered_set<std::string> dead_cgroups_;      // rmdir once empty
    std::vector<Owner> batch_deaths_;                   // deaths in the current reap batch
    std::unordered_set<std::uint64_t> crash_draining_;  // workers whose crash leftovers go first
    bool adopt_due_ = false;                            // a descendant died: look for new children
    bool adopted_this_turn_ = false;                    // children scanned since the last settle()
    std::uint64_t next_worker_id_ = 1;
    const pid_t self_pid_ = ::getpid();
    SupervisorSetup setup_;
    struct Roll;
    std::vector<std::unique_ptr<Roll>> rolls_;
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
    std::uint64_t reaped_ = 0;
    std::uint64_t pid_epoch_ = 0;
    std::size_t start_slice_ = 0;
    std::deque<std::uint64_t> start_queue_;
    bool batching_ = false;
    std::vector<std::unique_ptr<PendingSpawn>> pending_;
    int stdin_fd_ = -1;
    std::string cgroup_tag_;  // in every worker cgroup's name: unique to this daemon
};

}  // namespace cow
