// What the supervisor calls into worker output capture, around every spawn and removal. An
// interface of the supervise layer, so that the supervisor knows nothing of pipes, sinks or
// asio; daemon/logs/output implements it.
#pragma once

#include <string>
#include <utility>

#include <sys/types.h>

namespace cow {

struct Worker;

class OutputHooks {
  public:
    virtual ~OutputHooks() = default;
    // The write ends the child gets as stdout and stderr (-1: the daemon's own, inherit).
    virtual std::pair<int, int> before_spawn(Worker& w) = 0;
    // Closes those write ends (the child has its copies) and resumes reading.
    virtual void after_spawn(Worker& w, pid_t pid) = 0;
    // The slot is going away (scaled down, pool removed): read what is left, then close.
    virtual void worker_removed(Worker& w) = 0;
    // A pool removed by reload is gone: its last worker has been removed (or it had none).
    virtual void pool_removed(const std::string& pool) = 0;
};

}  // namespace cow
