#include "daemon/follow.hpp"

#include <algorithm>

#include <boost/json.hpp>

#include "core/utf8.hpp"
#include "daemon/control_server.hpp"

namespace cow {
namespace json = boost::json;

struct Followers::Follower {
    FollowTarget target;
    int stream = -1;  // -1 both, 0 stdout, 1 stderr
    std::shared_ptr<Responder> resp;

    bool live() const { return resp && !resp->done() && resp->connected(); }

    bool wants(const std::string& pool, const std::string& worker, bool err) const {
        if (stream >= 0 && stream != static_cast<int>(err)) return false;
        if (target.pool.empty()) return true;
        if (target.pool != pool) return false;
        return target.worker.empty() || target.worker == worker;
    }

    void end(proto::ErrorCode code, const std::string& why) {
        if (!live()) return;
        resp->error(code, why);
    }
};

Followers::~Followers() = default;

void Followers::purge() {
    std::erase_if(list_, [](const std::shared_ptr<Follower>& f) { return !f->live(); });
}

void Followers::add(FollowTarget target, int stream, std::shared_ptr<Responder> resp) {
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
                     bool err, std::string_view line, bool continued) {
    if (m.empty()) return;
    json::object o{{"ts_ms", ts_ms},
                   {"worker", worker},
                   {"pid", pid},
                   {"stream", err ? "stderr" : "stdout"},
                   {"line", valid_utf8(line)}};
    if (continued) o["continued"] = true;
    const std::string item = json::serialize(o);
    for (const auto& f : m)
        f->resp->item_raw(item);
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
