#include "daemon/probe/checker.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "core/units.hpp"

namespace cow::probe {
namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

// Kept-alive HTTP connections between probes, by endpoint, on the checker's thread only.
// Reuse is what makes a thousand probes a second cheap: on loopback a fresh connection costs
// the connecting thread the whole handshake and teardown. A connection is not reused once it
// is kMaxAge old, so that the server's accept path is still tested that often.
class Pool {
  public:
    static constexpr auto kMaxAge = std::chrono::seconds(30);
    static constexpr std::size_t kMaxIdle = 4096;  // fds the cache may hold

    struct Idle {
        tcp::socket sock;
        Clock::time_point opened;
    };

    // A kept connection to `key` young enough to reuse, if there is one.
    std::optional<Idle> take(const std::string& key) {
        auto it = idle_.find(key);
        while (it != idle_.end() && !it->second.empty()) {
            Idle c = std::move(it->second.back());
            it->second.pop_back();
            --count_;
            if (Clock::now() - c.opened < kMaxAge) return c;
        }
        return std::nullopt;
    }

    void give(const std::string& key, tcp::socket sock, Clock::time_point opened) {
        const auto now = Clock::now();
        if (now - last_sweep_ > std::chrono::seconds(5)) sweep(now);
        if (count_ >= kMaxIdle || now - opened >= kMaxAge) return;  // closed by its destructor
        idle_[key].push_back(Idle{std::move(sock), opened});
        ++count_;
    }

  private:
    // Connections to workers that are gone (scaled down, replaced) are not asked again; age
    // ends them.
    void sweep(Clock::time_point now) {
        last_sweep_ = now;
        for (auto it = idle_.begin(); it != idle_.end();) {
            std::erase_if(it->second, [&](const Idle& c) { return now - c.opened >= kMaxAge; });
            it = it->second.empty() ? idle_.erase(it) : std::next(it);
        }
        count_ = 0;
        for (const auto& [k, v] : idle_)
            count_ += v.size();
    }

    std::unordered_map<std::string, std::vector<Idle>> idle_;
    std::size_t count_ = 0;
    Clock::time_point last_sweep_{};
};

namespace {

// One check in flight, on the checker's thread only.
struct Op : std::enable_shared_from_this<Op> {
    Op(asio::io_context& own, asio::io_context& back, Pool& conns, Check c,
       std::function<void(Outcome)> d)
        : io(own),
          sock(own),
          timer(own),
          loop(back),
          pool(conns),
          check(std::move(c)),
          done(std::move(d)) {}

    asio::io_context& io;
    tcp::socket sock;
    asio::steady_timer timer;
    asio::io_context& loop;
    Pool& pool;
    Check check;
    std::function<void(Outcome)> done;
    std::string key;
    tcp::endpoint at;
    Clock::time_point opened;
    bool reused = false;
    bool finished = false;
    http::request<http::empty_body> request;
    boost::beast::flat_buffer buffer;
    std::optional<http::response_parser<http::string_body>> parser;

    void finish(bool ok, std::string detail, bool keep = false) {
        if (finished) return;
        finished = true;
        timer.cancel();
        if (keep) {
            pool.give(key, std::move(sock), opened);
        } else {
            boost::system::error_code ec;
            if (!check.http) {
                // A TCP probe says nothing after its connect: reset rather than close, so that
                // neither side keeps the connection in TIME_WAIT: a thousand probes a second
                // would otherwise hold tens of thousands of sockets (kubernetes#115143).
                sock.set_option(asio::socket_base::linger(true, 0), ec);
            }
            sock.close(ec);
        }
        asio::post(loop, [d = std::move(done), o = Outcome{ok, std::move(detail)}] { d(o); });
    }

    void start() {
        boost::system::error_code ec;
        auto addr = asio::ip::make_address(check.at.host, ec);
        if (ec) return finish(false, "not a numeric address: " + check.at.host);
        at = tcp::endpoint(addr, check.at.port);
        auto self = shared_from_this();
        timer.expires_after(check.timeout);
        timer.async_wait([self](const boost::system::error_code& e) {
            if (!e) self->finish(false, "timed out after " + format_duration(self->check.timeout));
        });
        if (check.http) {
            key = check.at.host + ":" + std::to_string(check.at.port);
            if (auto c = pool.take(key)) {
                sock = std::move(c->sock);
                opened = c->opened;
                reused = true;
                return send();
            }
        }
        connect();
    }

    void connect() {
        auto self = shared_from_this();
        opened = Clock::now();
        sock.async_connect(at, [self](const boost::system::error_code& e) { self->connected(e); });
    }

    void connected(const boost::system::error_code& e) {
        if (finished) return;
        if (e) return finish(false, "connect: " + e.message());
        if (!check.http) return finish(true, "connected");
        send();
    }

    void send() {
        request = {http::verb::get, check.at.path, 11};
        request.set(http::field::host, check.at.host_header);
        request.set(http::field::user_agent, "cowherd-probe");
        buffer.clear();
        parser.emplace();
        parser->body_limit(64 * 1024);  // a health page; a bigger one is judged by its status
        auto self = shared_from_this();
        http::async_write(sock, request, [self](const boost::system::error_code& we, std::size_t) {
            if (self->finished) return;
            if (we) return self->failed("send: " + we.message());
            self->read();
        });
    }

    void read() {
        auto self = shared_from_this();
        http::async_read(sock, buffer, *parser,
                         [self](const boost::system::error_code& re, std::size_t) {
                             if (self->finished) return;
                             self->answered(re);
                         });
    }

    // A kept-alive connection the server has closed since (it restarted, or its idle timeout
    // passed) fails before a byte of the answer: that says nothing of the server, so ask again
    // on a fresh connection, within the same timeout.
    void failed(std::string why) {
        if (reused && !parser->got_some()) {
            reused = false;
            boost::system::error_code ec;
            sock.close(ec);
            sock = tcp::socket(io);
            return connect();
        }
        finish(false, std::move(why));
    }

    void answered(const boost::system::error_code& re) {
        if (re && !(re == http::error::body_limit && parser->is_header_done())) {
            if (re == http::error::end_of_stream || !parser->got_some())
                return failed("no HTTP reply: " + re.message());
            return finish(false, "not an HTTP reply: " + re.message());
        }
        const int code = static_cast<int>(parser->get().result_int());
        const bool ok = code >= check.status_min && code <= check.status_max;
        // Reuse only a connection left exactly between two messages.
        const bool keep = !re && parser->get().keep_alive() && buffer.size() == 0;
        finish(ok, "HTTP " + std::to_string(code), keep);
    }
};

}  // namespace

Checker::Checker(asio::io_context& loop)
    : loop_(loop),
      io_(1),
      work_(asio::make_work_guard(io_)),
      pool_(std::make_unique<Pool>()),
      thread_([this] { io_.run(); }) {}

Checker::~Checker() {
    work_.reset();
    io_.stop();
    thread_.join();
}

void Checker::check(Check c, std::function<void(Outcome)> done) {
    asio::post(io_, [this, c = std::move(c), d = std::move(done)]() mutable {
        std::make_shared<Op>(io_, loop_, *pool_, std::move(c), std::move(d))->start();
    });
}

}  // namespace cow::probe
