// The body of a /metrics scrape, in the Prometheus text format (0.0.4).
#pragma once

#include <map>
#include <string>

#include "daemon/logs/output.hpp"
#include "daemon/memory/memory_sampler.hpp"
#include "daemon/supervise/supervisor.hpp"

namespace cow {

struct DaemonFigures {
    double loop_lag_seconds = 0;
    std::uint64_t resident_bytes = 0;
    std::uint64_t open_fds = 0;
    double uptime_seconds = 0;
};

std::string render_metrics(const Supervisor& sup, const std::map<std::string, PoolLogStats>& logs,
                           const mem::Sample* memory, const DaemonFigures& daemon);

// Our own VmRSS and open fd count, read from /proc/self.
DaemonFigures read_self_figures();

}  // namespace cow
