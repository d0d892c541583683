// Ordering by depends_on: starts wait for what a pool needs, stops go to what needs it first,
// and shutdown stops dependents before their dependencies. These stay Supervisor members on
// purpose: each decision here is an event applied to a worker, and only the Supervisor applies
// events. The graph queries they use are pool_graph's.
#include <algorithm>
#include <csignal>

#include <spdlog/spdlog.h>

#include "daemon/supervise/supervisor.hpp"

namespace cow {

using fsm::Event;
using fsm::EventType;
using fsm::State;

void Supervisor::start_dependents() {
    if (shutting_down_) return;
    const auto now = sys_.now();
    for (auto& pool : pools_) {
        // Operator starts that waited for their pool's dependencies.
        if (!pool->start_after_deps.empty() && deps_up(*pool)) {
            auto ids = std::move(pool->start_after_deps);
            pool->start_after_deps.clear();
            for (auto id : ids)
                if (Worker* w = find_worker(id); w && w->pool == pool.get() && !w->retiring)
                    apply(*w, Event{EventType::start, now, {}});
        }
        // Operator stops that waited for the pools that depend on this one to be down.
        if (!pool->stop_after_dependents.empty()) {
            bool busy = false;
            for (Pool* d : dependents_of(*pool))
                busy |= pool_busy(*d) || !d->stop_after_dependents.empty();
            if (!busy) {
                auto ids = std::move(pool->stop_after_dependents);
                pool->stop_after_dependents.clear();
                for (auto id : ids)
                    if (Worker* w = find_worker(id); w && w->pool == pool.get())
                        apply(*w, Event{EventType::stop, now, {}});
            }
        }
    }
    // Iterate until no change: a pool with no workers is up at once and may release others.
    for (bool changed = true; changed;) {
        changed = false;
        for (auto& pool : pools_) {
            if (!pool->waiting_for_deps) continue;
            bool ready = true;
            for (const auto& dep : pool->cfg->depends_on) {
                for (auto& other : pools_)
                    if (other->name() == dep && !pool_up(*other)) ready = false;
            }
            if (ready) {
                start_pool(*pool, "dependencies are running; starting");
                changed = true;
            }
        }
    }
}

void Supervisor::command(const std::vector<Worker*>& targets, EventType ev, std::string_view why) {
    const auto now = sys_.now();
    // A restart of a whole template pool (a deploy) forks from a new template.
    if (ev == EventType::restart)
        for (auto& p : pools_) {
            const auto in = std::count_if(targets.begin(), targets.end(),
                                          [&](Worker* t) { return t->pool == p.get(); });
            if (in > 0 && in == std::count_if(p->workers.begin(), p->workers.end(),
                                              [](const auto& w) { return !w->retiring; }))
                renew_template(*p);
        }
    if (ev == EventType::stop || ev == EventType::restart)
        for (Worker* w : targets)
            w->stop_reason = why.empty() ? std::string(fsm::to_string(ev)) : std::string(why);
    // An operator's word overrides a start still queued from boot.
    if (!start_queue_.empty())
        for (Worker* w : targets)
            std::erase(start_queue_, w->id);
    if (ev == EventType::stop) {
        for (Worker* w : targets) {
            Pool& p = *w->pool;
            // A single worker stopped leaves its pool's dependents alone.
            const bool whole = std::count_if(targets.begin(), targets.end(), [&](Worker* t) {
                                   return t->pool == &p;
                               }) == static_cast<long>(p.workers.size());
            stop_in_order(*w, whole, now);
        }
        return;
    }

    // Starting (or restarting) a pool starts what it depends on first, each dependency after
    // its own; its own workers start once those are up (start_dependents releases them).
    for (Worker* w : targets) {
        if (w->retiring) continue;  // scaled away and on its way out: nothing revives it
        w->pool->stop_after_dependents.clear();
        if (!dependencies_held(*w->pool, now)) {
            w->pool->waiting_for_deps = false;
            apply(*w, Event{ev, now, {}});
        } else {
            // A restart's stop goes now; its start waits with the others.
            if (ev == EventType::restart) apply(*w, Event{EventType::stop, now, {}});
            hold_start(*w);
        }
    }
}

void Supervisor::hold_start(Worker& w) {
    Pool& p = *w.pool;
    p.waiting_for_deps = false;
    if (std::find(p.start_after_deps.begin(), p.start_after_deps.end(), w.id) ==
        p.start_after_deps.end())
        p.start_after_deps.push_back(w.id);
    w.last_reason = "waiting for depends_on";
}

// Asks every direct dependency of the pool to start (in order, recursively); true while any of
// them is not up yet.
bool Supervisor::dependencies_held(Pool& pool, fsm::TimePoint now) {
    bool held = false;
    for (const auto& dep : pool.cfg->depends_on) {
        Pool* d = find_pool(dep);
        if (!d || pool_up(*d)) continue;
        held = true;
        const bool deeper = dependencies_held(*d, now);
        for (auto& dw : d->workers) {
            if (dw->retiring) continue;
            if (dw->slot.want == fsm::Want::up &&
                std::find(d->start_after_deps.begin(), d->start_after_deps.end(), dw->id) ==
                    d->start_after_deps.end())
                continue;  // on its way up already
            if (deeper) {
                hold_start(*dw);
                continue;
            }
            if (std::find(d->start_after_deps.begin(), d->start_after_deps.end(), dw->id) !=
                d->start_after_deps.end())
                continue;  // released by start_dependents once its own are up
            spdlog::info("pool {}: starting {} first (depends_on)", pool.name(), dw->name);
            apply(*dw, Event{EventType::start, now, {}});
        }
    }
    return held;
}

bool Supervisor::start_held(const Worker& w) const {
    return held_for_deps(w);
}

// Stopping a pool stops what depends on it first, each dependent after its own dependents;
// a worker whose pool still has dependents running waits (start_dependents releases it).
void Supervisor::stop_in_order(Worker& w, bool whole_pool, fsm::TimePoint now) {
    Pool& p = *w.pool;
    p.waiting_for_deps = false;
    p.start_after_deps.clear();
    if (!whole_pool || !dependents_held(p, now)) {
        apply(w, Event{EventType::stop, now, {}});
        return;
    }
    if (std::find(p.stop_after_dependents.begin(), p.stop_after_dependents.end(), w.id) ==
        p.stop_after_dependents.end())
        p.stop_after_dependents.push_back(w.id);
    w.last_reason = "stopping after the pools that depend on it";
}

// Asks every direct dependent of the pool to stop (in order, recursively); true while any of
// them is still running, stopping or waiting for its own dependents.
bool Supervisor::dependents_held(Pool& pool, fsm::TimePoint now) {
    bool held = false;
    for (auto& other : pools_) {
        if (!other || other->removed || other.get() == &pool) continue;
        const auto& deps = other->cfg->depends_on;
        if (std::find(deps.begin(), deps.end(), pool.name()) == deps.end()) continue;
        for (auto& dw : other->workers) {
            if (dw->slot.want == fsm::Want::down && !dw->alive() && !dw->draining) continue;
            if (std::find(other->stop_after_dependents.begin(), other->stop_after_dependents.end(),
                          dw->id) != other->stop_after_dependents.end())
                continue;  // already waiting its turn
            spdlog::info("pool {}: stopping {} first (depends_on)", pool.name(), dw->name);
            stop_in_order(*dw, true, now);
        }
        held |= pool_busy(*other) || !other->stop_after_dependents.empty();
    }
    return held;
}

void Supervisor::begin_shutdown() {
    if (shutting_down_) return;
    shutting_down_ = true;
    spdlog::info("shutting down: stopping {} pools, dependents first", pools_.size());
    for (auto& [pid, o] : lineage_.orphans())
        terminate_orphan(o, o.grace);
    // No new worker is forked now; the workers stop on their own terms.
    for (auto& p : pools_)
        retire_template(*p, SIGTERM);
    stage_shutdown();
}

void Supervisor::stage_shutdown() {
    const auto now = sys_.now();
    auto busy = [](const Pool& p) { return pool_busy(p); };
    for (bool changed = true; changed;) {
        changed = false;
        for (auto& pool : pools_) {
            if (pool->stop_sent) continue;
            // A pool stops only after every pool that depends on it has stopped.
            bool dependents_done = true;
            for (auto& other : pools_) {
                if (other.get() == pool.get()) continue;
                const auto& deps = other->cfg->depends_on;
                if (std::find(deps.begin(), deps.end(), pool->name()) != deps.end() &&
                    (!other->stop_sent || busy(*other)))
                    dependents_done = false;
            }
            if (!dependents_done) continue;
            pool->stop_sent = true;
            pool->waiting_for_deps = false;
            for (auto& w : pool->workers)
                apply(*w, Event{EventType::stop, now, {}});
            changed = true;
        }
    }
}

}  // namespace cow
