// Every kind of config error, with the exact file:line:column and key path it reports.
#include <string>
#include <vector>

#include <grp.h>
#include <gtest/gtest.h>
#include <pwd.h>
#include <unistd.h>

#include "config/config.hpp"

namespace cow::config {
namespace {

std::vector<std::string> errors_of(std::string_view yaml) {
    LoadResult r = load_text(yaml, "t.yaml", "/base");
    EXPECT_EQ(r.ok(), r.errors.empty());
    std::vector<std::string> out;
    for (const auto& e : r.errors)
        out.push_back(e.to_string());
    return out;
}

// For cases that must produce exactly one error.
std::string error_of(std::string_view yaml) {
    auto errors = errors_of(yaml);
    EXPECT_EQ(errors.size(), 1u) << ::testing::PrintToString(errors);
    return errors.empty() ? std::string("(no error)") : errors.front();
}

// One pool "a" with `line` added to its settings on line 3, column 5.
std::string pool_with(std::string_view line) {
    return "pools:\n"
           "  a:\n"
           "    " +
           std::string(line) +
           "\n"
           "    command: /bin/true\n";
}

TEST(ConfigErrors, WrongTypeForInteger) {
    EXPECT_EQ(error_of(pool_with("workers: four")),
              "t.yaml:3:14: pools.a.workers: expected an integer in 0..10000, got \"four\"");
    EXPECT_EQ(error_of(pool_with("workers: 10001")),
              "t.yaml:3:14: pools.a.workers: expected an integer in 0..10000, got \"10001\"");
    EXPECT_EQ(error_of(pool_with("workers: -1")),
              "t.yaml:3:14: pools.a.workers: expected an integer in 0..10000, got \"-1\"");
    EXPECT_EQ(error_of(pool_with("workers: 0x10")),
              "t.yaml:3:14: pools.a.workers: expected an integer in 0..10000, got \"0x10\"");
    EXPECT_EQ(error_of(pool_with("workers: [1]")),
              "t.yaml:3:14: pools.a.workers: expected an integer in 0..10000, got a list");
    EXPECT_EQ(error_of(pool_with("workers: {n: 1}")),
              "t.yaml:3:14: pools.a.workers: expected an integer in 0..10000, got a mapping");
    EXPECT_EQ(error_of(pool_with("workers: 99999999999999999999999")),
              "t.yaml:3:14: pools.a.workers: expected an integer in 0..10000, got "
              "\"99999999999999999999999\"");
}

TEST(ConfigErrors, EmptyValuePointsAtItsKey) {
    EXPECT_EQ(error_of(pool_with("workers:")),
              "t.yaml:3:5: pools.a.workers: expected an integer in 0..10000, got nothing");
    EXPECT_EQ(error_of(pool_with("workers: ~")),
              "t.yaml:3:14: pools.a.workers: expected an integer in 0..10000, got null");
}

TEST(ConfigErrors, UnknownKeyWithSuggestion) {
    EXPECT_EQ(error_of(pool_with("wokers: 3")),
              "t.yaml:3:5: pools.a.wokers: unknown key; did you mean \"workers\"?");
    EXPECT_EQ(error_of(pool_with("Workers: 3")),
              "t.yaml:3:5: pools.a.Workers: unknown key; did you mean \"workers\"?");
    EXPECT_EQ(error_of(pool_with("stop-timeout: 3s")),
              "t.yaml:3:5: pools.a.stop-timeout: unknown key; did you mean \"stop_timeout\"?");
    EXPECT_EQ(error_of(pool_with("frobnicate: 3")), "t.yaml:3:5: pools.a.frobnicate: unknown key");
    EXPECT_EQ(error_of("daemon: {sokcet: /x}\npools: {a: {command: x}}\n"),
              "t.yaml:1:10: daemon.sokcet: unknown key; did you mean \"socket\"?");
    EXPECT_EQ(errors_of("pool: {a: {command: x}}\n"),
              (std::vector<std::string>{"t.yaml:1:1: pool: unknown key; did you mean \"pools\"?",
                                        "t.yaml:1:1: pools: missing required key"}));
}

TEST(ConfigErrors, KeysInTheWrongSection) {
    EXPECT_EQ(
        errors_of("log_level: info\ncommand: x\npools: {a: {command: x}}\n"),
        (std::vector<std::string>{
            "t.yaml:1:1: log_level: unknown key; it belongs under \"daemon:\"",
            "t.yaml:2:1: command: unknown key; pool settings belong under \"pools: NAME:\""}));
    EXPECT_EQ(error_of("pools:\n  command: /bin/true\n"),
              "t.yaml:2:3: pools.command: \"command\" is a pool setting, but the keys of \"pools\" "
              "are pool names: write pools: {NAME: {command: ...}}");
}

TEST(ConfigErrors, UnknownUsersAndGroupsAreNamed) {
    EXPECT_EQ(error_of(pool_with("user: no-such-user-xyz")),
              "t.yaml:3:11: pools.a.user: no user named \"no-such-user-xyz\" on this system");
    EXPECT_EQ(error_of("daemon:\n  socket_group: no-such-group-xyz\npools: {a: {command: x}}\n"),
              "t.yaml:2:17: daemon.socket_group: no group named \"no-such-group-xyz\" on this "
              "system");
}

TEST(ConfigErrors, IdentityLimits) {
    EXPECT_EQ(
        error_of(
            "daemon:\n  socket_group: \"99999999999999999999999\"\npools: {a: {command: x}}\n"),
        "t.yaml:2:17: daemon.socket_group: gid 99999999999999999999999 is out of range");
    EXPECT_EQ(error_of("daemon:\n  readonly_group: 4294967297\npools: {a: {command: x}}\n"),
              "t.yaml:2:19: daemon.readonly_group: gid 4294967297 is out of range");
    EXPECT_EQ(error_of("socket_group: adm\npools: {a: {command: x}}\n"),
              "t.yaml:1:1: socket_group: unknown key; it belongs under \"daemon:\"");
    if (geteuid() != 0) GTEST_SKIP() << "the rest needs a root cowherd";
    uid_t lone = 54321;
    while (getpwuid(lone))
        ++lone;
    const std::string uid = std::to_string(lone);
    // Without a passwd entry there is no primary group to take, and gid 0 would be root's.
    EXPECT_EQ(error_of(pool_with("user: \"" + uid + "\"")),
              "t.yaml:3:5: pools.a.user: uid " + uid +
                  " has no passwd entry, so it has no primary group: set \"group\" too");
    EXPECT_EQ(errors_of(pool_with("user: \"" + uid + "\"\n    group: nogroup")).size(), 0u);
}

TEST(ConfigErrors, MergeKeysAreNotSupported) {
    EXPECT_EQ(error_of("pools:\n  a:\n    <<: {workers: 2}\n    command: x\n"),
              "t.yaml:3:5: pools.a.<<: unknown key; YAML merge keys (<<) are not supported");
}

TEST(ConfigErrors, MissingRequiredKeysPointAtTheParent) {
    EXPECT_EQ(error_of("pools:\n  web:\n    workers: 2\n"),
              "t.yaml:3:5: pools.web.command: missing required key");
    EXPECT_EQ(error_of("pools:\n  web: {workers: 2}\n"),
              "t.yaml:2:8: pools.web.command: missing required key");
    EXPECT_EQ(error_of("pools:\n  web:\n"), "t.yaml:2:3: pools.web.command: missing required key");
    EXPECT_EQ(error_of("daemon: {log_level: info}\n"), "t.yaml:1:1: pools: missing required key");
}

TEST(ConfigErrors, TopLevelShape) {
    EXPECT_EQ(error_of(""),
              "t.yaml:1:1: the config is empty; it needs at least a \"pools\" mapping");
    EXPECT_EQ(error_of("# nothing\n"),
              "t.yaml:1:1: the config is empty; it needs at least a \"pools\" mapping");
    EXPECT_EQ(error_of("- a\n- b\n"),
              "t.yaml:1:1: expected a mapping with \"daemon\" and \"pools\", got a list");
    EXPECT_EQ(error_of("pools: {}\n"),
              "t.yaml:1:8: pools: no pools defined; at least one is required");
    EXPECT_EQ(error_of("pools:\n"),
              "t.yaml:1:1: pools: no pools defined; at least one is required");
    EXPECT_EQ(error_of("pools: [a, b]\n"),
              "t.yaml:1:8: pools: expected a mapping of pool names to pool settings, got a list");
    EXPECT_EQ(error_of("daemon: [1]\npools: {a: {command: x}}\n"),
              "t.yaml:1:9: daemon: expected a mapping of daemon settings, got a list");
    EXPECT_EQ(error_of("pools:\n  a: /bin/true\n"),
              "t.yaml:2:6: pools.a: expected a mapping of pool settings, got \"/bin/true\"");
}

TEST(ConfigErrors, YamlSyntaxErrorsAreOneBased) {
    EXPECT_EQ(error_of("pools: [\n"), "t.yaml:2:1: invalid YAML: end of sequence flow not found");
    EXPECT_EQ(error_of("pools:\n\tweb: 1\n"), "t.yaml:2:5: invalid YAML: illegal map value");
    EXPECT_EQ(error_of("pools: {a: {command: \"x}}\n"),
              "t.yaml:2:1: invalid YAML: end of map flow not found");
}

TEST(ConfigErrors, OnlyOneDocument) {
    EXPECT_EQ(error_of("pools: {a: {command: x}}\n---\npools: {b: {command: y}}\n"),
              "t.yaml:2:1: a second YAML document (after \"---\"); a config is a single document");
}

TEST(ConfigErrors, UnsupportedTagsAndNonStringKeys) {
    EXPECT_EQ(error_of(pool_with("cwd: !env HOME")),
              "t.yaml:3:10: pools.a.cwd: unsupported YAML tag \"!env\"");
    EXPECT_EQ(error_of("pools: {a: {command: x, [k]: 1}}\n"),
              "t.yaml:1:25: pools.a: expected a string key, got a list");
    // Standard tags are harmless.
    EXPECT_TRUE(errors_of(pool_with("workers: !!str 3")).empty());
}

TEST(ConfigErrors, DuplicateKeys) {
    EXPECT_EQ(error_of("pools:\n  a:\n    command: x\n    workers: 1\n    workers: 2\n"),
              "t.yaml:5:5: pools.a.workers: duplicate key (first set at line 4)");
    EXPECT_EQ(error_of("pools:\n  a: {command: x}\n  a: {command: y}\n"),
              "t.yaml:3:3: pools.a: duplicate key (first set at line 2)");
    EXPECT_EQ(error_of("pools: {a: {command: x}}\npools: {b: {command: y}}\n"),
              "t.yaml:2:1: pools: duplicate key (first set at line 1)");
    EXPECT_EQ(error_of(pool_with("env: {A: 1, A: 2}")),
              "t.yaml:3:17: pools.a.env.A: duplicate key (first set at line 3)");
}

TEST(ConfigErrors, Durations) {
    EXPECT_EQ(error_of(pool_with("start_timeout: 10")),
              "t.yaml:3:20: pools.a.start_timeout: expected a duration like 100ms, 10s, 5m, got "
              "\"10\" (a unit is required)");
    EXPECT_EQ(error_of(pool_with("stop_timeout: soon")),
              "t.yaml:3:19: pools.a.stop_timeout: expected a duration like 100ms, 10s, 5m, got "
              "\"soon\"");
    EXPECT_EQ(error_of(pool_with("stop_timeout: -1s")),
              "t.yaml:3:19: pools.a.stop_timeout: expected a duration like 100ms, 10s, 5m, got "
              "\"-1s\"");
    EXPECT_EQ(error_of("daemon:\n  shutdown_timeout: [1s]\npools: {a: {command: x}}\n"),
              "t.yaml:2:21: daemon.shutdown_timeout: expected a duration like 100ms, 10s, 5m, got "
              "a list");
}

TEST(ConfigErrors, Backoff) {
    EXPECT_EQ(error_of(pool_with("backoff: {initial: 0s}")),
              "t.yaml:3:24: pools.a.backoff.initial: expected a duration greater than 0, got "
              "\"0s\"");
    EXPECT_EQ(error_of(pool_with("backoff: {initial: 5s, max: 1s}")),
              "t.yaml:3:24: pools.a.backoff.initial: initial backoff 5s is longer than max 1s");
    // Against the default initial (100ms), reported at the backoff mapping.
    EXPECT_EQ(error_of(pool_with("backoff: {max: 50ms}")),
              "t.yaml:3:14: pools.a.backoff.initial: initial backoff 100ms is longer than max "
              "50ms");
    EXPECT_EQ(error_of(pool_with("backoff: {initial: 1s, maximum: 2s}")),
              "t.yaml:3:28: pools.a.backoff.maximum: unknown key; did you mean \"max\"?");
    EXPECT_EQ(error_of(pool_with("backoff: 1s")),
              "t.yaml:3:14: pools.a.backoff: expected a mapping like {initial: 100ms, max: 30s}, "
              "got \"1s\"");
}

TEST(ConfigErrors, MaxRestarts) {
    EXPECT_EQ(errors_of(pool_with("max_restarts: {count: -1, within: 0s}")),
              (std::vector<std::string>{
                  "t.yaml:3:27: pools.a.max_restarts.count: expected an integer in 0..10000, "
                  "got \"-1\"",
                  "t.yaml:3:39: pools.a.max_restarts.within: expected a duration greater than 0, "
                  "got \"0s\""}));
}

TEST(ConfigErrors, Enumerations) {
    EXPECT_EQ(error_of(pool_with("restart: on_failure")),
              "t.yaml:3:14: pools.a.restart: expected one of always, on-failure or never, got "
              "\"on_failure\"; did you mean \"on-failure\"?");
    EXPECT_EQ(error_of(pool_with("restart: sometimes")),
              "t.yaml:3:14: pools.a.restart: expected one of always, on-failure or never, got "
              "\"sometimes\"");
    EXPECT_EQ(error_of(pool_with("kill_mode: cgroups")),
              "t.yaml:3:16: pools.a.kill_mode: expected one of auto, cgroup or group, got "
              "\"cgroups\"; did you mean \"cgroup\"?");
    EXPECT_EQ(error_of(pool_with("orphans: Keep")),
              "t.yaml:3:14: pools.a.orphans: expected one of kill or keep, got \"Keep\"; did you "
              "mean \"keep\"?");
    EXPECT_EQ(error_of("daemon: {log_level: warning}\npools: {a: {command: x}}\n"),
              "t.yaml:1:21: daemon.log_level: expected one of trace, debug, info, warn, error, "
              "critical or off, got \"warning\"; did you mean \"warn\"?");
}

TEST(ConfigErrors, Booleans) {
    EXPECT_EQ(error_of(pool_with("essential: maybe")),
              "t.yaml:3:16: pools.a.essential: expected true or false, got \"maybe\"");
    EXPECT_EQ(error_of(pool_with("autostart: 1")),
              "t.yaml:3:16: pools.a.autostart: expected true or false, got \"1\"");
}

TEST(ConfigErrors, Signals) {
    EXPECT_EQ(error_of(pool_with("stop_signal: TREM")),
              "t.yaml:3:18: pools.a.stop_signal: expected a signal name like TERM, SIGINT or 15, "
              "got \"TREM\"; did you mean \"TERM\"?");
    EXPECT_EQ(error_of(pool_with("stop_signal: SIGFOO")),
              "t.yaml:3:18: pools.a.stop_signal: expected a signal name like TERM, SIGINT or 15, "
              "got \"SIGFOO\"");
    EXPECT_EQ(error_of(pool_with("stop_signal: 0")),
              "t.yaml:3:18: pools.a.stop_signal: expected a signal name like TERM, SIGINT or 15, "
              "got \"0\"");
}

TEST(ConfigErrors, SocketMode) {
    auto with = [](std::string_view mode) {
        return error_of("daemon:\n  socket_mode: " + std::string(mode) +
                        "\npools: {a: {command: x}}\n");
    };
    EXPECT_EQ(with("\"0999\""),
              "t.yaml:2:16: daemon.socket_mode: expected an octal permission mode like \"0600\", "
              "got \"0999\"");
    EXPECT_EQ(with("rw-r--r--"),
              "t.yaml:2:16: daemon.socket_mode: expected an octal permission mode like \"0600\", "
              "got \"rw-r--r--\"");
    EXPECT_EQ(with("4755"),
              "t.yaml:2:16: daemon.socket_mode: expected an octal permission mode like \"0600\" "
              "with no bits beyond 0777, got \"4755\"");
    EXPECT_EQ(with("\"\""),
              "t.yaml:2:16: daemon.socket_mode: expected an octal permission mode like \"0600\", "
              "got \"\"");
}

TEST(ConfigErrors, Paths) {
    EXPECT_EQ(error_of(pool_with("cwd: ~/app")),
              "t.yaml:3:10: pools.a.cwd: \"~\" is not expanded (no shell reads this); write the "
              "path in full");
    EXPECT_EQ(error_of(pool_with("cwd: \"\"")),
              "t.yaml:3:10: pools.a.cwd: expected a non-empty path, got \"\"");
    EXPECT_EQ(error_of(pool_with("cwd: [/srv]")),
              "t.yaml:3:10: pools.a.cwd: expected a path, got a list");
    std::string long_socket = "/run/" + std::string(120, 's') + ".sock";
    EXPECT_EQ(error_of("daemon:\n  socket: " + long_socket + "\npools: {a: {command: x}}\n"),
              "t.yaml:2:11: daemon.socket: socket path is 130 bytes long; a Unix socket path may "
              "have at most 107");
}

TEST(ConfigErrors, Env) {
    EXPECT_EQ(error_of(pool_with("env: {9LIVES: x}")),
              "t.yaml:3:11: pools.a.env.9LIVES: invalid environment variable name \"9LIVES\": use "
              "letters, digits and _, not starting with a digit");
    EXPECT_EQ(error_of(pool_with("env: {A-B: x}")),
              "t.yaml:3:11: pools.a.env.A-B: invalid environment variable name \"A-B\": use "
              "letters, digits and _, not starting with a digit");
    for (const char* name : {"COWHERD_POOL", "COWHERD_WORKER", "NOTIFY_SOCKET", "LISTEN_FDS",
                             "LISTEN_PID", "LISTEN_FDNAMES", "LISTEN_ANYTHING"}) {
        EXPECT_EQ(error_of(pool_with(std::string("env: {") + name + ": x}")),
                  std::string("t.yaml:3:11: pools.a.env.") + name + ": " + name +
                      " is set by cowherd for each worker and cannot be configured");
    }
    EXPECT_EQ(error_of(pool_with("env: {A: [1]}")),
              "t.yaml:3:14: pools.a.env.A: expected a string value (write \"\" for empty), got a "
              "list");
    EXPECT_EQ(error_of(pool_with("env: {A: }")),
              "t.yaml:3:11: pools.a.env.A: expected a string value (write \"\" for empty), got "
              "nothing");
    EXPECT_EQ(error_of(pool_with("env: {A: \"x\\0y\"}")),
              "t.yaml:3:14: pools.a.env.A: value contains a NUL character");
    EXPECT_EQ(error_of(pool_with("env: [A=1]")),
              "t.yaml:3:10: pools.a.env: expected a mapping of NAME: value, got a list");
}

TEST(ConfigErrors, Commands) {
    auto cmd = [](std::string_view value) {
        return error_of("pools:\n  a:\n    command: " + std::string(value) + "\n");
    };
    EXPECT_EQ(cmd("\"\""), "t.yaml:3:14: pools.a.command: command is empty");
    EXPECT_EQ(cmd("\"  \""), "t.yaml:3:14: pools.a.command: command is empty");
    EXPECT_EQ(cmd("[]"), "t.yaml:3:14: pools.a.command: command is empty");
    EXPECT_EQ(cmd("[\"\", x]"), "t.yaml:3:14: pools.a.command: command has an empty program name");
    EXPECT_EQ(cmd("[/bin/x, [a]]"),
              "t.yaml:3:23: pools.a.command[1]: expected a string, got a list");
    EXPECT_EQ(cmd("[/bin/x, ~]"), "t.yaml:3:23: pools.a.command[1]: expected a string, got null");
    EXPECT_EQ(cmd("[/bin/x, \"a\\0b\"]"),
              "t.yaml:3:23: pools.a.command[1]: argument contains a NUL character");
    EXPECT_EQ(cmd("\"/bin/x a\\0b\""),
              "t.yaml:3:14: pools.a.command: command contains a NUL character");
    EXPECT_EQ(cmd("{run: x}"),
              "t.yaml:3:14: pools.a.command: expected a command: a list like [\"/bin/app\", "
              "\"--flag\"] or a string, got a mapping");
    EXPECT_EQ(cmd("/bin/sh -c 'echo hi"),
              "t.yaml:3:14: pools.a.command: cannot split the command string: unterminated single "
              "quote starting at character 12 (it is split like sh does, but no shell runs)");
    EXPECT_EQ(cmd("'/bin/echo \"hi'"),
              "t.yaml:3:14: pools.a.command: cannot split the command string: unterminated double "
              "quote starting at character 11 (it is split like sh does, but no shell runs)");
}

TEST(ConfigErrors, PoolNames) {
    EXPECT_EQ(error_of("pools:\n  \"we b\": {command: x}\n"),
              "t.yaml:2:3: pools.we b: invalid pool name \"we b\": use 1 to 64 characters from "
              "A-Z, a-z, 0-9, \"_\", \".\" and \"-\"");
    EXPECT_EQ(error_of("pools:\n  web.2: {command: x}\n"),
              "t.yaml:2:3: pools.web.2: pool name \"web.2\" ends in \".<digits>\", so it would "
              "read as worker 2 of pool \"web\" (worker names are POOL.N)");
    EXPECT_EQ(error_of("pools:\n  .5: {command: x}\n"),
              "t.yaml:2:3: pools..5: pool name \".5\" ends in \".<digits>\" (worker names are "
              "POOL.N)");
    EXPECT_EQ(error_of("pools:\n  all: {command: x}\n"),
              "t.yaml:2:3: pools.all: \"all\" is reserved: cowctl uses it for every pool");
    EXPECT_EQ(error_of("pools:\n  -web: {command: x}\n"),
              "t.yaml:2:3: pools.-web: pool name \"-web\" starts with \"-\", which cowctl would "
              "read as an option");
    EXPECT_EQ(error_of("pools:\n  ..: {command: x}\n"),
              "t.yaml:2:3: pools...: pool name \"..\" is only dots");
    std::string long_name(65, 'p');
    auto long_error = error_of("pools:\n  " + long_name + ": {command: x}\n");
    EXPECT_EQ(long_error.rfind("t.yaml:2:3: pools." + long_name + ": invalid pool name", 0), 0u)
        << long_error;
    // Allowed: dots and dashes inside, digits, the full 64 characters.
    EXPECT_TRUE(errors_of("pools:\n  web.v2-x_1: {command: x}\n  " + std::string(64, 'p') +
                          ": {command: x}\n  2: {command: x}\n")
                    .empty());
}

TEST(ConfigErrors, TooManyPools) {
    std::string yaml = "pools:\n";
    for (int i = 0; i <= kMaxPools; ++i)
        yaml += "  p" + std::to_string(i) + ": {command: x}\n";
    EXPECT_EQ(error_of(yaml),
              "t.yaml:1002:3: pools.p1000: too many pools; at most 1000 are allowed");
}

TEST(ConfigErrors, DependsOn) {
    EXPECT_EQ(error_of("pools:\n  web: {command: x, depends_on: [dbb]}\n  db: {command: x}\n"),
              "t.yaml:2:34: pools.web.depends_on[0]: no pool named \"dbb\"; did you mean \"db\"?");
    EXPECT_EQ(error_of("pools:\n  web: {command: x, depends_on: [web]}\n"),
              "t.yaml:2:34: pools.web.depends_on[0]: a pool cannot depend on itself");
    EXPECT_EQ(error_of("pools:\n  web: {command: x, depends_on: [db, db]}\n  db: {command: x}\n"),
              "t.yaml:2:38: pools.web.depends_on[1]: \"db\" is listed twice");
    EXPECT_EQ(error_of("pools:\n  web: {command: x, depends_on: db}\n  db: {command: x}\n"),
              "t.yaml:2:33: pools.web.depends_on: expected a list of pool names like [db], got "
              "\"db\"");
    EXPECT_EQ(error_of("pools:\n  web: {command: x, depends_on: [\"d b\"]}\n"),
              "t.yaml:2:34: pools.web.depends_on[0]: expected a pool name, got \"d b\"");
}

TEST(ConfigErrors, DependencyCycleIsNamedFromTheFirstPool) {
    EXPECT_EQ(error_of("pools:\n"
                       "  c: {command: x, depends_on: [a]}\n"
                       "  a: {command: x, depends_on: [b]}\n"
                       "  b: {command: x, depends_on: [c]}\n"),
              "t.yaml:2:32: pools.c.depends_on: dependency cycle: c -> a -> b -> c");
    EXPECT_EQ(error_of("pools:\n"
                       "  a:\n"
                       "    command: x\n"
                       "    depends_on: [db, b]\n"
                       "  b: {command: x, depends_on: [c]}\n"
                       "  c: {command: x, depends_on: [a]}\n"
                       "  db: {command: x}\n"),
              "t.yaml:4:22: pools.a.depends_on: dependency cycle: a -> b -> c -> a");
    // A diamond is not a cycle.
    EXPECT_TRUE(errors_of("pools:\n"
                          "  a: {command: x, depends_on: [b, c]}\n"
                          "  b: {command: x, depends_on: [d]}\n"
                          "  c: {command: x, depends_on: [d]}\n"
                          "  d: {command: x}\n")
                    .empty());
}

TEST(ConfigErrors, SeveralErrorsAreAllReportedInFileOrder) {
    EXPECT_EQ(errors_of("daemon:\n"
                        "  log_level: loud\n"
                        "  socket_mode: 999\n"
                        "pools:\n"
                        "  web:\n"
                        "    workers: four\n"
                        "    restart: sometimes\n"
                        "    backoff: {initial: fast}\n"
                        "  db:\n"
                        "    comand: /usr/bin/db\n"
                        "    depends_on: [cache]\n"),
              (std::vector<std::string>{
                  "t.yaml:2:14: daemon.log_level: expected one of trace, debug, info, warn, "
                  "error, critical or off, got \"loud\"",
                  "t.yaml:3:16: daemon.socket_mode: expected an octal permission mode like "
                  "\"0600\", got \"999\"",
                  "t.yaml:6:5: pools.web.command: missing required key",
                  "t.yaml:6:14: pools.web.workers: expected an integer in 0..10000, got \"four\"",
                  "t.yaml:7:14: pools.web.restart: expected one of always, on-failure or never, "
                  "got \"sometimes\"",
                  "t.yaml:8:24: pools.web.backoff.initial: expected a duration like 100ms, 10s, "
                  "5m, got \"fast\"",
                  "t.yaml:10:5: pools.db.comand: unknown key; did you mean \"command\"?",
                  "t.yaml:10:5: pools.db.command: missing required key",
                  "t.yaml:11:18: pools.db.depends_on[0]: no pool named \"cache\""}));
}

TEST(ConfigErrors, SeveralErrorsFromAFile) {
    LoadResult r = load_file(COWHERD_TEST_DATA "/config/several_errors.yaml");
    ASSERT_FALSE(r.ok());
    std::vector<std::string> got;
    for (const auto& e : r.errors)
        got.push_back(e.key_path + "@" + std::to_string(e.line));
    EXPECT_EQ(got, (std::vector<std::string>{"daemon.log_level@3", "pools.web.workers@7",
                                             "pools.web.restart@8", "pools.db.comand@10",
                                             "pools.db.command@10"}));
}

TEST(ConfigErrors, ErrorCountIsCapped) {
    std::string yaml = "pools:\n";
    for (int i = 0; i < 60; ++i)
        yaml += "  p" + std::to_string(i) + ": {command: x, workers: no}\n";
    auto errors = errors_of(yaml);
    ASSERT_EQ(errors.size(), kMaxReportedErrors + 1);
    EXPECT_EQ(errors.front(),
              "t.yaml:2:29: pools.p0.workers: expected an integer in 0..10000, got \"no\"");
    EXPECT_EQ(errors.back(), "t.yaml: too many errors; 10 more not shown");
}

TEST(ConfigErrors, FilenameDefaultsWhenEmpty) {
    LoadResult r = load_text("pools: 1\n", "", "/");
    ASSERT_EQ(r.errors.size(), 1u);
    EXPECT_EQ(r.errors[0].file, "<config>");
}

}  // namespace
}  // namespace cow::config
