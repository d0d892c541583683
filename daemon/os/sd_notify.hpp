// The daemon's own side of sd_notify, for running under systemd (Type=notify): READY=1,
// STATUS=, RELOADING=1, STOPPING=1 and WATCHDOG=1 to $NOTIFY_SOCKET.
//
// The protocol is one datagram per message to a Unix socket named in the environment; the
// 40 lines below spare every user a libsystemd dependency (and its own threads and
// allocations) for something this small. Debian's libsystemd-dev would work as well.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace cow {

class SdNotify {
  public:
    // Reads NOTIFY_SOCKET and WATCHDOG_USEC/WATCHDOG_PID, then removes them from our
    // environment: workers must never talk to systemd on our behalf.
    SdNotify();
    ~SdNotify();
    bool enabled() const { return fd_ >= 0; }
    bool send(std::string_view message);
    // WATCHDOG_USEC when it is meant for us: ping at half of it.
    std::optional<std::chrono::microseconds> watchdog() const { return watchdog_; }
    // What the environment said, for the next image of the daemon (cowctl upgrade), which
    // puts it back before its own SdNotify reads it.
    const std::string& address() const { return address_; }

  private:
    int fd_ = -1;
    std::string address_;
    std::optional<std::chrono::microseconds> watchdog_;
};

}  // namespace cow
