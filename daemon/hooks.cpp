#include "daemon/hooks.hpp"

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include "core/protocol_names.hpp"
#include "core/units.hpp"

namespace cow {

Hooks::Hooks(boost::asio::io_context& io, Supervisor& sup, int devnull)
    : io_(io), sup_(sup), helpers_(io, devnull, kRunning, kQueued) {
    helpers_.on_started = [this](pid_t pid) { sup_.helper_started(pid); };
    helpers_.on_reaped = [this](pid_t pid) { sup_.helper_reaped(pid); };
}

void Hooks::on_event(const EventRecord& e) {
    if (e.pool.empty()) return;
    const bool exit = e.kind == proto::event::exit;
    const bool fatal =
        e.kind == proto::event::transition && e.json.find("\"to\":\"fatal\"") != std::string::npos;
    if (!exit && !fatal) return;
    const Pool* pool = sup_.find_pool(e.pool);
    if (!pool) return;
    const auto& cmd = exit ? pool->cfg->on_exit : pool->cfg->on_fatal;
    if (cmd.empty()) return;
    const char* name = exit ? "on_exit" : "on_fatal";
    // After the batch: the supervisor is in the middle of applying the event that made this.
    boost::asio::post(io_, [this, alive = std::weak_ptr<bool>(alive_), cmd, name,
                            input = e.json + "\n", pool_name = e.pool,
                            timeout = pool->cfg->hook_timeout] {
        if (alive.expired()) return;
        helpers_.run(
            cmd, input, timeout, [this, alive, name, pool_name, timeout](const HelperResult& r) {
                if (alive.expired() || (r.ran && !r.timed_out && r.exit.success())) return;
                const std::string why = !r.ran ? r.error
                                        : r.timed_out
                                            ? "cut at hook_timeout " + format_duration(timeout)
                                            : describe(r.exit);
                const std::string msg = "pool " + pool_name + ": " + name + " hook failed: " + why;
                spdlog::warn("{}", msg);
                sup_.events().emit(sup_.now(), proto::event::hook, pool_name, {}, msg,
                                   {{"hook", name}, {"detail", why}});
            });
    });
}

}  // namespace cow
