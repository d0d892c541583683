#include "daemon/control/views.hpp"

#include <unordered_set>

#include "core/signal_names.hpp"

namespace cow::views {
namespace json = boost::json;

std::int64_t epoch_ms(fsm::TimePoint t, fsm::TimePoint now_steady) {
    auto wall_now = std::chrono::system_clock::now();
    auto wall =
        wall_now - std::chrono::duration_cast<std::chrono::system_clock::duration>(now_steady - t);
    return std::chrono::duration_cast<std::chrono::milliseconds>(wall.time_since_epoch()).count();
}

json::object worker(const Worker& w, fsm::TimePoint now) {
    json::object o;
    o["name"] = w.name;
    o["index"] = w.index;
    if (w.alive())
        o["pid"] = w.pid;
    else
        o["pid"] = nullptr;
    // A crashed worker whose leftovers are being stopped before its replacement starts.
    o["state"] = w.draining && w.slot.state != fsm::State::stopping
                     ? fsm::to_string(fsm::State::stopping)
                     : fsm::to_string(w.slot.state);
    // A start held for depends_on is wanted up, whatever its last stop left in the slot.
    const bool held = held_for_deps(w);
    o["want"] = fsm::to_string(held ? fsm::Want::up : w.slot.want);
    o["restarts"] = w.restarts;
    o["uptime_ms"] = w.alive() ? std::chrono::duration_cast<Millis>(now - w.started_at).count() : 0;
    o["state_ms"] = std::chrono::duration_cast<Millis>(now - w.state_since).count();
    o["generation"] = w.generation;
    if (w.last_exit) {
        json::object e;
        if (w.last_exit->code)
            e["code"] = *w.last_exit->code;
        else
            e["code"] = nullptr;
        if (w.last_exit->signal) {
            e["signal"] = *w.last_exit->signal;
            e["signal_name"] = signal_name(*w.last_exit->signal);
        } else {
            e["signal"] = nullptr;
        }
        e["at_ms"] = epoch_ms(w.last_exit_at, now);
        e["pid"] = w.last_exit_pid;
        if (const ExitRecord* last = w.last_main_exit(); last && last->pid == w.last_exit_pid) {
            e["cause"] = to_string(last->cause.cause);
            e["detail"] = last->cause.detail;
        }
        o["last_exit"] = std::move(e);
    } else {
        o["last_exit"] = nullptr;
    }
    if (!w.last_error.empty())
        o["error"] = w.last_error;
    else
        o["error"] = nullptr;
    o["reason"] =
        held && w.slot.state != fsm::State::running ? "waiting for depends_on" : w.last_reason;
    o["recycles"] = w.recycles;
    if (!w.status_text.empty()) o["status_text"] = w.status_text;
    if (!w.probe_note.empty()) o["probe"] = w.probe_note;
    if (w.said_stopping) o["said_stopping"] = true;
    if (!w.roll_error.empty()) o["roll_error"] = w.roll_error;
    if (w.pred) o["replacing_pid"] = w.pred->pid;
    if (w.retiring) o["retiring"] = true;
    if (!w.recycle_reason.empty())
        o["recycled"] = w.recycle_reason;
    else
        o["recycled"] = nullptr;
    return o;
}

json::object status(const Supervisor& sup, const std::vector<Worker*>* only) {
    const auto now = sup.now();
    std::unordered_set<const Worker*> wanted;
    if (only) wanted.insert(only->begin(), only->end());
    json::array pools;
    for (const auto& p : sup.pools()) {
        json::array ws;
        ws.reserve(only ? 0 : p->workers.size());
        for (const auto& w : p->workers)
            if (!only || wanted.count(w.get())) ws.push_back(worker(*w, now));
        if (only && ws.empty()) continue;
        json::object po;
        po["name"] = p->name();
        po["size"] = p->workers.size();
        po["workers"] = std::move(ws);
        if (p->cfg->spawn == config::SpawnMode::template_) {
            using TS = Pool::Template::State;
            const auto& t = p->tpl;
            po["template"] = json::object{
                {"state", t.state == TS::ready      ? "ready"
                          : t.state == TS::starting ? "starting"
                                                    : "down"},
                {"pid", t.pid},
                {"generation", t.generation},
                {"uptime_ms",
                 t.pid > 0 ? std::chrono::duration_cast<Millis>(now - t.started_at).count() : 0}};
            if (t.state == TS::down && t.restart_at)
                po["template"].as_object()["restart_in_ms"] = std::max<std::int64_t>(
                    0, std::chrono::duration_cast<Millis>(*t.restart_at - now).count());
        }
        pools.push_back(std::move(po));
    }
    json::object out;
    out["pools"] = std::move(pools);
    return out;
}

json::object exit_record(const ExitRecord& r, fsm::TimePoint now) {
    json::object e = exit_fields(r);
    e["started_ms"] = epoch_ms(r.started_at, now);
    e["ended_ms"] = epoch_ms(r.ended_at, now);
    return e;
}

json::object history(const std::vector<Worker*>& workers, std::size_t n, fsm::TimePoint now) {
    json::array ws;
    for (const Worker* w : workers) {
        json::array exits;
        for (auto it = w->history.rbegin(); it != w->history.rend() && exits.size() < n; ++it)
            exits.push_back(exit_record(*it, now));
        ws.push_back(json::object{{"name", w->name}, {"exits", std::move(exits)}});
    }
    return json::object{{"workers", std::move(ws)}};
}

json::object health(const Supervisor& sup, std::string_view only) {
    bool any_essential = false;
    for (const auto& p : sup.pools())
        any_essential |= p->cfg->essential;
    json::array problems, checked;
    if (sup.shutting_down()) problems.push_back(json::string("the daemon is shutting down"));
    for (const auto& p : sup.pools()) {
        if (!only.empty() ? p->name() != only
                          : (any_essential ? !p->cfg->essential : !p->cfg->autostart))
            continue;
        checked.push_back(json::string(p->name()));
        if (p->removed) continue;
        for (const auto& w : p->workers) {
            // Scaled away: on its way out, not a missing worker.
            if (w->serving() || w->retiring) continue;
            std::string why = w->name + " is " + std::string(fsm::to_string(w->slot.state));
            if (!w->last_error.empty())
                why += ": " + w->last_error;
            else if (!w->last_reason.empty())
                why += ": " + w->last_reason;
            problems.push_back(json::string(why));
        }
    }
    json::object o;
    o["healthy"] = problems.empty();
    o["checked"] = std::move(checked);
    o["problems"] = std::move(problems);
    return o;
}

}  // namespace cow::views
