// What a worker said over NOTIFY_SOCKET, parsed: plain data, so that the supervisor can act on
// it without knowing the socket (notify.hpp) or asio.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace cow {

struct NotifyMessage {
    bool ready = false;
    bool stopping = false;
    bool watchdog = false;
    bool reloading = false;
    std::optional<std::string> status;
    std::optional<std::uint64_t> extend_usec;
};

// Parses "KEY=VALUE\n..." (sd_notify's format). Unknown keys are ignored, as systemd does.
NotifyMessage parse_notify(std::string_view datagram);

}  // namespace cow
