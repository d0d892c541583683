// Live reload, applied (Supervisor::apply_reload): the plan from config/plan decides, pool
// by pool, what happens. Unchanged pools are not touched, not even signalled.
#include <spdlog/spdlog.h>

#include "daemon/supervise/supervisor.hpp"

namespace cow {

int Supervisor::apply_reload(std::shared_ptr<const config::Config> next,
                             const config::ReloadPlan& plan,
                             std::map<std::string, ListenSockets> sockets,
                             const RollCallbacks& cb) {
    using Kind = config::PoolChange::Kind;
    // A roll of a pool that this reload changes or removes is superseded: its replacements
    // that are not ready yet stop, the old processes keep serving, and the pool rolls onto
    // the new config below (or stops, when removed). Rolls of other pools go on.
    for (const auto& change : plan.pools) {
        if (change.kind != Kind::changed && change.kind != Kind::removed) continue;
        for (auto& p : pools_)
            if (p->name() == change.name && rolling(*p))
                cancel_roll(*p, "superseded by a reload of " + change.name);
    }
    cfg_ = std::move(next);
    launcher_.setup().sockets = std::move(sockets);
    int rolls = 0;
    std::vector<std::unique_ptr<Pool>> order;
    auto take = [&](const std::string& name) -> std::unique_ptr<Pool> {
        for (auto& p : pools_)
            if (p && p->name() == name) return std::move(p);
        return nullptr;
    };
    const auto now = sys_.now();
    std::vector<std::vector<Worker*>> restarts;
    std::vector<std::pair<Pool*, std::vector<Worker*>>> roll_later;
    std::vector<std::pair<Pool*, int>> resize_later;
    for (const auto& change : plan.pools) {
        if (change.kind == Kind::removed) continue;
        const config::PoolConfig& pc = *cfg_->find_pool(change.name);
        auto pcp = std::make_shared<const config::PoolConfig>(pc);
        if (change.kind == Kind::added) {
            auto pool = std::make_unique<Pool>();
            pool->cfg = pcp;
            pool->policy = fsm::policy_from(pc);
            pool->use_cgroup = sys_.cgroups() != nullptr && pc.kill_mode != config::KillMode::group;
            launcher_.build_template(*pool);
            for (int i = 0; i < pc.workers; ++i)
                add_worker(*pool, i);
            if (pc.autostart) {
                if (pc.depends_on.empty())
                    for (auto& w : pool->workers)
                        apply(*w, fsm::Event{fsm::EventType::start, now, {}});
                else
                    pool->waiting_for_deps = true;
            }
            spdlog::info("reload: pool {} added", pc.name);
            order.push_back(std::move(pool));
            continue;
        }
        auto pool = take(change.name);
        if (!pool) continue;
        if (change.kind == Kind::unchanged) {
            pool->cfg = pcp;  // equal content: nothing to do
            order.push_back(std::move(pool));
            continue;
        }
        // The workers that exist now are the ones a changed config must replace.
        std::vector<Worker*> old;
        for (auto& w : pool->workers)
            if (!w->retiring && w->index < pc.workers) old.push_back(w.get());
        pool->cfg = pcp;
        pool->policy = fsm::policy_from(pc);
        if (change.kind == Kind::changed) {
            // Counted failures belong to the config that had them: a reload that fixes a
            // broken command starts its workers with a clean slate (RESTARTS, the
            // max_restarts window and the backoff exponent).
            for (auto& w : pool->workers) {
                w->restarts = 0;
                fsm::forget_failures(w->slot);
            }
        }
        pool->use_cgroup = sys_.cgroups() != nullptr && pc.kill_mode != config::KillMode::group;
        launcher_.build_template(*pool);
        if (change.old_workers != change.new_workers)
            resize_later.emplace_back(pool.get(), pc.workers);
        if (change.kind == Kind::updated) {
            std::string keys;
            for (const auto& k : change.keys)
                if (k != "workers") keys += (keys.empty() ? "" : ", ") + k;
            spdlog::info("reload: pool {} updated in place ({}): no worker restarted", pc.name,
                         keys);
        }
        if (change.kind == Kind::changed) {
            std::string keys;
            for (const auto& k : change.keys)
                keys += (keys.empty() ? "" : ", ") + k;
            const bool roll = config::restarts_rolling(pc);
            std::vector<Worker*> up;
            for (Worker* w : old)
                if (w->slot.want == fsm::Want::up) up.push_back(w);
            spdlog::info("reload: pool {} changed ({}): {} {} workers", pc.name, keys,
                         roll ? "rolling restart of" : "restarting", up.size());
            if (roll && !up.empty())
                roll_later.emplace_back(pool.get(), std::move(up));
            else
                restarts.push_back(std::move(up));
        }
        order.push_back(std::move(pool));
    }
    // Removed pools stop; they leave (and close their sockets) once every worker is gone.
    for (auto& p : pools_) {
        if (!p) continue;
        spdlog::info("reload: pool {} removed; stopping its workers", p->name());
        p->removed = true;
        for (auto& w : p->workers) {
            w->retiring = true;
            w->stop_reason = "reload: pool removed";
            apply(*w, fsm::Event{fsm::EventType::stop, now, {}});
        }
        order.push_back(std::move(p));
    }
    pools_ = std::move(order);
    // Resizes, rolls and restarts go once every pool is back in place: the workers they
    // start must see the new config's depends_on, and every pool in it.
    for (auto [pool, size] : resize_later)
        scale(*pool, size);
    // A roll needs its pool's dependencies up: the successors start beside the old processes.
    // A pool changed onto a dependency that is not up restarts like any other, held below.
    for (auto& [pool, ws] : roll_later) {
        if (deps_up(*pool)) {
            start_roll(*pool, ws, 1, cb);
            ++rolls;
        } else {
            restarts.push_back(std::move(ws));
        }
    }
    // Restarts go once every pool is back in place: depends_on must see the whole new config
    // (a pool restarted onto a new dependency waits for it like any start).
    // A reload never starts a pool the operator stopped: a pool changed onto a dependency
    // that is not up stops now and starts once the dependency runs.
    for (const auto& ws : restarts) {
        if (ws.empty() || deps_up(*ws.front()->pool)) {
            command(ws, fsm::EventType::restart, "reload");
            continue;
        }
        // What depends on the pool cannot run without it (systemd's Requires=): it stops
        // with it and comes back once it runs again.
        std::vector<Worker*> down = ws;
        for (Pool* d : dependents_of(*ws.front()->pool))
            for (auto& dw : d->workers)
                if (!dw->retiring && (dw->slot.want == fsm::Want::up || held_for_deps(*dw)))
                    down.push_back(dw.get());
        for (Worker* w : down) {
            w->stop_reason = "reload: a dependency is down";
            apply(*w, fsm::Event{fsm::EventType::stop, now, {}});
            hold_start(*w);
        }
    }
    start_dependents();
    return rolls;
}

}  // namespace cow
