#include "ctl/top_model.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <utility>

#include "core/escape.hpp"
#include "core/protocol_names.hpp"
#include "core/units.hpp"

namespace cow::ctl::top {

namespace {

namespace proto = cow::proto;
using std::chrono::milliseconds;

}  // namespace

const json::value* field(const json::object& o, std::string_view key) {
    const auto* v = o.if_contains(key);
    return v && !v->is_null() ? v : nullptr;
}

std::optional<double> number(const json::object& o, std::string_view key) {
    const auto* v = field(o, key);
    if (!v || !v->is_number()) return std::nullopt;
    return v->to_number<double>();
}

std::string text(const json::object& o, std::string_view key) {
    const auto* v = field(o, key);
    return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

const json::object* object(const json::object& o, std::string_view key) {
    const auto* v = field(o, key);
    return v && v->is_object() ? &v->get_object() : nullptr;
}

const json::array* array(const json::object& o, std::string_view key) {
    const auto* v = field(o, key);
    return v && v->is_array() ? &v->get_array() : nullptr;
}

std::string size_text(const std::optional<double>& bytes) {
    if (!bytes || *bytes < 0) return "-";
    return cow::format_size(static_cast<std::uint64_t>(std::llround(*bytes)));
}

std::string count_text(const std::optional<double>& n) {
    return n ? std::to_string(std::llround(*n)) : "-";
}

std::string duration_text(double ms) {
    return cow::format_duration(milliseconds(std::llround(ms)));
}

namespace {

std::string fixed1(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f", v);
    return buf;
}

// "crash SEGV", "oom", "killed KILL", "exit 1", "cowherd restart".
std::string last_exit_text(const json::object& w) {
    const auto* e = object(w, "last_exit");
    if (!e) return "-";
    const std::string cause = text(*e, "cause"), sig = text(*e, "signal_name"),
                      detail = text(*e, "detail");
    const auto code = number(*e, "code");
    const auto signo = number(*e, "signal");
    auto signal_word = [&] { return !sig.empty() ? sig : signo ? count_text(signo) : ""; };
    std::string out;
    if (cause == "exited")
        out = "exit " + (code ? count_text(code) : "?");
    else if (cause == "crashed")
        out = "crash " + signal_word();
    else if (cause == "oom_killed")
        out = "oom";
    else if (cause == "killed_externally")
        out = "killed " + signal_word();
    else if (cause == "killed_by_cowherd")
        out = "cowherd " + (detail.empty() ? signal_word() : detail);
    else if (!cause.empty())
        out = cause;
    else if (code)
        out = "exit " + count_text(code);
    else if (signo)
        out = "signal " + signal_word();
    else
        out = "-";
    while (!out.empty() && out.back() == ' ')
        out.pop_back();
    return cow::escape_invisible(out);
}

std::string trend_text(const Worker& w, const json::object* trend) {
    std::string out;
    if (w.trend) {
        const double v = *w.trend;
        out = std::string(v < 0 ? "-" : "+") +
              cow::format_size(static_cast<std::uint64_t>(std::llround(std::fabs(v)))) + "/h";
    }
    if (w.leak) out += out.empty() ? "leak?" : " leak?";
    if (trend)
        if (auto in = number(*trend, "recycle_in_s"); in && *in >= 0)
            out +=
                (out.empty() ? "" : " ") + std::string("recycle in ") + duration_text(*in * 1000.0);
    return out.empty() ? "-" : out;
}

}  // namespace

Snapshot parse(const json::value& v) {
    Snapshot s;
    if (!v.is_object()) return s;
    const auto& r = v.get_object();
    if (const auto* ro = field(r, "readonly"); ro && ro->is_bool()) s.readonly = ro->get_bool();
    s.has_sampling = r.contains("sample_every_ms");
    s.sample_every_ms = number(r, "sample_every_ms");
    s.sampled_ago_ms = number(r, "sampled_ago_ms");
    s.samples = number(r, "samples");
    const auto* pools = array(r, "pools");
    if (!pools) return s;
    for (const auto& pv : *pools) {
        if (!pv.is_object()) continue;
        const auto& p = pv.get_object();
        Pool pool;
        pool.name = text(p, "name");
        pool.size = number(p, "size");
        if (const auto* m = object(p, "memory")) {
            pool.footprint = number(*m, "footprint");
            pool.saved = number(*m, "saved");
            pool.uss = number(*m, "uss");
        }
        if (const auto* ws = array(p, "workers")) {
            for (const auto& wv : *ws) {
                if (!wv.is_object()) continue;
                const auto& w = wv.get_object();
                Worker x;
                x.name = text(w, "name");
                x.pool = pool.name;
                x.pool_order = s.pools.size();
                x.state = text(w, "state");
                x.index = number(w, "index");
                x.pid = number(w, "pid");
                x.uptime_ms = number(w, "uptime_ms");
                x.restarts = number(w, "restarts");
                x.cpu = number(w, "cpu_pct");
                if (const auto* m = object(w, "memory")) {
                    x.rss = number(*m, "rss");
                    x.pss = number(*m, "pss");
                    x.uss = number(*m, "uss");
                    x.cow_lost = number(*m, "cow_lost");
                }
                if (const auto* pts = array(w, "uss_points")) {
                    x.points_sent = true;
                    for (const auto& pt : *pts)
                        if (pt.is_number()) x.points.push_back(pt.to_number<double>());
                }
                const auto* trend = object(w, "trend");
                if (trend) {
                    x.trend = number(*trend, "uss_per_hour");
                    if (const auto* l = field(*trend, "leak"); l && l->is_bool())
                        x.leak = l->get_bool();
                }
                x.cells[c_worker] = cow::escape_invisible(x.name);
                x.cells[c_state] = x.state.empty() ? "-" : cow::escape_invisible(x.state);
                x.cells[c_pid] = count_text(x.pid);
                x.cells[c_uptime] = x.pid && x.uptime_ms ? duration_text(*x.uptime_ms) : "-";
                x.cells[c_restarts] = count_text(x.restarts);
                x.cells[c_exit] = last_exit_text(w);
                x.cells[c_cpu] = x.cpu ? fixed1(*x.cpu) : "-";
                x.cells[c_rss] = size_text(x.rss);
                x.cells[c_pss] = size_text(x.pss);
                x.cells[c_uss] = size_text(x.uss);
                x.cells[c_cow] = size_text(x.cow_lost);
                x.cells[c_trend] = trend_text(x, trend);
                ++pool.workers;
                pool.running += x.state == proto::state::running;
                s.workers.push_back(std::move(x));
            }
        }
        s.pools.push_back(std::move(pool));
    }
    return s;
}

std::string pool_line(const Pool& p) {
    return "pool " + cow::escape_invisible(p.name) + "  " + std::to_string(p.running) + "/" +
           (p.size ? count_text(p.size) : std::to_string(p.workers)) + " running  footprint " +
           size_text(p.footprint) + "  saved by sharing " + size_text(p.saved);
}

std::string sampling_text(const Snapshot& s) {
    if (!s.has_sampling) return "memory: -";
    if (!s.sample_every_ms || *s.sample_every_ms <= 0) return "memory sampling off";
    std::string out = "memory every " + duration_text(*s.sample_every_ms);
    out += s.sampled_ago_ms ? ", sampled " + duration_text(*s.sampled_ago_ms) + " ago"
                            : ", not sampled yet";
    return out;
}

bool has_pool(const Snapshot& s, const std::string& name) {
    return std::ranges::any_of(s.pools, [&](const Pool& p) { return p.name == name; });
}

// ---- sorting ---------------------------------------------------------------------------------

std::size_t sort_pos(Sort s) {
    return static_cast<std::size_t>(s);
}
bool descending_first(Sort s) {
    return sort_pos(s) >= sort_pos(Sort::uptime);
}

namespace {

int state_rank(std::string_view st) {
    namespace S = proto::state;
    constexpr std::array order{S::fatal,   S::backoff, S::starting, S::stopping,
                               S::running, S::exited,  S::stopped};
    for (std::size_t i = 0; i < order.size(); ++i)
        if (order[i] == st) return static_cast<int>(i);
    return static_cast<int>(order.size());
}

std::optional<double> sort_value(const Worker& w, Sort s) {
    switch (s) {
        case Sort::pid:
            return w.pid;
        case Sort::uptime:
            return w.pid ? w.uptime_ms : std::nullopt;
        case Sort::restarts:
            return w.restarts;
        case Sort::cpu:
            return w.cpu;
        case Sort::rss:
            return w.rss;
        case Sort::pss:
            return w.pss;
        case Sort::uss:
            return w.uss;
        case Sort::cow_lost:
            return w.cow_lost;
        case Sort::name:
        case Sort::state:
            break;
    }
    return std::nullopt;
}

bool name_before(const Worker& a, const Worker& b) {
    if (a.pool_order != b.pool_order) return a.pool_order < b.pool_order;
    const double ia = a.index.value_or(0), ib = b.index.value_or(0);
    if (ia != ib) return ia < ib;
    return a.name < b.name;
}

}  // namespace

bool sorted_before(const Worker& a, const Worker& b, Sort s, bool reversed) {
    const bool desc = descending_first(s) != reversed;
    if (s == Sort::name) return desc ? name_before(b, a) : name_before(a, b);
    if (s == Sort::state) {
        const int ra = state_rank(a.state), rb = state_rank(b.state);
        if (ra != rb) return desc ? ra > rb : ra < rb;
    } else {
        const auto va = sort_value(a, s), vb = sort_value(b, s);
        if (va && !vb) return true;
        if (!va && vb) return false;
        if (va && vb && *va != *vb) return desc ? *va > *vb : *va < *vb;
    }
    return name_before(a, b);
}

}  // namespace cow::ctl::top
