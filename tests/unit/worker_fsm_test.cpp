// The worker FSM: every (state, event) pair from a table, then the policies over sequences.
#include "daemon/supervise/worker_fsm.hpp"

#include <map>
#include <set>
#include <string_view>

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

// What one event does to a slot: the next state and every field of the actions. `flags` holds
// the boolean fields: S spawn, C cancel_timer, R counted_restart, G gave_up, F finished, and W
// when there is a reason (every change says why; a no-op says nothing).
struct Expect {
    State next;
    const char* flags = "";
    std::optional<int> signal{};
    std::optional<Millis> arm{};
};

using Key = std::pair<State, EventType>;

const std::map<Key, Expect>& table() {
    using E = EventType;
    using S = State;
    static const std::map<Key, Expect> t = {
        {{S::starting, E::start}, {S::starting}},
        {{S::starting, E::stop}, {S::stopping, "W", 15, 10s}},
        {{S::starting, E::restart}, {S::stopping, "W", 15, 10s}},
        {{S::starting, E::spawned}, {S::starting, "", {}, 1s}},
        {{S::starting, E::spawn_failed}, {S::backoff, "W", {}, 100ms}},
        {{S::starting, E::ready}, {S::running, "CW"}},
        {{S::starting, E::exited}, {S::backoff, "W", {}, 100ms}},
        {{S::starting, E::timer}, {S::running, "CW"}},
        {{S::starting, E::ping}, {S::starting}},
        {{S::starting, E::extend}, {S::starting}},  // an extend of 0 is ignored
        {{S::starting, E::replace}, {S::starting}},
        {{S::starting, E::reinstate}, {S::running, "CW"}},

        {{S::running, E::start}, {S::running}},
        {{S::running, E::stop}, {S::stopping, "W", 15, 10s}},
        {{S::running, E::restart}, {S::stopping, "W", 15, 10s}},
        {{S::running, E::spawned}, {S::running}},
        {{S::running, E::spawn_failed}, {S::running}},
        {{S::running, E::ready}, {S::running}},
        {{S::running, E::exited}, {S::starting, "SCRW"}},
        {{S::running, E::timer}, {S::running}},  // no watchdog
        {{S::running, E::ping}, {S::running}},
        {{S::running, E::extend}, {S::running}},
        // Only a running worker is replaced in place (its successor starts beside it).
        {{S::running, E::replace}, {S::starting, "SCW"}},
        {{S::running, E::reinstate}, {S::running}},

        {{S::backoff, E::start}, {S::starting, "SCW"}},
        {{S::backoff, E::stop}, {S::stopped, "CW"}},
        {{S::backoff, E::restart}, {S::starting, "SCW"}},
        {{S::backoff, E::spawned}, {S::backoff}},
        {{S::backoff, E::spawn_failed}, {S::backoff}},
        {{S::backoff, E::ready}, {S::backoff}},
        {{S::backoff, E::exited}, {S::backoff}},
        {{S::backoff, E::timer}, {S::starting, "SCRW"}},
        {{S::backoff, E::ping}, {S::backoff}},
        {{S::backoff, E::extend}, {S::backoff}},
        {{S::backoff, E::replace}, {S::backoff}},
        {{S::backoff, E::reinstate}, {S::running, "CW"}},

        {{S::stopping, E::start}, {S::stopping}},
        {{S::stopping, E::stop}, {S::stopping}},
        {{S::stopping, E::restart}, {S::stopping}},
        {{S::stopping, E::spawned}, {S::stopping}},
        // A stop that came between a batched spawn and its failure: nothing is left to stop.
        {{S::stopping, E::spawn_failed}, {S::stopped, "CW"}},
        {{S::stopping, E::ready}, {S::stopping}},
        {{S::stopping, E::exited}, {S::stopped, "CW"}},
        {{S::stopping, E::timer}, {S::stopping, "W", 9}},
        {{S::stopping, E::ping}, {S::stopping}},
        {{S::stopping, E::extend}, {S::stopping}},
        {{S::stopping, E::replace}, {S::stopping}},
        {{S::stopping, E::reinstate}, {S::stopping}},

        {{S::stopped, E::start}, {S::starting, "SCW"}},
        {{S::stopped, E::stop}, {S::stopped}},
        {{S::stopped, E::restart}, {S::starting, "SCW"}},
        {{S::stopped, E::spawned}, {S::stopped}},
        {{S::stopped, E::spawn_failed}, {S::stopped}},
        {{S::stopped, E::ready}, {S::stopped}},
        {{S::stopped, E::exited}, {S::stopped}},
        {{S::stopped, E::timer}, {S::stopped}},
        {{S::stopped, E::ping}, {S::stopped}},
        {{S::stopped, E::extend}, {S::stopped}},
        {{S::stopped, E::replace}, {S::stopped}},
        {{S::stopped, E::reinstate}, {S::stopped}},

        {{S::exited, E::start}, {S::starting, "SCW"}},
        {{S::exited, E::stop}, {S::stopped, "CW"}},
        {{S::exited, E::restart}, {S::starting, "SCW"}},
        {{S::exited, E::spawned}, {S::exited}},
        {{S::exited, E::spawn_failed}, {S::exited}},
        {{S::exited, E::ready}, {S::exited}},
        {{S::exited, E::exited}, {S::exited}},
        {{S::exited, E::timer}, {S::exited}},
        {{S::exited, E::ping}, {S::exited}},
        {{S::exited, E::extend}, {S::exited}},
        {{S::exited, E::replace}, {S::exited}},
        {{S::exited, E::reinstate}, {S::running, "CW"}},

        {{S::fatal, E::start}, {S::starting, "SCW"}},
        {{S::fatal, E::stop}, {S::stopped, "CW"}},
        {{S::fatal, E::restart}, {S::starting, "SCW"}},
        {{S::fatal, E::spawned}, {S::fatal}},
        {{S::fatal, E::spawn_failed}, {S::fatal}},
        {{S::fatal, E::ready}, {S::fatal}},
        {{S::fatal, E::exited}, {S::fatal}},
        {{S::fatal, E::timer}, {S::fatal}},
        {{S::fatal, E::ping}, {S::fatal}},
        {{S::fatal, E::extend}, {S::fatal}},
        {{S::fatal, E::replace}, {S::fatal}},
        {{S::fatal, E::reinstate}, {S::running, "CW"}},
    };
    return t;
}

bool has(const char* flags, char f) {
    return std::string_view(flags).find(f) != std::string_view::npos;
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
            EXPECT_EQ(a.spawn, has(x.flags, 'S'));
            EXPECT_EQ(a.signal, x.signal);
            EXPECT_EQ(a.arm, x.arm);
            EXPECT_EQ(a.cancel_timer, has(x.flags, 'C'));
            EXPECT_EQ(a.counted_restart, has(x.flags, 'R'));
            EXPECT_EQ(a.gave_up, has(x.flags, 'G'));
            EXPECT_EQ(a.finished, has(x.flags, 'F'));
            EXPECT_EQ(!a.reason.empty(), has(x.flags, 'W')) << a.reason;
            // Every change of state is one the FSM's own graph allows.
            if (slot.state != s) {
                EXPECT_TRUE(transition_allowed(s, slot.state));
            }
        }
    }
}

// The graph is no wider than the table needs: every allowed change is made by some event in
// some policy (the table's base policy, or the policy branches below).
TEST(WorkerFsm, EveryAllowedTransitionIsReachable) {
    std::set<std::pair<State, State>> made;
    for (const auto& [k, x] : table())
        if (x.next != k.first) made.insert({k.first, x.next});
    // Reached only under other policies or slot histories (tested below).
    made.insert({State::starting, State::fatal});     // max_restarts exhausted at start
    made.insert({State::starting, State::exited});    // restart: never
    made.insert({State::running, State::fatal});      // max_restarts exhausted
    made.insert({State::running, State::exited});     // restart: on-failure, exit 0
    made.insert({State::stopping, State::starting});  // restart requested
    made.insert({State::stopping, State::backoff});   // no READY=1, want up
    made.insert({State::stopping, State::fatal});     // watchdog, max_restarts exhausted
    made.insert({State::stopping, State::exited});    // watchdog under restart: never
    for (State a : kAllStates)
        for (State b : kAllStates)
            if (a != b) {
                EXPECT_EQ(transition_allowed(a, b), made.count({a, b}) == 1)
                    << to_string(a) << " -> " << to_string(b);
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

// Stopped before its spawn's result came (a batch, a template's fork): it never ran.
TEST(WorkerFsm, AStopBeforeTheSpawnsResultSaysItNeverStarted) {
    Driver d;
    d.send(EventType::start);
    d.send(EventType::stop);
    EXPECT_EQ(d.s.state, State::stopping);
    Actions a = d.send(EventType::spawn_failed);
    EXPECT_EQ(d.s.state, State::stopped);
    EXPECT_EQ(a.reason, "stopped before it started");
}

// ---- the branches that depend on policy or on why a slot is stopping ----

TEST(WorkerFsm, OnFailureCleanExitBeforeStartTimeoutFinishes) {
    Driver d;
    d.p.restart = config::RestartPolicy::on_failure;
    d.send(EventType::start);
    d.send(EventType::spawned);
    Actions a = d.send(EventType::exited, 0);
    EXPECT_EQ(d.s.state, State::exited);
    EXPECT_TRUE(a.finished);
    d.send(EventType::start);
    d.send(EventType::spawned);
    Actions b = d.send(EventType::exited, 3);
    EXPECT_EQ(d.s.state, State::backoff) << "a failure before start_timeout is a failed start";
    EXPECT_EQ(b.arm, 100ms);
}

TEST(WorkerFsm, NeverTreatsASpawnFailureAsFatal) {
    Driver d;
    d.p.restart = config::RestartPolicy::never;
    d.send(EventType::start);
    Actions a = d.send(EventType::spawn_failed);
    EXPECT_EQ(d.s.state, State::fatal);
    EXPECT_TRUE(a.gave_up);
    EXPECT_FALSE(a.arm);
}

TEST(WorkerFsm, MaxRestartsExhaustedWhileRunningGoesFatal) {
    Driver d;
    d.p.max_restarts = {1, 60s};
    d.send(EventType::start);
    d.send(EventType::spawned);
    d.send(EventType::timer);
    EXPECT_TRUE(d.send(EventType::exited, 1).counted_restart);
    d.send(EventType::spawned);
    d.send(EventType::timer);
    Actions a = d.send(EventType::exited, 1);
    EXPECT_EQ(d.s.state, State::fatal);
    EXPECT_TRUE(a.gave_up);
    EXPECT_FALSE(a.spawn);
}

TEST(WorkerFsm, WatchdogFailureWithRestartsExhaustedGoesFatal) {
    Driver d;
    d.p.watchdog = 2s;
    d.p.max_restarts = {0, 60s};
    d.send(EventType::start);
    d.send(EventType::spawned);
    d.send(EventType::timer);  // up for start_timeout
    d.send(EventType::timer);  // no WATCHDOG=1
    ASSERT_EQ(d.s.state, State::stopping);
    EXPECT_EQ(d.s.stop_cause, StopCause::watchdog);
    Actions a = d.send(EventType::exited, std::nullopt, 6);
    EXPECT_EQ(d.s.state, State::fatal);
    EXPECT_TRUE(a.gave_up);
}

// A failed liveness probe stops the worker gracefully; its exit, even a clean one after the
// TERM, counts like a crash: restarted and counted, and fatal once max_restarts is spent.
TEST(WorkerFsm, ALivenessRestartCountsLikeACrash) {
    Driver d;
    d.p.restart = config::RestartPolicy::on_failure;
    d.p.max_restarts = {1, 60s};
    auto unhealthy = [&] {
        Event e{EventType::restart, d.now, {}};
        e.unhealthy = true;
        return step(d.s, e, d.p);
    };
    d.send(EventType::start);
    d.send(EventType::spawned);
    d.send(EventType::timer);  // up for start_timeout
    ASSERT_EQ(d.s.state, State::running);
    Actions stop = unhealthy();
    EXPECT_EQ(d.s.state, State::stopping);
    EXPECT_EQ(d.s.stop_cause, StopCause::liveness);
    EXPECT_EQ(stop.signal, 15) << "graceful: the stop signal, not an abort";
    Actions again = d.send(EventType::exited, 0);
    EXPECT_EQ(d.s.state, State::starting) << "exit 0 after the TERM is no success of its own";
    EXPECT_TRUE(again.spawn);
    EXPECT_TRUE(again.counted_restart);
    d.send(EventType::spawned);
    d.send(EventType::timer);
    ASSERT_EQ(d.s.state, State::running);
    unhealthy();
    Actions last = d.send(EventType::exited, 0);
    EXPECT_EQ(d.s.state, State::fatal) << "max_restarts 1 is spent";
    EXPECT_TRUE(last.gave_up);
    // Only a running worker is unhealthy: a starting one is a plain restart.
    Driver e;
    e.send(EventType::start);
    e.send(EventType::spawned);
    Event r{EventType::restart, e.now, {}};
    r.unhealthy = true;
    step(e.s, r, e.p);
    EXPECT_EQ(e.s.stop_cause, StopCause::requested);
}

TEST(WorkerFsm, AnOperatorStopDuringAFailedStartEndsStopped) {
    Driver d;
    d.p.ready_notify = true;
    d.send(EventType::start);
    d.send(EventType::spawned);
    d.send(EventType::timer);  // no READY=1
    ASSERT_EQ(d.s.stop_cause, StopCause::start_failed);
    d.send(EventType::stop);
    EXPECT_EQ(d.s.stop_cause, StopCause::requested);
    Actions a = d.send(EventType::exited, std::nullopt, 15);
    EXPECT_EQ(d.s.state, State::stopped);
    EXPECT_EQ(d.s.failed_starts, 0) << "the stop, not the start, ended it";
    EXPECT_FALSE(a.arm);
}

TEST(WorkerFsm, AStartDuringAFailedStartsStopBacksOff) {
    Driver d;
    d.p.ready_notify = true;
    d.send(EventType::start);
    d.send(EventType::spawned);
    d.send(EventType::timer);  // no READY=1: stopping, and still wanted up
    d.send(EventType::start);
    d.send(EventType::exited, std::nullopt, 15);
    EXPECT_EQ(d.s.state, State::backoff) << "the failed start still counts";
    EXPECT_EQ(d.s.failed_starts, 1);
}

TEST(WorkerFsm, ARestartDuringAWatchdogStopCountsTheCrash) {
    Driver d;
    d.p.watchdog = 2s;
    d.send(EventType::start);
    d.send(EventType::spawned);
    d.send(EventType::timer);
    d.send(EventType::timer);  // no WATCHDOG=1
    d.send(EventType::restart);
    Actions a = d.send(EventType::exited, std::nullopt, 6);
    EXPECT_EQ(d.s.state, State::starting);
    EXPECT_TRUE(a.counted_restart);
}

TEST(WorkerFsm, ReinstateMakesTheSlotRunningAgainWithItsWatchdog) {
    for (State from : {State::starting, State::backoff, State::fatal, State::exited}) {
        SCOPED_TRACE(std::string(to_string(from)));
        Driver d;
        d.p.watchdog = 2s;
        d.s = slot_in(from);
        d.s.want = Want::down;
        d.s.failed_starts = 3;
        Actions a = d.send(EventType::reinstate);
        EXPECT_EQ(d.s.state, State::running);
        EXPECT_EQ(d.s.want, Want::up);
        EXPECT_EQ(d.s.failed_starts, 0);
        EXPECT_EQ(a.arm, 2s) << "the old process's watchdog runs again";
        EXPECT_FALSE(a.spawn);
        EXPECT_FALSE(a.signal);
        EXPECT_FALSE(a.counted_restart);
    }
}

TEST(WorkerFsm, ForgetFailuresResetsTheBackoffAndTheWindow) {
    Driver d;
    d.p.max_restarts = {2, 60s};
    d.send(EventType::start);
    d.send(EventType::spawn_failed);
    d.send(EventType::timer);
    d.send(EventType::spawn_failed);
    ASSERT_EQ(d.s.failed_starts, 2);
    forget_failures(d.s);
    EXPECT_EQ(d.s.failed_starts, 0);
    EXPECT_TRUE(d.s.recent_restarts.empty());
    d.send(EventType::timer);
    Actions a = d.send(EventType::spawn_failed);
    EXPECT_EQ(d.s.state, State::backoff) << "the window starts over: not fatal yet";
    EXPECT_EQ(a.arm, 100ms) << "and so does the backoff exponent";
}

}  // namespace
