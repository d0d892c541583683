// on_exit and on_fatal: each exit and each fatal worker runs the pool's command with the event
// on stdin; a hook that hangs is cut at hook_timeout and said so.
#include <sstream>

#include "tests/e2e/harness.hpp"

using namespace cow::test;
namespace json = boost::json;

namespace {

class Hooks : public DaemonFixture {
  protected:
    std::vector<json::object> lines_of(const std::string& path) {
        std::vector<json::object> out;
        std::istringstream in(slurp(path));
        for (std::string l; std::getline(in, l);) {
            boost::system::error_code ec;
            auto v = json::parse(l, ec);
            if (!ec && v.is_object()) out.push_back(v.as_object());
        }
        return out;
    }
};

TEST_F(Hooks, ExitsAndAFatalWorkerRunTheirHooksWithTheEvent) {
    const std::string exits = (dir / "exits.ndjson").string();
    const std::string fatal = (dir / "fatal.json").string();
    start("  flaky:\n    command: [\"" + bin("exit_with") + "\", \"3\"]\n" +
          "    start_timeout: 5s\n    backoff: {initial: 50ms}\n" +
          "    max_restarts: {count: 2, within: 1m}\n" + "    on_exit: [sh, -c, \"cat >> " + exits +
          "\"]\n" + "    on_fatal: [sh, -c, \"cat > " + fatal + "\"]\n" +
          "  keep:\n    command: [sleep, \"100000\"]\n");
    ASSERT_TRUE(WaitFor([&] { return lines_of(fatal).size() == 1; }, std::chrono::seconds(20)));
    auto f = lines_of(fatal)[0];
    EXPECT_EQ(f["kind"], "transition");
    EXPECT_EQ(f["to"], "fatal");
    EXPECT_EQ(f["worker"], "flaky.0");
    // Three starts, three exits, each with its cause and code.
    ASSERT_TRUE(WaitFor([&] { return lines_of(exits).size() == 3; }));
    for (auto& e : lines_of(exits)) {
        EXPECT_EQ(e["kind"], "exit");
        EXPECT_EQ(e["cause"], "exited");
        EXPECT_EQ(as_int(e["code"]), 3);
    }
}

TEST_F(Hooks, AHookThatHangsIsCutAtItsTimeout) {
    start("  once:\n    command: [\"" + bin("exit_with") + "\", \"0\"]\n    restart: never\n" +
          "    on_exit: [sleep, \"100000\"]\n    hook_timeout: 300ms\n" +
          "  keep:\n    command: [sleep, \"100000\"]\n");
    json::object hook;
    ASSERT_TRUE(WaitFor([&] {
        auto v = ctl_json({"events", "--pool", "once"});
        for (auto& e : v.as_object()["events"].as_array())
            if (e.as_object()["kind"] == "hook") hook = e.as_object();
        return !hook.empty();
    }));
    EXPECT_EQ(hook["hook"], "on_exit");
    EXPECT_EQ(hook["detail"], "cut at hook_timeout 300ms");
    // The sleep is gone (killed with its group), and the daemon took it for no orphan.
    EXPECT_EQ(log_count("orphan"), 0);
    EXPECT_EQ(ctl({"status"}).code, 0);
}

}  // namespace
