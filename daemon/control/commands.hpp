// The verb table of the control protocol. Verbs come from a fixed table, never from dynamic
// lookup (supervisord's CVE-2017-11610 came from the latter).
// commands.cpp is about 700 lines of short handlers, one per verb: the table reads better whole
// than scattered over a file per verb.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <boost/asio/steady_timer.hpp>

#include "daemon/control/control_server.hpp"
#include "daemon/control/event_feed.hpp"
#include "daemon/control/live_views.hpp"
#include "daemon/logs/log_writer.hpp"
#include "daemon/logs/output.hpp"
#include "daemon/memory/memory_sampler.hpp"
#include "daemon/os/background.hpp"
#include "daemon/supervise/supervisor.hpp"

namespace cow {

struct CommandContext {
    Supervisor& sup;
    Background& background;
    mem::Sampler& sampler;  // used only on the reader thread, inside background jobs
    HistorySampler& history;
    Output& output;
    LogWriter& log_writer;
    EventFeed& events;
    std::function<void(std::string reason)> shutdown;
    std::function<void(bool dry_run, std::shared_ptr<Responder>)> reload;
    // cowctl upgrade: the binary to execute in place ("" = the one the daemon started from).
    std::function<void(std::string binary, std::shared_ptr<Responder>)> upgrade;
    fsm::TimePoint started_at;
    // Upgrades this daemon went through, and those that failed (the last one's reason): they
    // travel with the state, so cowctl upgrade can tell a new image from a rolled back one.
    std::uint64_t upgrades = 0;
    std::uint64_t upgrade_failures = 0;
    std::string upgrade_error;
    // `top`'s CPU figures between requests: used on the reader thread only, and its files
    // closed when no `top` request came for a while (cpu_idle).
    std::shared_ptr<views::CpuMeter> cpu = std::make_shared<views::CpuMeter>();
    std::shared_ptr<boost::asio::steady_timer> cpu_idle{};
};

void dispatch_command(CommandContext& ctx, const Peer& peer, proto::Request req,
                      std::shared_ptr<Responder> resp);

}  // namespace cow
