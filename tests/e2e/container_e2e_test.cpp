// Container mode: cowherd as PID 1 of a pid namespace (unshare -p -f --mount-proc), exit
// codes of essential pools, and the pid-reuse guarantee, made deterministic inside a namespace.
#include "tests/e2e/harness.hpp"

using namespace cow::test;

namespace {

class Container : public DaemonFixture {
  protected:
    void SetUp() override {
        DaemonFixture::SetUp();
        if (run({"unshare", "-p", "-f", "--mount-proc", "true"}).code != 0)
            GTEST_SKIP() << "this machine cannot create pid namespaces";
        launcher = {"unshare", "-p", "-f", "--mount-proc"};
    }
    // cowherd's own pid as seen from here: the child of unshare.
    pid_t cowherd_pid() {
        pid_t found = -1;
        WaitFor([&] {
            auto kids = children_of(daemon);
            if (kids.size() == 1) found = kids[0];
            return found > 0;
        });
        return found;
    }
};

TEST_F(Container, RunsAsPidOneAndStopsInOrderOnSigterm) {
    start("  tick:\n    command: [\"" + bin("cow-ticker") +
          "\", \"60\"]\n    workers: 3\n    start_timeout: 100ms\n" + "  left:\n    command: [\"" +
          bin("forker") +
          "\", scatter, \"5\"]\n    restart: never\n    orphans: keep\n    start_timeout: 0s\n");
    ASSERT_TRUE(WaitFor([&] { return count_state("tick", "running") == 3; }));
    EXPECT_NE(slurp(log).find("(PID 1)"), std::string::npos);
    ASSERT_TRUE(WaitFor([&] { return log_count("keeping it (orphans: keep)") == 5; }));
    pid_t pid = cowherd_pid();
    ASSERT_GT(pid, 0);
    ASSERT_EQ(kill(pid, SIGTERM), 0);
    ASSERT_TRUE(wait_exit(std::chrono::seconds(20)));
    EXPECT_EQ(exit_status, 0);
    // Every worker got its TERM and finished its own way; the kept orphans were terminated
    // and reaped by us, not left to the kernel's namespace teardown.
    EXPECT_EQ(log_count("got TERM, bye"), 3);
    EXPECT_EQ(log_count("from left.0 killed by signal 15"), 5);
    EXPECT_NE(slurp(log).find("all workers stopped; exiting with status 0"), std::string::npos);
}

class EssentialExit : public Container,
                      public ::testing::WithParamInterface<std::pair<std::string, int>> {};

TEST_P(EssentialExit, PropagatesTheWorkersExitCode) {
    auto [arg, expected] = GetParam();
    start(
        "  idle:\n    command: [sleep, \"100000\"]\n"
        "  job:\n    command: [\"" +
            bin("exit_with") + "\", \"" + arg +
            "\"]\n    essential: true\n    restart: never\n    start_timeout: 0s\n",
        "", false);
    ASSERT_TRUE(wait_exit(std::chrono::seconds(20))) << slurp(log);
    EXPECT_EQ(exit_status, expected) << slurp(log);
    EXPECT_NE(slurp(log).find("essential pool job"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Codes, EssentialExit,
                         ::testing::Values(std::pair<std::string, int>{"0", 0},
                                           std::pair<std::string, int>{"1", 1},
                                           std::pair<std::string, int>{"2", 2},
                                           std::pair<std::string, int>{"255", 255},
                                           std::pair<std::string, int>{"sig:9", 137}));

TEST_F(Container, OneShotJobsExitZeroWhenAllFinishCleanly) {
    start(
        "  a:\n    command: [\"true\"]\n    restart: never\n    start_timeout: 0s\n"
        "  b:\n    command: [\"true\"]\n    restart: on-failure\n    workers: 3\n",
        "", false);
    ASSERT_TRUE(wait_exit(std::chrono::seconds(20)));
    EXPECT_EQ(exit_status, 0) << slurp(log);
    EXPECT_NE(slurp(log).find("every worker has finished"), std::string::npos);
}

class PidReuse : public Container, public ::testing::WithParamInterface<std::string> {};

TEST_P(PidReuse, ARecycledPidIsNeverSignalled) {
    auto r = run({"unshare", "-p", "-f", "--mount-proc", "bash",
                  std::string(COWHERD_SOURCE_DIR) + "/tests/e2e/scripts/pid_reuse.sh",
                  COWHERD_BIN_DIR, dir.string(), GetParam()},
                 std::chrono::seconds(60));
    EXPECT_EQ(r.code, 0) << r.out << r.err << slurp((dir / "daemon.log").string());
    EXPECT_NE(r.out.find("OK: pid"), std::string::npos) << r.out;
}

INSTANTIATE_TEST_SUITE_P(Both, PidReuse, ::testing::Values("cgroup", "group"));

}  // namespace
