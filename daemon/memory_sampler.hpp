// Memory truth per worker and per pool (design §4): smaps_rollup of each worker and its
// descendants, shared versus private, and copy-on-write erosion since each process's first
// sample. Everything here runs on the reader thread (daemon/background), never on the loop;
// the loop only hands over a MemQuery copied from the supervisor.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/json.hpp>
#include <sys/types.h>

#include "core/proc/mem_counters.hpp"
#include "core/proc/reader.hpp"

namespace cow::mem {

using Clock = std::chrono::steady_clock;

// One worker, as the loop saw it.
struct Target {
    std::string pool;
    std::string name;  // "web.2"
    int index = 0;
    pid_t pid = 0;  // 0: no process now
    std::uint64_t generation = 0;
    std::string cgroup;  // "" without cgroups
    std::string cmd;     // the configured command, for display
};

struct MemQuery {
    std::vector<std::string> pools;  // in config order
    std::vector<Target> targets;
};

struct ProcMem {
    pid_t pid = 0;
    pid_t ppid = 0;
    std::uint64_t starttime = 0;  // for descendants (0 for the worker: its generation counts)
    std::string cmd;
    proc::ReadStatus status = proc::ReadStatus::error;
    proc::MemCounters now;
    proc::MemCounters first;        // the first sample of this process (COW baseline)
    Clock::duration since_first{};  // how long ago that was
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
    static boost::json::object to_json(const MemQuery& q, const Sample& s, const std::string& sort);

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
        std::uint64_t seen = 0;  // sample number it was last seen in
    };

    std::vector<pid_t> tree_of(proc::ProcReader& r, const Target& t,
                               std::unordered_map<pid_t, proc::Stat>& stats);
    proc::Read<proc::MemCounters> rollup(proc::ProcReader& r, pid_t pid);

    std::string root_;
    bool has_rollup_ = true;
    std::unordered_map<Key, First, KeyHash> first_;
    std::uint64_t round_ = 0;
};

}  // namespace cow::mem
