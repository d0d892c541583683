// NOTIFY_SOCKET: workers with `ready: notify` report READY=1, STATUS=, STOPPING=1,
// WATCHDOG=1 and EXTEND_TIMEOUT_USEC= as systemd services do (sd_notify). One abstract
// datagram socket for the daemon; the kernel attaches each sender's credentials
// (SCM_CREDENTIALS), and the supervisor decides whom a pid may speak for.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <sys/types.h>

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

class NotifyServer {
  public:
    using Handler = std::function<void(pid_t sender, const NotifyMessage& msg)>;
    // Creates "@cowherd-<pid>-<random>" in the abstract namespace; nothing on disk.
    static std::unique_ptr<NotifyServer> open(boost::asio::io_context& io, Handler h,
                                              std::string& error);
    ~NotifyServer();
    // The value for workers' NOTIFY_SOCKET ("@..." marks the abstract namespace).
    const std::string& address() const { return address_; }
    std::uint64_t received() const { return received_; }

  private:
    NotifyServer(boost::asio::io_context& io, int fd, std::string address, Handler h);
    void wait();
    void drain();

    boost::asio::posix::stream_descriptor sock_;
    std::string address_;
    Handler handler_;
    std::uint64_t received_ = 0;
};

}  // namespace cow
