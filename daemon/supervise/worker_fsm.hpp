// The worker state machine: a pure function (slot, event, policy) -> (slot', actions).
// It makes no syscalls, reads no clock and writes no log (design §2); the supervisor feeds it
// events with the current time and carries out the actions it returns.
//
// *want* (what the operator asked for) is kept apart from *state* (what we observe). The
// supervisor converges state toward want by feeding events; the FSM decides how.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "core/wait_status.hpp"

namespace cow::fsm {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;
// A TimePoint as CLOCK_MONOTONIC nanoseconds and back: the clock is the machine's, so the
// number means the same instant to another image of the daemon (cowctl upgrade).
inline std::int64_t to_ns(TimePoint t) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
inline TimePoint from_ns(std::int64_t ns) {
    return TimePoint(std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(ns)));
}

enum class State : std::uint8_t { starting, running, backoff, stopping, stopped, exited, fatal };
enum class Want : std::uint8_t { up, down };

std::string_view to_string(State s);
std::string_view to_string(Want w);
inline constexpr State kAllStates[] = {State::starting, State::running, State::backoff,
                                       State::stopping, State::stopped, State::exited,
                                       State::fatal};

// What the FSM needs to know of the pool's config.
struct Policy {
    config::RestartPolicy restart = config::RestartPolicy::always;
    Millis start_timeout{1000};
    config::Backoff backoff;
    config::MaxRestarts max_restarts;
    int stop_signal = 15;
    Millis stop_timeout{10000};
    bool ready_notify = false;    // running only after READY=1, and start_timeout is a deadline
    bool ready_by_probe = false;  // that readiness comes from a probe, not READY=1
    Millis watchdog{0};           // running: WATCHDOG=1 is due this often, else SIGABRT
};
Policy policy_from(const config::PoolConfig& pool);

// Why a slot is stopping, which decides what its process's exit means. Whether a start
// follows is `want`'s business alone, and whether KILL was sent is `killed`'s.
enum class StopCause : std::uint8_t {
    requested,     // an operator's stop or restart, a scale-down, a shutdown
    start_failed,  // no READY=1 within start_timeout: the exit counts as a failed start
    watchdog,      // WATCHDOG=1 stopped coming: the exit counts as a crash
    liveness,      // the liveness probe failed: the exit counts as a crash too
};
std::string_view to_string(StopCause c);

// The FSM's memory of one worker slot.
struct Slot {
    State state = State::stopped;
    Want want = Want::down;
    StopCause stop_cause = StopCause::requested;  // meaningful while stopping
    bool killed = false;                          // SIGKILL already sent in this stop
    int failed_starts = 0;                        // consecutive; drives the backoff exponent
    std::deque<TimePoint> recent_restarts;        // automatic restarts within max_restarts.within
};

enum class EventType : std::uint8_t {
    start,         // operator: want up
    stop,          // operator: want down
    restart,       // operator: stop if up, then start
    spawned,       // fork-exec succeeded
    spawn_failed,  // fork-exec failed before exec (bad binary, cwd, ...)
    ready,         // READY=1 from the worker (ready: notify)
    exited,        // the worker process was reaped
    timer,         // the slot's single timer fired; its meaning depends on the state
    ping,          // WATCHDOG=1 from the worker
    extend,        // EXTEND_TIMEOUT_USEC= from the worker: more time to start or stop
    replace,       // rolling restart: start a successor while the current process runs on
    reinstate,     // rolling restart: the successor is gone; the old process is the slot's again
};
std::string_view to_string(EventType e);
inline constexpr EventType kAllEvents[] = {
    EventType::start,        EventType::stop,   EventType::restart, EventType::spawned,
    EventType::spawn_failed, EventType::ready,  EventType::exited,  EventType::timer,
    EventType::ping,         EventType::extend, EventType::replace, EventType::reinstate};

struct Event {
    EventType type;
    TimePoint now{};
    ExitInfo exit{};         // for exited
    Millis extend{0};        // for extend
    bool unhealthy = false;  // restart: a failed liveness probe's, counted like a crash
};

struct Actions {
    bool spawn = false;            // start a new process for the slot
    std::optional<int> signal;     // send to the worker's whole process tree
    std::optional<Millis> arm;     // (re)arm the slot's timer this far from now
    bool cancel_timer = false;     // disarm the slot's timer (implied by arm)
    bool counted_restart = false;  // an automatic restart happened (the `restarts` counter)
    bool gave_up = false;          // entered fatal
    bool finished = false;         // entered exited (no restart by policy)
    std::string reason;            // why, for the log and for status
};

// The FSM's graph: the changes of state any event may make. step() asserts that it never makes
// another (supervisord's _assertInState), and the table test keeps this no wider than needed.
bool transition_allowed(State from, State to);

// Applies one event. Events that make no sense in the current state change nothing and
// return empty actions (e.g. a stale timer, or `exited` when no process runs).
Actions step(Slot& slot, const Event& ev, const Policy& policy);

// A reload changed the pool's config: the failures counted so far belong to the old one, so
// the backoff exponent and the max_restarts window start over.
void forget_failures(Slot& slot);

// Delay before the n-th consecutive failed start is retried (n >= 1): initial * 2^(n-1), capped.
Millis backoff_delay(const config::Backoff& b, int n);

}  // namespace cow::fsm
