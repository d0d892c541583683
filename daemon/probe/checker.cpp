#include "daemon/probe/checker.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include "core/units.hpp"

namespace cow::probe {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

// One check in flight, on the checker's thread only.
struct Op : std::enable_shared_from_this<Op> {
    Op(asio::io_context& io, asio::io_context& back, Check c, std::function<void(Outcome)> d)
        : sock(io), timer(io), loop(back), check(std::move(c)), done(std::move(d)) {}

    tcp::socket sock;
    asio::steady_timer timer;
    asio::io_context& loop;
    Check check;
    std::function<void(Outcome)> done;
    std::string request, reply;
    bool finished = false;

    void finish(bool ok, std::string detail) {
        if (finished) return;
        finished = true;
        boost::system::error_code ec;
        timer.cancel();
        sock.close(ec);
        asio::post(loop, [d = std::move(done), o = Outcome{ok, std::move(detail)}] { d(o); });
    }

    void start() {
        boost::system::error_code ec;
        auto addr = asio::ip::make_address(check.at.host, ec);
        if (ec) return finish(false, "not a numeric address: " + check.at.host);
        auto self = shared_from_this();
        timer.expires_after(check.timeout);
        timer.async_wait([self](const boost::system::error_code& e) {
            if (!e) self->finish(false, "timed out after " + format_duration(self->check.timeout));
        });
        sock.async_connect(tcp::endpoint(addr, check.at.port),
                           [self](const boost::system::error_code& e) { self->connected(e); });
    }

    void connected(const boost::system::error_code& e) {
        if (finished) return;
        if (e) return finish(false, "connect: " + e.message());
        if (!check.http) return finish(true, "connected");
        request = "GET " + check.at.path + " HTTP/1.1\r\nHost: " + check.at.host_header +
                  "\r\nUser-Agent: cowherd-probe\r\nConnection: close\r\n\r\n";
        auto self = shared_from_this();
        asio::async_write(sock, asio::buffer(request),
                          [self](const boost::system::error_code& we, std::size_t) {
                              if (self->finished) return;
                              if (we) return self->finish(false, "send: " + we.message());
                              self->read_status();
                          });
    }

    void read_status() {
        auto self = shared_from_this();
        asio::async_read_until(
            sock, asio::dynamic_buffer(reply, 4096), "\r\n",
            [self](const boost::system::error_code& re, std::size_t n) {
                if (self->finished) return;
                if (re) return self->finish(false, "no HTTP status line: " + re.message());
                const auto code = status_of(self->reply.substr(0, n));
                if (!code) return self->finish(false, "not an HTTP reply");
                const bool ok = *code >= self->check.status_min && *code <= self->check.status_max;
                self->finish(ok, "HTTP " + std::to_string(*code));
            });
    }
};

}  // namespace

Checker::Checker(asio::io_context& loop)
    : loop_(loop), io_(1), work_(asio::make_work_guard(io_)), thread_([this] { io_.run(); }) {}

Checker::~Checker() {
    work_.reset();
    io_.stop();
    thread_.join();
}

void Checker::check(Check c, std::function<void(Outcome)> done) {
    asio::post(io_, [this, c = std::move(c), d = std::move(done)]() mutable {
        std::make_shared<Op>(io_, loop_, std::move(c), std::move(d))->start();
    });
}

}  // namespace cow::probe
