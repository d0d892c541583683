#include "daemon/memory_view.hpp"

#include <unordered_set>

namespace cow::mem {

Target target_of(const Worker& w) {
    Target t;
    t.pool = w.pool->name();
    t.name = w.name;
    t.index = w.index;
    t.pid = w.alive() ? w.pid : 0;
    t.generation = w.generation;
    t.cgroup = w.cgroup;
    const auto& argv = w.pool->cfg->command;
    for (std::size_t i = 0; i < argv.size() && t.cmd.size() < 256; ++i)
        t.cmd += (i ? " " : "") + argv[i];
    return t;
}

MemQuery make_query(const Supervisor& sup, const std::vector<Worker*>& workers) {
    MemQuery q;
    std::unordered_set<const Worker*> wanted(workers.begin(), workers.end());
    for (const auto& p : sup.pools()) {
        bool any = false;
        for (const auto& w : p->workers) {
            if (!wanted.count(w.get())) continue;
            any = true;
            q.targets.push_back(target_of(*w));
        }
        if (any) q.pools.push_back(p->name());
    }
    return q;
}

}  // namespace cow::mem
