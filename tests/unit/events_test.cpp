// The event log's ring and --since, and the fan-out's bounded queue with its missed count.
#include "daemon/supervise/events.hpp"

#include <deque>
#include <string>

#include <boost/json.hpp>
#include <gtest/gtest.h>

#include "daemon/control/event_feed.hpp"
#include "daemon/logs/item_stream.hpp"

namespace cow {
namespace {

namespace json = boost::json;

// A client whose queue holds `room` bytes until drain() is called.
class FakeStream final : public ItemStream {
  public:
    explicit FakeStream(std::size_t room) : room_(room) {}
    bool done() const override { return done_; }
    bool connected() const override { return connected_; }
    bool can_stream(std::size_t bytes) const override {
        return queued_ == 0 || queued_ + bytes <= room_;
    }
    void when_drained(std::function<void()> f) override { drained_ = std::move(f); }
    void item_raw(std::string_view item) override {
        queued_ += item.size();
        got.emplace_back(item);
    }
    void error(proto::ErrorCode, std::string_view) override { done_ = true; }
    void drain() {
        queued_ = 0;
        if (auto f = std::move(drained_)) f();
    }
    std::vector<std::string> got;
    bool connected_ = true;

  private:
    std::size_t room_;
    std::size_t queued_ = 0;
    bool done_ = false;
    std::function<void()> drained_;
};

fsm::TimePoint at(int ms) {
    return fsm::TimePoint{} + std::chrono::milliseconds(ms);
}

TEST(EventLog, KeepsTheNewestAndFiltersByTimeAndPool) {
    EventLog log(3);
    log.emit(at(100), "transition", "web", "web.0", "a");
    log.emit(at(200), "exit", "db", "db.0", "b");
    log.emit(at(300), "reload", "", "", "c");
    log.emit(at(400), "exit", "web", "web.1", "d");
    EXPECT_EQ(log.emitted(), 4u);
    auto all = log.since(fsm::TimePoint{}, "");
    ASSERT_EQ(all.size(), 3u) << "only the newest 3 are kept";
    EXPECT_EQ(all.front()->seq, 2u);
    // A pool's own events and the daemon's.
    auto web = log.since(fsm::TimePoint{}, "web");
    ASSERT_EQ(web.size(), 2u);
    EXPECT_EQ(web[0]->seq, 3u) << "the daemon's own reload";
    EXPECT_EQ(web[1]->seq, 4u);
    EXPECT_EQ(log.since(at(300), "").size(), 2u);
    auto v = json::parse(all.back()->json).as_object();
    EXPECT_EQ(v["kind"], "exit");
    EXPECT_EQ(v["worker"], "web.1");
    EXPECT_EQ(v["msg"], "d");
    EXPECT_EQ(v["seq"], 4);
}

TEST(EventFeed, AFullQueueSkipsCountsAndReportsOnceDrained) {
    EventLog log;
    EventFeed feed;
    log.on_event = [&](const EventRecord& e) { feed.publish(e); };
    auto slow = std::make_shared<FakeStream>(1);  // room for one event at a time
    auto fast = std::make_shared<FakeStream>(1 << 20);
    feed.add("", slow);
    feed.add("web", fast);
    for (int i = 0; i < 10; ++i)
        log.emit(at(i), "transition", i % 2 ? "web" : "db", "", "e" + std::to_string(i));
    ASSERT_EQ(slow->got.size(), 1u) << "the first fits; the rest are skipped";
    EXPECT_EQ(fast->got.size(), 5u) << "another subscriber loses nothing";
    slow->drain();
    ASSERT_EQ(slow->got.size(), 2u);
    EXPECT_EQ(slow->got[1], missed_item(9));
    slow->drain();  // the marker was read
    log.emit(at(20), "exit", "db", "", "after");
    ASSERT_EQ(slow->got.size(), 3u) << "live again after the marker";
    EXPECT_EQ(json::parse(slow->got[2]).as_object()["seq"], 11);
    // A subscriber that went away is dropped, not written to.
    slow->connected_ = false;
    log.emit(at(21), "exit", "db", "", "gone");
    EXPECT_EQ(slow->got.size(), 3u);
    EXPECT_EQ(feed.size(), 1u);
}

}  // namespace
}  // namespace cow
