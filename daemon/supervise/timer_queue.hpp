// Worker timers: at most one per slot (start_timeout, backoff, stop_timeout, the watchdog).
// Re-arming or disarming bumps the slot's sequence number instead of searching the heap: the
// stale entry is dropped when it comes due.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <queue>
#include <vector>

#include "daemon/supervise/worker.hpp"

namespace cow {

class TimerQueue {
  public:
    void arm(Worker& w, fsm::TimePoint at) {
        w.timer_at = at;
        ++w.timer_seq;
        heap_.push(Entry{at, w.id, w.timer_seq});
    }
    static void disarm(Worker& w) {
        w.timer_at.reset();
        ++w.timer_seq;
    }
    // The next slot whose timer is due at `now`, its timer cleared; null when none is. One at
    // a time, so that a timer re-armed for `now` by the event it fires is due again at once.
    template <typename Find>
    Worker* pop_due(fsm::TimePoint now, Find&& find) {
        while (!heap_.empty() && heap_.top().at <= now) {
            Entry e = heap_.top();
            heap_.pop();
            Worker* w = find(e.worker_id);
            if (!w || w->timer_seq != e.seq || !w->timer_at) continue;  // disarmed or re-armed
            w->timer_at.reset();
            return w;
        }
        return nullptr;
    }
    // Stale entries may sit on top; they only cause one harmless early wakeup each.
    std::optional<fsm::TimePoint> next() const {
        if (heap_.empty()) return std::nullopt;
        return heap_.top().at;
    }

  private:
    struct Entry {
        fsm::TimePoint at;
        std::uint64_t worker_id;
        std::uint64_t seq;
        bool operator>(const Entry& o) const { return at > o.at; }
    };
    std::priority_queue<Entry, std::vector<Entry>, std::greater<>> heap_;
};

}  // namespace cow
