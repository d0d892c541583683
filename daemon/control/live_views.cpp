#include "daemon/control/live_views.hpp"

#include <cmath>
#include <cstdlib>

#include <fcntl.h>
#include <unistd.h>

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

std::map<std::string, json::object> trends(const HistorySampler& hs,
                                           const std::vector<const Pool*>& pools) {
    std::map<std::string, json::object> out;
    if (hs.every().count() == 0) return out;
    for (const Pool* p : pools)
        for (const auto& w : p->workers)
            if (auto it = hs.trends().find(w->name); it != hs.trends().end())
                out[w->name] = it->second;
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

std::unordered_map<pid_t, double> CpuMeter::measure(const std::vector<Target>& targets,
                                                    std::int64_t now_ms) {
    constexpr std::int64_t kMinWindowMs = 250;
    std::unordered_map<pid_t, double> pct;
    std::unordered_map<pid_t, Slot> next;
    next.reserve(targets.size());
    for (const auto& t : targets) {
        Slot s;
        if (auto it = slots_.find(t.pid); it != slots_.end() && it->second.id == t.id) {
            s = it->second;
            slots_.erase(it);
        }
        if (s.fd < 0) {
            const std::string path = "/proc/" + std::to_string(t.pid) + "/schedstat";
            s.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
            if (s.fd < 0) continue;
            s.id = t.id;
        }
        char buf[128];
        const ssize_t n = ::pread(s.fd, buf, sizeof buf - 1, 0);
        if (n <= 0) {  // gone since
            ::close(s.fd);
            continue;
        }
        buf[n] = '\0';
        const std::uint64_t ns = std::strtoull(buf, nullptr, 10);
        if (s.at_ms == 0 || ns < s.ns) {
            s.ns = ns;
            s.at_ms = now_ms;
        } else if (now_ms - s.at_ms >= kMinWindowMs) {
            s.pct = static_cast<double>(ns - s.ns) / 1e6 / static_cast<double>(now_ms - s.at_ms) *
                    100.0;
            s.ns = ns;
            s.at_ms = now_ms;
        }
        // else: two clients refreshing close together; the second gets the first's figure
        // rather than a measure of a few milliseconds.
        if (s.pct >= 0) pct[t.pid] = s.pct;
        next[t.pid] = s;
    }
    for (auto& [pid, s] : slots_)  // processes no longer asked for
        ::close(s.fd);
    slots_ = std::move(next);
    return pct;
}

void CpuMeter::close_all() {
    for (auto& [pid, s] : slots_)
        ::close(s.fd);
    slots_.clear();
}

json::object top(const Supervisor& sup, const HistorySampler& hs,
                 const std::unordered_map<pid_t, double>& cpu, std::size_t points, bool with_points,
                 bool readonly) {
    json::object o = status(sup, nullptr);
    const auto& h = hs.history();
    for (auto& pv : o["pools"].as_array()) {
        auto& po = pv.as_object();
        const auto& tr = hs.trends();
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
                sum += latest->f;
                any = true;
            } else {
                wo["memory"] = nullptr;
            }
            if (with_points) {
                json::array us;
                if (current)
                    for (auto u : h.recent_uss(name, points))
                        us.push_back(u);
                wo["uss_points"] = std::move(us);
            }
            auto t = tr.find(name);
            wo["trend"] = t == tr.end() ? json::value(nullptr) : json::value(t->second);
        }
        // The template's share of the pages it holds for its workers belongs to the pool.
        if (const auto* tv = po.if_contains("template"); tv && tv->is_object()) {
            const auto& to = tv->as_object();
            const auto* gen = to.if_contains("generation");
            auto latest =
                h.latest(std::string(po["name"].as_string()) + std::string(mem::kTemplateSuffix));
            if (latest && gen && gen->is_number() &&
                latest->generation == gen->to_number<std::uint32_t>())
                sum += latest->f;
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
    o["samples"] = hs.samples();
    o["history"] = history_size(hs);
    if (auto ago = hs.sampled_ago_ms())
        o["sampled_ago_ms"] = *ago;
    else
        o["sampled_ago_ms"] = nullptr;
    return o;
}

}  // namespace cow::views
