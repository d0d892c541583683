// The views of memory over time and of `cowctl top`: built on the loop from the History (no
// /proc read), except each worker's CPU, which the top handler reads off the loop.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/json.hpp>

#include "daemon/memory/history_sampler.hpp"
#include "daemon/supervise/supervisor.hpp"

namespace cow::views {

// Each worker's trend (mem::assessment_json), by worker name, for the workers of `pools`.
std::map<std::string, boost::json::object> trends(const HistorySampler& hs,
                                                  const std::vector<const Pool*>& pools);

// `mem --history`: {"sample_every_ms", "history", "pools":[{"name","workers":[{"name","pid",
// "generation","trend","points":[{"at_ms","generation","rss","pss","uss","swap_pss",
// "cow_lost","coarse"?}]}]}]}, points newer than since_ms ago (0: all), at most max_points
// per worker (consecutive points averaged, marked coarse; 0: no limit).
boost::json::object mem_history(const Supervisor& sup, const HistorySampler& hs,
                                const std::vector<const Pool*>& pools, std::int64_t since_ms,
                                std::size_t max_points);

// CPU use of worker processes between two `top` requests, from /proc/PID/schedstat (the
// nanoseconds a task ran). Opening a /proc file is most of what reading it costs, so each
// worker's file stays open while `top` asks for it, and all are closed once it stops asking
// (close_all): at 1000 workers a refresh reads 1000 kept files, about 2 ms. Used only on the
// reader thread.
class CpuMeter {
  public:
    struct Target {
        pid_t pid = 0;
        std::uint64_t id = 0;  // the worker and its generation: a reused pid is another process
    };
    CpuMeter() = default;
    CpuMeter(const CpuMeter&) = delete;
    CpuMeter& operator=(const CpuMeter&) = delete;
    ~CpuMeter() { close_all(); }

    // Percent of one core since each process's previous reading (a window of at least 250 ms;
    // a request sooner than that gets the figure of the last one); none yet for a process
    // seen the first time. Files of processes not in `targets` are closed.
    std::unordered_map<pid_t, double> measure(const std::vector<Target>& targets,
                                              std::int64_t now_ms);
    void close_all();

  private:
    struct Slot {
        int fd = -1;
        std::uint64_t id = 0;
        std::uint64_t ns = 0;
        std::int64_t at_ms = 0;
        double pct = -1;  // measured up to at_ms; -1: not yet
    };
    std::unordered_map<pid_t, Slot> slots_;
};

// `top`: the status view, and per worker cpu_pct, memory (the newest sample), uss_points
// (the newest `points` USS samples of its current generation) and trend; per pool its
// memory totals over the newest samples; readonly, sample_every_ms and sampled_ago_ms.
// with_points false leaves uss_points out (the client has them: no sample since).
boost::json::object top(const Supervisor& sup, const HistorySampler& hs,
                        const std::unordered_map<pid_t, double>& cpu, std::size_t points,
                        bool with_points, bool readonly);

}  // namespace cow::views
