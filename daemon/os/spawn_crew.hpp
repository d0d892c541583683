// Spawning is clone and exec, kernel work that runs on the calling core; the loop thread alone
// spawned 1000 workers at one core's pace while the other sat half idle. A crew of helper
// threads spawns beside it from a batch of ready-made plans; everything else (plans, results,
// the supervisor's state) stays on the loop thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "daemon/spawn/spawn.hpp"

namespace cow {

class SpawnCrew {
  public:
    // One helper per further core, up to spawn::kStackSlots threads in all; none on one core.
    SpawnCrew();
    ~SpawnCrew();
    SpawnCrew(const SpawnCrew&) = delete;
    SpawnCrew& operator=(const SpawnCrew&) = delete;

    // Spawns every plan and returns their results in the same order, once all are done.
    // The caller (the loop thread, stack slot 0) takes a share of the work.
    std::vector<spawn::Result> run(const std::vector<spawn::Plan*>& plans);
    std::size_t helpers() const { return threads_.size(); }

  private:
    void helper(int slot);
    void work(int slot);

    std::mutex mu_;
    std::condition_variable wake_, done_;
    std::uint64_t round_ = 0;
    int busy_ = 0;
    bool stop_ = false;
    const std::vector<spawn::Plan*>* plans_ = nullptr;
    std::vector<spawn::Result>* results_ = nullptr;
    std::atomic<std::size_t> next_{0};
    std::vector<std::thread> threads_;
};

}  // namespace cow
