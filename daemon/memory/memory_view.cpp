#include "daemon/memory/memory_view.hpp"

#include <algorithm>
#include <map>
#include <unordered_map>
#include <unordered_set>

#include "core/names.hpp"

namespace cow::mem {

namespace {

void add_pool(MemQuery& q, const std::string& name) {
    // A removed pool may linger under the name that a reload gave to a new one: one block.
    if (std::find(q.pools.begin(), q.pools.end(), name) == q.pools.end()) q.pools.push_back(name);
}

OrphanRoot root_of(const Orphan& o) {
    return OrphanRoot{o.pid, o.starttime, o.comm, o.cgroup};
}

}  // namespace

Target target_of(const Worker& w) {
    Target t;
    t.pool = w.pool->name();
    t.name = w.name;
    t.index = w.index;
    t.pid = w.alive() ? w.pid : 0;
    t.generation = w.generation;
    t.cgroup = w.cgroup;
    t.worker_id = w.id;
    const auto& argv = w.pool->cfg->command;
    for (std::size_t i = 0; i < argv.size() && t.cmd.size() < 256; ++i)
        t.cmd += (i ? " " : "") + argv[i];
    return t;
}

std::optional<Target> template_target(const Pool& p) {
    if (p.tpl.pid <= 0) return std::nullopt;
    Target t;
    t.pool = p.name();
    t.name = p.name() + ".template";
    t.index = kTemplateIndex;
    t.pid = p.tpl.pid;
    t.generation = p.tpl.generation;
    const auto& argv = p.cfg->command;
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
        if (any) add_pool(q, p->name());
    }
    return q;
}

MemQuery report_query(const Supervisor& sup, const std::vector<const Pool*>& pools,
                      bool all_pools) {
    std::unordered_map<std::uint64_t, std::vector<const Orphan*>> by_worker;
    for (const auto& [pid, o] : sup.orphans())
        if (o.worker_id != 0) by_worker[o.worker_id].push_back(&o);
    std::unordered_set<const Pool*> wanted(pools.begin(), pools.end());
    MemQuery q;
    for (const auto& p : sup.pools()) {
        if (!wanted.count(p.get())) continue;
        add_pool(q, p->name());
        for (const auto& w : p->workers) {
            Target t = target_of(*w);
            if (auto it = by_worker.find(w->id); it != by_worker.end()) {
                for (const Orphan* o : it->second)
                    t.orphans.push_back(root_of(*o));
                by_worker.erase(it);
            }
            q.targets.push_back(std::move(t));
        }
        // spawn: template: the template holds the pages its workers share; the pool's
        // footprint counts it once, as one more process of the pool.
        if (auto t = template_target(*p)) q.targets.push_back(std::move(*t));
    }
    // What is left came from workers that no longer exist, or from pools not asked for.
    std::map<std::uint64_t, Target> gone;  // by worker id: stable order
    for (const auto& [id, orphans] : by_worker) {
        if (sup.find_worker(id)) continue;  // a live worker of a pool not asked for
        auto ref = split_worker_name(orphans.front()->from);
        if (!ref) continue;
        const bool asked =
            all_pools || std::find(q.pools.begin(), q.pools.end(), ref->pool) != q.pools.end();
        if (!asked) continue;
        Target& t = gone[id];
        t.pool = ref->pool;
        t.name = orphans.front()->from;
        t.index = ref->index;
        t.worker_id = id;
        for (const Orphan* o : orphans)
            t.orphans.push_back(root_of(*o));
    }
    for (auto& [id, t] : gone) {
        add_pool(q, t.pool);
        q.targets.push_back(std::move(t));
    }
    return q;
}

}  // namespace cow::mem
