// Memory recycling (design §4): every `memory.check_every`, a pool's workers are sampled off
// the loop, and a worker whose private memory (uss + swap_pss of its whole tree, so a leak
// that went to swap still counts) exceeds `memory.max_private` is restarted gracefully.
// Also takes each worker's first memory sample as soon as it runs, the baseline that
// copy-on-write erosion is measured from.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "daemon/memory/memory_sampler.hpp"
#include "daemon/os/background.hpp"
#include "daemon/supervise/supervisor.hpp"

namespace cow {

class Recycler {
  public:
    Recycler(boost::asio::io_context& io, Supervisor& sup, Background& bg, mem::Sampler& sampler);
    void start() { reconfigure(); }
    // Brings the checks in line with the supervisor's pools: one timer per pool with
    // memory.max_private. Call after every reload, which may add, remove or reorder pools
    // and add, change or remove their memory sections.
    void reconfigure();
    void stop();
    // A worker just reached running: take its baseline sample soon (batched per loop turn).
    void note_running(const Worker& w);
    void flush();  // submits the batched baseline samples; called after each loop batch
    std::uint64_t recycled() const { return recycled_; }

  private:
    // The checks of one pool. Pools are known by name: a reload changes their positions, and
    // a removed pool lingers (marked removed) until its workers are gone.
    struct Watch {
        Watch(boost::asio::io_context& io, std::string p, Millis e)
            : pool(std::move(p)), every(e), timer(io) {}
        std::string pool;
        Millis every;
        std::uint64_t limit = 0;  // for the log only: each check reads the pool's own config
        boost::asio::steady_timer timer;
    };
    using WatchPtr = std::shared_ptr<Watch>;

    Pool* live_pool(const std::string& name) const;
    bool current(const WatchPtr& w) const;
    void arm(const WatchPtr& w);
    void check(const WatchPtr& w);
    void act(const WatchPtr& w, const mem::Sample& s);

    boost::asio::io_context& io_;
    Supervisor& sup_;
    Background& bg_;
    mem::Sampler& sampler_;
    std::map<std::string, WatchPtr> watches_;  // by pool name
    std::deque<std::uint64_t> pending_;        // worker ids awaiting their baseline
    bool baseline_running_ = false;            // one chunk at a time
    std::uint64_t recycled_ = 0;
    bool stopped_ = false;
};

}  // namespace cow
