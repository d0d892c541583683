#include "daemon/control/event_feed.hpp"

#include <algorithm>

#include "daemon/logs/item_stream.hpp"
#include "daemon/supervise/events.hpp"

namespace cow {

struct EventFeed::Subscriber : std::enable_shared_from_this<Subscriber> {
    std::string pool;
    std::shared_ptr<ItemStream> resp;
    // Skipping lasts until the queue has drained, so that the subscriber sees one gap with its
    // count rather than events picked at random.
    bool skipping = false;
    std::uint64_t missed = 0;

    bool live() const { return resp && !resp->done() && resp->connected(); }
    // The daemon's own events (pool "") go to everyone.
    bool wants(const EventRecord& e) const {
        return pool.empty() || e.pool.empty() || e.pool == pool;
    }

    void offer(const std::string& item) {
        if (skipping) {
            ++missed;
            return;
        }
        if (!resp->can_stream(item.size())) {
            skipping = true;
            ++missed;
            std::weak_ptr<Subscriber> weak = weak_from_this();
            resp->when_drained([weak] {
                if (auto s = weak.lock()) s->catch_up();
            });
            return;
        }
        resp->item_raw(item);
    }

    void catch_up() {
        skipping = false;
        if (missed > 0 && live()) resp->item_raw(missed_item(missed));
        missed = 0;
    }
};

std::string missed_item(std::uint64_t n) {
    return "{\"missed\":" + std::to_string(n) + "}";
}

EventFeed::~EventFeed() = default;

void EventFeed::purge() {
    std::erase_if(list_, [](const std::shared_ptr<Subscriber>& s) { return !s->live(); });
}

void EventFeed::add(std::string pool, std::shared_ptr<ItemStream> resp) {
    purge();
    auto s = std::make_shared<Subscriber>();
    s->pool = std::move(pool);
    s->resp = std::move(resp);
    list_.push_back(std::move(s));
}

void EventFeed::publish(const EventRecord& e) {
    if (list_.empty()) return;
    bool gone = false;
    for (const auto& s : list_) {
        if (!s->live()) {
            gone = true;
            continue;
        }
        if (s->wants(e)) s->offer(e.json);
    }
    if (gone) purge();
}

}  // namespace cow
