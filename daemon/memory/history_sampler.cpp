#include "daemon/memory/history_sampler.hpp"

#include <algorithm>
#include <cmath>

#include <spdlog/spdlog.h>

#include "core/names.hpp"
#include "daemon/memory/memory_view.hpp"

namespace cow {

namespace mem {

namespace {

double median(std::vector<double> v) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const std::size_t m = v.size() / 2;
    return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

}  // namespace

std::vector<Assessment> assess(const History& h, const std::vector<std::string>& slots,
                               std::int64_t since_ms, std::optional<std::uint64_t> max_private) {
    std::vector<Assessment> out(slots.size());
    for (std::size_t i = 0; i < slots.size(); ++i)
        out[i].trend = h.trend(slots[i], since_ms);
    for (std::size_t i = 0; i < slots.size(); ++i) {
        auto& a = out[i];
        if (!a.trend) continue;
        const Trend& t = *a.trend;
        if (max_private && t.uss_per_s > 0) {
            const double left =
                static_cast<double>(*max_private) - static_cast<double>(t.last_private);
            const double in_s = std::max(0.0, left / t.uss_per_s);
            if (in_s < kRecycleHorizonS) a.recycle_in_s = in_s;  // else: not at this rate
        }
        const double growth = t.uss_per_s * static_cast<double>(t.span_ms) / 1000.0;
        if (t.r2 < kLeakFit || t.uss_per_s * 3600.0 < kLeakPerHour || growth < kLeakMin) continue;
        std::vector<double> siblings;
        for (std::size_t j = 0; j < slots.size(); ++j)
            if (j != i && out[j].trend) siblings.push_back(out[j].trend->uss_per_s);
        a.leak = siblings.empty() || median(siblings) < t.uss_per_s / 4.0;
    }
    return out;
}

boost::json::object assessment_json(const Assessment& a) {
    boost::json::object o;
    if (!a.trend) return o;
    o["uss_per_hour"] = std::llround(a.trend->uss_per_s * 3600.0);
    o["r2"] = std::round(a.trend->r2 * 1000.0) / 1000.0;
    o["points"] = a.trend->points;
    o["window_ms"] = a.trend->span_ms;
    o["leak"] = a.leak;
    if (a.recycle_in_s) o["recycle_in_s"] = std::llround(*a.recycle_in_s);
    return o;
}

}  // namespace mem

HistorySampler::HistorySampler(boost::asio::io_context& io, Supervisor& sup, Background& bg,
                               mem::Sampler& sampler)
    : io_(io), sup_(sup), bg_(bg), sampler_(sampler), timer_(io) {}

std::int64_t HistorySampler::now_ms() const {
    return std::chrono::duration_cast<Millis>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

std::optional<std::int64_t> HistorySampler::sampled_ago_ms() const {
    if (!last_ms_) return std::nullopt;
    return now_ms() - *last_ms_;
}

void HistorySampler::configure(Millis every) {
    if (stopped_) return;
    if (every == every_) return;
    const bool was_on = every_.count() > 0;
    every_ = every;
    timer_.cancel();
    if (every.count() == 0) {
        if (was_on) spdlog::info("memory history off (daemon.memory.sample_every: 0)");
        return;
    }
    history_.set_interval(every);
    spdlog::info("memory history: every running worker sampled every {}", format_duration(every));
    next_ = std::chrono::steady_clock::now() + every;
    arm();
}

void HistorySampler::stop() {
    stopped_ = true;
    timer_.cancel();
}

void HistorySampler::arm() {
    if (stopped_ || every_.count() == 0) return;
    timer_.expires_at(next_);
    timer_.async_wait([this, every = every_](const boost::system::error_code& ec) {
        if (ec || stopped_ || every != every_) return;  // reconfigured: the new timer runs
        // A fixed pace on the monotonic clock; ticks missed while a sample ran are skipped.
        const auto now = std::chrono::steady_clock::now();
        while (next_ <= now)
            next_ += every_;
        tick();
        arm();
    });
}

void HistorySampler::assess_all() {
    trends_.clear();
    const std::int64_t since = now_ms() - 3600 * 1000;
    for (const auto& p : sup_.pools()) {
        if (p->removed) continue;
        std::vector<std::string> names;
        for (const auto& w : p->workers)
            names.push_back(w->name);
        auto a = mem::assess(history_, names, since, p->cfg->memory.max_private);
        for (std::size_t i = 0; i < names.size(); ++i)
            if (a[i].trend) trends_[names[i]] = mem::assessment_json(a[i]);
    }
}

void HistorySampler::tick() {
    if (in_flight_ || sup_.shutting_down()) return;  // the last one is still reading /proc
    std::vector<Worker*> running;
    for (const auto& p : sup_.pools()) {
        if (p->removed) continue;
        for (auto& w : p->workers)
            if (w->alive() && w->slot.state == fsm::State::running) running.push_back(w.get());
    }
    // Slots of pools a reload removed, and of workers a scale-down removed, go.
    history_.retain([this](const std::string& slot) {
        if (slot.ends_with(mem::kTemplateSuffix)) {
            const auto pool =
                std::string_view(slot).substr(0, slot.size() - mem::kTemplateSuffix.size());
            for (const auto& p : sup_.pools())
                if (!p->removed && p->name() == pool) return true;
            return false;
        }
        auto ref = split_worker_name(slot);
        if (!ref) return false;
        for (const auto& p : sup_.pools())
            if (!p->removed && p->name() == ref->pool)
                return ref->index >= 0 && static_cast<std::size_t>(ref->index) < p->workers.size();
        return false;
    });
    auto q = mem::make_query(sup_, running);
    // A template holds what its workers share: sampled too, so a pool's footprint is whole.
    for (const auto& p : sup_.pools()) {
        if (p->removed) continue;
        if (auto tt = mem::template_target(*p)) {
            if (std::find(q.pools.begin(), q.pools.end(), p->name()) == q.pools.end())
                q.pools.push_back(p->name());
            q.targets.push_back(std::move(*tt));
        }
    }
    if (q.targets.empty()) return;
    in_flight_ = true;
    const std::int64_t t = now_ms();
    bg_.run([this, q = std::move(q)] { return sampler_.sample(q); },
            [this, t, every = every_](mem::Sample s) {
                in_flight_ = false;
                if (stopped_ || every != every_) return;
                for (const auto& wm : s.workers) {
                    mem::Totals tree;  // what `mem` counts as the worker's tree
                    std::uint64_t cow_lost = 0;
                    bool any = false;
                    for (const auto& pm : wm.procs) {
                        if (pm.orphan || pm.status != proc::ReadStatus::ok) continue;
                        any = true;
                        tree.add(pm.now);
                        cow_lost += mem::private_dirty_growth(pm);
                    }
                    if (any)
                        history_.add(wm.target.name,
                                     static_cast<std::uint32_t>(wm.target.generation), t,
                                     {tree.rss_sum, tree.pss, tree.uss, tree.swap_pss, cow_lost});
                }
                last_ms_ = t;
                ++samples_;
                assess_all();
            });
}

}  // namespace cow
