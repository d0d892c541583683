// cowctl's side of the control protocol: a blocking Unix-socket client with deadlines.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <variant>

#include "core/protocol.hpp"

namespace cow::ctl {

struct Unreachable {
    std::string message;  // "cannot reach cowherd at /run/...: No such file or directory"
    // The daemon took the connection and closed it before the final reply: an image that is
    // being replaced (cowctl upgrade) or exiting. A request that changes nothing may be sent
    // again.
    bool closed = false;
};

// The daemon took the request but its final reply did not come within the timeout.
struct TimedOut {
    std::string message;
};

class Client {
  public:
    static std::variant<Client, Unreachable> connect(const std::string& path,
                                                     std::chrono::milliseconds timeout);
    Client(Client&& o) noexcept : fd_(o.fd_), path_(std::move(o.path_)) { o.fd_ = -1; }
    Client& operator=(Client&&) = delete;
    ~Client();

    using OnItem = std::function<void(const boost::json::value&)>;
    // Sends one request and returns its final reply. Streaming items go to on_item.
    // A negative timeout waits forever (for `logs -f`). With raw_ok, a final ok reply comes
    // back unparsed in raw_result (for printing --json output verbatim).
    std::variant<proto::Reply, Unreachable, TimedOut> call(std::string_view cmd,
                                                           boost::json::object args,
                                                           std::chrono::milliseconds timeout,
                                                           const OnItem& on_item = {},
                                                           bool raw_ok = false);

  private:
    Client(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
    int fd_;
    std::string path_;
    std::string buf_;
    std::int64_t next_id_ = 1;
};

}  // namespace cow::ctl
