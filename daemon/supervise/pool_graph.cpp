#include "daemon/supervise/pool_graph.hpp"

#include <algorithm>

#include "core/escape.hpp"
#include "core/names.hpp"
#include "core/protocol_names.hpp"

namespace cow::pool_graph {

bool up(const Pool& p) {
    for (const auto& w : p.workers)
        if (!w->serving() && !w->retiring) return false;
    return true;
}

bool busy(const Pool& p) {
    for (const auto& w : p.workers)
        if (w->alive() || w->draining || w->slot.state == fsm::State::stopping) return true;
    return false;
}

Pool* find(const Pools& pools, std::string_view name) {
    for (const auto& p : pools)
        if (p && p->name() == name && !p->removed) return p.get();
    return nullptr;
}

std::vector<Pool*> dependencies_of(const Pools& pools, const Pool& pool) {
    std::vector<Pool*> out;
    std::vector<const Pool*> todo{&pool};
    while (!todo.empty()) {
        const Pool* p = todo.back();
        todo.pop_back();
        for (const auto& dep : p->cfg->depends_on) {
            Pool* d = find(pools, dep);
            if (!d || d == &pool || std::find(out.begin(), out.end(), d) != out.end()) continue;
            out.push_back(d);
            todo.push_back(d);
        }
    }
    return out;
}

std::vector<Pool*> dependents_of(const Pools& pools, const Pool& pool) {
    std::vector<Pool*> out;
    std::vector<const Pool*> todo{&pool};
    while (!todo.empty()) {
        const Pool* p = todo.back();
        todo.pop_back();
        for (const auto& other : pools) {
            if (!other || other->removed || other.get() == &pool) continue;
            const auto& deps = other->cfg->depends_on;
            if (std::find(deps.begin(), deps.end(), p->name()) == deps.end()) continue;
            if (std::find(out.begin(), out.end(), other.get()) != out.end()) continue;
            out.push_back(other.get());
            todo.push_back(other.get());
        }
    }
    return out;
}

bool deps_up(const Pools& pools, const Pool& pool) {
    for (const auto& dep : pool.cfg->depends_on)
        if (const Pool* d = find(pools, dep); d && !up(*d)) return false;
    return true;
}

std::variant<std::vector<Worker*>, TargetError> resolve(const Pools& pools,
                                                        std::string_view target) {
    std::vector<Worker*> out;
    // A pool a reload removed is on its way out: no verb reaches it (it could be revived, or
    // taken for a pool of the same name that a later reload added).
    if (target == proto::kAllTargets) {
        for (auto& p : pools)
            if (!p->removed)
                for (auto& w : p->workers)
                    out.push_back(w.get());
        return out;
    }
    if (!valid_name(target))
        return TargetError{"invalid_argument",
                           "invalid name \"" + escape_invisible(target.substr(0, 80)) +
                               "\": expected POOL, POOL.N or all ([A-Za-z0-9_.-]{1,64})"};
    for (auto& p : pools) {
        if (p->name() == target && !p->removed) {
            for (auto& w : p->workers)
                out.push_back(w.get());
            return out;
        }
    }
    if (auto ref = split_worker_name(target)) {
        for (auto& p : pools) {
            if (p->name() != ref->pool || p->removed) continue;
            for (auto& w : p->workers)
                if (w->index == ref->index) return std::vector<Worker*>{w.get()};
            return TargetError{"no_such_worker", "pool " + p->name() + " has no worker " +
                                                     std::to_string(ref->index) + " (it has " +
                                                     std::to_string(p->workers.size()) + ")"};
        }
    }
    return TargetError{"no_such_pool", "no pool named \"" + escape_invisible(target) + "\""};
}

}  // namespace cow::pool_graph
