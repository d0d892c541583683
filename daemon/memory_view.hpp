// The loop's side of the memory report: copies what the sampler needs out of the supervisor.
#pragma once

#include <string>
#include <vector>

#include "daemon/memory_sampler.hpp"
#include "daemon/supervisor.hpp"

namespace cow::mem {

Target target_of(const Worker& w);
// Every worker of the given workers' pools, in config order.
MemQuery make_query(const Supervisor& sup, const std::vector<Worker*>& workers);

}  // namespace cow::mem
