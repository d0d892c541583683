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
#include <variant>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <sys/types.h>

#include "daemon/os/notify_message.hpp"

namespace cow {

class NotifyServer {
  public:
    using Handler = std::function<void(pid_t sender, const NotifyMessage& msg)>;
    // Creates "@cowherd-<pid>-<random>" in the abstract namespace; nothing on disk.
    // Or a sentence saying why it could not.
    static std::variant<std::unique_ptr<NotifyServer>, std::string> open(
        boost::asio::io_context& io, Handler h);
    // The socket a previous image of this daemon handed over across execve (cowctl upgrade):
    // its workers already have its address.
    static std::unique_ptr<NotifyServer> adopt(boost::asio::io_context& io, int fd,
                                               std::string address, Handler h);
    int fd() { return sock_.native_handle(); }
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
