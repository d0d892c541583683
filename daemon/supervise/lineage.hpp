// Lineage: who owns each process of ours. It keeps the pid table (a worker's main process, the
// old process a roll is replacing, spawns that died before exec), the orphans reparented to
// us, and what traces any process back to the worker slot and generation it came from: its
// cgroup, a dead leader's session or group, its parents, what a tree signal found, what it
// inherited from its worker. It decides nothing: the Supervisor applies each pool's orphan
// policy to what the Lineage reports. Single-threaded, on the loop.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include <sys/types.h>
#include <unistd.h>

#include "daemon/os/sys.hpp"
#include "daemon/supervise/worker.hpp"

namespace cow {

class Lineage {
  public:
    // A worker slot and one of its generations: what a process is traced back to.
    struct Owner {
        std::uint64_t worker_id = 0;
        std::uint64_t generation = 0;
        std::string name;
    };
    using FindWorker = std::function<Worker*(std::uint64_t id)>;

    Lineage(Sys& sys, const std::vector<std::unique_ptr<Pool>>& pools, FindWorker find);

    // ---- the pid table ----
    void add_main(pid_t pid, Worker& w);
    Worker* main_of(pid_t pid) const;
    // A roll: the slot's main process becomes the predecessor its successor replaces, and
    // back again when the successor fails.
    void to_predecessor(pid_t pid, Worker& w);
    void from_predecessor(pid_t pid, Worker& w);
    void drop_main(pid_t pid);
    void add_failed_spawn(pid_t pid) { failed_spawns_.insert(pid); }
    // The daemon's own commands (probes, hooks): children of ours, never orphans.
    void add_helper(pid_t pid) { helpers_.insert(pid); }
    void drop_helper(pid_t pid) { helpers_.erase(pid); }
    const std::unordered_map<pid_t, Worker*>& predecessors() const { return pred_by_pid_; }
    // Every pid the tables hold: main processes, predecessors, orphans.
    std::vector<pid_t> known_pids() const;

    // What a reaped pid was; it has left the tables.
    struct Reaped {
        enum class Kind { failed_spawn, predecessor, orphan, main, stranger } kind;
        Worker* worker = nullptr;      // predecessor, main
        std::optional<Orphan> orphan;  // orphan
    };
    Reaped reaped(pid_t pid);
    // A worker's process (main or predecessor) died: its leftovers are traced to `owner`.
    void leader_died(pid_t pid, const Owner& owner);
    void orphan_died(const Owner& owner) { batch_deaths_.push_back(owner); }
    // The deaths of the current reap batch; cleared by end_batch().
    const std::vector<Owner>& batch_deaths() const { return batch_deaths_; }
    void end_batch();
    // Something of ours died since the last scan, or orphans live: adoption should look.
    bool scan_due() const { return !batch_deaths_.empty() || !orphans_.empty() || adopt_due_; }

    // ---- cgroups ----
    void own_cgroup(const std::string& path, const Owner& owner) { cgroup_owner_[path] = owner; }
    bool is_worker_cgroup(const std::string& path) const { return cgroup_owner_.count(path) > 0; }
    // rmdir once empty; until then it is kept and retried by release_dead_cgroups().
    void release_cgroup(const std::string& path);
    void release_dead_cgroups();

    // ---- orphans ----
    std::map<pid_t, Orphan>& orphans() { return orphans_; }
    const std::map<pid_t, Orphan>& orphans() const { return orphans_; }
    // Children that no table knows yet get an orphan record, traced to their worker where
    // anything tells; returns their pids, for the caller's policy.
    std::vector<pid_t> adopt();
    Orphan& keep(Orphan o);
    bool has_orphans(const Worker& w) const;
    void terminate(Orphan& o, Millis grace);  // TERM and CONT now, KILL at kill_at
    void kill(Orphan& o);

    // ---- questions ----
    // The worker a process may speak for (sd_notify): itself, or the worker whose tree it is
    // in (its cgroup, or else its chain of parents).
    Worker* speaker(pid_t pid) const;
    // Processes of ours that no worker cgroup holds: what a successor could not find if we
    // were SIGKILLed. pid and the name to log.
    std::vector<std::pair<pid_t, std::string>> uncontained() const;
    // The process is still the one that was found, and not a zombie someone else reaps.
    bool still_there(const ProcId& id) const;
    bool empty() const { return by_pid_.empty() && orphans_.empty() && pred_by_pid_.empty(); }
    std::size_t live_processes() const { return by_pid_.size() + orphans_.size(); }
    std::uint64_t reaped_count() const { return reaped_; }
    void set_reaped_count(std::uint64_t n) { reaped_ = n; }  // the previous image's (upgrade)
    std::uint64_t epoch() const { return epoch_; }

  private:
    bool known_child(pid_t pid) const;
    std::optional<Owner> owner_of(const ProcInfo& info) const;

    Sys& sys_;
    const std::vector<std::unique_ptr<Pool>>& pools_;
    FindWorker find_;
    const pid_t self_pid_ = ::getpid();
    std::unordered_map<pid_t, Worker*> by_pid_;
    std::unordered_map<pid_t, Worker*> pred_by_pid_;  // processes being replaced
    std::unordered_set<pid_t> helpers_;
    std::unordered_set<pid_t> failed_spawns_;  // died before exec; reaped silently
    std::map<pid_t, Orphan> orphans_;
    // Leaders reaped recently, and every live or draining generation cgroup: how orphans are
    // traced back to the worker they came from.
    std::unordered_map<pid_t, Owner> dead_leaders_;
    std::deque<pid_t> dead_leader_order_;
    std::unordered_map<std::string, Owner> cgroup_owner_;
    std::unordered_set<std::string> dead_cgroups_;
    std::vector<Owner> batch_deaths_;
    bool adopt_due_ = false;  // a stranger died: its own children, if any, are ours now
    std::uint64_t reaped_ = 0;
    std::uint64_t epoch_ = 0;  // bumped whenever a process joins or leaves the tables
};

}  // namespace cow
