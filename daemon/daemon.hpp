// The daemon: owns the io_context and wires signals, reaper, supervisor, timers and the
// control server together, in a fixed startup and shutdown order.
// daemon.cpp is about 600 lines because startup and shutdown are each one ordered sequence, kept
// in one file so that the order reads top to bottom.
#pragma once

#include <array>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include "config/config.hpp"
#include "daemon/control/commands.hpp"
#include "daemon/control/control_server.hpp"
#include "daemon/control/metrics.hpp"
#include "daemon/hooks.hpp"
#include "daemon/logs/log_writer.hpp"
#include "daemon/logs/output.hpp"
#include "daemon/memory/history_sampler.hpp"
#include "daemon/memory/memory_sampler.hpp"
#include "daemon/memory/recycler.hpp"
#include "daemon/os/background.hpp"
#include "daemon/os/helpers.hpp"
#include "daemon/os/leftovers.hpp"
#include "daemon/os/notify.hpp"
#include "daemon/os/sd_notify.hpp"
#include "daemon/os/signals.hpp"
#include "daemon/os/sys.hpp"
#include "daemon/probe/prober.hpp"
#include "daemon/supervise/supervisor.hpp"

namespace cow {

class Daemon {
  public:
    // args: the command line it was started with, for the next image (cowctl upgrade).
    // inherited: the state a previous image handed over in state_fd; rolled_back: that image
    // was started from this one's and gave back.
    Daemon(std::shared_ptr<const config::Config> cfg, std::vector<std::string> args,
           std::optional<boost::json::object> inherited = std::nullopt, int state_fd = -1,
           bool rolled_back = false);
    ~Daemon();
    // Runs until shutdown; returns the process exit code.
    int run();

  private:
    bool setup_kill_mode();
    void on_signal(int signo);
    void after_batch();
    void rearm_timer();
    void request_shutdown(const std::string& reason);
    void finish();
    // Re-reads the config file; an invalid one changes nothing. resp is null for SIGHUP.
    void reload(bool dry_run, std::shared_ptr<Responder> resp);
    void boot_when_clear(fsm::TimePoint deadline);
    void record_workers();
    void notify_systemd();
    void ping_systemd(std::chrono::microseconds every);
    void scrape(std::function<void(std::string)> done);
    std::pair<int, std::string> readyz(std::string_view pool);
    void block_loop_once(const std::string& spec);

    // In-place upgrade (daemon_upgrade.cpp).
    void upgrade(std::string binary, std::shared_ptr<Responder> resp);
    std::string upgrade_blocker() const;
    void preflight(const std::string& binary, const std::string& state,
                   std::function<void(std::string why)> done);
    void read_check();
    bool check_reaped(pid_t pid, int status);
    void finish_check();
    void exec_upgrade(const std::string& path);
    boost::json::object save_state(int exe_fd) const;
    std::vector<int> handover_fds();
    std::string take_over();
    std::optional<std::pair<int, int>> inherited_control() const;
    std::optional<std::pair<int, std::string>> inherited_notify() const;
    std::optional<ListenSockets> inherited_sockets(const config::PoolConfig& pc) const;
    fsm::TimePoint inherited_start() const;

    std::shared_ptr<const config::Config> cfg_;
    boost::asio::io_context io_;
    RealSys sys_;
    // The writer outlives everything that queues lines to it; the supervisor outlives
    // nothing that points at it.
    std::unique_ptr<LogWriter> log_writer_;
    std::unique_ptr<Output> output_;
    EventFeed event_feed_;  // `events -f` subscribers: outlives the supervisor that feeds it
    std::unique_ptr<Supervisor> sup_;
    std::unique_ptr<Background> background_;
    mem::Sampler sampler_;  // only touched by background jobs
    std::unique_ptr<Recycler> recycler_;
    std::unique_ptr<HistorySampler> history_;  // memory over time
    std::unique_ptr<Helpers> helpers_;         // exec probes, hooks
    std::unique_ptr<Prober> prober_;
    std::unique_ptr<Hooks> hooks_;  // on_exit, on_fatal
    std::unique_ptr<Signals> signals_;
    std::unique_ptr<NotifyServer> notify_;
    std::unique_ptr<ControlServer> control_;
    std::unique_ptr<CommandContext> commands_;
    boost::asio::steady_timer timer_;
    std::optional<fsm::TimePoint> armed_at_;
    boost::asio::steady_timer shutdown_timer_;
    SdNotify sd_;  // constructed first thing: it takes NOTIFY_SOCKET out of the environment
    boost::asio::steady_timer sd_timer_;
    bool sd_ready_ = false;
    std::string sd_status_;
    std::unique_ptr<MetricsServer> metrics_;
    int devnull_ = -1;
    int exit_code_ = 0;
    bool finished_ = false;
    int reloads_in_flight_ = 0;  // applied, with rolls still going; READY=1 when none are
    bool hup_pending_ = false;
    bool starts_posted_ = false;
    bool usr1_pending_ = false;
    bool reap_posted_ = false;  // a bounded reap batch left more for the next turn
    pid_t swept_to_ = 0;        // where the last look at each child stopped
    fsm::TimePoint started_at_;
    // A predecessor's leftovers, killed at startup; the first workers wait until they are gone.
    std::vector<std::string> leftover_cgroups_;
    std::vector<ProcId> leftover_procs_;
    boost::asio::steady_timer boot_timer_{io_};
    boost::asio::steady_timer test_block_timer_{io_};
    // The record of our processes outside cgroups (daemon/os/leftovers.hpp).
    std::string workers_file_;
    std::uint64_t recorded_epoch_ = 0;
    std::vector<leftovers::Record> recorded_;
    std::unordered_map<pid_t, std::uint64_t> starttimes_;
    bool record_failed_ = false;
    // In-place upgrade.
    std::vector<std::string> args_;
    std::string self_path_;  // the binary this image runs, as it was started
    std::optional<boost::json::object> inherited_;
    int state_fd_ = -1;
    bool rolled_back_ = false;
    bool upgrading_ = false;
    bool exec_started_ = false;
    bool usr2_pending_ = false;
    boost::asio::steady_timer upgrade_timer_{io_};
    // The new binary's --check-upgrade run, under way: its answer on a pipe, its exit from the
    // reaper, a deadline.
    struct Check {
        explicit Check(boost::asio::io_context& io) : out(io), deadline(io) {}
        pid_t pid = 0;
        std::string binary, said;
        std::array<char, 4096> buf{};
        boost::asio::posix::stream_descriptor out;
        boost::asio::steady_timer deadline;
        std::optional<int> status;
        bool eof = false, timed_out = false;
        std::function<void(std::string)> done;
    };
    std::unique_ptr<Check> check_;
};

}  // namespace cow
