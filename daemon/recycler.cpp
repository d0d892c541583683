#include "daemon/recycler.hpp"

#include <spdlog/spdlog.h>

#include "core/units.hpp"
#include "daemon/memory_view.hpp"

namespace cow {

Recycler::Recycler(boost::asio::io_context& io, Supervisor& sup, Background& bg,
                   mem::Sampler& sampler)
    : io_(io), sup_(sup), bg_(bg), sampler_(sampler) {}

void Recycler::start() {
    const auto& pools = sup_.pools();
    timers_.resize(pools.size());
    for (std::size_t i = 0; i < pools.size(); ++i) {
        if (!pools[i]->cfg->memory.max_private) continue;
        timers_[i] = std::make_unique<boost::asio::steady_timer>(io_);
        arm(i);
    }
}

void Recycler::stop() {
    stopped_ = true;
    for (auto& t : timers_)
        if (t) t->cancel();
}

void Recycler::arm(std::size_t i) {
    if (stopped_) return;
    timers_[i]->expires_after(sup_.pools()[i]->cfg->memory.check_every);
    timers_[i]->async_wait([this, i](const boost::system::error_code& ec) {
        if (!ec) check(i);
    });
}

void Recycler::check(std::size_t i) {
    Pool& pool = *sup_.pools()[i];
    std::vector<Worker*> running;
    for (auto& w : pool.workers)
        if (w->slot.state == fsm::State::running) running.push_back(w.get());
    if (running.empty() || sup_.shutting_down()) {
        arm(i);
        return;
    }
    mem::MemQuery q = mem::make_query(sup_, running);
    const std::uint64_t limit = *pool.cfg->memory.max_private;
    bg_.run([this, q] { return sampler_.sample(q); },
            [this, i, limit](mem::Sample s) {
                for (const auto& wm : s.workers) {
                    mem::Totals tree;
                    for (const auto& pm : wm.procs)
                        if (pm.status == proc::ReadStatus::ok) tree.add(pm.now);
                    const std::uint64_t priv = tree.uss + tree.swap_pss;
                    if (priv <= limit) continue;
                    auto r = sup_.resolve(wm.target.name);
                    auto* ws = std::get_if<std::vector<Worker*>>(&r);
                    if (!ws || ws->size() != 1) continue;
                    Worker& w = *ws->front();
                    // Only the process we measured: it may have been replaced meanwhile.
                    if (w.pid != wm.target.pid || w.slot.state != fsm::State::running) continue;
                    std::string why = "private " + format_size(priv) + " > " + format_size(limit);
                    spdlog::warn("{} recycled: {}", w.name, why);
                    w.recycles++;
                    w.recycle_reason = why;
                    ++recycled_;
                    // With shared sockets or readiness the replacement starts first, so the
                    // pool never runs short; otherwise a plain restart.
                    Pool& pool = *w.pool;
                    if ((!pool.sockets.empty() || pool.cfg->ready == config::Ready::notify) &&
                        !sup_.rolling(pool))
                        sup_.start_roll(pool, {&w}, 1, {});
                    else
                        sup_.command({&w}, fsm::EventType::restart);
                }
                arm(i);
            });
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
