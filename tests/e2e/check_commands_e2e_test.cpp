// `cowherd --check` warns, naming the path, about a command this host cannot run, and still
// exits 0: the config may be meant for another machine (issue 11).
#include "tests/e2e/harness.hpp"

using namespace cow::test;

namespace {

class CheckCommands : public DaemonFixture {};

TEST_F(CheckCommands, AMissingCommandIsAWarningNamingThePath) {
    write_config(
        "  ok:\n    command: [sleep, \"1\"]\n"
        "  gone:\n    command: [\"" +
        (dir / "no/such/program").string() + "\"]\n");
    auto r = run({bin("cowherd"), "--check", "-c", config});
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out.rfind("config OK", 0), 0u) << r.out;
    EXPECT_EQ(r.err, "cowherd: warning: pool gone: command " + (dir / "no/such/program").string() +
                         " does not exist\n");
}

TEST_F(CheckCommands, RunnableCommandsGiveNoWarning) {
    write_config("  ok:\n    command: [sleep, \"1\"]\n  abs:\n    command: [\"" +
                 bin("cow-ticker") + "\"]\n");
    auto r = run({bin("cowherd"), "--check", "-c", config});
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.err, "");
}

}  // namespace
