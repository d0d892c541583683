// The daemon's side of an in-place upgrade (cowctl upgrade, SIGUSR2): the checks before, the
// state and the exec, and, in the new image, taking it all up. daemon/upgrade.hpp has the
// document and the way back; ARCHITECTURE.md the sequence.
#include <algorithm>
#include <cstdlib>

#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/daemon.hpp"
#include "daemon/os/handover.hpp"
#include "daemon/upgrade.hpp"

extern char** environ;

namespace cow {

namespace json = boost::json;
using upgrade::section;

namespace {

// How long the new binary may take to check the state and config before it is refused.
constexpr int kPreflightMs = 10000;
// How long the next image may take to be ready before it gives back (daemon/upgrade.hpp).
constexpr unsigned kReadySeconds = 10;

int fd_of(const json::object& o, std::string_view key) {
    const auto* v = o.if_contains(key);
    return v && v->is_int64() ? static_cast<int>(v->as_int64()) : -1;
}

}  // namespace

std::string Daemon::upgrade_blocker() const {
    if (finished_) return "the daemon is exiting";
    if (reloads_in_flight_ > 0) return "a reload is still rolling";
    if (!leftover_cgroups_.empty() || !leftover_procs_.empty())
        return "the daemon is still starting";
    return sup_->handover_blocker();
}

json::object Daemon::save_state(int exe_fd) const {
    json::object d{{"started_at", fsm::to_ns(started_at_)},
                   {"upgrades", commands_->upgrades},
                   {"upgrade_failures", commands_->upgrade_failures},
                   {"upgrade_error", commands_->upgrade_error},
                   {"exe_fd", exe_fd},
                   {"binary", self_path_},
                   {"config_path", cfg_->source_path},
                   {"config_text", cfg_->source_text}};
    json::array argv;
    for (const auto& a : args_)
        argv.emplace_back(a);
    d["argv"] = std::move(argv);
    auto [lock_fd, listen_fd] = control_->handover_fds();
    d["control"] = json::object{{"lock_fd", lock_fd}, {"listen_fd", listen_fd}};
    if (notify_) d["notify"] = json::object{{"fd", notify_->fd()}, {"address", notify_->address()}};
    if (sd_.enabled()) {
        json::object sd{{"address", sd_.address()}, {"ready", sd_ready_}};
        if (auto wd = sd_.watchdog()) sd["watchdog_usec"] = wd->count();
        d["sd"] = std::move(sd);
    }
    json::object state = upgrade::header();
    state["daemon"] = std::move(d);
    state["supervisor"] = sup_->save_state();
    state["output"] = output_->save_state();
    // Tests only: a state as a later, incompatible version would write it.
    if (const char* major = std::getenv("COWHERD_TEST_STATE_MAJOR"))
        state["major"] = std::atoi(major);
    return state;
}

std::vector<int> Daemon::handover_fds() {
    auto [lock_fd, listen_fd] = control_->handover_fds();
    std::vector<int> fds{lock_fd, listen_fd};
    if (notify_) fds.push_back(notify_->fd());
    for (int fd : sup_->handover_fds())
        fds.push_back(fd);
    for (int fd : output_->handover_fds())
        fds.push_back(fd);
    return fds;
}

// The new binary reads a copy of the state and the config as it would for real, and says
// whether it can take them up: a binary that cannot is refused before anything is handed over.
// The loop goes on meanwhile (status, reaping): its answer and its exit come back as events.
void Daemon::preflight(const std::string& binary, const std::string& text,
                       std::function<void(std::string why)> done) {
    auto copy = handover::to_memfd("cowherd-state-check", text);
    if (copy.index() == 1) return done(std::get<1>(copy));
    const int state = std::get<0>(copy);
    int out[2];
    if (::pipe2(out, O_CLOEXEC | O_NONBLOCK) < 0) {
        ::close(state);
        return done(std::string("pipe: ") + std::strerror(errno));
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, devnull_, 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, out[1], 2);
    posix_spawn_file_actions_adddup2(&fa, state, 3);
    // The daemon blocks its signals (signals.cpp); the check runs with none blocked.
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
    std::vector<std::string> args{binary, std::string(upgrade::kCheckOption), "3"};
    std::vector<char*> argv;
    for (auto& a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = 0;
    int rc = posix_spawn(&pid, binary.c_str(), &fa, &attr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    ::close(out[1]);
    ::close(state);
    if (rc != 0) {
        ::close(out[0]);
        return done("cannot execute " + binary + ": " + std::strerror(rc));
    }
    sup_->helper_started(pid);  // a child of the daemon's own, never an orphan
    check_ = std::make_unique<Check>(io_);
    check_->pid = pid;
    check_->binary = binary;
    check_->done = std::move(done);
    check_->out.assign(out[0]);
    read_check();
    check_->deadline.expires_after(std::chrono::milliseconds(kPreflightMs));
    check_->deadline.async_wait([this](const boost::system::error_code& ec) {
        if (ec || !check_ || check_->status) return;
        check_->timed_out = true;
        ::kill(check_->pid, SIGKILL);
    });
}

void Daemon::read_check() {
    check_->out.async_read_some(boost::asio::buffer(check_->buf),
                                [this](const boost::system::error_code& ec, std::size_t n) {
                                    if (!check_) return;
                                    if (n > 0 && check_->said.size() < 16384)
                                        check_->said.append(check_->buf.data(), n);
                                    if (ec) {
                                        check_->eof = true;
                                        return finish_check();
                                    }
                                    read_check();
                                });
}

// The reaper found the check's exit (on_signal): taken here, never by the supervisor.
bool Daemon::check_reaped(pid_t pid, int status) {
    if (!check_ || check_->pid != pid) return false;
    sup_->helper_reaped(pid);
    check_->status = status;
    finish_check();
    return true;
}

void Daemon::finish_check() {
    if (!check_->eof || !check_->status) return;
    const std::unique_ptr<Check> c = std::move(check_);
    const int status = *c->status;
    std::string said = std::move(c->said);
    while (!said.empty() && (said.back() == '\n' || said.back() == ' '))
        said.pop_back();
    const std::string& binary = c->binary;
    if (c->timed_out) return c->done(binary + " did not answer its check within 10s");
    // Only a cowherd says this: a binary that exits 0 for anything is no daemon to hand over to.
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        if (said.starts_with("cowherd ") && said.find(" can take over") != std::string::npos)
            return c->done({});
        return c->done(binary + " does not speak cowherd's upgrade check" +
                       (said.empty() ? std::string() : " (it said: " + said.substr(0, 200) + ")"));
    }
    std::string how = WIFEXITED(status)
                          ? "exited " + std::to_string(WEXITSTATUS(status))
                          : "was killed by signal " + std::to_string(WTERMSIG(status));
    c->done(binary + " " + how + (said.empty() ? std::string() : ": " + said));
}

void Daemon::upgrade(std::string binary, std::shared_ptr<Responder> resp) {
    auto refuse = [](const std::shared_ptr<Responder>& r, proto::ErrorCode code,
                     const std::string& why) {
        spdlog::warn("upgrade refused: {}", why);
        if (r) r->error(code, why);
    };
    if (upgrading_)
        return refuse(resp, proto::ErrorCode::busy,
                      "cannot upgrade now: an upgrade is already under way; retry once it is over");
    if (auto why = upgrade_blocker(); !why.empty())
        return refuse(resp, proto::ErrorCode::busy,
                      "cannot upgrade now: " + why + "; retry once it is over");
    const std::string path = binary.empty() ? self_path_ : binary;
    if (path.empty())
        return refuse(resp, proto::ErrorCode::failed, "the daemon's own binary is unknown");
    if (auto why = handover::check_executable(path); !why.empty())
        return refuse(resp, proto::ErrorCode::invalid_argument, why);
    upgrading_ = true;  // one at a time, from here on
    preflight(path, json::serialize(save_state(-1)), [this, path, resp, refuse](std::string why) {
        if (!why.empty()) {
            upgrading_ = false;
            return refuse(resp, proto::ErrorCode::failed,
                          "the new binary refused the upgrade: " + why);
        }
        spdlog::info("upgrade: executing {} in place of cowherd {} (pid {})", path, COWHERD_VERSION,
                     getpid());
        if (resp) {
            resp->ok(json::object{{"binary", path}, {"from", COWHERD_VERSION}, {"pid", getpid()}});
            // The reply goes out first; a client that went away does not hold the upgrade up.
            resp->when_drained([this, path] { exec_upgrade(path); });
            upgrade_timer_.expires_after(std::chrono::milliseconds(500));
            upgrade_timer_.async_wait([this, path](const boost::system::error_code& ec) {
                if (!ec) exec_upgrade(path);
            });
        } else {
            boost::asio::post(io_, [this, path] { exec_upgrade(path); });
        }
        after_batch();
    });
}

void Daemon::exec_upgrade(const std::string& path) {
    if (!upgrading_ || exec_started_) return;
    exec_started_ = true;
    upgrade_timer_.cancel();
    auto give_up = [&](const std::string& why) {
        spdlog::error("upgrade to {} abandoned: {}; cowherd {} goes on", path, why,
                      COWHERD_VERSION);
        ++commands_->upgrade_failures;
        commands_->upgrade_error = why;
        upgrading_ = false;
        exec_started_ = false;
        after_batch();
    };
    // Between the reply and now the loop ran: what was true at the check may not be.
    if (auto why = upgrade_blocker(); !why.empty()) return give_up(why);
    // What workers wrote and the daemon read is written out; what it has not read stays in the
    // pipes, which stay open.
    log_writer_->flush();
    if (sd_.enabled()) sd_.send("RELOADING=1\nSTATUS=upgrading to " + path);
    const int exe = handover::open_self_exe();
    if (exe < 0) return give_up(std::string("cannot open our own binary: ") + std::strerror(errno));
    auto memfd = handover::to_memfd("cowherd-state", "");
    if (memfd.index() == 1) {
        ::close(exe);
        return give_up(std::get<1>(memfd));
    }
    const int state = std::get<0>(memfd);
    auto fds = handover_fds();
    fds.push_back(exe);
    fds.push_back(state);
    std::sort(fds.begin(), fds.end());
    auto doc = save_state(exe);
    json::array listed;
    for (int fd : fds)
        listed.push_back(fd);
    doc["daemon"].as_object()["fds"] = std::move(listed);
    const std::string text = json::serialize(doc);
    if (::pwrite(state, text.data(), text.size(), 0) != static_cast<ssize_t>(text.size())) {
        ::close(state);
        ::close(exe);
        return give_up(std::string("cannot write the state: ") + std::strerror(errno));
    }
    // Tests only: the named worker dies in the exec window, after the state says it runs.
    if (const char* victim = std::getenv("COWHERD_TEST_UPGRADE_KILL"))
        if (auto found = sup_->resolve(victim); found.index() == 0)
            for (Worker* w : std::get<0>(found))
                if (w->pid > 0) {
                    ::kill(w->pid, SIGKILL);
                    siginfo_t info{};
                    ::waitid(P_PID, static_cast<id_t>(w->pid), &info, WEXITED | WNOWAIT);
                }
    std::vector<std::string> argv = args_;
    argv[0] = path;
    argv.emplace_back(upgrade::kStateOption);
    argv.push_back(std::to_string(state));
    spdlog::default_logger()->flush();
    std::string why = "some fds could not be kept open";
    handover::seal_others(fds);
    if (handover::inherit(fds, true)) why = handover::exec(path, -1, argv);
    handover::inherit(fds, false);
    ::close(state);
    ::close(exe);
    if (sd_.enabled()) sd_.send("READY=1\nSTATUS=upgrade failed");
    give_up(why);
}

// In the new image, once every room exists: the slots, captures and fds of the previous one.
std::string Daemon::take_over() {
    const json::object& st = *inherited_;
    if (const char* crash = std::getenv("COWHERD_TEST_UPGRADE_CRASH")) {
        // Tests only: a one-shot crash while the state is taken up (the file is the shot).
        if (::unlink(crash) == 0) ::raise(SIGSEGV);
    }
    if (auto why = sup_->restore_state(section(st, "supervisor")); !why.empty()) return why;
    output_->restore_state(section(st, "output"),
                           [this](std::uint64_t id) { return sup_->find_worker(id); });
    // Ours now: closed on the next exec unless that exec hands them over again.
    handover::inherit(handover_fds(), false);
    ::close(state_fd_);
    state_fd_ = -1;
    const auto& d = section(st, "daemon");
    auto count = [&](std::string_view key) -> std::uint64_t {
        const auto* n = d.if_contains(key);
        return n && (n->is_int64() || n->is_uint64()) ? n->to_number<std::uint64_t>() : 0;
    };
    commands_->upgrades = count("upgrades") + (rolled_back_ ? 0 : 1);
    commands_->upgrade_failures = count("upgrade_failures") + (rolled_back_ ? 1 : 0);
    if (const auto* e = d.if_contains("upgrade_error"); e && e->is_string())
        commands_->upgrade_error = std::string(e->as_string());
    if (const char* why = std::getenv(upgrade::kFailedEnv)) {
        commands_->upgrade_error = why;
        ::unsetenv(upgrade::kFailedEnv);
    }
    const auto* ready = section(d, "sd").if_contains("ready");
    sd_ready_ = ready && ready->is_bool() && ready->as_bool();
    upgrade::disarm_rollback();
    const auto* from = st.if_contains("version");
    spdlog::info("upgrade: cowherd {} (pid {}) took over from cowherd {}{}", COWHERD_VERSION,
                 getpid(), from && from->is_string() ? std::string(from->as_string()) : "?",
                 rolled_back_ ? " after the new image gave back" : "");
    if (sd_.enabled()) sd_.send("READY=1\nSTATUS=upgraded to cowherd " COWHERD_VERSION);
    // The document held the rings' lines a second time: gone now, and its pages given back.
    inherited_.reset();
    ::malloc_trim(0);
    // Children that exited while no image listened are zombies waiting: reap them now, each
    // attributed to its slot as usual.
    on_signal(SIGCHLD);
    return {};
}

std::optional<std::pair<int, int>> Daemon::inherited_control() const {
    if (!inherited_) return std::nullopt;
    const auto& c = section(section(*inherited_, "daemon"), "control");
    int lock = fd_of(c, "lock_fd"), listen = fd_of(c, "listen_fd");
    if (lock < 0 || listen < 0) return std::nullopt;
    return std::pair{lock, listen};
}

std::optional<std::pair<int, std::string>> Daemon::inherited_notify() const {
    if (!inherited_) return std::nullopt;
    const auto& n = section(section(*inherited_, "daemon"), "notify");
    int fd = fd_of(n, "fd");
    const auto* a = n.if_contains("address");
    if (fd < 0 || !a || !a->is_string()) return std::nullopt;
    return std::pair{fd, std::string(a->as_string())};
}

// The pool's sockets as the previous image bound them, in config order.
std::optional<ListenSockets> Daemon::inherited_sockets(const config::PoolConfig& pc) const {
    if (!inherited_) return std::nullopt;
    const auto* pools = section(*inherited_, "supervisor").if_contains("pools");
    if (!pools || !pools->is_array()) return std::nullopt;
    for (const auto& pv : pools->as_array()) {
        if (!pv.is_object()) continue;
        const auto& po = pv.as_object();
        const auto* name = po.if_contains("name");
        const auto* fds = po.if_contains("socket_fds");
        if (!name || !name->is_string() || name->as_string() != pc.name) continue;
        if (!fds || !fds->is_array() || fds->as_array().size() != pc.sockets.size())
            return std::nullopt;
        ListenSockets out;
        for (std::size_t i = 0; i < pc.sockets.size(); ++i) {
            const auto& fd = fds->as_array()[i];
            if (!fd.is_int64()) return std::nullopt;
            out.push_back(ListenSocket::adopt(pc.sockets[i], static_cast<int>(fd.as_int64())));
        }
        return out;
    }
    return std::nullopt;
}

fsm::TimePoint Daemon::inherited_start() const {
    const auto* v = section(*inherited_, "daemon").if_contains("started_at");
    if (!v || !v->is_int64()) return sys_.now();
    return fsm::TimePoint(
        std::chrono::duration_cast<fsm::Clock::duration>(std::chrono::nanoseconds(v->as_int64())));
}

}  // namespace cow
