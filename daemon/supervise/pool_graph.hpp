// The pools' depends_on graph, read as systemd reads Requires= with After=: what a pool needs,
// transitively, what needs it, and whether a pool is up or still busy. Queries only, over the
// Supervisor's pool list; the ordering that acts on them is the Supervisor's (ordering.cpp).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "daemon/supervise/worker.hpp"

namespace cow::pool_graph {

using Pools = std::vector<std::unique_ptr<Pool>>;

// Every worker runs (a pool of 0 counts as up); a worker being scaled away does not count.
bool up(const Pool& p);
// A worker of the pool still has a process, or is stopping.
bool busy(const Pool& p);
// A pool a reload removed is not found: it is on its way out.
Pool* find(const Pools& pools, std::string_view name);
std::vector<Pool*> dependencies_of(const Pools& pools, const Pool& pool);  // transitively
std::vector<Pool*> dependents_of(const Pools& pools, const Pool& pool);    // transitively
// Every direct dependency that exists is up.
bool deps_up(const Pools& pools, const Pool& pool);

// Resolves "all", "web" or "web.2" to workers; the error names what was not found.
struct TargetError {
    std::string code;  // "no_such_pool" | "no_such_worker" | "invalid_argument"
    std::string message;
};
std::variant<std::vector<Worker*>, TargetError> resolve(const Pools& pools,
                                                        std::string_view target);

}  // namespace cow::pool_graph
