#include "daemon/supervise/rolling.hpp"

#include <algorithm>
#include <csignal>

#include <spdlog/spdlog.h>

#include "core/protocol_names.hpp"
#include "daemon/supervise/supervisor.hpp"

namespace cow {

using fsm::Event;
using fsm::EventType;
using fsm::State;

Rollout::~Rollout() = default;

bool Rollout::rolling(const Pool& pool) const {
    for (const auto& r : rolls_)
        if (r->pool == &pool) return true;
    return false;
}

void Rollout::start(Pool& pool, const std::vector<Worker*>& workers, int batch, RollCallbacks cb) {
    auto r = std::make_unique<Roll>();
    r->pool = &pool;
    for (Worker* w : workers)
        r->queue.push_back(w->id);
    r->batch = std::max(1, batch);
    r->total = static_cast<int>(workers.size());
    r->cb = std::move(cb);
    spdlog::info("pool {}: rolling restart of {} workers, {} at a time", pool.name(), r->total,
                 r->batch);
    sup_.events_.emit(sup_.now(), proto::event::roll, pool.name(), {},
                      fmt::format("pool {}: rolling restart of {} workers, {} at a time",
                                  pool.name(), r->total, r->batch),
                      {{"what", "started"}, {"total", r->total}, {"batch", r->batch}});
    rolls_.push_back(std::move(r));
    advance();
}

int Rollout::cancel(Pool& pool, const std::string& why) {
    int kept = 0;
    for (auto& r : rolls_) {
        if (r->pool != &pool) continue;
        r->queue.clear();
        for (auto& [id, f] : r->inflight) {
            Worker* w = sup_.find_worker(id);
            if (!w || !w->pred || w->pred->signaled) continue;  // done, or not ours to undo
            discard_successor(*w, why);
            ++kept;
        }
        r->inflight.clear();
        if (r->failed.empty()) r->failed = why;
    }
    advance();
    return kept;
}

// The successor goes (it was never serving) and the old process, still serving, is the
// slot's process again, as if the roll had not reached it.
void Rollout::discard_successor(Worker& w, const std::string& why) {
    const pid_t old = w.pred->pid;
    if (w.alive()) {
        Orphan o;
        o.pid = w.pid;
        if (auto info = sup_.sys_.proc_info(w.pid))
            o.starttime = info->starttime, o.comm = info->comm;
        o.from = w.name;
        o.worker_id = w.id;
        o.generation = w.generation;
        o.cgroup = w.cgroup;
        o.own_cgroup = !w.cgroup.empty();
        o.group_leader = true;  // spawned into a session of its own
        o.grace = w.pool->cfg->stop_timeout;
        o.adopted_at = sup_.now();
        sup_.lineage_.drop_main(w.pid);
        spdlog::info("{}: {}; stopping replacement pid {}, pid {} keeps serving", w.name, why,
                     w.pid, old);
        sup_.events_.emit(sup_.now(), proto::event::roll, w.pool->name(), w.name,
                          fmt::format("{}: {}; stopping replacement pid {}, pid {} keeps serving",
                                      w.name, why, w.pid, old),
                          {{"what", "discarded"}, {"pid", w.pid}, {"old_pid", old}});
        auto& rec = sup_.lineage_.keep(std::move(o));
        sup_.lineage_.terminate(rec, rec.grace);
    } else if (!w.cgroup.empty()) {
        sup_.lineage_.release_cgroup(w.cgroup);
    }
    restore_pred(w);
    sup_.reinstate(w, w.slot.state, why + "; the old process keeps serving");
}

void Rollout::restore_pred(Worker& w) {
    auto p = *w.pred;
    w.pred.reset();
    w.pid = p.pid;
    w.last_pid = p.pid;
    w.generation = p.generation;
    w.cgroup = p.cgroup;
    w.started_at = p.started_at;
    w.sent = std::move(p.sent);
    sup_.lineage_.from_predecessor(p.pid, w);
}

void Rollout::advance() {
    for (auto it = rolls_.begin(); it != rolls_.end();) {
        Roll& r = **it;
        // Workers scaled away (or removed) meanwhile leave the roll, and its total with them,
        // so that progress never counts toward a total that can no longer be reached.
        for (auto q = r.queue.begin(); q != r.queue.end();) {
            Worker* w = sup_.find_worker(*q);
            if (w && !w->retiring) {
                ++q;
                continue;
            }
            q = r.queue.erase(q);
            --r.total;
        }
        for (auto f = r.inflight.begin(); f != r.inflight.end();) {
            Worker* w = sup_.find_worker(f->first);
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
        while (r.failed.empty() && !sup_.shutting_down() &&
               static_cast<int>(r.inflight.size()) < r.batch && !r.queue.empty()) {
            Worker* w = sup_.find_worker(r.queue.front());
            r.queue.pop_front();
            r.inflight[w->id] = Roll::InFlight{w->generation, w->roll_failures, w->pid};
            begin_replace(*w);
        }
        if (sup_.shutting_down() && r.failed.empty()) r.failed = "the daemon is shutting down";
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
        const std::string msg =
            why.empty() ? fmt::format("pool {}: rolling restart done, {} of {} replaced", pool,
                                      replaced, total)
                        : fmt::format("pool {}: rolling restart stopped after {} of {}: {}", pool,
                                      replaced, total, why);
        if (why.empty())
            spdlog::info("{}", msg);
        else
            spdlog::warn("{}", msg);
        boost::json::object f{
            {"what", why.empty() ? "done" : "stopped"}, {"replaced", replaced}, {"total", total}};
        if (!why.empty()) f["why"] = why;
        sup_.events_.emit(sup_.now(), proto::event::roll, pool, {}, msg, std::move(f));
        if (done) done(why.empty(), why.empty() ? "" : why);
    }
}

void Rollout::begin_replace(Worker& w) {
    if (w.slot.state != State::running || !w.alive() || w.pred) {
        sup_.apply(w, Event{EventType::restart, sup_.now(), {}});
        return;
    }
    Worker::Predecessor p;
    p.pid = w.pid;
    p.generation = w.generation;
    p.cgroup = w.cgroup;
    p.started_at = w.started_at;
    p.sent = std::move(w.sent);
    w.sent.clear();
    sup_.lineage_.to_predecessor(w.pid, w);
    w.pred = p;
    w.pid = 0;
    w.cgroup.clear();
    w.status_text.clear();
    w.said_stopping = false;
    sup_.apply(w, Event{EventType::replace, sup_.now(), {}});
}

void Rollout::retire_pred(Worker& w) {
    auto& p = *w.pred;
    const int sig = w.pool->cfg->stop_signal;
    spdlog::info("{} pid {} replaces pid {}; stopping the old one", w.name, w.pid, p.pid);
    sup_.events_.emit(
        sup_.now(), proto::event::roll, w.pool->name(), w.name,
        fmt::format("{} pid {} replaces pid {}; stopping the old one", w.name, w.pid, p.pid),
        {{"what", "replaced"}, {"pid", w.pid}, {"old_pid", p.pid}});
    Sys& sys = sup_.sys_;
    p.sent.push_back(SentSignal{sig, "rolling restart"});
    for (int s : {sig, SIGCONT}) {
        // Unreaped, so its group is still its own; its cgroup is its generation's alone.
        sys.kill_group(p.pid, s);
        if (!p.cgroup.empty() && sys.cgroups()) sys.cgroups()->signal(p.cgroup, s);
    }
    p.signaled = true;
    p.kill_at = sup_.now() + w.pool->cfg->stop_timeout;
}

void Rollout::rollback(Worker& w, const std::string& why, State from) {
    const pid_t failed = w.last_pid;
    if (!w.cgroup.empty()) sup_.lineage_.release_cgroup(w.cgroup);
    restore_pred(w);
    ++w.roll_failures;
    // The FSM's reason speaks of a retry that will not happen; say what the successor did.
    const std::string what = !w.last_error.empty() ? w.last_error
                             : w.last_exit         ? describe(*w.last_exit)
                                                   : why;
    w.roll_error =
        "replacement pid " + std::to_string(failed) + " " + what + " before it was ready";
    sup_.reinstate(w, from, w.roll_error + "; the old process keeps serving");
}

}  // namespace cow
