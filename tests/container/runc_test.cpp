// cowherd as PID 1 of the shipped image, under runc: what an orchestrator sees (the exit
// status, the time a stop takes) and what a pod's PID 1 owes (reaping, signals, cowctl).
// runc here runs with no cgroup of cowherd's own to write, so these also cover the group
// kill mode that most Kubernetes pods get.
#include <sys/stat.h>

#include "tests/container/runc_fixture.hpp"

using namespace cow::test;
using namespace std::chrono_literals;

namespace {

using Clock = std::chrono::steady_clock;

TEST_F(RuncContainer, TermStopsDependentsFirstAndExitsZero) {
    build(R"(daemon:
  shutdown_timeout: 10s
pools:
  db:
    command: [/bin/sleep, "3600"]
  web:
    command: [/bin/sleep, "3600"]
    workers: 3
    depends_on: [db]
)");
    start();
    ASSERT_TRUE(WaitFor(
        [&] {
            return exec({"/usr/bin/cowctl", "health"}).code == 0;
        },
        20s))
        << slurp(log);
    // Read-only cgroups in the container: the fallback a pod gets.
    EXPECT_TRUE(logged("kill mode: process group")) << slurp(log);

    const auto asked = Clock::now();
    ASSERT_EQ(run({"runc", "kill", id, "TERM"}).code, 0);
    ASSERT_TRUE(wait_exit(10s)) << "no exit within shutdown_timeout\n" << slurp(log);
    EXPECT_LT(Clock::now() - asked, 10s);
    EXPECT_EQ(exit_status, 0) << slurp(log);
    const auto text = slurp(log);
    EXPECT_NE(text.find("all workers stopped; exiting with status 0"), std::string::npos) << text;
    // Dependents first: every web worker was gone before db was asked to stop.
    const auto db_stop = text.find("db.0 pid");
    const auto db_stopping = text.find("running -> stopping", db_stop);
    ASSERT_NE(db_stopping, std::string::npos) << text;
    for (int i = 0; i < 3; ++i) {
        auto w = text.find("web." + std::to_string(i) + " pid", text.find("shutting down"));
        auto stopped = text.find("-> stopped", w);
        ASSERT_NE(stopped, std::string::npos) << text;
        EXPECT_LT(stopped, text.find("db.0 pid", text.find("shutting down"))) << text;
    }
}

TEST_F(RuncContainer, AnEssentialPoolsExitCodeIsTheContainers) {
    build(R"(pools:
  idle:
    command: [/bin/sleep, "3600"]
  job:
    command: [/bin/sh, -c, "exit 3"]
    essential: true
    restart: never
    start_timeout: 0s
)");
    start();
    ASSERT_TRUE(wait_exit(20s)) << slurp(log);
    EXPECT_EQ(exit_status, 3) << slurp(log);
    EXPECT_TRUE(logged("essential pool job")) << slurp(log);
}

TEST_F(RuncContainer, FiftyZombieGrandchildrenAreAllReaped) {
    // The worker forks 50 children that exit at once, never waits for them, and becomes a
    // sleep: 50 zombies that reparent to PID 1 when the sleep dies.
    build(R"(pools:
  idle:
    command: [/bin/sleep, "3600"]
  litter:
    command: [/bin/sh, -c, "for i in $(seq 50); do sh -c 'exit 0' & done; exec sleep 3600"]
    restart: never
)");
    start();
    ASSERT_TRUE(WaitFor(
        [&] {
            return exec({"/usr/bin/cowctl", "health"}).code == 0;
        },
        20s))
        << slurp(log);
    ASSERT_TRUE(WaitFor([&] { return zombies() == 50; }, 20s)) << zombies() << " zombies\n"
                                                               << slurp(log);
    auto r = exec({"/usr/bin/cowctl", "stop", "litter"});
    ASSERT_EQ(r.code, 0) << r.out << r.err;
    EXPECT_TRUE(WaitFor([&] { return zombies() == 0; }, 10s)) << zombies() << " zombies left";
    // Only cowherd and the idle worker are left, and cowherd still serves.
    EXPECT_EQ(processes().size(), 2u);
    auto idle = exec({"/usr/bin/cowctl", "status", "idle"});
    EXPECT_EQ(idle.code, 0) << idle.err;
    EXPECT_NE(idle.out.find("running"), std::string::npos) << idle.out;
}

TEST_F(RuncContainer, CowctlWorksThroughRuncExecAndNamesResolve) {
    // User and group names in a scratch image: the static binary's built-in files backend
    // reads the image's /etc/passwd and /etc/group.
    build(R"(daemon:
  socket_group: nogroup
pools:
  web:
    command: [/bin/sleep, "3600"]
    workers: 2
    user: nobody
    group: nogroup
)");
    start();
    ASSERT_TRUE(WaitFor(
        [&] {
            return exec({"/usr/bin/cowctl", "health"}).code == 0;
        },
        20s))
        << slurp(log);
    auto r = exec({"/usr/bin/cowctl", "status"});
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("web.0"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("web.1"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("running"), std::string::npos) << r.out;
    auto json = exec({"/usr/bin/cowctl", "--json", "status", "web"});
    ASSERT_EQ(json.code, 0) << json.err;
    EXPECT_NE(json.out.find("\"name\":\"web\""), std::string::npos) << json.out;

    int as_nobody = 0;
    for (pid_t p : processes()) {
        auto status = slurp("/proc/" + std::to_string(p) + "/status");
        if (status.find("Name:\tsleep") != std::string::npos &&
            status.find("Uid:\t65534\t65534\t65534\t65534") != std::string::npos &&
            status.find("Gid:\t65534\t65534\t65534\t65534") != std::string::npos)
            ++as_nobody;
    }
    EXPECT_EQ(as_nobody, 2);
    struct stat st {};
    ASSERT_EQ(stat((bundle + "/rootfs/run/cowherd/cowherd.sock").c_str(), &st), 0);
    EXPECT_EQ(st.st_gid, 65534u);
}

TEST_F(RuncContainer, ATermIgnoringWorkerIsKilledAtStopTimeout) {
    build(R"(daemon:
  shutdown_timeout: 20s
pools:
  stubborn:
    command: [/bin/sh, -c, "trap '' TERM; echo ignoring TERM; exec sleep 3600"]
    stop_timeout: 2s
)");
    start();
    ASSERT_TRUE(WaitFor([&] { return logged("stubborn.0 | ignoring TERM"); }, 20s)) << slurp(log);
    const auto asked = Clock::now();
    ASSERT_EQ(run({"runc", "kill", id, "TERM"}).code, 0);
    ASSERT_TRUE(wait_exit(20s)) << slurp(log);
    const auto took = Clock::now() - asked;
    EXPECT_GE(took, 2s) << "SIGKILL came before stop_timeout";
    EXPECT_LT(took, 10s) << "SIGKILL came long after stop_timeout";
    EXPECT_EQ(exit_status, 0) << slurp(log);
    EXPECT_TRUE(logged("killed by signal 9 (KILL)")) << slurp(log);
}

}  // namespace
