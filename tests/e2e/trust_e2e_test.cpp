// What operators do by mistake, and what must never follow from it: a second daemon on the
// same config, a SIGKILLed daemon and its successor, rolls mixed with other exits.
#include <set>

#include "tests/e2e/harness.hpp"

using namespace cow::test;
namespace json = boost::json;

namespace {

// Each test runs in both kill modes: group mode is what runs where cgroups are read-only
// (most Kubernetes pods), so it must be as right as cgroup mode.
class Trust : public DaemonFixture, public ::testing::WithParamInterface<std::string> {
  protected:
    std::string mode() const { return "    kill_mode: " + GetParam() + "\n"; }

    std::map<std::string, pid_t> pids(const std::string& pool) {
        std::map<std::string, pid_t> out;
        for (auto& w : workers(pool))
            out[std::string(w["name"].as_string())] = static_cast<pid_t>(as_int(w["pid"]));
        return out;
    }
    std::int64_t restarts(const std::string& pool) {
        std::int64_t n = 0;
        for (auto& w : workers(pool))
            n += as_int(w["restarts"]);
        return n;
    }
    // Skips a cgroup-mode run where cgroups cannot be used (the daemon says which it took).
    bool cgroups_unusable() {
        return GetParam() == "auto" && slurp(log).find("kill mode: cgroup") == std::string::npos;
    }
};

TEST_P(Trust, ASecondDaemonOnTheSameConfigTouchesNothing) {
    start("  w:\n    command: [sleep, \"100000\"]\n    workers: 3\n" + mode());
    ASSERT_TRUE(WaitFor([&] { return count_state("w", "running") == 3; }));
    const auto before = pids("w");

    auto second = run({bin("cowherd"), "-c", config}, std::chrono::seconds(20));
    EXPECT_EQ(second.code, 1) << second.err;
    EXPECT_NE(second.err.find("another cowherd (pid " + std::to_string(daemon) + ")"),
              std::string::npos)
        << second.err;
    EXPECT_EQ(second.err.find("leftover"), std::string::npos) << second.err;

    // The running daemon still answers on its socket, and its workers never noticed.
    EXPECT_EQ(pids("w"), before);
    EXPECT_EQ(restarts("w"), 0);
    for (const auto& [name, pid] : before)
        EXPECT_TRUE(alive(pid)) << name;
    EXPECT_EQ(log_count("killed by signal"), 0) << slurp(log);
}

TEST_P(Trust, ASuccessorAfterSigkillStartsFreshWorkersWithNoRestarts) {
    const std::string pools =
        "  w:\n    command: [sleep, \"100000\"]\n    workers: 3\n"
        "    essential: true\n    max_restarts: {count: 0}\n" +
        mode();
    start(pools);
    ASSERT_TRUE(WaitFor([&] { return count_state("w", "running") == 3; }));
    if (cgroups_unusable()) GTEST_SKIP() << "cgroups are not usable here";
    std::set<pid_t> old;
    for (const auto& [name, pid] : pids("w"))
        old.insert(pid);
    ASSERT_EQ(kill(daemon, SIGKILL), 0);
    ASSERT_TRUE(wait_exit(std::chrono::seconds(5)));
    exit_status = -1;
    start(pools);
    ASSERT_TRUE(WaitFor([&] { return count_state("w", "running") == 3; })) << slurp(log);
    ASSERT_TRUE(WaitFor([&] {
        for (pid_t p : old)
            if (alive(p)) return false;
        return true;
    })) << "the successor found and stopped every leftover";
    EXPECT_EQ(restarts("w"), 0);
    for (const auto& [name, pid] : pids("w"))
        EXPECT_FALSE(old.count(pid)) << name;
    int st = 0;
    EXPECT_EQ(waitpid(daemon, &st, WNOHANG), 0) << "the successor is still running";
}

TEST_P(Trust, ADaemonizedChildOfALiveWorkerIsKeptAndAttributed) {
    const std::string pids_file = (dir / "pids").string();
    start("  d:\n    command: [\"" + bin("forker") + "\", daemonize]\n    env: {FORKER_PIDS: \"" +
          pids_file + "\"}\n" + mode());
    ASSERT_TRUE(WaitFor([&] { return pids_in(pids_file).size() >= 3; }));
    // The grandchild is the one that lives on; the child between them exits at once (the two
    // record themselves in either order).
    pid_t grandchild = 0;
    const pid_t worker = pids("d").at("d.0");
    ASSERT_TRUE(WaitFor([&] {
        int n = 0;
        for (pid_t p : pids_in(pids_file))
            if (p != worker && alive(p)) ++n, grandchild = p;
        return n == 1;
    }));
    // Showing the tree adopts whatever reparented to the daemon meanwhile.
    ASSERT_TRUE(WaitFor([&] {
        ctl({"tree"});
        return log_count("adopted pid " + std::to_string(grandchild)) > 0;
    })) << slurp(log);
    EXPECT_EQ(log_count("adopted pid " + std::to_string(grandchild) + " (forker) from d.0: kept"),
              1)
        << slurp(log);
    EXPECT_TRUE(alive(grandchild));
    auto tree = ctl({"tree", "d"});
    EXPECT_NE(tree.out.find(std::to_string(grandchild)), std::string::npos) << tree.out;
    EXPECT_EQ(tree.out.find("unknown"), std::string::npos) << tree.out;
    // It is the worker's: stopping the worker stops it.
    EXPECT_EQ(ctl({"stop", "d"}).code, 0);
    EXPECT_TRUE(WaitFor([&] { return !alive(grandchild); }));
}

// Found by the operator soak (seed 407): a kept orphan of a kill_mode: group pool was taken for
// contained (it sits in the daemon's own cgroup), so it was not recorded, and a successor of a
// SIGKILLed daemon never stopped it.
TEST_P(Trust, ASuccessorStopsTheKeptOrphansOfAKilledDaemon) {
    const std::string pid_file = (dir / "svc.pid").string();
    const std::string pools = "  s:\n    command: [sh, -c, '(setsid sh -c \"echo \\$\\$ > " +
                              pid_file + "; exec sleep 100000\" &); exec sleep 100000']\n" + mode();
    start(pools);
    ASSERT_TRUE(WaitFor([&] { return !pids_in(pid_file).empty(); }));
    const pid_t svc = pids_in(pid_file).front();
    ASSERT_TRUE(WaitFor([&] {
        ctl({"tree"});
        return log_count("adopted pid " + std::to_string(svc)) > 0;
    })) << slurp(log);
    if (cgroups_unusable() && std::string(GetParam()) != "group")
        GTEST_SKIP() << "cgroups are not usable here";
    ASSERT_EQ(kill(daemon, SIGKILL), 0);
    ASSERT_TRUE(wait_exit(std::chrono::seconds(5)));
    exit_status = -1;
    start(pools);
    EXPECT_TRUE(WaitFor([&] { return !alive(svc); })) << "the kept orphan outlived its daemon";
}

// The usual shell way: the subshell between them is reaped by the shell at once, so nothing
// but what the daemon inherited links it to its worker.
TEST_P(Trust, AShellDaemonizedServiceOfALiveWorkerIsKeptAndAttributed) {
    const std::string pid_file = (dir / "svc.pid").string();
    start("  s:\n    command: [sh, -c, '(setsid sh -c \"echo \\$\\$ > " + pid_file +
          "; exec sleep 100000\" &); exec sleep 100000']\n" + mode());
    ASSERT_TRUE(WaitFor([&] { return !pids_in(pid_file).empty(); }));
    const pid_t svc = pids_in(pid_file).front();
    ASSERT_TRUE(WaitFor([&] {
        ctl({"tree"});
        return log_count("adopted pid " + std::to_string(svc)) > 0;
    })) << slurp(log);
    EXPECT_EQ(log_count("adopted pid " + std::to_string(svc) + " (sleep) from s.0: kept"), 1)
        << slurp(log);
    EXPECT_TRUE(alive(svc));
    EXPECT_EQ(ctl({"stop", "s"}).code, 0);
    EXPECT_FALSE(alive(svc)) << "stopped with its worker";
}

// A kill_mode: group pool beside cgroup ones: its processes live in the daemon's own cgroup,
// and terminating one of its orphans must never signal that cgroup (the daemon is in it).
TEST_P(Trust, AGroupModeOrphanNeverSignalsTheDaemonsCgroup) {
    const std::string pids_file = (dir / "pids").string();
    start("  g:\n    command: [\"" + bin("forker") +
          "\", scatter, \"1\"]\n    env: {FORKER_PIDS: \"" + pids_file +
          "\"}\n    restart: never\n    start_timeout: 0s\n    kill_mode: group\n" +
          "  idle:\n    command: [sleep, \"100000\"]\n" + mode());
    ASSERT_TRUE(WaitFor([&] { return pids_in(pids_file).size() == 2; }));
    const pid_t orphan = pids_in(pids_file).back();
    ASSERT_TRUE(WaitFor([&] { return !alive(orphan); })) << slurp(log);
    EXPECT_EQ(ctl({"version"}).code, 0);
    int st = 0;
    EXPECT_EQ(waitpid(daemon, &st, WNOHANG), 0) << slurp(log);
    EXPECT_EQ(log_count("received SIGTERM"), 0) << slurp(log);
    EXPECT_TRUE(WaitFor([&] { return count_state("idle", "running") == 1; }));
}

TEST_P(Trust, KeptOrphansStopWithTheirPoolAndTakeTreeSignals) {
    const std::string pids_file = (dir / "pids").string();
    start("  j:\n    command: [\"" + bin("forker") +
          "\", scatter, \"2\"]\n    env: {FORKER_PIDS: \"" + pids_file +
          "\"}\n    restart: never\n    start_timeout: 0s\n    orphans: keep\n" + mode() +
          "  k:\n    command: [\"" + bin("forker") +
          "\", scatter, \"2\"]\n    env: {FORKER_PIDS: \"" + pids_file +
          "2\"}\n    restart: never\n    start_timeout: 0s\n    orphans: keep\n" + mode());
    ASSERT_TRUE(WaitFor([&] {
        return pids_in(pids_file).size() == 3 && pids_in(pids_file + "2").size() == 3 &&
               count_state("j", "exited") == 1 && count_state("k", "exited") == 1;
    }));
    auto j = pids_in(pids_file), k = pids_in(pids_file + "2");
    ASSERT_TRUE(
        WaitFor([&] { return ctl({"tree"}).out.find("orphan from k.0") != std::string::npos; }));
    // A tree signal reaches the kept orphans of a worker that has exited.
    EXPECT_EQ(ctl({"signal", "USR1", "k", "--tree"}).code, 0);
    EXPECT_TRUE(WaitFor([&] { return !alive(k[1]) && !alive(k[2]); }));
    EXPECT_TRUE(alive(j[1]) && alive(j[2])) << "another pool's orphans are not touched";
    // stop ends them: a stopped pool has nothing left running.
    auto r = ctl({"stop", "j"});
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_FALSE(alive(j[1]) || alive(j[2])) << "stop returned only once they were gone";
}

TEST_P(Trust, AOneShotThatDaemonizesKeepsTheDaemonUpUntilItsOrphansExit) {
    const std::string pids_file = (dir / "pids").string();
    start("  j:\n    command: [\"" + bin("forker") +
          "\", scatter, \"2\"]\n    env: {FORKER_PIDS: \"" + pids_file +
          "\"}\n    restart: never\n    start_timeout: 0s\n    orphans: keep\n" + mode());
    ASSERT_TRUE(
        WaitFor([&] { return pids_in(pids_file).size() == 3 && count_state("j", "exited") == 1; }));
    auto j = pids_in(pids_file);
    ASSERT_TRUE(WaitFor([&] {
        return ctl({"tree"}).out.find("orphan from j.0") != std::string::npos;
    })) << slurp(log);
    EXPECT_TRUE(alive(j[1]) && alive(j[2])) << "the kept orphans are the job: they run on";
    int st = 0;
    EXPECT_EQ(waitpid(daemon, &st, WNOHANG), 0) << "the daemon waits for them";
    // Once they exit, the job is done and so is the daemon.
    kill(j[1], SIGTERM);
    kill(j[2], SIGTERM);
    ASSERT_TRUE(wait_exit(std::chrono::seconds(20)));
    EXPECT_EQ(exit_status, 0);
}

// Like a postgres postmaster: on TERM it asks its children to finish their work and waits for
// them; a child that gets TERM itself dies without finishing.
// With forward false, the main process only waits for its children on TERM, so whatever
// reaches them came from cowherd.
std::string postmaster(const std::string& out, bool forward = true) {
    return "[sh, -c, 'F=" + out +
           "; child() { trap \"echo finished >> $F; exit 0\" USR1; trap \"echo killed >> $F; "
           "exit 1\" TERM; echo ready >> $F.ready; while :; do sleep 1 & wait $!; done; }; child & "
           "a=$!; child & b=$!; "
           "trap \"" +
           (forward ? "kill -USR1 $a $b; " : "") +
           "wait $a $b; exit 0\" TERM; echo up >> $F; while :; do sleep 1 & wait $!; done']";
}

TEST_P(Trust, StopScopeMainLetsTheMainProcessFinishItsChildren) {
    const std::string out = (dir / "out").string();
    start("  pg:\n    command: " + postmaster(out) + "\n" + mode() + "  tr:\n    command: " +
          postmaster(out + "2", false) + "\n    stop_scope: tree\n" + mode());
    // Both children of both pools have their traps set: a signal before that would kill a
    // child by default and prove nothing.
    ASSERT_TRUE(WaitFor([&] {
        return slurp(out) == "up\n" && slurp(out + "2") == "up\n" &&
               slurp(out + ".ready") == "ready\nready\n" &&
               slurp(out + "2.ready") == "ready\nready\n";
    })) << slurp(log);
    EXPECT_EQ(ctl({"stop", "pg"}).code, 0);
    EXPECT_EQ(slurp(out), "up\nfinished\nfinished\n") << slurp(log);
    // stop_scope: tree signals every process at once, as the option says.
    EXPECT_EQ(ctl({"stop", "tr"}).code, 0);
    EXPECT_EQ(slurp(out + "2"), "up\nkilled\nkilled\n");
}

TEST_P(Trust, AReplacementStartsOnlyOnceTheCrashedWorkersChildrenAreGone) {
    // flock holds the lock for the worker and every child it leaves; a replacement that
    // started beside them would find it taken and exit 7.
    const std::string lock = (dir / "lock").string(), pids_file = (dir / "pids").string();
    start("  c:\n    command: [flock, -n, -E, \"7\", \"" + lock + "\", \"" + bin("forker") +
          "\", exit-after, \"2\"]\n    env: {FORKER_PIDS: \"" + pids_file +
          "\"}\n    start_timeout: 0s\n    stop_timeout: 5s\n"
          "    max_restarts: {count: 1000, within: 1m}\n" +
          mode());
    ASSERT_TRUE(WaitFor([&] { return pids_in(pids_file).size() >= 12; }, std::chrono::seconds(60)))
        << slurp(log);
    EXPECT_EQ(log_count("exited with status 7"), 0) << slurp(log);
    EXPECT_GE(log_count("exited with status 3"), 3);
}

TEST_P(Trust, DependsOnHoldsForStartAndStop) {
    start("  db:\n    command: [sleep, \"100000\"]\n" + mode() +
          "  app:\n    command: [sleep, \"100000\"]\n    depends_on: [db]\n" + mode() +
          "  web:\n    command: [sleep, \"100000\"]\n    depends_on: [app]\n" + mode());
    ASSERT_TRUE(WaitFor([&] { return count_state("", "running") == 3; }));
    // Stopping what others need stops them first.
    auto r = ctl({"stop", "db"});
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(count_state("", "stopped"), 3);
    // The order, from the log: web is gone before app is signalled, app before db.
    auto line_of = [&](const std::string& worker, const std::string& change) {
        std::istringstream in(slurp(log));
        std::string l;
        for (int n = 0; std::getline(in, l); ++n)
            if (l.find(worker + " pid") != std::string::npos && l.find(change) != std::string::npos)
                return n;
        return -1;
    };
    EXPECT_LT(line_of("web.0", "stopping -> stopped"), line_of("app.0", "running -> stopping"));
    EXPECT_LT(line_of("app.0", "stopping -> stopped"), line_of("db.0", "running -> stopping"));
    EXPECT_GE(line_of("web.0", "stopping -> stopped"), 0) << slurp(log);
    // Starting what needs others starts them first.
    r = ctl({"start", "web"});
    EXPECT_EQ(r.code, 0) << r.out << r.err << slurp(log);
    EXPECT_EQ(count_state("", "running"), 3);
}

// Found by the operator soak: `scale` (and a reload that grows a pool) started new workers
// while a dependency was stopped, and a worker held for depends_on read `want down`.
TEST_P(Trust, ScaleHoldsNewWorkersUntilTheirDependenciesRun) {
    start("  db:\n    command: [sleep, \"100000\"]\n" + mode() +
          "  app:\n    command: [sleep, \"100000\"]\n    depends_on: [db]\n" + mode());
    ASSERT_TRUE(WaitFor([&] { return count_state("", "running") == 2; }));
    ASSERT_EQ(ctl({"stop", "db"}).code, 0);
    auto r = ctl({"scale", "app", "2"});
    EXPECT_EQ(r.code, 0) << r.err;
    auto app1 = [&] {
        for (auto& w : workers("app"))
            if (w["name"].as_string() == "app.1") return w;
        return boost::json::object{};
    };
    EXPECT_EQ(app1()["state"].as_string(), "stopped");
    EXPECT_EQ(app1()["want"].as_string(), "up");
    EXPECT_EQ(app1()["reason"].as_string(), "waiting for depends_on");
    // A held worker scaled away again is gone for good: the dependency does not revive it.
    ASSERT_EQ(ctl({"scale", "app", "3"}).code, 0);
    ASSERT_EQ(ctl({"scale", "app", "2"}).code, 0);
    ASSERT_TRUE(WaitFor([&] { return workers("app").size() == 2; }));
    // Once the dependency runs, the held worker starts; the one the stop reached stays down.
    ASSERT_EQ(ctl({"start", "db"}).code, 0);
    EXPECT_TRUE(WaitFor([&] { return app1()["state"].as_string() == "running"; })) << slurp(log);
    EXPECT_EQ(count_state("app", "stopped"), 1);
    EXPECT_EQ(workers("app").size(), 2u);
}

// Found by the operator soak (seed 309): a reload that grew a pool scaled it before the new
// config was in place, so its new workers did not see their stopped dependency.
TEST_P(Trust, AReloadThatGrowsAPoolHoldsItsNewWorkersForDependencies) {
    const std::string db = "  db:\n    command: [sleep, \"100000\"]\n" + mode();
    auto app = [&](int n) {
        return "  app:\n    command: [sleep, \"100000\"]\n    depends_on: [db]\n    workers: " +
               std::to_string(n) + "\n" + mode();
    };
    start(db + app(1));
    ASSERT_TRUE(WaitFor([&] { return count_state("", "running") == 2; }));
    ASSERT_EQ(ctl({"stop", "db"}).code, 0);
    write_config(db + app(2));
    auto r = ctl({"reload"});
    EXPECT_EQ(r.code, 0) << r.err;
    ASSERT_TRUE(WaitFor([&] { return workers("app").size() == 2; }));
    EXPECT_EQ(count_state("app", "running"), 0) << slurp(log);
    ASSERT_EQ(ctl({"start", "db"}).code, 0);
    // The new worker was held and starts now; app.0, stopped by the operator's stop, stays so.
    EXPECT_TRUE(WaitFor([&] { return count_state("app", "running") == 1; })) << slurp(log);
}

// Found by the operator soak: a reload that gave a rolling pool (sockets) a dependency that
// was not up rolled it anyway, so it ran without its dependency.
TEST_P(Trust, AReloadOntoADependencyThatIsDownHoldsARollingPool) {
    const std::string sock =
        "    sockets: [{name: s, listen: \"unix:" + (dir / "web.sock").string() + "\"}]\n";
    const std::string db = "  db:\n    command: [sleep, \"100000\"]\n    workers: 2\n" + mode();
    // front needs web: it goes down with web and comes back with it.
    const std::string front =
        "  front:\n    command: [sleep, \"100000\"]\n    depends_on: [web]\n" + mode();
    start(db + "  web:\n    command: [sleep, \"100000\"]\n" + sock + mode() + front);
    ASSERT_TRUE(WaitFor([&] { return count_state("", "running") == 4; }));
    ASSERT_EQ(ctl({"stop", "db.1"}).code, 0);
    write_config(db + "  web:\n    command: [sleep, \"100000\"]\n" + sock +
                 "    depends_on: [db]\n" + mode() + front);
    auto r = ctl({"reload"});
    EXPECT_EQ(r.code, 0) << r.err;
    ASSERT_TRUE(WaitFor([&] {
        return count_state("web", "stopped") == 1 && count_state("front", "stopped") == 1;
    })) << slurp(log);
    for (const char* pool : {"web", "front"}) {
        auto w = workers(pool);
        EXPECT_EQ(w[0]["want"].as_string(), "up") << pool;
        EXPECT_EQ(w[0]["reason"].as_string(), "waiting for depends_on") << pool;
    }
    ASSERT_EQ(ctl({"start", "db.1"}).code, 0);
    EXPECT_TRUE(WaitFor([&] { return count_state("", "running") == 4; })) << slurp(log);
}

INSTANTIATE_TEST_SUITE_P(KillModes, Trust, ::testing::Values("auto", "group"),
                         [](const auto& p) { return p.param; });

}  // namespace
