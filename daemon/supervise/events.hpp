// What happened, as events (`cowctl events`): state transitions, exits with their causes,
// recycles, rolling restarts, reloads, orphans and probe failures. Each is serialized once when
// it happens, kept in a bounded ring for `--since`, and handed to on_event for the live
// subscribers. Plain data: the fan-out to clients is the control room's (event_feed.hpp).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include "daemon/supervise/worker_fsm.hpp"

namespace cow {

struct EventRecord {
    std::uint64_t seq = 0;
    fsm::TimePoint at{};  // monotonic: what --since compares
    std::string kind;
    std::string pool;  // "" for the daemon's own (a reload)
    std::string json;  // the event, serialized once for every subscriber
};

class EventLog {
  public:
    // 1024 events of a few hundred bytes: about half a MiB at most, whatever the rate (the
    // kill-storm test holds the daemon's RSS to 1 MiB of growth after warm-up).
    static constexpr std::size_t kKeep = 1024;
    explicit EventLog(std::size_t keep = kKeep) : keep_(keep) {}

    // `msg` reads like the daemon's log line of the same event; `fields` are the event's data.
    void emit(fsm::TimePoint now, std::string_view kind, std::string_view pool,
              std::string_view worker, std::string_view msg, boost::json::object fields = {});

    // Kept events at or after `from` (of one pool and the daemon's own, or all when pool is
    // empty), oldest first.
    std::vector<const EventRecord*> since(fsm::TimePoint from, std::string_view pool) const;
    std::uint64_t emitted() const { return seq_; }

    // In-place upgrade: the kept events and the count go on in the next image.
    boost::json::object save_state() const;
    void restore_state(const boost::json::object& state);

    // Each event as it is emitted (the live subscribers).
    std::function<void(const EventRecord&)> on_event;

  private:
    std::size_t keep_;
    std::uint64_t seq_ = 0;
    std::deque<EventRecord> ring_;
};

}  // namespace cow
