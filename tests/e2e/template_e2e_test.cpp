// spawn: template end to end: a real cowherd forks each worker from the pool's template (the
// C example, or a Python app through python3 -m cowherd_template), and the workers share what
// the template loaded, outlive it, and move to a new one on a restart.
#include <set>

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include "tests/e2e/harness.hpp"

using namespace cow::test;
namespace json = boost::json;

namespace {

constexpr double kMiB = 1024.0 * 1024.0;

double num(const json::value& v) {
    return v.is_int64()    ? static_cast<double>(v.as_int64())
           : v.is_uint64() ? static_cast<double>(v.as_uint64())
                           : v.as_double();
}

class TemplatePools : public DaemonFixture {
  protected:
    std::string c_pool(int workers, int mib, const std::string& extra = "") {
        return "  web:\n    command: [\"" + bin("cow-template") + "\", --table-mib, \"" +
               std::to_string(mib) +
               "\"]\n    spawn: template\n    workers: " + std::to_string(workers) +
               "\n    start_timeout: 200ms\n" + extra;
    }
    std::string py_pool(const std::string& name, int workers, const std::string& args,
                        const std::string& extra = "", const std::string& more_env = "") {
        return "  " + name + ":\n    command: [/usr/bin/python3, -m, cowherd_template, " + args +
               "]\n    spawn: template\n    workers: " + std::to_string(workers) +
               "\n    start_timeout: 300ms\n    env: {PYTHONPATH: \"" + COWHERD_SOURCE_DIR +
               "/template:" + COWHERD_TEST_DATA + "/template\"" + more_env + "}\n" + extra;
    }
    json::object pool_status(const std::string& pool) {
        auto v = ctl_json({"status", pool});
        for (auto& p : v.as_object()["pools"].as_array())
            if (p.as_object()["name"] == json::value(pool)) return p.as_object();
        return {};
    }
    json::object tpl(const std::string& pool) {
        auto p = pool_status(pool);
        return p.contains("template") ? p["template"].as_object() : json::object{};
    }
    std::set<pid_t> pids(const std::string& pool) {
        std::set<pid_t> out;
        for (auto& w : workers(pool))
            out.insert(static_cast<pid_t>(as_int(w["pid"])));
        return out;
    }
    void expect_fresh_python_worker(const std::string& env);
    static std::set<int> open_fds(pid_t pid) {
        std::set<int> fds;
        if (DIR* d = opendir(("/proc/" + std::to_string(pid) + "/fd").c_str())) {
            while (dirent* e = readdir(d))
                if (e->d_name[0] != '.') fds.insert(std::atoi(e->d_name));
            closedir(d);
        }
        return fds;
    }
    static std::string status_of(pid_t pid, const std::string& key) {
        std::istringstream in(slurp("/proc/" + std::to_string(pid) + "/status"));
        std::string line;
        while (std::getline(in, line))
            if (line.rfind(key + ":", 0) == 0)
                return line.substr(line.find_first_not_of(" \t", key.size() + 1));
        return "";
    }
};

TEST_F(TemplatePools, WorkersAreForkedFromTheTemplateAndShareItsPages) {
    start(c_pool(4, 32));
    ASSERT_TRUE(WaitFor([&] { return count_state("web", "running") == 4; }));
    auto t = tpl("web");
    EXPECT_EQ(t["state"], "ready");
    const pid_t template_pid = static_cast<pid_t>(as_int(t["pid"]));
    ASSERT_GT(template_pid, 0);
    for (pid_t w : pids("web")) {
        EXPECT_EQ(status_of(w, "PPid"), std::to_string(daemon)) << "the daemon's own child";
        EXPECT_EQ(getsid(w), w);
    }
    // The pool's footprint counts the table about once, template included.
    json::object pool;
    auto mem = ctl_json({"mem", "web"});  // kept: the loop below points into it
    for (auto& p : mem.as_object()["pools"].as_array())
        if (p.as_object()["name"] == "web") pool = p.as_object();
    const double footprint = num(pool["totals"].as_object()["footprint"]);
    const double uss = num(pool["totals"].as_object()["uss"]);
    EXPECT_LE(footprint, (32 * kMiB + uss) * 1.1 + 8 * kMiB)
        << "five processes that each map the 32 MiB table";
    EXPECT_GE(footprint, 32 * kMiB);
    // The human view says where the workers came from.
    auto r = ctl({"status", "web"});
    EXPECT_NE(r.out.find("template of web: ready, pid " + std::to_string(template_pid)),
              std::string::npos)
        << r.out;
}

// mem --deep, from page frames: what each worker shares, it shares with the template.
TEST_F(TemplatePools, DeepMemAttributesTheSharedPagesToTheTemplate) {
    if (geteuid() != 0) GTEST_SKIP() << "mem --deep reads /proc/kpagecount, root only";
    start(c_pool(3, 32));
    ASSERT_TRUE(WaitFor([&] { return count_state("web", "running") == 3; }));
    auto deep = ctl_json({"mem", "--deep", "web"});  // kept: what follows points into it
    int workers_seen = 0;
    bool template_seen = false;
    for (auto& pv : deep.as_object()["processes"].as_array()) {
        auto& p = pv.as_object();
        if (p["worker"] == "web.template") {
            template_seen = true;
            EXPECT_TRUE(p["master"].as_bool());
            continue;
        }
        ++workers_seen;
        const double shared = num(p["pool_shared"]) + num(p["outside_shared"]);
        ASSERT_GT(shared, 32 * kMiB) << json::serialize(p);
        EXPECT_GE(num(p["with_master"]), 0.95 * shared) << json::serialize(p);
    }
    EXPECT_TRUE(template_seen);
    EXPECT_EQ(workers_seen, 3);
    auto r = ctl({"mem", "--deep", "web"});
    EXPECT_NE(r.out.find("WITH_TEMPLATE"), std::string::npos) << r.out;
}

TEST_F(TemplatePools, WorkersOutliveTheirTemplateAndANewOneReplacesIt) {
    start(c_pool(3, 8));
    ASSERT_TRUE(WaitFor([&] { return count_state("web", "running") == 3; }));
    const pid_t first = static_cast<pid_t>(as_int(tpl("web")["pid"]));
    const auto before = pids("web");
    ASSERT_EQ(kill(first, SIGKILL), 0);
    EXPECT_TRUE(WaitFor([&] { return log_count("template_lost") > 0; }));
    // The pool's restart policy brings a new template up with no worker asking for one.
    ASSERT_TRUE(WaitFor([&] {
        auto t = tpl("web");
        return t["state"] == "ready" && as_int(t["pid"]) != first;
    }));
    EXPECT_EQ(pids("web"), before) << "the workers kept serving";
    EXPECT_EQ(count_state("web", "running"), 3);
    EXPECT_EQ(log_count("a new one starts in 100ms"), 1) << "the pool's initial backoff";
    const auto second = tpl("web");
    EXPECT_EQ(as_int(second.at("generation")), 2);
    // A worker killed then is forked from it: no third template is needed.
    const pid_t victim = *before.begin();
    ASSERT_EQ(kill(victim, SIGKILL), 0);
    ASSERT_TRUE(
        WaitFor([&] { return count_state("web", "running") == 3 && !pids("web").count(victim); }));
    auto t = tpl("web");
    EXPECT_EQ(t["state"], "ready");
    EXPECT_EQ(as_int(t["pid"]), as_int(second.at("pid")));
    EXPECT_EQ(as_int(t["generation"]), 2);
    for (pid_t w : pids("web"))
        EXPECT_EQ(status_of(w, "PPid"), std::to_string(daemon));
    // A template that keeps dying comes back after a growing backoff, as a worker would.
    ASSERT_EQ(kill(static_cast<pid_t>(as_int(t["pid"])), SIGKILL), 0);
    EXPECT_TRUE(WaitFor([&] { return log_count("a new one starts in 200ms") == 1; }));
    EXPECT_TRUE(WaitFor([&] { return tpl("web")["state"] == "ready"; }));
    EXPECT_EQ(pids("web").size(), 3u);
}

// restart: never: nothing restarts, the template neither; the next spawn would start one.
TEST_F(TemplatePools, ALostTemplateStaysDownUnderRestartNever) {
    start(c_pool(2, 8, "    restart: never\n"));
    ASSERT_TRUE(WaitFor([&] { return count_state("web", "running") == 2; }));
    const pid_t first = static_cast<pid_t>(as_int(tpl("web")["pid"]));
    ASSERT_EQ(kill(first, SIGKILL), 0);
    ASSERT_TRUE(WaitFor([&] { return log_count("no new one (the pool wants none)") == 1; }));
    EXPECT_EQ(tpl("web")["state"], "down");
    EXPECT_EQ(count_state("web", "running"), 2);
}

// What the template prints while it loads is in the pool's log, under its own name.
TEST_F(TemplatePools, TheTemplatesOutputIsInThePoolsLog) {
    start(py_pool("web", 2, "--preload, tapp, --run, \"tapp:main\"", "",
                  ", TAPP_SAY: loading-the-table, TAPP_TABLE_MIB: \"1\""));
    ASSERT_TRUE(WaitFor([&] { return count_state("web", "running") == 2; }));
    ASSERT_TRUE(WaitFor([&] {
        auto r = ctl({"logs", "web"});
        return r.out.find("out: loading-the-table") != std::string::npos &&
               r.out.find("err: loading-the-table") != std::string::npos &&
               r.out.find("worker 1 pid") != std::string::npos;
    })) << ctl({"logs", "web"}).out;
    auto pool = ctl_json({"logs", "web"});  // kept: the loop points into it
    int template_lines = 0, worker_lines = 0;
    for (auto& l : pool.as_object()["lines"].as_array()) {
        const auto& who = l.as_object().at("worker");
        if (who == "web.template") {
            ++template_lines;
            EXPECT_NE(std::string(l.as_object().at("line").as_string()).find("loading-the-table"),
                      std::string::npos);
        } else {
            ++worker_lines;
        }
    }
    EXPECT_EQ(template_lines, 2) << "its stdout and its stderr line, once each";
    EXPECT_EQ(worker_lines, 2);
    auto alone = ctl_json({"logs", "web.template"});
    ASSERT_EQ(alone.as_object()["lines"].as_array().size(), 2u) << json::serialize(alone);
    for (auto& l : alone.as_object()["lines"].as_array())
        EXPECT_EQ(l.as_object().at("worker"), "web.template");
    auto stderr_only = ctl_json({"logs", "web.template", "--stderr"});
    ASSERT_EQ(stderr_only.as_object()["lines"].as_array().size(), 1u);
    EXPECT_EQ(log_count("web.template | err: loading-the-table"), 1) << "in the pool's sink too";
}

// The loop never waits for a template's answer: a stopped template leaves the daemon answering,
// its worker waits in starting and runs once the answer comes. A worker stopped while it waits
// is stopped at once, and the process forked for it never runs.
TEST_F(TemplatePools, AStalledTemplateNeverStallsTheDaemon) {
    start(c_pool(3, 8));
    ASSERT_TRUE(WaitFor([&] { return count_state("web", "running") == 3; }));
    const pid_t tp = static_cast<pid_t>(as_int(tpl("web")["pid"]));
    std::vector<std::pair<std::string, pid_t>> ws;
    for (auto& w : workers("web"))
        ws.emplace_back(std::string(w["name"].as_string()), static_cast<pid_t>(as_int(w["pid"])));
    ASSERT_EQ(ws.size(), 3u);
    ASSERT_EQ(kill(tp, SIGSTOP), 0);
    ASSERT_EQ(kill(ws[0].second, SIGKILL), 0);
    ASSERT_EQ(kill(ws[1].second, SIGKILL), 0);
    auto forking = [&] {
        int n = 0;
        for (auto& w : workers("web"))
            n += w["state"] == "starting" && w["reason"] == "forking from the pool's template";
        return n == 2;
    };
    // Seen through status, which answers while the requests wait; a stop ends at once.
    const bool seen = WaitFor(forking);
    const auto stopped = ctl({"stop", ws[1].first});
    kill(tp, SIGCONT);
    ASSERT_TRUE(seen) << ctl({"status", "web"}).out;
    ASSERT_EQ(stopped.code, 0) << stopped.err;
    EXPECT_NE(stopped.out.find("stopped before it started"), std::string::npos) << stopped.out;
    ASSERT_TRUE(WaitFor([&] { return count_state("web", "running") == 2; }));
    EXPECT_EQ(count_state("web", "stopped"), 1);
    EXPECT_EQ(as_int(tpl("web")["pid"]), tp) << "answered by the same template";
    EXPECT_EQ(log_count("did not answer"), 0);
    // What the template forked for the stopped worker exits without running: the daemon's
    // children are the template and the two running workers.
    auto children = [&] {
        int n = 0;
        if (DIR* d = opendir("/proc")) {
            while (dirent* e = readdir(d))
                if (std::isdigit(static_cast<unsigned char>(e->d_name[0])) &&
                    status_of(std::atoi(e->d_name), "PPid") == std::to_string(daemon))
                    ++n;
            closedir(d);
        }
        return n;
    };
    EXPECT_TRUE(WaitFor([&] { return children() == 3; })) << children();
    EXPECT_EQ(log_count("worker " + ws[1].first.substr(4) + " pid"), 1)
        << "the stopped worker's first run printed, its cancelled one did not";
    ASSERT_EQ(ctl({"start", ws[1].first}).code, 0);
    EXPECT_TRUE(WaitFor([&] { return count_state("web", "running") == 3; }));
    EXPECT_EQ(as_int(tpl("web")["pid"]), tp);
}

// One that never answers is given up on after 5 s: killed, and the worker forked from the next.
TEST_F(TemplatePools, ATemplateThatNeverAnswersIsReplaced) {
    start(c_pool(2, 8));
    ASSERT_TRUE(WaitFor([&] { return count_state("web", "running") == 2; }));
    const pid_t tp = static_cast<pid_t>(as_int(tpl("web")["pid"]));
    ASSERT_EQ(kill(tp, SIGSTOP), 0);
    const pid_t victim = *pids("web").begin();
    ASSERT_EQ(kill(victim, SIGKILL), 0);
    ASSERT_TRUE(WaitFor([&] { return log_count("did not answer within 5s") == 1; },
                        std::chrono::seconds(30)));
    ASSERT_TRUE(WaitFor(
        [&] {
            auto t = tpl("web");
            return t["state"] == "ready" && as_int(t["pid"]) != tp &&
                   count_state("web", "running") == 2;
        },
        std::chrono::seconds(30)));
    for (pid_t w : pids("web"))
        EXPECT_EQ(status_of(w, "PPid"), std::to_string(daemon));
}

TEST_F(TemplatePools, ARestartForksEveryWorkerFromANewTemplate) {
    start(c_pool(2, 8));
    ASSERT_TRUE(WaitFor([&] { return count_state("web", "running") == 2; }));
    const pid_t old_template = static_cast<pid_t>(as_int(tpl("web")["pid"]));
    const auto old = pids("web");
    auto r = ctl({"restart", "web"});
    ASSERT_EQ(r.code, 0) << r.err;
    ASSERT_TRUE(WaitFor([&] { return count_state("web", "running") == 2; }));
    for (pid_t p : pids("web"))
        EXPECT_FALSE(old.count(p));
    auto t = tpl("web");
    EXPECT_NE(as_int(t["pid"]), old_template);
    EXPECT_EQ(as_int(t["generation"]), 2);
    // The old template is gone, reaped by the daemon (not a zombie, not an orphan).
    EXPECT_TRUE(WaitFor([&] { return kill(old_template, 0) != 0; }));
}

TEST_F(TemplatePools, AThreadedTemplateIsRefusedUnlessThePoolAllowsIt) {
    start(py_pool("refused", 1, "--setup, \"tapp:start_thread\", --run, \"tapp:main\"") +
          py_pool("allowed", 1, "--setup, \"tapp:start_thread\", --run, \"tapp:main\"",
                  "    template_threads: allow\n"));
    ASSERT_TRUE(
        WaitFor([&] { return count_state("allowed", "running") == 1; }, std::chrono::seconds(30)));
    std::string why;
    ASSERT_TRUE(WaitFor(
        [&] {
            auto ws = workers("refused");
            if (ws.empty() || !ws[0]["error"].is_string()) return false;
            why = std::string(ws[0]["error"].as_string());
            return why.find("threads") != std::string::npos;
        },
        std::chrono::seconds(30)))
        << "no refusal";
    EXPECT_NE(why.find("the template has 2 threads; a fork copies only the calling one"),
              std::string::npos)
        << why;
    EXPECT_NE(count_state("refused", "running"), 1);
}

TEST_F(TemplatePools, ATemplateThatNeverSaysReadyIsKilledAndItsWorkersBackOff) {
    start(
        "  web:\n    command: [sleep, \"100000\"]\n    spawn: template\n"
        "    template_timeout: 200ms\n    backoff: {initial: 5s, max: 5s}\n");
    std::string why;
    ASSERT_TRUE(WaitFor([&] {
        auto ws = workers("web");
        if (ws.empty() || ws[0]["state"] != "backoff" || !ws[0]["error"].is_string()) return false;
        why = std::string(ws[0]["error"].as_string());
        return true;
    }));
    EXPECT_EQ(why, "the template did not say ready within template_timeout 200ms");
    EXPECT_EQ(tpl("web")["state"], "down");
    EXPECT_TRUE(WaitFor([&] { return log_count("old template pid") > 0; })) << "reaped";
}

// A Python app with a 256 MiB table and a few hundred thousand small objects built at import:
// 8 workers forked from its template hold it about once, where fork-exec'd copies hold it each.
TEST_F(TemplatePools, APythonPoolSharesItsTableAcrossEightWorkers) {
    const std::string env = ", TAPP_TABLE_MIB: \"256\", TAPP_OBJECTS: \"200000\"";
    start(py_pool("app", 8, "--preload, tapp, --run, \"tapp:main\"", "", env) +
          "  copies:\n    command: [/usr/bin/python3, -c, \"import tapp; tapp.main()\"]\n"
          "    workers: 2\n    start_timeout: 300ms\n    env: {PYTHONPATH: \"" +
          std::string(COWHERD_TEST_DATA) + "/template\"" + env + "}\n");
    ASSERT_TRUE(WaitFor(
        [&] { return count_state("app", "running") == 8 && count_state("copies", "running") == 2; },
        std::chrono::seconds(60)));
    auto mem = ctl_json({"mem"});  // kept: what follows points into it
    json::object app, copies;
    for (auto& p : mem.as_object()["pools"].as_array()) {
        if (p.as_object()["name"] == "app") app = p.as_object();
        if (p.as_object()["name"] == "copies") copies = p.as_object();
    }
    const auto& totals = app["totals"].as_object();
    const double footprint = num(totals.at("footprint"));
    const double uss = num(totals.at("uss"));
    double template_rss = 0;
    for (auto& wv : app["workers"].as_array()) {
        auto& w = wv.as_object();
        auto& self = w["self"].as_object();
        if (w["name"] == "app.template") {
            template_rss = num(self["rss"]);
            continue;
        }
        // Each worker maps the whole table, and it is not its own.
        EXPECT_GE(num(self["rss"]), 256 * kMiB);
        EXPECT_LE(num(self["uss"]), 32 * kMiB) << json::serialize(w);
    }
    ASSERT_GT(template_rss, 256 * kMiB);
    // The pool holds what the template loaded once (the table, and the interpreter with its
    // objects: about 40 MiB here, so "the table + 10%" would not hold), plus what each worker
    // made its own.
    EXPECT_LE(footprint, (template_rss + uss) * 1.1)
        << "footprint " << footprint / kMiB << " MiB, template rss " << template_rss / kMiB
        << " MiB, uss " << uss / kMiB << " MiB";
    // Fork-exec'd copies of the same app each hold a table of their own.
    for (auto& wv : copies["workers"].as_array())
        EXPECT_GE(num(wv.as_object()["self"].as_object()["uss"]), 256 * kMiB);
    // mem's "saved vs fork-exec" for the template pool is what the exec'd copies show: 8 of
    // them would cost 4 times what 2 cost, less what the template pool costs.
    EXPECT_FALSE(copies.contains("saved_vs_exec"));
    ASSERT_TRUE(app.contains("saved_vs_exec"));
    const double saved = num(app["saved_vs_exec"]);
    const double measured = num(copies["totals"].as_object()["footprint"]) * 4 - footprint;
    EXPECT_GE(saved, 7 * 256 * kMiB);
    EXPECT_NEAR(saved, measured, measured * 0.15)
        << "saved_vs_exec " << saved / kMiB << " MiB, measured " << measured / kMiB << " MiB";
}

// Through the template, a worker gets the pool's socket as fd 3 and nothing else of the
// daemon's or the template's protocol, and sits in its own cgroup when there are cgroups.
TEST_F(TemplatePools, AWorkerGetsTheSocketsAndNoProtocolFd) {
    const int port = free_port();
    start(c_pool(
        1, 1,
        "    sockets: [{name: http, listen: \"tcp://127.0.0.1:" + std::to_string(port) + "\"}]\n"));
    ASSERT_TRUE(WaitFor([&] { return count_state("web", "running") == 1; }));
    const pid_t w = *pids("web").begin();
    EXPECT_EQ(open_fds(w), (std::set<int>{0, 1, 2, 3}));
    char link[128] = {};
    ASSERT_GT(readlink(("/proc/" + std::to_string(w) + "/fd/3").c_str(), link, sizeof link - 1), 0);
    EXPECT_EQ(std::string(link).rfind("socket:", 0), 0u) << link;
    const std::string line = slurp(log);
    EXPECT_NE(line.find("listen_pid " + std::to_string(w) + " template_fd -"), std::string::npos)
        << "LISTEN_PID is the worker's own, and the protocol's variable is gone";
    // In cgroup kill mode, each worker generation has a cgroup of its own ("web.0-...g1"):
    // the worker is in it from before it runs.
    if (log_count("kill mode: cgroup") > 0) {
        EXPECT_NE(slurp("/proc/" + std::to_string(w) + "/cgroup").find("/web.0-"),
                  std::string::npos)
            << slurp("/proc/" + std::to_string(w) + "/cgroup");
    }
}

// The Python template makes each worker with one clone(CLONE_PARENT): the worker is cowherd's
// own child, leads a session of its own, holds only its stdio and the pool's socket, and has
// the signal state a fresh python3 has (SIGPIPE and SIGXFSZ ignored, SIGINT caught, nothing
// blocked but the SIGTERM tapp blocks to sigwait on it), with either way of forking.
TEST_F(TemplatePools, APythonWorkerIsCowherdsChildWithAFreshProcessState) {
    expect_fresh_python_worker("");
}

TEST_F(TemplatePools, APythonWorkerForkedTwiceIsCowherdsChildWithAFreshProcessState) {
    expect_fresh_python_worker(", COWHERD_TEMPLATE_CLONE: \"0\"");
}

void TemplatePools::expect_fresh_python_worker(const std::string& env) {
    const int port = free_port();
    start(py_pool(
        "app", 1, "--preload, tapp, --run, \"tapp:main\"",
        "    sockets: [{name: http, listen: \"tcp://127.0.0.1:" + std::to_string(port) + "\"}]\n",
        env + ", TAPP_HANDLERS: \"1\""));  // handlers, an ignore and a mask in the template
    ASSERT_TRUE(
        WaitFor([&] { return count_state("app", "running") == 1; }, std::chrono::seconds(60)));
    const pid_t w = *pids("app").begin();
    // Its line says main() has run (and blocked SIGTERM).
    ASSERT_TRUE(WaitFor([&] { return log_count("listen_pid " + std::to_string(w)) > 0; }));
    EXPECT_EQ(status_of(w, "PPid"), std::to_string(daemon));
    const std::string stat = slurp("/proc/" + std::to_string(w) + "/stat");
    std::istringstream fields(stat.substr(stat.rfind(')') + 2));
    std::string state, ppid, pgrp, session;
    fields >> state >> ppid >> pgrp >> session;
    EXPECT_EQ(session, std::to_string(w)) << stat;
    EXPECT_EQ(pgrp, std::to_string(w)) << stat;
    // sigwait() unblocks what it waits for while it waits: SIGTERM may show either way.
    const std::string blocked = status_of(w, "SigBlk");
    EXPECT_TRUE(blocked == "0000000000000000" || blocked == "0000000000004000") << blocked;
    EXPECT_EQ(status_of(w, "SigIgn"), "0000000001001000");
    EXPECT_EQ(status_of(w, "SigCgt"), "0000000000000002");
    EXPECT_EQ(open_fds(w), (std::set<int>{0, 1, 2, 3}));
    EXPECT_EQ(log_count("listen_pid " + std::to_string(w) + " template_fd -"), 1);
}

// `top` counts the template in its pool's footprint, as `mem` does: without it, the pages
// the template holds for its workers would be missing from the pool.
TEST_F(TemplatePools, TopCountsTheTemplateInThePoolsFootprint) {
    start(c_pool(2, 32), "  memory:\n    sample_every: 50ms\n");
    ASSERT_TRUE(WaitFor([&] { return count_state("web", "running") == 2; }));
    double top_footprint = 0;
    ASSERT_TRUE(WaitFor([&] {
        auto v = ctl_json({"top"});
        for (auto& p : v.as_object()["pools"].as_array()) {
            auto& po = p.as_object();
            if (po["name"] != "web" || !po["memory"].is_object()) continue;
            top_footprint = num(po["memory"].as_object()["footprint"]);
        }
        return top_footprint >= 30 * kMiB;
    })) << "top's footprint "
        << top_footprint / kMiB << " MiB, the table alone is 32";
    auto mem = ctl_json({"mem", "web"});
    const double mem_footprint =
        num(mem.as_object()["pools"].as_array()[0].as_object()["totals"].as_object()["footprint"]);
    EXPECT_NEAR(top_footprint, mem_footprint, mem_footprint * 0.1);
}

// A rolling restart onto a new template, under load, fails no request.
TEST_F(TemplatePools, ARollOntoANewTemplateFailsNoRequest) {
    const int port = free_port();
    start(py_pool("web", 2, "--preload, thttp, --run, \"thttp:main\"",
                  "    sockets: [{name: http, listen: \"tcp://127.0.0.1:" + std::to_string(port) +
                      "\"}]\n    stop_timeout: 5s\n"));
    ASSERT_TRUE(
        WaitFor([&] { return count_state("web", "running") == 2; }, std::chrono::seconds(60)));
    const pid_t old_template = static_cast<pid_t>(as_int(tpl("web")["pid"]));
    std::string report;
    const int load = restart_under_load(port, "web", report);
    EXPECT_EQ(load, 0) << "requests failed during the roll:\n" << report;
    EXPECT_NE(as_int(tpl("web")["pid"]), old_template);
    EXPECT_TRUE(WaitFor([&] { return kill(old_template, 0) != 0; })) << "the old template is gone";
}

}  // namespace
