// Memory recycling (design §4): every `memory.check_every`, a pool's workers are sampled off
// the loop, and a worker whose private memory (uss + swap_pss of its whole tree, so a leak
// that went to swap still counts) exceeds `memory.max_private` is restarted gracefully.
// Also takes each worker's first memory sample as soon as it runs, the baseline that
// copy-on-write erosion is measured from.
#pragma once

#include <deque>
#include <memory>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "daemon/background.hpp"
#include "daemon/memory_sampler.hpp"
#include "daemon/supervisor.hpp"

namespace cow {

class Recycler {
  public:
    Recycler(boost::asio::io_context& io, Supervisor& sup, Background& bg, mem::Sampler& sampler);
    void start();  // arms one timer per pool that has memory.max_private
    void stop();
    // A worker just reached running: take its baseline sample soon (batched per loop turn).
    void note_running(const Worker& w);
    void flush();  // submits the batched baseline samples; called after each loop batch
    std::uint64_t recycled() const { return recycled_; }

  private:
    void arm(std::size_t pool_index);
    void check(std::size_t pool_index);

    boost::asio::io_context& io_;
    Supervisor& sup_;
    Background& bg_;
    mem::Sampler& sampler_;
    std::vector<std::unique_ptr<boost::asio::steady_timer>> timers_;
    std::deque<std::uint64_t> pending_;  // worker ids awaiting their baseline
    bool baseline_running_ = false;      // one chunk at a time
    std::uint64_t recycled_ = 0;
    bool stopped_ = false;
};

}  // namespace cow
