// Memory truth per worker and per pool (design §4): smaps_rollup of each worker and its
// descendants, shared versus private, and copy-on-write erosion since each process's first
// sample. Everything here runs on the reader thread (daemon/os/background), never on the loop;
// the loop only hands over a MemQuery copied from the supervisor.
// memory_sampler.cpp is about 600 lines: the rollup, smaps and pagemap passes share one cache of
// per-process figures and the erosion baselines, and are kept beside them.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/json.hpp>
#include <sys/types.h>

#include "core/proc/mem_counters.hpp"
#include "core/proc/reader.hpp"

namespace cow::mem {

using Clock = std::chrono::steady_clock;

// A process that outlived its parent in a worker's tree and was reparented to the daemon
// (Supervisor::orphans): the worker's own tree no longer reaches it.
struct OrphanRoot {
    pid_t pid = 0;
    std::uint64_t starttime = 0;  // checked before reading: the daemon may have reaped it
    std::string comm;
    std::string cgroup;  // "" without cgroups
};

// A target that is a pool's template (spawn: template), not a worker: the pages its workers
// share are its own; `mem --deep` makes it the pool's master (proc::kMasterGroup).
inline constexpr int kTemplateIndex = -1;

// One worker, as the loop saw it.
struct Target {
    std::string pool;
    std::string name;  // "web.2"
    int index = 0;
    pid_t pid = 0;  // 0: no process now
    std::uint64_t generation = 0;
    std::string cgroup;  // "" without cgroups
    std::string cmd;     // the configured command, for display
    std::uint64_t worker_id = 0;
    std::vector<OrphanRoot> orphans;  // shown under the worker, counted in its pool
};

struct MemQuery {
    std::vector<std::string> pools;  // in config order
    std::vector<Target> targets;
};

// Where a process's address space lies (/proc/PID/stat fields 26-28 and 45-47): a child
// forked without exec has exactly its parent's; exec draws a new one (ASLR).
struct Layout {
    std::uint64_t start_code = 0, end_code = 0, start_stack = 0;
    std::uint64_t start_data = 0, end_data = 0, start_brk = 0;
    bool operator==(const Layout&) const = default;
};
std::optional<Layout> parse_layout(std::string_view stat_line);

struct ProcMem {
    pid_t pid = 0;
    pid_t ppid = 0;
    std::uint64_t starttime = 0;  // for descendants (0 for the worker: its generation counts)
    std::string cmd;
    bool orphan = false;           // in the tree of one of the target's orphans
    std::optional<Layout> layout;  // read for processes of trees of more than one
    proc::ReadStatus status = proc::ReadStatus::error;
    proc::MemCounters now;
    // The copy-on-write baseline: for a process forked from another of the tree, and for one
    // that forked, the moment of the fork (all its dirty memory shared, none private); for
    // any other process, its first sample.
    proc::MemCounters first;
    bool fork_baseline = false;
    Clock::duration since_first{};  // how long ago that baseline was
};

struct WorkerMem {
    Target target;
    std::vector<ProcMem> procs;  // [0] is the worker itself when it runs; then descendants
};

struct Sample {
    std::vector<WorkerMem> workers;
    std::size_t processes = 0;
    std::size_t unreadable = 0;
    double seconds = 0;
};

// Copy-on-write erosion of one process: the private dirty memory it gained since its baseline.
inline std::uint64_t private_dirty_growth(const ProcMem& p) {
    return p.now.private_dirty > p.first.private_dirty ? p.now.private_dirty - p.first.private_dirty
                                                       : 0;
}

// Totals over processes: PSS, USS and SwapPss add up; RSS and Swap do not (design §4).
struct Totals {
    std::uint64_t pss = 0, uss = 0, swap_pss = 0, rss_sum = 0;
    std::uint64_t footprint() const { return pss + swap_pss; }
    std::uint64_t saved() const { return rss_sum > pss ? rss_sum - pss : 0; }
    void add(const proc::MemCounters& m) {
        pss += m.pss;
        uss += m.uss();
        swap_pss += m.swap_pss;
        rss_sum += m.rss;
    }
};

class Sampler {
  public:
    explicit Sampler(std::string proc_root = "/proc");

    // Reads every target's tree. Baselines are recorded for processes seen the first time.
    Sample sample(const MemQuery& q);

    // design §1 "mem" JSON. sort: "" (by worker index), "pss", "uss" or "rss" (tree totals).
    // `trends`: what the history says of each worker's trend, by worker name ("trend").
    static boost::json::object to_json(
        const MemQuery& q, const Sample& s, const std::string& sort,
        const std::map<std::string, boost::json::object>& trends = {});

    // `--maps`: one worker's tree broken down by mapping group, largest PSS first.
    boost::json::object maps(const Target& t);

    // `--deep` (root): page frames of the pool's processes (pagemap, kpagecount) split into
    // private, shared within the pool (with the master, with siblings) and shared with
    // outsiders, with the pool's distinct frames and a PSS cross-check against smaps_rollup.
    boost::json::object deep(const MemQuery& q, const std::string& pool);

    std::size_t baselines() const { return first_.size(); }

  private:
    struct Key {
        pid_t pid;
        std::uint64_t stamp;  // starttime for descendants; generation|bit63 for workers
        bool operator==(const Key&) const = default;
    };
    struct KeyHash {
        std::size_t operator()(const Key& k) const {
            return std::hash<std::uint64_t>()(k.stamp * 1000003u ^
                                              static_cast<std::uint64_t>(k.pid));
        }
    };
    struct First {
        proc::MemCounters mem;
        Clock::time_point at;
        std::uint64_t seen = 0;        // sample number it was last seen in
        bool fork = false;             // the baseline is a fork (see ProcMem::first)
        std::optional<Layout> layout;  // as last seen: a change means it exec'd
    };
    struct Node {
        pid_t pid = 0;
        pid_t ppid = 0;
        std::uint64_t starttime = 0;
        std::string comm;
        std::optional<Layout> layout;
        bool stat_ok = false;
    };

    // `root` and its descendants, root first. The root's stat is read when it has
    // descendants (their layouts are compared with its own) or when root_stat asks.
    std::vector<Node> walk(proc::ProcReader& r, pid_t root, const std::string& cgroup,
                           bool root_stat);
    std::vector<pid_t> tree_of(proc::ProcReader& r, const Target& t,
                               std::unordered_map<pid_t, proc::Stat>& stats);
    void add_procs(proc::ProcReader& r, std::vector<Node> nodes, const std::string& root_cmd,
                   bool orphan, WorkerMem& wm);
    void baselines(WorkerMem& wm, Sample& s, Clock::time_point now);
    proc::Read<proc::MemCounters> rollup(proc::ProcReader& r, pid_t pid);

    std::string root_;
    bool has_rollup_ = true;
    std::unordered_map<Key, First, KeyHash> first_;
    std::uint64_t round_ = 0;
};

}  // namespace cow::mem
