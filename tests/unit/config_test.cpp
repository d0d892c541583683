// Loading valid configs: defaults, every key, paths, summary, and the shipped reference file.
#include "config/config.hpp"

#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <grp.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <unistd.h>

#include "config/plan.hpp"
#include "core/paths.hpp"

namespace cow::config {
namespace {

using namespace std::chrono_literals;

std::string describe_errors(const LoadResult& r) {
    std::string out;
    for (const auto& e : r.errors)
        out += e.to_string() + "\n";
    return out;
}

// Loads text that must be valid, with relative paths resolved against /base.
std::shared_ptr<const Config> must_load(std::string_view yaml) {
    LoadResult r = load_text(yaml, "t.yaml", "/base");
    EXPECT_TRUE(r.ok()) << describe_errors(r);
    EXPECT_TRUE(r.errors.empty());
    return r.config;
}

TEST(ConfigLoad, AnExplicitGroupWinsWhereverItIsWritten) {
    if (geteuid() != 0) GTEST_SKIP() << "switching users needs a root cowherd";
    const passwd* nobody = getpwnam("nobody");
    const group* tty = getgrnam("tty");
    if (!nobody || !tty) GTEST_SKIP() << "needs the nobody user and the tty group";
    const gid_t tty_gid = tty->gr_gid;
    const uid_t nobody_uid = nobody->pw_uid;
    for (const char* pool :
         {"{command: x, group: tty, user: nobody}", "{command: x, user: nobody, group: tty}"}) {
        auto cfg = must_load(std::string("pools:\n  a: ") + pool + "\n");
        ASSERT_TRUE(cfg);
        const auto& id = cfg->pools[0].identity;
        EXPECT_EQ(id.uid, nobody_uid) << pool;
        EXPECT_EQ(id.gid, tty_gid) << pool;
    }
}

TEST(ConfigLoad, TemplatePoolSettings) {
    auto cfg = must_load(
        "pools:\n  a: {command: x, spawn: template, template_threads: allow, "
        "template_timeout: 2m}\n  b: {command: x}\n");
    ASSERT_TRUE(cfg);
    EXPECT_EQ(cfg->pools[0].spawn, SpawnMode::template_);
    EXPECT_TRUE(cfg->pools[0].template_threads);
    EXPECT_EQ(cfg->pools[0].template_timeout, std::chrono::minutes(2));
    EXPECT_EQ(cfg->pools[1].spawn, SpawnMode::exec) << "fork-exec stays the default";
    EXPECT_FALSE(cfg->pools[1].template_threads);
    auto bad = load_text("pools:\n  a: {command: x, spawn: clone}\n", "t.yaml", "/base");
    ASSERT_FALSE(bad.ok());
    EXPECT_NE(bad.errors.front().to_string().find("pools.a.spawn"), std::string::npos)
        << bad.errors.front().to_string();
}

TEST(ConfigLoad, ReloadPlanListsEveryChangedDaemonKey) {
    auto a = must_load("pools: {a: {command: x}}\n");
    auto b = must_load(
        "daemon: {socket_group: 4, readonly_group: 5, metrics: \"127.0.0.1:9464\", "
        "log_format: json}\npools: {a: {command: x}}\n");
    ASSERT_TRUE(a && b);
    auto plan = plan_reload(*a, *b);
    EXPECT_EQ(plan.daemon_keys, (std::vector<std::string>{"log_format", "metrics", "socket_group",
                                                          "readonly_group"}));
}

// daemon.memory.sample_every: 10s by default, 0 turns it off, under 10ms is refused with its
// key path; a change is a daemon key in the reload plan.
TEST(ConfigLoad, MemorySampleEvery) {
    auto d = must_load("pools: {a: {command: x}}\n");
    ASSERT_TRUE(d);
    EXPECT_EQ(d->daemon.memory_sample_every, std::chrono::seconds(10));
    auto off = must_load("daemon: {memory: {sample_every: 0}}\npools: {a: {command: x}}\n");
    ASSERT_TRUE(off);
    EXPECT_EQ(off->daemon.memory_sample_every.count(), 0);
    auto fast = must_load("daemon: {memory: {sample_every: 10ms}}\npools: {a: {command: x}}\n");
    ASSERT_TRUE(fast);
    EXPECT_EQ(fast->daemon.memory_sample_every, std::chrono::milliseconds(10));
    EXPECT_EQ(plan_reload(*d, *fast).daemon_keys, (std::vector<std::string>{"memory"}));
    for (const char* bad : {"daemon: {memory: {sample_every: 5ms}}\npools: {a: {command: x}}\n",
                            "daemon: {memory: {every: 1s}}\npools: {a: {command: x}}\n",
                            "daemon: {memory: 10s}\npools: {a: {command: x}}\n"}) {
        auto r = load_text(bad, "t.yaml", "/base");
        ASSERT_FALSE(r.ok()) << bad;
        EXPECT_NE(r.errors.front().to_string().find("daemon.memory"), std::string::npos)
            << r.errors.front().to_string();
    }
}

// Probes and hooks apply in place, unless a probe's port (each process's COWHERD_PROBE_PORT)
// moves; any other change restarts the pool.
TEST(ReloadPlan, ProbesAndHooksUpdateInPlaceUnlessThePortMoves) {
    auto kind = [](const char* from, const char* to) {
        auto a = must_load(std::string("pools:\n  a:\n    command: x\n") + from);
        auto b = must_load(std::string("pools:\n  a:\n    command: x\n") + to);
        if (!a || !b) return std::string("load failed");
        return std::string(to_string(plan_reload(*a, *b).pools.at(0).kind));
    };
    EXPECT_EQ(kind("", "    liveness: {tcp: \"127.0.0.1:1\"}\n"), "updated");
    EXPECT_EQ(kind("    liveness: {tcp: \"127.0.0.1:1\", failures: 2}\n",
                   "    liveness: {tcp: \"127.0.0.1:1\", failures: 5}\n    workers: 3\n"),
              "updated");
    EXPECT_EQ(kind("", "    on_exit: [/bin/true]\n"), "updated");
    EXPECT_EQ(kind("    readiness: {tcp: \"127.0.0.1:{port}\", port: 9000}\n",
                   "    readiness: {tcp: \"127.0.0.1:{port}\", port: 9000, interval: 2s}\n"),
              "updated");
    EXPECT_EQ(kind("    readiness: {tcp: \"127.0.0.1:{port}\", port: 9000}\n",
                   "    readiness: {tcp: \"127.0.0.1:{port}\", port: 9100}\n"),
              "changed");
    EXPECT_EQ(kind("", "    liveness: {tcp: \"127.0.0.1:1\"}\n    env: {A: b}\n"), "changed");
}

TEST(ConfigLoad, MinimalConfigGetsDefaults) {
    auto cfg = must_load(
        "pools:\n"
        "  web:\n"
        "    command: [/bin/true]\n");
    ASSERT_TRUE(cfg);
    EXPECT_EQ(cfg->source_path, "");
    EXPECT_EQ(cfg->daemon.socket, cow::default_socket_path());
    EXPECT_EQ(cfg->daemon.socket_mode, 0600u);
    EXPECT_EQ(cfg->daemon.log_level, "info");
    EXPECT_EQ(cfg->daemon.shutdown_timeout, 30s);
    ASSERT_EQ(cfg->pools.size(), 1u);

    PoolConfig expected;
    expected.name = "web";
    expected.command = {"/bin/true"};
    EXPECT_EQ(cfg->pools[0], expected);
    // Spelled out so a change of default shows up here and gets documented.
    const PoolConfig& p = cfg->pools[0];
    EXPECT_EQ(p.workers, 1);
    EXPECT_EQ(p.cwd, "");
    EXPECT_TRUE(p.env.empty());
    EXPECT_TRUE(p.autostart);
    EXPECT_EQ(p.restart, RestartPolicy::always);
    EXPECT_EQ(p.start_timeout, 1s);
    EXPECT_EQ(p.backoff.initial, 100ms);
    EXPECT_EQ(p.backoff.max, 30s);
    EXPECT_EQ(p.max_restarts.count, 10);
    EXPECT_EQ(p.max_restarts.within, 60s);
    EXPECT_EQ(p.stop_signal, SIGTERM);
    EXPECT_EQ(p.stop_timeout, 10s);
    EXPECT_EQ(p.kill_mode, KillMode::auto_);
    EXPECT_EQ(p.orphans, OrphanPolicy::kill);
    EXPECT_FALSE(p.essential);
    EXPECT_TRUE(p.depends_on.empty());
}

TEST(ConfigLoad, EveryKeyParsed) {
    auto cfg = must_load(
        "daemon:\n"
        "  socket: /run/test/ctl.sock\n"
        "  socket_mode: \"0660\"\n"
        "  log_level: debug\n"
        "  shutdown_timeout: 1m\n"
        "pools:\n"
        "  db:\n"
        "    command: /usr/bin/db --port 5432\n"
        "  web:\n"
        "    command: [\"/usr/bin/python3\", \"-m\", \"app\"]\n"
        "    workers: 4\n"
        "    cwd: /srv/app\n"
        "    env: {PORT: \"8000\", MODE: prod}\n"
        "    autostart: false\n"
        "    restart: on-failure\n"
        "    start_timeout: 2500ms\n"
        "    backoff: {initial: 250ms, max: 1m}\n"
        "    max_restarts: {count: 3, within: 5m}\n"
        "    stop_signal: SIGINT\n"
        "    stop_timeout: 20s\n"
        "    kill_mode: group\n"
        "    orphans: keep\n"
        "    essential: true\n"
        "    depends_on: [db]\n");
    ASSERT_TRUE(cfg);
    EXPECT_EQ(cfg->daemon.socket, "/run/test/ctl.sock");
    EXPECT_EQ(cfg->daemon.socket_mode, 0660u);
    EXPECT_EQ(cfg->daemon.log_level, "debug");
    EXPECT_EQ(cfg->daemon.shutdown_timeout, 60s);
    ASSERT_EQ(cfg->pools.size(), 2u);
    EXPECT_EQ(cfg->pools[0].command, (std::vector<std::string>{"/usr/bin/db", "--port", "5432"}));
    const PoolConfig& w = cfg->pools[1];
    EXPECT_EQ(w.name, "web");
    EXPECT_EQ(w.command, (std::vector<std::string>{"/usr/bin/python3", "-m", "app"}));
    EXPECT_EQ(w.workers, 4);
    EXPECT_EQ(w.cwd, "/srv/app");
    using Env = std::vector<std::pair<std::string, std::string>>;
    EXPECT_EQ(w.env, (Env{{"PORT", "8000"}, {"MODE", "prod"}}));
    EXPECT_FALSE(w.autostart);
    EXPECT_EQ(w.restart, RestartPolicy::on_failure);
    EXPECT_EQ(w.start_timeout, 2500ms);
    EXPECT_EQ(w.backoff, (Backoff{250ms, 60s}));
    EXPECT_EQ(w.max_restarts, (MaxRestarts{3, 300s}));
    EXPECT_EQ(w.stop_signal, SIGINT);
    EXPECT_EQ(w.stop_timeout, 20s);
    EXPECT_EQ(w.kill_mode, KillMode::group);
    EXPECT_EQ(w.orphans, OrphanPolicy::keep);
    EXPECT_TRUE(w.essential);
    EXPECT_EQ(w.depends_on, (std::vector<std::string>{"db"}));
}

TEST(ConfigLoad, PoolOrderIsFileOrder) {
    auto cfg = must_load(
        "pools:\n"
        "  zeta: {command: z}\n"
        "  alpha: {command: a}\n"
        "  mid: {command: m}\n");
    ASSERT_TRUE(cfg);
    ASSERT_EQ(cfg->pools.size(), 3u);
    EXPECT_EQ(cfg->pools[0].name, "zeta");
    EXPECT_EQ(cfg->pools[1].name, "alpha");
    EXPECT_EQ(cfg->pools[2].name, "mid");
}

TEST(ConfigLoad, FindPool) {
    auto cfg = must_load("pools: {a: {command: x}, b.c: {command: y}}\n");
    ASSERT_TRUE(cfg);
    ASSERT_NE(cfg->find_pool("b.c"), nullptr);
    EXPECT_EQ(cfg->find_pool("b.c")->command[0], "y");
    EXPECT_EQ(cfg->find_pool("a"), &cfg->pools[0]);
    EXPECT_EQ(cfg->find_pool("b"), nullptr);
    EXPECT_EQ(cfg->find_pool(""), nullptr);
}

TEST(ConfigLoad, CommandStringIsSplitWithoutAShell) {
    auto cfg = must_load(
        "pools:\n"
        "  a:\n"
        "    command: /bin/sh -c 'echo \"$HOME\" | wc'  x\\ y\n");
    ASSERT_TRUE(cfg);
    EXPECT_EQ(cfg->pools[0].command,
              (std::vector<std::string>{"/bin/sh", "-c", "echo \"$HOME\" | wc", "x y"}));
}

TEST(ConfigLoad, ListCommandKeepsScalarsAsText) {
    auto cfg = must_load("pools: {a: {command: [/bin/sleep, 1000, \"\", true]}}\n");
    ASSERT_TRUE(cfg);
    EXPECT_EQ(cfg->pools[0].command, (std::vector<std::string>{"/bin/sleep", "1000", "", "true"}));
}

TEST(ConfigLoad, SocketModeForms) {
    struct Case {
        const char* text;
        mode_t mode;
    };
    for (auto c : {Case{"\"0660\"", 0660}, Case{"660", 0660}, Case{"0640", 0640},
                   Case{"\"600\"", 0600}, Case{"0o700", 0700}, Case{"0", 0}, Case{"777", 0777}}) {
        std::string yaml =
            std::string("daemon: {socket_mode: ") + c.text + "}\npools: {a: {command: x}}\n";
        auto cfg = must_load(yaml);
        ASSERT_TRUE(cfg) << c.text;
        EXPECT_EQ(cfg->daemon.socket_mode, c.mode) << c.text;
    }
}

TEST(ConfigLoad, BooleanSpellings) {
    for (const char* t : {"true", "True", "TRUE", "yes", "Yes", "on", "ON"}) {
        auto cfg = must_load(std::string("pools: {a: {command: x, essential: ") + t + "}}\n");
        ASSERT_TRUE(cfg) << t;
        EXPECT_TRUE(cfg->pools[0].essential) << t;
    }
    for (const char* t : {"false", "False", "no", "NO", "off", "Off"}) {
        auto cfg = must_load(std::string("pools: {a: {command: x, autostart: ") + t + "}}\n");
        ASSERT_TRUE(cfg) << t;
        EXPECT_FALSE(cfg->pools[0].autostart) << t;
    }
}

TEST(ConfigLoad, SignalSpellings) {
    for (const char* t : {"TERM", "SIGTERM", "term", "15"}) {
        auto cfg = must_load(std::string("pools: {a: {command: x, stop_signal: ") + t + "}}\n");
        ASSERT_TRUE(cfg) << t;
        EXPECT_EQ(cfg->pools[0].stop_signal, SIGTERM) << t;
    }
    auto cfg = must_load("pools: {a: {command: x, stop_signal: QUIT}}\n");
    ASSERT_TRUE(cfg);
    EXPECT_EQ(cfg->pools[0].stop_signal, SIGQUIT);
}

TEST(ConfigLoad, ZeroWorkersAndZeroTimeoutsAllowed) {
    auto cfg = must_load(
        "daemon: {shutdown_timeout: 0}\n"
        "pools: {a: {command: x, workers: 0, start_timeout: 0s, stop_timeout: 0ms,\n"
        "            max_restarts: {count: 0, within: 1s}}}\n");
    ASSERT_TRUE(cfg);
    EXPECT_EQ(cfg->daemon.shutdown_timeout, 0ms);
    EXPECT_EQ(cfg->pools[0].workers, 0);
    EXPECT_EQ(cfg->pools[0].start_timeout, 0ms);
    EXPECT_EQ(cfg->pools[0].stop_timeout, 0ms);
    EXPECT_EQ(cfg->pools[0].max_restarts.count, 0);
}

TEST(ConfigLoad, PartialBackoffKeepsOtherDefault) {
    auto cfg = must_load("pools: {a: {command: x, backoff: {max: 2s}}}\n");
    ASSERT_TRUE(cfg);
    EXPECT_EQ(cfg->pools[0].backoff, (Backoff{100ms, 2s}));
}

TEST(ConfigLoad, RelativePathsResolveAgainstBaseDirLexically) {
    auto cfg = must_load(
        "daemon: {socket: run/../ctl.sock}\n"
        "pools:\n"
        "  a: {command: x, cwd: app}\n"
        "  b: {command: x, cwd: ../other/./dir/}\n"
        "  c: {command: x, cwd: /abs//path/}\n"
        "  d: {command: x, cwd: .}\n");
    ASSERT_TRUE(cfg);
    EXPECT_EQ(cfg->daemon.socket, "/base/ctl.sock");
    EXPECT_EQ(cfg->pools[0].cwd, "/base/app");
    EXPECT_EQ(cfg->pools[1].cwd, "/other/dir");
    EXPECT_EQ(cfg->pools[2].cwd, "/abs/path");
    EXPECT_EQ(cfg->pools[3].cwd, "/base");
}

TEST(ConfigLoad, EnvValuesBecomeTextInFileOrder) {
    auto cfg = must_load(
        "pools:\n"
        "  a:\n"
        "    command: x\n"
        "    env:\n"
        "      Z_LAST: 8000\n"
        "      _A: true\n"
        "      EMPTY: \"\"\n"
        "      RATIO: 1.50\n"
        "      NULLTEXT: \"null\"\n");
    ASSERT_TRUE(cfg);
    using Env = std::vector<std::pair<std::string, std::string>>;
    EXPECT_EQ(cfg->pools[0].env, (Env{{"Z_LAST", "8000"},
                                      {"_A", "true"},
                                      {"EMPTY", ""},
                                      {"RATIO", "1.50"},
                                      {"NULLTEXT", "null"}}));
}

TEST(ConfigLoad, AnchorsAndAliasesWithinBudget) {
    auto cfg = must_load(
        "pools:\n"
        "  a: {command: &cmd [/bin/app, --serve], env: &env {A: b}}\n"
        "  b: {command: *cmd, env: *env}\n");
    ASSERT_TRUE(cfg);
    EXPECT_EQ(cfg->pools[1].command, cfg->pools[0].command);
    EXPECT_EQ(cfg->pools[1].env, cfg->pools[0].env);
}

TEST(ConfigLoad, EmptyDaemonSectionAndDocumentMarkers) {
    auto cfg = must_load(
        "---\n"
        "daemon:\n"
        "pools: {a: {command: x}}\n"
        "...\n");
    ASSERT_TRUE(cfg);
    EXPECT_EQ(cfg->daemon.log_level, "info");
}

TEST(ConfigLoad, WindowsLineEndingsAndByteOrderMark) {
    auto cfg =
        must_load("\xef\xbb\xbfpools:\r\n  a:\r\n    command: /bin/true x\r\n    workers: 2\r\n");
    ASSERT_TRUE(cfg);
    EXPECT_EQ(cfg->pools[0].command, (std::vector<std::string>{"/bin/true", "x"}));
    EXPECT_EQ(cfg->pools[0].workers, 2);
}

TEST(ConfigLoad, BlockScalarCommand) {
    auto cfg = must_load(
        "pools:\n"
        "  a:\n"
        "    command: >-\n"
        "      /bin/sh -c\n"
        "      'echo [hi]'\n"
        "    workers: 2\n");
    ASSERT_TRUE(cfg);
    EXPECT_EQ(cfg->pools[0].command, (std::vector<std::string>{"/bin/sh", "-c", "echo [hi]"}));
    EXPECT_EQ(cfg->pools[0].workers, 2);
}

TEST(ConfigLoad, EmptyBaseDirMeansCurrentDirectory) {
    LoadResult r = load_text("pools: {a: {command: x, cwd: sub}}\n", "t.yaml", "");
    ASSERT_TRUE(r.ok()) << describe_errors(r);
    std::string cwd = std::filesystem::current_path().lexically_normal().string();
    if (cwd.size() > 1 && cwd.back() == '/') cwd.pop_back();
    EXPECT_EQ(r.config->pools[0].cwd, cwd + "/sub");
}

TEST(ConfigFile, RelativePathsResolveAgainstTheFilesDirectory) {
    std::string path = COWHERD_TEST_DATA "/config/relative_paths.yaml";
    LoadResult r = load_file(path);
    ASSERT_TRUE(r.ok()) << describe_errors(r);
    std::string dir = std::filesystem::path(COWHERD_TEST_DATA "/config").lexically_normal();
    EXPECT_EQ(r.config->source_path, std::filesystem::path(path).lexically_normal().string());
    EXPECT_EQ(r.config->daemon.socket, dir + "/run/cowherd.sock");
    EXPECT_EQ(r.config->pools[0].cwd, dir + "/srv");
}

TEST(ConfigFile, MissingFile) {
    LoadResult r = load_file("/nonexistent/cowherd.yaml");
    ASSERT_FALSE(r.ok());
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_EQ(r.errors[0].line, 0);
    EXPECT_EQ(r.errors[0].to_string(),
              "/nonexistent/cowherd.yaml: cannot open: No such file or directory");
}

TEST(ConfigFile, DirectoryIsNotAConfig) {
    LoadResult r = load_file(COWHERD_TEST_DATA "/config");
    ASSERT_FALSE(r.ok());
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_NE(r.errors[0].message.find("is a directory"), std::string::npos);
}

TEST(ConfigFile, ErrorsNameTheFileAsGiven) {
    LoadResult r = load_file(COWHERD_TEST_DATA "/config/several_errors.yaml");
    ASSERT_FALSE(r.ok());
    ASSERT_FALSE(r.errors.empty());
    for (const auto& e : r.errors)
        EXPECT_EQ(e.file, COWHERD_TEST_DATA "/config/several_errors.yaml");
}

TEST(ConfigFile, ReferenceExampleLoadsAndUsesEveryKey) {
    // Pool "jobs" sets user and group, which a non-root cowherd refuses at load time.
    if (geteuid() != 0)
        GTEST_SKIP() << "reference.yaml uses the privilege keys, which need a root cowherd";
    const std::string path = COWHERD_SOURCE_DIR "/config/examples/reference.yaml";
    LoadResult r = load_file(path);
    ASSERT_TRUE(r.ok()) << describe_errors(r);
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    // Every key the loader accepts, nested ones included: the top level, daemon_section.cpp,
    // pool_section.cpp, and identity.cpp for rlimits.
    const char* const kKeys[] = {
        // top level
        "daemon:", "pools:",
        // daemon
        "socket:", "socket_mode:", "socket_group:", "readonly_group:", "log_level:", "log_format:",
        "log_file:", "log_dir:", "log_line_max:", "metrics:", "shutdown_timeout:",
        // pools.NAME
        "command:", "workers:", "cwd:", "env:", "autostart:", "restart:", "start_timeout:",
        "backoff:", "max_restarts:", "stop_signal:", "stop_timeout:", "kill_mode:", "orphans:",
        "essential:", "depends_on:", "memory:", "sockets:", "ready:", "watchdog:", "stdout:",
        "stderr:", "log_backpressure:", "log_ring:",
        // pools.NAME, privileges
        "user:", "group:", "supplementary_groups:", "umask:", "rlimits:", "no_new_privs:",
        "oom_score_adj:", "clear_env:", "env_remove:",
        // backoff, max_restarts, memory
        "initial:", "max:", "count:", "within:", "max_private:", "check_every:",
        // sockets items
        "name:", "listen:", "mode:", "backlog:", "reuse_port:",
        // stdout / stderr mappings
        "sink:", "per_worker:", "max_size:", "keep:",
        // rlimits {soft, hard}
        "soft:", "hard:",
        // probes and hooks
        "readiness:", "liveness:", "http:", "tcp:", "exec:", "port:", "interval:", "timeout:",
        "initial_delay:", "failures:", "status:", "on_exit:", "on_fatal:", "hook_timeout:",
        // template pools
        "spawn:", "template_threads:", "template_timeout:"};
    for (const char* key : kKeys) {
        bool used = false;
        for (const char* before : {"\n", " ", "{"})
            used = used || text.str().find(before + std::string(key)) != std::string::npos;
        EXPECT_TRUE(used) << key << " is not used in reference.yaml";
    }
}

TEST(ConfigErrorFormat, ToString) {
    ConfigError e{"demo.yaml", 12, 14, "pools.web.workers", "expected an integer, got \"four\""};
    EXPECT_EQ(e.to_string(),
              "demo.yaml:12:14: pools.web.workers: expected an integer, got \"four\"");
    e.line = 0;
    EXPECT_EQ(e.to_string(), "demo.yaml: pools.web.workers: expected an integer, got \"four\"");
    e.key_path = "";
    EXPECT_EQ(e.to_string(), "demo.yaml: expected an integer, got \"four\"");
}

TEST(ConfigEnums, ToString) {
    EXPECT_EQ(to_string(RestartPolicy::always), "always");
    EXPECT_EQ(to_string(RestartPolicy::on_failure), "on-failure");
    EXPECT_EQ(to_string(RestartPolicy::never), "never");
    EXPECT_EQ(to_string(KillMode::auto_), "auto");
    EXPECT_EQ(to_string(KillMode::cgroup), "cgroup");
    EXPECT_EQ(to_string(KillMode::group), "group");
    EXPECT_EQ(to_string(OrphanPolicy::kill), "kill");
    EXPECT_EQ(to_string(OrphanPolicy::keep), "keep");
}

TEST(ConfigSummary, DescribesDaemonAndEachPool) {
    auto cfg = must_load(
        "daemon: {socket: /run/c.sock, socket_mode: 660, log_level: warn, shutdown_timeout: 90s}\n"
        "pools:\n"
        "  web:\n"
        "    command: [/bin/sleep, \"10 00\"]\n"
        "    workers: 4\n"
        "    restart: on-failure\n"
        "    start_timeout: 1500ms\n"
        "    stop_signal: INT\n"
        "    depends_on: [db]\n"
        "    essential: true\n"
        "  db:\n"
        "    command: /usr/bin/db\n");
    ASSERT_TRUE(cfg);
    EXPECT_EQ(summarize(*cfg),
              "config OK\n"
              "daemon: socket /run/c.sock (0660), log warn, shutdown_timeout 90s\n"
              "pools (2):\n"
              "  web  4 workers  restart=on-failure  start_timeout=1500ms  stop=INT/10s   "
              "[\"/bin/sleep\", \"10 00\"]\n"
              "       depends_on=db  essential\n"
              "  db   1 worker   restart=always      start_timeout=1s      stop=TERM/10s  "
              "[\"/usr/bin/db\"]\n");
}

TEST(ConfigSummary, NamesTheSourceFile) {
    LoadResult r = load_file(COWHERD_TEST_DATA "/config/relative_paths.yaml");
    ASSERT_TRUE(r.ok()) << describe_errors(r);
    std::string s = summarize(*r.config);
    EXPECT_EQ(s.rfind("config OK: " + r.config->source_path + "\n", 0), 0u) << s;
}

}  // namespace
}  // namespace cow::config
