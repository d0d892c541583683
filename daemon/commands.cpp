#include "daemon/commands.hpp"

#include <array>
#include <string_view>

#include <spdlog/spdlog.h>
#include <unistd.h>

#include "core/signal_names.hpp"
#include "daemon/memory_view.hpp"
#include "daemon/tree_view.hpp"
#include "daemon/views.hpp"

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
    auto target = proto::get_string(req.args, "target");
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

// start, stop and restart answer once the targets have settled, unless "wait": false.
void lifecycle(CommandContext& ctx, proto::Request& req, std::shared_ptr<Responder>& resp,
               fsm::EventType ev) {
    auto targets = targets_of(ctx, req, *resp);
    if (!targets) return;
    if (ctx.sup.shutting_down() && ev != fsm::EventType::stop) {
        resp->error(ErrorCode::shutting_down, "the daemon is shutting down");
        return;
    }
    struct Target {
        std::uint64_t id;
        std::uint64_t generation;
    };
    std::vector<Target> ts;
    std::vector<std::uint64_t> ids;
    Millis longest{0};
    for (Worker* w : *targets) {
        ts.push_back({w->id, w->generation});
        ids.push_back(w->id);
        const auto& pol = w->pool->policy;
        longest =
            std::max(longest, ev == fsm::EventType::stop ? pol.stop_timeout
                                                         : pol.start_timeout + pol.stop_timeout);
    }
    ctx.sup.command(*targets, ev);

    if (!proto::get_bool(req.args, "wait").value_or(true)) {
        json::object o;
        o["workers"] = summary_of(ctx, ids);
        resp->ok(std::move(o));
        return;
    }
    Millis timeout = longest + Millis(5000);
    if (auto t = proto::get_int(req.args, "timeout_ms"); t && *t > 0) timeout = Millis(*t);

    Supervisor& sup = ctx.sup;
    auto failure = std::make_shared<std::string>();
    auto done = [&sup, ts, ev, failure]() {
        for (const auto& t : ts) {
            Worker* w = sup.find_worker(t.id);
            if (!w) continue;  // removed meanwhile: nothing left to wait for
            const auto st = w->slot.state;
            if (ev == fsm::EventType::stop) {
                if (w->alive() || st == fsm::State::stopping) return false;
                continue;
            }
            const bool fresh = ev == fsm::EventType::start || w->generation > t.generation;
            if (st == fsm::State::running && fresh) continue;
            if (is_failed(st) && (ev == fsm::EventType::start || w->generation > t.generation ||
                                  st != fsm::State::stopped)) {
                *failure = why_failed(*w);
                return true;
            }
            return false;
        }
        return true;
    };
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
    if (auto t = proto::get_string(req.args, "target"); t && *t != "all") {
        only = targets_of(ctx, req, *resp);
        if (!only) return;
    }
    auto o = views::status(ctx.sup, only ? &*only : nullptr);
    o["daemon"] = json::object{
        {"pid", getpid()},
        {"version", COWHERD_VERSION},
        {"uptime_ms", std::chrono::duration_cast<Millis>(ctx.sup.now() - ctx.started_at).count()},
        {"shutting_down", ctx.sup.shutting_down()},
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
void cmd_restart(CommandContext& ctx, const Peer&, proto::Request& req,
                 std::shared_ptr<Responder>& resp) {
    lifecycle(ctx, req, resp, fsm::EventType::restart);
}

void cmd_signal(CommandContext& ctx, const Peer&, proto::Request& req,
                std::shared_ptr<Responder>& resp) {
    auto name = proto::get_string(req.args, "signal");
    std::optional<int> sig;
    if (name) sig = parse_signal(*name);
    if (!sig) {
        resp->error(ErrorCode::invalid_argument,
                    "\"signal\" must be a signal name or number such as HUP, USR1 or 15");
        return;
    }
    auto targets = targets_of(ctx, req, *resp);
    if (!targets) return;
    const bool tree = proto::get_bool(req.args, "tree").value_or(false);
    int n = ctx.sup.signal(*targets, *sig, tree);
    spdlog::info("signal {} sent to {} worker(s) ({})", signal_name(*sig), n,
                 proto::get_string(req.args, "target").value_or("?"));
    json::object o;
    o["signal"] = signal_name(*sig);
    o["signalled"] = n;
    resp->ok(std::move(o));
}

void cmd_tree(CommandContext& ctx, const Peer&, proto::Request& req,
              std::shared_ptr<Responder>& resp) {
    std::string pool;
    if (auto t = proto::get_string(req.args, "target"); t && *t != "all") {
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
    const bool cmdlines = proto::get_bool(req.args, "args").value_or(false);
    ctx.background.run(
        [q = make_tree_query(ctx.sup, pool, cmdlines)] { return json::serialize(read_trees(q)); },
        [resp](std::string out) { resp->ok_raw(std::move(out)); });
}

// Memory per worker and per pool, read off the loop; see daemon/memory_sampler.
void cmd_mem(CommandContext& ctx, const Peer&, proto::Request& req,
             std::shared_ptr<Responder>& resp) {
    std::vector<Worker*> workers;
    auto target = proto::get_string(req.args, "target").value_or("all");
    auto maps = proto::get_string(req.args, "maps");
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
    std::string sort = proto::get_string(req.args, "sort").value_or("");
    if (!sort.empty() && sort != "pss" && sort != "uss" && sort != "rss") {
        resp->error(ErrorCode::invalid_argument, "--sort takes pss, uss or rss");
        return;
    }
    // A pool named with one worker (web.2) still reports that whole pool's totals.
    std::vector<Worker*> all_of_pools;
    for (const auto& p : ctx.sup.pools())
        for (Worker* w : workers)
            if (w->pool == p.get()) {
                for (auto& x : p->workers)
                    all_of_pools.push_back(x.get());
                break;
            }
    ctx.background.run(
        [sampler, q = mem::make_query(ctx.sup, all_of_pools), sort] {
            return json::serialize(mem::Sampler::to_json(q, sampler->sample(q), sort));
        },
        [resp](std::string out) { resp->ok_raw(std::move(out)); });
}

// Healthy when every essential pool (or, with none marked essential, every autostart pool)
// has all its workers running. For container probes: `cowctl health` exits 1 otherwise.
void cmd_health(CommandContext& ctx, const Peer&, proto::Request&,
                std::shared_ptr<Responder>& resp) {
    bool any_essential = false;
    for (const auto& p : ctx.sup.pools())
        any_essential |= p->cfg->essential;
    json::array problems, checked;
    if (ctx.sup.shutting_down()) problems.push_back(json::string("the daemon is shutting down"));
    for (const auto& p : ctx.sup.pools()) {
        if (any_essential ? !p->cfg->essential : !p->cfg->autostart) continue;
        checked.push_back(json::string(p->name()));
        for (const auto& w : p->workers) {
            if (w->slot.state == fsm::State::running) continue;
            std::string why = w->name + " is " + std::string(fsm::to_string(w->slot.state));
            if (!w->last_error.empty())
                why += ": " + w->last_error;
            else if (!w->last_reason.empty())
                why += ": " + w->last_reason;
            problems.push_back(json::string(why));
        }
    }
    json::object o;
    o["healthy"] = problems.empty();
    o["checked"] = std::move(checked);
    o["problems"] = std::move(problems);
    resp->ok(std::move(o));
}

void cmd_shutdown(CommandContext& ctx, const Peer& peer, proto::Request&,
                  std::shared_ptr<Responder>& resp) {
    json::object o;
    o["shutting_down"] = true;
    resp->ok(std::move(o));
    ctx.shutdown("shutdown requested by uid " + std::to_string(peer.uid) + " pid " +
                 std::to_string(peer.pid));
}

void cmd_version(CommandContext&, const Peer&, proto::Request&, std::shared_ptr<Responder>& resp) {
    json::object o;
    o["version"] = COWHERD_VERSION;
    o["protocol"] = proto::kVersion;
    resp->ok(std::move(o));
}

constexpr std::array<std::pair<std::string_view, Handler>, 10> kVerbs{{
    {"status", cmd_status},
    {"mem", cmd_mem},
    {"tree", cmd_tree},
    {"health", cmd_health},
    {"start", cmd_start},
    {"stop", cmd_stop},
    {"restart", cmd_restart},
    {"signal", cmd_signal},
    {"shutdown", cmd_shutdown},
    {"version", cmd_version},
}};

}  // namespace

void dispatch_command(CommandContext& ctx, const Peer& peer, proto::Request req,
                      std::shared_ptr<Responder> resp) {
    for (const auto& [verb, handler] : kVerbs) {
        if (verb == req.cmd) {
            handler(ctx, peer, req, resp);
            return;
        }
    }
    std::string known;
    for (const auto& [verb, h] : kVerbs)
        known += (known.empty() ? "" : ", ") + std::string(verb);
    resp->error(ErrorCode::unknown_verb,
                "unknown command \"" + req.cmd.substr(0, 64) + "\"; known: " + known);
}

}  // namespace cow
