// The control socket: a Unix stream socket speaking newline-delimited JSON (design §1).
// It owns connections, bounds (request size, clients, followers, idle time, output queue),
// peer credential checks and the lock that keeps a second daemon off the same socket. What a
// verb does lives in commands.cpp.
// control_server.cpp is about 600 lines: a connection's admission, budgets, reading and writing
// are one lifecycle, and each limit is enforced where that lifecycle moves.
#pragma once

#include <chrono>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <variant>

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>
#include <sys/types.h>

#include "core/protocol.hpp"
#include "daemon/logs/item_stream.hpp"

namespace cow {

struct Peer {
    pid_t pid = 0;
    uid_t uid = 0;
    gid_t gid = 0;
    bool readonly = false;  // in readonly_group only: proto::kReadOnlyVerbs
};

// Who may use the socket beyond root and the daemon's own uid (SO_PEERCRED, and the peer's
// supplementary groups from /proc/PID/status).
struct SocketAccess {
    std::optional<gid_t> full_group;
    std::optional<gid_t> readonly_group;
};

class Connection;

// Answers one request: any number of item() lines, then exactly one ok() or error().
// A follower's stream too (ItemStream), for output capture.
class Responder final : public ItemStream {
  public:
    Responder(std::weak_ptr<Connection> conn, std::int64_t id) : conn_(std::move(conn)), id_(id) {}
    ~Responder() override;
    void item(boost::json::value v);
    void ok(boost::json::value result);
    // A result serialized elsewhere (on the reader thread), so the loop only writes it.
    void ok_raw(std::string result_json);
    void error(proto::ErrorCode code, std::string_view message) override;
    bool done() const override { return done_; }
    bool connected() const override;
    std::int64_t id() const { return id_; }

    // `logs -f`: this request becomes a stream that lasts until the client goes, moving its
    // connection from the request budget to the follower budget. Returns an error sentence
    // (and changes nothing) when the follower budget is full. A stream's final reply ends its
    // connection.
    std::string start_stream();
    // Whether `bytes` more fit in a stream's queue of unsent lines (ControlLimits).
    bool can_stream(std::size_t bytes) const override;
    void when_drained(std::function<void()> f) override;
    void item_raw(std::string_view item_json) override;

  private:
    std::weak_ptr<Connection> conn_;
    std::int64_t id_;
    bool done_ = false;
};

// Requests are short and followers (`logs -f`) long-lived, so they have budgets of their own:
// followers can never take the slots that status, health or shutdown need, and root (and
// socket_group) have slots that readonly_group members cannot take.
struct ControlLimits {
    std::size_t max_clients = 64;       // connections between or in requests, anyone's
    std::size_t reserved_clients = 16;  // more of those, only for full-access peers
    std::size_t max_followers = 256;    // `logs -f` streams
    // Connections that have not sent their first request yet. Which budget a connection takes
    // depends on what it asks, so a burst of followers or probes waits here rather than
    // crowding (or evicting) one another from the requests' budget; each costs an fd until
    // request_deadline.
    std::size_t max_pending = 384;
    // A pending connection younger than this is never evicted: it has not had its chance to
    // send its request (under load, accepting runs ahead of reading).
    std::chrono::milliseconds pending_grace{2'000};
    // Unsent lines one follower may hold; past it, its lines are skipped and counted. With
    // every follower stuck, 256 x 256 KiB is the most they can hold.
    std::size_t follower_queue = 256u << 10;
    std::chrono::milliseconds request_deadline{10'000};  // to finish a request line
    std::chrono::milliseconds idle_deadline{300'000};    // between requests
    std::size_t max_queued_output = 16u << 20;           // a client that stops reading
};

class ControlServer {
  public:
    using Dispatch = std::function<void(const Peer&, proto::Request, std::shared_ptr<Responder>)>;

    // Takes the lock, binds the socket with `mode` (through the umask: never chmod after
    // bind) and starts accepting. Returns an error sentence when another daemon holds the
    // lock or the socket cannot be created.
    static std::variant<std::unique_ptr<ControlServer>, std::string> open(
        boost::asio::io_context& io, const std::string& path, mode_t mode, Dispatch dispatch,
        std::function<void()> after_each, ControlLimits limits = {}, SocketAccess access = {});
    // The listener and lock a previous image of this daemon handed over across execve (cowctl
    // upgrade): nothing is bound, locked or removed anew, so no client ever finds no socket.
    static std::variant<std::unique_ptr<ControlServer>, std::string> adopt(
        boost::asio::io_context& io, const std::string& path, int lock_fd, int listen_fd,
        Dispatch dispatch, std::function<void()> after_each, ControlLimits limits = {},
        SocketAccess access = {});
    // The lock and the listener, for the next image.
    std::pair<int, int> handover_fds() { return {lock_fd_, acceptor_.native_handle()}; }
    ~ControlServer();

    // Stops accepting, removes the socket file and closes idle connections; connections with
    // queued replies close once those are written.
    void close();
    // Runs f once the server is closed and every connection has gone.
    void when_drained(std::function<void()> f);
    const std::string& path() const { return path_; }
    std::size_t clients() const { return conns_.size(); }
    std::size_t followers() const { return in_use_[follower]; }

  private:
    friend class Connection;
    friend class Responder;
    // Which budget a connection counts against.
    enum Budget { shared, reserved, follower, pending, none };
    ControlServer(boost::asio::io_context& io, std::string path, int lock_fd, Dispatch d,
                  std::function<void()> after_each, ControlLimits limits, SocketAccess access);
    void accept();
    void forget(Connection* c);
    // Room for a new connection until its first request, evicting a pending connection that
    // had its chance if need be; false when there is none.
    bool admit_pending(const Peer& p);
    // The budget for a connection's first request (not a follower's: see start_stream),
    // evicting an idle connection if need be, or nullopt when there is none.
    std::optional<Budget> admit(const Peer& p);
    bool evict_idle(Budget b);
    // Full access, read-only access (sets p.readonly), or none.
    bool allowed(Peer& p) const;

    boost::asio::io_context& io_;
    boost::asio::local::stream_protocol::acceptor acceptor_;
    std::string path_;
    int lock_fd_;
    Dispatch dispatch_;
    std::function<void()> after_each_;
    ControlLimits limits_;
    SocketAccess access_;
    std::list<std::shared_ptr<Connection>> conns_;
    std::size_t in_use_[4] = {0, 0, 0, 0};  // by Budget
    bool closed_ = false;
    std::function<void()> on_drained_;
};

}  // namespace cow
