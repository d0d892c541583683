// `cowctl logs -f`: who follows what, and the fan-out of captured lines to them.
//
// A follower names what it follows (a pool, a worker or all), not the workers that existed
// when it started, so a pool follower sees workers added by scale or reload. It ends with a
// sentence when what it follows goes away. A follower that cannot keep up is never cut off:
// past a bounded queue its lines are skipped and counted, and once it has caught up it gets
// a marker with the count, then live lines again.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <sys/types.h>

namespace cow {

class ItemStream;

struct FollowTarget {
    std::string pool;    // empty: every pool
    std::string worker;  // empty: the whole pool
};

class Followers {
  public:
    struct Follower;
    // The followers of one stream of one worker: looked up once per chunk of output.
    using Match = std::vector<std::shared_ptr<Follower>>;

    ~Followers();

    void add(FollowTarget target, int stream, std::shared_ptr<ItemStream> resp);
    Match match(const std::string& pool, const std::string& worker, bool err);
    // One line to every follower in m (serialized once for all of them).
    static void send(const Match& m, std::int64_t ts_ms, const std::string& worker, pid_t pid,
                     bool err, std::string_view line, bool continued, std::uint64_t seq);

    // A worker scaled away; its pool is still there.
    void worker_removed(const std::string& pool, const std::string& worker);
    // A pool removed by reload is gone (its last worker has stopped).
    void pool_removed(const std::string& pool);

    std::size_t size() const { return list_.size(); }

  private:
    void purge();
    std::vector<std::shared_ptr<Follower>> list_;
};

// The marker a follower gets after `n` of its lines were skipped, as an item: {"skipped":n}.
std::string skipped_item(std::uint64_t n);

}  // namespace cow
