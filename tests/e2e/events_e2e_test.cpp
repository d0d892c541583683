// `cowctl events`: the kept events, --pool and --since, and -f following live events through
// the real cowctl, text and JSON.
#include <sstream>

#include <signal.h>
#include <unistd.h>

#include "tests/e2e/harness.hpp"

using namespace cow::test;
namespace json = boost::json;

namespace {

class Events : public DaemonFixture {
  protected:
    const std::string pools =
        "  web:\n    command: [sleep, \"100000\"]\n    workers: 2\n"
        "  db:\n    command: [sleep, \"100000\"]\n";
    json::array events(std::vector<std::string> args) {
        args.insert(args.begin(), "events");
        auto v = ctl_json(args);
        return v.is_object() ? v.as_object()["events"].as_array() : json::array{};
    }
};

TEST_F(Events, ListsWhatHappenedByPoolAndSince) {
    start(pools);
    ASSERT_TRUE(WaitFor([&] { return count_state("", "running") == 3; }));
    auto all = events({});
    ASSERT_GE(all.size(), 6u) << "each worker started and came up";
    std::int64_t last = 0;
    for (auto& e : all) {
        EXPECT_GT(as_int(e.as_object()["seq"]), last) << "in order, each once";
        last = as_int(e.as_object()["seq"]);
    }
    for (auto& e : events({"--pool", "db"}))
        EXPECT_EQ(e.as_object()["pool"], "db");
    // --since: only what is that recent. A reload is the daemon's own event (no pool).
    ASSERT_EQ(ctl({"reload"}).code, 0);
    bool reload = false;
    for (auto& e : events({"--since", "1h", "--pool", "db"}))
        reload |= e.as_object()["kind"] == "reload";
    EXPECT_TRUE(reload) << "the daemon's own events go to every pool's listing";
    auto r = ctl({"events", "--pool", "nope"});
    EXPECT_NE(r.code, 0);
    EXPECT_NE(r.err.find("no pool named \"nope\""), std::string::npos) << r.err;
    EXPECT_NE(ctl({"events", "--since", "soon"}).code, 0);
}

TEST_F(Events, FollowPrintsLiveEventsOfItsPool) {
    start(pools);
    ASSERT_TRUE(WaitFor([&] { return count_state("", "running") == 3; }));
    const std::string out = (dir / "follow.txt").string(),
                      json_out = (dir / "follow.json").string();
    int fd = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    pid_t text =
        spawn_with({bin("cowctl"), "--socket", socket, "events", "-f", "--pool", "web"}, fd, fd);
    close(fd);
    fd = open(json_out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    pid_t js = spawn_with({bin("cowctl"), "--socket", socket, "--json", "events", "-f"}, fd, fd);
    close(fd);
    // Restarts of web.1 until both followers have shown one (they connect in their own time).
    ASSERT_TRUE(WaitFor(
        [&] {
            EXPECT_EQ(ctl({"restart", "web.1"}).code, 0);
            return slurp(out).find("web.1 pid") != std::string::npos &&
                   slurp(json_out).find("\"worker\":\"web.1\"") != std::string::npos;
        },
        std::chrono::seconds(30), std::chrono::milliseconds(200)))
        << slurp(out) << slurp(json_out);
    // Now both follow: a restart of db reaches the unfiltered one only.
    ASSERT_EQ(ctl({"restart", "db"}).code, 0);
    ASSERT_EQ(ctl({"restart", "web.0"}).code, 0);
    EXPECT_TRUE(WaitFor([&] { return slurp(out).find("web.0 pid") != std::string::npos; }));
    EXPECT_TRUE(WaitFor([&] {
        return slurp(json_out).find("\"worker\":\"db.0\"") != std::string::npos &&
               slurp(json_out).find("\"worker\":\"web.0\"") != std::string::npos;
    }));
    kill(text, SIGTERM);
    kill(js, SIGTERM);
    EXPECT_EQ(slurp(out).find("db.0"), std::string::npos) << "--pool web shows no db events";
    // JSON: one object per line.
    std::istringstream lines(slurp(json_out));
    int n = 0;
    for (std::string l; std::getline(lines, l);) {
        boost::system::error_code ec;
        auto v = json::parse(l, ec);
        EXPECT_FALSE(ec) << l;
        if (!ec) {
            EXPECT_TRUE(v.as_object().contains("kind")) << l;
        }
        ++n;
    }
    EXPECT_GT(n, 0);
}

}  // namespace
