#include "daemon/supervise/worker_fsm.hpp"

#include <algorithm>
#include <cassert>

#include "core/protocol_names.hpp"
#include "core/units.hpp"

namespace cow::fsm {
namespace {

using config::RestartPolicy;

Actions dispatch(Slot& s, const Event& ev, const Policy& p);

void to(Slot& s, State next) {
    s.state = next;
}

Actions begin_start(Slot& s, std::string reason) {
    to(s, State::starting);
    s.killed = false;
    Actions a;
    a.spawn = true;
    a.cancel_timer = true;
    a.reason = std::move(reason);
    return a;
}

Actions begin_stop(Slot& s, const Policy& p, std::string reason,
                   StopCause cause = StopCause::requested) {
    to(s, State::stopping);
    s.stop_cause = cause;
    s.killed = false;
    Actions a;
    a.signal = p.stop_signal;
    a.arm = p.stop_timeout;
    a.reason = std::move(reason);
    return a;
}

// Records an automatic restart; returns false when max_restarts within the window is exhausted.
bool admit_restart(Slot& s, const Policy& p, TimePoint now) {
    const auto window = p.max_restarts.within;
    while (!s.recent_restarts.empty() && now - s.recent_restarts.front() >= window)
        s.recent_restarts.pop_front();
    if (static_cast<int>(s.recent_restarts.size()) >= p.max_restarts.count) return false;
    s.recent_restarts.push_back(now);
    return true;
}

Actions give_up(Slot& s, const Policy& p, std::string why) {
    to(s, State::fatal);
    Actions a;
    a.cancel_timer = true;
    a.gave_up = true;
    a.reason = std::move(why) + "; gave up after " + std::to_string(p.max_restarts.count) +
               " restarts within " + format_duration(p.max_restarts.within);
    return a;
}

Actions failed_start(Slot& s, const Policy& p, TimePoint now, std::string why) {
    ++s.failed_starts;
    if (!admit_restart(s, p, now)) return give_up(s, p, std::move(why));
    to(s, State::backoff);
    Actions a;
    a.arm = backoff_delay(p.backoff, s.failed_starts);
    a.reason = std::move(why) + "; retrying in " + format_duration(*a.arm);
    return a;
}

// Up and ready: the backoff resets, and with a watchdog the slot's timer now waits for pings.
Actions become_running(Slot& s, const Policy& p, std::string why) {
    to(s, State::running);
    s.failed_starts = 0;
    Actions a;
    a.cancel_timer = true;
    if (p.watchdog.count() > 0) a.arm = p.watchdog;
    a.reason = std::move(why);
    return a;
}

Actions finish(Slot& s, std::string why) {
    to(s, State::exited);
    Actions a;
    a.cancel_timer = true;
    a.finished = true;
    a.reason = std::move(why);
    return a;
}

bool wants_restart(const Policy& p, const ExitInfo& e) {
    switch (p.restart) {
        case RestartPolicy::always:
            return true;
        case RestartPolicy::on_failure:
            return !e.success();
        case RestartPolicy::never:
            return false;
    }
    return false;
}

Actions on_start(Slot& s, std::string_view who) {
    s.want = Want::up;
    switch (s.state) {
        case State::stopped:
        case State::exited:
        case State::fatal:
        case State::backoff:
            // An operator's start is a fresh start: forget earlier failures.
            s.failed_starts = 0;
            s.recent_restarts.clear();
            return begin_start(s, std::string("started by ") + std::string(who));
        case State::stopping:  // the start follows the stop (want)
        case State::starting:
        case State::running:
            return {};
    }
    return {};
}

Actions on_stop(Slot& s, const Policy& p) {
    s.want = Want::down;
    // The operator's stop overrides why it was stopping: the exit is just the end of a stop.
    s.stop_cause = StopCause::requested;
    switch (s.state) {
        case State::starting:
        case State::running:
            return begin_stop(s, p, "stop requested");
        case State::backoff:
        case State::exited:
        case State::fatal: {
            to(s, State::stopped);
            Actions a;
            a.cancel_timer = true;
            a.reason = "stop requested";
            return a;
        }
        case State::stopping:
        case State::stopped:
            return {};
    }
    return {};
}

Actions on_restart(Slot& s, const Policy& p, const Event& ev) {
    // Not serving: stopped gracefully, and the exit counts like a watchdog's, against
    // max_restarts, so a probe that always fails ends in fatal rather than a restart loop.
    if (ev.unhealthy && s.state == State::running) {
        s.want = Want::up;
        return begin_stop(s, p, "liveness probe failed", StopCause::liveness);
    }
    switch (s.state) {
        case State::starting:
        case State::running: {
            s.want = Want::up;
            return begin_stop(s, p, "restart requested");
        }
        case State::stopping:
            s.want = Want::up;
            return {};
        default:
            return on_start(s, "restart");
    }
}

Actions on_timer(Slot& s, const Policy& p, TimePoint now) {
    switch (s.state) {
        case State::starting: {
            if (p.ready_notify) {
                // No READY=1 in time: stop it, and count the attempt as a failed start.
                return begin_stop(
                    s, p,
                    std::string(p.ready_by_probe ? "readiness probe not passed" : "no READY=1") +
                        " within start_timeout " + format_duration(p.start_timeout),
                    StopCause::start_failed);
            }
            return become_running(s, p, "up for start_timeout " + format_duration(p.start_timeout));
        }
        case State::running: {
            if (p.watchdog.count() == 0) return {};
            // No WATCHDOG=1 in time: abort it (a core dump shows where it hung), as systemd
            // does; its exit then counts as a crash.
            Actions a = begin_stop(s, p, "no WATCHDOG=1 within " + format_duration(p.watchdog),
                                   StopCause::watchdog);
            a.signal = 6;
            return a;
        }
        case State::backoff: {
            Actions a = begin_start(s, "backoff elapsed");
            a.counted_restart = true;
            return a;
        }
        case State::stopping:
            if (s.killed) return {};
            s.killed = true;
            {
                Actions a;
                a.signal = 9;
                a.reason = "did not stop within stop_timeout " + format_duration(p.stop_timeout) +
                           "; sending KILL";
                return a;
            }
        default:
            (void)now;
            return {};  // a stale timer
    }
}

// `what`: how the process ended, as the transition's reason says it.
Actions on_exited(Slot& s, const Policy& p, const Event& ev, const std::string& what) {
    switch (s.state) {
        case State::starting:
            if (!wants_restart(p, ev.exit)) return finish(s, what);
            return failed_start(s, p, ev.now,
                                what + " before start_timeout " + format_duration(p.start_timeout));
        case State::running: {
            if (!wants_restart(p, ev.exit)) return finish(s, what);
            if (!admit_restart(s, p, ev.now)) return give_up(s, p, what);
            s.failed_starts = 0;
            Actions a = begin_start(s, what + "; restarting");
            a.counted_restart = true;
            return a;
        }
        case State::stopping: {
            const StopCause cause = s.stop_cause;
            s.stop_cause = StopCause::requested;
            if (s.want == Want::up &&
                (cause == StopCause::watchdog || cause == StopCause::liveness)) {
                const std::string why = cause == StopCause::watchdog ? "watchdog" : "liveness";
                // A server stopped for its liveness often exits 0 on the TERM: that is no
                // success of its own, so only restart: never lets it rest.
                const bool again = cause == StopCause::liveness ? p.restart != RestartPolicy::never
                                                                : wants_restart(p, ev.exit);
                if (!again) return finish(s, why + ": " + what);
                if (!admit_restart(s, p, ev.now)) return give_up(s, p, why + ": " + what);
                Actions a = begin_start(
                    s,
                    (cause == StopCause::watchdog ? "watchdog timeout" : "liveness probe failed") +
                        std::string(", then ") + what + "; restarting");
                a.counted_restart = true;
                return a;
            }
            if (s.want == Want::up && cause == StopCause::start_failed)
                return failed_start(s, p, ev.now, "start failed (no READY=1), then " + what);
            if (s.want == Want::up) {
                s.failed_starts = 0;
                return begin_start(s, what + "; starting again");
            }
            to(s, State::stopped);
            Actions a;
            a.cancel_timer = true;
            a.reason = what;
            return a;
        }
        default:
            return {};  // no process was running for this slot
    }
}

}  // namespace

std::string_view to_string(State s) {
    switch (s) {
        case State::starting:
            return proto::state::starting;
        case State::running:
            return proto::state::running;
        case State::backoff:
            return proto::state::backoff;
        case State::stopping:
            return proto::state::stopping;
        case State::stopped:
            return proto::state::stopped;
        case State::exited:
            return proto::state::exited;
        case State::fatal:
            return proto::state::fatal;
    }
    return "unknown";
}

std::string_view to_string(StopCause c) {
    switch (c) {
        case StopCause::requested:
            return "requested";
        case StopCause::start_failed:
            return "start_failed";
        case StopCause::watchdog:
            return "watchdog";
        case StopCause::liveness:
            return "liveness";
    }
    return "unknown";
}

std::string_view to_string(Want w) {
    return w == Want::up ? proto::want::up : proto::want::down;
}

std::string_view to_string(EventType e) {
    switch (e) {
        case EventType::start:
            return "start";
        case EventType::stop:
            return "stop";
        case EventType::restart:
            return "restart";
        case EventType::spawned:
            return "spawned";
        case EventType::spawn_failed:
            return "spawn_failed";
        case EventType::ready:
            return "ready";
        case EventType::exited:
            return "exited";
        case EventType::timer:
            return "timer";
        case EventType::ping:
            return "ping";
        case EventType::extend:
            return "extend";
        case EventType::replace:
            return "replace";
        case EventType::reinstate:
            return "reinstate";
    }
    return "unknown";
}

Policy policy_from(const config::PoolConfig& pool) {
    Policy p;
    p.restart = pool.restart;
    p.start_timeout = pool.start_timeout;
    p.backoff = pool.backoff;
    p.max_restarts = pool.max_restarts;
    p.stop_signal = pool.stop_signal;
    p.stop_timeout = pool.stop_timeout;
    p.ready_by_probe = pool.readiness.has_value();
    p.ready_notify = pool.ready == config::Ready::notify || p.ready_by_probe;
    p.watchdog = pool.watchdog;
    return p;
}

void forget_failures(Slot& s) {
    s.recent_restarts.clear();
    s.failed_starts = 0;
}

Millis backoff_delay(const config::Backoff& b, int n) {
    if (n < 1) n = 1;
    auto d = b.initial;
    for (int i = 1; i < n && d < b.max; ++i)
        d *= 2;
    return std::min(d, b.max);
}

bool transition_allowed(State from, State to) {
    using S = State;
    switch (from) {
        case S::starting:
            return to == S::running || to == S::stopping || to == S::backoff || to == S::fatal ||
                   to == S::exited;
        case S::running:
            return to == S::stopping || to == S::starting || to == S::fatal || to == S::exited;
        case S::backoff:
            return to == S::starting || to == S::stopped || to == S::running;
        case S::stopping:
            return to == S::stopped || to == S::starting || to == S::backoff || to == S::fatal ||
                   to == S::exited;
        case S::stopped:
            return to == S::starting;
        case S::exited:
        case S::fatal:
            return to == S::starting || to == S::stopped || to == S::running;
    }
    return false;
}

Actions step(Slot& s, const Event& ev, const Policy& p) {
    [[maybe_unused]] const State from = s.state;
    Actions a = dispatch(s, ev, p);
    assert(s.state == from || transition_allowed(from, s.state));
    return a;
}

namespace {

Actions dispatch(Slot& s, const Event& ev, const Policy& p) {
    switch (ev.type) {
        case EventType::start:
            return on_start(s, "operator");
        case EventType::stop:
            return on_stop(s, p);
        case EventType::restart:
            return on_restart(s, p, ev);
        case EventType::spawned: {
            if (s.state != State::starting) return {};
            if (!p.ready_notify && p.start_timeout.count() == 0)
                return become_running(s, p, "spawned (start_timeout 0)");
            Actions a;
            if (p.start_timeout.count() > 0) a.arm = p.start_timeout;
            return a;
        }
        case EventType::spawn_failed:
            if (s.state == State::stopping) {
                // Stopped between a spawn and its result (a batch, a template's fork, a wait
                // for the template): it never ran, so the stop is over.
                Event gone = ev;
                gone.type = EventType::exited;
                gone.exit = ExitInfo{127, std::nullopt, false};
                return on_exited(s, p, gone, "stopped before it started");
            }
            if (s.state != State::starting) return {};
            // restart: never means one attempt: a start that could not even exec is final,
            // and an error (fatal), not a finished job.
            if (p.restart == RestartPolicy::never)
                return give_up(s, p, "spawn failed (restart: never, so no retry)");
            return failed_start(s, p, ev.now, "spawn failed");
        case EventType::ready: {
            if (s.state != State::starting) return {};
            return become_running(s, p, p.ready_by_probe ? "readiness probe passed" : "READY=1");
        }
        case EventType::exited:
            return on_exited(s, p, ev, describe(ev.exit));
        case EventType::timer:
            return on_timer(s, p, ev.now);
        case EventType::ping: {
            if (s.state != State::running || p.watchdog.count() == 0) return {};
            Actions a;
            a.arm = p.watchdog;
            return a;
        }
        case EventType::extend: {
            // More time to start, or to stop (systemd's EXTEND_TIMEOUT_USEC semantics).
            const bool extendable =
                s.state == State::starting || (s.state == State::stopping && !s.killed);
            if (!extendable || ev.extend.count() <= 0) return {};
            Actions a;
            a.arm = ev.extend;
            return a;
        }
        case EventType::replace: {
            // Only a running worker is replaced in place; the rolling restart restarts others.
            if (s.state != State::running) return {};
            s.want = Want::up;
            return begin_start(s, "replacing it (rolling restart)");
        }
        case EventType::reinstate: {
            // The successor failed or was discarded while the process it was to replace still
            // serves: that process is the slot's again, up as it was before the roll.
            if (s.state == State::running || s.state == State::stopping ||
                s.state == State::stopped)
                return {};
            s.want = Want::up;
            return become_running(s, p, "the old process serves again");
        }
    }
    return {};
}

}  // namespace

}  // namespace cow::fsm
