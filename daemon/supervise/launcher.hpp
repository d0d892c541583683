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
#include <unordered_map>
#include <vector>

#include "daemon/os/listen_sockets.hpp"
#include "daemon/os/sys.hpp"
#include "daemon/spawn/spawn.hpp"
#include "daemon/spawn/template_protocol.hpp"
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
        fsm::TimePoint at{};  // when it was prepared: the time its event carries
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
    // A worker forked by the pool's ready template (on `sock`), in two steps so that the loop
    // never waits for the template. request_fork sends the request, which carries the env and
    // fds an exec'd worker would get; false (on record as a failed spawn, w.last_error says
    // why) when it cannot be sent. answer_fork takes the template's answer (null: none will
    // come, `why` says why): the worker is put on record and in its cgroup, and only then the
    // go byte lets it run. With `run` false (stopped meanwhile) a forked process is let go
    // without the byte, which makes it exit at once, and its pid is returned for the caller
    // to reap quietly.
    bool request_fork(Worker& w, int sock, std::uint64_t id);
    struct Answered {
        Launched launched;
        pid_t cancelled = 0;  // run == false and the template had forked it
    };
    Answered answer_fork(Worker& w, const spawn::TemplateReply* reply, const std::string& why,
                         bool run);
    bool fork_in_flight(const Worker& w) const { return forks_.count(w.id) > 0; }
    // The worker waits no more (it was stopped before the answer came): what the spawn held
    // (its output's write ends, its cgroup) goes now. Returns the go pipe's write end, which
    // the caller closes once the answer came, so that a forked process exits at once.
    int detach_fork(Worker& w);

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
    void let_go(Pending& pending);

    Sys& sys_;
    Lineage& lineage_;
    SupervisorSetup setup_;
    int stdin_fd_ = -1;
    std::string cgroup_tag_;  // in every worker cgroup's name: unique to this daemon
    bool batching_ = false;
    std::vector<std::unique_ptr<Pending>> pending_;
    // Template fork requests sent, their answers not read yet, by worker id.
    struct TemplateFork {
        std::unique_ptr<Pending> p;
        int go = -1;  // the go pipe's write end
    };
    std::unordered_map<std::uint64_t, TemplateFork> forks_;
};

}  // namespace cow
