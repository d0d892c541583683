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
std::map<std::string, boost::json::object> trends(const Supervisor& sup, const HistorySampler& hs,
                                                  const std::vector<const Pool*>& pools);

// `mem --history`: {"sample_every_ms", "history", "pools":[{"name","workers":[{"name","pid",
// "generation","trend","points":[{"at_ms","generation","rss","pss","uss","swap_pss",
// "cow_lost","coarse"?}]}]}]}, points newer than since_ms ago (0: all), at most max_points
// per worker (consecutive points averaged, marked coarse; 0: no limit).
boost::json::object mem_history(const Supervisor& sup, const HistorySampler& hs,
                                const std::vector<const Pool*>& pools, std::int64_t since_ms,
                                std::size_t max_points);

// CPU use of worker processes between two `top` requests: utime + stime ticks per pid.
class CpuMeter {
  public:
    struct Reading {
        pid_t pid = 0;
        std::uint64_t starttime = 0;
        std::uint64_t ticks = 0;
    };
    // Reads each pid's stat (call off the loop).
    static std::vector<Reading> read(const std::vector<pid_t>& pids);
    // Percent of one core since the previous reading of the same process, by pid; a process
    // seen for the first time has none yet.
    std::unordered_map<pid_t, double> update(const std::vector<Reading>& now_readings,
                                             std::int64_t now_ms);

  private:
    struct Last {
        std::uint64_t starttime = 0, ticks = 0;
        std::int64_t at_ms = 0;
        double pct = -1;  // measured up to at_ms; -1: not yet
    };
    std::unordered_map<pid_t, Last> last_;
};

// `top`: the status view, and per worker cpu_pct, memory (the newest sample), uss_points
// (the newest `points` USS samples of its current generation) and trend; per pool its
// memory totals over the newest samples; readonly, sample_every_ms and sampled_ago_ms.
boost::json::object top(const Supervisor& sup, const HistorySampler& hs,
                        const std::unordered_map<pid_t, double>& cpu, std::size_t points,
                        bool readonly);

}  // namespace cow::views
