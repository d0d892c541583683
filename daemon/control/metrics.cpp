#include "daemon/control/metrics.hpp"

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <fcntl.h>
#include <spdlog/spdlog.h>

namespace cow {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr int kMaxClients = 16;

struct Session : std::enable_shared_from_this<Session> {
    beast::tcp_stream stream;
    beast::flat_buffer buf;
    http::request_parser<http::empty_body> parser;
    http::response<http::string_body> res;
    MetricsServer::Render& render;
    MetricsServer::Ready& ready;
    int& active;
    Session(tcp::socket s, MetricsServer::Render& r, MetricsServer::Ready& rd, int& a)
        : stream(std::move(s)), render(r), ready(rd), active(a) {
        parser.header_limit(8192);
        ++active;
    }
    ~Session() { --active; }

    void start() {
        stream.expires_after(std::chrono::seconds(10));
        auto self = shared_from_this();
        http::async_read(stream, buf, parser, [self](beast::error_code ec, std::size_t) {
            if (ec) return;
            self->handle();
        });
    }

    void handle() {
        const auto& req = parser.get();
        res.version(req.version());
        res.keep_alive(false);
        res.set(http::field::server, "cowherd");
        if (req.method() != http::verb::get && req.method() != http::verb::head) {
            reply(http::status::method_not_allowed, "GET only\n", "text/plain");
            return;
        }
        const std::string_view target(req.target().data(), req.target().size());
        if (target == "/livez") {
            reply(http::status::ok, "ok\n", "text/plain");
            return;
        }
        if (target == "/readyz" || target.starts_with("/readyz?")) {
            std::string_view pool;
            if (auto q = target.find("pool="); q != std::string_view::npos) {
                pool = target.substr(q + 5);
                pool = pool.substr(0, pool.find('&'));
            }
            auto [code, body] = ready(pool);
            reply(static_cast<http::status>(code), std::move(body), "text/plain");
            return;
        }
        if (target != "/metrics") {
            reply(http::status::not_found, "try /metrics, /livez or /readyz\n", "text/plain");
            return;
        }
        auto self = shared_from_this();
        render([self](std::string body) {
            self->reply(http::status::ok, std::move(body),
                        "text/plain; version=0.0.4; charset=utf-8");
        });
    }

    void reply(http::status st, std::string body, const char* type) {
        res.result(st);
        res.set(http::field::content_type, type);
        res.body() = std::move(body);
        res.prepare_payload();
        auto self = shared_from_this();
        http::async_write(stream, res, [self](beast::error_code, std::size_t) {
            beast::error_code ec;
            self->stream.socket().shutdown(tcp::socket::shutdown_send, ec);
        });
    }
};

}  // namespace

std::variant<std::unique_ptr<MetricsServer>, std::string> MetricsServer::open(
    asio::io_context& io, const std::string& address, Render render, Ready ready) {
    auto colon = address.rfind(':');
    std::string host = address.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    if (host.empty()) host = "0.0.0.0";
    boost::system::error_code ec;
    auto ip = asio::ip::make_address(host, ec);
    if (ec) return "metrics: " + host + " is not a numeric address";
    const auto port = static_cast<unsigned short>(std::stoi(address.substr(colon + 1)));
    std::unique_ptr<MetricsServer> m(new MetricsServer(io, std::move(render), std::move(ready)));
    tcp::endpoint ep(ip, port);
    m->acceptor_.open(ep.protocol(), ec);
    if (!ec) ::fcntl(m->acceptor_.native_handle(), F_SETFD, FD_CLOEXEC);
    if (!ec) m->acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) m->acceptor_.bind(ep, ec);
    if (!ec) m->acceptor_.listen(64, ec);
    if (ec) return "metrics: bind " + address + ": " + ec.message();
    m->accept();
    m->tick();
    return m;
}

MetricsServer::MetricsServer(asio::io_context& io, Render render, Ready ready)
    : acceptor_(io), render_(std::move(render)), ready_(std::move(ready)), lag_timer_(io) {}

MetricsServer::~MetricsServer() {
    boost::system::error_code ec;
    acceptor_.close(ec);
    lag_timer_.cancel();
}

void MetricsServer::accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket s) {
        if (ec == asio::error::operation_aborted) return;
        if (!ec) {
            ::fcntl(s.native_handle(), F_SETFD, FD_CLOEXEC);
            if (active_ < kMaxClients) {
                ++scrapes_;
                std::make_shared<Session>(std::move(s), render_, ready_, active_)->start();
            }
        }
        accept();
    });
}

// Event-loop lag: a timer due every second, and how late it actually ran. Only while
// metrics are on, so an idle daemon without metrics still never wakes up.
void MetricsServer::tick() {
    lag_due_ = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    lag_timer_.expires_at(lag_due_);
    lag_timer_.async_wait([this](boost::system::error_code ec) {
        if (ec) return;
        lag_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - lag_due_).count();
        tick();
    });
}

}  // namespace cow
