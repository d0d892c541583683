#include "daemon/control/live_views.hpp"

#include <cmath>

#include <unistd.h>

#include "core/proc/reader.hpp"
#include "daemon/control/views.hpp"

namespace cow::views {
namespace json = boost::json;

namespace {

json::object figures_json(const mem::Figures& f) {
    return json::object{{"rss", f.rss},
                        {"pss", f.pss},
                        {"uss", f.uss},
                        {"swap_pss", f.swap_pss},
                        {"cow_lost", f.cow_lost}};
}

std::vector<std::string> slot_names(const Pool& p) {
    std::vector<std::string> out;
    for (const auto& w : p.workers)
        out.push_back(w->name);
    return out;
}

// At most n points: consecutive runs averaged, newest last. An hour of 1000 workers at full
// resolution would be hundreds of megabytes of JSON; a chart needs a screen's width.
std::vector<mem::HistoryPoint> thin(std::vector<mem::HistoryPoint> pts, std::size_t n) {
    if (n == 0 || pts.size() <= n) return pts;
    std::vector<mem::HistoryPoint> out;
    out.reserve(n);
    for (std::size_t b = 0; b < n; ++b) {
        const std::size_t lo = b * pts.size() / n, hi = (b + 1) * pts.size() / n;
        mem::HistoryPoint avg = pts[hi - 1];  // the newest's time and generation
        std::uint64_t f[5] = {};
        for (std::size_t i = lo; i < hi; ++i) {
            f[0] += pts[i].f.rss;
            f[1] += pts[i].f.pss;
            f[2] += pts[i].f.uss;
            f[3] += pts[i].f.swap_pss;
            f[4] += pts[i].f.cow_lost;
            avg.coarse = avg.coarse || pts[i].coarse || hi - lo > 1;
        }
        const std::uint64_t k = hi - lo;
        avg.f = mem::Figures{f[0] / k, f[1] / k, f[2] / k, f[3] / k, f[4] / k};
        out.push_back(avg);
    }
    return out;
}

// What the history holds, for operators (and the benchmark): slots, points, bytes.
json::object history_size(const HistorySampler& hs) {
    const auto& h = hs.history();
    return json::object{{"slots", h.slots()}, {"points", h.points()}, {"bytes", h.bytes()}};
}

// Trends over the last hour, the full-resolution window.
std::int64_t trend_since(const HistorySampler& hs) {
    return hs.now_ms() - 3600 * 1000;
}

}  // namespace

std::map<std::string, json::object> trends(const Supervisor&, const HistorySampler& hs,
                                           const std::vector<const Pool*>& pools) {
    std::map<std::string, json::object> out;
    if (hs.every().count() == 0) return out;
    for (const Pool* p : pools) {
        auto names = slot_names(*p);
        auto a = mem::assess(hs.history(), names, trend_since(hs), p->cfg->memory.max_private);
        for (std::size_t i = 0; i < names.size(); ++i)
            if (a[i].trend) out[names[i]] = mem::assessment_json(a[i]);
    }
    return out;
}

json::object mem_history(const Supervisor& sup, const HistorySampler& hs,
                         const std::vector<const Pool*>& pools, std::int64_t since_ms,
                         std::size_t max_points) {
    const std::int64_t now = hs.now_ms();
    const std::int64_t from = since_ms > 0 ? now - since_ms : 0;
    const auto mono_now = sup.now();
    auto at_ms = [&](std::int64_t t) {
        return epoch_ms(mono_now - std::chrono::milliseconds(now - t), mono_now);
    };
    json::array ps;
    for (const Pool* p : pools) {
        auto names = slot_names(*p);
        auto a = mem::assess(hs.history(), names, since_ms > 0 ? from : trend_since(hs),
                             p->cfg->memory.max_private);
        json::array ws;
        for (std::size_t i = 0; i < names.size(); ++i) {
            const Worker& w = *p->workers[i];
            json::array pts;
            for (const auto& pt : thin(hs.history().series(names[i], from), max_points)) {
                json::object o = figures_json(pt.f);
                o["at_ms"] = at_ms(pt.t_ms);
                o["generation"] = pt.generation;
                if (pt.coarse) o["coarse"] = true;
                pts.push_back(std::move(o));
            }
            json::object wo{{"name", w.name},
                            {"pid", w.alive() ? json::value(w.pid) : json::value(nullptr)},
                            {"generation", w.generation},
                            {"trend", a[i].trend ? json::value(mem::assessment_json(a[i]))
                                                 : json::value(nullptr)},
                            {"points", std::move(pts)}};
            ws.push_back(std::move(wo));
        }
        ps.push_back(json::object{{"name", p->name()}, {"workers", std::move(ws)}});
    }
    return json::object{{"sample_every_ms", hs.every().count()},
                        {"history", history_size(hs)},
                        {"pools", std::move(ps)}};
}

std::vector<CpuMeter::Reading> CpuMeter::read(const std::vector<pid_t>& pids) {
    proc::ProcReader r;
    std::vector<Reading> out;
    out.reserve(pids.size());
    for (pid_t pid : pids) {
        auto st = r.read_stat(pid);
        if (!st.ok()) continue;
        out.push_back(Reading{pid, st.value.starttime, st.value.utime + st.value.stime});
    }
    return out;
}

std::unordered_map<pid_t, double> CpuMeter::update(const std::vector<Reading>& readings,
                                                   std::int64_t now_ms) {
    static const double tck = static_cast<double>(sysconf(_SC_CLK_TCK));
    constexpr std::int64_t kMinWindowMs = 250;
    std::unordered_map<pid_t, double> pct;
    std::unordered_map<pid_t, Last> next;
    for (const auto& r : readings) {
        auto it = last_.find(r.pid);
        const bool same =
            it != last_.end() && it->second.starttime == r.starttime && r.ticks >= it->second.ticks;
        Last l{r.starttime, r.ticks, now_ms, -1};
        if (same && now_ms - it->second.at_ms < kMinWindowMs) {
            // Two clients refreshing close together: the second gets the first's figure
            // rather than a measure of a few milliseconds.
            l = it->second;
        } else if (same) {
            const double secs = static_cast<double>(now_ms - it->second.at_ms) / 1000.0;
            l.pct = static_cast<double>(r.ticks - it->second.ticks) / tck / secs * 100.0;
        }
        if (l.pct >= 0) pct[r.pid] = l.pct;
        next[r.pid] = l;
    }
    last_ = std::move(next);
    return pct;
}

json::object top(const Supervisor& sup, const HistorySampler& hs,
                 const std::unordered_map<pid_t, double>& cpu, std::size_t points, bool readonly) {
    json::object o = status(sup, nullptr);
    const auto& h = hs.history();
    for (auto& pv : o["pools"].as_array()) {
        auto& po = pv.as_object();
        const Pool* pool = nullptr;
        for (const auto& p : sup.pools())
            if (!p->removed && p->name() == std::string_view(po["name"].as_string()))
                pool = p.get();
        std::map<std::string, json::object> tr;
        if (pool) tr = trends(sup, hs, {pool});
        mem::Figures sum;
        bool any = false;
        for (auto& wv : po["workers"].as_array()) {
            auto& wo = wv.as_object();
            const std::string name(wo["name"].as_string());
            const auto* pid = wo.if_contains("pid");
            const pid_t p = pid && pid->is_int64() ? static_cast<pid_t>(pid->as_int64()) : 0;
            auto c = cpu.find(p);
            wo["cpu_pct"] = c == cpu.end() ? json::value(nullptr)
                                           : json::value(std::round(c->second * 10.0) / 10.0);
            auto latest = h.latest(name);
            // Only a sample of the process running now: a dead one's memory is gone.
            const auto* gen = wo.if_contains("generation");
            const bool current = latest && p > 0 && gen && gen->is_number() &&
                                 latest->generation == gen->to_number<std::uint32_t>();
            if (current) {
                wo["memory"] = figures_json(latest->f);
                sum.rss += latest->f.rss;
                sum.pss += latest->f.pss;
                sum.uss += latest->f.uss;
                sum.swap_pss += latest->f.swap_pss;
                any = true;
            } else {
                wo["memory"] = nullptr;
            }
            json::array us;
            if (current)
                for (auto u : h.recent_uss(name, points))
                    us.push_back(u);
            wo["uss_points"] = std::move(us);
            auto t = tr.find(name);
            wo["trend"] = t == tr.end() ? json::value(nullptr) : json::value(t->second);
        }
        if (any)
            po["memory"] = json::object{{"footprint", sum.pss + sum.swap_pss},
                                        {"saved", sum.rss > sum.pss ? sum.rss - sum.pss : 0},
                                        {"uss", sum.uss}};
        else
            po["memory"] = nullptr;
    }
    o["readonly"] = readonly;
    o["sample_every_ms"] = hs.every().count();
    o["history"] = history_size(hs);
    if (auto ago = hs.sampled_ago_ms())
        o["sampled_ago_ms"] = *ago;
    else
        o["sampled_ago_ms"] = nullptr;
    return o;
}

}  // namespace cow::views
