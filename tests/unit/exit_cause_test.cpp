#include "daemon/supervise/exit_cause.hpp"

#include <csignal>

#include <gtest/gtest.h>

#include "daemon/os/oom.hpp"

using namespace cow;

namespace {
ExitInfo code(int c) {
    ExitInfo i;
    i.code = c;
    return i;
}
ExitInfo killed(int sig, bool core = false) {
    ExitInfo i;
    i.signal = sig;
    i.core_dumped = core;
    return i;
}
}  // namespace

TEST(ExitCause, AnExitCodeIsExitedUnlessCowherdAskedItToStop) {
    auto f = classify_exit(code(3), {}, {});
    EXPECT_EQ(f.cause, ExitCause::exited);
    EXPECT_EQ(describe(code(3), f), "exited with status 3");
    // A graceful exit after cowherd's TERM: cowherd ended it, and says why.
    f = classify_exit(code(0), {{SIGTERM, "liveness probe: HTTP 503"}}, {});
    EXPECT_EQ(f.cause, ExitCause::killed_by_cowherd);
    EXPECT_EQ(f.detail, "liveness probe: HTTP 503");
    EXPECT_EQ(describe(code(0), f),
              "exited with status 0: killed_by_cowherd (liveness probe: HTTP 503)");
    // A signal an operator passed on is not a request to stop.
    f = classify_exit(code(3), {{SIGHUP, "cowctl signal"}}, {});
    EXPECT_EQ(f.cause, ExitCause::exited);
}

TEST(ExitCause, ASignalCowherdSentIsKilledByCowherdWithItsReason) {
    auto f = classify_exit(killed(SIGTERM), {{SIGTERM, "recycle: private 9 MiB > 8 MiB"}}, {});
    EXPECT_EQ(f.cause, ExitCause::killed_by_cowherd);
    EXPECT_EQ(f.detail, "recycle: private 9 MiB > 8 MiB");
}

TEST(ExitCause, TheEscalationsKillNamesTheStopItEnded) {
    auto f = classify_exit(killed(SIGKILL), {{SIGTERM, "watchdog"}, {SIGKILL, "watchdog"}},
                           {.machine = true});
    EXPECT_EQ(f.cause, ExitCause::killed_by_cowherd) << "our KILL, even if an OOM kill happened";
    EXPECT_EQ(f.detail, "watchdog");
}

TEST(ExitCause, AKillNobodyHereSentIsExternalUnlessTheKernelCountedAnOomKill) {
    EXPECT_EQ(classify_exit(killed(SIGKILL), {}, {}).cause, ExitCause::killed_externally);
    EXPECT_EQ(classify_exit(killed(SIGKILL), {{SIGTERM, "stop"}}, {}).cause,
              ExitCause::killed_externally)
        << "we sent TERM; the KILL came from elsewhere";
    auto worker = classify_exit(killed(SIGKILL), {}, {.worker = true});
    EXPECT_EQ(worker.cause, ExitCause::oom_killed);
    EXPECT_NE(worker.detail.find("worker's cgroup"), std::string::npos);
    EXPECT_EQ(classify_exit(killed(SIGKILL), {}, {.container = true}).cause, ExitCause::oom_killed);
    auto machine = classify_exit(killed(SIGKILL), {}, {.machine = true});
    EXPECT_EQ(machine.cause, ExitCause::oom_killed);
    EXPECT_EQ(machine.detail.rfind("likely", 0), 0u) << machine.detail;
}

TEST(ExitCause, FaultSignalsAreCrashesAndOthersAreExternal) {
    for (int sig : {SIGSEGV, SIGABRT, SIGBUS, SIGILL, SIGFPE})
        EXPECT_EQ(classify_exit(killed(sig, true), {}, {}).cause, ExitCause::crashed) << sig;
    for (int sig : {SIGTERM, SIGINT, SIGHUP, SIGUSR1})
        EXPECT_EQ(classify_exit(killed(sig), {}, {}).cause, ExitCause::killed_externally) << sig;
    EXPECT_EQ(classify_exit(killed(SIGSEGV), {}, {.machine = true}).cause, ExitCause::crashed)
        << "OOM evidence only explains a SIGKILL";
}

TEST(ExitCause, DescribeAddsTheCauseToTheWaitStatus) {
    auto f = classify_exit(killed(SIGKILL), {}, {});
    EXPECT_EQ(describe(killed(SIGKILL), f),
              "killed by signal 9 (KILL): killed_externally (a signal cowherd did not send)");
}

TEST(ExitCause, TheKernelsOwnRecordOfTheKillComesFirst) {
    OomEvidence e{.kernel = "Out of memory: Killed process 7 (x)", .machine = true};
    auto f = classify_exit(killed(SIGKILL), {}, e);
    EXPECT_EQ(f.cause, ExitCause::oom_killed);
    EXPECT_EQ(f.detail, "Out of memory: Killed process 7 (x)");
}

TEST(OomKmsg, FindsThePidAndWhatTheKillWasAbout) {
    auto k = oom::parse_kmsg_kill(
        "3,618,27820357909,-;Memory cgroup out of memory: Killed process 27657 (memhog) "
        "total-vm:267804kB, anon-rss:32512kB\n SUBSYSTEM=memory\n");
    ASSERT_TRUE(k);
    EXPECT_EQ(k->first, 27657);
    EXPECT_EQ(k->second, "Memory cgroup out of memory: Killed process 27657 (memhog)");
    EXPECT_FALSE(oom::parse_kmsg_kill("6,1,2,-;eth0: link up"));
    EXPECT_FALSE(oom::parse_kmsg_kill("3,1,2,-;Killed process x (y)"));
    EXPECT_FALSE(oom::parse_kmsg_kill("no semicolon Killed process 5 (y)"));
}

TEST(OomCounters, ParsesTheKernelsThreeFormats) {
    EXPECT_EQ(oom::parse_oom_kill("low 0\nhigh 0\nmax 4\noom 2\noom_kill 2\noom_group_kill 0\n"),
              2u);
    EXPECT_EQ(oom::parse_oom_kill("oom_kill_disable 0\nunder_oom 0\noom_kill 17\n"), 17u);
    EXPECT_EQ(oom::parse_oom_kill("pgfault 5\noom_kill 0"), 0u);
    EXPECT_EQ(oom::parse_oom_kill("oom_kill_disable 0\nunder_oom 0\n"), std::nullopt);
    EXPECT_EQ(oom::parse_oom_kill("oom_kill x1\n"), std::nullopt);
    EXPECT_EQ(oom::parse_oom_kill(""), std::nullopt);
}
