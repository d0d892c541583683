// kubelet's httpGet probes: /livez (the loop answers) and /readyz[?pool=P] (the pools that
// matter are up) on the metrics listener.
#include <cstdlib>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/e2e/harness.hpp"

using namespace cow::test;

namespace {

class KubeHealth : public DaemonFixture {
  protected:
    int port = free_port();
    std::string metrics() { return "  metrics: \"127.0.0.1:" + std::to_string(port) + "\"\n"; }
    // The status code ("000" when nothing answered in time) and the body.
    std::pair<std::string, std::string> get(const std::string& path, const char* max_time = "2") {
        auto r = run({"curl", "-s", "--max-time", max_time, "-w", "\n%{http_code}",
                      "http://127.0.0.1:" + std::to_string(port) + path},
                     std::chrono::seconds(10));
        auto nl = r.out.rfind('\n');
        if (nl == std::string::npos) return {r.out, ""};
        return {r.out.substr(nl + 1), r.out.substr(0, nl)};
    }
    void TearDown() override {
        unsetenv("COWHERD_TEST_BLOCK_LOOP");
        DaemonFixture::TearDown();
    }
};

TEST_F(KubeHealth, ReadyzFollowsTheEssentialPools) {
    start(
        "  web:\n    command: [sleep, \"100000\"]\n    essential: true\n    start_timeout: 200ms\n"
        "  side:\n    command: [sleep, \"100000\"]\n    start_timeout: 200ms\n",
        metrics());
    EXPECT_EQ(get("/livez").first, "200");
    ASSERT_TRUE(WaitFor([&] { return get("/readyz").first == "200"; }));
    EXPECT_EQ(get("/readyz?pool=side").first, "200");
    auto missing = get("/readyz?pool=nope");
    EXPECT_EQ(missing.first, "404");
    EXPECT_NE(missing.second.find("no pool named \"nope\""), std::string::npos);

    // A non-essential pool down: still ready; the essential one down: not, and why.
    ASSERT_EQ(ctl({"stop", "side"}).code, 0);
    EXPECT_EQ(get("/readyz").first, "200");
    EXPECT_EQ(get("/readyz?pool=side").first, "503");
    ASSERT_EQ(ctl({"stop", "web"}).code, 0);
    auto down = get("/readyz");
    EXPECT_EQ(down.first, "503");
    EXPECT_NE(down.second.find("web.0 is stopped"), std::string::npos) << down.second;
    EXPECT_EQ(get("/livez").first, "200") << "a pool down is not a dead daemon";
    ASSERT_EQ(ctl({"start", "web"}).code, 0);
    EXPECT_TRUE(WaitFor([&] { return get("/readyz").first == "200"; }));
}

TEST_F(KubeHealth, LivezFailsWhileTheLoopIsBlocked) {
    // 1.5 s after startup the loop stops for 4 s (a test-only hook).
    setenv("COWHERD_TEST_BLOCK_LOOP", "1500:4000", 1);
    start("  web:\n    command: [sleep, \"100000\"]\n", metrics());
    unsetenv("COWHERD_TEST_BLOCK_LOOP");
    EXPECT_EQ(get("/livez").first, "200");
    ASSERT_TRUE(
        WaitFor([&] { return get("/livez", "0.5").first == "000"; }, std::chrono::seconds(10)))
        << "a blocked loop must not look alive";
    EXPECT_TRUE(
        WaitFor([&] { return get("/livez", "0.5").first == "200"; }, std::chrono::seconds(15)))
        << "and it answers again once the loop runs";
}

}  // namespace
