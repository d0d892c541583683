#include "daemon/probe/prober.hpp"

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include "core/protocol_names.hpp"
#include "core/units.hpp"
#include "daemon/probe/probe_target.hpp"

namespace cow {

namespace {
// How often due probes are looked for: the granularity of every interval.
constexpr Millis kTick{100};
}  // namespace

Prober::Prober(boost::asio::io_context& io, Supervisor& sup, Helpers& helpers,
               std::function<void()> after)
    : io_(io), sup_(sup), helpers_(helpers), after_(std::move(after)), checker_(io), timer_(io) {}

Prober::~Prober() {
    *alive_ = false;
}

void Prober::start() {
    bool any = false;
    for (const auto& p : sup_.pools())
        any |= p->cfg->readiness.has_value() || p->cfg->liveness.has_value();
    if (!any) {
        timer_.cancel();
        states_.clear();
        return;
    }
    tick();
}

void Prober::tick() {
    const auto now = sup_.now();
    // Updated in place (no map rebuilt ten times a second); what this tick did not visit goes.
    ++tick_;
    for (const auto& pool : sup_.pools()) {
        const auto& cfg = *pool->cfg;
        if (!cfg.readiness && !cfg.liveness) continue;
        for (const auto& wp : pool->workers) {
            Worker& w = *wp;
            const config::ProbeConfig* pc = nullptr;
            Phase phase{};
            if (w.alive() && w.slot.state == fsm::State::starting && cfg.readiness) {
                pc = &*cfg.readiness;
                phase = Phase::readiness;
            } else if (w.alive() && w.slot.state == fsm::State::running && cfg.liveness) {
                pc = &*cfg.liveness;
                phase = Phase::liveness;
            }
            auto it = states_.find(w.id);
            if (!pc) {
                // Keep one whose answer is still out, so it is not counted twice.
                if (it != states_.end() && it->second.in_flight) it->second.seen = tick_;
                continue;
            }
            const bool fresh = it == states_.end();
            State& st = fresh ? states_[w.id] : it->second;
            if (fresh || st.pid != w.pid || st.phase != phase) {
                const bool busy = st.in_flight;
                st = State{};
                st.in_flight = busy;
                st.pid = w.pid;
                st.phase = phase;
                // initial_delay counts from the process's start, for either phase.
                st.next_at = std::max(now, w.started_at + pc->initial_delay);
            }
            st.seen = tick_;
            if (!st.in_flight && now >= st.next_at && in_flight_ < kMaxInFlight) {
                st.next_at = now + pc->interval;
                st.in_flight = true;
                launch(w, st, *pc);
            }
        }
    }
    std::erase_if(states_, [this](const auto& kv) { return kv.second.seen != tick_; });
    timer_.expires_after(kTick);
    timer_.async_wait(
        [this, alive = std::weak_ptr<bool>(alive_)](const boost::system::error_code& ec) {
            if (ec || alive.expired()) return;
            tick();
        });
}

void Prober::launch(Worker& w, State& st, const config::ProbeConfig& pc) {
    ++in_flight_;
    ++runs_;
    const auto& pool = *w.pool->cfg;
    auto reply = [this, alive = std::weak_ptr<bool>(alive_), id = w.id, pid = st.pid,
                  phase = st.phase](bool ok, const std::string& detail) {
        if (alive.expired()) return;
        --in_flight_;
        result(id, pid, phase, ok, detail);
    };
    using Kind = config::ProbeConfig::Kind;
    if (pc.kind == Kind::exec) {
        std::vector<std::string> argv;
        for (const auto& a : pc.command)
            argv.push_back(probe::expand(a, pc, pool, w.index, w.pid, w.generation));
        helpers_.run(std::move(argv), {}, pc.timeout,
                     [reply, t = pc.timeout](const HelperResult& r) {
                         if (!r.ran) return reply(false, r.error);
                         if (r.timed_out)
                             return reply(false, "timed out after " + format_duration(t));
                         reply(r.exit.success(), r.exit.success() ? "exit 0" : describe(r.exit));
                     });
        return;
    }
    const std::string target = probe::expand(pc.target, pc, pool, w.index, w.pid, w.generation);
    auto ep = pc.kind == Kind::http ? probe::parse_http(target) : probe::parse_tcp(target);
    if (auto* err = std::get_if<std::string>(&ep)) {
        // Post, not call: the answer must not arrive inside tick().
        boost::asio::post(io_, [reply, why = target + ": " + *err] { reply(false, why); });
        return;
    }
    probe::Check c;
    c.http = pc.kind == Kind::http;
    c.at = std::get<probe::Endpoint>(std::move(ep));
    c.status_min = pc.status_min;
    c.status_max = pc.status_max;
    c.timeout = pc.timeout;
    checker_.check(std::move(c), [reply](const probe::Outcome& o) { reply(o.ok, o.detail); });
}

void Prober::result(std::uint64_t worker_id, pid_t pid, Phase phase, bool ok,
                    const std::string& detail) {
    auto it = states_.find(worker_id);
    if (it != states_.end() && it->second.pid == pid) it->second.in_flight = false;
    Worker* w = sup_.find_worker(worker_id);
    // The process it was for may be gone, or past that phase, by now: its answer is moot.
    if (!w || w->pid != pid || it == states_.end() || it->second.phase != phase) return;
    State& st = it->second;
    const bool ready_phase = phase == Phase::readiness;
    const auto& pc = ready_phase ? *w->pool->cfg->readiness : *w->pool->cfg->liveness;
    if (ok) {
        st.fails = 0;
        w->probe_note.clear();
        if (ready_phase && w->slot.state == fsm::State::starting) {
            sup_.probe_ready(*w);
            if (after_) after_();
        }
        return;
    }
    ++failed_;
    ++st.fails;
    const char* what = ready_phase ? "readiness" : "liveness";
    const std::string msg = fmt::format("{} pid {} {} probe failed ({} of {}): {}", w->name, pid,
                                        what, st.fails, pc.failures, detail);
    // A starting worker may fail many times before it is up: the first of a streak is news.
    if (!ready_phase || st.fails == 1) {
        spdlog::log(ready_phase ? spdlog::level::info : spdlog::level::warn, "{}", msg);
        sup_.events().emit(sup_.now(), proto::event::probe, w->pool->name(), w->name, msg,
                           {{"pid", pid},
                            {"probe", what},
                            {"failures", st.fails},
                            {"of", pc.failures},
                            {"detail", detail}});
    }
    w->probe_note = std::string(what) + ": " + detail;
    if (!ready_phase && st.fails >= pc.failures) {
        st.fails = 0;
        sup_.unhealthy(*w, "liveness probe: " + detail);
        if (after_) after_();
    }
}

}  // namespace cow
