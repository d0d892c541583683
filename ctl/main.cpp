// cowctl: drives the daemon over its control socket. Exit codes (design §1): 0 ok, 1 the
// daemon refused or the command failed, 2 bad usage, 3 the daemon is unreachable, 4 it took
// the request but did not reply within the timeout.
//
// --json: stdout carries exactly one JSON document, whatever the verb and the outcome: the
// result, or {"error":{"code","message"}}. Streams are asked for explicitly: `logs -f` (a
// JSON line per output line) and --progress (restart, reload: progress items on stderr).
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <exception>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>

#include <CLI/CLI.hpp>
#include <unistd.h>

#include "core/escape.hpp"
#include "core/paths.hpp"
#include "core/protocol_names.hpp"
#include "core/signal_names.hpp"
#include "core/units.hpp"
#include "ctl/client.hpp"
#include "ctl/progress.hpp"
#include "ctl/render.hpp"
#include "ctl/top.hpp"

namespace json = boost::json;
using namespace cow::ctl;
namespace proto = cow::proto;

namespace {

constexpr int kOk = 0, kFailed = 1, kUsage = 2, kUnreachable = 3, kTimedOut = 4;
bool last_healthy = false;  // set from a health reply

struct Options {
    std::string socket;
    bool json = false;
    int timeout_s = 0;  // 0: the verb's default
};

std::string socket_path(const Options& o) {
    if (!o.socket.empty()) return o.socket;
    if (const char* env = std::getenv("COWHERD_SOCKET"); env && env[0]) return env;
    return cow::default_socket_path();
}

// A failure that reached no final reply (or an error reply): one line on stderr, and under
// --json the matching error document on stdout.
int fail(const Options& o, int rc, std::string_view code, const std::string& message,
         const std::string& prefix = "") {
    const std::string shown = cow::escape_invisible(message, cow::Newlines::keep);
    if (o.json) {
        json::object e{{"error", json::object{{"code", code}, {"message", message}}}};
        std::printf("%s\n", json::serialize(e).c_str());
    }
    std::fprintf(stderr, "cowctl: %s%s\n", prefix.c_str(), shown.c_str());
    return rc;
}

// Sends one request and prints the reply; returns the exit code. `settled` runs once the
// stream has ended, before anything else is printed (it clears a progress bar).
// `resume`, for a stream: the daemon closed the connection (an upgrade): the request to send
// on a new one, or nothing to give up.
using Resume = std::function<std::optional<json::object>()>;

int run(const Options& o, std::string_view cmd, json::object args,
        const std::function<std::string(const json::value&)>& human,
        std::chrono::milliseconds timeout = std::chrono::seconds(10),
        const Client::OnItem& on_item = {}, const std::function<void()>& settled = {},
        const Resume& resume = {}) {
    if (o.timeout_s > 0) timeout = std::chrono::seconds(o.timeout_s);
    auto path = socket_path(o);
    // --json prints the result verbatim; only health needs its verdict parsed.
    const bool raw = o.json && cmd != proto::verb::health;
    // A request that changes nothing is sent again when the daemon closed the connection under
    // it (an upgrade replaces the image in milliseconds; the socket stays): its caller gets an
    // answer rather than an error. A stream (logs -f, events -f) is not: it would repeat lines.
    const bool retry = proto::read_only_verb(cmd) && !on_item;
    std::variant<cow::proto::Reply, Unreachable, TimedOut> r = Unreachable{};
    for (int attempt = 0;; ++attempt) {
        auto c = Client::connect(path, std::chrono::seconds(2));
        if (auto* u = std::get_if<Unreachable>(&c))
            return fail(o, kUnreachable, "unreachable", u->message);
        r = std::get<Client>(c).call(cmd, args, timeout, on_item, raw);
        const auto* u = std::get_if<Unreachable>(&r);
        if (u && u->closed && resume) {
            if (auto next = resume()) {
                args = std::move(*next);
                attempt = 0;
                continue;
            }
            break;
        }
        if (!retry || !u || !u->closed || attempt == 3) break;
    }
    if (settled) settled();
    if (auto* u = std::get_if<Unreachable>(&r))
        return fail(o, kUnreachable, "unreachable", u->message);
    if (auto* t = std::get_if<TimedOut>(&r))
        return fail(o, kTimedOut, "client_timeout", t->message);
    auto& reply = std::get<cow::proto::Reply>(r);
    if (!reply.ok) {
        const bool usage =
            proto::error_code_from_string(reply.error_code) == proto::ErrorCode::invalid_argument;
        return fail(o, usage ? kUsage : kFailed, reply.error_code, reply.error_message,
                    std::string(cmd) + ": ");
    }
    if (reply.result.is_object())
        if (const auto* h = reply.result.as_object().if_contains("healthy"); h && h->is_bool())
            last_healthy = h->get_bool();
    if (o.json && !reply.raw_result.empty()) {
        std::fwrite(reply.raw_result.data(), 1, reply.raw_result.size(), stdout);
        std::fputc('\n', stdout);
    } else if (o.json) {
        std::printf("%s\n", json::serialize(reply.result).c_str());
    } else if (human) {
        std::fputs(human(reply.result).c_str(), stdout);
    }
    return kOk;
}

// A follower that could not keep up gets {"skipped": N} where the lines it missed were.
const json::value* skipped_count(const json::value& item) {
    if (!item.is_object()) return nullptr;
    const auto* n = item.get_object().if_contains("skipped");
    return n && (n->is_int64() || n->is_uint64()) ? n : nullptr;
}

std::string render_skipped(const json::value& n, const Style& style) {
    std::string digits = std::to_string(n.to_number<std::uint64_t>()), grouped;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0) grouped += ',';
        grouped += digits[i];
    }
    return colored(style,
                   "[cowherd: " + grouped + (digits == "1" ? " line" : " lines") + " skipped]",
                   "33") +
           "\n";
}

// An events subscriber that could not keep up gets {"missed": N} where the events it missed were.
const json::value* missed_count(const json::value& item) {
    if (!item.is_object()) return nullptr;
    const auto* n = item.get_object().if_contains("missed");
    return n && (n->is_int64() || n->is_uint64()) ? n : nullptr;
}

// One request, its reply or why there was none; nothing printed.
std::variant<proto::Reply, std::string> ask(const Options& o, std::string_view cmd,
                                            json::object args, std::chrono::milliseconds timeout) {
    auto c = Client::connect(socket_path(o), std::chrono::seconds(2));
    if (auto* u = std::get_if<Unreachable>(&c)) return u->message;
    auto r = std::get<Client>(c).call(cmd, std::move(args), timeout, {}, false);
    if (auto* u = std::get_if<Unreachable>(&r)) return u->message;
    if (auto* t = std::get_if<TimedOut>(&r)) return t->message;
    return std::get<proto::Reply>(std::move(r));
}

// The daemon section of a status reply, or null.
const json::object* daemon_of(const std::variant<proto::Reply, std::string>& r) {
    const auto* reply = std::get_if<proto::Reply>(&r);
    if (!reply || !reply->ok || !reply->result.is_object()) return nullptr;
    const auto* d = reply->result.as_object().if_contains("daemon");
    return d && d->is_object() ? &d->as_object() : nullptr;
}

std::uint64_t count_of(const json::object& d, std::string_view key) {
    const auto* v = d.if_contains(key);
    return v && v->is_number() ? v->to_number<std::uint64_t>() : 0;
}

// `upgrade`: the daemon checks the new binary and executes it in place; the exec closes every
// connection, ours too, so the outcome is read from `status` once an image answers again: the
// upgrade count went up (the new image took over) or the failure count did (it gave back).
int run_upgrade(const Options& o, const std::string& binary) {
    const auto timeout = std::chrono::seconds(o.timeout_s > 0 ? o.timeout_s : 30);
    const auto before = ask(o, proto::verb::status, {}, std::chrono::seconds(10));
    if (auto* why = std::get_if<std::string>(&before))
        return fail(o, kUnreachable, "unreachable", *why);
    const json::object* d0 = daemon_of(before);
    if (!d0) return fail(o, kFailed, "failed", "status did not answer");
    const auto upgrades = count_of(*d0, "upgrades"), failures = count_of(*d0, "upgrade_failures");
    const std::string from(d0->at("version").as_string());
    json::object a;
    // The daemon runs elsewhere: a relative path means one from here.
    if (!binary.empty()) a[proto::arg::binary] = std::filesystem::absolute(binary).string();
    auto sent = ask(o, proto::verb::upgrade, a, timeout);
    if (auto* why = std::get_if<std::string>(&sent))
        return fail(o, kUnreachable, "unreachable", *why);
    const auto& reply = std::get<proto::Reply>(sent);
    if (!reply.ok) {
        const bool usage =
            proto::error_code_from_string(reply.error_code) == proto::ErrorCode::invalid_argument;
        return fail(o, usage ? kUsage : kFailed, reply.error_code, reply.error_message,
                    "upgrade: ");
    }
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
        const auto now = ask(o, proto::verb::status, {}, std::chrono::seconds(2));
        if (const json::object* d = daemon_of(now)) {
            if (count_of(*d, "upgrades") > upgrades) {
                json::object out{{"from", from},
                                 {"to", d->at("version")},
                                 {"pid", d->at("pid")},
                                 {"binary", reply.result.as_object().at("binary")},
                                 {"upgrades", d->at("upgrades")}};
                if (o.json)
                    std::printf("%s\n", json::serialize(out).c_str());
                else
                    std::printf("cowherd upgraded in place: %s -> %s (pid %s, every worker kept)\n",
                                cow::escape_invisible(from).c_str(),
                                cow::escape_invisible(d->at("version").as_string()).c_str(),
                                json::serialize(d->at("pid")).c_str());
                return kOk;
            }
            if (count_of(*d, "upgrade_failures") > failures)
                return fail(
                    o, kFailed, "failed",
                    "the new image gave back: " + std::string(d->at("upgrade_error").as_string()) +
                        "; cowherd " + from + " goes on, every worker kept",
                    "upgrade: ");
        }
        // The images hand over in milliseconds; a status every 20 ms sees it soon after.
        struct timespec ts {
            0, 20 * 1000 * 1000
        };
        ::nanosleep(&ts, nullptr);
    }
    return fail(o, kTimedOut, "client_timeout",
                "no image of the daemon answered within " + std::to_string(timeout.count()) + "s",
                "upgrade: ");
}

// Whatever escaped cowctl(): under --json still the one error document stdout promises.
int internal_error(const Options& o, const char* what) noexcept {
    try {
        return fail(o, kFailed, proto::to_string(proto::ErrorCode::internal),
                    std::string("internal error: ") + what);
    } catch (...) {  // not even the message could be built
        std::fputs("cowctl: internal error\n", stderr);
        return kFailed;
    }
}

int cowctl(int argc, char** argv, Options& o) {
    CLI::App app{"cowctl: control a running cowherd"};
    app.require_subcommand(1);
    app.fallthrough();
    app.add_option(
        "-s,--socket", o.socket,
        "control socket (default: $COWHERD_SOCKET, then " + cow::default_socket_path() + ")");
    app.add_flag("--json", o.json,
                 "print the daemon's JSON result instead of a table: exactly one JSON document "
                 "on stdout, {\"error\":{\"code\",\"message\"}} on failure");
    app.add_option("--timeout", o.timeout_s,
                   "seconds to wait for the daemon's reply, then exit 4 (default: 600 for start, "
                   "stop and scale, 1800 for restart and reload, 300 for mem, 10 for the rest; "
                   "logs -f waits forever)")
        ->check(CLI::Range(1, 7 * 24 * 3600));
    const Style style = detect_style();

    std::string target;
    bool no_wait = false;
    int rc = kOk;
    std::function<int()> action;

    auto* status = app.add_subcommand("status", "show pools and workers");
    status->add_option("target", target, "POOL, POOL.N or all");
    status->callback([&] {
        json::object a;
        if (!target.empty()) a[proto::arg::target] = target;
        action = [&, a] {
            return run(o, proto::verb::status, a,
                       [&](const json::value& v) { return render_status(v, style); });
        };
    });

    for (std::string_view verb : {proto::verb::start, proto::verb::stop}) {
        std::string help = std::string(verb) + " POOL, POOL.N or all; waits until done";
        auto* sc = app.add_subcommand(std::string(verb), help);
        sc->add_option("target", target, "POOL, POOL.N or all")->required();
        sc->add_flag("--no-wait", no_wait, "return as soon as the daemon accepted the request");
        sc->callback([&, verb] {
            json::object a{{proto::arg::target, target}, {proto::arg::wait, !no_wait}};
            action = [&, a, verb] {
                return run(
                    o, verb, a, [&](const json::value& v) { return render_workers(v, style); },
                    std::chrono::minutes(10));
            };
        });
    }

    std::string batch;
    bool all_at_once = false, progress = false;
    const std::string progress_help =
        "with --json: also write each progress item to stderr as a JSON line, as it happens "
        "(stdout still holds only the final document)";
    auto* restart = app.add_subcommand(
        "restart",
        "restart POOL, POOL.N or all; pools with sockets or readiness roll (a replacement "
        "first, then the old worker stops)");
    restart->add_option("target", target, "POOL, POOL.N or all")->required();
    restart->add_option("--batch", batch, "roll N workers (or P%) at a time; default 1");
    restart->add_flag("--all-at-once", all_at_once, "plain restart: stop, then start");
    restart->add_flag("--no-wait", no_wait, "return as soon as the daemon accepted the request");
    restart->add_flag("--progress", progress, progress_help);
    bool cancel = false;
    restart->add_flag("--cancel", cancel,
                      "stop a rolling restart in progress: replacements not ready yet stop, "
                      "the old workers keep serving");
    restart->callback([&] {
        json::object a{{proto::arg::target, target},
                       {proto::arg::wait, !no_wait},
                       {proto::arg::all_at_once, all_at_once}};
        if (cancel) a[proto::arg::cancel] = true;
        if (!batch.empty()) a[proto::arg::batch] = batch;
        action = [&, a] {
            Progress shown(o.json, progress);
            return run(
                o, proto::verb::restart, a,
                [&](const json::value& v) {
                    if (const auto* c = v.as_object().if_contains("cancelled")) {
                        std::string out = "rolling restart cancelled:";
                        for (const auto& p : c->as_array())
                            out += " " + std::string(p.as_string());
                        return out + "; the old workers keep serving\n";
                    }
                    return render_workers(v, style);
                },
                std::chrono::minutes(30), [&](const json::value& v) { shown.item(v); },
                [&] { shown.clear_bar(); });
        };
    });

    bool dry_run = false;
    auto* reload = app.add_subcommand(
        "reload",
        "re-read the config; print the plan, then apply it (invalid config: nothing changes)");
    reload->add_flag("--dry-run", dry_run, "print the plan without applying it");
    reload->add_flag("--progress", progress, progress_help);
    reload->callback([&] {
        json::object a{{proto::arg::dry_run, dry_run}};
        action = [&, a] {
            Progress shown(o.json, progress);
            return run(
                o, proto::verb::reload, a,
                [&](const json::value& v) {
                    const auto* d = v.as_object().if_contains("dry_run");
                    if (d && d->is_bool() && d->get_bool())
                        return render_plan(v, PlanStage::dry_run);
                    // The plan came first, as it was about to be applied: do not repeat it.
                    if (shown.plan_shown()) return std::string("reload applied\n");
                    return render_plan(v, PlanStage::applied);
                },
                std::chrono::minutes(30), [&](const json::value& v) { shown.item(v); },
                [&] { shown.clear_bar(); });
        };
    });

    int log_lines = 100;
    bool log_follow = false, log_stderr = false, log_stdout = false;
    std::string log_since;
    auto* logs = app.add_subcommand("logs", "recent output of a pool or worker; -f follows it");
    logs->add_option("target", target,
                     "POOL, POOL.N, or POOL.template for a template pool's template")
        ->required();
    logs->add_option("-n,--lines", log_lines, "how many recent lines (default 100)")
        ->check(CLI::Range(0, 100000));
    logs->add_flag("-f,--follow", log_follow, "keep printing new lines until interrupted");
    logs->add_flag("--stderr", log_stderr, "only stderr");
    logs->add_flag("--stdout", log_stdout, "only stdout");
    logs->add_option("--since", log_since, "only lines newer than this, like 5m or 30s");
    logs->callback([&] {
        json::object a{{proto::arg::target, target},
                       {proto::arg::lines, log_lines},
                       {proto::arg::follow, log_follow}};
        if (log_stderr != log_stdout)
            a[proto::arg::stream] = log_stderr ? proto::stream::err : proto::stream::out;
        if (!log_since.empty()) {
            auto d = cow::parse_duration(log_since);
            if (!d) throw CLI::ValidationError("--since", "expected a duration like 5m or 30s");
            a[proto::arg::since_ms] = d->count();
        }
        action = [&, a] {
            // A follower outlives an upgrade of the daemon: it reconnects and asks for what
            // came since it started, and each line's seq (per worker and stream) tells what it
            // has printed already and what the daemon's ring no longer holds.
            std::map<std::pair<std::string, std::string>, std::uint64_t> last;
            const auto started = std::chrono::system_clock::now();
            bool resumed = false;
            int resumes = 0;
            std::int64_t last_ts = 0;  // the newest line printed, wall ms
            auto print = [&](const json::value& v) {
                const auto* l = v.is_object() ? &v.as_object() : nullptr;
                const auto* seq = l ? l->if_contains("seq") : nullptr;
                if (seq && seq->is_number()) {
                    resumes = 0;
                    const auto n = seq->to_number<std::uint64_t>();
                    auto key = std::pair{std::string(l->at("worker").as_string()),
                                         std::string(l->at("stream").as_string())};
                    auto it = last.find(key);
                    if (it != last.end() && n <= it->second) return;  // printed before
                    if (it != last.end() && resumed && n > it->second + 1) {
                        const json::value gap = n - it->second - 1;
                        if (o.json)
                            std::printf("{\"skipped\":%s}\n", json::serialize(gap).c_str());
                        else
                            std::fputs(render_skipped(gap, style).c_str(), stdout);
                    }
                    last[key] = n;
                    if (const auto* ts = l->if_contains("ts_ms"); ts && ts->is_number())
                        last_ts = std::max(last_ts, ts->to_number<std::int64_t>());
                }
                if (o.json)
                    std::printf("%s\n", json::serialize(v).c_str());
                else if (const auto* n = skipped_count(v))
                    std::fputs(render_skipped(*n, style).c_str(), stdout);
                else
                    std::fputs(render_log_line(v, style).c_str(), stdout);
                std::fflush(stdout);
            };
            Resume resume;
            if (log_follow)
                resume = [&]() -> std::optional<json::object> {
                    if (++resumes > 5) return std::nullopt;  // closed again and again: give up
                    resumed = true;
                    // From a second before the newest line printed (or from the start):
                    // what the seqs then skip is small, so the first reply of the new
                    // connection is not a burst that makes this follower a slow one.
                    const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                            std::chrono::system_clock::now().time_since_epoch())
                                            .count();
                    const auto from_ms =
                        last_ts > 0 ? last_ts - 1000
                                    : std::chrono::duration_cast<std::chrono::milliseconds>(
                                          started.time_since_epoch())
                                          .count();
                    json::object next = a;
                    next[proto::arg::lines] = 100000;
                    next[proto::arg::since_ms] = std::max<std::int64_t>(1, now_ms - from_ms + 1);
                    return next;
                };
            return run(
                o, proto::verb::logs, a,
                [&](const json::value& v) {
                    std::string out;
                    for (const auto& l : v.as_object().at("lines").as_array())
                        out += render_log_line(l, style);
                    return out;
                },
                log_follow ? std::chrono::milliseconds(-1) : std::chrono::seconds(10), print, {},
                resume);
        };
    });

    auto* reopen = app.add_subcommand("reopen", "reopen every log file (after logrotate)");
    reopen->callback([&] {
        action = [&] {
            return run(o, proto::verb::reopen, {},
                       [](const json::value&) { return std::string("log files reopened\n"); });
        };
    });

    int scale_to = -1;
    auto* scale = app.add_subcommand("scale", "set a pool's number of workers (until reload)");
    scale->add_option("pool", target, "POOL")->required();
    scale->add_option("size", scale_to, "workers")->required()->check(CLI::Range(0, 10000));
    scale->callback([&] {
        json::object a{{proto::arg::target, target}, {proto::arg::size, scale_to}};
        action = [&, a] {
            return run(
                o, proto::verb::scale, a,
                [](const json::value& v) {
                    const auto& r = v.as_object();
                    return "pool " + cow::escape_invisible(r.at("pool").as_string()) + ": " +
                           std::to_string(r.at("from").to_number<int>()) + " -> " +
                           std::to_string(r.at("to").to_number<int>()) + " workers\n";
                },
                std::chrono::minutes(10));
        };
    });

    std::string sig;
    bool tree_all = false;
    auto* signal = app.add_subcommand(
        "signal", "send a signal to each worker's main process (--tree: to its whole tree)");
    signal->add_option("signal", sig, "HUP, USR1, 15, ...")->required();
    signal->add_option("target", target, "POOL, POOL.N or all")->required();
    signal->callback([&] {
        json::object a{
            {proto::arg::signal, sig}, {proto::arg::target, target}, {proto::arg::tree, tree_all}};
        action = [&, a] {
            return run(o, proto::verb::signal, a, [](const json::value& v) {
                const auto& r = v.as_object();
                return "sent " + cow::escape_invisible(r.at("signal").as_string()) + " to " +
                       std::to_string(r.at("signalled").to_number<int>()) + " worker(s)\n";
            });
        };
    });

    signal->add_flag("--tree", tree_all,
                     "signal every process of each worker's tree (its cgroup or process group), "
                     "not only its main process");

    auto* history = app.add_subcommand(
        "history", "recent exits of each worker, newest first, and why each process died");
    std::string history_target;
    int history_n = 20;
    history->add_option("target", history_target, "POOL, POOL.N or all (default all)");
    history->add_option("-n,--lines", history_n, "exits per worker (default 20, at most 32)")
        ->check(CLI::Range(1, 32));
    history->callback([&] {
        json::object a{{proto::arg::lines, history_n}};
        if (!history_target.empty()) a[proto::arg::target] = history_target;
        action = [&, a] {
            return run(o, proto::verb::history, a,
                       [&](const json::value& v) { return render_history(v, style); });
        };
    });

    bool events_follow = false;
    std::string events_since, events_pool;
    auto* events = app.add_subcommand(
        "events",
        "what happened: state changes, exits and their causes, recycles, rolling restarts, "
        "reloads, orphans, probe failures; -f follows");
    events->add_flag("-f,--follow", events_follow,
                     "keep printing events as they happen until interrupted (without --since, "
                     "only new ones)");
    events->add_option("--since", events_since,
                       "only events newer than this, like 10m or 30s (the daemon keeps the last "
                       "1024)");
    events->add_option("--pool", events_pool, "only this pool's events (and the daemon's own)");
    events->callback([&] {
        json::object a{{proto::arg::follow, events_follow}};
        if (!events_pool.empty()) a[proto::arg::pool] = events_pool;
        if (!events_since.empty()) {
            auto d = cow::parse_duration(events_since);
            if (!d) throw CLI::ValidationError("--since", "expected a duration like 10m or 30s");
            a[proto::arg::since_ms] = d->count();
        }
        action = [&, a] {
            auto print = [&](const json::value& v) {
                if (o.json) {
                    std::printf("%s\n", json::serialize(v).c_str());
                } else if (const auto* n = missed_count(v)) {
                    const auto k = n->to_number<std::uint64_t>();
                    std::fputs(colored(style,
                                       "[cowherd: " + std::to_string(k) +
                                           (k == 1 ? " event" : " events") + " missed]",
                                       "33")
                                   .c_str(),
                               stdout);
                    std::fputs("\n", stdout);
                } else {
                    std::fputs(render_event(v, style).c_str(), stdout);
                }
                std::fflush(stdout);
            };
            return run(
                o, proto::verb::events, a,
                [&](const json::value& v) {
                    std::string out;
                    for (const auto& e : v.as_object().at("events").as_array())
                        out += render_event(e, style);
                    return out;
                },
                events_follow ? std::chrono::milliseconds(-1) : std::chrono::seconds(10), print);
        };
    });

    auto* tree = app.add_subcommand("tree", "show each worker's process tree, and orphans");
    tree->add_option("pool", target, "POOL or all");
    bool tree_args = false;
    tree->add_flag("-a,--args", tree_args,
                   "show full command lines (reads one more /proc file per process)");
    tree->callback([&] {
        json::object a;
        if (!target.empty()) a[proto::arg::target] = target;
        if (tree_args) a[proto::arg::args] = true;
        action = [&, a] {
            return run(o, proto::verb::tree, a,
                       [&](const json::value& v) { return render_tree(v, style); });
        };
    });

    auto* mem = app.add_subcommand(
        "mem", "memory per worker and pool: rss, pss, uss, shared vs private, COW erosion");
    mem->add_option("pool", target, "POOL, POOL.N (its pool) or all");
    std::string mem_sort, mem_maps, mem_since;
    bool mem_deep = false, mem_history = false;
    mem->add_option("--sort", mem_sort, "order workers by their tree's pss, uss or rss")
        ->check(CLI::IsMember(
            std::vector<std::string>(proto::kMemSorts.begin(), proto::kMemSorts.end())));
    mem->add_option("--maps", mem_maps,
                    "break one worker (and its children) down by mapping: binary, libraries, "
                    "heap, anonymous, shmem, stack, files");
    mem->add_flag("--deep", mem_deep,
                  "root: read page frames (pagemap, kpagecount) to tell pages shared within "
                  "the pool (with the master, with siblings) from pages shared with others");
    mem->add_flag("--history", mem_history,
                  "each worker's memory over time (sampled every daemon.memory.sample_every): "
                  "uss, pss and cow_lost as sparklines, with the trend of its uss");
    mem->add_option("--since", mem_since, "with --history: only this far back, like 10m or 1h");
    int mem_points = 0;
    mem->add_option("--points", mem_points,
                    "with --history: at most this many points per worker, consecutive ones "
                    "averaged (default: 60 for the chart, 360 with --json)")
        ->check(CLI::Range(1, 4096));
    mem->callback([&] {
        json::object a;
        if (!target.empty()) a[proto::arg::target] = target;
        if (!mem_sort.empty()) a[proto::arg::sort] = mem_sort;
        if (!mem_maps.empty()) a[proto::arg::maps] = mem_maps;
        if (mem_deep) a[proto::arg::deep] = true;
        if (!mem_since.empty() && !mem_history)
            throw CLI::ValidationError("--since", "goes with --history");
        if (mem_history) {
            if (mem_deep || !mem_maps.empty())
                throw CLI::ValidationError("--history", "goes without --deep and --maps");
            a[proto::arg::history] = true;
            a[proto::arg::points] = mem_points > 0 ? mem_points : o.json ? 360 : 60;
        } else if (mem_points > 0) {
            throw CLI::ValidationError("--points", "goes with --history");
        }
        if (!mem_since.empty()) {
            auto d = cow::parse_duration(mem_since);
            if (!d) throw CLI::ValidationError("--since", "expected a duration like 10m or 1h");
            a[proto::arg::since_ms] = d->count();
        }
        const bool maps = !mem_maps.empty(), deep = mem_deep, hist = mem_history;
        action = [&, a, maps, deep, hist] {
            return run(
                o, proto::verb::mem, a,
                [&, maps, deep, hist](const json::value& v) {
                    if (maps) return render_maps(v, style);
                    if (deep) return render_deep(v, style);
                    if (hist) return render_mem_history(v, style);
                    return render_mem(v, style);
                },
                std::chrono::minutes(5));
        };
    });

    TopOptions top_opts;
    auto* top = app.add_subcommand(
        "top", "a live full-screen view of pools and workers: state, CPU, memory and its trend");
    add_top_options(*top, top_opts);
    top->callback([&] {
        action = [&] {
            TopConnection conn{socket_path(o), o.json};
            return run_top(conn, top_opts);
        };
    });

    auto* health = app.add_subcommand(
        "health", "exit 0 if every essential pool (or, with none, every autostart pool) runs");
    health->callback([&] {
        action = [&] {
            int code = run(o, proto::verb::health, {},
                           [](const json::value& v) { return render_health(v); });
            if (code != kOk) return code;
            // run() printed the verdict; the exit code carries it for probes.
            return last_healthy ? kOk : kFailed;
        };
    });

    auto* shutdown = app.add_subcommand("shutdown", "stop every pool and exit the daemon");
    shutdown->callback([&] {
        action = [&] {
            return run(o, proto::verb::shutdown, {}, [](const json::value&) {
                return std::string("cowherd is shutting down\n");
            });
        };
    });

    std::string new_binary;
    auto* upgrade = app.add_subcommand(
        "upgrade",
        "execute a new cowherd binary in place: the same PID, every worker kept running; a new "
        "binary that cannot take over gives back to the running one");
    upgrade->add_option("--binary", new_binary,
                        "the new binary (default: the path the daemon was started from, read "
                        "again from disk)");
    upgrade->callback([&] { action = [&] { return run_upgrade(o, new_binary); }; });

    auto* version = app.add_subcommand("version", "print the daemon's version");
    version->callback([&] {
        action = [&] {
            return run(o, proto::verb::version, {}, [](const json::value& v) {
                return "cowherd " + cow::escape_invisible(v.as_object().at("version").as_string()) +
                       "\n";
            });
        };
    });

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        int code = app.exit(e);
        return code == 0 ? kOk : kUsage;
    }
    if (action) rc = action();
    return rc;
}

}  // namespace

// Whatever escapes (a reply of a shape this cowctl does not know, bad_alloc) would otherwise
// reach std::terminate: an abort that says nothing of why.
int main(int argc, char** argv) {
    Options o;
    try {
        return cowctl(argc, argv, o);
    } catch (const std::exception& e) {
        return internal_error(o, e.what());
    } catch (...) {
        return internal_error(o, "an exception of unknown type");
    }
}
