// A pool and its worker slots, and the orphans its workers leave: the supervisor's records.
#pragma once

#include <algorithm>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

#include "config/config.hpp"
#include "core/proc/proc_id.hpp"
#include "core/wait_status.hpp"
#include "daemon/os/listen_sockets.hpp"
#include "daemon/supervise/exit_cause.hpp"
#include "daemon/supervise/worker_fsm.hpp"

namespace cow {

using proc::ProcId;

struct Pool;

struct Worker {
    Pool* pool = nullptr;
    int index = 0;
    std::uint64_t id = 0;  // unique for the daemon's life; timers refer to slots by id
    std::string name;      // "web.2"

    fsm::Slot slot;
    pid_t pid = 0;  // > 0 while the worker's main process is unreaped
    pid_t last_pid = 0;
    std::uint64_t generation = 0;  // bumped on every spawn
    fsm::TimePoint started_at{};
    fsm::TimePoint state_since{};
    std::optional<ExitInfo> last_exit;
    pid_t last_exit_pid = 0;
    fsm::TimePoint last_exit_at{};
    std::string last_error;   // the last spawn failure sentence, cleared when one succeeds
    std::string last_reason;  // why the last transition happened
    std::uint64_t restarts = 0;
    // Exits of its main process by cause, as Prometheus labels: code="1" or signal="KILL".
    std::map<std::string, std::uint64_t> exits;
    // Why the current generation is being stopped, and every signal cowherd sent it: how its
    // exit is told apart from an outside kill. Both start over with each spawn.
    std::string stop_reason;
    std::vector<SentSignal> sent;
    // The last exits of its main process with their causes, oldest first (kHistory at most).
    // A vector, not a deque: an empty deque already holds about 600 bytes, and a thousand
    // slots that never exited must cost nothing.
    static constexpr std::size_t kHistory = 32;
    std::vector<ExitRecord> history;
    // The newest exit of the slot's own process (history also holds its kept orphans').
    const ExitRecord* last_main_exit() const {
        for (auto it = history.rbegin(); it != history.rend(); ++it)
            if (it->orphan.empty()) return &*it;
        return nullptr;
    }
    std::uint64_t recycles = 0;  // restarts for memory.max_private
    std::string recycle_reason;  // "private 530 MiB > 512 MiB"
    std::uint64_t timer_seq = 0;
    std::optional<fsm::TimePoint> timer_at;
    std::string env_worker;  // "COWHERD_WORKER=2", built once
    std::string cgroup;      // this generation's cgroup directory; "" without cgroups

    // A stop is in progress, the main process is reaped, and the rest of its tree is not gone
    // yet: the FSM hears of the exit only once the tree is empty.
    bool draining = false;
    ExitInfo drain_exit;
    // A crash's leftovers are being stopped before the replacement starts; it starts by then.
    std::optional<fsm::TimePoint> drain_until;
    // Without a cgroup: the descendants the last tree signal found (setsid ones included), and
    // the generation they came from. A stop is over only once they are gone, and an orphan
    // among them is known to be this worker's even when several workers die at once.
    std::vector<ProcId> swept;
    std::uint64_t swept_generation = 0;

    // Rolling restart: the process being replaced keeps serving until its successor is up,
    // then gets stop_signal; if the successor fails, it is put back as the slot's process.
    struct Predecessor {
        pid_t pid = 0;
        std::uint64_t generation = 0;
        std::string cgroup;
        fsm::TimePoint started_at{};
        bool signaled = false;
        std::optional<fsm::TimePoint> kill_at;
        std::vector<SentSignal> sent;  // what cowherd sent this generation, as Worker::sent
    };
    std::optional<Predecessor> pred;
    std::uint64_t roll_failures = 0;  // successors that failed and were rolled back
    std::string roll_error;           // why the last one failed

    std::string status_text;     // STATUS= from the worker (ready: notify)
    std::string probe_note;      // the last probe failure, until one passes
    bool said_stopping = false;  // STOPPING=1 from the worker
    bool retiring = false;       // scaled away: removed once stopped
    std::string listen_pid_env;  // "LISTEN_PID=" + room for digits, filled in by the child

    bool alive() const { return pid > 0; }
    // Up, for health and depends_on: running, or its old process still serves while a rolling
    // restart brings up its replacement.
    bool serving() const {
        return (slot.state == fsm::State::running && !draining) || (pred && !pred->signaled);
    }
};

struct Pool {
    std::shared_ptr<const config::PoolConfig> cfg;
    fsm::Policy policy;
    std::vector<std::unique_ptr<Worker>> workers;
    bool use_cgroup = false;
    ListenSockets sockets;          // fds 3.. of every worker
    bool waiting_for_deps = false;  // autostart held back until depends_on pools run
    // Operator starts held until depends_on pools run, and operator stops held until the
    // pools that depend on this one are down (worker ids).
    std::vector<std::uint64_t> start_after_deps;
    std::vector<std::uint64_t> stop_after_dependents;
    bool stop_sent = false;  // shutdown: this pool has been told to stop
    bool removed = false;    // gone from the config: leaves once its workers are gone

    // Built once per config so that each spawn only assembles pointers.
    std::vector<std::string> argv;
    std::vector<std::string> env;  // "K=V", the daemon's environment overlaid with the pool's
    std::vector<std::string> exec_paths;

    // spawn: template: the pool's template process (template/cowtemplate.h). Workers wait in
    // `held` while it loads; once it says ready, each spawn is a fork request on `sock`.
    struct Template {
        enum class State { down, starting, ready };
        State state = State::down;
        pid_t pid = 0;
        int sock = -1;  // ours; the template has the other end as fd 3
        std::uint64_t next_id = 1;
        std::uint64_t generation = 0;
        fsm::TimePoint started_at{};
        std::optional<fsm::TimePoint> deadline;  // to say ready: template_timeout
        fsm::TimePoint next_poll{};       // when to look for its ready, or its answers, again
        std::vector<std::uint64_t> held;  // worker ids waiting for it
        fsm::TimePoint ready_at{};
        // A ready template that died is started again by the pool's restart policy, after
        // the pool's backoff: `losses` in a row (reset by one that lived past backoff.max).
        std::optional<fsm::TimePoint> restart_at;
        unsigned losses = 0;
        // Fork requests sent and not answered yet, in the order the template answers them.
        struct Fork {
            std::uint64_t id = 0;
            std::uint64_t worker = 0;  // 0: it was stopped meanwhile and waits no more
            fsm::TimePoint sent{};
            int go = -1;  // once detached: its go pipe, closed when the answer comes
        };
        std::deque<Fork> forks;
        // The slot its output is captured under, in the pool's log as "web.template": never
        // a worker of the pool (not in `workers`, not found by id).
        std::unique_ptr<Worker> log;
    };
    Template tpl;

    const std::string& name() const { return cfg->name; }
};

// A descendant of a worker that outlived it and was reparented to us.
struct Orphan {
    pid_t pid = 0;
    std::uint64_t starttime = 0;
    std::string comm;
    std::string from;             // "web.1", or "unknown" when nothing tells where it came from
    std::uint64_t worker_id = 0;  // 0 when unknown
    std::uint64_t generation = 0;
    std::string cgroup;         // its cgroup directory, when cgroups are in use
    bool own_cgroup = false;    // that cgroup is a dead generation's: signal all of it
    bool group_leader = false;  // pgid == pid: signal its group too
    config::OrphanPolicy policy = config::OrphanPolicy::kill;
    Millis grace{10000};  // TERM -> KILL
    bool terminating = false;
    std::optional<fsm::TimePoint> kill_at;
    fsm::TimePoint adopted_at{};
};

// The worker's start waits for its pool's depends_on to run: at boot or reload (the whole pool),
// or an operator's start, restart or scale held until the dependencies are up.
inline bool held_for_deps(const Worker& w) {
    const auto& ids = w.pool->start_after_deps;
    return w.pool->waiting_for_deps || std::find(ids.begin(), ids.end(), w.id) != ids.end();
}

}  // namespace cow
