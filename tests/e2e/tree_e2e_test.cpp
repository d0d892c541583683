// Process trees, orphans and "stop leaves nothing", end to end.
#include "tests/e2e/harness.hpp"

using namespace cow::test;
namespace json = boost::json;

namespace {

class Trees : public DaemonFixture {
  protected:
    std::string pids_file() const { return (dir / "pids").string(); }

    std::string forker_pool(const std::string& name, const std::string& args,
                            const std::string& extra = "") {
        return "  " + name + ":\n    command: [\"" + bin("forker") + "\", " + args +
               "]\n    env: {FORKER_PIDS: \"" + pids_file() + "\"}\n" + extra;
    }

    // Zombie children of the daemon: each one is a failure to reap.
    int zombies_of(pid_t parent) {
        int n = 0;
        for (pid_t p : children_of(parent))
            n += zombie(p);
        return n;
    }

    // Every pid of the daemon's subtree (workers, their descendants, orphans).
    std::set<pid_t> descendants(pid_t root) {
        std::set<pid_t> out;
        std::vector<pid_t> todo{root};
        while (!todo.empty()) {
            pid_t p = todo.back();
            todo.pop_back();
            for (pid_t c : children_of(p))
                if (out.insert(c).second) todo.push_back(c);
        }
        return out;
    }

    // The same tree the daemon reports, flattened: pid -> ppid.
    static void flatten(const json::object& node, std::map<std::int64_t, std::int64_t>& out) {
        out[node.at("pid").to_number<std::int64_t>()] = node.at("ppid").to_number<std::int64_t>();
        for (const auto& c : node.at("children").as_array())
            flatten(c.as_object(), out);
    }
};

const std::string kIdle = "  idle:\n    command: [sleep, \"100000\"]\n";

TEST_F(Trees, FiftyOrphansAreReapedAndAttributed) {
    start(kIdle +
          forker_pool("killer", "scatter, \"50\"", "    restart: never\n    start_timeout: 0s\n") +
          forker_pool("keeper", "scatter, \"50\"",
                      "    restart: never\n    start_timeout: 0s\n    orphans: keep\n"));
    ASSERT_TRUE(WaitFor([&] {
        return workers("killer")[0]["state"].as_string() == "exited" &&
               workers("keeper")[0]["state"].as_string() == "exited";
    }));
    // killer's orphans are terminated and reaped; keeper's stay, attributed to keeper.0.
    std::vector<json::object> kept;
    ASSERT_TRUE(WaitFor([&] {
        auto t = ctl_json({"tree"});
        kept.clear();
        int killer_orphans = 0;
        for (auto& p : t.as_object()["pools"].as_array()) {
            for (auto& o : p.as_object()["orphans"].as_array()) {
                if (o.as_object()["from"].as_string() == "keeper.0") kept.push_back(o.as_object());
                if (o.as_object()["from"].as_string() == "killer.0") ++killer_orphans;
            }
        }
        return kept.size() == 50 && killer_orphans == 0;
    }));
    EXPECT_EQ(log_count("from killer.0 killed by signal 15"), 50);
    // Orphans change no worker's state or counters.
    EXPECT_EQ(as_int(workers("keeper")[0]["restarts"]), 0);
    EXPECT_EQ(as_int(workers("killer")[0]["restarts"]), 0);
    EXPECT_EQ(workers("keeper")[0]["state"].as_string(), "exited");

    // The kept ones die on their own (here: killed from outside): all reaped, none a zombie.
    for (auto& o : kept)
        kill(static_cast<pid_t>(as_int(o["pid"])), SIGKILL);
    ASSERT_TRUE(WaitFor([&] {
        auto t = ctl_json({"tree"});
        for (auto& p : t.as_object()["pools"].as_array())
            if (!p.as_object()["orphans"].as_array().empty()) return false;
        return true;
    }));
    EXPECT_EQ(zombies_of(daemon), 0);
    EXPECT_TRUE(WaitFor([&] { return count_state("idle", "running") == 1; }));
    for (pid_t p : pids_in(pids_file()))
        EXPECT_FALSE(alive(p)) << p;
}

TEST_F(Trees, CrashingWorkerLeavesOrphansThatAreKilled) {
    start(forker_pool("crash", "\"exit-after\", \"5\"",
                      "    start_timeout: 0s\n    max_restarts: {count: 1, within: 60s}\n"));
    ASSERT_TRUE(WaitFor([&] { return workers("crash")[0]["state"].as_string() == "fatal"; }));
    // Dead and reaped: a zombie is not alive() yet still ours to reap (and log).
    ASSERT_TRUE(WaitFor([&] {
        for (pid_t p : pids_in(pids_file()))
            if (kill(p, 0) == 0) return false;
        return true;
    }));
    EXPECT_EQ(pids_in(pids_file()).size(), 12u) << "2 runs of a worker and 5 children";
    EXPECT_EQ(log_count("from crash.0 killed by signal 15"), 10);
    EXPECT_EQ(zombies_of(daemon), 0);
}

class KillModes : public Trees, public ::testing::WithParamInterface<std::string> {};

TEST_P(KillModes, StopLeavesNoDescendantsButSparesStrangers) {
    // A stranger of the same uid, outside the pool: it must survive everything below.
    pid_t sentinel = spawn_with({"/usr/bin/setsid", "sleep", "100000"}, -1, -1);
    ASSERT_GT(sentinel, 0);
    start(forker_pool("d", "daemonize",
                      "    kill_mode: " + GetParam() + "\n    workers: 2\n    stop_timeout: 5s\n"));
    ASSERT_TRUE(WaitFor([&] { return count_state("d", "running") == 2; }));
    ASSERT_TRUE(WaitFor([&] { return pids_in(pids_file()).size() == 6; }))
        << "2 workers, 2 setsid children, 2 grandchildren";
    auto r = ctl({"stop", "d"});
    ASSERT_EQ(r.code, 0) << r.err;
    // stop returned: nothing of the pool may be left, not even the setsid grandchildren.
    for (pid_t p : pids_in(pids_file()))
        EXPECT_FALSE(alive(p)) << p;
    for (pid_t p : descendants(daemon))
        ADD_FAILURE() << "left after stop: " << p << (zombie(p) ? " (zombie)" : "") << " "
                      << slurp("/proc/" + std::to_string(p) + "/cmdline");
    EXPECT_TRUE(alive(sentinel));
    EXPECT_EQ(
        log_count("kill mode: " + std::string(GetParam() == "cgroup" ? "cgroup" : "process group")),
        1);
    kill(sentinel, SIGKILL);
}

INSTANTIATE_TEST_SUITE_P(Both, KillModes, ::testing::Values("cgroup", "group"));

TEST_F(Trees, TermIgnoringTreeIsKilledOnceAfterStopTimeout) {
    start(forker_pool("stubborn", "\"ignore-term\"",
                      "    stop_timeout: 300ms\n    start_timeout: 100ms\n"));
    ASSERT_TRUE(WaitFor([&] { return count_state("stubborn", "running") == 1; }));
    ASSERT_TRUE(WaitFor([&] { return pids_in(pids_file()).size() == 2; }));
    auto t0 = std::chrono::steady_clock::now();
    auto r = ctl({"stop", "stubborn"});
    auto took = std::chrono::steady_clock::now() - t0;
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_GE(took, std::chrono::milliseconds(300)) << "TERM alone could not have stopped it";
    for (pid_t p : pids_in(pids_file()))
        EXPECT_FALSE(alive(p)) << p;
    EXPECT_EQ(log_count("did not stop within stop_timeout 300ms; sending KILL"), 1);
    EXPECT_EQ(workers("stubborn")[0]["state"].as_string(), "stopped");
}

TEST_F(Trees, TreeJsonMatchesProcThreeLevelsDeep) {
    start(forker_pool("t", "tree3", "    start_timeout: 100ms\n"));
    ASSERT_TRUE(WaitFor([&] { return pids_in(pids_file()).size() == 1 + 2 + 4 + 4; }));
    auto t = ctl_json({"tree", "t"});
    auto& w = t.as_object()["pools"].as_array()[0].as_object()["workers"].as_array()[0].as_object();
    std::map<std::int64_t, std::int64_t> reported;
    flatten(w["tree"].as_object(), reported);
    pid_t root = static_cast<pid_t>(as_int(w["pid"]));
    // The truth, from /proc.
    std::map<std::int64_t, std::int64_t> truth;
    truth[root] = daemon;
    std::vector<pid_t> todo{root};
    int depth_max = 0;
    std::map<pid_t, int> depth{{root, 0}};
    while (!todo.empty()) {
        pid_t p = todo.back();
        todo.pop_back();
        for (pid_t c : children_of(p)) {
            truth[c] = p;
            depth[c] = depth[p] + 1;
            depth_max = std::max(depth_max, depth[c]);
            todo.push_back(c);
        }
    }
    EXPECT_EQ(depth_max, 3);
    EXPECT_EQ(reported, truth);
    EXPECT_EQ(reported.size(), 11u);
    auto human = ctl({"tree", "t"});
    EXPECT_NE(human.out.find("└─"), std::string::npos) << human.out;
}

TEST_F(Trees, DependenciesStartInOrderAndStopInReverse) {
    start(R"(  app:
    command: [sleep, "100000"]
    depends_on: [db]
    start_timeout: 100ms
  db:
    command: [sleep, "100000"]
    start_timeout: 300ms
)");
    ASSERT_TRUE(WaitFor([&] { return count_state("app", "running") == 1; }));
    auto l = slurp(log);
    auto db_running = l.find("db.0 pid");
    db_running = l.find("-> running", db_running);
    auto app_starting = l.find("app.0 pid 0 stopped -> starting");
    ASSERT_NE(db_running, std::string::npos);
    ASSERT_NE(app_starting, std::string::npos);
    EXPECT_LT(db_running, app_starting) << l;
    ASSERT_EQ(kill(daemon, SIGTERM), 0);
    ASSERT_TRUE(wait_exit(std::chrono::seconds(15)));
    l = slurp(log);
    auto app_stopped = l.find("app.0 pid", l.find("shutting down"));
    app_stopped = l.find("-> stopped", app_stopped);
    auto db_stopping = l.find("db.0 pid", l.find("shutting down"));
    ASSERT_NE(app_stopped, std::string::npos) << l;
    EXPECT_LT(app_stopped, db_stopping) << l;
}

TEST_F(Trees, DependencyCycleIsRejectedWithTheCycleNamed) {
    write_config(R"(  a:
    command: [sleep, "1"]
    depends_on: [b]
  b:
    command: [sleep, "1"]
    depends_on: [c]
  c:
    command: [sleep, "1"]
    depends_on: [a]
)");
    auto r = run({bin("cowherd"), "--check", "-c", config});
    EXPECT_EQ(r.code, 2);
    EXPECT_NE(r.err.find("a -> b -> c -> a"), std::string::npos) << r.err;
}

TEST_F(Trees, HealthFollowsEssentialPools) {
    start(kIdle + R"(  core:
    command: [sleep, "100000"]
    essential: true
    start_timeout: 100ms
)");
    ASSERT_TRUE(WaitFor([&] { return ctl({"health"}).code == 0; }));
    auto ok = ctl({"health"});
    EXPECT_NE(ok.out.find("healthy (pools: core)"), std::string::npos) << ok.out;
    auto w = workers("core")[0];
    kill(static_cast<pid_t>(as_int(w["pid"])), SIGSTOP);
    ASSERT_EQ(ctl({"stop", "core", "--no-wait"}).code, 0);
    auto bad = ctl({"health"});
    EXPECT_EQ(bad.code, 1);
    EXPECT_NE(bad.out.find("core.0 is"), std::string::npos) << bad.out;
}

}  // namespace
