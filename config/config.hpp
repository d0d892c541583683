// The configuration room: YAML text -> validated, immutable Config (design §1, §2).
// Nothing outside config/ ever sees a YAML node.
#pragma once

#include <chrono>
#include <csignal>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <sys/types.h>

#include "core/units.hpp"

namespace cow::config {

using namespace std::chrono_literals;

enum class RestartPolicy { always, on_failure, never };
enum class KillMode { auto_, cgroup, group };
// exec: fork-exec each worker; template: fork it from the pool's template (template/).
enum class SpawnMode { exec, template_ };  // auto: cgroup when usable, else group
enum class OrphanPolicy { kill, keep };
// Who gets stop_signal: the main process alone (then the rest of its tree, once it is gone),
// or every process of the worker at once.
enum class StopScope { main, tree };

struct Backoff {
    Millis initial{100ms};
    Millis max{30s};
    bool operator==(const Backoff&) const = default;
};

struct MaxRestarts {
    int count = 10;
    Millis within{60s};
    bool operator==(const MaxRestarts&) const = default;
};

// Memory recycling (design §4): a worker whose private memory (uss + swap_pss of its whole
// tree) exceeds max_private is restarted gracefully. Checked every check_every.
struct MemoryPolicy {
    std::optional<std::uint64_t> max_private;  // bytes; unset = no recycling
    Millis check_every{30s};
    bool operator==(const MemoryPolicy&) const = default;
};

// A listening socket the daemon binds once and hands to every worker of the pool as
// fd 3, 4, ... (systemd's LISTEN_FDS convention).
struct SocketConfig {
    enum class Kind { tcp, unix_stream };
    std::string name;    // LISTEN_FDNAMES entry
    std::string listen;  // as written: "tcp://127.0.0.1:8000", "unix:/run/app.sock"
    Kind kind = Kind::tcp;
    std::string host;            // tcp: numeric address ("" = any IPv4, "::" = any IPv6)
    int port = 0;                // tcp
    std::string path;            // unix: absolute
    std::optional<mode_t> mode;  // unix: chmod of the socket file
    int backlog = 1024;
    bool reuse_port = false;
    bool operator==(const SocketConfig&) const = default;
};

enum class Ready { none, notify };

// An active check of a worker (readiness or liveness): an HTTP GET, a TCP connect or a
// command. Targets may hold {index} (the worker's index) and {port} (see config/README.md).
struct ProbeConfig {
    enum class Kind { http, tcp, exec };
    Kind kind = Kind::http;
    std::string target;                // http: the URL; tcp: HOST:PORT
    std::vector<std::string> command;  // exec
    std::optional<int> port;           // the base of each process's own port: probe_port()
    Millis interval{1000};
    Millis timeout{1000};
    Millis initial_delay{0};
    int failures = 3;                        // in a row, before it counts (liveness: a restart)
    int status_min = 200, status_max = 399;  // http: the statuses that pass
    bool operator==(const ProbeConfig&) const = default;
};

// A process's own probe port, for a probe with `port`: two per worker index, alternating by
// generation, so that a replacement is never asked at its predecessor's port while both run (a
// rolling restart). The process finds it in COWHERD_PROBE_PORT; a probe's {port} is this.
constexpr int probe_port(int base, int index, std::uint64_t generation) {
    return base + 2 * index + static_cast<int>(generation & 1);
}

// Who a worker runs as and with what limits (issue: least privilege). Names are resolved
// when the config is loaded, in the parent, never between fork and exec.
struct Identity {
    bool set = false;         // user or group given
    std::string user, group;  // as written
    uid_t uid = 0;
    gid_t gid = 0;
    std::vector<gid_t> groups;  // supplementary: explicit, or the user's (initgroups)
    std::string home, shell;    // from the user's passwd entry: HOME, SHELL for the worker
    bool operator==(const Identity&) const = default;
};

struct Rlimit {
    int resource = 0;                  // RLIMIT_*
    std::string name;                  // "nofile"
    std::uint64_t soft = 0, hard = 0;  // RLIM_INFINITY for unlimited
    bool operator==(const Rlimit&) const = default;
};

// Where a worker's stdout or stderr goes (design §3.6).
struct OutputSink {
    enum class Kind { console, file, json, inherit, null };
    Kind kind = Kind::console;
    bool per_worker = false;               // file: one file per worker instead of per pool
    std::uint64_t max_size = 10ull << 20;  // file: rotate past this size
    int keep = 5;                          // file: rotated files kept
    bool operator==(const OutputSink&) const = default;
};

enum class Backpressure { block, drop };

struct PoolConfig {
    std::string name;
    std::vector<std::string> command;  // argv; command[0] is searched in PATH when it has no '/'
    int workers = 1;
    std::string cwd;  // absolute after loading; empty = the daemon's cwd
    std::vector<std::pair<std::string, std::string>> env;  // in file order
    bool autostart = true;
    RestartPolicy restart = RestartPolicy::always;
    Millis start_timeout{1s};
    Backoff backoff;
    MaxRestarts max_restarts;
    int stop_signal = SIGTERM;
    Millis stop_timeout{10s};
    KillMode kill_mode = KillMode::auto_;
    SpawnMode spawn = SpawnMode::exec;
    bool template_threads = false;   // template_threads: allow
    Millis template_timeout{60000};  // for the template to say ready; 0: wait forever
    OrphanPolicy orphans = OrphanPolicy::kill;
    StopScope stop_scope = StopScope::main;
    bool essential = false;
    std::vector<std::string> depends_on;
    MemoryPolicy memory;
    std::vector<SocketConfig> sockets;
    Ready ready = Ready::none;
    Millis watchdog{0};  // 0 = off; with ready: notify, WATCHDOG=1 is due this often
    // running only once this passes (like ready: notify), and rolls wait for it
    std::optional<ProbeConfig> readiness;
    std::optional<ProbeConfig> liveness;  // fails `failures` times in a row: restart
    // Commands run with the event as JSON on stdin: after each exit of a worker's process, and
    // when a worker goes fatal. Empty: none.
    std::vector<std::string> on_exit, on_fatal;
    Millis hook_timeout{10000};
    OutputSink stdout_sink;
    OutputSink stderr_sink;
    Backpressure backpressure = Backpressure::block;  // a sink slower than the worker
    std::uint64_t log_ring = 64 * 1024;  // bytes of recent output kept per worker (cowctl logs)
    Identity identity;
    std::optional<mode_t> umask;
    std::vector<Rlimit> rlimits;
    bool no_new_privs = false;
    std::optional<int> oom_score_adj;
    bool clear_env = false;               // start from an empty environment, not the daemon's
    std::vector<std::string> env_remove;  // names dropped from the daemon's environment

    bool operator==(const PoolConfig&) const = default;
};

struct DaemonConfig {
    std::string socket;  // absolute; defaults to cow::default_socket_path()
    mode_t socket_mode = 0600;
    std::string log_level = "info";          // trace|debug|info|warn|error|critical|off
    std::string log_format = "text";         // the daemon's own log: text | json
    std::string log_file;                    // the daemon's own log; "" = stderr
    std::string log_dir;                     // worker output files (stdout: file); absolute
    std::uint64_t log_line_max = 16 * 1024;  // longer lines are split and marked
    std::string metrics;                     // "127.0.0.1:9464": Prometheus endpoint; "" = off
    // Control socket access beyond root and our own uid (checked with SO_PEERCRED).
    std::optional<gid_t> socket_group;    // may run every verb
    std::optional<gid_t> readonly_group;  // may run proto::kReadOnlyVerbs
    std::string socket_group_name, readonly_group_name;
    Millis shutdown_timeout{30s};
    // Every running worker's tree is sampled this often for `mem --history`, trends and
    // `top`; 0 turns it off.
    Millis memory_sample_every{10s};
    bool operator==(const DaemonConfig&) const = default;
};

// A restart of this pool is rolling (successors first, old processes after): its readiness
// can be told (ready: notify, a readiness probe), or it serves on sockets that must never go
// unanswered.
inline bool restarts_rolling(const PoolConfig& pc) {
    return !pc.sockets.empty() || pc.ready == Ready::notify || pc.readiness.has_value();
}

struct Config {
    std::string source_path;  // absolute path of the file it came from, "" for text
    // The text it was read from: an upgraded daemon image runs the config its predecessor ran,
    // even if the file has been edited since without a reload.
    std::string source_text;
    DaemonConfig daemon;
    std::vector<PoolConfig> pools;  // in file order; depends_on order is resolved by the daemon

    const PoolConfig* find_pool(std::string_view name) const;
};

struct ConfigError {
    std::string file;
    int line = 0;          // 1-based; 0 when the error has no position (e.g. file unreadable)
    int column = 0;        // 1-based
    std::string key_path;  // "pools.web.workers"
    std::string message;   // "expected a positive integer, got \"four\""
    // "demo.yaml:12:14: pools.web.workers: expected a positive integer, got "four""
    std::string to_string() const;
};

struct LoadResult {
    std::shared_ptr<const Config> config;  // set iff errors is empty
    std::vector<ConfigError> errors;
    bool ok() const { return config != nullptr; }
};

inline constexpr std::size_t kMaxConfigBytes = 1 << 20;  // 1 MiB
inline constexpr int kMaxConfigDepth = 32;
inline constexpr int kMaxPools = 1000;
inline constexpr int kMaxWorkersPerPool = 10000;
// Scalars and collections written in the file (aliases aside); bounds memory and time.
inline constexpr std::size_t kMaxConfigNodes = 200000;
// Nodes reachable through YAML aliases, counted with repetition: stops "billion laughs" documents.
inline constexpr std::size_t kMaxAliasExpansion = 10000;
// A load reports at most this many errors, then one more saying how many it left out.
inline constexpr std::size_t kMaxReportedErrors = 50;

// Reads and validates a file. Relative paths inside (cwd, daemon.socket) resolve against the
// file's directory. config/README.md documents every key and limit.
LoadResult load_file(const std::string& path);

// Validates text as if it had been read from the file at path (an upgraded daemon image takes
// up the text its predecessor ran: Config::source_text).
LoadResult load_as_file(std::string_view text, const std::string& path);

// Validates text; `filename` is used in error messages, `base_dir` resolves relative paths
// (empty: the current directory).
LoadResult load_text(std::string_view text, const std::string& filename,
                     const std::string& base_dir);

// Multi-line human summary for `cowherd --check`.
std::string summarize(const Config& cfg);

std::string_view to_string(RestartPolicy p);
std::string_view to_string(KillMode m);
std::string_view to_string(OrphanPolicy p);
std::string_view to_string(StopScope s);
std::string_view to_string(OutputSink::Kind k);

}  // namespace cow::config
