// Rollout: rolling restarts. Each running worker of a roll gets a successor that must come up
// (running: ready, or start_timeout passed) before its old process is stopped, `batch` at a
// time; a successor that fails ends the roll and the old process keeps serving. The Rollout
// owns the rolls and one worker's replacement (begin, retire the old process, roll back); the
// Supervisor owns it by pointer and is its only way to change a worker's state.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>

#include "daemon/supervise/worker.hpp"

namespace cow {

class Supervisor;

struct RollCallbacks {
    std::function<void(const boost::json::object& progress)> on_progress;
    std::function<void(bool ok, const std::string& why)> on_done;
};

class Rollout {
  public:
    explicit Rollout(Supervisor& sup) : sup_(sup) {}
    ~Rollout();

    bool rolling(const Pool& pool) const;  // a roll of this pool is in progress
    bool any() const { return !rolls_.empty(); }
    void start(Pool& pool, const std::vector<Worker*>& workers, int batch, RollCallbacks cb);
    // Replacements not yet ready are stopped and the old processes keep serving; the roll's
    // on_done gets `why`. Returns how many old processes were kept that way.
    int cancel(Pool& pool, const std::string& why);
    // Counts what finished, starts the next batch, ends rolls that are over.
    void advance();

    // One worker: its running process becomes the predecessor and a successor is spawned.
    void begin_replace(Worker& w);
    // The successor is up (or the slot is being stopped): the old process gets stop_signal.
    void retire_pred(Worker& w);
    // The successor failed before it was ready: the old process is the slot's again.
    void rollback(Worker& w, const std::string& why, fsm::State from);

    // In-place upgrade (handover.cpp): the rolls in progress, and taking them up (after the
    // slots) in the next image, where nobody waits for their callbacks any more.
    boost::json::array save_state() const;
    std::string restore_state(const boost::json::array& rolls);

  private:
    struct Roll {
        const Pool* pool;
        std::deque<std::uint64_t> queue;  // worker ids not started yet
        struct InFlight {
            std::uint64_t generation;
            std::uint64_t roll_failures;
            pid_t old_pid;
        };
        std::map<std::uint64_t, InFlight> inflight;
        int batch;
        int total;
        int done = 0;
        std::string failed;
        RollCallbacks cb;
    };
    void discard_successor(Worker& w, const std::string& why);
    // The predecessor is the slot's process again.
    void restore_pred(Worker& w);

    Supervisor& sup_;
    std::vector<std::unique_ptr<Roll>> rolls_;
};

}  // namespace cow
