// `cowctl events -f`: the live subscribers of the event log and the fan-out to them.
//
// An event is serialized once (EventLog) and offered to every subscriber that wants its pool.
// A subscriber that stops reading never stalls the loop or another client: past a bounded
// queue (ControlLimits::follower_queue) its events are skipped and counted, and once its queue
// has drained it gets {"missed":N}, then live events again.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace cow {

class ItemStream;
struct EventRecord;

class EventFeed {
  public:
    struct Subscriber;
    ~EventFeed();

    // pool: only that pool's events (and the daemon's own), or every event when empty. By
    // name: a pool removed by reload and added again later is still followed.
    void add(std::string pool, std::shared_ptr<ItemStream> resp);
    void publish(const EventRecord& e);
    std::size_t size() const { return list_.size(); }

  private:
    void purge();
    std::vector<std::shared_ptr<Subscriber>> list_;
};

// The marker a subscriber gets after `n` of its events were skipped: {"missed":n}.
std::string missed_item(std::uint64_t n);

}  // namespace cow
