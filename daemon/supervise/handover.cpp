// The supervisor's part of an in-place upgrade (daemon/upgrade.cpp): every slot, its FSM memory,
// its process and its history, written by one image and taken up by the next in place of boot().
// Times are CLOCK_MONOTONIC nanoseconds: the clock is the machine's, so a deadline written by
// one image means the same instant to the next. Enums travel by name, so that a reorder in a
// later version does not change what a state means.
#include <spdlog/spdlog.h>

#include "core/proc/proc_id.hpp"
#include "daemon/os/leftovers.hpp"
#include "daemon/supervise/rolling.hpp"
#include "daemon/supervise/supervisor.hpp"

namespace cow {

namespace json = boost::json;
using fsm::State;

namespace {

// Whole numbers, however the writer held them (a parsed document has int64, one built in
// memory may have uint64).
bool whole(const json::value* v) {
    return v && (v->is_int64() || v->is_uint64());
}
fsm::TimePoint at(const json::value* v) {
    return whole(v) ? fsm::from_ns(v->to_number<std::int64_t>()) : fsm::TimePoint{};
}
std::int64_t i64(const json::object& o, std::string_view k, std::int64_t def = 0) {
    const auto* v = o.if_contains(k);
    return whole(v) ? v->to_number<std::int64_t>() : def;
}
std::uint64_t u64(const json::object& o, std::string_view k) {
    return static_cast<std::uint64_t>(i64(o, k));
}
std::string str(const json::object& o, std::string_view k) {
    const auto* v = o.if_contains(k);
    return v && v->is_string() ? std::string(v->as_string()) : std::string();
}
bool flag(const json::object& o, std::string_view k) {
    const auto* v = o.if_contains(k);
    return v && v->is_bool() && v->as_bool();
}
const json::array& arr(const json::object& o, std::string_view k) {
    static const json::array empty;
    const auto* v = o.if_contains(k);
    return v && v->is_array() ? v->as_array() : empty;
}

// The value whose to_string() is `name`, among `all`; nullopt for a name this build lacks.
template <typename E, std::size_t N>
std::optional<E> by_name(const E (&all)[N], std::string_view name) {
    for (E e : all)
        if (to_string(e) == name) return e;
    return std::nullopt;
}
constexpr fsm::Want kWants[] = {fsm::Want::up, fsm::Want::down};
constexpr fsm::StopCause kStopCauses[] = {fsm::StopCause::requested, fsm::StopCause::start_failed,
                                          fsm::StopCause::watchdog, fsm::StopCause::liveness};
constexpr ExitCause kCauses[] = {ExitCause::exited, ExitCause::crashed, ExitCause::oom_killed,
                                 ExitCause::killed_by_cowherd, ExitCause::killed_externally};

json::object exit_info(const ExitInfo& e) {
    json::object o;
    if (e.code) o["code"] = *e.code;
    if (e.signal) o["signal"] = *e.signal;
    if (e.core_dumped) o["core"] = true;
    return o;
}
ExitInfo exit_info(const json::object& o) {
    ExitInfo e;
    if (o.contains("code")) e.code = static_cast<int>(i64(o, "code"));
    if (o.contains("signal")) e.signal = static_cast<int>(i64(o, "signal"));
    e.core_dumped = flag(o, "core");
    return e;
}
const json::object& obj(const json::object& o, std::string_view k) {
    static const json::object empty;
    const auto* v = o.if_contains(k);
    return v && v->is_object() ? v->as_object() : empty;
}

json::array sent_json(const std::vector<SentSignal>& sent) {
    json::array a;
    for (const auto& s : sent)
        a.push_back(json::object{{"signal", s.signal}, {"reason", s.reason}});
    return a;
}
std::vector<SentSignal> sent_of(const json::array& a) {
    std::vector<SentSignal> out;
    for (const auto& v : a)
        if (v.is_object())
            out.push_back(SentSignal{static_cast<int>(i64(v.as_object(), "signal")),
                                     str(v.as_object(), "reason")});
    return out;
}

json::object worker_json(const Worker& w) {
    json::object o;
    o["pool"] = w.pool->name();
    o["index"] = w.index;
    o["id"] = w.id;
    o["pid"] = w.pid;
    if (w.pid > 0) o["starttime"] = leftovers::starttime_of(w.pid);
    o["last_pid"] = w.last_pid;
    o["generation"] = w.generation;
    o["started_at"] = fsm::to_ns(w.started_at);
    o["state_since"] = fsm::to_ns(w.state_since);
    if (w.last_exit) o["last_exit"] = exit_info(*w.last_exit);
    o["last_exit_pid"] = w.last_exit_pid;
    o["last_exit_at"] = fsm::to_ns(w.last_exit_at);
    o["last_error"] = w.last_error;
    o["last_reason"] = w.last_reason;
    o["restarts"] = w.restarts;
    json::object exits;
    for (const auto& [k, n] : w.exits)
        exits[k] = n;
    o["exits"] = std::move(exits);
    o["stop_reason"] = w.stop_reason;
    o["sent"] = sent_json(w.sent);
    json::array history;
    for (const auto& r : w.history)
        history.push_back(json::object{{"pid", r.pid},
                                       {"generation", r.generation},
                                       {"started_at", fsm::to_ns(r.started_at)},
                                       {"ended_at", fsm::to_ns(r.ended_at)},
                                       {"info", exit_info(r.info)},
                                       {"cause", to_string(r.cause.cause)},
                                       {"detail", r.cause.detail},
                                       {"orphan", r.orphan}});
    o["history"] = std::move(history);
    o["recycles"] = w.recycles;
    o["recycle_reason"] = w.recycle_reason;
    if (w.timer_at) o["timer_at"] = fsm::to_ns(*w.timer_at);
    o["cgroup"] = w.cgroup;
    o["status_text"] = w.status_text;
    o["probe_note"] = w.probe_note;
    o["said_stopping"] = w.said_stopping;
    o["retiring"] = w.retiring;
    o["roll_failures"] = w.roll_failures;
    o["roll_error"] = w.roll_error;
    json::array swept;
    for (const auto& p : w.swept)
        swept.push_back(json::array{p.pid, p.starttime});
    o["swept"] = std::move(swept);
    o["swept_generation"] = w.swept_generation;
    if (w.pred) {
        const auto& p = *w.pred;
        o["pred"] = json::object{{"pid", p.pid},
                                 {"starttime", leftovers::starttime_of(p.pid)},
                                 {"generation", p.generation},
                                 {"cgroup", p.cgroup},
                                 {"started_at", fsm::to_ns(p.started_at)},
                                 {"signaled", p.signaled},
                                 {"kill_at", p.kill_at ? fsm::to_ns(*p.kill_at) : 0},
                                 {"sent", sent_json(p.sent)}};
    }
    const auto& s = w.slot;
    json::array recent;
    for (auto t : s.recent_restarts)
        recent.push_back(fsm::to_ns(t));
    o["slot"] = json::object{
        {"state", fsm::to_string(s.state)},           {"want", fsm::to_string(s.want)},
        {"stop_cause", fsm::to_string(s.stop_cause)}, {"killed", s.killed},
        {"failed_starts", s.failed_starts},           {"recent_restarts", std::move(recent)}};
    return o;
}

}  // namespace

std::string Supervisor::handover_blocker() const {
    if (shutting_down_) return "the daemon is shutting down";
    if (!start_queue_.empty()) return "workers are still being started";
    if (!waiters_.empty()) return "a command is waiting for workers to settle";
    if (!crash_draining_.empty()) return "a crashed worker's leftovers are being stopped";
    if (!retired_templates_.empty()) return "a retired template is still exiting";
    for (const auto& p : pools_) {
        if (p->tpl.pid > 0 || !p->tpl.held.empty() || !p->tpl.forks.empty())
            return "pool " + p->name() + " has a template process (spawn: template)";
        if (p->waiting_for_deps || !p->start_after_deps.empty() ||
            !p->stop_after_dependents.empty())
            return "pool " + p->name() + " is waiting for its depends_on";
        if (p->removed) return "pool " + p->name() + " is being removed";
        for (const auto& w : p->workers)
            if (w->draining || w->drain_until) return w->name + " is between two processes";
    }
    return {};
}

json::object Supervisor::save_state() const {
    json::array pools, workers, orphans;
    for (const auto& p : pools_) {
        json::array fds;
        for (const auto& s : p->sockets)
            fds.push_back(s->fd());
        pools.push_back(json::object{
            {"name", p->name()}, {"size", p->workers.size()}, {"socket_fds", std::move(fds)}});
        for (const auto& w : p->workers)
            workers.push_back(worker_json(*w));
    }
    for (const auto& [pid, o] : lineage_.orphans())
        orphans.push_back(json::object{{"pid", o.pid},
                                       {"starttime", o.starttime},
                                       {"comm", o.comm},
                                       {"from", o.from},
                                       {"worker_id", o.worker_id},
                                       {"generation", o.generation},
                                       {"cgroup", o.cgroup},
                                       {"own_cgroup", o.own_cgroup},
                                       {"group_leader", o.group_leader},
                                       {"policy", config::to_string(o.policy)},
                                       {"grace_ms", o.grace.count()},
                                       {"terminating", o.terminating},
                                       {"kill_at", o.kill_at ? fsm::to_ns(*o.kill_at) : 0},
                                       {"adopted_at", fsm::to_ns(o.adopted_at)}});
    return json::object{{"next_worker_id", next_worker_id_}, {"pools", std::move(pools)},
                        {"workers", std::move(workers)},     {"orphans", std::move(orphans)},
                        {"rolls", rollout_->save_state()},   {"events", events_.save_state()},
                        {"reaped", lineage_.reaped_count()}};
}

std::vector<int> Supervisor::handover_fds() const {
    std::vector<int> fds;
    for (const auto& p : pools_)
        for (const auto& s : p->sockets)
            fds.push_back(s->fd());
    return fds;
}

std::string Supervisor::restore_state(const json::object& s) {
    // Slots as the previous image had them: a pool scaled at runtime has its runtime size.
    for (const auto& pv : arr(s, "pools")) {
        if (!pv.is_object()) return "a pool in the state is not an object";
        const auto& po = pv.as_object();
        Pool* pool = find_pool(str(po, "name"));
        if (!pool) return "pool " + str(po, "name") + " of the state is not in the config";
        const auto size = static_cast<std::size_t>(i64(po, "size"));
        while (pool->workers.size() < size)
            add_worker(*pool, static_cast<int>(pool->workers.size()));
        while (pool->workers.size() > size) {
            by_id_.erase(pool->workers.back()->id);
            pool->workers.pop_back();
        }
    }
    // Ids are the previous image's: its log captures and timers name slots by them.
    std::unordered_map<std::uint64_t, Worker*> by_id;
    std::unordered_map<std::uint64_t, const json::object*> state_of;
    for (const auto& wv : arr(s, "workers")) {
        if (!wv.is_object()) return "a worker in the state is not an object";
        const auto& o = wv.as_object();
        Pool* pool = find_pool(str(o, "pool"));
        const auto index = i64(o, "index", -1);
        if (!pool || index < 0 || static_cast<std::size_t>(index) >= pool->workers.size())
            return "worker " + str(o, "pool") + "." + std::to_string(index) +
                   " of the state has no slot";
        Worker& w = *pool->workers[static_cast<std::size_t>(index)];
        const auto& so = obj(o, "slot");
        auto state = by_name(fsm::kAllStates, str(so, "state"));
        auto want = by_name(kWants, str(so, "want"));
        auto cause = by_name(kStopCauses, str(so, "stop_cause"));
        if (!state || !want || !cause) return w.name + ": a state this version does not know";
        w.id = u64(o, "id");
        by_id[w.id] = &w;
        state_of[w.id] = &o;
        w.slot.state = *state;
        w.slot.want = *want;
        w.slot.stop_cause = *cause;
        w.slot.killed = flag(so, "killed");
        w.slot.failed_starts = static_cast<int>(i64(so, "failed_starts"));
        w.slot.recent_restarts.clear();
        for (const auto& t : arr(so, "recent_restarts"))
            w.slot.recent_restarts.push_back(at(&t));
        w.pid = static_cast<pid_t>(i64(o, "pid"));
        w.last_pid = static_cast<pid_t>(i64(o, "last_pid"));
        w.generation = u64(o, "generation");
        w.started_at = at(o.if_contains("started_at"));
        w.state_since = at(o.if_contains("state_since"));
        if (const auto* e = o.if_contains("last_exit"); e && e->is_object())
            w.last_exit = exit_info(e->as_object());
        w.last_exit_pid = static_cast<pid_t>(i64(o, "last_exit_pid"));
        w.last_exit_at = at(o.if_contains("last_exit_at"));
        w.last_error = str(o, "last_error");
        w.last_reason = str(o, "last_reason");
        w.restarts = u64(o, "restarts");
        w.exits.clear();
        for (const auto& [k, n] : obj(o, "exits"))
            if (n.is_number()) w.exits[std::string(k)] = n.to_number<std::uint64_t>();
        w.stop_reason = str(o, "stop_reason");
        w.sent = sent_of(arr(o, "sent"));
        w.history.clear();
        for (const auto& hv : arr(o, "history")) {
            if (!hv.is_object()) continue;
            const auto& h = hv.as_object();
            ExitRecord r;
            r.pid = static_cast<pid_t>(i64(h, "pid"));
            r.generation = u64(h, "generation");
            r.started_at = at(h.if_contains("started_at"));
            r.ended_at = at(h.if_contains("ended_at"));
            r.info = exit_info(obj(h, "info"));
            r.cause.cause = by_name(kCauses, str(h, "cause")).value_or(ExitCause::exited);
            r.cause.detail = str(h, "detail");
            r.orphan = str(h, "orphan");
            w.history.push_back(std::move(r));
        }
        w.recycles = u64(o, "recycles");
        w.recycle_reason = str(o, "recycle_reason");
        w.cgroup = str(o, "cgroup");
        w.status_text = str(o, "status_text");
        w.probe_note = str(o, "probe_note");
        w.said_stopping = flag(o, "said_stopping");
        w.retiring = flag(o, "retiring");
        w.roll_failures = u64(o, "roll_failures");
        w.roll_error = str(o, "roll_error");
        w.swept.clear();
        for (const auto& pv : arr(o, "swept"))
            if (pv.is_array() && pv.as_array().size() == 2)
                w.swept.push_back(ProcId{static_cast<pid_t>(pv.as_array()[0].to_number<int>()),
                                         pv.as_array()[1].to_number<std::uint64_t>()});
        w.swept_generation = u64(o, "swept_generation");
        w.pred.reset();
        if (const auto* pv = o.if_contains("pred"); pv && pv->is_object()) {
            const auto& po = pv->as_object();
            Worker::Predecessor p;
            p.pid = static_cast<pid_t>(i64(po, "pid"));
            p.generation = u64(po, "generation");
            p.cgroup = str(po, "cgroup");
            p.started_at = at(po.if_contains("started_at"));
            p.signaled = flag(po, "signaled");
            if (i64(po, "kill_at") != 0) p.kill_at = at(po.if_contains("kill_at"));
            p.sent = sent_of(arr(po, "sent"));
            if (p.pid > 0) w.pred = std::move(p);
        }
        if (o.contains("timer_at")) timers_.arm(w, at(o.if_contains("timer_at")));
    }
    by_id_.clear();
    for (const auto& p : pools_)
        for (auto& w : p->workers) {
            if (!by_id.count(w->id)) w->id = 0;  // a slot the state did not name gets a new id
            by_id_[w->id] = w.get();
        }
    next_worker_id_ = std::max<std::uint64_t>(next_worker_id_, u64(s, "next_worker_id"));
    for (const auto& p : pools_)
        for (auto& w : p->workers)
            if (w->id == 0) {
                by_id_.erase(0);
                w->id = next_worker_id_++;
                by_id_[w->id] = w.get();
            }
    // Processes last: the slots they point at exist now. A child is ours until we reap it, so
    // its pid cannot have been reused; the start time only guards against a state that lies.
    for (const auto& p : pools_)
        for (auto& w : p->workers) {
            if (w->pid <= 0 || !state_of.count(w->id)) continue;
            const std::uint64_t was = u64(*state_of.at(w->id), "starttime");
            const std::uint64_t is = leftovers::starttime_of(w->pid);
            if (was != 0 && is != 0 && was != is)
                return w->name + ": pid " + std::to_string(w->pid) +
                       " is not the process the state names";
            if (!w->cgroup.empty())
                lineage_.own_cgroup(w->cgroup, Lineage::Owner{w->id, w->generation, w->name});
            lineage_.add_main(w->pid, *w);
        }
    // The old processes of rolls in progress: the Lineage knows them as predecessors.
    for (const auto& p : pools_)
        for (auto& w : p->workers) {
            if (!w->pred) continue;
            if (!w->pred->cgroup.empty())
                lineage_.own_cgroup(w->pred->cgroup,
                                    Lineage::Owner{w->id, w->pred->generation, w->name});
            lineage_.add_main(w->pred->pid, *w);
            lineage_.to_predecessor(w->pred->pid, *w);
        }
    if (auto why = rollout_->restore_state(arr(s, "rolls")); !why.empty()) return why;
    events_.restore_state(obj(s, "events"));
    lineage_.set_reaped_count(u64(s, "reaped"));
    for (const auto& ov : arr(s, "orphans")) {
        if (!ov.is_object()) continue;
        const auto& oo = ov.as_object();
        Orphan o;
        o.pid = static_cast<pid_t>(i64(oo, "pid"));
        o.starttime = u64(oo, "starttime");
        o.comm = str(oo, "comm");
        o.from = str(oo, "from");
        o.worker_id = u64(oo, "worker_id");
        o.generation = u64(oo, "generation");
        o.cgroup = str(oo, "cgroup");
        o.own_cgroup = flag(oo, "own_cgroup");
        o.group_leader = flag(oo, "group_leader");
        o.policy = str(oo, "policy") == config::to_string(config::OrphanPolicy::keep)
                       ? config::OrphanPolicy::keep
                       : config::OrphanPolicy::kill;
        o.grace = Millis(i64(oo, "grace_ms", 10000));
        o.terminating = flag(oo, "terminating");
        if (i64(oo, "kill_at") != 0) o.kill_at = at(oo.if_contains("kill_at"));
        o.adopted_at = at(oo.if_contains("adopted_at"));
        if (!o.cgroup.empty() && o.own_cgroup)
            lineage_.own_cgroup(o.cgroup, Lineage::Owner{o.worker_id, o.generation, o.from});
        lineage_.keep(std::move(o));
    }
    spdlog::info("took over {} workers and {} orphans from the previous image",
                 arr(s, "workers").size(), lineage_.orphans().size());
    return {};
}

json::array Rollout::save_state() const {
    json::array out;
    for (const auto& r : rolls_) {
        json::array queue, inflight;
        for (auto id : r->queue)
            queue.push_back(id);
        for (const auto& [id, f] : r->inflight)
            inflight.push_back(json::object{{"id", id},
                                            {"generation", f.generation},
                                            {"roll_failures", f.roll_failures},
                                            {"old_pid", f.old_pid}});
        out.push_back(json::object{{"pool", r->pool->name()},
                                   {"queue", std::move(queue)},
                                   {"inflight", std::move(inflight)},
                                   {"batch", r->batch},
                                   {"total", r->total},
                                   {"done", r->done},
                                   {"failed", r->failed}});
    }
    return out;
}

std::string Rollout::restore_state(const json::array& rolls) {
    for (const auto& rv : rolls) {
        if (!rv.is_object()) return "a roll in the state is not an object";
        const auto& ro = rv.as_object();
        const Pool* pool = sup_.find_pool(str(ro, "pool"));
        if (!pool) return "the roll of pool " + str(ro, "pool") + " has no pool";
        auto r = std::make_unique<Roll>();
        r->pool = pool;
        for (const auto& id : arr(ro, "queue"))
            if (whole(&id) && sup_.find_worker(id.to_number<std::uint64_t>()))
                r->queue.push_back(id.to_number<std::uint64_t>());
        for (const auto& fv : arr(ro, "inflight")) {
            if (!fv.is_object()) continue;
            const auto& fo = fv.as_object();
            r->inflight[u64(fo, "id")] =
                Roll::InFlight{u64(fo, "generation"), u64(fo, "roll_failures"),
                               static_cast<pid_t>(i64(fo, "old_pid"))};
        }
        r->batch = static_cast<int>(i64(ro, "batch", 1));
        r->total = static_cast<int>(i64(ro, "total"));
        r->done = static_cast<int>(i64(ro, "done"));
        r->failed = str(ro, "failed");
        spdlog::info("pool {}: rolling restart taken over, {} of {} done", pool->name(), r->done,
                     r->total);
        rolls_.push_back(std::move(r));
    }
    return {};
}

}  // namespace cow
