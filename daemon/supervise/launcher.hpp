// Launcher: turns a worker slot into a spawn. It builds each pool's template once per config
// (argv, environment, sockets, exec candidates), fills a flat spawn::Plan per spawn, gives the
// generation a cgroup of its own, hands batches to the spawn crew, and puts each result on
// record (the pid in the Lineage, the cgroup's owner, the output capture). It decides nothing
// about the lifecycle: the Supervisor applies the spawned / spawn_failed events it returns.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "daemon/os/listen_sockets.hpp"
#include "daemon/os/sys.hpp"
#include "daemon/spawn/spawn.hpp"
#include "daemon/supervise/lineage.hpp"
#include "daemon/supervise/worker.hpp"

namespace cow {

class OutputHooks;

// What the daemon prepared before the supervisor starts any worker.
struct SupervisorSetup {
    std::string notify_address;     // NOTIFY_SOCKET for pools with ready: notify
    OutputHooks* output = nullptr;  // worker stdout/stderr capture; null: inherit ours
    std::map<std::string, ListenSockets> sockets;  // per pool name, bound already
};

class Launcher {
  public:
    Launcher(Sys& sys, Lineage& lineage, SupervisorSetup setup);
    ~Launcher();

    SupervisorSetup& setup() { return setup_; }
    void set_stdin(int fd) { stdin_fd_ = fd; }

    // Rebuilt whenever the pool's config (or the daemon's sockets) change.
    void build_template(Pool& pool);

    struct Launched {
        Worker* w = nullptr;
        bool ok = false;
        fsm::TimePoint at{};         // when it was prepared: the time its event carries
        bool template_hung = false;  // fork_from_template: no answer in time
    };
    // Spawns now, or queues the spawn while a batch is open (nullopt).
    std::optional<Launched> launch(Worker& w);
    // Spawns go into a batch until flush(), so that spawn_all spreads them over the cores.
    void open_batch() { batching_ = true; }
    std::size_t queued() const { return pending_.size(); }
    // Every result of the batch is on record before the caller applies any event: an event
    // may stop the others (an essential pool's failure shuts down), and a stop must find
    // their processes.
    std::vector<Launched> flush();

    // spawn: template. The pool's template process, fork-exec'd at once with `sock` as its
    // fd 3 (COWHERD_TEMPLATE_FD=3); its output is captured under `log` ("web.template").
    // Returns its pid, or 0 with `why`.
    pid_t spawn_template(Pool& pool, int sock, Worker& log, std::string& why);
    // A worker forked by the pool's ready template (on `sock`): the request carries the env
    // and fds an exec'd worker would get. The worker is on record and in its cgroup before
    // the go byte lets it run. Blocks for the template's answer, at most `timeout`.
    Launched fork_from_template(Worker& w, int sock, std::uint64_t id, Millis timeout);

  private:
    struct Pending {
        Worker* w = nullptr;
        spawn::Plan plan;
        std::string cg_path, cg_procs;  // the plan points into cg_procs: never moved
        std::string probe_port_env;     // and into this
        fsm::TimePoint now{};
    };
    std::unique_ptr<Pending> prepare(Worker& w);
    void process_settings(spawn::Plan& plan, const config::PoolConfig& pc) const;
    bool record(Pending& pending, const spawn::Result& r);

    Sys& sys_;
    Lineage& lineage_;
    SupervisorSetup setup_;
    int stdin_fd_ = -1;
    std::string cgroup_tag_;  // in every worker cgroup's name: unique to this daemon
    bool batching_ = false;
    std::vector<std::unique_ptr<Pending>> pending_;
};

}  // namespace cow
