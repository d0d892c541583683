#include "daemon/daemon.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include <boost/asio/post.hpp>
#include <fcntl.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include "config/plan.hpp"
#include "core/protocol_names.hpp"
#include "core/signal_names.hpp"
#include "daemon/control/metrics_text.hpp"
#include "daemon/control/views.hpp"
#include "daemon/memory/memory_view.hpp"
#include "daemon/os/handover.hpp"
#include "daemon/os/leftovers.hpp"
#include "daemon/os/reaper.hpp"
#include "daemon/upgrade.hpp"

namespace cow {

namespace {
// Workers spawned per loop turn at startup: about 30 ms of spawning on the test VM.
constexpr std::size_t kStartSlice = 64;
// Reaping in one turn of the loop stops after this long (each reap may restart its worker, a
// spawn of 0.3 ms or more), checked every kReapStep children: the rest waits for the next
// turn, after control requests and timers have had theirs.
constexpr Millis kReapBudget{2};
constexpr int kReapStep = 1;
constexpr Millis kStartBudget{2};
// How long the first workers wait for a predecessor's SIGKILLed leftovers to be gone.
constexpr std::chrono::seconds kLeftoverWait{5};
}  // namespace

Daemon::Daemon(std::shared_ptr<const config::Config> cfg, std::vector<std::string> args,
               std::optional<boost::json::object> inherited, int state_fd, bool rolled_back)
    : cfg_(std::move(cfg)),
      timer_(io_),
      shutdown_timer_(io_),
      sd_timer_(io_),
      args_(std::move(args)),
      self_path_(handover::self_exe_path()),
      inherited_(std::move(inherited)),
      state_fd_(state_fd),
      rolled_back_(rolled_back) {}

Daemon::~Daemon() {
    background_.reset();  // join the reader thread before the loop it posts to goes away
    if (devnull_ >= 0) ::close(devnull_);
}

// Decides, once, whether workers get cgroups, and says why.
bool Daemon::setup_kill_mode() {
    bool want_cgroup = false, need_cgroup = false;
    for (const auto& p : cfg_->pools) {
        want_cgroup |= p.kill_mode != config::KillMode::group;
        need_cgroup |= p.kill_mode == config::KillMode::cgroup;
    }
    if (!want_cgroup) {
        spdlog::info("kill mode: process group (every pool sets kill_mode: group)");
        return true;
    }
    auto probe = cgroup::probe(cfg_->daemon.socket);
    if (!probe.usable) {
        if (need_cgroup) {
            spdlog::critical("kill_mode: cgroup is configured but cgroups are unusable: {}",
                             probe.reason);
            return false;
        }
        spdlog::info("kill mode: process group plus a pidfd sweep of descendants ({})",
                     probe.reason);
        return true;
    }
    auto cgroups = std::make_unique<cgroup::Cgroups>(probe.mount, probe.base);
    // A crashed predecessor on this socket may have left workers running: they would run on
    // unsupervised, so they go. A previous image of this same daemon (an upgrade) left ours.
    if (!inherited_) leftover_cgroups_ = cgroups->kill_leftovers();
    for (const auto& path : leftover_cgroups_)
        spdlog::warn("killed leftover workers of a previous cowherd in {}", path);
    sys_.set_cgroups(std::move(cgroups));
    spdlog::info("kill mode: cgroup ({})", probe.reason);
    return true;
}

int Daemon::run() {
    started_at_ = inherited_ ? inherited_start() : sys_.now();
    ignore_sigpipe();
    const bool pid1 = getpid() == 1;
    if (!become_subreaper())
        spdlog::warn("PR_SET_CHILD_SUBREAPER failed: orphans of workers will go to init");

    devnull_ = ::open("/dev/null", O_RDWR | O_CLOEXEC);

    // Signals before the first spawn, so that no SIGCHLD can be missed.
    auto sig = Signals::open(io_, [this](int s) { on_signal(s); });
    if (auto* why = std::get_if<std::string>(&sig)) {
        spdlog::critical("{}", *why);
        return 1;
    }
    signals_ = std::get<std::unique_ptr<Signals>>(std::move(sig));

    // Ownership first: the socket's lock decides which daemon owns this instance, and one that
    // does not own it must not touch a process, cgroup, socket or file of the one that does.
    // Requests are only read once the loop runs, by which time everything they reach exists.
    auto dispatch = [this](const Peer& p, proto::Request req, std::shared_ptr<Responder> r) {
        dispatch_command(*commands_, p, std::move(req), std::move(r));
    };
    const SocketAccess access{cfg_->daemon.socket_group, cfg_->daemon.readonly_group};
    auto control = inherited_control();
    if (inherited_ && !control) {
        upgrade::rollback("the state names no control socket");
        return 1;
    }
    auto opened = control ? ControlServer::adopt(
                                io_, cfg_->daemon.socket, control->first, control->second, dispatch,
                                [this] { after_batch(); }, ControlLimits{}, access)
                          : ControlServer::open(
                                io_, cfg_->daemon.socket, cfg_->daemon.socket_mode, dispatch,
                                [this] { after_batch(); }, ControlLimits{}, access);
    if (auto* err = std::get_if<std::string>(&opened)) {
        spdlog::critical("{}", *err);
        // With log_file set, the operator who typed the command would otherwise see nothing.
        if (!cfg_->daemon.log_file.empty()) std::fprintf(stderr, "cowherd: %s\n", err->c_str());
        return 1;
    }
    control_ = std::move(std::get<std::unique_ptr<ControlServer>>(opened));

    if (!setup_kill_mode()) return 2;
    // Without cgroups, the predecessor's record of its workers is how we find them.
    workers_file_ = leftovers::state_path(cfg_->daemon.socket);
    if (inherited_) {
        // The record is ours, and rewritten once the slots are taken up.
    } else if (auto recorded = leftovers::read(workers_file_); !recorded.empty()) {
        leftover_procs_ = leftovers::kill(recorded);
        if (!leftover_procs_.empty())
            spdlog::warn("killed {} leftover processes of a previous cowherd (recorded in {})",
                         leftover_procs_.size(), workers_file_);
    }
    if (!inherited_) ::unlink(workers_file_.c_str());

    // Listening sockets are bound before any worker starts; a bind error is a config error.
    SupervisorSetup setup;
    for (const auto& pc : cfg_->pools) {
        if (pc.sockets.empty()) continue;
        if (auto kept = inherited_sockets(pc)) {
            setup.sockets[pc.name] = std::move(*kept);
            continue;
        }
        if (inherited_) {
            upgrade::rollback("the state lacks the sockets of pool " + pc.name);
            return 1;
        }
        auto bound = open_pool_sockets(pc);
        if (auto* err = std::get_if<std::string>(&bound)) {
            spdlog::critical("{}", *err);
            return 2;
        }
        setup.sockets[pc.name] = std::get<ListenSockets>(std::move(bound));
    }
    log_writer_ = std::make_unique<LogWriter>(io_);
    output_ = std::make_unique<Output>(io_, *log_writer_, cfg_->daemon);
    setup.output = output_.get();
    bool want_notify = false;
    for (const auto& pc : cfg_->pools)
        want_notify |= pc.ready == config::Ready::notify;
    auto on_notify = [this](pid_t sender, const NotifyMessage& msg) {
        sup_->on_notify(sender, msg);
        after_batch();
    };
    if (auto kept = inherited_notify()) {
        notify_ = NotifyServer::adopt(io_, kept->first, kept->second, on_notify);
        setup.notify_address = notify_->address();
    } else if (want_notify) {
        auto opened_notify = NotifyServer::open(io_, on_notify);
        if (auto* why = std::get_if<std::string>(&opened_notify)) {
            spdlog::critical("{}", *why);
            return 1;
        }
        notify_ = std::get<std::unique_ptr<NotifyServer>>(std::move(opened_notify));
        setup.notify_address = notify_->address();
    }
    sup_ = std::make_unique<Supervisor>(sys_, cfg_, std::move(setup));
    sup_->set_stdin(devnull_);
    hooks_ = std::make_unique<Hooks>(io_, *sup_, devnull_);
    sup_->events().on_event = [this](const EventRecord& e) {
        event_feed_.publish(e);
        hooks_->on_event(e);
    };
    sup_->on_essential_exit = [this](int code, const std::string& why) {
        exit_code_ = code;
        request_shutdown(why + "; exiting with " + std::to_string(code));
    };
    sup_->on_all_finished = [this](int code) {
        exit_code_ = code;
        request_shutdown("every worker has finished");
    };
    background_ = std::make_unique<Background>(io_);
    recycler_ = std::make_unique<Recycler>(io_, *sup_, *background_, sampler_);
    history_ = std::make_unique<HistorySampler>(io_, *sup_, *background_, sampler_);
    helpers_ = std::make_unique<Helpers>(io_, devnull_);
    helpers_->on_started = [this](pid_t pid) { sup_->helper_started(pid); };
    helpers_->on_reaped = [this](pid_t pid) { sup_->helper_reaped(pid); };
    prober_ = std::make_unique<Prober>(io_, *sup_, *helpers_, [this] { after_batch(); });
    sup_->on_transition = [this](const Worker& w, fsm::State, fsm::State to, const fsm::Actions&) {
        if (to == fsm::State::running && w.slot.state == fsm::State::running)
            recycler_->note_running(w);
    };

    commands_ = std::make_unique<CommandContext>(CommandContext{
        *sup_, *background_, sampler_, *history_, *output_, *log_writer_, event_feed_,
        [this](std::string why) { request_shutdown(why); },
        [this](bool dry_run, std::shared_ptr<Responder> r) { reload(dry_run, std::move(r)); },
        [this](std::string binary, std::shared_ptr<Responder> r) {
            upgrade(std::move(binary), std::move(r));
        },
        started_at_});

    spdlog::info("cowherd {} pid {}{} on {} with {} pools", COWHERD_VERSION, getpid(),
                 pid1 ? " (PID 1)" : "", control_->path(), cfg_->pools.size());
    sup_->set_start_slice(kStartSlice);
    recycler_->start();
    history_->configure(cfg_->daemon.memory_sample_every);
    prober_->start();
    if (!cfg_->daemon.metrics.empty()) {
        auto opened_metrics = MetricsServer::open(
            io_, cfg_->daemon.metrics,
            [this](std::function<void(std::string)> done) { scrape(std::move(done)); },
            [this](std::string_view pool) { return readyz(pool); });
        if (auto* why = std::get_if<std::string>(&opened_metrics)) {
            spdlog::critical("{}", *why);
            return 2;
        }
        metrics_ = std::get<std::unique_ptr<MetricsServer>>(std::move(opened_metrics));
        spdlog::info("metrics on http://{}/metrics", cfg_->daemon.metrics);
    }
    // For tests only: the one way to see what a blocked loop looks like from outside (/livez).
    if (const char* spec = std::getenv("COWHERD_TEST_BLOCK_LOOP")) block_loop_once(spec);
    if (auto wd = sd_.watchdog()) ping_systemd(*wd / 2);
    if (inherited_) {
        if (auto why = take_over(); !why.empty()) {
            upgrade::rollback(why);
            return 1;
        }
    } else {
        boot_when_clear(sys_.now() + kLeftoverWait);
    }
    after_batch();
    io_.run();
    return exit_code_;
}

// A predecessor's leftovers may still hold its listeners and files: the first workers start
// only once they are gone (SIGKILL is quick; only a process stuck in the kernel is not), so
// they start with restarts 0, never beside them.
void Daemon::boot_when_clear(fsm::TimePoint deadline) {
    if (finished_ || sup_->shutting_down()) return;
    auto* cg = sys_.cgroups();
    auto pending = [&] {
        if (leftovers::any_alive(leftover_procs_)) return true;
        for (const auto& path : leftover_cgroups_)
            if (cg && cg->populated(path).value_or(false)) return true;
        return false;
    };
    if (pending() && sys_.now() < deadline) {
        boot_timer_.expires_after(std::chrono::milliseconds(10));
        boot_timer_.async_wait([this, deadline](const boost::system::error_code& ec) {
            if (ec) return;
            boot_when_clear(deadline);
            after_batch();
        });
        return;
    }
    if (pending())
        spdlog::warn("leftovers of a previous cowherd are still there after {}; starting anyway",
                     format_duration(std::chrono::duration_cast<Millis>(kLeftoverWait)));
    for (const auto& path : leftover_cgroups_)
        if (cg) cg->remove(path);
    leftover_cgroups_.clear();
    leftover_procs_.clear();
    sup_->boot();
}

// Without cgroups, a successor can only find our workers through this record (see
// daemon/os/leftovers.hpp); it is rewritten, atomically, whenever the set of processes changes.
void Daemon::record_workers() {
    if (sup_->pid_epoch() == recorded_epoch_) return;
    recorded_epoch_ = sup_->pid_epoch();
    std::vector<leftovers::Record> records;
    std::unordered_map<pid_t, std::uint64_t> seen;
    for (auto& [pid, name] : sup_->uncontained()) {
        auto it = starttimes_.find(pid);
        const std::uint64_t st =
            it != starttimes_.end() ? it->second : leftovers::starttime_of(pid);
        if (st == 0) continue;  // gone already: the reaper will hear of it
        seen[pid] = st;
        records.push_back(leftovers::Record{pid, st, std::move(name)});
    }
    starttimes_ = std::move(seen);
    std::sort(records.begin(), records.end(),
              [](const auto& a, const auto& b) { return a.pid < b.pid; });
    if (records == recorded_) return;
    recorded_ = records;
    if (records.empty()) {
        ::unlink(workers_file_.c_str());
    } else if (!leftovers::write(workers_file_, records) && !record_failed_) {
        record_failed_ = true;
        spdlog::warn(
            "cannot write {}: a successor of this daemon, if it is killed, will not "
            "find its workers",
            workers_file_);
    }
}

void Daemon::on_signal(int signo) {
    // One SIGCHLD stands for any number of deaths, so reap until none is left. Every other
    // signal reaps too: a waitpid that finds nothing is cheap, and a wakeup is never wasted.
    // A batch is bounded: past it, the rest is reaped on a later turn of the loop, so that
    // control requests and timers get theirs even while workers exit as fast as they restart.
    auto on_exit = [this](pid_t pid, int status) {
        if (check_reaped(pid, status)) return;
        if (helpers_ && helpers_->reaped(pid, status)) return;
        if (hooks_ && hooks_->reaped(pid, status)) return;
        sup_->on_reaped(pid, status);
    };
    const auto until = sys_.now() + kReapBudget;
    int reaped = 0;
    bool more = false;
    for (;;) {
        const int n = reap_all(on_exit, kReapStep);
        reaped += n;
        if (n < kReapStep) break;
        if (sys_.now() >= until) {
            more = true;
            break;
        }
    }
    // More than a turn's worth is a storm of exits, which waitpid(-1) may serve from one
    // thread's children only: every known child gets its own look in turn, in pid order from
    // where the last look stopped, so that none waits behind the storm.
    if (more) {
        auto pids = sup_->known_children();
        std::sort(pids.begin(), pids.end());
        std::rotate(pids.begin(), std::upper_bound(pids.begin(), pids.end(), swept_to_),
                    pids.end());
        const auto sweep_until = sys_.now() + kReapBudget;
        const std::size_t looked =
            reap_each(pids, on_exit, [&] { return sys_.now() >= sweep_until; });
        swept_to_ = looked == pids.size() || looked == 0 ? 0 : pids[looked - 1];
    }
    if (reaped > 0) sup_->after_reap();
    if (more && !reap_posted_) {
        reap_posted_ = true;
        boost::asio::post(io_, [this] {
            reap_posted_ = false;
            if (!finished_) on_signal(SIGCHLD);  // which ends with after_batch()
        });
    }
    switch (signo) {
        case SIGCHLD:
            break;
        case SIGTERM:
        case SIGINT:
            if (sup_->shutting_down()) {
                // A second request means "now": skip the graceful wait.
                spdlog::warn("second SIG{} during shutdown: killing every worker now",
                             signal_name(signo));
                sup_->kill_everything("a second SIG" + std::string(signal_name(signo)) +
                                      " during shutdown");
            } else {
                request_shutdown(std::string("received SIG") + std::string(signal_name(signo)));
            }
            break;
        case SIGHUP:
            // HUPs coalesce: however many arrive before the loop gets to it, one reload.
            if (!hup_pending_) {
                hup_pending_ = true;
                boost::asio::post(io_, [this] {
                    hup_pending_ = false;
                    if (finished_ || sup_->shutting_down()) return;
                    spdlog::info("SIGHUP: reloading {}", cfg_->source_path);
                    reload(false, nullptr);
                    after_batch();
                });
            }
            break;
        case SIGUSR2:
            // For hosts without cowctl at hand: upgrade to the binary the daemon started from.
            if (!usr2_pending_) {
                usr2_pending_ = true;
                boost::asio::post(io_, [this] {
                    usr2_pending_ = false;
                    spdlog::info("SIGUSR2: upgrading in place to {}", self_path_);
                    upgrade("", nullptr);
                });
            }
            break;
        case SIGUSR1:
            if (!usr1_pending_) {
                usr1_pending_ = true;
                boost::asio::post(io_, [this] {
                    usr1_pending_ = false;
                    spdlog::info("SIGUSR1: reopening log files");
                    log_writer_->reopen();
                });
            }
            break;
        default:
            break;
    }
    after_batch();
}

void Daemon::request_shutdown(const std::string& reason) {
    if (sup_->shutting_down()) return;
    spdlog::info("{}; stopping all pools (shutdown_timeout {})", reason,
                 format_duration(cfg_->daemon.shutdown_timeout));
    sd_.send("STOPPING=1\nSTATUS=stopping: " + reason);
    sup_->begin_shutdown();
    shutdown_timer_.expires_after(cfg_->daemon.shutdown_timeout);
    shutdown_timer_.async_wait([this](const boost::system::error_code& ec) {
        if (ec || finished_) return;
        spdlog::warn("shutdown_timeout {} reached with {} processes left; sending KILL",
                     format_duration(cfg_->daemon.shutdown_timeout), sup_->live_processes());
        sup_->kill_everything();
        // SIGKILL cannot be ignored; only a process stuck in the kernel survives it. Don't
        // wait forever for one.
        shutdown_timer_.expires_after(std::chrono::seconds(5));
        shutdown_timer_.async_wait([this](const boost::system::error_code& ec2) {
            if (ec2 || finished_) return;
            spdlog::error("{} processes survived KILL; exiting anyway", sup_->live_processes());
            exit_code_ = 1;
            finish();
        });
    });
}

void Daemon::after_batch() {
    if (finished_) return;
    sup_->settle();
    record_workers();
    // Baselines wait for the end of a start burst: reading smaps_rollup of new workers took
    // a core's share that spawning the rest needed (a few hundred ms later is still "the first
    // sample after start").
    if (!sup_->starts_queued()) recycler_->flush();
    // Queued starts go a slice per loop turn, after whatever else is waiting (replies, reaps).
    if (sup_->starts_queued() && !starts_posted_) {
        starts_posted_ = true;
        boost::asio::post(io_, [this] {
            starts_posted_ = false;
            if (finished_) return;
            sup_->drain_starts(kStartSlice, kStartBudget);
            after_batch();
        });
    }
    if (sd_.enabled()) notify_systemd();
    if (sup_->shutting_down() && sup_->quiescent()) {
        finish();
        return;
    }
    rearm_timer();
}

void Daemon::rearm_timer() {
    auto next = sup_->next_deadline();
    if (next == armed_at_) return;
    armed_at_ = next;
    if (!next) {
        timer_.cancel();
        return;
    }
    timer_.expires_at(*next);
    timer_.async_wait([this](const boost::system::error_code& ec) {
        if (ec) return;
        armed_at_.reset();
        sup_->on_timers();
        after_batch();
    });
}

void Daemon::finish() {
    if (finished_) return;
    finished_ = true;
    spdlog::info("all workers stopped; exiting with status {}", exit_code_);
    output_->drain_all();
    if (auto* cg = sys_.cgroups()) cg->remove_all();
    ::unlink(workers_file_.c_str());
    timer_.cancel();
    shutdown_timer_.cancel();
    sd_timer_.cancel();
    metrics_.reset();
    recycler_->stop();
    history_->stop();
    if (signals_) signals_->cancel();
    if (!control_) {
        io_.stop();
        return;
    }
    // Let queued replies (the answer to `cowctl shutdown`) flush, but not for long.
    control_->close();
    auto grace = std::make_shared<boost::asio::steady_timer>(io_, std::chrono::seconds(1));
    grace->async_wait([this, grace](const boost::system::error_code&) { io_.stop(); });
    control_->when_drained([this, grace] {
        grace->cancel();
        io_.stop();
    });
}

// The plan as JSON, with what will be done to each pool.
static boost::json::object plan_json(const config::ReloadPlan& plan, const config::Config& next,
                                     bool dry_run) {
    namespace json = boost::json;
    using Kind = config::PoolChange::Kind;
    json::array pools;
    for (const auto& c : plan.pools) {
        json::object o{{"name", c.name}, {"change", config::to_string(c.kind)}};
        json::array keys;
        for (const auto& k : c.keys)
            keys.push_back(json::string(k));
        o["keys"] = std::move(keys);
        std::string action;
        switch (c.kind) {
            case Kind::added:
                action = "start";
                break;
            case Kind::removed:
                action = "stop and remove";
                break;
            case Kind::unchanged:
                action = "none";
                break;
            case Kind::resized:
                action = "scale " + std::to_string(c.old_workers) + " -> " +
                         std::to_string(c.new_workers);
                break;
            case Kind::updated:
                action = "update in place";
                if (c.old_workers != c.new_workers)
                    action += ", scale " + std::to_string(c.old_workers) + " -> " +
                              std::to_string(c.new_workers);
                break;
            case Kind::changed: {
                const auto* pc = next.find_pool(c.name);
                const bool roll = pc && config::restarts_rolling(*pc);
                action = roll ? "rolling restart" : "restart";
                if (c.old_workers != c.new_workers)
                    action += ", scale " + std::to_string(c.old_workers) + " -> " +
                              std::to_string(c.new_workers);
                break;
            }
        }
        o["action"] = action;
        pools.push_back(std::move(o));
    }
    json::array daemon_keys;
    for (const auto& k : plan.daemon_keys)
        daemon_keys.push_back(json::string(k));
    json::object out{{"dry_run", dry_run},
                     {"pools", std::move(pools)},
                     {"daemon_changed", std::move(daemon_keys)}};
    // The socket, its access rules, the daemon's own log and the metrics listener are set up
    // once; log_level, shutdown_timeout, log_dir, log_line_max and memory apply at once.
    std::string later;
    for (const auto& k : plan.daemon_keys)
        if (k == "socket" || k == "socket_mode" || k == "socket_group" || k == "readonly_group" ||
            k == "log_format" || k == "log_file" || k == "metrics")
            later += (later.empty() ? "daemon." : ", daemon.") + k;
    if (!later.empty()) out["note"] = later + ": takes effect at the next start";
    return out;
}

void Daemon::reload(bool dry_run, std::shared_ptr<Responder> resp) {
    auto reply_error = [&](proto::ErrorCode code, const std::string& msg) {
        spdlog::error("reload: {}", msg);
        if (!dry_run)
            sup_->events().emit(sys_.now(), proto::event::reload, {}, {}, "reload: " + msg,
                                {{"what", "refused"}, {"why", msg}});
        if (resp) resp->error(code, msg);
    };
    auto loaded = config::load_file(cfg_->source_path);
    if (!loaded.ok()) {
        std::string msg = "the new config is invalid; nothing changed:";
        for (const auto& e : loaded.errors)
            msg += "\n" + e.to_string();
        reply_error(proto::ErrorCode::failed, msg);
        return;
    }
    auto next = loaded.config;
    auto plan = config::plan_reload(*cfg_, *next);
    // `scale` lasts until the next reload: the plan compares with what runs, not with what the
    // file said, so a scaled pool goes back to the file's size and the plan says so.
    for (auto& c : plan.pools) {
        if (c.kind == config::PoolChange::Kind::added) continue;
        for (const auto& p : sup_->pools()) {
            if (p->name() != c.name || p->removed) continue;
            c.old_workers = static_cast<int>(std::count_if(
                p->workers.begin(), p->workers.end(), [](const auto& w) { return !w->retiring; }));
            if (c.kind == config::PoolChange::Kind::unchanged && c.old_workers != c.new_workers) {
                c.kind = config::PoolChange::Kind::resized;
                c.keys = {"workers"};
            }
        }
    }
    auto pj = plan_json(plan, *next, dry_run);
    if (dry_run) {
        if (resp) resp->ok(std::move(pj));
        return;
    }
    if (auto err = prepare_log_dir(*next); !err.empty()) {
        reply_error(proto::ErrorCode::failed, err + "; nothing changed");
        return;
    }
    // Everything that can fail happens before anything changes: binding new sockets.
    std::map<std::string, ListenSockets> sockets;
    for (const auto& pc : next->pools) {
        if (pc.sockets.empty()) continue;
        ListenSockets keep;
        for (const auto& p : sup_->pools())
            keep.insert(keep.end(), p->sockets.begin(), p->sockets.end());
        auto bound = open_pool_sockets(pc, keep);
        if (auto* err = std::get_if<std::string>(&bound)) {
            reply_error(proto::ErrorCode::failed, *err + "; nothing changed");
            return;
        }
        sockets[pc.name] = std::get<ListenSockets>(std::move(bound));
    }
    bool want_notify = false;
    for (const auto& pc : next->pools)
        want_notify |= pc.ready == config::Ready::notify;
    if (want_notify && !notify_) {
        auto opened_notify =
            NotifyServer::open(io_, [this](pid_t sender, const NotifyMessage& msg) {
                sup_->on_notify(sender, msg);
                after_batch();
            });
        if (auto* why = std::get_if<std::string>(&opened_notify)) {
            reply_error(proto::ErrorCode::failed, *why + "; nothing changed");
            return;
        }
        notify_ = std::get<std::unique_ptr<NotifyServer>>(std::move(opened_notify));
        sup_->set_notify_address(notify_->address());
    }
    spdlog::set_level(spdlog::level::from_str(next->daemon.log_level));
    output_->set_daemon_config(next->daemon);
    history_->configure(next->daemon.memory_sample_every);
    {
        std::string summary;
        for (const auto& c : plan.pools)
            summary += (summary.empty() ? "" : ", ") + c.name + " " +
                       std::string(config::to_string(c.kind));
        spdlog::info("reload: {}", summary.empty() ? "no pools" : summary);
        sup_->events().emit(sys_.now(), proto::event::reload, {}, {},
                            "reload: " + (summary.empty() ? "no pools" : summary),
                            {{"what", "applying"}, {"plan", pj}});
    }
    // The plan goes out before anything changes, so that the operator reads what is about to
    // happen while rolls take their time.
    if (resp) resp->item(pj);
    cfg_ = next;
    ++reloads_in_flight_;
    sd_.send("RELOADING=1\nSTATUS=reloading");
    struct Parts {
        int pending = 0;
        std::vector<std::string> failures;
    };
    auto parts = std::make_shared<Parts>();
    auto finish_reload = [this, resp, parts, pj]() mutable {
        if (--reloads_in_flight_ == 0) {
            sd_.send("READY=1");
            sd_status_.clear();
        }
        if (!parts->failures.empty()) {
            std::string all;
            for (const auto& f : parts->failures)
                all += (all.empty() ? "" : "; ") + f;
            if (resp) resp->error(proto::ErrorCode::failed, "reload applied, but " + all);
            spdlog::warn("reload: {}", all);
            sup_->events().emit(sys_.now(), proto::event::reload, {}, {},
                                "reload applied, but " + all, {{"what", "done"}, {"why", all}});
        } else {
            sup_->events().emit(sys_.now(), proto::event::reload, {}, {}, "reload done",
                                {{"what", "done"}});
            if (resp) resp->ok(std::move(pj));
        }
    };
    Supervisor::RollCallbacks cb{[resp](const boost::json::object& p) {
                                     if (resp) resp->item(p);
                                 },
                                 [parts, finish_reload](bool ok, const std::string& why) mutable {
                                     if (!ok) parts->failures.push_back(why);
                                     if (--parts->pending == 0) finish_reload();
                                 }};
    // Set before apply: a roll can finish synchronously inside it.
    parts->pending = 1 << 20;
    const int rolls = sup_->apply_reload(next, plan, std::move(sockets), cb);
    recycler_->reconfigure();  // pools added, removed, reordered; memory sections changed
    prober_->start();          // probes added or removed
    parts->pending -= (1 << 20) - rolls;
    if (parts->pending == 0) finish_reload();
}

// COWHERD_TEST_BLOCK_LOOP=AFTER_MS:FOR_MS: AFTER_MS after startup the loop stops for FOR_MS,
// as a handler stuck in a system call would stop it. Never set outside tests.
void Daemon::block_loop_once(const std::string& spec) {
    unsigned after = 0, block = 0;
    if (std::sscanf(spec.c_str(), "%u:%u", &after, &block) != 2) return;
    spdlog::warn("test hook: the loop will be blocked for {} ms in {} ms", block, after);
    test_block_timer_.expires_after(Millis(after));
    test_block_timer_.async_wait([block](const boost::system::error_code& ec) {
        if (!ec) ::poll(nullptr, 0, static_cast<int>(block));
    });
}

// GET /readyz: what `cowctl health` says, for kubelet.
std::pair<int, std::string> Daemon::readyz(std::string_view pool) {
    if (!pool.empty() && !sup_->find_pool(pool))
        return {404, "no pool named \"" + std::string(pool) + "\"\n"};
    auto h = views::health(*sup_, pool);
    if (h["healthy"].as_bool()) return {200, "ok\n"};
    std::string body;
    for (const auto& p : h["problems"].as_array())
        body += std::string(p.as_string()) + "\n";
    return {503, body};
}

// Under systemd (Type=notify): READY=1 once every autostart pool has settled (its workers
// running, or given up), and a one-line STATUS= whenever the counts change.
void Daemon::notify_systemd() {
    std::size_t running = 0, total = 0, failed = 0;
    bool settled = true;
    for (const auto& p : sup_->pools()) {
        for (const auto& w : p->workers) {
            ++total;
            const auto s = w->slot.state;
            running += s == fsm::State::running;
            failed += s == fsm::State::fatal;
            if (p->cfg->autostart && s != fsm::State::running && s != fsm::State::fatal &&
                s != fsm::State::exited)
                settled = false;
        }
    }
    std::string status = std::to_string(running) + "/" + std::to_string(total) +
                         " workers running in " + std::to_string(sup_->pools().size()) + " pools";
    if (failed) status += ", " + std::to_string(failed) + " fatal";
    if (!sd_ready_ && settled && !sup_->shutting_down()) {
        sd_ready_ = true;
        sd_.send("READY=1\nSTATUS=" + status);
        sd_status_ = status;
        return;
    }
    if (status != sd_status_ && sd_ready_ && !sup_->shutting_down()) {
        sd_status_ = status;
        sd_.send("STATUS=" + status);
    }
}

void Daemon::ping_systemd(std::chrono::microseconds every) {
    sd_timer_.expires_after(every);
    sd_timer_.async_wait([this, every](const boost::system::error_code& ec) {
        if (ec || finished_) return;
        sd_.send("WATCHDOG=1");
        ping_systemd(every);
    });
}

// One scrape: memory is sampled off the loop, the rest read here when the sample is back.
void Daemon::scrape(std::function<void(std::string)> done) {
    std::vector<Worker*> all;
    for (const auto& p : sup_->pools())
        for (const auto& w : p->workers)
            if (w->alive()) all.push_back(w.get());
    auto q = mem::make_query(*sup_, all);
    background_->run([this, q] { return sampler_.sample(q); },
                     [this, done = std::move(done)](mem::Sample s) {
                         DaemonFigures d = read_self_figures();
                         d.loop_lag_seconds = metrics_ ? metrics_->loop_lag_seconds() : 0;
                         d.uptime_seconds =
                             std::chrono::duration<double>(sys_.now() - started_at_).count();
                         done(render_metrics(*sup_, output_->stats(), &s, d));
                     });
}

}  // namespace cow
