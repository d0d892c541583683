// Rolling restarts (Supervisor::start_roll): successors first, old processes after, a batch
// at a time; a successor that fails stops the roll and the old process keeps serving.
#include "daemon/rolling.hpp"

#include <deque>
#include <map>

#include <spdlog/spdlog.h>

namespace cow {

bool Supervisor::rolling(const Pool& pool) const {
    for (const auto& r : rolls_)
        if (r->pool == &pool) return true;
    return false;
}

void Supervisor::start_roll(Pool& pool, const std::vector<Worker*>& workers, int batch,
                            RollCallbacks cb) {
    auto r = std::make_unique<Roll>();
    r->pool = &pool;
    for (Worker* w : workers)
        r->queue.push_back(w->id);
    r->batch = std::max(1, batch);
    r->total = static_cast<int>(workers.size());
    r->cb = std::move(cb);
    spdlog::info("pool {}: rolling restart of {} workers, {} at a time", pool.name(), r->total,
                 r->batch);
    rolls_.push_back(std::move(r));
    advance_rolls();
}

void Supervisor::advance_rolls() {
    for (auto it = rolls_.begin(); it != rolls_.end();) {
        Roll& r = **it;
        for (auto f = r.inflight.begin(); f != r.inflight.end();) {
            Worker* w = find_worker(f->first);
            bool finished = false;
            if (!w) {
                finished = true;  // scaled away meanwhile
            } else if (w->roll_failures != f->second.roll_failures) {
                if (r.failed.empty()) r.failed = w->name + ": " + w->roll_error;
                finished = true;
            } else if (w->generation > f->second.generation &&
                       w->slot.state == fsm::State::running && (!w->pred || w->pred->signaled)) {
                ++r.done;
                boost::json::object p{{"worker", w->name},
                                      {"old_pid", f->second.old_pid},
                                      {"new_pid", w->pid},
                                      {"done", r.done},
                                      {"total", r.total}};
                if (r.cb.on_progress) r.cb.on_progress(p);
                finished = true;
            } else if (!w->pred && w->generation > f->second.generation &&
                       (w->slot.state == fsm::State::backoff ||
                        w->slot.state == fsm::State::fatal ||
                        w->slot.state == fsm::State::exited)) {
                // A worker that was not running got a plain restart, and it failed.
                if (r.failed.empty())
                    r.failed = w->name + " is " + std::string(fsm::to_string(w->slot.state)) +
                               ": " + (w->last_error.empty() ? w->last_reason : w->last_error);
                finished = true;
            } else if (w->slot.want == fsm::Want::down) {
                if (r.failed.empty()) r.failed = w->name + " was stopped during the roll";
                finished = true;
            }
            f = finished ? r.inflight.erase(f) : std::next(f);
        }
        while (r.failed.empty() && !shutting_down_ &&
               static_cast<int>(r.inflight.size()) < r.batch && !r.queue.empty()) {
            Worker* w = find_worker(r.queue.front());
            r.queue.pop_front();
            if (!w) {
                --r.total;
                continue;
            }
            r.inflight[w->id] = Roll::InFlight{w->generation, w->roll_failures, w->pid};
            begin_replace(*w);
        }
        if (shutting_down_ && r.failed.empty()) r.failed = "the daemon is shutting down";
        const bool over = (r.queue.empty() || !r.failed.empty()) && r.inflight.empty();
        if (!over) {
            ++it;
            continue;
        }
        auto done = std::move(r.cb.on_done);
        std::string why = r.failed;
        const std::string pool = r.pool->name();
        const int replaced = r.done, total = r.total;
        it = rolls_.erase(it);
        if (why.empty())
            spdlog::info("pool {}: rolling restart done, {} of {} replaced", pool, replaced, total);
        else
            spdlog::warn("pool {}: rolling restart stopped after {} of {}: {}", pool, replaced,
                         total, why);
        if (done) done(why.empty(), why.empty() ? "" : why);
    }
}

}  // namespace cow
