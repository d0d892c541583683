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

int Supervisor::cancel_roll(Pool& pool, const std::string& why) {
    int kept = 0;
    for (auto& r : rolls_) {
        if (r->pool != &pool) continue;
        r->queue.clear();
        for (auto& [id, f] : r->inflight) {
            Worker* w = find_worker(id);
            if (!w || !w->pred || w->pred->signaled) continue;  // done, or not ours to undo
            discard_successor(*w, why);
            ++kept;
        }
        r->inflight.clear();
        if (r->failed.empty()) r->failed = why;
    }
    advance_rolls();
    return kept;
}

// The successor goes (it was never serving) and the old process, still serving, is the
// slot's process again, as if the roll had not reached it.
void Supervisor::discard_successor(Worker& w, const std::string& why) {
    auto p = *w.pred;
    if (w.alive()) {
        Orphan o;
        o.pid = w.pid;
        if (auto info = sys_.proc_info(w.pid)) o.starttime = info->starttime, o.comm = info->comm;
        o.from = w.name;
        o.worker_id = w.id;
        o.generation = w.generation;
        o.cgroup = w.cgroup;
        o.own_cgroup = !w.cgroup.empty();
        o.group_leader = true;  // spawned into a session of its own
        o.grace = w.pool->cfg->stop_timeout;
        o.adopted_at = sys_.now();
        by_pid_.erase(w.pid);
        spdlog::info("{}: {}; stopping replacement pid {}, pid {} keeps serving", w.name, why,
                     w.pid, p.pid);
        auto& rec = orphans_[w.pid] = std::move(o);
        ++pid_epoch_;
        terminate_orphan(rec, rec.grace);
    } else if (!w.cgroup.empty()) {
        release_cgroup(w.cgroup);
    }
    w.pred.reset();
    pred_by_pid_.erase(p.pid);
    w.pid = p.pid;
    w.last_pid = p.pid;
    w.generation = p.generation;
    w.cgroup = p.cgroup;
    w.started_at = p.started_at;
    by_pid_[p.pid] = &w;
    reinstate(w, w.slot.state, why + "; the old process keeps serving");
}

void Supervisor::advance_rolls() {
    for (auto it = rolls_.begin(); it != rolls_.end();) {
        Roll& r = **it;
        // Workers scaled away (or removed) meanwhile leave the roll, and its total with them,
        // so that progress never counts toward a total that can no longer be reached.
        for (auto q = r.queue.begin(); q != r.queue.end();) {
            Worker* w = find_worker(*q);
            if (w && !w->retiring) {
                ++q;
                continue;
            }
            q = r.queue.erase(q);
            --r.total;
        }
        for (auto f = r.inflight.begin(); f != r.inflight.end();) {
            Worker* w = find_worker(f->first);
            bool finished = false;
            if (!w) {
                finished = true;  // scaled away meanwhile
                --r.total;
            } else if (w->roll_failures != f->second.roll_failures) {
                if (r.failed.empty()) r.failed = w->name + ": " + w->roll_error;
                finished = true;
            } else if (w->generation > f->second.generation && w->alive() &&
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
