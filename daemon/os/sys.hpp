// The supervisor's window on the operating system, so that its logic runs in unit tests over
// a fake clock and fake processes (design §5).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

#include "core/proc/proc_id.hpp"
#include "daemon/os/cgroup.hpp"
#include "daemon/os/oom.hpp"
#include "daemon/os/spawn_crew.hpp"
#include "daemon/spawn/spawn.hpp"

namespace cow {

using proc::ProcId;

// What the supervisor needs to know of a process it did not start (an adopted orphan).
struct ProcInfo {
    pid_t pid = 0;
    pid_t ppid = 0;
    pid_t sid = 0;
    pid_t pgid = 0;
    std::uint64_t starttime = 0;
    std::string comm;
    char state = 0;      // R, S, Z, ... from /proc/PID/stat
    std::string cgroup;  // absolute path of its cgroup directory, "" when unknown
};

class Sys {
  public:
    virtual ~Sys() = default;
    virtual std::chrono::steady_clock::time_point now() const = 0;
    virtual spawn::Result spawn(spawn::Plan& plan) = 0;
    // A batch of spawns, results in plan order; the real one spreads them over the cores.
    virtual std::vector<spawn::Result> spawn_all(const std::vector<spawn::Plan*>& plans) {
        std::vector<spawn::Result> out;
        out.reserve(plans.size());
        for (auto* p : plans)
            out.push_back(spawn(*p));
        return out;
    }
    // Signals the process group led by an unreaped child (design §3.3: only while unreaped;
    // a session leader cannot leave its group, so the group still exists).
    virtual void kill_group(pid_t leader, int sig) = 0;
    // Signals one unreaped child of ours.
    virtual void kill_child(pid_t pid, int sig) = 0;
    // Signals the descendants of an unreaped child, each pinned by a pidfd while signalled,
    // skipping members of the child's own process group (they get kill_group). Used where no
    // cgroup holds the tree, to reach descendants that called setsid. Returns every descendant
    // it found alive, signalled or not: a stop waits for all of them to be gone.
    virtual std::vector<ProcId> kill_descendants(pid_t leader, int sig) = 0;
    // Our direct children, as the kernel lists them (adopted orphans included).
    virtual std::vector<pid_t> children() = 0;
    virtual std::optional<ProcInfo> proc_info(pid_t pid) = 0;
    // The pool and worker index a process inherited from its worker (COWHERD_POOL and
    // COWHERD_WORKER in /proc/PID/environ): how a descendant that left every group and session
    // is traced back without cgroups. nullopt when unreadable or absent.
    virtual std::optional<std::pair<std::string, int>> worker_env(pid_t) { return std::nullopt; }
    // Signals a process that is not our child only if pid and start time still name it
    // (through a pidfd, so the check and the signal cannot be split by a reuse of the pid).
    virtual void signal_proc(const ProcId&, int) {}
    // The cgroup manager, or null when workers run without cgroups.
    virtual cgroup::Cgroups* cgroups() = 0;
    // PID 1 of a container: SIGKILL everything left in the namespace.
    virtual void kill_all_but_self() = 0;
    // The kernel's OOM-kill counters (oom.hpp); none where the machine has none.
    virtual oom::Counters oom_counters(const std::string& /*worker_cgroup*/) { return {}; }
    // The kernel's log line for the OOM kill of this pid, if it wrote one we can read.
    virtual std::optional<std::string> oom_record(pid_t) { return std::nullopt; }
};

class RealSys final : public Sys {
  public:
    std::chrono::steady_clock::time_point now() const override {
        return std::chrono::steady_clock::now();
    }
    spawn::Result spawn(spawn::Plan& plan) override { return spawn::spawn(plan); }
    std::vector<spawn::Result> spawn_all(const std::vector<spawn::Plan*>& plans) override;
    void kill_group(pid_t leader, int sig) override;
    void kill_child(pid_t pid, int sig) override;
    std::vector<ProcId> kill_descendants(pid_t leader, int sig) override;
    std::vector<pid_t> children() override;
    std::optional<ProcInfo> proc_info(pid_t pid) override;
    std::optional<std::pair<std::string, int>> worker_env(pid_t pid) override;
    void signal_proc(const ProcId& id, int sig) override;
    cgroup::Cgroups* cgroups() override { return cgroups_.get(); }
    void kill_all_but_self() override;
    oom::Counters oom_counters(const std::string& worker_cgroup) override {
        return oom_.read(worker_cgroup);
    }
    std::optional<std::string> oom_record(pid_t pid) override { return kmsg_.killed(pid); }

    void set_cgroups(std::unique_ptr<cgroup::Cgroups> c) { cgroups_ = std::move(c); }

  private:
    oom::Reader oom_;
    oom::Kmsg kmsg_;  // opened with the daemon, at the end of the kernel's log
    std::unique_ptr<cgroup::Cgroups> cgroups_;
    std::unique_ptr<SpawnCrew> crew_;  // started on the first batch
};

}  // namespace cow
