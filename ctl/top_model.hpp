// `cowctl top`'s reply, as the screen needs it: workers and pools with their cells already
// written as text, and the orders they can be shown in. No curses here: the plain snapshot
// and the live view both draw from it.
//
// The reply is `status --json` with optional additions (readonly, sample_every_ms,
// sampled_ago_ms; per pool memory; per worker cpu_pct, memory, uss_points, trend). Every
// addition may be missing or null: it shows as "-".
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json.hpp>

namespace cow::ctl::top {

namespace json = boost::json;

inline constexpr std::size_t kPoints = 30;  // USS points asked for, and the sparkline's width

// A member that is missing or null is absent (nullptr, nullopt, ""), and so is one of another
// type than asked for.
const json::value* field(const json::object& o, std::string_view key);
std::optional<double> number(const json::object& o, std::string_view key);
std::string text(const json::object& o, std::string_view key);
const json::object* object(const json::object& o, std::string_view key);
const json::array* array(const json::object& o, std::string_view key);

enum Col {
    c_worker,
    c_state,
    c_pid,
    c_uptime,
    c_restarts,
    c_exit,
    c_cpu,
    c_rss,
    c_pss,
    c_uss,
    c_cow,
    c_trend,
    c_spark,
    kCols
};
inline constexpr std::array<const char*, kCols> kTitles{
    "WORKER", "STATE", "PID", "UPTIME",   "RESTARTS", "LAST EXIT",  "CPU%",
    "RSS",    "PSS",   "USS", "COW_LOST", "TREND",    "USS HISTORY"};
inline constexpr std::array<bool, kCols> kRight{false, false, true, true, true,  false, true,
                                                true,  true,  true, true, false, false};

struct Worker {
    std::string name;  // as the daemon spells it: a request's target
    std::string pool;
    std::string state;
    std::size_t pool_order = 0;
    std::optional<double> index, pid, uptime_ms, restarts, cpu, rss, pss, uss, cow_lost;
    std::optional<double> trend;  // bytes per hour
    bool leak = false;
    std::vector<double> points;
    bool points_sent = false;  // false: no sample since the last reply; keep the old ones
    std::array<std::string, kCols> cells;  // shown, but for the sparkline
};

struct Pool {
    std::string name;
    std::optional<double> size, footprint, saved, uss;
    std::size_t running = 0, workers = 0;
};

struct Snapshot {
    std::vector<Pool> pools;
    std::vector<Worker> workers;
    bool readonly = false;
    bool has_sampling = false;  // sample_every_ms was sent
    std::optional<double> sample_every_ms, sampled_ago_ms;
    std::optional<double> samples;  // the daemon's sample count: sent back as have_samples
};

std::string size_text(const std::optional<double>& bytes);
std::string count_text(const std::optional<double>& n);
std::string duration_text(double ms);

Snapshot parse(const json::value& v);

std::string pool_line(const Pool& p);
std::string sampling_text(const Snapshot& s);
bool has_pool(const Snapshot& s, const std::string& name);

// ---- sorting ---------------------------------------------------------------------------------

enum class Sort { name, state, pid, uptime, restarts, cpu, rss, pss, uss, cow_lost };
inline constexpr std::array kSorts{Sort::name,     Sort::state,   Sort::pid, Sort::uptime,
                                   Sort::restarts, Sort::cpu,     Sort::rss, Sort::pss,
                                   Sort::uss,      Sort::cow_lost};
inline constexpr std::array<const char*, kSorts.size()> kSortNames{
    "name", "state", "pid", "uptime", "restarts", "cpu", "rss", "pss", "uss", "cow_lost"};
inline constexpr std::array<Col, kSorts.size()> kSortCols{
    c_worker, c_state, c_pid, c_uptime, c_restarts, c_cpu, c_rss, c_pss, c_uss, c_cow};

std::size_t sort_pos(Sort s);
// Bigger first for amounts; names, states and pids read from the top.
bool descending_first(Sort s);
// Display order; a value that is missing comes last, whichever the direction.
bool sorted_before(const Worker& a, const Worker& b, Sort s, bool reversed);

}  // namespace cow::ctl::top
