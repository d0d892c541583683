// The worker FSM: every (state, event) pair from a table, then the policies over sequences.
#include "daemon/worker_fsm.hpp"

#include <map>

#include <gtest/gtest.h>

using namespace cow;
using namespace cow::fsm;
using namespace std::chrono_literals;

namespace {

Policy base_policy() {
    Policy p;
    p.restart = config::RestartPolicy::always;
    p.start_timeout = 1s;
    p.backoff = {100ms, 30s};
    p.max_restarts = {10, 60s};
    p.stop_signal = 15;
    p.stop_timeout = 10s;
    return p;
}

// A slot that is genuinely in `s`, reached the way the daemon would reach it.
Slot slot_in(State s) {
    Slot slot;
    slot.state = s;
    slot.want = (s == State::stopped || s == State::stopping) ? Want::down : Want::up;
    return slot;
}

Event ev(EventType t, int exit_code = 1) {
    Event e{t, TimePoint{} + 1h, {}};
    if (t == EventType::exited) e.exit.code = exit_code;
    return e;
}

struct Expect {
    State next;
    bool spawn = false;
    std::optional<int> signal;
    std::optional<Millis> arm;
};

using Key = std::pair<State, EventType>;

const std::map<Key, Expect>& table() {
    using E = EventType;
    using S = State;
    static const std::map<Key, Expect> t = {
        {{S::starting, E::start}, {S::starting}},
        {{S::starting, E::stop}, {S::stopping, false, 15, 10s}},
        {{S::starting, E::restart}, {S::stopping, false, 15, 10s}},
        {{S::starting, E::spawned}, {S::starting, false, {}, 1s}},
        {{S::starting, E::spawn_failed}, {S::backoff, false, {}, 100ms}},
        {{S::starting, E::ready}, {S::running}},
        {{S::starting, E::exited}, {S::backoff, false, {}, 100ms}},
        {{S::starting, E::timer}, {S::running}},

        {{S::running, E::start}, {S::running}},
        {{S::running, E::stop}, {S::stopping, false, 15, 10s}},
        {{S::running, E::restart}, {S::stopping, false, 15, 10s}},
        {{S::running, E::spawned}, {S::running}},
        {{S::running, E::spawn_failed}, {S::running}},
        {{S::running, E::ready}, {S::running}},
        {{S::running, E::exited}, {S::starting, true}},
        {{S::running, E::timer}, {S::running}},

        {{S::backoff, E::start}, {S::starting, true}},
        {{S::backoff, E::stop}, {S::stopped}},
        {{S::backoff, E::restart}, {S::starting, true}},
        {{S::backoff, E::spawned}, {S::backoff}},
        {{S::backoff, E::spawn_failed}, {S::backoff}},
        {{S::backoff, E::ready}, {S::backoff}},
        {{S::backoff, E::exited}, {S::backoff}},
        {{S::backoff, E::timer}, {S::starting, true}},

        {{S::stopping, E::start}, {S::stopping}},
        {{S::stopping, E::stop}, {S::stopping}},
        {{S::stopping, E::restart}, {S::stopping}},
        {{S::stopping, E::spawned}, {S::stopping}},
        // A stop that came between a batched spawn and its failure: nothing is left to stop.
        {{S::stopping, E::spawn_failed}, {S::stopped}},
        {{S::stopping, E::ready}, {S::stopping}},
        {{S::stopping, E::exited}, {S::stopped}},
        {{S::stopping, E::timer}, {S::stopping, false, 9}},

        {{S::stopped, E::start}, {S::starting, true}},
        {{S::stopped, E::stop}, {S::stopped}},
        {{S::stopped, E::restart}, {S::starting, true}},
        {{S::stopped, E::spawned}, {S::stopped}},
        {{S::stopped, E::spawn_failed}, {S::stopped}},
        {{S::stopped, E::ready}, {S::stopped}},
        {{S::stopped, E::exited}, {S::stopped}},
        {{S::stopped, E::timer}, {S::stopped}},

        {{S::exited, E::start}, {S::starting, true}},
        {{S::exited, E::stop}, {S::stopped}},
        {{S::exited, E::restart}, {S::starting, true}},
        {{S::exited, E::spawned}, {S::exited}},
        {{S::exited, E::spawn_failed}, {S::exited}},
        {{S::exited, E::ready}, {S::exited}},
        {{S::exited, E::exited}, {S::exited}},
        {{S::exited, E::timer}, {S::exited}},

        {{S::fatal, E::start}, {S::starting, true}},
        {{S::fatal, E::stop}, {S::stopped}},
        {{S::fatal, E::restart}, {S::starting, true}},
        {{S::fatal, E::spawned}, {S::fatal}},
        {{S::fatal, E::spawn_failed}, {S::fatal}},
        {{S::fatal, E::ready}, {S::fatal}},
        {{S::fatal, E::exited}, {S::fatal}},
        {{S::fatal, E::timer}, {S::fatal}},

        // Without a watchdog, pings change nothing; an extend of 0 is ignored.
        {{S::starting, E::ping}, {S::starting}},
        {{S::running, E::ping}, {S::running}},
        {{S::backoff, E::ping}, {S::backoff}},
        {{S::stopping, E::ping}, {S::stopping}},
        {{S::stopped, E::ping}, {S::stopped}},
        {{S::exited, E::ping}, {S::exited}},
        {{S::fatal, E::ping}, {S::fatal}},
        {{S::starting, E::extend}, {S::starting}},
        {{S::running, E::extend}, {S::running}},
        {{S::backoff, E::extend}, {S::backoff}},
        {{S::stopping, E::extend}, {S::stopping}},
        {{S::stopped, E::extend}, {S::stopped}},
        {{S::exited, E::extend}, {S::exited}},
        {{S::fatal, E::extend}, {S::fatal}},
        // Only a running worker is replaced in place (its successor starts beside it).
        {{S::starting, E::replace}, {S::starting}},
        {{S::running, E::replace}, {S::starting, true}},
        {{S::backoff, E::replace}, {S::backoff}},
        {{S::stopping, E::replace}, {S::stopping}},
        {{S::stopped, E::replace}, {S::stopped}},
        {{S::exited, E::replace}, {S::exited}},
        {{S::fatal, E::replace}, {S::fatal}},
    };
    return t;
}

TEST(WorkerFsm, TableCoversEveryStateEventPair) {
    EXPECT_EQ(table().size(), std::size(kAllStates) * std::size(kAllEvents));
}

TEST(WorkerFsm, EveryStateEventPairMatchesTheTable) {
    const Policy p = base_policy();
    for (State s : kAllStates) {
        for (EventType e : kAllEvents) {
            SCOPED_TRACE(std::string(to_string(s)) + " + " + std::string(to_string(e)));
            Slot slot = slot_in(s);
            Actions a = step(slot, ev(e), p);
            const Expect& x = table().at({s, e});
            EXPECT_EQ(slot.state, x.next);
            EXPECT_EQ(a.spawn, x.spawn);
            EXPECT_EQ(a.signal, x.signal);
            EXPECT_EQ(a.arm, x.arm);
        }
    }
}

// Drives one slot through a sequence, with time moving forward.
struct Driver {
    Policy p = base_policy();
    Slot s;
    TimePoint now = TimePoint{} + 1h;
    Actions send(EventType t, std::optional<int> code = std::nullopt,
                 std::optional<int> sig = std::nullopt) {
        Event e{t, now, {}};
        e.exit.code = code;
        e.exit.signal = sig;
        return step(s, e, p);
    }
};

TEST(WorkerFsm, BackoffDoublesUpToTheCap) {
    config::Backoff b{100ms, 1s};
    EXPECT_EQ(backoff_delay(b, 1), 100ms);
    EXPECT_EQ(backoff_delay(b, 2), 200ms);
    EXPECT_EQ(backoff_delay(b, 3), 400ms);
    EXPECT_EQ(backoff_delay(b, 4), 800ms);
    EXPECT_EQ(backoff_delay(b, 5), 1s);
    EXPECT_EQ(backoff_delay(b, 500), 1s);
}

TEST(WorkerFsm, CrashLoopBacksOffThenGoesFatal) {
    Driver d;
    d.p.max_restarts = {3, 60s};
    d.send(EventType::start);
    std::vector<Millis> delays;
    for (int i = 0; i < 10 && d.s.state != State::fatal; ++i) {
        ASSERT_EQ(d.s.state, State::starting);
        d.send(EventType::spawned);
        Actions a = d.send(EventType::exited, 1);  // dies before start_timeout
        if (d.s.state == State::backoff) {
            delays.push_back(*a.arm);
            d.now += *a.arm;
            Actions t = d.send(EventType::timer);
            EXPECT_TRUE(t.spawn);
            EXPECT_TRUE(t.counted_restart);
        } else {
            EXPECT_TRUE(a.gave_up);
        }
    }
    EXPECT_EQ(d.s.state, State::fatal);
    EXPECT_EQ(delays, (std::vector<Millis>{100ms, 200ms, 400ms}));
}

TEST(WorkerFsm, RestartsOutsideTheWindowDoNotCount) {
    Driver d;
    d.p.max_restarts = {2, 10s};
    d.send(EventType::start);
    d.send(EventType::spawned);
    d.send(EventType::timer);  // running
    for (int i = 0; i < 20; ++i) {
        d.now += 6s;  // at most 2 crashes fall inside any 10 s window
        Actions a = d.send(EventType::exited, std::nullopt, 9);
        ASSERT_EQ(d.s.state, State::starting) << "crash " << i;
        EXPECT_TRUE(a.spawn);
        EXPECT_TRUE(a.counted_restart);
        d.send(EventType::spawned);
        d.send(EventType::timer);
    }
}

TEST(WorkerFsm, RunningWorkerThatDiesRestartsImmediately) {
    Driver d;
    d.send(EventType::start);
    d.send(EventType::spawned);
    d.send(EventType::timer);
    ASSERT_EQ(d.s.state, State::running);
    Actions a = d.send(EventType::exited, std::nullopt, 9);
    EXPECT_EQ(d.s.state, State::starting);
    EXPECT_TRUE(a.spawn);
    EXPECT_FALSE(a.arm);  // no backoff delay for a worker that had been running
}

TEST(WorkerFsm, OnFailureStopsAfterCleanExit) {
    Driver d;
    d.p.restart = config::RestartPolicy::on_failure;
    d.send(EventType::start);
    d.send(EventType::spawned);
    d.send(EventType::timer);
    Actions a = d.send(EventType::exited, 0);
    EXPECT_EQ(d.s.state, State::exited);
    EXPECT_TRUE(a.finished);
    d.send(EventType::start);
    d.send(EventType::spawned);
    d.send(EventType::timer);
    d.send(EventType::exited, 2);
    EXPECT_EQ(d.s.state, State::starting);
}

TEST(WorkerFsm, NeverRestartsEvenOnFailureOrEarlyExit) {
    Driver d;
    d.p.restart = config::RestartPolicy::never;
    d.send(EventType::start);
    d.send(EventType::spawned);
    Actions a = d.send(EventType::exited, 1);  // before start_timeout
    EXPECT_EQ(d.s.state, State::exited);
    EXPECT_TRUE(a.finished);
    EXPECT_FALSE(a.spawn);
}

TEST(WorkerFsm, StartTimeoutZeroIsRunningAtOnce) {
    Driver d;
    d.p.start_timeout = 0ms;
    d.send(EventType::start);
    Actions a = d.send(EventType::spawned);
    EXPECT_EQ(d.s.state, State::running);
    EXPECT_FALSE(a.arm);
}

TEST(WorkerFsm, StopEscalatesToKillExactlyOnce) {
    Driver d;
    d.send(EventType::start);
    d.send(EventType::spawned);
    d.send(EventType::timer);
    Actions a = d.send(EventType::stop);
    EXPECT_EQ(a.signal, 15);
    EXPECT_EQ(a.arm, 10s);
    Actions k = d.send(EventType::timer);
    EXPECT_EQ(k.signal, 9);
    Actions again = d.send(EventType::timer);
    EXPECT_FALSE(again.signal);
    d.send(EventType::exited, std::nullopt, 9);
    EXPECT_EQ(d.s.state, State::stopped);
    EXPECT_EQ(d.s.want, Want::down);
}

TEST(WorkerFsm, RestartStopsThenStartsWithoutCountingARestart) {
    Driver d;
    d.send(EventType::start);
    d.send(EventType::spawned);
    d.send(EventType::timer);
    d.send(EventType::restart);
    EXPECT_EQ(d.s.state, State::stopping);
    Actions a = d.send(EventType::exited, std::nullopt, 15);
    EXPECT_EQ(d.s.state, State::starting);
    EXPECT_TRUE(a.spawn);
    EXPECT_FALSE(a.counted_restart);
}

TEST(WorkerFsm, StartDuringStopStartsAfterTheExit) {
    Driver d;
    d.send(EventType::start);
    d.send(EventType::spawned);
    d.send(EventType::stop);
    d.send(EventType::start);
    EXPECT_EQ(d.s.state, State::stopping);
    Actions a = d.send(EventType::exited, 0);
    EXPECT_TRUE(a.spawn);
    EXPECT_EQ(d.s.state, State::starting);
}

TEST(WorkerFsm, StopDuringBackoffCancelsTheRetry) {
    Driver d;
    d.send(EventType::start);
    d.send(EventType::spawn_failed);
    ASSERT_EQ(d.s.state, State::backoff);
    Actions a = d.send(EventType::stop);
    EXPECT_EQ(d.s.state, State::stopped);
    EXPECT_TRUE(a.cancel_timer);
    EXPECT_FALSE(d.send(EventType::timer).spawn);  // the old timer is stale now
}

TEST(WorkerFsm, NotifyWithoutReadyFailsTheStart) {
    Driver d;
    d.p.ready_notify = true;
    d.send(EventType::start);
    Actions s = d.send(EventType::spawned);
    EXPECT_EQ(s.arm, 1s);
    Actions t = d.send(EventType::timer);  // no READY=1 in time
    EXPECT_EQ(d.s.state, State::stopping);
    EXPECT_EQ(t.signal, 15);
    d.send(EventType::exited, std::nullopt, 15);
    EXPECT_EQ(d.s.state, State::backoff);
    EXPECT_EQ(d.s.failed_starts, 1);
}

TEST(WorkerFsm, NotifyReadyMakesItRunning) {
    Driver d;
    d.p.ready_notify = true;
    d.send(EventType::start);
    d.send(EventType::spawned);
    EXPECT_EQ(d.s.state, State::starting);
    d.send(EventType::ready);
    EXPECT_EQ(d.s.state, State::running);
}

TEST(WorkerFsm, WatchdogPingsKeepItAliveAndSilenceAbortsIt) {
    Driver d;
    d.p.ready_notify = true;
    d.p.watchdog = 2s;
    d.send(EventType::start);
    d.send(EventType::spawned);
    Actions r = d.send(EventType::ready);
    EXPECT_EQ(r.arm, 2s) << "the watchdog starts with running";
    EXPECT_EQ(d.send(EventType::ping).arm, 2s);
    Actions t = d.send(EventType::timer);  // no ping in time
    EXPECT_EQ(d.s.state, State::stopping);
    EXPECT_EQ(t.signal, 6) << "SIGABRT, as systemd's WatchdogSignal";
    EXPECT_EQ(t.arm, 10s) << "then KILL after stop_timeout";
    Actions e = d.send(EventType::exited, std::nullopt, 6);
    EXPECT_EQ(d.s.state, State::starting) << "restarted by policy, like a crash";
    EXPECT_TRUE(e.spawn);
    EXPECT_TRUE(e.counted_restart);
}

TEST(WorkerFsm, WatchdogFailureUnderNeverRestartFinishes) {
    Driver d;
    d.p.ready_notify = true;
    d.p.watchdog = 2s;
    d.p.restart = config::RestartPolicy::never;
    d.send(EventType::start);
    d.send(EventType::spawned);
    d.send(EventType::ready);
    d.send(EventType::timer);
    Actions e = d.send(EventType::exited, std::nullopt, 6);
    EXPECT_EQ(d.s.state, State::exited);
    EXPECT_TRUE(e.finished);
}

TEST(WorkerFsm, ExtendTimeoutMovesTheStartDeadline) {
    Driver d;
    d.p.ready_notify = true;
    d.send(EventType::start);
    d.send(EventType::spawned);
    Event e{EventType::extend, d.now, {}, 30s};
    Actions a = step(d.s, e, d.p);
    EXPECT_EQ(a.arm, 30s);
    EXPECT_EQ(d.s.state, State::starting);
}

TEST(WorkerFsm, ReplaceStartsASuccessorWithoutSignallingTheCurrentProcess) {
    Driver d;
    d.send(EventType::start);
    d.send(EventType::spawned);
    d.send(EventType::timer);
    Actions a = d.send(EventType::replace);
    EXPECT_EQ(d.s.state, State::starting);
    EXPECT_TRUE(a.spawn);
    EXPECT_FALSE(a.signal) << "the old process keeps serving until the new one is up";
    EXPECT_FALSE(a.counted_restart);
}

TEST(WorkerFsm, OperatorStartClearsFatal) {
    Driver d;
    d.p.max_restarts = {0, 60s};
    d.send(EventType::start);
    d.send(EventType::spawn_failed);
    EXPECT_EQ(d.s.state, State::fatal);
    Actions a = d.send(EventType::start);
    EXPECT_TRUE(a.spawn);
    EXPECT_EQ(d.s.state, State::starting);
}

}  // namespace
