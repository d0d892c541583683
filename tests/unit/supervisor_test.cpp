// The supervisor's converge loop over a fake Sys and a manual clock: no real processes.
#include "daemon/supervise/supervisor.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include "tests/support/fake_sys.hpp"

using namespace cow;
using namespace std::chrono_literals;
using fsm::State;

namespace {

using test::FakeSys;

std::shared_ptr<const config::Config> make_config(int workers, Millis start_timeout = 1s) {
    auto cfg = std::make_shared<config::Config>();
    config::PoolConfig p;
    p.name = "web";
    p.command = {"/bin/true"};
    p.workers = workers;
    p.start_timeout = start_timeout;
    p.max_restarts = {3, 60s};
    p.stop_timeout = 5s;
    cfg->pools.push_back(p);
    return cfg;
}

int exited(int code) {
    return W_EXITCODE(code, 0);
}
int killed(int sig) {
    return W_EXITCODE(0, sig);
}

struct Fixture : ::testing::Test {
    FakeSys sys;
    std::unique_ptr<Supervisor> sup;
    void boot(int workers, Millis start_timeout = 1s) {
        sup = std::make_unique<Supervisor>(sys, make_config(workers, start_timeout));
        sup->boot();
    }
    Worker& w(int i) { return *sup->pools()[0]->workers[static_cast<std::size_t>(i)]; }
    void reap(pid_t pid, int status) {
        sup->on_reaped(pid, status);
        sup->after_reap();
        sup->settle();
    }
    void advance(Millis d) {
        sys.t += d;
        sup->on_timers();
        sup->settle();
    }
};

TEST_F(Fixture, BootSpawnsEveryWorkerWithItsIdentity) {
    boot(4);
    ASSERT_EQ(sys.spawned_env.size(), 4u);
    for (int i = 0; i < 4; ++i) {
        EXPECT_EQ(w(i).slot.state, State::starting);
        EXPECT_GT(w(i).pid, 0);
        const auto& env = sys.spawned_env[static_cast<std::size_t>(i)];
        EXPECT_NE(std::find(env.begin(), env.end(), "COWHERD_POOL=web"), env.end());
        EXPECT_NE(std::find(env.begin(), env.end(), "COWHERD_WORKER=" + std::to_string(i)),
                  env.end());
    }
    advance(1s);
    for (int i = 0; i < 4; ++i)
        EXPECT_EQ(w(i).slot.state, State::running);
}

// Observers hear of a batch only once it is over: an essential pool's failed spawn is reported
// when every batch-mate's spawn is on record, never between two of them.
TEST_F(Fixture, ObserversRunOnlyAfterTheBatch) {
    auto cfg = std::make_shared<config::Config>(*make_config(6, 0s));
    cfg->pools[0].essential = true;
    cfg->pools[0].max_restarts = {0, 60s};
    sys.fail_calls = {1};
    sup = std::make_unique<Supervisor>(sys, cfg);
    int essential_calls = 0, pids_on_record = -1;
    std::vector<std::pair<State, State>> seen;
    sup->on_essential_exit = [&](int, const std::string&) {
        ++essential_calls;
        pids_on_record = 0;
        for (int i = 0; i < 6; ++i)
            pids_on_record += w(i).pid > 0;
    };
    sup->on_transition = [&](const Worker&, State from, State to, const fsm::Actions&) {
        seen.emplace_back(from, to);
    };
    sup->set_start_slice(64);
    sup->boot();
    sup->drain_starts(64);
    EXPECT_EQ(essential_calls, 0) << "called inside the batch";
    EXPECT_TRUE(seen.empty()) << "called inside the batch";
    sup->settle();
    EXPECT_EQ(essential_calls, 1);
    EXPECT_EQ(pids_on_record, 5) << "every spawn but the failed one is on record";
    // stopped -> starting for all six, starting -> running for five, starting -> fatal once.
    EXPECT_EQ(std::count(seen.begin(), seen.end(), std::pair{State::stopped, State::starting}), 6);
    EXPECT_EQ(std::count(seen.begin(), seen.end(), std::pair{State::starting, State::running}), 5);
    EXPECT_EQ(std::count(seen.begin(), seen.end(), std::pair{State::starting, State::fatal}), 1);
}

// Startup spawns in batches; one failure of an essential pool shuts everything down while the
// rest of its batch is not yet on record. Every batch-mate must still be stopped for real:
// the ones that started get the stop signal, the ones that failed end stopped, none hangs.
TEST_F(Fixture, AShutdownInTheMiddleOfASpawnBatchStopsEveryBatchMate) {
    auto cfg = std::make_shared<config::Config>(*make_config(6, 0s));
    cfg->pools[0].essential = true;
    cfg->pools[0].max_restarts = {0, 60s};
    sys.fail_calls = {1, 3};
    sup = std::make_unique<Supervisor>(sys, cfg);
    sup->on_essential_exit = [&](int, const std::string&) { sup->begin_shutdown(); };
    sup->set_start_slice(64);
    sup->boot();
    sup->drain_starts(64);
    sup->settle();
    EXPECT_TRUE(sup->shutting_down());
    for (int i : {1, 3}) {
        SCOPED_TRACE("failed worker " + std::to_string(i));
        EXPECT_NE(w(i).slot.state, State::stopping) << "a stop with nothing to wait for";
        EXPECT_EQ(w(i).pid, 0);
    }
    for (int i : {0, 2, 4, 5}) {
        SCOPED_TRACE("started worker " + std::to_string(i));
        ASSERT_GT(w(i).pid, 0);
        EXPECT_EQ(w(i).slot.state, State::stopping);
        EXPECT_GE(sys.kills_of(w(i).pid, SIGTERM), 1) << "its stop signal was sent";
        reap(w(i).pid, killed(SIGTERM));
    }
    EXPECT_TRUE(sup->quiescent());
}

TEST_F(Fixture, ARunningWorkerThatIsKilledIsReplacedAndCounted) {
    boot(2);
    advance(1s);
    pid_t old = w(1).pid;
    reap(old, killed(9));
    EXPECT_EQ(w(1).slot.state, State::starting);
    EXPECT_NE(w(1).pid, old);
    EXPECT_EQ(w(1).restarts, 1u);
    EXPECT_EQ(w(1).generation, 2u);
    ASSERT_TRUE(w(1).last_exit);
    EXPECT_EQ(w(1).last_exit->signal, 9);
    EXPECT_EQ(w(0).restarts, 0u);
}

TEST_F(Fixture, SpawnFailureIsReportedThenBacksOffToFatal) {
    sys.fail_with = "exec /nope: No such file or directory";
    boot(1);
    EXPECT_EQ(w(0).slot.state, State::backoff);
    EXPECT_EQ(w(0).last_error, "exec /nope: No such file or directory");
    for (int i = 0; i < 10 && w(0).slot.state != State::fatal; ++i)
        advance(1s);
    EXPECT_EQ(w(0).slot.state, State::fatal);
    EXPECT_EQ(w(0).pid, 0);
}

TEST_F(Fixture, StopSignalsTheGroupThenKillsAfterTheTimeout) {
    boot(1);
    advance(1s);
    pid_t pid = w(0).pid;
    auto targets = std::get<std::vector<Worker*>>(sup->resolve("web.0"));
    sup->command(targets, fsm::EventType::stop);
    EXPECT_EQ(sys.kills_of(pid, SIGTERM), 1);
    EXPECT_EQ(sys.kills_of(pid, SIGCONT), 1);
    advance(4s);
    EXPECT_EQ(sys.kills_of(pid, SIGKILL), 0);
    advance(1s);
    EXPECT_EQ(sys.kills_of(pid, SIGKILL), 1);
    advance(10s);
    EXPECT_EQ(sys.kills_of(pid, SIGKILL), 1);  // exactly once
    reap(pid, killed(9));
    EXPECT_EQ(w(0).slot.state, State::stopped);
    EXPECT_EQ(w(0).restarts, 0u);
}

TEST_F(Fixture, WithoutACgroupAStopWaitsForEverySweptDescendant) {
    // Two workers each left a setsid grandchild outside every group we know; both workers die
    // in one batch, so only the sweep at stop time tells whose grandchild is whose.
    boot(2);
    advance(1s);
    const pid_t self = ::getpid();
    sys.tree = {{501, 11}};
    sup->command({&w(0)}, fsm::EventType::stop);
    sys.tree = {{502, 12}};
    sup->command({&w(1)}, fsm::EventType::stop);
    sys.infos[501] = ProcInfo{501, 77, 501, 501, 11, "forker", 'S', ""};
    sys.infos[502] = ProcInfo{502, 78, 502, 502, 12, "forker", 'S', ""};
    sup->on_reaped(w(0).pid, killed(SIGTERM));
    sup->on_reaped(w(1).pid, killed(SIGTERM));
    sup->after_reap();
    sup->settle();
    // Their grandchildren live on (not yet ours): the stop is not over.
    EXPECT_EQ(w(0).slot.state, State::stopping);
    EXPECT_EQ(w(1).slot.state, State::stopping);
    // 501's parent dies and we reap it; 501 reparents to us: adopted as w(0)'s, not "unknown".
    sys.infos[501].ppid = self;
    sys.extra_children = {501};
    reap(500, exited(0));
    ASSERT_EQ(sup->orphans().size(), 1u);
    EXPECT_EQ(sup->orphans().at(501).from, "web.0");
    EXPECT_EQ(w(0).slot.state, State::stopping);
    // 502 dies where its parent reaps it; 501 dies and we reap it: both stops are over.
    sys.infos.erase(502);
    sys.extra_children.clear();
    sys.infos.erase(501);
    reap(501, killed(SIGTERM));
    EXPECT_EQ(w(0).slot.state, State::stopped);
    EXPECT_EQ(w(1).slot.state, State::stopped);
    EXPECT_EQ(w(0).restarts + w(1).restarts, 0u);
}

TEST_F(Fixture, ASweptPidReusedByAStrangerDoesNotHoldTheStop) {
    boot(1);
    advance(1s);
    sys.tree = {{601, 21}};
    sup->command({&w(0)}, fsm::EventType::stop);
    sys.infos[601] = ProcInfo{601, 1, 601, 601, 99, "stranger", 'S', ""};  // other start time
    reap(w(0).pid, killed(SIGTERM));
    EXPECT_EQ(w(0).slot.state, State::stopped);
}

TEST_F(Fixture, NoSignalReachesAReapedWorker) {
    boot(1);
    advance(1s);
    pid_t pid = w(0).pid;
    sup->command({&w(0)}, fsm::EventType::stop);
    reap(pid, exited(0));
    sys.kills.clear();
    EXPECT_EQ(sup->signal({&w(0)}, SIGHUP, false), 0);
    advance(60s);
    EXPECT_TRUE(sys.kills.empty());
}

TEST_F(Fixture, UnknownPidsChangeNothing) {
    boot(1);
    auto before = w(0).slot.state;
    reap(99999, exited(0));
    EXPECT_EQ(w(0).slot.state, before);
    EXPECT_EQ(w(0).restarts, 0u);
}

TEST_F(Fixture, ShutdownIsQuiescentOnceEveryWorkerIsReaped) {
    boot(3);
    advance(1s);
    sup->begin_shutdown();
    EXPECT_FALSE(sup->quiescent());
    for (int i = 0; i < 3; ++i)
        reap(w(i).pid, exited(0));
    EXPECT_TRUE(sup->quiescent());
    for (int i = 0; i < 3; ++i)
        EXPECT_EQ(w(i).slot.state, State::stopped);
}

TEST_F(Fixture, ResolveTargets) {
    boot(3);
    EXPECT_EQ(std::get<std::vector<Worker*>>(sup->resolve("all")).size(), 3u);
    EXPECT_EQ(std::get<std::vector<Worker*>>(sup->resolve("web")).size(), 3u);
    EXPECT_EQ(std::get<std::vector<Worker*>>(sup->resolve("web.2"))[0]->index, 2);
    EXPECT_EQ(std::get<Supervisor::TargetError>(sup->resolve("web.3")).code, "no_such_worker");
    EXPECT_EQ(std::get<Supervisor::TargetError>(sup->resolve("db")).code, "no_such_pool");
    EXPECT_EQ(std::get<Supervisor::TargetError>(sup->resolve("a b")).code, "invalid_argument");
}

TEST_F(Fixture, WaitersFinishWhenDoneOrAtTheirDeadline) {
    boot(1);
    int done = 0, timed_out = 0;
    sup->add_waiter({[&] { return w(0).slot.state == State::running; }, sys.t + 10s,
                     [&](bool to) { (to ? timed_out : done)++; }});
    sup->add_waiter(
        {[] { return false; }, sys.t + 2s, [&](bool to) { (to ? timed_out : done)++; }});
    EXPECT_EQ(sup->next_deadline(), sys.t + 1s);  // the start timer comes first
    advance(1s);
    EXPECT_EQ(done, 1);
    EXPECT_EQ(timed_out, 0);
    advance(1s);
    EXPECT_EQ(timed_out, 1);
}

}  // namespace
