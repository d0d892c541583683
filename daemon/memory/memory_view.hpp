// The loop's side of the memory report: copies what the sampler needs out of the supervisor.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "daemon/memory/memory_sampler.hpp"
#include "daemon/supervise/supervisor.hpp"

namespace cow::mem {

Target target_of(const Worker& w);
// spawn: template: the pool's template as a target of its own ("web.template", index
// kTemplateIndex), while it runs. `mem` counts it in the pool; `mem --deep` makes it the master.
std::optional<Target> template_target(const Pool& p);
// Those workers, in config order, each with its pool (recycling and baselines: no orphans).
MemQuery make_query(const Supervisor& sup, const std::vector<Worker*>& workers);
// The report of `cowctl mem`: every worker of these pools, each with the orphans it left
// (Supervisor::orphans), which its own tree no longer reaches. Orphans whose worker is gone
// (scaled or reloaded away) get a row of their own under its name, in the pool of that name;
// with all_pools, also when that pool is gone.
MemQuery report_query(const Supervisor& sup, const std::vector<const Pool*>& pools, bool all_pools);

}  // namespace cow::mem
