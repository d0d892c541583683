// A kernel OOM kill, for real, read back as `oom_killed`. It runs alone (the chaos binary is
// RUN_SERIAL): the kill may count in the memory cgroup every test shares, and a daemon of
// another test would rightly read that as a reason for a SIGKILL of its own.
#include <cerrno>
#include <cstring>
#include <fstream>

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/e2e/harness.hpp"

using namespace cow::test;
namespace json = boost::json;

namespace {

// Our own cgroup v1 memory controller directory, "" without one.
std::string own_memory_cgroup() {
    std::ifstream in("/proc/self/cgroup");
    for (std::string line; std::getline(in, line);) {
        auto a = line.find(':'), b = line.find(':', a + 1);
        if (a == std::string::npos || b == std::string::npos) continue;
        if (line.substr(a + 1, b - a - 1) == "memory")
            return "/sys/fs/cgroup/memory" + (line.substr(b + 1) == "/" ? "" : line.substr(b + 1));
    }
    return "";
}

class OomKill : public DaemonFixture {
  protected:
    std::string cgroup;  // made by the test; removed at the end

    void TearDown() override {
        DaemonFixture::TearDown();
        if (!cgroup.empty())  // empty once its process is gone
            WaitFor([&] { return rmdir(cgroup.c_str()) == 0 || errno == ENOENT; });
    }
};

// A memory cgroup inside the one cowherd runs in (as a container's would be), with a small
// limit and no swap; a wrapper joins it and a worker allocates past it.
TEST_F(OomKill, AKernelOomKillInOurCgroupIsOomKilled) {
    const int metrics_port = free_port();
    const std::string parent = own_memory_cgroup();
    if (geteuid() != 0 || parent.empty() ||
        access((parent + "/memory.oom_control").c_str(), R_OK) != 0)
        GTEST_SKIP() << "needs root and a cgroup v1 memory controller";
    cgroup = parent + "/" + dir.filename().string();
    if (mkdir(cgroup.c_str(), 0755) != 0) {
        cgroup.clear();
        GTEST_SKIP() << "cannot make a memory cgroup under " << parent << ": " << strerror(errno);
    }
    std::ofstream(cgroup + "/memory.limit_in_bytes") << (32 << 20);
    std::ofstream(cgroup + "/memory.swappiness") << 0;
    if (access((cgroup + "/memory.memsw.limit_in_bytes").c_str(), W_OK) == 0)
        std::ofstream(cgroup + "/memory.memsw.limit_in_bytes") << (32 << 20);
    start("  w:\n    command: [sh, -c, \"echo $$ > " + cgroup + "/cgroup.procs && exec " +
              bin("memhog") + " 256 0 0\"]\n    restart: never\n" +
              "  keep:\n    command: [sleep, \"100000\"]\n",
          "  metrics: \"127.0.0.1:" + std::to_string(metrics_port) + "\"\n");
    json::array es;
    ASSERT_TRUE(WaitFor(
        [&] {
            auto v = ctl_json({"history", "w.0"});
            es = v.as_object()["workers"].as_array()[0].as_object()["exits"].as_array();
            return !es.empty();
        },
        std::chrono::seconds(30)));
    auto e = es[0].as_object();
    EXPECT_EQ(e["cause"].as_string(), "oom_killed") << json::serialize(e);
    EXPECT_EQ(as_int(e["signal"]), SIGKILL);
    // Where the kernel's log is readable (root, no container), its own line names the pid.
    if (access("/dev/kmsg", R_OK) == 0)
        EXPECT_NE(e["detail"].as_string().subview().find("Killed process " +
                                                         std::to_string(as_int(e["pid"])) + " ("),
                  std::string_view::npos)
            << json::serialize(e);
    else
        EXPECT_FALSE(e["detail"].as_string().empty());
    auto w = workers("w")[0];
    EXPECT_EQ(w["last_exit"].as_object()["cause"].as_string(), "oom_killed");
    // The event stream and the metrics say the same.
    bool event = false;
    auto ev = ctl_json({"events", "--pool", "w"});
    for (auto& x : ev.as_object()["events"].as_array())
        event |= x.as_object()["kind"] == "exit" && x.as_object()["pid"] == e["pid"] &&
                 x.as_object()["cause"] == "oom_killed";
    EXPECT_TRUE(event) << json::serialize(ev);
    auto r = run({"curl", "-s", "--max-time", "5",
                  "http://127.0.0.1:" + std::to_string(metrics_port) + "/metrics"},
                 std::chrono::seconds(10));
    EXPECT_NE(
        r.out.find("cowherd_worker_exits_total{pool=\"w\",worker=\"w.0\",cause=\"oom_killed\","
                   "signal=\"KILL\"} 1"),
        std::string::npos)
        << r.out;
}

}  // namespace
