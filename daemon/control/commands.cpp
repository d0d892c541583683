#include "daemon/control/commands.hpp"

#include <algorithm>
#include <array>
#include <string_view>

#include <spdlog/spdlog.h>
#include <unistd.h>

#include "core/protocol_names.hpp"
#include "core/signal_names.hpp"
#include "daemon/control/views.hpp"
#include "daemon/memory/memory_view.hpp"
#include "daemon/memory/tree_view.hpp"

namespace cow {
namespace json = boost::json;
using proto::ErrorCode;

namespace {

using Handler = void (*)(CommandContext&, const Peer&, proto::Request&,
                         std::shared_ptr<Responder>&);

ErrorCode code_of(const std::string& s) {
    return proto::error_code_from_string(s).value_or(ErrorCode::invalid_argument);
}

// Resolves args.target ("all" when absent only if allow_default) or answers an error.
std::optional<std::vector<Worker*>> targets_of(CommandContext& ctx, proto::Request& req,
                                               Responder& resp) {
    auto target = proto::get_string(req.args, proto::arg::target);
    if (!target) {
        resp.error(ErrorCode::invalid_argument,
                   "missing \"target\": a pool, a worker (POOL.N) or all");
        return std::nullopt;
    }
    auto r = ctx.sup.resolve(*target);
    if (auto* err = std::get_if<Supervisor::TargetError>(&r)) {
        resp.error(code_of(err->code), err->message);
        return std::nullopt;
    }
    return std::get<std::vector<Worker*>>(std::move(r));
}

json::array summary_of(CommandContext& ctx, const std::vector<std::uint64_t>& ids) {
    json::array arr;
    for (auto id : ids)
        if (Worker* w = ctx.sup.find_worker(id)) arr.push_back(views::worker(*w, ctx.sup.now()));
    return arr;
}

bool is_failed(fsm::State s) {
    return s == fsm::State::backoff || s == fsm::State::fatal || s == fsm::State::exited ||
           s == fsm::State::stopped;
}

std::string why_failed(const Worker& w) {
    std::string s = w.name + " is " + std::string(fsm::to_string(w.slot.state));
    if (!w.last_error.empty())
        s += ": " + w.last_error;
    else if (!w.last_reason.empty())
        s += ": " + w.last_reason;
    return s;
}

// Where a worker stands, for a verb that waits, since `ev` was sent to it when its process was
// of `generation`: the one definition of "settled" for start, stop, restart and scale.
enum class Settled { not_yet, done, failed };
Settled settled(const Supervisor& sup, const Worker& w, fsm::EventType ev,
                std::uint64_t generation) {
    const auto st = w.slot.state;
    if (ev == fsm::EventType::stop) {
        // Stopped means nothing of it runs: kept orphans and leftovers included.
        if (w.alive() || w.draining || st == fsm::State::stopping || sup.has_orphans(w))
            return Settled::not_yet;
        return Settled::done;
    }
    if (sup.start_held(w)) return Settled::not_yet;  // its dependencies start first
    // A start is answered by any running process; a restart only by a new one.
    const bool fresh = ev == fsm::EventType::start || w.generation > generation;
    if (st == fsm::State::running && fresh) return Settled::done;
    if (is_failed(st) && (fresh || st != fsm::State::stopped)) return Settled::failed;
    return Settled::not_yet;
}

// (worker id, generation when the verb was sent) of each target a verb waits for.
using Sent = std::vector<std::pair<std::uint64_t, std::uint64_t>>;

// True once every target has settled, or one has failed (its sentence in `failure`). A target
// removed meanwhile has nothing left to wait for.
bool all_settled(const Supervisor& sup, const Sent& sent, fsm::EventType ev, std::string& failure) {
    for (auto [id, generation] : sent) {
        const Worker* w = sup.find_worker(id);
        if (!w) continue;
        switch (settled(sup, *w, ev, generation)) {
            case Settled::done:
                continue;
            case Settled::failed:
                failure = why_failed(*w);
                return true;
            case Settled::not_yet:
                return false;
        }
    }
    return true;
}

// start, stop and restart answer once the targets have settled, unless "wait": false.
void lifecycle(CommandContext& ctx, proto::Request& req, std::shared_ptr<Responder>& resp,
               fsm::EventType ev) {
    auto targets = targets_of(ctx, req, *resp);
    if (!targets) return;
    if (ctx.sup.shutting_down() && ev != fsm::EventType::stop) {
        resp->error(ErrorCode::shutting_down, "the daemon is shutting down");
        return;
    }
    Sent ts;
    std::vector<std::uint64_t> ids;
    Millis longest{0};
    for (Worker* w : *targets) {
        ts.push_back({w->id, w->generation});
        ids.push_back(w->id);
        const auto& pol = w->pool->policy;
        Millis need =
            ev == fsm::EventType::stop ? pol.stop_timeout : pol.start_timeout + pol.stop_timeout;
        // depends_on: a stop waits for the dependents to stop first, a start for the
        // dependencies to start.
        if (ev == fsm::EventType::stop)
            for (const Pool* d : ctx.sup.dependents_of(*w->pool))
                need += d->policy.stop_timeout;
        else
            for (const Pool* d : ctx.sup.dependencies_of(*w->pool))
                need += d->policy.start_timeout;
        longest = std::max(longest, need);
    }
    ctx.sup.command(*targets, ev);

    if (!proto::get_bool(req.args, proto::arg::wait).value_or(true)) {
        json::object o;
        o["workers"] = summary_of(ctx, ids);
        resp->ok(std::move(o));
        return;
    }
    Millis timeout = longest + Millis(5000);
    if (auto t = proto::get_int(req.args, proto::arg::timeout_ms); t && *t > 0)
        timeout = Millis(*t);

    Supervisor& sup = ctx.sup;
    auto failure = std::make_shared<std::string>();
    auto done = [&sup, ts, ev, failure] { return all_settled(sup, ts, ev, *failure); };
    CommandContext* c = &ctx;
    sup.add_waiter(Supervisor::Waiter{
        std::move(done), sup.now() + timeout, [c, resp, ids, failure, timeout](bool timed_out) {
            if (timed_out) {
                resp->error(ErrorCode::timeout,
                            "not settled within " + std::to_string(timeout.count()) + " ms");
            } else if (!failure->empty()) {
                resp->error(ErrorCode::failed, *failure);
            } else {
                json::object o;
                o["workers"] = summary_of(*c, ids);
                resp->ok(std::move(o));
            }
        }});
}

void cmd_status(CommandContext& ctx, const Peer&, proto::Request& req,
                std::shared_ptr<Responder>& resp) {
    std::optional<std::vector<Worker*>> only;
    if (auto t = proto::get_string(req.args, proto::arg::target); t && *t != proto::kAllTargets) {
        only = targets_of(ctx, req, *resp);
        if (!only) return;
    }
    auto o = views::status(ctx.sup, only ? &*only : nullptr);
    // Output counters per pool: lines captured, and lines dropped under log_backpressure: drop.
    for (auto& pv : o["pools"].as_array()) {
        auto& po = pv.as_object();
        const auto& stats = ctx.output.stats();
        auto it = stats.find(std::string(po["name"].as_string()));
        PoolLogStats st = it == stats.end() ? PoolLogStats{} : it->second;
        po["log"] = json::object{{"stdout_lines", st.lines[0]},
                                 {"stderr_lines", st.lines[1]},
                                 {"stdout_bytes", st.bytes[0]},
                                 {"stderr_bytes", st.bytes[1]},
                                 {"dropped_lines", st.dropped},
                                 {"stdout_write_errors", st.write_errors[0]},
                                 {"stderr_write_errors", st.write_errors[1]}};
    }
    o["daemon"] = json::object{
        {"pid", getpid()},
        {"version", COWHERD_VERSION},
        {"upgrades", ctx.upgrades},
        {"upgrade_failures", ctx.upgrade_failures},
        {"upgrade_error", ctx.upgrade_error},
        {"uptime_ms", std::chrono::duration_cast<Millis>(ctx.sup.now() - ctx.started_at).count()},
        {"shutting_down", ctx.sup.shutting_down()},
        {"reaped", ctx.sup.reaped()},
        {"orphans", ctx.sup.orphans().size()},
    };
    resp->ok(std::move(o));
}

void cmd_start(CommandContext& ctx, const Peer&, proto::Request& req,
               std::shared_ptr<Responder>& resp) {
    lifecycle(ctx, req, resp, fsm::EventType::start);
}
void cmd_stop(CommandContext& ctx, const Peer&, proto::Request& req,
              std::shared_ptr<Responder>& resp) {
    lifecycle(ctx, req, resp, fsm::EventType::stop);
}
// "25%" of a pool of 8 is 2; "3" is 3; at least 1.
std::optional<int> parse_batch(const std::string& s, int pool_size) {
    if (s.empty()) return 1;
    bool pct = s.back() == '%';
    std::string digits = pct ? s.substr(0, s.size() - 1) : s;
    if (digits.empty() || digits.size() > 6) return std::nullopt;
    int n = 0;
    for (char c : digits) {
        if (c < '0' || c > '9') return std::nullopt;
        n = n * 10 + (c - '0');
    }
    if (pct) n = (pool_size * n + 99) / 100;
    return std::max(1, n);
}

// restart: pools with sockets or readiness roll (successor first) unless all_at_once; other
// pools restart in place. The reply comes when every part has finished; a roll streams a
// progress item per worker replaced.
// restart --cancel: the rolls of the target pools stop; replacements not ready yet go, and
// the old processes they were to replace keep serving.
void cancel_rolls(CommandContext& ctx, proto::Request& req, std::shared_ptr<Responder>& resp) {
    auto targets = targets_of(ctx, req, *resp);
    if (!targets) return;
    std::vector<Pool*> pools;
    for (Worker* w : *targets)
        if (std::find(pools.begin(), pools.end(), w->pool) == pools.end()) pools.push_back(w->pool);
    json::array cancelled;
    int kept = 0;
    for (Pool* p : pools) {
        if (!ctx.sup.rolling(*p)) continue;
        kept += ctx.sup.cancel_roll(*p, "cancelled by cowctl restart --cancel");
        cancelled.push_back(json::string(p->name()));
    }
    if (cancelled.empty()) {
        resp->error(
            ErrorCode::failed,
            "no rolling restart is in progress for " +
                std::string(
                    proto::get_string(req.args, proto::arg::target).value_or("the target")));
        return;
    }
    json::object o;
    o["cancelled"] = std::move(cancelled);
    o["kept_old"] = kept;
    resp->ok(std::move(o));
}

void cmd_restart(CommandContext& ctx, const Peer&, proto::Request& req,
                 std::shared_ptr<Responder>& resp) {
    const bool all_at_once = proto::get_bool(req.args, proto::arg::all_at_once).value_or(false);
    const bool wait = proto::get_bool(req.args, proto::arg::wait).value_or(true);
    if (proto::get_bool(req.args, proto::arg::cancel).value_or(false)) {
        cancel_rolls(ctx, req, resp);
        return;
    }
    if (all_at_once || !wait) {
        lifecycle(ctx, req, resp, fsm::EventType::restart);
        return;
    }
    auto targets = targets_of(ctx, req, *resp);
    if (!targets) return;
    if (ctx.sup.shutting_down()) {
        resp->error(ErrorCode::shutting_down, "the daemon is shutting down");
        return;
    }
    std::vector<std::pair<Pool*, std::vector<Worker*>>> by_pool;
    for (Worker* w : *targets) {
        if (by_pool.empty() || by_pool.back().first != w->pool) by_pool.push_back({w->pool, {}});
        by_pool.back().second.push_back(w);
    }
    const std::string batch_arg = proto::get_string(req.args, proto::arg::batch).value_or("");
    std::vector<Worker*> plain;
    std::vector<std::pair<Pool*, std::vector<Worker*>>> rolls;
    for (auto& [pool, ws] : by_pool) {
        const bool roll = config::restarts_rolling(*pool->cfg);
        if (!roll) {
            plain.insert(plain.end(), ws.begin(), ws.end());
            continue;
        }
        if (ctx.sup.rolling(*pool)) {
            resp->error(ErrorCode::busy,
                        "a rolling restart of " + pool->name() + " is already in progress");
            return;
        }
        rolls.emplace_back(pool, ws);
    }
    if (rolls.empty()) {
        lifecycle(ctx, req, resp, fsm::EventType::restart);
        return;
    }
    struct Progress {
        int pending = 0;
        std::vector<std::string> failures;
        std::vector<std::uint64_t> ids;
    };
    auto st = std::make_shared<Progress>();
    for (Worker* w : *targets)
        st->ids.push_back(w->id);
    CommandContext* c = &ctx;
    auto part_done = [c, resp, st](bool ok, const std::string& why) {
        if (!ok) st->failures.push_back(why);
        if (--st->pending > 0) return;
        if (!st->failures.empty()) {
            std::string all;
            for (const auto& f : st->failures)
                all += (all.empty() ? "" : "; ") + f;
            resp->error(ErrorCode::failed, "rolling restart stopped: " + all);
            return;
        }
        json::object o;
        o["workers"] = summary_of(*c, st->ids);
        resp->ok(std::move(o));
    };
    st->pending = static_cast<int>(rolls.size()) + (plain.empty() ? 0 : 1);
    for (auto& [pool, ws] : rolls) {
        auto batch = parse_batch(batch_arg, static_cast<int>(pool->workers.size()));
        if (!batch) {
            resp->error(ErrorCode::invalid_argument, "--batch takes a count or a percentage");
            return;
        }
        ctx.sup.start_roll(
            *pool, ws, *batch,
            Supervisor::RollCallbacks{[resp](const json::object& p) { resp->item(p); }, part_done});
    }
    if (!plain.empty()) {
        Sent gens;
        Millis longest{0};
        for (Worker* w : plain) {
            gens.emplace_back(w->id, w->generation);
            longest =
                std::max(longest, w->pool->policy.start_timeout + w->pool->policy.stop_timeout);
        }
        ctx.sup.command(plain, fsm::EventType::restart);
        Supervisor& sup = ctx.sup;
        auto failure = std::make_shared<std::string>();
        sup.add_waiter(Supervisor::Waiter{[&sup, gens, failure] {
                                              return all_settled(sup, gens, fsm::EventType::restart,
                                                                 *failure);
                                          },
                                          sup.now() + longest + Millis(5000),
                                          [part_done, failure](bool timed_out) {
                                              if (timed_out)
                                                  part_done(false, "not settled in time");
                                              else
                                                  part_done(failure->empty(), *failure);
                                          }});
    }
}

// scale: new indexes start, the highest stop; the reply comes once they have (or failed).
void cmd_scale(CommandContext& ctx, const Peer&, proto::Request& req,
               std::shared_ptr<Responder>& resp) {
    auto name = proto::get_string(req.args, proto::arg::target);
    auto size = proto::get_int(req.args, proto::arg::size);
    if (!name || !size || *size < 0 || *size > config::kMaxWorkersPerPool) {
        resp->error(ErrorCode::invalid_argument, "scale takes a pool and a size of 0.." +
                                                     std::to_string(config::kMaxWorkersPerPool));
        return;
    }
    Pool* pool = nullptr;
    for (const auto& p : ctx.sup.pools())
        if (p->name() == *name && !p->removed) pool = p.get();
    if (!pool) {
        auto r = ctx.sup.resolve(*name);
        if (auto* err = std::get_if<Supervisor::TargetError>(&r))
            resp->error(code_of(err->code), err->message);
        else
            resp->error(ErrorCode::invalid_argument, "scale takes a pool name, not a worker");
        return;
    }
    if (ctx.sup.shutting_down()) {
        resp->error(ErrorCode::shutting_down, "the daemon is shutting down");
        return;
    }
    const int n = static_cast<int>(*size);
    const int old = ctx.sup.scale(*pool, n);
    Supervisor& sup = ctx.sup;
    const std::string pname = pool->name();
    auto find_pool = [&sup, pname]() -> Pool* {
        for (const auto& p : sup.pools())
            if (p->name() == pname) return p.get();
        return nullptr;
    };
    auto failure = std::make_shared<std::string>();
    sup.add_waiter(Supervisor::Waiter{
        [&sup, find_pool, failure] {
            Pool* p = find_pool();
            if (!p) return true;
            for (const auto& w : p->workers) {
                if (w->retiring) return false;  // still stopping
                // A worker the operator stopped stays so, and one held for depends_on waits
                // for its dependencies; every other one is to come up.
                if (w->slot.want != fsm::Want::up || sup.start_held(*w)) continue;
                switch (settled(sup, *w, fsm::EventType::start, w->generation)) {
                    case Settled::done:
                        continue;
                    case Settled::failed:
                        *failure = why_failed(*w);
                        continue;
                    case Settled::not_yet:
                        return false;
                }
            }
            return true;
        },
        sup.now() + pool->policy.start_timeout + pool->policy.stop_timeout + Millis(10000),
        [resp, failure, old, n, pname](bool timed_out) {
            if (timed_out) {
                resp->error(ErrorCode::timeout, "pool " + pname + " did not settle in time");
            } else if (!failure->empty()) {
                resp->error(ErrorCode::failed, *failure);
            } else {
                resp->ok(json::object{{"pool", pname}, {"from", old}, {"to", n}});
            }
        }});
}

void cmd_signal(CommandContext& ctx, const Peer&, proto::Request& req,
                std::shared_ptr<Responder>& resp) {
    auto name = proto::get_string(req.args, proto::arg::signal);
    std::optional<int> sig;
    if (name) sig = parse_signal(*name);
    if (!sig) {
        resp->error(ErrorCode::invalid_argument,
                    "\"signal\" must be a signal name or number such as HUP, USR1 or 15");
        return;
    }
    auto targets = targets_of(ctx, req, *resp);
    if (!targets) return;
    const bool tree = proto::get_bool(req.args, proto::arg::tree).value_or(false);
    int n = ctx.sup.signal(*targets, *sig, tree);
    spdlog::info("signal {} sent to {} worker(s) ({})", signal_name(*sig), n,
                 proto::get_string(req.args, proto::arg::target).value_or("?"));
    json::object o;
    o["signal"] = signal_name(*sig);
    o["signalled"] = n;
    resp->ok(std::move(o));
}

// history: the recent exits of each targeted slot, with their causes, newest first.
void cmd_history(CommandContext& ctx, const Peer&, proto::Request& req,
                 std::shared_ptr<Responder>& resp) {
    if (!proto::get_string(req.args, proto::arg::target))
        req.args[proto::arg::target] = proto::kAllTargets;
    auto targets = targets_of(ctx, req, *resp);
    if (!targets) return;
    const auto n = proto::get_int(req.args, proto::arg::lines).value_or(20);
    if (n < 1 || n > static_cast<std::int64_t>(Worker::kHistory)) {
        resp->error(ErrorCode::invalid_argument, "lines must be 1.." +
                                                     std::to_string(Worker::kHistory) +
                                                     " (each slot keeps its last " +
                                                     std::to_string(Worker::kHistory) + " exits)");
        return;
    }
    resp->ok(views::history(*targets, static_cast<std::size_t>(n), ctx.sup.now()));
}

void cmd_tree(CommandContext& ctx, const Peer&, proto::Request& req,
              std::shared_ptr<Responder>& resp) {
    std::string pool;
    if (auto t = proto::get_string(req.args, proto::arg::target); t && *t != proto::kAllTargets) {
        auto r = ctx.sup.resolve(*t);
        if (auto* err = std::get_if<Supervisor::TargetError>(&r)) {
            resp->error(code_of(err->code), err->message);
            return;
        }
        auto& ws = std::get<std::vector<Worker*>>(r);
        if (ws.empty() || ws.front()->pool->name() != *t) {
            resp->error(ErrorCode::invalid_argument, "tree takes a pool name or all");
            return;
        }
        pool = *t;
    }
    ctx.sup.refresh_orphans();
    // Reading /proc for thousands of processes takes tens of milliseconds: off the loop.
    const bool cmdlines = proto::get_bool(req.args, proto::arg::args).value_or(false);
    ctx.background.run(
        [q = make_tree_query(ctx.sup, pool, cmdlines)] { return json::serialize(read_trees(q)); },
        [resp](std::string out) { resp->ok_raw(std::move(out)); });
}

// Memory per worker and per pool, read off the loop; see daemon/memory/memory_sampler.
void cmd_mem(CommandContext& ctx, const Peer&, proto::Request& req,
             std::shared_ptr<Responder>& resp) {
    std::vector<Worker*> workers;
    auto target =
        proto::get_string(req.args, proto::arg::target).value_or(std::string(proto::kAllTargets));
    auto maps = proto::get_string(req.args, proto::arg::maps);
    if (maps) target = *maps;
    auto r = ctx.sup.resolve(target);
    if (auto* err = std::get_if<Supervisor::TargetError>(&r)) {
        resp->error(code_of(err->code), err->message);
        return;
    }
    workers = std::get<std::vector<Worker*>>(std::move(r));
    mem::Sampler* sampler = &ctx.sampler;
    if (maps) {
        if (workers.size() != 1) {
            resp->error(ErrorCode::invalid_argument, "--maps takes one worker, like web.0");
            return;
        }
        if (!workers[0]->alive()) {
            resp->error(ErrorCode::failed, workers[0]->name + " is not running");
            return;
        }
        ctx.background.run(
            [sampler, t = mem::target_of(*workers[0])] {
                return json::serialize(sampler->maps(t));
            },
            [resp](std::string out) { resp->ok_raw(std::move(out)); });
        return;
    }
    if (proto::get_bool(req.args, proto::arg::deep).value_or(false)) {
        if (geteuid() != 0) {
            resp->error(ErrorCode::failed,
                        "--deep needs a daemon running as root (/proc/kpagecount is root-only)");
            return;
        }
        if (workers.empty()) {
            resp->error(ErrorCode::invalid_argument, "--deep takes a pool");
            return;
        }
        const std::string pool = workers.front()->pool->name();
        std::vector<Worker*> ws;
        for (auto& w : workers.front()->pool->workers)
            ws.push_back(w.get());
        auto q = mem::make_query(ctx.sup, ws);
        if (auto t = mem::template_target(*workers.front()->pool)) q.targets.push_back(*t);
        ctx.background.run(
            [sampler, q = std::move(q), pool] { return json::serialize(sampler->deep(q, pool)); },
            [resp](std::string out) { resp->ok_raw(std::move(out)); });
        return;
    }
    const bool history = proto::get_bool(req.args, proto::arg::history).value_or(false);
    std::string sort = proto::get_string(req.args, proto::arg::sort).value_or("");
    if (!sort.empty() && std::ranges::find(proto::kMemSorts, sort) == proto::kMemSorts.end()) {
        resp->error(ErrorCode::invalid_argument, "--sort takes pss, uss or rss");
        return;
    }
    // A pool named with one worker (web.2) still reports that whole pool's totals, and a pool
    // of no workers still shows the orphans its workers left.
    const bool all = target == proto::kAllTargets;
    std::vector<const Pool*> pools;
    for (const auto& p : ctx.sup.pools()) {
        bool wanted = all || p->name() == target;
        for (Worker* w : workers)
            wanted = wanted || w->pool == p.get();
        if (wanted) pools.push_back(p.get());
    }
    if (history) {
        if (ctx.history.every().count() == 0) {
            resp->error(ErrorCode::failed, "memory history is off (daemon.memory.sample_every: 0)");
            return;
        }
        auto since = proto::get_int(req.args, proto::arg::since_ms).value_or(0);
        auto points = proto::get_int(req.args, proto::arg::points).value_or(360);
        if (points < 1 || points > 4096) {
            resp->error(ErrorCode::invalid_argument, "points: 1..4096");
            return;
        }
        resp->ok(views::mem_history(ctx.sup, ctx.history, pools, since,
                                    static_cast<std::size_t>(points)));
        return;
    }
    ctx.sup.refresh_orphans();  // processes that reparented to us since the last reap
    ctx.background.run(
        [sampler, q = mem::report_query(ctx.sup, pools, all), sort,
         trends = views::trends(ctx.history, pools)] {
            return json::serialize(mem::Sampler::to_json(q, sampler->sample(q), sort, trends));
        },
        [resp](std::string out) { resp->ok_raw(std::move(out)); });
}

// `cowctl top`, once per refresh: the status view with what the history knows of each
// worker, and its CPU since the previous request (read off the loop: a stat per worker).
void cmd_top(CommandContext& ctx, const Peer& peer, proto::Request& req,
             std::shared_ptr<Responder>& resp) {
    const auto points = proto::get_int(req.args, proto::arg::points).value_or(30);
    if (points < 0 || points > 3600) {
        resp->error(ErrorCode::invalid_argument, "points: 0..3600");
        return;
    }
    std::vector<views::CpuMeter::Target> targets;
    for (const auto& p : ctx.sup.pools())
        for (const auto& w : p->workers)
            if (w->alive()) targets.push_back({w->pid, (w->id << 24) ^ w->generation});
    CommandContext* c = &ctx;
    const bool readonly = peer.readonly;
    const std::int64_t now = ctx.history.now_ms();
    const auto have = proto::get_int(req.args, proto::arg::have_samples);
    ctx.background.run(
        [meter = ctx.cpu, targets = std::move(targets), now] {
            return meter->measure(targets, now);
        },
        [c, resp, readonly, points, have](std::unordered_map<pid_t, double> cpu) {
            const bool with_points =
                !have || *have != static_cast<std::int64_t>(c->history.samples());
            resp->ok(views::top(c->sup, c->history, cpu, static_cast<std::size_t>(points),
                                with_points, readonly));
        });
    // A `top` that stopped asking leaves no file open for long.
    if (!ctx.cpu_idle)
        ctx.cpu_idle = std::make_shared<boost::asio::steady_timer>(ctx.background.io());
    ctx.cpu_idle->expires_after(std::chrono::seconds(15));
    ctx.cpu_idle->async_wait(
        [bg = &ctx.background, meter = ctx.cpu](const boost::system::error_code& ec) {
            if (ec) return;
            bg->run(
                [meter] {
                    meter->close_all();
                    return 0;
                },
                [](int) {});
        });
}

// Healthy when every essential pool (or, with none marked essential, every autostart pool)
// has all its workers running. For container probes: `cowctl health` exits 1 otherwise.
void cmd_health(CommandContext& ctx, const Peer&, proto::Request&,
                std::shared_ptr<Responder>& resp) {
    resp->ok(views::health(ctx.sup));
}

void cmd_shutdown(CommandContext& ctx, const Peer& peer, proto::Request&,
                  std::shared_ptr<Responder>& resp) {
    json::object o;
    o["shutting_down"] = true;
    resp->ok(std::move(o));
    ctx.shutdown("shutdown requested by uid " + std::to_string(peer.uid) + " pid " +
                 std::to_string(peer.pid));
}

// logs: the last lines from the rings; with follow, new lines stream until the client leaves.
// A template pool's template prints under "POOL.template" (what it says while it loads): that
// name is a target of `logs` alone, and a pool's or every pool's logs include it.
std::optional<std::vector<Worker*>> log_targets_of(CommandContext& ctx, proto::Request& req,
                                                   Responder& resp) {
    const auto target = proto::get_string(req.args, proto::arg::target).value_or("");
    for (const auto& p : ctx.sup.pools())
        if (p->tpl.log && p->tpl.log->name == target) return std::vector<Worker*>{p->tpl.log.get()};
    auto targets = targets_of(ctx, req, resp);
    if (!targets) return targets;
    for (const auto& p : ctx.sup.pools())
        if (p->tpl.log && (target == proto::kAllTargets || target == p->name()))
            targets->push_back(p->tpl.log.get());
    return targets;
}

void cmd_logs(CommandContext& ctx, const Peer&, proto::Request& req,
              std::shared_ptr<Responder>& resp) {
    auto targets = log_targets_of(ctx, req, *resp);
    if (!targets) return;
    const auto n = proto::get_int(req.args, proto::arg::lines).value_or(100);
    if (n < 0 || n > 100000) {
        resp->error(ErrorCode::invalid_argument, "lines must be 0..100000");
        return;
    }
    const std::string which =
        proto::get_string(req.args, proto::arg::stream).value_or(std::string(proto::stream::both));
    int stream = -1;
    if (which == proto::stream::out)
        stream = 0;
    else if (which == proto::stream::err)
        stream = 1;
    else if (which != proto::stream::both) {
        resp->error(ErrorCode::invalid_argument, "stream is stdout, stderr or both");
        return;
    }
    std::int64_t since_ms = 0;
    if (auto s = proto::get_int(req.args, proto::arg::since_ms); s && *s > 0)
        since_ms =
            std::chrono::duration_cast<Millis>(std::chrono::system_clock::now().time_since_epoch())
                .count() -
            *s;
    auto lines = ctx.output.tail(*targets, static_cast<std::size_t>(n), stream, since_ms);
    if (proto::get_bool(req.args, proto::arg::follow).value_or(false)) {
        if (auto full = resp->start_stream(); !full.empty()) {
            resp->error(ErrorCode::busy, full);
            return;
        }
        for (auto& [w, l] : lines)
            resp->item(Output::line_json(*w, l));
        // By name, not by the workers resolved now: workers added later are followed too.
        // (A worker's name is never a pool's: resolve tries pool names first.)
        const std::string target = *proto::get_string(req.args, proto::arg::target);
        FollowTarget what;
        if (targets->size() == 1 && targets->front()->name == target) {
            what.pool = targets->front()->pool->name();
            what.worker = target;
        } else if (target != proto::kAllTargets) {
            what.pool = target;
        }
        ctx.output.follow(std::move(what), stream, resp);
        return;  // no final reply until the client or the target goes away
    }
    json::array arr;
    for (auto& [w, l] : lines)
        arr.push_back(Output::line_json(*w, l));
    resp->ok(json::object{{"lines", std::move(arr)}});
}

// events: what happened (the kept ring, --since); with follow, events stream as they happen
// until the client leaves.
void cmd_events(CommandContext& ctx, const Peer&, proto::Request& req,
                std::shared_ptr<Responder>& resp) {
    std::string pool = proto::get_string(req.args, proto::arg::pool).value_or("");
    if (pool == proto::kAllTargets) pool.clear();
    if (!pool.empty() && !ctx.sup.find_pool(pool)) {
        resp->error(ErrorCode::no_such_pool, "no pool named \"" + pool + "\"");
        return;
    }
    const bool follow = proto::get_bool(req.args, proto::arg::follow).value_or(false);
    const auto since = proto::get_int(req.args, proto::arg::since_ms);
    if (since && *since < 0) {
        resp->error(ErrorCode::invalid_argument, "since_ms must be 0 or more");
        return;
    }
    // Without --since: everything kept, or, when following, only what happens from now on.
    std::vector<const EventRecord*> past;
    if (since || !follow) {
        fsm::TimePoint from{};
        if (since) {
            const auto now = ctx.sup.now();
            const Millis back(*since);
            if (now.time_since_epoch() > back) from = now - back;
        }
        past = ctx.sup.events().since(from, pool);
    }
    if (follow) {
        if (auto full = resp->start_stream(); !full.empty()) {
            resp->error(ErrorCode::busy, full);
            return;
        }
        for (const auto* e : past)
            resp->item_raw(e->json);
        ctx.events.add(std::move(pool), resp);
        return;  // no final reply until the client goes away
    }
    std::string out = "{\"events\":[";
    for (std::size_t i = 0; i < past.size(); ++i) {
        if (i) out.push_back(',');
        out += past[i]->json;
    }
    out += "]}";
    resp->ok_raw(std::move(out));
}

// Replies once the writer thread has reopened the files: an error naming each file that
// could not be opened (it is retried like any failing file, and its lines are held or
// dropped by its pool's log_backpressure meanwhile).
void cmd_reopen(CommandContext& ctx, const Peer&, proto::Request&,
                std::shared_ptr<Responder>& resp) {
    spdlog::info("reopening log files (cowctl reopen)");
    ctx.log_writer.reopen([resp](const std::vector<std::string>& failed) {
        if (failed.empty()) {
            resp->ok(json::object{{"reopened", true}});
            return;
        }
        std::string msg = failed.size() == 1
                              ? "cannot reopen a log file: "
                              : "cannot reopen " + std::to_string(failed.size()) + " log files: ";
        for (std::size_t i = 0; i < failed.size(); ++i)
            msg += (i ? "; " : "") + failed[i];
        resp->error(ErrorCode::failed, msg);
    });
}

void cmd_reload(CommandContext& ctx, const Peer&, proto::Request& req,
                std::shared_ptr<Responder>& resp) {
    ctx.reload(proto::get_bool(req.args, proto::arg::dry_run).value_or(false), resp);
}

void cmd_upgrade(CommandContext& ctx, const Peer&, proto::Request& req,
                 std::shared_ptr<Responder>& resp) {
    ctx.upgrade(proto::get_string(req.args, proto::arg::binary).value_or(""), resp);
}

void cmd_version(CommandContext&, const Peer&, proto::Request&, std::shared_ptr<Responder>& resp) {
    json::object o;
    o["version"] = COWHERD_VERSION;
    o["protocol"] = proto::kVersion;
    resp->ok(std::move(o));
}

constexpr std::array<std::pair<std::string_view, Handler>, 18> kVerbs{{
    {proto::verb::status, cmd_status},
    {proto::verb::logs, cmd_logs},
    {proto::verb::reopen, cmd_reopen},
    {proto::verb::reload, cmd_reload},
    {proto::verb::scale, cmd_scale},
    {proto::verb::mem, cmd_mem},
    {proto::verb::tree, cmd_tree},
    {proto::verb::health, cmd_health},
    {proto::verb::start, cmd_start},
    {proto::verb::stop, cmd_stop},
    {proto::verb::restart, cmd_restart},
    {proto::verb::signal, cmd_signal},
    {proto::verb::shutdown, cmd_shutdown},
    {proto::verb::version, cmd_version},
    {proto::verb::history, cmd_history},
    {proto::verb::events, cmd_events},
    {proto::verb::top, cmd_top},
    {proto::verb::upgrade, cmd_upgrade},
}};

constexpr bool known_verb(std::string_view v) {
    return std::ranges::any_of(kVerbs, [v](const auto& entry) { return entry.first == v; });
}
// A verb removed from the table but left in kReadOnlyVerbs would still be offered to
// readonly_group members by the denial message.
static_assert(std::ranges::all_of(proto::kReadOnlyVerbs, known_verb));

}  // namespace

void dispatch_command(CommandContext& ctx, const Peer& peer, proto::Request req,
                      std::shared_ptr<Responder> resp) {
    for (const auto& [verb, handler] : kVerbs) {
        if (verb != req.cmd) continue;
        if (peer.readonly && !proto::read_only_verb(verb)) {
            spdlog::warn("control: denied {} to uid {} (pid {}): read-only access", verb, peer.uid,
                         peer.pid);
            std::string allowed;
            for (auto v : proto::kReadOnlyVerbs)
                allowed += (allowed.empty() ? "" : ", ") + std::string(v);
            resp->error(ErrorCode::denied,
                        "uid " + std::to_string(peer.uid) + " may only read (" + allowed + ")");
            return;
        }
        handler(ctx, peer, req, resp);
        return;
    }
    std::string known;
    for (const auto& [verb, h] : kVerbs)
        known += (known.empty() ? "" : ", ") + std::string(verb);
    resp->error(ErrorCode::unknown_verb,
                "unknown command \"" + req.cmd.substr(0, 64) + "\"; known: " + known);
}

}  // namespace cow
