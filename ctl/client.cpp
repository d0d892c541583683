#include "ctl/client.hpp"

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/units.hpp"

namespace cow::ctl {
namespace {

using Clock = std::chrono::steady_clock;

int remaining_ms(Clock::time_point deadline, bool forever) {
    if (forever) return -1;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

}  // namespace

std::variant<Client, Unreachable> Client::connect(const std::string& path,
                                                  std::chrono::milliseconds timeout) {
    sockaddr_un addr{};
    if (path.size() >= sizeof addr.sun_path) return Unreachable{"socket path too long: " + path};
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return Unreachable{std::string("socket: ") + std::strerror(errno)};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    // A Unix-socket connect either succeeds at once or fails at once (a full backlog gives
    // EAGAIN), so retry briefly instead of going non-blocking.
    auto deadline = Clock::now() + timeout;
    for (;;) {
        if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) break;
        int err = errno;
        if ((err == EAGAIN || err == EINTR) && Clock::now() < deadline) {
            ::poll(nullptr, 0, 5);
            continue;
        }
        ::close(fd);
        std::string hint = (err == ENOENT || err == ECONNREFUSED) ? " (is cowherd running?)" : "";
        return Unreachable{"cannot reach cowherd at " + path + ": " + std::strerror(err) + hint};
    }
    return Client(fd, path);
}

Client::~Client() {
    if (fd_ >= 0) ::close(fd_);
}

std::variant<proto::Reply, Unreachable, TimedOut> Client::call(std::string_view cmd,
                                                               boost::json::object args,
                                                               std::chrono::milliseconds timeout,
                                                               const OnItem& on_item, bool raw_ok) {
    const bool forever = timeout.count() < 0;
    const auto deadline = Clock::now() + (forever ? std::chrono::milliseconds(0) : timeout);
    proto::Request req;
    req.id = next_id_++;
    req.cmd = cmd;
    req.args = std::move(args);
    std::string line = proto::encode_request(req) + "\n";
    std::size_t off = 0;
    while (off < line.size()) {
        ssize_t n = ::send(fd_, line.data() + off, line.size() - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        // The daemon may answer and close before reading us (a denied peer): its answer is
        // still there to read.
        if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) break;
        if (n < 0) return Unreachable{std::string("send to cowherd: ") + std::strerror(errno)};
        off += static_cast<std::size_t>(n);
    }
    char chunk[65536];
    for (;;) {
        std::size_t nl;
        while ((nl = buf_.find('\n')) != std::string::npos) {
            std::string one = buf_.substr(0, nl);
            buf_.erase(0, nl + 1);
            if (raw_ok)
                if (auto fast = proto::decode_ok_raw(one)) return std::move(*fast);
            auto decoded = proto::decode_reply(one);
            if (auto* err = std::get_if<std::string>(&decoded))
                return Unreachable{"bad reply from cowherd: " + *err};
            auto& reply = std::get<proto::Reply>(decoded);
            if (!reply.final) {
                if (on_item) on_item(reply.result);
                continue;
            }
            return reply;
        }
        pollfd p{fd_, POLLIN, 0};
        int rc = ::poll(&p, 1, remaining_ms(deadline, forever));
        if (rc < 0 && errno == EINTR) continue;
        if (rc == 0)
            return TimedOut{"no reply to \"" + std::string(cmd) + "\" within " +
                            format_duration(timeout) +
                            "; the request is not cancelled (wait longer with --timeout S)"};
        ssize_t n = ::read(fd_, chunk, sizeof chunk);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0)
            return Unreachable{
                "cowherd closed the connection" +
                    std::string(n < 0 ? std::string(": ") + std::strerror(errno) : "") +
                    " (an upgrade or a shutdown; retry)",
                true};
        buf_.append(chunk, static_cast<std::size_t>(n));
    }
}

}  // namespace cow::ctl
