// What `cowctl status`, `tree` and `health` (--json) say, parsed for the operator soak.
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "tests/support/run.hpp"
#include "tests/support/soak_procs.hpp"

namespace cow::soak {

inline std::string str(const boost::json::value& v) {
    return v.is_string() ? std::string(v.as_string()) : std::string();
}
inline std::int64_t num(const boost::json::value& v) {
    return v.is_number() ? v.to_number<std::int64_t>() : -1;
}

inline std::string trim(std::string s, std::size_t max = 600) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
        s.pop_back();
    if (s.size() > max) s = s.substr(0, max) + "...";
    return s;
}

struct WStat {
    std::string name, state, want, reason;
    int index = 0;
    pid_t pid = 0;
    std::int64_t restarts = 0, generation = 0;
    pid_t replacing = 0;  // the old process of a rolling restart
};
struct PStat {
    std::string name;
    std::vector<WStat> workers;
    // Its `log` counters, for this daemon's life (a pool removed and added again goes on
    // counting): lines dropped, and failed writes to its files (retries included).
    std::int64_t dropped_lines = 0, write_errors = 0;
};
struct Status {
    bool ok = false;
    std::string err;
    std::vector<PStat> pools;
    const PStat* find(const std::string& n) const {
        for (const auto& p : pools)
            if (p.name == n) return &p;
        return nullptr;
    }
    const WStat* worker(const std::string& name) const {
        for (const auto& p : pools)
            for (const auto& w : p.workers)
                if (w.name == name) return &w;
        return nullptr;
    }
};
struct Health {
    int code = -1;
    std::vector<std::string> problems;
    std::string err;
};
// Everything looked at once the system is at rest.
struct Observation {
    Snapshot snap;  // below the daemon
    Status st;
    std::map<pid_t, std::string> orphans;  // pid -> "p1.0" or "unknown"
    bool tree_ok = false;
    Health health;
};

inline Status parse_status(const test::RunResult& r) {
    namespace json = boost::json;
    Status s;
    if (r.code != 0) {
        s.err = "cowctl status exit " + std::to_string(r.code) + ": " + trim(r.err + r.out);
        return s;
    }
    boost::system::error_code ec;
    auto v = json::parse(r.out, ec);
    if (ec || !v.is_object() || !v.as_object().contains("pools")) {
        s.err = "cowctl status --json printed no JSON: " + trim(r.out);
        return s;
    }
    for (auto& pv : v.as_object()["pools"].as_array()) {
        auto& po = pv.as_object();
        PStat p;
        p.name = str(po["name"]);
        if (auto* lv = po.if_contains("log"); lv && lv->is_object()) {
            auto& lo = lv->as_object();
            if (auto* d = lo.if_contains("dropped_lines")) p.dropped_lines = num(*d);
            for (const char* k : {"stdout_write_errors", "stderr_write_errors"})
                if (auto* e = lo.if_contains(k))
                    p.write_errors += std::max<std::int64_t>(0, num(*e));
        }
        for (auto& wv : po["workers"].as_array()) {
            auto& wo = wv.as_object();
            WStat w;
            w.name = str(wo["name"]);
            w.index = static_cast<int>(num(wo["index"]));
            w.pid = static_cast<pid_t>(std::max<std::int64_t>(0, num(wo["pid"])));
            w.state = str(wo["state"]);
            w.want = str(wo["want"]);
            w.reason = str(wo["reason"]);
            w.restarts = num(wo["restarts"]);
            w.generation = num(wo["generation"]);
            if (auto* r2 = wo.if_contains("replacing_pid"))
                w.replacing = static_cast<pid_t>(num(*r2));
            p.workers.push_back(std::move(w));
        }
        s.pools.push_back(std::move(p));
    }
    s.ok = true;
    return s;
}

// The orphans `cowctl tree --json` lists, by pid, with the worker they came from.
inline bool parse_tree_orphans(const test::RunResult& r, std::map<pid_t, std::string>& out) {
    namespace json = boost::json;
    out.clear();
    if (r.code != 0) return false;
    boost::system::error_code ec;
    auto v = json::parse(r.out, ec);
    if (ec || !v.is_object()) return false;
    auto add = [&](json::array& arr) {
        for (auto& ov : arr) {
            auto& o = ov.as_object();
            out[static_cast<pid_t>(num(o["pid"]))] = str(o["from"]);
        }
    };
    for (auto& pv : v.as_object()["pools"].as_array())
        if (auto* os = pv.as_object().if_contains("orphans")) add(os->as_array());
    if (auto* os = v.as_object().if_contains("orphans")) add(os->as_array());
    return true;
}

inline Health parse_health(const test::RunResult& r) {
    Health h;
    h.code = r.code;
    h.err = trim(r.err);
    boost::system::error_code ec;
    auto v = boost::json::parse(r.out, ec);
    if (!ec && v.is_object())
        if (auto* ps = v.as_object().if_contains("problems"))
            for (auto& p : ps->as_array())
                h.problems.push_back(str(p));
    return h;
}

}  // namespace cow::soak
