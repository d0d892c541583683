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
    fsm::TimePoint started_at;
    // `top`'s CPU figures between requests: used on the reader thread only, and its files
    // closed when no `top` request came for a while (cpu_idle).
    std::shared_ptr<views::CpuMeter> cpu = std::make_shared<views::CpuMeter>();
    std::shared_ptr<boost::asio::steady_timer> cpu_idle{};
};

void dispatch_command(CommandContext& ctx, const Peer& peer, proto::Request req,
                      std::shared_ptr<Responder> resp);

}  // namespace cow
