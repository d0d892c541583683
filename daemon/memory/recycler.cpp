#include "daemon/memory/recycler.hpp"

#include <spdlog/spdlog.h>

#include "core/protocol_names.hpp"
#include "core/units.hpp"
#include "daemon/memory/memory_view.hpp"

namespace cow {

Recycler::Recycler(boost::asio::io_context& io, Supervisor& sup, Background& bg,
                   mem::Sampler& sampler)
    : io_(io), sup_(sup), bg_(bg), sampler_(sampler) {}

Pool* Recycler::live_pool(const std::string& name) const {
    for (const auto& p : sup_.pools())
        if (!p->removed && p->name() == name) return p.get();
    return nullptr;
}

void Recycler::reconfigure() {
    if (stopped_) return;
    std::map<std::string, WatchPtr> next;
    for (const auto& p : sup_.pools()) {
        const auto& m = p->cfg->memory;
        if (p->removed || !m.max_private) continue;
        auto it = watches_.find(p->name());
        WatchPtr w;
        if (it != watches_.end() && it->second->every == m.check_every) {
            w = it->second;  // keeps its pace; each check reads the limit afresh
        } else {
            w = std::make_shared<Watch>(io_, p->name(), m.check_every);
            arm(w);
        }
        if (w->limit != *m.max_private)
            spdlog::info("memory checks of pool {}: max_private {}, every {}", p->name(),
                         format_size(*m.max_private), format_duration(m.check_every));
        w->limit = *m.max_private;
        next[p->name()] = w;
    }
    for (auto& [name, w] : watches_) {
        auto it = next.find(name);
        if (it == next.end()) spdlog::info("memory checks of pool {} stopped", name);
        // A replaced or dropped watch: its timer stops here, and a check in flight finds it
        // no longer current and does nothing.
        if (it == next.end() || it->second != w) w->timer.cancel();
    }
    watches_ = std::move(next);
}

void Recycler::stop() {
    stopped_ = true;
    for (auto& [name, w] : watches_)
        w->timer.cancel();
    watches_.clear();
}

bool Recycler::current(const WatchPtr& w) const {
    auto it = watches_.find(w->pool);
    return !stopped_ && it != watches_.end() && it->second == w;
}

void Recycler::arm(const WatchPtr& w) {
    if (stopped_) return;
    w->timer.expires_after(w->every);
    w->timer.async_wait(
        [this, weak = std::weak_ptr<Watch>(w)](const boost::system::error_code& ec) {
            auto watch = weak.lock();
            if (!ec && watch && current(watch)) check(watch);
        });
}

void Recycler::check(const WatchPtr& w) {
    Pool* pool = live_pool(w->pool);
    std::vector<Worker*> running;
    if (pool)
        for (auto& x : pool->workers)
            if (x->slot.state == fsm::State::running) running.push_back(x.get());
    if (running.empty() || sup_.shutting_down()) {
        arm(w);
        return;
    }
    mem::MemQuery q = mem::make_query(sup_, running);
    bg_.run([this, q] { return sampler_.sample(q); },
            [this, w](mem::Sample s) {
                if (!current(w)) return;  // reconfigured meanwhile: the new watch checks
                act(w, s);
                arm(w);
            });
}

void Recycler::act(const WatchPtr& watch, const mem::Sample& s) {
    // The limit as configured now: a reload may have changed it while the sample was taken.
    Pool* pool = live_pool(watch->pool);
    if (!pool || !pool->cfg->memory.max_private) return;
    const std::uint64_t limit = *pool->cfg->memory.max_private;
    for (const auto& wm : s.workers) {
        mem::Totals tree;
        for (const auto& pm : wm.procs)
            if (pm.status == proc::ReadStatus::ok && !pm.orphan) tree.add(pm.now);
        const std::uint64_t priv = tree.uss + tree.swap_pss;
        if (priv <= limit) continue;
        Worker* w = sup_.find_worker(wm.target.worker_id);
        // Only the process we measured, still in this pool: it may have been replaced meanwhile.
        if (!w || w->pool != pool || w->pid != wm.target.pid ||
            w->slot.state != fsm::State::running)
            continue;
        std::string why = "private " + format_size(priv) + " > " + format_size(limit);
        spdlog::warn("{} recycled: {}", w->name, why);
        sup_.events().emit(sup_.now(), proto::event::recycle, pool->name(), w->name,
                           w->name + " recycled: " + why,
                           {{"pid", w->pid}, {"private", priv}, {"max_private", limit}});
        w->recycles++;
        w->recycle_reason = why;
        ++recycled_;
        // With shared sockets or readiness the replacement starts first, so the pool never
        // runs short; otherwise a plain restart.
        if (config::restarts_rolling(*pool->cfg) && !sup_.rolling(*pool))
            sup_.start_roll(*pool, {w}, 1, {});
        else
            sup_.command({w}, fsm::EventType::restart, "recycle: " + why);
    }
}

void Recycler::note_running(const Worker& w) {
    pending_.push_back(w.id);
}

void Recycler::flush() {
    // A chunk at a time, the next when it is back: after a start burst, the baselines of
    // 1000 workers as one query and one sample left the heaps ~1 MiB bigger for good.
    constexpr std::size_t kChunk = 64;
    if (baseline_running_) return;
    std::vector<Worker*> ws;
    while (!pending_.empty() && ws.size() < kChunk) {
        if (Worker* w = sup_.find_worker(pending_.front()); w && w->alive()) ws.push_back(w);
        pending_.pop_front();
    }
    if (ws.empty()) return;
    mem::MemQuery q = mem::make_query(sup_, ws);
    baseline_running_ = true;
    bg_.run([this, q = std::move(q)] { return sampler_.sample(q).processes; },
            [this](std::size_t n) {
                spdlog::debug("memory baseline taken for {} processes", n);
                baseline_running_ = false;
                if (!stopped_ && !sup_.starts_queued()) flush();
            });
}

}  // namespace cow
