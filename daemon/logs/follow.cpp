#include "daemon/logs/follow.hpp"

#include <algorithm>

#include <boost/json.hpp>

#include "core/protocol_names.hpp"
#include "core/utf8.hpp"
#include "daemon/logs/item_stream.hpp"

namespace cow {
namespace json = boost::json;

struct Followers::Follower : std::enable_shared_from_this<Follower> {
    FollowTarget target;
    int stream = -1;  // -1 both, 0 stdout, 1 stderr
    std::shared_ptr<ItemStream> resp;
    // Skipping: the queue was full; it stays so until the queue has drained, so that the
    // follower sees one gap with its count rather than lines picked at random.
    bool skipping = false;
    std::uint64_t skipped = 0;

    bool live() const { return resp && !resp->done() && resp->connected(); }

    bool wants(const std::string& pool, const std::string& worker, bool err) const {
        if (stream >= 0 && stream != static_cast<int>(err)) return false;
        if (target.pool.empty()) return true;
        if (target.pool != pool) return false;
        return target.worker.empty() || target.worker == worker;
    }

    void offer(const std::string& item) {
        if (skipping) {
            ++skipped;
            return;
        }
        if (!resp->can_stream(item.size())) {
            skipping = true;
            ++skipped;
            std::weak_ptr<Follower> weak = weak_from_this();
            resp->when_drained([weak] {
                if (auto f = weak.lock()) f->catch_up();
            });
            return;
        }
        resp->item_raw(item);
    }

    // Caught up: the count of what it missed, then live lines again.
    void catch_up() {
        skipping = false;
        if (skipped > 0 && live()) resp->item_raw(skipped_item(skipped));
        skipped = 0;
    }

    void end(proto::ErrorCode code, const std::string& why) {
        if (!live()) return;
        if (skipped > 0) resp->item_raw(skipped_item(skipped));
        skipped = 0;
        resp->error(code, why);
    }
};

std::string skipped_item(std::uint64_t n) {
    return "{\"skipped\":" + std::to_string(n) + "}";
}

Followers::~Followers() = default;

void Followers::purge() {
    std::erase_if(list_, [](const std::shared_ptr<Follower>& f) { return !f->live(); });
}

void Followers::add(FollowTarget target, int stream, std::shared_ptr<ItemStream> resp) {
    // Followers that went away are dropped here too, so a quiet pool's never pile up.
    purge();
    auto f = std::make_shared<Follower>();
    f->target = std::move(target);
    f->stream = stream;
    f->resp = std::move(resp);
    list_.push_back(std::move(f));
}

Followers::Match Followers::match(const std::string& pool, const std::string& worker, bool err) {
    Match m;
    if (list_.empty()) return m;
    purge();
    for (const auto& f : list_)
        if (f->wants(pool, worker, err)) m.push_back(f);
    return m;
}

void Followers::send(const Match& m, std::int64_t ts_ms, const std::string& worker, pid_t pid,
                     bool err, std::string_view line, bool continued, std::uint64_t seq) {
    // Followers that are skipping only count: no need to format the line for them.
    bool any = false;
    for (const auto& f : m) {
        if (f->skipping)
            ++f->skipped;
        else
            any = true;
    }
    if (!any) return;
    json::object o{{"ts_ms", ts_ms},
                   {"worker", worker},
                   {"pid", pid},
                   {"stream", err ? proto::stream::err : proto::stream::out},
                   {"line", valid_utf8(line)}};
    if (continued) o["continued"] = true;
    o["seq"] = seq;
    const std::string item = json::serialize(o);
    for (const auto& f : m)
        if (!f->skipping) f->offer(item);
}

void Followers::worker_removed(const std::string& pool, const std::string& worker) {
    for (const auto& f : list_)
        if (f->target.pool == pool && f->target.worker == worker)
            f->end(proto::ErrorCode::no_such_worker,
                   "worker " + worker + " was scaled away; nothing more to follow");
    purge();
}

void Followers::pool_removed(const std::string& pool) {
    for (const auto& f : list_)
        if (f->target.pool == pool)
            f->end(proto::ErrorCode::no_such_pool,
                   "pool " + pool + " was removed from the config; nothing more to follow");
    purge();
}

}  // namespace cow
