#include "daemon/supervise/events.hpp"

#include <chrono>

#include <boost/json/serialize.hpp>

namespace cow {

void EventLog::emit(fsm::TimePoint now, std::string_view kind, std::string_view pool,
                    std::string_view worker, std::string_view msg, boost::json::object fields) {
    // Wall time for people and other logs; `at` (monotonic) for --since.
    const auto wall = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
    boost::json::object o;
    o.reserve(fields.size() + 6);
    o["seq"] = ++seq_;
    o["ts_ms"] = wall;
    o["kind"] = kind;
    if (!pool.empty()) o["pool"] = pool;
    if (!worker.empty()) o["worker"] = worker;
    for (auto& kv : fields)
        o[kv.key()] = std::move(kv.value());
    o["msg"] = msg;
    EventRecord r{seq_, now, std::string(kind), std::string(pool), boost::json::serialize(o)};
    if (keep_ > 0) {
        if (ring_.size() >= keep_) ring_.pop_front();
        ring_.push_back(std::move(r));
        if (on_event) on_event(ring_.back());
    } else if (on_event) {
        on_event(r);
    }
}

std::vector<const EventRecord*> EventLog::since(fsm::TimePoint from, std::string_view pool) const {
    std::vector<const EventRecord*> out;
    for (const auto& r : ring_)
        if (r.at >= from && (pool.empty() || r.pool.empty() || r.pool == pool)) out.push_back(&r);
    return out;
}

}  // namespace cow
