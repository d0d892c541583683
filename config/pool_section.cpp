#include <algorithm>
#include <cstdio>
#include <unordered_set>

#include "config/identity.hpp"
#include "config/sections.hpp"
#include "config/shell_split.hpp"
#include "core/names.hpp"

namespace cow::config::detail {
namespace {

constexpr std::string_view kRestartPolicies[] = {"always", "on-failure", "never"};
constexpr RestartPolicy kRestartValues[] = {RestartPolicy::always, RestartPolicy::on_failure,
                                            RestartPolicy::never};
constexpr std::string_view kKillModes[] = {"auto", "cgroup", "group"};
constexpr KillMode kKillModeValues[] = {KillMode::auto_, KillMode::cgroup, KillMode::group};
constexpr std::string_view kSpawnModes[] = {"exec", "template"};
constexpr SpawnMode kSpawnValues[] = {SpawnMode::exec, SpawnMode::template_};
constexpr std::string_view kTemplateThreads[] = {"refuse", "allow"};
constexpr bool kTemplateThreadValues[] = {false, true};
constexpr std::string_view kOrphanPolicies[] = {"kill", "keep"};
constexpr OrphanPolicy kOrphanValues[] = {OrphanPolicy::kill, OrphanPolicy::keep};
constexpr std::string_view kStopScopes[] = {"main", "tree"};
constexpr StopScope kStopScopeValues[] = {StopScope::main, StopScope::tree};

constexpr std::string_view kReadyModes[] = {"none", "notify"};
constexpr std::string_view kSinkKinds[] = {"console", "file", "json", "inherit", "null"};
constexpr OutputSink::Kind kSinkValues[] = {OutputSink::Kind::console, OutputSink::Kind::file,
                                            OutputSink::Kind::json, OutputSink::Kind::inherit,
                                            OutputSink::Kind::null};
constexpr std::string_view kBackpressures[] = {"block", "drop"};
constexpr Backpressure kBackpressureValues[] = {Backpressure::block, Backpressure::drop};
constexpr Ready kReadyValues[] = {Ready::none, Ready::notify};

// The supervisor keeps a timestamp per restart inside the window, so the count bounds memory.
constexpr int kMaxRestartCount = 10'000;

bool valid_env_name(std::string_view name) {
    if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
    for (char c : name) {
        bool ok =
            (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
        if (!ok) return false;
    }
    return true;
}

// Variables the daemon sets for each worker; a config value would be silently overwritten.
bool reserved_env_name(std::string_view name) {
    return name == "COWHERD_POOL" || name == "COWHERD_WORKER" || name == "COWHERD_PROBE_PORT" ||
           name == "NOTIFY_SOCKET" || name.starts_with("LISTEN_");
}

void read_command(Diagnostics& diag, const Field& f, std::vector<std::string>& out) {
    std::vector<std::string> argv;
    if (f.node.is_scalar()) {
        ShellSplit split = shell_split(f.node.text);
        if (split.error) {
            diag.error(f.pos, f.path,
                       "cannot split the command string: " + *split.error +
                           " (it is split like sh does, but no shell runs)");
            return;
        }
        argv = std::move(split.words);
        // Only a YAML "\0" escape can put one there; execve would cut the argument short.
        for (const auto& word : argv) {
            if (word.find('\0') != std::string::npos) {
                diag.error(f.pos, f.path, "command contains a NUL character");
                return;
            }
        }
    } else if (f.node.is_sequence()) {
        bool ok = true;
        for_each_item(diag, f, "", [&](std::size_t, const Field& item) {
            auto arg = read_string(diag, item, "a string");
            if (!arg) {
                ok = false;
            } else if (arg->find('\0') != std::string::npos) {
                diag.error(item.pos, item.path, "argument contains a NUL character");
                ok = false;
            } else {
                argv.push_back(std::move(*arg));
            }
        });
        if (!ok) return;
    } else {
        report_expected(diag, f, "a command: a list like [\"/bin/app\", \"--flag\"] or a string");
        return;
    }
    if (argv.empty()) {
        diag.error(f.pos, f.path, "command is empty");
        return;
    }
    if (argv[0].empty()) {
        diag.error(f.pos, f.path, "command has an empty program name");
        return;
    }
    out = std::move(argv);
}

void read_env(Diagnostics& diag, const Field& f,
              std::vector<std::pair<std::string, std::string>>& out) {
    for_each_entry(diag, f, "a mapping of NAME: value",
                   [&](const std::string& name, Pos key_pos, const Field& v) {
                       if (!valid_env_name(name)) {
                           diag.error(key_pos, v.path,
                                      "invalid environment variable name " + quote(name) +
                                          ": use letters, digits and _, not starting with a "
                                          "digit");
                           return;
                       }
                       if (reserved_env_name(name)) {
                           diag.error(key_pos, v.path,
                                      name +
                                          " is set by cowherd for each worker and cannot be "
                                          "configured");
                           return;
                       }
                       if (!v.node.is_scalar()) {
                           report_expected(diag, v, "a string value (write \"\" for empty)");
                           return;
                       }
                       if (v.node.text.find('\0') != std::string::npos) {
                           diag.error(v.pos, v.path, "value contains a NUL character");
                           return;
                       }
                       out.emplace_back(name, v.node.text);
                   });
}

void read_backoff(Diagnostics& diag, const Field& f, Backoff& out) {
    bool ok = true;
    Pos initial_pos = f.pos;
    const FieldReader readers[] = {
        {"initial",
         [&](const Field& v) {
             initial_pos = v.pos;
             if (auto d = read_duration(diag, v, true))
                 out.initial = *d;
             else
                 ok = false;
         }},
        {"max",
         [&](const Field& v) {
             if (auto d = read_duration(diag, v, true))
                 out.max = *d;
             else
                 ok = false;
         }},
    };
    if (!read_fields(diag, f, "a mapping like {initial: 100ms, max: 30s}", readers) || !ok) return;
    if (out.initial > out.max) {
        diag.error(initial_pos, join_path(f.path, "initial"),
                   "initial backoff " + exact_duration(out.initial) + " is longer than max " +
                       exact_duration(out.max));
    }
}

void read_max_restarts(Diagnostics& diag, const Field& f, MaxRestarts& out) {
    const FieldReader readers[] = {
        {"count",
         [&](const Field& v) {
             if (auto n = read_int(diag, v, 0, kMaxRestartCount)) out.count = static_cast<int>(*n);
         }},
        {"within",
         [&](const Field& v) {
             if (auto d = read_duration(diag, v, true)) out.within = *d;
         }},
    };
    read_fields(diag, f, "a mapping like {count: 10, within: 60s}", readers);
}

void read_depends_on(Diagnostics& diag, const Field& f, PoolConfig& pool, DependsSource& deps) {
    deps.list_pos = f.pos;
    deps.list_path = f.path;
    std::unordered_set<std::string> seen;
    for_each_item(diag, f, "a list of pool names like [db]", [&](std::size_t, const Field& item) {
        auto name = read_string(diag, item, "a pool name");
        if (!name) return;
        if (!valid_name(*name)) {
            report_expected(diag, item, "a pool name");
            return;
        }
        if (!seen.insert(*name).second) {
            diag.error(item.pos, item.path, quote(*name) + " is listed twice");
            return;
        }
        pool.depends_on.push_back(std::move(*name));
        deps.item_pos.push_back(item.pos);
    });
}

void read_memory(Diagnostics& diag, const Field& f, MemoryPolicy& out) {
    const FieldReader readers[] = {
        {"max_private",
         [&](const Field& v) {
             if (auto n = read_size(diag, v, true)) out.max_private = *n;
         }},
        {"check_every",
         [&](const Field& v) {
             if (auto d = read_duration(diag, v, true)) {
                 if (*d < Millis(100)) {
                     report_expected(diag, v, "a duration of at least 100ms");
                     return;
                 }
                 out.check_every = *d;
             }
         }},
    };
    read_fields(diag, f, "a mapping like {max_private: 512MiB, check_every: 30s}", readers);
}

// readiness / liveness: exactly one of http, tcp, exec, and how often and how patiently.
void read_probe(Diagnostics& diag, const Field& f, std::optional<ProbeConfig>& out) {
    ProbeConfig p;
    int kinds = 0;
    bool timeout_set = false;
    bool ok = true;
    auto bad = [&] { ok = false; };
    auto positive_duration = [&](Millis& into) {
        return [&, into_ptr = &into](const Field& v) {
            if (auto d = read_duration(diag, v, true))
                *into_ptr = *d;
            else
                bad();
        };
    };
    const FieldReader readers[] = {
        {"http",
         [&](const Field& v) {
             ++kinds;
             p.kind = ProbeConfig::Kind::http;
             auto url = read_string(diag, v, "a URL like http://127.0.0.1:{port}/healthz");
             if (!url) return bad();
             if (!url->starts_with("http://")) {
                 report_expected(diag, v, "a URL like http://127.0.0.1:{port}/healthz",
                                 " (only http:// is supported)");
                 return bad();
             }
             p.target = *url;
         }},
        {"tcp",
         [&](const Field& v) {
             ++kinds;
             p.kind = ProbeConfig::Kind::tcp;
             auto t = read_string(diag, v, "HOST:PORT like 127.0.0.1:{port}");
             if (!t) return bad();
             if (t->rfind(':') == std::string::npos) {
                 report_expected(diag, v, "HOST:PORT like 127.0.0.1:{port}");
                 return bad();
             }
             p.target = *t;
         }},
        {"exec",
         [&](const Field& v) {
             ++kinds;
             p.kind = ProbeConfig::Kind::exec;
             read_command(diag, v, p.command);
             if (p.command.empty()) bad();
         }},
        {"port",
         [&](const Field& v) {
             if (auto n = read_int(diag, v, 1, 65535))
                 p.port = static_cast<int>(*n);
             else
                 bad();
         }},
        {"interval", positive_duration(p.interval)},
        {"timeout",
         [&](const Field& v) {
             timeout_set = true;
             if (auto d = read_duration(diag, v, true))
                 p.timeout = *d;
             else
                 bad();
         }},
        {"initial_delay",
         [&](const Field& v) {
             if (auto d = read_duration(diag, v, false))
                 p.initial_delay = *d;
             else
                 bad();
         }},
        {"failures",
         [&](const Field& v) {
             if (auto n = read_int(diag, v, 1, 100))
                 p.failures = static_cast<int>(*n);
             else
                 bad();
         }},
        {"status",
         [&](const Field& v) {
             // "200", "200-299"
             auto t = read_string(diag, v, "a status or range like 200-399");
             if (!t) return bad();
             int lo = 0, hi = 0;
             char dash = 0;
             const int n = std::sscanf(t->c_str(), "%d%c%d", &lo, &dash, &hi);
             if (n == 1) hi = lo;
             if ((n != 1 && !(n == 3 && dash == '-')) || lo < 100 || hi > 599 || lo > hi) {
                 report_expected(diag, v, "a status or range like 200-399");
                 return bad();
             }
             p.status_min = lo;
             p.status_max = hi;
         }},
    };
    if (!read_fields(diag, f,
                     "a mapping like {http: \"http://127.0.0.1:{port}/healthz\", interval: 1s}",
                     readers))
        return;
    if (kinds != 1) {
        diag.error(f.pos, f.path,
                   kinds == 0 ? "a probe needs one of http, tcp or exec"
                              : "a probe has exactly one of http, tcp or exec");
        return;
    }
    if (!timeout_set) p.timeout = std::min(p.timeout, p.interval);
    if (p.timeout > p.interval) {
        diag.error(f.pos, join_path(f.path, "timeout"),
                   "timeout must not exceed interval (a probe runs at most once at a time)");
        return;
    }
    if (ok) out = std::move(p);
}

// "tcp://127.0.0.1:8000", "tcp://[::1]:8000", "tcp://:8000", "unix:/run/app.sock". Returns
// why it does not parse, or nullopt.
std::optional<std::string> parse_listen(std::string_view text, const std::string& base_dir,
                                        SocketConfig& out) {
    if (text.starts_with("unix:")) {
        std::string path(text.substr(5));
        if (path.empty()) return "a unix socket needs a path: unix:/run/app.sock";
        if (path[0] != '/') path = base_dir + "/" + path;
        if (path.size() >= 108) return "the socket path is longer than 107 bytes";
        out.kind = SocketConfig::Kind::unix_stream;
        out.path = path;
        return std::nullopt;
    }
    if (!text.starts_with("tcp://")) return "expected tcp://HOST:PORT or unix:/PATH";
    std::string_view rest = text.substr(6);
    std::string host;
    std::string_view port;
    if (rest.starts_with("[")) {
        auto close = rest.find(']');
        if (close == std::string_view::npos || close + 1 >= rest.size() || rest[close + 1] != ':')
            return "expected tcp://[IPV6]:PORT";
        host = std::string(rest.substr(1, close - 1));
        port = rest.substr(close + 2);
    } else {
        auto colon = rest.rfind(':');
        if (colon == std::string_view::npos) return "missing :PORT";
        host = std::string(rest.substr(0, colon));
        port = rest.substr(colon + 1);
    }
    int p = 0;
    if (port.empty() || port.size() > 5) return "the port must be 1..65535";
    for (char c : port) {
        if (c < '0' || c > '9') return "the port must be a number";
        p = p * 10 + (c - '0');
    }
    if (p < 1 || p > 65535) return "the port must be 1..65535";
    if (host == "localhost") host = "127.0.0.1";
    out.kind = SocketConfig::Kind::tcp;
    out.host = host;
    out.port = p;
    return std::nullopt;
}

void read_sockets(Diagnostics& diag, const Field& f, const std::string& base_dir,
                  std::vector<SocketConfig>& out) {
    std::unordered_set<std::string> names;
    auto one = [&](std::size_t, const Field& item) {
        SocketConfig sc;
        bool have_listen = false;
        const FieldReader readers[] = {
            {"name",
             [&](const Field& v) {
                 auto s = read_string(diag, v, "a socket name");
                 if (!s) return;
                 if (!valid_name(*s))
                     report_expected(diag, v, "a name of [A-Za-z0-9_.-]{1,64}");
                 else if (!names.insert(*s).second)
                     diag.error(v.pos, v.path, quote(*s) + " is used by another socket");
                 else
                     sc.name = *s;
             }},
            {"listen",
             [&](const Field& v) {
                 have_listen = true;
                 auto s = read_string(diag, v, "an address like tcp://127.0.0.1:8000");
                 if (!s) return;
                 sc.listen = *s;
                 if (auto err = parse_listen(*s, base_dir, sc))
                     diag.error(v.pos, v.path, *err + ", got " + quote(*s));
             }},
            {"mode",
             [&](const Field& v) {
                 if (auto m = read_mode(diag, v)) sc.mode = *m;
             }},
            {"backlog",
             [&](const Field& v) {
                 if (auto n = read_int(diag, v, 1, 65535)) sc.backlog = static_cast<int>(*n);
             }},
            {"reuse_port",
             [&](const Field& v) {
                 if (auto b = read_bool(diag, v)) sc.reuse_port = *b;
             }},
        };
        if (!read_fields(diag, item, "a socket mapping {name, listen, mode, backlog, reuse_port}",
                         readers))
            return;
        if (!have_listen)
            diag.error(item.pos, join_path(item.path, "listen"), "missing required key");
        if (sc.name.empty()) sc.name = "socket" + std::to_string(out.size());
        if (sc.mode && sc.kind != SocketConfig::Kind::unix_stream)
            diag.error(item.pos, join_path(item.path, "mode"), "mode applies to unix sockets only");
        out.push_back(std::move(sc));
    };
    for_each_item(diag, f, "a list of sockets like [{name: http, listen: \"tcp://:8000\"}]", one);
}

// "console", or {sink: file, per_worker: true, max_size: 10MiB, keep: 5}.
void read_sink(Diagnostics& diag, const Field& f, OutputSink& out) {
    if (f.node.is_scalar()) {
        if (auto i = read_choice(diag, f, kSinkKinds)) out.kind = kSinkValues[*i];
        return;
    }
    const FieldReader readers[] = {
        {"sink",
         [&](const Field& v) {
             if (auto i = read_choice(diag, v, kSinkKinds)) out.kind = kSinkValues[*i];
         }},
        {"per_worker",
         [&](const Field& v) {
             if (auto b = read_bool(diag, v)) out.per_worker = *b;
         }},
        {"max_size",
         [&](const Field& v) {
             if (auto n = read_size(diag, v, false)) out.max_size = *n;  // 0: never rotate
         }},
        {"keep",
         [&](const Field& v) {
             if (auto n = read_int(diag, v, 0, 1000)) out.keep = static_cast<int>(*n);
         }},
    };
    read_fields(
        diag, f,
        "a sink name (console, file, json, inherit, null) or {sink, per_worker, max_size, keep}",
        readers);
}

template <class E, std::size_t N>
std::function<void(const Field&)> choice_reader(Diagnostics& diag,
                                                const std::string_view (&names)[N],
                                                const E (&values)[N], E& out) {
    return [&diag, &names, &values, &out](const Field& v) {
        if (auto i = read_choice(diag, v, names)) out = values[*i];
    };
}

std::function<void(const Field&)> bool_reader(Diagnostics& diag, bool& out) {
    return [&diag, &out](const Field& v) {
        if (auto b = read_bool(diag, v)) out = *b;
    };
}

std::function<void(const Field&)> duration_reader(Diagnostics& diag, Millis& out) {
    return [&diag, &out](const Field& v) {
        if (auto d = read_duration(diag, v, false)) out = *d;
    };
}

}  // namespace

bool is_pool_key(std::string_view key) {
    static constexpr std::string_view kKeys[] = {"command",
                                                 "workers",
                                                 "cwd",
                                                 "env",
                                                 "autostart",
                                                 "restart",
                                                 "start_timeout",
                                                 "backoff",
                                                 "max_restarts",
                                                 "stop_signal",
                                                 "stop_timeout",
                                                 "kill_mode",
                                                 "orphans",
                                                 "essential",
                                                 "stop_scope",
                                                 "depends_on",
                                                 "memory",
                                                 "sockets",
                                                 "ready",
                                                 "watchdog",
                                                 "stdout",
                                                 "stderr",
                                                 "log_backpressure",
                                                 "log_ring",
                                                 "user",
                                                 "group",
                                                 "supplementary_groups",
                                                 "umask",
                                                 "rlimits",
                                                 "no_new_privs",
                                                 "oom_score_adj",
                                                 "clear_env",
                                                 "env_remove",
                                                 "readiness",
                                                 "liveness",
                                                 "on_exit",
                                                 "on_fatal",
                                                 "hook_timeout",
                                                 "spawn",
                                                 "template_threads",
                                                 "template_timeout"};
    for (auto k : kKeys)
        if (k == key) return true;
    return false;
}

void read_pool(Diagnostics& diag, const Field& f, const std::string& base_dir, PoolConfig& out,
               DependsSource& deps) {
    bool have_command = false;
    bool explicit_groups = false;
    Pos groups_field = f.pos;
    const FieldReader readers[] = {
        {"command",
         [&](const Field& v) {
             have_command = true;
             read_command(diag, v, out.command);
         }},
        {"workers",
         [&](const Field& v) {
             if (auto n = read_int(diag, v, 0, kMaxWorkersPerPool))
                 out.workers = static_cast<int>(*n);
         }},
        {"cwd",
         [&](const Field& v) {
             if (auto p = read_path(diag, v, base_dir)) out.cwd = std::move(*p);
         }},
        {"env", [&](const Field& v) { read_env(diag, v, out.env); }},
        {"autostart", bool_reader(diag, out.autostart)},
        {"restart", choice_reader(diag, kRestartPolicies, kRestartValues, out.restart)},
        {"start_timeout", duration_reader(diag, out.start_timeout)},
        {"backoff", [&](const Field& v) { read_backoff(diag, v, out.backoff); }},
        {"max_restarts", [&](const Field& v) { read_max_restarts(diag, v, out.max_restarts); }},
        {"stop_signal",
         [&](const Field& v) {
             if (auto s = read_signal(diag, v)) out.stop_signal = *s;
         }},
        {"stop_timeout", duration_reader(diag, out.stop_timeout)},
        {"kill_mode", choice_reader(diag, kKillModes, kKillModeValues, out.kill_mode)},
        {"spawn", choice_reader(diag, kSpawnModes, kSpawnValues, out.spawn)},
        {"template_threads",
         choice_reader(diag, kTemplateThreads, kTemplateThreadValues, out.template_threads)},
        {"template_timeout",
         [&](const Field& v) {
             if (auto d = read_duration(diag, v, true)) out.template_timeout = *d;
         }},
        {"orphans", choice_reader(diag, kOrphanPolicies, kOrphanValues, out.orphans)},
        {"stop_scope", choice_reader(diag, kStopScopes, kStopScopeValues, out.stop_scope)},
        {"essential", bool_reader(diag, out.essential)},
        {"depends_on", [&](const Field& v) { read_depends_on(diag, v, out, deps); }},
        {"memory", [&](const Field& v) { read_memory(diag, v, out.memory); }},
        {"sockets", [&](const Field& v) { read_sockets(diag, v, base_dir, out.sockets); }},
        {"ready", choice_reader(diag, kReadyModes, kReadyValues, out.ready)},
        {"watchdog", duration_reader(diag, out.watchdog)},
        {"readiness", [&](const Field& v) { read_probe(diag, v, out.readiness); }},
        {"liveness", [&](const Field& v) { read_probe(diag, v, out.liveness); }},
        {"on_exit", [&](const Field& v) { read_command(diag, v, out.on_exit); }},
        {"on_fatal", [&](const Field& v) { read_command(diag, v, out.on_fatal); }},
        {"hook_timeout",
         [&](const Field& v) {
             if (auto d = read_duration(diag, v, true)) out.hook_timeout = *d;
         }},
        {"stdout", [&](const Field& v) { read_sink(diag, v, out.stdout_sink); }},
        {"stderr", [&](const Field& v) { read_sink(diag, v, out.stderr_sink); }},
        {"log_backpressure",
         choice_reader(diag, kBackpressures, kBackpressureValues, out.backpressure)},
        {"user", [&](const Field& v) { read_user(diag, v, out.identity); }},
        {"group", [&](const Field& v) { read_group(diag, v, out.identity); }},
        {"supplementary_groups",
         [&](const Field& v) {
             groups_field = v.pos;
             explicit_groups = true;
             read_supplementary(diag, v, out.identity);
         }},
        {"umask",
         [&](const Field& v) {
             if (auto m = read_mode(diag, v)) out.umask = *m;
         }},
        {"rlimits", [&](const Field& v) { read_rlimits(diag, v, out.rlimits); }},
        {"no_new_privs", bool_reader(diag, out.no_new_privs)},
        {"oom_score_adj",
         [&](const Field& v) {
             if (auto n = read_int(diag, v, -1000, 1000)) out.oom_score_adj = static_cast<int>(*n);
         }},
        {"clear_env", bool_reader(diag, out.clear_env)},
        {"env_remove",
         [&](const Field& v) {
             for_each_item(diag, v, "a list of variable names",
                           [&](std::size_t, const Field& item) {
                               if (auto s = read_string(diag, item, "a variable name"))
                                   out.env_remove.push_back(*s);
                           });
         }},
        {"log_ring",
         [&](const Field& v) {
             auto n = read_size(diag, v, false);
             if (n && *n > (64u << 20))
                 report_expected(diag, v, "a size of at most 64MiB");
             else if (n)
                 out.log_ring = *n;
         }},
    };
    if (!read_fields(diag, f, "a mapping of pool settings", readers)) return;
    if (!have_command) diag.error(f.pos, join_path(f.path, "command"), "missing required key");
    finish_identity(diag, f, out.identity, explicit_groups, groups_field);
    if (out.readiness && out.ready == Ready::notify)
        diag.error(f.pos, join_path(f.path, "readiness"),
                   "choose one way to tell readiness: ready: notify or a readiness probe");
    if (out.readiness && out.liveness && out.readiness->port && out.liveness->port &&
        *out.readiness->port != *out.liveness->port)
        diag.error(f.pos, join_path(f.path, "liveness.port"),
                   "differs from readiness.port: a process has one probe port "
                   "(COWHERD_PROBE_PORT), so give both the same port or only one of them");
    if (out.watchdog.count() > 0 && out.ready != Ready::notify)
        diag.error(f.pos, join_path(f.path, "watchdog"),
                   "watchdog needs ready: notify (WATCHDOG=1 arrives over NOTIFY_SOCKET)");
}

std::string exact_duration(Millis d) {
    struct Unit {
        std::int64_t ms;
        const char* suffix;
    };
    static constexpr Unit kUnits[] = {
        {86'400'000, "d"}, {3'600'000, "h"}, {60'000, "m"}, {1000, "s"}};
    std::int64_t ms = d.count();
    if (ms != 0) {
        for (const auto& u : kUnits)
            if (ms % u.ms == 0) return std::to_string(ms / u.ms) + u.suffix;
    }
    return std::to_string(ms) + "ms";
}

}  // namespace cow::config::detail
