#include "daemon/control/control_server.hpp"

#include <array>
#include <cerrno>
#include <cstring>
#include <deque>
#include <fstream>
#include <sstream>

#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/protocol_names.hpp"

namespace cow {
namespace asio = boost::asio;
using stream = asio::local::stream_protocol;

class Connection : public std::enable_shared_from_this<Connection> {
  public:
    using Budget = ControlServer::Budget;
    Connection(ControlServer& srv, stream::socket sock, Peer peer, Budget budget)
        : srv_(srv), sock_(std::move(sock)), peer_(peer), budget_(budget), deadline_(srv.io_) {
        if (budget_ != Budget::none) ++srv_.in_use_[budget_];
    }

    void start() {
        last_active_ = std::chrono::steady_clock::now();
        read_next();
    }
    bool busy() const { return busy_; }
    bool is_open() const { return sock_.is_open() && !closing_; }
    Budget budget() const { return budget_; }
    const Peer& peer() const { return peer_; }
    std::chrono::steady_clock::time_point last_active() const { return last_active_; }
    std::size_t queued() const { return queued_; }
    const ControlLimits& limits() const { return srv_.limits_; }

    void send(std::string line, bool final) {
        if (!sock_.is_open() || stream_ended_) return;
        line.push_back('\n');
        queued_ += line.size();
        if (queued_ > srv_.limits_.max_queued_output) {
            spdlog::warn("control client pid {} is not reading its replies; disconnecting",
                         peer_.pid);
            close();
            return;
        }
        out_.push_back(std::move(line));
        write_next();
        if (final) {
            busy_ = false;
            last_active_ = std::chrono::steady_clock::now();
            if (budget_ == Budget::follower) {
                // A stream's end is the connection's: its hangup watch holds the only read.
                stream_ended_ = true;
                close_after_write();
            } else if (!closing_) {
                read_next();
            }
        }
    }

    std::string start_stream(std::int64_t id) {
        if (budget_ == Budget::follower) return {};
        if (srv_.in_use_[Budget::follower] >= srv_.limits_.max_followers)
            return "too many followers: at most " + std::to_string(srv_.limits_.max_followers) +
                   " `logs -f` and `events -f` streams at once";
        move_to(Budget::follower);
        stream_id_ = id;
        deadline_.cancel();
        watch_hangup();
        return {};
    }

    // The daemon is going away: a stream gets a final sentence rather than a bare hangup.
    void end_stream(std::string_view why) {
        if (budget_ == Budget::follower && !stream_ended_)
            send(proto::encode_error(stream_id_, proto::ErrorCode::shutting_down, why), true);
    }

    void when_drained(std::function<void()> f) {
        if (out_.empty() && !writing_) {
            f();
            return;
        }
        on_drained_ = std::move(f);
    }

    void close_after_write() {
        closing_ = true;
        deadline_.cancel();
        if (out_.empty() && !writing_) close();
    }

    void close() {
        if (!sock_.is_open()) return;
        boost::system::error_code ec;
        deadline_.cancel();
        sock_.shutdown(stream::socket::shutdown_both, ec);
        sock_.close(ec);
        on_drained_ = nullptr;
        move_to(Budget::none);
        srv_.forget(this);
    }

  private:
    void move_to(Budget b) {
        if (budget_ != Budget::none) --srv_.in_use_[budget_];
        budget_ = b;
        if (budget_ != Budget::none) ++srv_.in_use_[budget_];
    }

    // A follower sends nothing more, and is read only to learn at once that it went away:
    // else a dead follower of a quiet pool would keep its slot until the pool spoke.
    void watch_hangup() {
        auto self = shared_from_this();
        sock_.async_read_some(asio::buffer(scratch_),
                              [this, self](const boost::system::error_code& ec, std::size_t) {
                                  if (ec) {
                                      close();
                                      return;
                                  }
                                  watch_hangup();
                              });
    }

    void read_next() {
        if (reading_ || closing_ || !sock_.is_open()) return;
        reading_ = true;
        arm_deadline(srv_.limits_.request_deadline);
        auto self = shared_from_this();
        asio::async_read_until(
            sock_, asio::dynamic_buffer(inbuf_, proto::kMaxRequestBytes + 1), '\n',
            [this, self](const boost::system::error_code& ec, std::size_t n) {
                reading_ = false;
                deadline_.cancel();
                if (ec == asio::error::not_found) {
                    send(
                        proto::encode_error(std::nullopt, proto::ErrorCode::too_large,
                                            "request line exceeds " +
                                                std::to_string(proto::kMaxRequestBytes) + " bytes"),
                        false);
                    close_after_write();
                    return;
                }
                if (ec) {
                    close();
                    return;
                }
                std::string line = inbuf_.substr(0, n - 1);
                inbuf_.erase(0, n);
                if (!line.empty() && line.back() == '\r') line.pop_back();
                on_line(line);
            });
    }

    void on_line(const std::string& line) {
        last_active_ = std::chrono::steady_clock::now();
        if (line.empty()) {
            read_next();
            return;
        }
        std::variant<proto::Request, proto::DecodeError> decoded;
        try {
            decoded = proto::decode_request(line);
        } catch (const std::exception& e) {
            decoded =
                proto::DecodeError{proto::ErrorCode::bad_request,
                                   std::string("malformed request: ") + e.what(), std::nullopt};
        }
        if (auto* err = std::get_if<proto::DecodeError>(&decoded)) {
            send(proto::encode_error(err->id, err->code, err->message), true);
            return;
        }
        auto& req = std::get<proto::Request>(decoded);
        // A pending connection's first request decides its budget; a follower's is taken by
        // start_stream, once the daemon has accepted the stream.
        const bool streams = (req.cmd == proto::verb::logs || req.cmd == proto::verb::events) &&
                             proto::get_bool(req.args, proto::arg::follow).value_or(false);
        if (budget_ == Budget::pending && !streams) {
            auto b = srv_.admit(peer_);
            if (!b) {
                send(
                    proto::encode_error(req.id, proto::ErrorCode::busy, "too many control clients"),
                    false);
                close_after_write();
                return;
            }
            move_to(*b);
        }
        busy_ = true;
        auto responder = std::make_shared<Responder>(weak_from_this(), req.id);
        // A request must never take the daemon down: a handler that throws (a bug, like the
        // decoder's once) costs this request an error reply, and the daemon goes on.
        const std::string cmd = req.cmd;
        try {
            srv_.dispatch_(peer_, std::move(req), responder);
        } catch (const std::exception& e) {
            spdlog::error("control: {} failed: {}", cmd, e.what());
            if (!responder->done())
                responder->error(proto::ErrorCode::internal,
                                 "internal error: " + std::string(e.what()));
        }
        if (srv_.after_each_) srv_.after_each_();
    }

    void write_next() {
        if (writing_ || out_.empty() || !sock_.is_open()) return;
        writing_ = true;
        // Queued lines go out together, one sendmsg for up to kGather of them: a follower of a
        // busy worker is sent thousands of lines a second. (A deque's push_back moves none of
        // them, so the buffers stay valid while more are queued.)
        constexpr std::size_t kGather = 64;
        gather_.clear();
        for (auto it = out_.begin(); it != out_.end() && gather_.size() < kGather; ++it)
            gather_.push_back(asio::buffer(*it));
        auto self = shared_from_this();
        asio::async_write(
            sock_, gather_,
            [this, self, n = gather_.size()](const boost::system::error_code& ec, std::size_t) {
                writing_ = false;
                if (ec) {
                    close();
                    return;
                }
                for (std::size_t i = 0; i < n; ++i) {
                    queued_ -= out_.front().size();
                    out_.pop_front();
                }
                if (!out_.empty()) {
                    write_next();
                } else if (closing_) {
                    close();
                } else if (on_drained_) {
                    auto f = std::move(on_drained_);
                    on_drained_ = nullptr;
                    f();
                }
            });
    }

    void arm_deadline(std::chrono::milliseconds d) {
        deadline_.expires_after(d);
        std::weak_ptr<Connection> weak = weak_from_this();
        deadline_.async_wait([weak](const boost::system::error_code& ec) {
            if (ec) return;
            if (auto self = weak.lock()) self->close();
        });
    }

    ControlServer& srv_;
    stream::socket sock_;
    Peer peer_;
    Budget budget_;
    asio::steady_timer deadline_;
    std::string inbuf_;
    std::deque<std::string> out_;
    std::vector<asio::const_buffer> gather_;  // what the write in progress sends
    std::size_t queued_ = 0;
    std::function<void()> on_drained_;
    std::int64_t stream_id_ = 0;
    std::array<char, 256> scratch_{};  // what a follower sends anyway, discarded
    bool writing_ = false;
    bool reading_ = false;
    bool busy_ = false;
    bool closing_ = false;
    bool stream_ended_ = false;
    std::chrono::steady_clock::time_point last_active_{};
};

// ---- Responder ----

Responder::~Responder() {
    // A handler that forgot to answer must not leave the client hanging forever.
    if (!done_) error(proto::ErrorCode::internal, "the daemon dropped this request");
}

bool Responder::connected() const {
    auto c = conn_.lock();
    return c && c->is_open();
}

void Responder::item(boost::json::value v) {
    if (done_) return;
    if (auto c = conn_.lock()) c->send(proto::encode_item(id_, std::move(v)), false);
}

void Responder::ok(boost::json::value result) {
    if (done_) return;
    done_ = true;
    if (auto c = conn_.lock()) c->send(proto::encode_ok(id_, std::move(result)), true);
}

void Responder::ok_raw(std::string result_json) {
    if (done_) return;
    done_ = true;
    if (auto c = conn_.lock()) c->send(proto::encode_ok_raw(id_, result_json), true);
}

void Responder::item_raw(std::string_view item_json) {
    if (done_) return;
    auto c = conn_.lock();
    if (!c) return;
    // encode_item's shape, around a result serialized once for every follower.
    std::string line = "{\"v\":" + std::to_string(proto::kVersion) +
                       ",\"id\":" + std::to_string(id_) + ",\"ok\":true,\"more\":true,\"result\":";
    line.append(item_json);
    line.push_back('}');
    c->send(std::move(line), false);
}

std::string Responder::start_stream() {
    auto c = conn_.lock();
    if (!c) return "the client went away";
    return c->start_stream(id_);
}

bool Responder::can_stream(std::size_t bytes) const {
    auto c = conn_.lock();
    if (!c) return false;
    // Always room for one: a line longer than the queue is still shown.
    return c->queued() == 0 || c->queued() + bytes <= c->limits().follower_queue;
}

void Responder::when_drained(std::function<void()> f) {
    if (auto c = conn_.lock()) c->when_drained(std::move(f));
}

void Responder::error(proto::ErrorCode code, std::string_view message) {
    if (done_) return;
    done_ = true;
    if (auto c = conn_.lock()) c->send(proto::encode_error(id_, code, message), true);
}

// ---- ControlServer ----

namespace {

std::string errno_sentence(const std::string& what, int err) {
    return what + ": " + std::strerror(err);
}

// Creates missing parent directories; the socket's own directory gets 0700 (0750 with the
// access group as its group, setgid so the socket inherits it), so nobody else can even reach
// the socket inode (mode bits on a socket alone are not enough on every system). An existing
// directory is left as it is (systemd's RuntimeDirectory sets its own mode), but a symlink
// where the directory should be is refused: it could send the socket somewhere else.
bool make_parent_dirs(const std::string& path, std::optional<gid_t> group, bool open_dir,
                      std::string& error) {
    auto slash = path.rfind('/');
    if (slash == std::string::npos || slash == 0) return true;
    std::string dir = path.substr(0, slash);
    std::size_t pos = 1;
    while (pos <= dir.size()) {
        std::size_t next = dir.find('/', pos);
        if (next == std::string::npos) next = dir.size();
        std::string part = dir.substr(0, next);
        bool last = next == dir.size();
        if (mkdir(part.c_str(), last && !open_dir ? 0700 : 0755) == 0) {
            if (last && group &&
                (::chown(part.c_str(), static_cast<uid_t>(-1), *group) < 0 ||
                 ::chmod(part.c_str(), 02750) < 0)) {
                error = errno_sentence("give " + part + " to the socket group", errno);
                return false;
            }
        } else if (errno != EEXIST) {
            error = errno_sentence("create directory " + part, errno);
            return false;
        }
        pos = next + 1;
    }
    struct stat st {};
    if (::lstat(dir.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
        error = "the socket directory " + dir + " is a symlink; refusing to use it";
        return false;
    }
    return true;
}

}  // namespace

std::variant<std::unique_ptr<ControlServer>, std::string> ControlServer::open(
    asio::io_context& io, const std::string& path, mode_t mode, Dispatch dispatch,
    std::function<void()> after_each, ControlLimits limits, SocketAccess access) {
    sockaddr_un addr{};
    if (path.empty() || path.size() >= sizeof addr.sun_path)
        return "control socket path \"" + path + "\" must be 1.." +
               std::to_string(sizeof addr.sun_path - 1) + " bytes";
    std::string error;
    // One access group: it owns the directory (02750) and the socket. Two different ones:
    // a 0755 directory, and the daemon decides on every connection from its credentials
    // (give socket_mode 0666 then).
    std::optional<gid_t> group = access.full_group ? access.full_group : access.readonly_group;
    const bool two =
        access.full_group && access.readonly_group && *access.full_group != *access.readonly_group;
    if (!make_parent_dirs(path, two ? std::nullopt : group, two, error)) return error;

    const std::string lock_path = path + ".lock";
    int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (lock_fd < 0) return errno_sentence("open lock file " + lock_path, errno);
    if (flock(lock_fd, LOCK_EX | LOCK_NB) < 0) {
        int err = errno;
        char buf[32] = {};
        ssize_t n = pread(lock_fd, buf, sizeof buf - 1, 0);
        ::close(lock_fd);
        if (err == EWOULDBLOCK) {
            std::string owner = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "?";
            while (!owner.empty() && (owner.back() == '\n' || owner.back() == ' '))
                owner.pop_back();
            return "another cowherd (pid " + owner + ") is already running on " + path;
        }
        return errno_sentence("lock " + lock_path, err);
    }
    std::string pid = std::to_string(getpid()) + "\n";
    if (ftruncate(lock_fd, 0) < 0 || pwrite(lock_fd, pid.data(), pid.size(), 0) < 0) {
        // Not fatal: the lock itself is what protects the socket.
    }

    // We hold the lock, so a socket file left there is stale; anything else is not ours.
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0 && !S_ISSOCK(st.st_mode)) {
        ::close(lock_fd);
        return path + " exists and is not a socket; refusing to replace it";
    }
    if (unlink(path.c_str()) < 0 && errno != ENOENT) {
        int err = errno;
        ::close(lock_fd);
        return errno_sentence("remove stale socket " + path, err);
    }
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        int err = errno;
        ::close(lock_fd);
        return errno_sentence("create control socket", err);
    }
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    // The mode is set by the umask at bind time, so the socket is never briefly too open.
    mode_t old = ::umask(static_cast<mode_t>(~mode & 0777));
    int rc = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    int bind_err = errno;
    ::umask(old);
    // The access group owns the socket (a change of owner, not of mode, and before listen).
    if (rc == 0 && group &&
        ::fchownat(AT_FDCWD, path.c_str(), static_cast<uid_t>(-1), *group, AT_SYMLINK_NOFOLLOW) < 0)
        rc = -1, bind_err = errno;
    if (rc < 0 || ::listen(fd, 128) < 0) {
        int err = rc < 0 ? bind_err : errno;
        ::close(fd);
        ::close(lock_fd);
        return errno_sentence("bind control socket " + path, err);
    }
    std::unique_ptr<ControlServer> srv(new ControlServer(io, path, lock_fd, std::move(dispatch),
                                                         std::move(after_each), limits, access));
    boost::system::error_code ec;
    srv->acceptor_.assign(stream(), fd, ec);
    if (ec) {
        ::close(fd);
        return "assign control socket: " + ec.message();
    }
    srv->accept();
    return srv;
}

std::variant<std::unique_ptr<ControlServer>, std::string> ControlServer::adopt(
    asio::io_context& io, const std::string& path, int lock_fd, int listen_fd, Dispatch dispatch,
    std::function<void()> after_each, ControlLimits limits, SocketAccess access) {
    std::unique_ptr<ControlServer> srv(new ControlServer(io, path, lock_fd, std::move(dispatch),
                                                         std::move(after_each), limits, access));
    boost::system::error_code ec;
    srv->acceptor_.assign(stream(), listen_fd, ec);
    if (ec) return "take over the control socket: " + ec.message();
    srv->accept();
    return srv;
}

ControlServer::ControlServer(asio::io_context& io, std::string path, int lock_fd, Dispatch d,
                             std::function<void()> after_each, ControlLimits limits,
                             SocketAccess access)
    : io_(io),
      acceptor_(io),
      path_(std::move(path)),
      lock_fd_(lock_fd),
      dispatch_(std::move(d)),
      after_each_(std::move(after_each)),
      limits_(limits),
      access_(access) {}

ControlServer::~ControlServer() {
    close();
    for (auto& c : std::list<std::shared_ptr<Connection>>(conns_))
        c->close();
    if (lock_fd_ >= 0) ::close(lock_fd_);
}

void ControlServer::close() {
    if (closed_) return;
    closed_ = true;
    boost::system::error_code ec;
    acceptor_.close(ec);
    ::unlink(path_.c_str());
    // Replies already queued (the answer to `shutdown`, say) are still delivered.
    for (auto& c : std::list<std::shared_ptr<Connection>>(conns_)) {
        c->end_stream("cowherd is shutting down");
        c->close_after_write();
    }
}

void ControlServer::when_drained(std::function<void()> f) {
    if (closed_ && conns_.empty()) {
        f();
        return;
    }
    on_drained_ = std::move(f);
}

bool ControlServer::allowed(Peer& p) const {
    if (p.uid == 0 || p.uid == geteuid()) return true;
    if (!access_.full_group && !access_.readonly_group) return false;
    // The groups of the connecting process itself, as the kernel has them (no NSS lookup).
    std::vector<gid_t> groups{p.gid};
    std::ifstream status("/proc/" + std::to_string(p.pid) + "/status");
    for (std::string line; std::getline(status, line);) {
        if (line.rfind("Groups:", 0) != 0) continue;
        std::istringstream in(line.substr(7));
        for (gid_t g; in >> g;)
            groups.push_back(g);
    }
    auto member = [&](std::optional<gid_t> g) {
        return g && std::find(groups.begin(), groups.end(), *g) != groups.end();
    };
    if (member(access_.full_group)) return true;
    if (member(access_.readonly_group)) {
        p.readonly = true;
        return true;
    }
    return false;
}

void ControlServer::forget(Connection* c) {
    conns_.remove_if([c](const std::shared_ptr<Connection>& x) { return x.get() == c; });
    if (closed_ && conns_.empty() && on_drained_) {
        auto f = std::move(on_drained_);
        on_drained_ = nullptr;
        f();
    }
}

// Evicts the connection of budget b idle longest, so idle or slow clients can never lock out
// an operator. One in the middle of a request is never evicted.
bool ControlServer::evict_idle(Budget b) {
    std::shared_ptr<Connection> victim;
    for (auto& c : conns_)
        if (c->budget() == b && !c->busy() && (!victim || c->last_active() < victim->last_active()))
            victim = c;
    if (!victim) return false;
    victim->close();
    return true;
}

bool ControlServer::admit_pending(const Peer& p) {
    if (in_use_[pending] < limits_.max_pending) return true;
    const auto now = std::chrono::steady_clock::now();
    std::shared_ptr<Connection> victim;
    for (auto& c : conns_) {
        if (c->budget() != pending || c->busy()) continue;
        // A full-access peer may always push out a read-only one (a readonly_group member
        // cannot lock root out by reconnecting fast); any other only one that had its chance.
        const bool may =
            now - c->last_active() >= limits_.pending_grace || (!p.readonly && c->peer().readonly);
        if (may && (!victim || c->last_active() < victim->last_active())) victim = c;
    }
    if (!victim) return false;
    victim->close();
    return true;
}

std::optional<ControlServer::Budget> ControlServer::admit(const Peer& p) {
    auto room = [&](Budget b) {
        const std::size_t cap = b == shared ? limits_.max_clients : limits_.reserved_clients;
        return in_use_[b] < cap;
    };
    // Full-access peers (root, our uid, socket_group) may also use the reserve, which
    // readonly_group members cannot fill: health, status and shutdown always get in.
    const bool full = !p.readonly;
    if (room(shared)) return shared;
    if (full && room(reserved)) return reserved;
    if (evict_idle(shared)) return shared;
    if (full && evict_idle(reserved)) return reserved;
    return std::nullopt;
}

void ControlServer::accept() {
    acceptor_.async_accept([this](const boost::system::error_code& ec, stream::socket sock) {
        if (ec == asio::error::operation_aborted || closed_) return;
        if (!ec) {
            int fd = sock.native_handle();
            ::fcntl(fd, F_SETFD, FD_CLOEXEC);
            ucred cred{};
            socklen_t len = sizeof cred;
            Peer peer;
            if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
                peer = Peer{cred.pid, cred.uid, cred.gid};
            } else {
                peer.uid = static_cast<uid_t>(-1);
            }
            const bool ok = allowed(peer);  // decides peer.readonly too: before the copy below
            const bool room = ok && admit_pending(peer);
            auto conn = std::make_shared<Connection>(*this, std::move(sock), peer,
                                                     room ? Budget::pending : Budget::none);
            conns_.push_back(conn);
            if (!ok) {
                spdlog::warn("control: denied uid {} (pid {})", peer.uid, peer.pid);
                conn->send(proto::encode_error(
                               std::nullopt, proto::ErrorCode::denied,
                               "uid " + std::to_string(peer.uid) + " may not use this socket"),
                           false);
                conn->close_after_write();
            } else if (!room) {
                conn->send(proto::encode_error(std::nullopt, proto::ErrorCode::busy,
                                               "too many control clients"),
                           false);
                conn->close_after_write();
            } else {
                conn->start();
            }
        } else if (ec == asio::error::no_descriptors) {
            spdlog::error("control: accept: {}", ec.message());
        }
        accept();
    });
}

}  // namespace cow
